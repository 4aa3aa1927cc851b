//! The probe registry's live side: the assignment last issued to each probe, last-seen times
//! and clock offsets written in batches, each probe's network as last learnt, and the registry
//! as `coordinator probe list` shows it.
//!
//! Last-seen and clock offsets are flushed periodically by the service from memory, many
//! probes in one transaction ([`Store::flush_probe_liveness`]), rather than one durable
//! transaction per heartbeat. Deliberately absent: the assignment computation itself
//! (`service::assign`, pure) and ingest (`Store::ingest`).

use std::collections::HashMap;
use std::net::IpAddr;

use rusqlite::params;

use super::{Store, StoreError};
use crate::geoip::Network;

/// The network columns of `probes`, in the order [`network_from_row`] reads them.
const NETWORK_COLUMNS: &str =
    "p.network_ms, p.address, p.asn, p.as_org, p.country, p.latitude, p.longitude, p.far_km";

/// A probe's network from the [`NETWORK_COLUMNS`] starting at column `at`; `None` when it was
/// never learnt.
fn network_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<ProbeNetwork>> {
    let Some(learnt_ms) = r.get::<_, Option<i64>>(at)? else {
        return Ok(None);
    };
    let location = match (
        r.get::<_, Option<f64>>(at + 5)?,
        r.get::<_, Option<f64>>(at + 6)?,
    ) {
        (Some(lat), Some(lon)) => Some((lat, lon)),
        _ => None,
    };
    Ok(Some(ProbeNetwork {
        // An address this build cannot parse is shown as unknown rather than failing a listing.
        address: r
            .get::<_, Option<String>>(at + 1)?
            .and_then(|a| a.parse().ok()),
        network: Network {
            asn: r
                .get::<_, Option<i64>>(at + 2)?
                .and_then(|a| u32::try_from(a).ok()),
            as_org: r.get(at + 3)?,
            country: r.get(at + 4)?,
            location,
        },
        far_km: r.get(at + 7)?,
        learnt_ms,
    }))
}

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
    /// Its network as last learnt, if it ever connected (or was pinned).
    pub network: Option<ProbeNetwork>,
}

/// A probe's network as stored: learnt at its last connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeNetwork {
    /// The address it connected from, as the coordinator saw it.
    pub address: Option<IpAddr>,
    /// Its network (GeoIP, the operator's pin on top).
    pub network: Network,
    /// Set when the address geolocates this many km from its region (over the flag limit).
    pub far_km: Option<f64>,
    /// When it was learnt, Unix ms.
    pub learnt_ms: i64,
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

    /// Records the network a probe was last seen on (a probe not registered is ignored).
    pub fn record_probe_network(
        &self,
        probe_id: &str,
        network: &ProbeNetwork,
    ) -> Result<(), StoreError> {
        let n = &network.network;
        self.conn
            .prepare_cached(
                "UPDATE probes SET network_ms = ?2, address = ?3, asn = ?4, as_org = ?5,
                   country = ?6, latitude = ?7, longitude = ?8, far_km = ?9
                 WHERE probe_id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    probe_id,
                    network.learnt_ms,
                    network.address.map(|a| a.to_string()),
                    n.asn,
                    n.as_org,
                    n.country,
                    n.location.map(|l| l.0),
                    n.location.map(|l| l.1),
                    network.far_km,
                ])
            })
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// The stored network of every probe that has one, by id.
    pub fn probe_networks(&self) -> Result<HashMap<String, ProbeNetwork>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT p.probe_id, {NETWORK_COLUMNS} FROM probes p WHERE p.network_ms IS NOT NULL"
            ))
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, network_from_row(r, 1)?))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, net) = row.map_err(|e| self.sqlite(e))?;
            if let Some(net) = net {
                out.insert(id, net);
            }
        }
        Ok(out)
    }

    /// Every probe with its liveness, assignment and network, by id.
    pub fn probe_listing(&self) -> Result<Vec<ProbeListing>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT p.probe_id, p.region, p.revoked_ms, p.last_seen_ms, p.clock_offset_ms,
                   a.version, {NETWORK_COLUMNS}
                 FROM probes p LEFT JOIN assignments a ON a.probe_id = p.probe_id
                 ORDER BY p.probe_id"
            ))
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
                    network: network_from_row(r, 6)?,
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
