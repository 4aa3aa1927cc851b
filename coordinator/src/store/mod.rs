//! Embedded storage in SQLite (bundled, WAL) under the coordinator's data directory.
//!
//! Ingest is idempotent on (probe, sequence): a batch is inserted with `INSERT OR IGNORE` in
//! one transaction, so a probe that re-sends after a lost acknowledgement stores nothing twice,
//! and at-least-once delivery becomes exactly-once storage. `synchronous = FULL` makes a
//! committed transaction durable against power loss, not only a process crash: the coordinator
//! acknowledges a batch only after [`Store::ingest`] returned, so an acknowledged result is on
//! disk. Results keep their original timestamps however late they arrive.
//!
//! Ingest cost is dominated by B-tree inserts (the primary key and two secondary indexes:
//! `results_by_started` serves retention pruning, `results_by_check` per-check raw queries)
//! and the commit's fsync. `results_by_check` has an insertion point per (check, region), so
//! a small transaction dirties a page per row and writes each to the WAL; it is kept (the
//! detection's per-check windows need it) and amortised by large transactions instead. [`Store::ingest_many`] commits many probes' batches at once (the
//! service's group commit), encodes each record once into a reused buffer, and merges rollups
//! once per (check, region, phase, minute) per transaction. Pragmas: a 32 MiB page cache (the
//! default 2 MiB thrashes on the indexes' interior pages once the tables pass a few hundred
//! MB), temp tables in memory, and WAL checkpoints every 4,000 pages (16 MiB) rather than
//! 1,000, so fewer checkpoint fsyncs; `synchronous = FULL` is unchanged.
//!
//! A result carries, beside its record, the burst tag it arrived with (`burst_id`, NULL for a
//! scheduled run): detection must tell confirmation runs from scheduled ones, in history too,
//! so [`Store::sequenced_results`] hands it back. Burst runs are stored but not rolled up (see
//! [`rollup`]).
//!
//! Incidents ([`incidents`]) are written by the service's detection thread on every transition
//! and read by `coordinator incidents`; ingest tells the service which results were newly
//! stored ([`Store::ingest_many_fresh`]), and only those reach detection.
//!
//! Deliberately absent: async. SQLite calls block; the service runs them on a dedicated
//! thread and groups many probes' batches into one transaction.

pub mod history;
pub mod incidents;
pub mod maintenance;
pub mod messages;
mod migrations;
pub mod notes;
pub mod probes;
pub mod rollup;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_shared::result::CheckResult;
use meridian_shared::wire::{BurstTag, SequencedResult};
use rusqlite::{Connection, OptionalExtension, params};

pub use migrations::latest as latest_schema;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error (I/O, corruption, full disk, locked database).
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer coordinator: its schema is ahead of this build's.
    #[error(
        "database {path} has schema version {found}, newer than this coordinator's {supported}"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A sequence number does not fit SQLite's signed 64-bit integers.
    #[error("sequence number {0} is out of range")]
    SeqOutOfRange(u64),
    /// A result could not be encoded for storage.
    #[error("encoding a result: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// An incident id does not fit SQLite's signed 64-bit integers.
    #[error("incident id {0} is out of range")]
    IncidentIdOutOfRange(u64),
    /// A stored incident's column holds what this build cannot read (written by hand, or by a
    /// newer coordinator).
    #[error("database {path}: incident {id}: column {column}: {detail}")]
    BadIncident {
        /// The database file.
        path: PathBuf,
        /// The incident's id.
        id: i64,
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A stored maintenance window does not parse (written by hand, or by a newer
    /// coordinator).
    #[error("database {path}: maintenance window {id:?}: {detail}")]
    BadMaintenance {
        /// The database file.
        path: PathBuf,
        /// The window's id.
        id: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// Why an enrolment token was not accepted. Deliberately coarse towards the network (the
/// enrolment endpoint answers "invalid token" for all three); precise in the coordinator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No such token was ever issued.
    #[error("unknown token")]
    Unknown,
    /// The token was issued but its time ran out.
    #[error("token expired")]
    Expired,
    /// The token was already used by an enrolment.
    #[error("token already used")]
    Used,
}

/// What one ingest call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingested {
    /// Results newly stored.
    pub stored: usize,
    /// Results already present (re-sent after a lost acknowledgement), left untouched.
    pub duplicates: usize,
}

/// One probe's batch in a group commit ([`Store::ingest_many`]): its authenticated id and
/// region, and its results by sequence number (`(seq, result)` pairs by default, or
/// [`SequencedResult`]s with their burst tags).
pub type ProbeBatch<'a, R = (u64, CheckResult)> = (&'a str, &'a str, &'a [R]);

