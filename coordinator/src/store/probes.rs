//! The probe registry's live side: the assignment last issued to each probe, last-seen times
//! and clock offsets written in batches, and the registry as `coordinator probe list` shows it.
//!
//! Last-seen and clock offsets are flushed periodically by the service from memory, many
//! probes in one transaction ([`Store::flush_probe_liveness`]), rather than one durable
//! transaction per heartbeat. Deliberately absent: the assignment computation itself
//! (`service::assign`, pure) and ingest (`Store::ingest`).

use rusqlite::params;

use super::{Store, StoreError};

/// The assignment last issued to a probe, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAssignment {
    /// The probe.
    pub probe_id: String,
    /// Its version; a probe's versions only ever rise.
    pub version: u64,
    /// Digest of the content (slot, slots, checks): equal digests mean an unchanged assignment.
    pub digest: String,
    /// Check ids of this assignment.
    pub checks: Vec<String>,
    /// Check ids of the assignment before it (empty for the first): results of those are still
    /// accepted, for a probe that ran them until the new assignment reached it.
    pub prev_checks: Vec<String>,
}

/// A probe's row as `coordinator probe list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeListing {
    /// Its id.
    pub probe_id: String,
    /// Its region.
    pub region: String,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// When it was last heard from (as of the service's last flush).
    pub last_seen_ms: Option<i64>,
    /// How far its clock is ahead of the coordinator's, from the last ping round trips.
    pub clock_offset_ms: Option<f64>,
    /// Version of its current assignment, if one was issued.
    pub assignment_version: Option<u64>,
}

/// Check ids are letters, digits, `-`, `_` and `.`: a newline separates them safely.
fn join(ids: &[String]) -> String {
    ids.join("\n")
}

fn split(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Store {
    /// Every issued assignment.
    pub fn issued_assignments(&self) -> Result<Vec<IssuedAssignment>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT probe_id, version, digest, checks, prev_checks FROM assignments ORDER BY probe_id",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(IssuedAssignment {
                    probe_id: r.get(0)?,
                    version: u64::try_from(r.get::<_, i64>(1)?).unwrap_or_default(),
                    digest: r.get(2)?,
                    checks: split(&r.get::<_, String>(3)?),
                    prev_checks: split(&r.get::<_, String>(4)?),
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))
    }

    /// Records newly issued assignments in one transaction, before they are pushed: a version
    /// is never sent that a restart could hand out again for other content.
    pub fn save_assignments(
        &mut self,
        issued: &[IssuedAssignment],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO assignments (probe_id, version, digest, checks, prev_checks, issued_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (probe_id) DO UPDATE SET version = excluded.version,
                       digest = excluded.digest, checks = excluded.checks,
                       prev_checks = excluded.prev_checks, issued_ms = excluded.issued_ms",
                )
                .map_err(err)?;
            for a in issued {
                let version =
                    i64::try_from(a.version).map_err(|_| StoreError::SeqOutOfRange(a.version))?;
                upsert
                    .execute(params![
                        a.probe_id,
                        version,
                        a.digest,
                        join(&a.checks),
                        join(&a.prev_checks),
                        now_ms
                    ])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Writes last-seen times (never moving one backwards) and clock offsets of many probes in
    /// one transaction. `offset` `None` leaves the stored offset as it is.
    pub fn flush_probe_liveness(
        &mut self,
        rows: &[(String, Option<i64>, Option<f64>)],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE probes SET
                       last_seen_ms = CASE WHEN ?2 IS NULL THEN last_seen_ms
                                           ELSE max(coalesce(last_seen_ms, 0), ?2) END,
                       clock_offset_ms = coalesce(?3, clock_offset_ms)
                     WHERE probe_id = ?1",
                )
                .map_err(err)?;
            for (probe_id, seen, offset) in rows {
                update
                    .execute(params![probe_id, seen, offset])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Every probe with its liveness and assignment, by id.
    pub fn probe_listing(&self) -> Result<Vec<ProbeListing>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.probe_id, p.region, p.revoked_ms, p.last_seen_ms, p.clock_offset_ms, a.version
                 FROM probes p LEFT JOIN assignments a ON a.probe_id = p.probe_id
                 ORDER BY p.probe_id",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ProbeListing {
                    probe_id: r.get(0)?,
                    region: r.get(1)?,
                    revoked_ms: r.get(2)?,
                    last_seen_ms: r.get(3)?,
                    clock_offset_ms: r.get(4)?,
                    assignment_version: r
                        .get::<_, Option<i64>>(5)?
                        .and_then(|v| u64::try_from(v).ok()),
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_and_liveness_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.upsert_probe("p1", "eu-west", None, 1).unwrap();
        let a = IssuedAssignment {
            probe_id: "p1".into(),
            version: 3,
            digest: "d".into(),
            checks: vec!["web".into(), "dns".into()],
            prev_checks: vec![],
        };
        store
            .save_assignments(std::slice::from_ref(&a), 10)
            .unwrap();
        assert_eq!(store.issued_assignments().unwrap(), vec![a]);

        store
            .flush_probe_liveness(&[("p1".into(), Some(500), Some(5_000.0))])
            .unwrap();
        // An older last-seen never moves it back; no offset keeps the stored one.
        store
            .flush_probe_liveness(&[("p1".into(), Some(400), None)])
            .unwrap();
        let rows = store.probe_listing().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].last_seen_ms, Some(500));
        assert_eq!(rows[0].clock_offset_ms, Some(5_000.0));
        assert_eq!(rows[0].assignment_version, Some(3));
    }
}
