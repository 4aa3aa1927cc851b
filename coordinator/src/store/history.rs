//! Reading history back in time order, for the detection engine's warm start.
//!
//! # Decisions
//! - **A second, read-only connection** ([`Store::reader`]): the store thread owns the
//!   writing connection; in WAL mode a reader sees a consistent snapshot while ingest goes on,
//!   so a long replay never holds up acknowledgements.
//! - **Streamed** ([`Store::scheduled_history`]): a week of a large fleet is tens of millions
//!   of rows; each is decoded and handed to the caller, never collected.
//! - **Split by arrival**: the replay takes what was *received* before the new run began;
//!   everything received after reaches the engine live, so no result is learnt twice.

use std::path::Path;
use std::time::Duration;

use meridian_shared::result::CheckResult;
use rusqlite::{Connection, OpenFlags};

use super::{Store, StoreError};

/// What a replay read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HistoryStats {
    /// Rows handed to the visitor.
    pub results: u64,
    /// Rows whose record this build cannot decode (skipped).
    pub undecodable: u64,
}

impl Store {
    /// A second, read-only connection to this store's database, for reading beside the
    /// writer (possibly on another thread).
    pub fn reader(&self) -> Result<Store, StoreError> {
        Store::open_reader_at(&self.path)
    }

    /// Opens `meridian.db` in `dir` read-only. The database must exist (the writer creates
    /// and migrates it) with a schema no newer than this build's.
    pub fn open_reader(dir: &Path) -> Result<Store, StoreError> {
        Store::open_reader_at(&dir.join("meridian.db"))
    }

    fn open_reader_at(path: &Path) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;")
            .map_err(err)?;
        let store = Store { conn, path };
        let found = store.schema_version()?;
        let supported = super::migrations::latest();
        if found > supported {
            return Err(StoreError::SchemaTooNew {
                path: store.path,
                found,
                supported,
            });
        }
        Ok(store)
    }

    /// Visits every stored scheduled run (no burst runs) started at or after `since_ms` and
    /// received before `received_before_ms`, in order of start time, with the authenticated
    /// probe id and region.
    pub fn scheduled_history(
        &self,
        since_ms: i64,
        received_before_ms: i64,
        mut visit: impl FnMut(CheckResult),
    ) -> Result<HistoryStats, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT probe_id, region, record FROM results INDEXED BY results_by_started
                 WHERE started_ms >= ?1 AND received_ms < ?2 AND burst_id IS NULL
                 ORDER BY started_ms",
            )
            .map_err(|e| self.sqlite(e))?;
        let mut rows = stmt
            .query([since_ms, received_before_ms])
            .map_err(|e| self.sqlite(e))?;
        let mut stats = HistoryStats::default();
        while let Some(row) = rows.next().map_err(|e| self.sqlite(e))? {
            let blob = row.get_ref(2).map_err(|e| self.sqlite(e))?;
            let bytes = blob.as_blob().unwrap_or_default();
            match rmp_serde::from_slice::<CheckResult>(bytes) {
                Ok(mut result) => {
                    // The identity columns are the authenticated ones (see `ingest`).
                    result.probe_id = row.get(0).map_err(|e| self.sqlite(e))?;
                    result.region = row.get(1).map_err(|e| self.sqlite(e))?;
                    stats.results += 1;
                    visit(result);
                }
                Err(_) => stats.undecodable += 1,
            }
        }
        Ok(stats)
    }
}