/// A result as ingest takes it: its sequence number, the record, and the burst tag of a burst
/// run. The wire's [`SequencedResult`] is one; a bare `(seq, result)` pair is a scheduled run
/// (what callers that predate burst tags pass).
pub trait Ingestible {
    /// The probe's sequence number.
    fn seq(&self) -> u64;
    /// The record.
    fn result(&self) -> &CheckResult;
    /// The burst it belongs to, `None` for a scheduled run.
    fn burst(&self) -> Option<BurstTag>;
}

impl Ingestible for SequencedResult {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn result(&self) -> &CheckResult {
        &self.result
    }
    fn burst(&self) -> Option<BurstTag> {
        self.burst
    }
}

impl Ingestible for (u64, CheckResult) {
    fn seq(&self) -> u64 {
        self.0
    }
    fn result(&self) -> &CheckResult {
        &self.1
    }
    fn burst(&self) -> Option<BurstTag> {
        None
    }
}

/// A burst id as stored: SQLite integers are signed, so the u64 is kept as the i64 with the
/// same bits (ids above `i64::MAX` read back negative in SQL, and exactly in Rust).
fn burst_to_sql(tag: BurstTag) -> i64 {
    tag.burst_id.cast_signed()
}

/// The inverse of [`burst_to_sql`].
fn burst_from_sql(id: i64) -> BurstTag {
    BurstTag {
        burst_id: id.cast_unsigned(),
    }
}

/// A probe as the coordinator knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRecord {
    /// Its id, from its certificate.
    pub probe_id: String,
    /// Its region, from its certificate.
    pub region: String,
    /// When it enrolled, Unix ms.
    pub enrolled_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// When it was last heard from.
    pub last_seen_ms: Option<i64>,
}

/// What [`Store::open_migrating`] reports while it brings a schema up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Migration {
    /// Before any step: the schema goes from version `from` to `to` (equal: nothing to do).
    Planned {
        /// The database's version as found (0 for a new database).
        from: u32,
        /// The version this build writes ([`latest_schema`]).
        to: u32,
    },
    /// One migration committed: the schema is now at `version`.
    Applied {
        /// The version reached.
        version: u32,
    },
}

/// The schema versions before and after [`Store::open_migrating`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0 for a new database).
    pub from: u32,
    /// The version now, [`latest_schema`].
    pub to: u32,
}

