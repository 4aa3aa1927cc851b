//! Maintenance windows made through the API or `coordinator maintenance add` (schema v10):
//! each row is the [`RawWindow`] it was validated from, as JSON, so a window reads back
//! exactly as it was written and is validated again (against the configuration then in
//! force) wherever it is used. Those of `coordinator.toml` are not stored.

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use super::{Store, StoreError};
use crate::maintenance::RawWindow;

/// One stored window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredWindow {
    /// As written.
    pub raw: RawWindow,
    /// When it was made, Unix ms.
    pub created_ms: i64,
    /// Who made it (a user name, or `cli`).
    pub created_by: String,
}

impl Store {
    /// Stores a new window; `false` when one with its id exists.
    pub fn add_maintenance(
        &self,
        raw: &RawWindow,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let spec = serde_json::to_string(raw).expect("a window of strings always serializes");
        self.conn
            .execute(
                "INSERT INTO maintenance (id, spec, created_ms, created_by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO NOTHING",
                params![raw.id, spec, now_ms, by],
            )
            .map(|n| n == 1)
            .map_err(|e| self.sqlite(e))
    }

    /// Deletes a window; `false` when there was none.
    pub fn remove_maintenance(&self, id: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM maintenance WHERE id = ?1", [id])
            .map(|n| n == 1)
            .map_err(|e| self.sqlite(e))
    }

    /// One window by id.
    pub fn maintenance(&self, id: &str) -> Result<Option<StoredWindow>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT spec, created_ms, created_by FROM maintenance WHERE id = ?1",
                [id],
                |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        row.map(|(spec, created_ms, created_by)| {
            self.decode_window(id, &spec, created_ms, created_by)
        })
        .transpose()
    }

    /// Every stored window, by id.
    pub fn maintenance_windows(&self) -> Result<Vec<StoredWindow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, spec, created_ms, created_by FROM maintenance ORDER BY id")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<(String, String, i64, String)>, _>>()
            .map_err(|e| self.sqlite(e))?;
        rows.into_iter()
            .map(|(id, spec, created_ms, created_by)| {
                self.decode_window(&id, &spec, created_ms, created_by)
            })
            .collect()
    }

    fn decode_window(
        &self,
        id: &str,
        spec: &str,
        created_ms: i64,
        created_by: String,
    ) -> Result<StoredWindow, StoreError> {
        let raw: RawWindow =
            serde_json::from_str(spec).map_err(|e| StoreError::BadMaintenance {
                path: self.path.clone(),
                id: id.to_string(),
                detail: e.to_string(),
            })?;
        Ok(StoredWindow {
            raw,
            created_ms,
            created_by,
        })
    }
}