/// The coordinator's database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `meridian.db` in `dir` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_migrating(dir, |_| {}).map(|(store, _)| store)
    }

    /// [`Store::open`], telling `progress` about the migrations as they run (`coordinator
    /// migrate`'s progress bar): first [`Migration::Planned`], then one
    /// [`Migration::Applied`] per schema version reached. Returns the store and the schema
    /// versions before and after.
    pub fn open_migrating(
        dir: &Path,
        mut progress: impl FnMut(Migration),
    ) -> Result<(Store, Migrated), StoreError> {
        let mut store = Store::connect(dir)?;
        let migrated = store.migrate(&mut progress)?;
        Ok((store, migrated))
    }

    /// The connection with its pragmas set, schema untouched.
    fn connect(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("meridian.db");
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = 4000;",
        )
        .map_err(err)?;
        Ok(Store { conn, path })
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
            .map_err(|e| self.sqlite(e))
    }

    fn migrate(&mut self, progress: &mut dyn FnMut(Migration)) -> Result<Migrated, StoreError> {
        let found = self.schema_version()?;
        let supported = migrations::latest();
        if found > supported {
            return Err(StoreError::SchemaTooNew {
                path: self.path.clone(),
                found,
                supported,
            });
        }
        progress(Migration::Planned {
            from: found,
            to: supported,
        });
        for (index, sql) in migrations::MIGRATIONS
            .iter()
            .enumerate()
            .skip(found as usize)
        {
            let version = index + 1;
            let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(sql)
                .and_then(|()| tx.execute_batch(&format!("PRAGMA user_version = {version}")))
                .and_then(|()| tx.commit())
                .map_err(|e| StoreError::Sqlite {
                    path: self.path.clone(),
                    source: e,
                })?;
            tracing::info!(path = %self.path.display(), version, "schema migrated");
            progress(Migration::Applied {
                version: u32::try_from(version).expect("versions are below `latest()`, a u32"),
            });
        }
        Ok(Migrated {
            from: found,
            to: supported,
        })
    }

    /// Records a probe (enrolment), or updates its region and fingerprint.
    pub fn upsert_probe(
        &self,
        probe_id: &str,
        region: &str,
        fingerprint: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO probes (probe_id, region, cert_fingerprint, enrolled_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (probe_id) DO UPDATE SET region = excluded.region, cert_fingerprint = excluded.cert_fingerprint",
                params![probe_id, region, fingerprint, now_ms],
            )
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// A probe by id.
    pub fn probe(&self, probe_id: &str) -> Result<Option<ProbeRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT probe_id, region, enrolled_ms, revoked_ms, last_seen_ms FROM probes WHERE probe_id = ?1",
                [probe_id],
                |r| {
                    Ok(ProbeRecord {
                        probe_id: r.get(0)?,
                        region: r.get(1)?,
                        enrolled_ms: r.get(2)?,
                        revoked_ms: r.get(3)?,
                        last_seen_ms: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    /// Stores a batch of results from one probe in one durable transaction.
    ///
    /// `probe_id` and `region` are the authenticated identity (from the client certificate):
    /// they replace whatever the results claim. Already-stored (probe, seq) pairs are skipped.
    /// Each result's burst tag (see [`Ingestible`]) is stored with it.
    pub fn ingest<R: Ingestible>(
        &mut self,
        probe_id: &str,
        region: &str,
        batch: &[R],
        received_ms: i64,
    ) -> Result<Ingested, StoreError> {
        let outcome = self.ingest_many(&[(probe_id, region, batch)], received_ms)?;
        Ok(outcome.first().copied().unwrap_or_default())
    }

    /// Stores many probes' batches in ONE durable transaction (group commit): one fsync for
    /// all of them, one rollup merge per (check, region, phase, minute) across all of them.
    /// Returns what happened to each batch, in order. Either every batch is committed or none
    /// is, so a caller acknowledges each batch only after this returned `Ok`.
    ///
    /// Each entry is `(probe_id, region, results)` with the authenticated identity, as for
    /// [`Store::ingest`]. A (probe, seq) that appears twice, even within one call, is stored
    /// and rolled up once; the second counts as a duplicate. Burst runs are stored with their
    /// tag and left out of the rollups.
    pub fn ingest_many<R: Ingestible>(
        &mut self,
        batches: &[ProbeBatch<'_, R>],
        received_ms: i64,
    ) -> Result<Vec<Ingested>, StoreError> {
        Ok(self.ingest_many_fresh(batches, received_ms)?.0)
    }

    /// [`Store::ingest_many`], also saying which results this call stored: `fresh[b][i]` is
    /// true when result `i` of batch `b` was newly stored, false for a duplicate. The service
    /// hands exactly the fresh ones to detection, so a batch re-sent after a lost
    /// acknowledgement is not judged twice.
    pub fn ingest_many_fresh<R: Ingestible>(
        &mut self,
        batches: &[ProbeBatch<'_, R>],
        received_ms: i64,
    ) -> Result<(Vec<Ingested>, Vec<Vec<bool>>), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let mut outcome = Vec::with_capacity(batches.len());
        let mut fresh = Vec::with_capacity(batches.len());
        let mut rollups = rollup::Pending::default();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO results (probe_id, seq, check_id, region, scheduled_ms, started_ms,
                       received_ms, ok, error_class, dns_us, connect_us, tls_us, ttfb_us, transfer_us, total_us,
                       status, record, burst_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .map_err(err)?;
            let mut seen = tx
                .prepare_cached(
                    "UPDATE probes SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?2) WHERE probe_id = ?1",
                )
                .map_err(err)?;
            // One encoding buffer for the whole transaction: no allocation per record.
            let mut record = Vec::with_capacity(512);
            let mut relabelled;
            for &(probe_id, region, batch) in batches {
                let mut out = Ingested::default();
                let mut new = Vec::with_capacity(batch.len());
                for item in batch {
                    let (seq, result, burst) = (item.seq(), item.result(), item.burst());
                    let seq_i = i64::try_from(seq).map_err(|_| StoreError::SeqOutOfRange(seq))?;
                    // The stored record carries the authenticated identity. The service
                    // relabels before it gets here, so the copy is only for other callers.
                    let result = if result.probe_id == probe_id && result.region == region {
                        result
                    } else {
                        relabelled = result.clone();
                        probe_id.clone_into(&mut relabelled.probe_id);
                        region.clone_into(&mut relabelled.region);
                        &relabelled
                    };
                    record.clear();
                    rmp_serde::encode::write_named(&mut record, result)?;
                    let p = result.phases;
                    let us = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                    let changed = insert
                        .execute(params![
                            probe_id,
                            seq_i,
                            result.check_id.as_str(),
                            region,
                            result.scheduled_ms,
                            result.started_ms,
                            received_ms,
                            result.passed(),
                            result.error.as_ref().map(|e| e.class.as_str()),
                            us(p.dns),
                            us(p.connect),
                            us(p.tls),
                            us(p.ttfb),
                            us(p.transfer),
                            us(Some(p.total)),
                            result.http.as_ref().and_then(|h| h.status),
                            record.as_slice(),
                            burst.map(burst_to_sql),
                        ])
                        .map_err(err)?;
                    new.push(changed == 1);
                    if changed == 1 {
                        out.stored += 1;
                        // Rollups are of scheduled runs only (see `rollup`'s module docs).
                        if burst.is_none() {
                            rollups.add(region, result);
                        }
                    } else {
                        out.duplicates += 1;
                    }
                }
                seen.execute(params![probe_id, received_ms]).map_err(err)?;
                outcome.push(out);
                fresh.push(new);
            }
        }
        // Only newly stored results feed the rollups: a re-sent batch counts once.
        rollups.flush(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok((outcome, fresh))
    }

    /// Records a new enrolment token (its hash) for `region`, valid until `expires_ms`.
    pub fn create_token(
        &self,
        token_hash: &str,
        region: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO enrollment_tokens (token_hash, region, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, region, now_ms, expires_ms],
            )
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// Uses a token for `probe_id`: succeeds once, before it expires, and returns its region.
    /// The check and the marking are one statement, so two enrolments racing with the same
    /// token cannot both win.
    pub fn redeem_token(
        &self,
        token_hash: &str,
        probe_id: &str,
        now_ms: i64,
    ) -> Result<Result<String, TokenRefusal>, StoreError> {
        let region: Option<String> = self
            .conn
            .query_row(
                "UPDATE enrollment_tokens SET used_ms = ?2, used_by = ?3
                 WHERE token_hash = ?1 AND used_ms IS NULL AND expires_ms > ?2 RETURNING region",
                params![token_hash, now_ms, probe_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        if let Some(region) = region {
            return Ok(Ok(region));
        }
        let state: Option<(Option<i64>, i64)> = self
            .conn
            .query_row(
                "SELECT used_ms, expires_ms FROM enrollment_tokens WHERE token_hash = ?1",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        Ok(Err(match state {
            None => TokenRefusal::Unknown,
            Some((Some(_), _)) => TokenRefusal::Used,
            Some((None, _)) => TokenRefusal::Expired,
        }))
    }

    /// Every probe, by id.
    pub fn probes(&self) -> Result<Vec<ProbeRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT probe_id, region, enrolled_ms, revoked_ms, last_seen_ms FROM probes ORDER BY probe_id")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ProbeRecord {
                    probe_id: r.get(0)?,
                    region: r.get(1)?,
                    enrolled_ms: r.get(2)?,
                    revoked_ms: r.get(3)?,
                    last_seen_ms: r.get(4)?,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))
    }

    /// Ids of every revoked probe.
    pub fn revoked_probe_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT probe_id FROM probes WHERE revoked_ms IS NOT NULL")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))
    }

    /// Revokes a probe; returns false when there is no such probe or it was already revoked.
    /// (The live service also closes the probe's connections; see the transport issue.)
    pub fn revoke_probe(&self, probe_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE probes SET revoked_ms = ?2 WHERE probe_id = ?1 AND revoked_ms IS NULL",
                params![probe_id, now_ms],
            )
            .map(|n| n == 1)
            .map_err(|e| self.sqlite(e))
    }

    /// The highest sequence number stored for a probe (what a reconnecting probe can skip).
    pub fn highest_seq(&self, probe_id: &str) -> Result<Option<u64>, StoreError> {
        let max: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(seq) FROM results WHERE probe_id = ?1",
                [probe_id],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(max.and_then(|m| u64::try_from(m).ok()))
    }

    /// Stored results of a probe, in sequence order, each with its burst tag (`None` for a
    /// scheduled run): for detection's history, replays and exports.
    pub fn sequenced_results(&self, probe_id: &str) -> Result<Vec<SequencedResult>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, record, burst_id FROM results WHERE probe_id = ?1 ORDER BY seq")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([probe_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, blob, burst) = row.map_err(|e| self.sqlite(e))?;
            // A record this build cannot decode (written by a newer one) is skipped, not fatal.
            match rmp_serde::from_slice::<CheckResult>(&blob) {
                Ok(result) => out.push(SequencedResult {
                    seq: u64::try_from(seq).unwrap_or_default(),
                    result,
                    burst: burst.map(burst_from_sql),
                }),
                Err(e) => {
                    tracing::warn!(probe_id, seq, error = %e, "stored result not decodable; skipped")
                }
            }
        }
        Ok(out)
    }

    /// [`Store::sequenced_results`] without the burst tags, as `(seq, result)` pairs: for
    /// callers that only look at the records. Anything that must tell burst runs from
    /// scheduled ones (detection) reads `sequenced_results`.
    pub fn results(&self, probe_id: &str) -> Result<Vec<(u64, CheckResult)>, StoreError> {
        Ok(self
            .sequenced_results(probe_id)?
            .into_iter()
            .map(|r| (r.seq, r.result))
            .collect())
    }

    /// Per-minute p50/p90/p99 of one phase of a check in a region, for minutes starting in
    /// `[from_ms, to_ms)`, in time order.
    pub fn rollup_minutes(
        &self,
        check_id: &str,
        region: &str,
        phase: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<rollup::MinuteSummary>, StoreError> {
        let mut out = Vec::new();
        for (minute, sketch) in self.rollup_sketches(check_id, region, phase, from_ms, to_ms)? {
            out.extend(rollup::summarize(minute, &sketch));
        }
        Ok(out)
    }

    /// The same quantiles over the whole range, by merging its minutes' sketches.
    pub fn rollup_range(
        &self,
        check_id: &str,
        region: &str,
        phase: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<rollup::MinuteSummary>, StoreError> {
        let mut merged = rollup::new_sketch();
        for (_, sketch) in self.rollup_sketches(check_id, region, phase, from_ms, to_ms)? {
            let _ = merged.merge(&sketch);
        }
        Ok(rollup::summarize(from_ms, &merged))
    }

    /// A region's phase over several checks, merged: per minute (`per_minute`) or over the
    /// whole of `[from_ms, to_ms)` (one summary, stamped `from_ms`). What the map shows: how
    /// the region's network looks across the sites it checks.
    pub fn rollup_region(
        &self,
        check_ids: &[String],
        region: &str,
        phase: &str,
        from_ms: i64,
        to_ms: i64,
        per_minute: bool,
    ) -> Result<Vec<rollup::MinuteSummary>, StoreError> {
        let mut minutes: std::collections::BTreeMap<i64, sketches_ddsketch::DDSketch> =
            std::collections::BTreeMap::new();
        for check in check_ids {
            for (minute, sketch) in self.rollup_sketches(check, region, phase, from_ms, to_ms)? {
                let key = if per_minute { minute } else { from_ms };
                match minutes.entry(key) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(sketch);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        let _ = o.get_mut().merge(&sketch);
                    }
                }
            }
        }
        Ok(minutes
            .iter()
            .filter_map(|(minute, sketch)| rollup::summarize(*minute, sketch))
            .collect())
    }

    /// The decodable sketches of one (check, region, phase) for minutes in `[from_ms, to_ms)`.
    pub(crate) fn rollup_sketches(
        &self,
        check_id: &str,
        region: &str,
        phase: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, sketches_ddsketch::DDSketch)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT minute_ms, sketch FROM rollups WHERE check_id = ?1 AND region = ?2 AND phase = ?3
                 AND minute_ms >= ?4 AND minute_ms < ?5 ORDER BY minute_ms",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map(params![check_id, region, phase, from_ms, to_ms], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (minute, blob) = row.map_err(|e| self.sqlite(e))?;
            match sketches_ddsketch::DDSketch::from_java_bytes(&blob) {
                Ok(s) => out.push((minute, s)),
                Err(e) => {
                    tracing::warn!(check_id, region, phase, minute, error = ?e, "rollup sketch not decodable; skipped")
                }
            }
        }
        Ok(out)
    }

    /// Deletes rollups of minutes before `now_ms - retention`; returns how many rows.
    pub fn prune_rollups(&self, now_ms: i64, retention: Duration) -> Result<usize, StoreError> {
        let cutoff = now_ms - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        self.conn
            .execute("DELETE FROM rollups WHERE minute_ms < ?1", [cutoff])
            .map_err(|e| self.sqlite(e))
    }

    /// Deletes raw results that started before `now_ms - retention`; returns how many.
    pub fn prune_results(&self, now_ms: i64, retention: Duration) -> Result<usize, StoreError> {
        let cutoff = now_ms - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        self.conn
            .execute("DELETE FROM results WHERE started_ms < ?1", [cutoff])
            .map_err(|e| self.sqlite(e))
    }
}

#[cfg(test)]
mod tests;

/// [`Store::open_migrating`]'s reports (beside `Store::open`'s, which `tests` covers).
#[cfg(test)]
mod migrate_progress_tests {
    use super::*;

    #[test]
    fn a_partial_migration_reports_its_plan_then_each_version_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A database two versions old, as an older coordinator left it.
            let mut conn = Connection::open(dir.path().join("meridian.db")).unwrap();
            let old = migrations::MIGRATIONS.len() - 2;
            for (i, sql) in migrations::MIGRATIONS[..old].iter().enumerate() {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                    .unwrap();
                tx.commit().unwrap();
            }
        }
        let latest = latest_schema();
        let mut seen = Vec::new();
        let (store, migrated) = Store::open_migrating(dir.path(), |m| seen.push(m)).unwrap();
        assert_eq!(
            migrated,
            Migrated {
                from: latest - 2,
                to: latest
            }
        );
        assert_eq!(
            seen,
            [
                Migration::Planned {
                    from: latest - 2,
                    to: latest
                },
                Migration::Applied {
                    version: latest - 1
                },
                Migration::Applied { version: latest },
            ]
        );
        assert_eq!(store.schema_version().unwrap(), latest);
        drop(store);

        // Up to date: the plan alone, from and to equal.
        seen.clear();
        let (_, migrated) = Store::open_migrating(dir.path(), |m| seen.push(m)).unwrap();
        assert_eq!(migrated.from, migrated.to);
        assert_eq!(
            seen,
            [Migration::Planned {
                from: latest,
                to: latest
            }]
        );
    }
}
