//! Incidents as stored: the `incidents` table (schema v6), its row type [`IncidentRecord`]
//! (also what `coordinator incidents --json` prints, one object per line), and the conversion
//! from the engine's [`Incident`].
//!
//! **Ids.** The engine numbers its incidents from 1 in every run, so the stored id is the
//! engine's id plus a *base*: the highest id stored when the run began
//! ([`Store::begin_detection`]). The table is the counter: nothing else writes it, rows are
//! never deleted, and an incident the engine opened but a crash kept from being stored leaves a
//! gap, never a collision. The id is known without a round trip to the store, so the log line
//! of a transition carries the id the CLI shows.
//!
//! **Runs.** The engine's state lives in memory: an incident still open when the coordinator
//! stopped can no longer move, so the next run marks it `interrupted` (its `resolved_ms` stays
//! empty: nobody saw it end). If the fault persists, the new run detects it again as a new
//! incident.
//!
//! Regions, targets, ASNs, evidence and the timeline are JSON text. The DTOs here derive
//! `Serialize` (they are the CLI's and, later, the API's output); the engine's types do not.

use std::time::Duration;

use rusqlite::{OptionalExtension as _, params};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::detect::{Incident, IncidentState, RegionEvidence, TimelineEntry};

/// Where a stored incident is in its life: the engine's [`IncidentState`], and `interrupted`
/// for one left open by an earlier run of the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredState {
    /// Confirmed by a quorum, not (yet) paged.
    Confirmed,
    /// An SRE was paged.
    Paged,
    /// Resolved.
    Resolved,
    /// Open when the coordinator stopped; the run that tracked it is gone.
    Interrupted,
}

impl StoredState {
    /// Lower-case name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredState::Confirmed => "confirmed",
            StoredState::Paged => "paged",
            StoredState::Resolved => "resolved",
            StoredState::Interrupted => "interrupted",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<StoredState> {
        [
            StoredState::Confirmed,
            StoredState::Paged,
            StoredState::Resolved,
            StoredState::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Still open (confirmed or paged).
    pub fn is_open(self) -> bool {
        matches!(self, StoredState::Confirmed | StoredState::Paged)
    }
}

impl From<IncidentState> for StoredState {
    fn from(s: IncidentState) -> StoredState {
        match s {
            IncidentState::Confirmed => StoredState::Confirmed,
            IncidentState::Paged => StoredState::Paged,
            IncidentState::Resolved => StoredState::Resolved,
        }
    }
}

/// One region's measurements behind an incident (the engine's [`RegionEvidence`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The region.
    pub region: String,
    /// Healthy probes whose samples were judged.
    pub probes: usize,
    /// Of those, how many were affected.
    pub affected: usize,
    /// Median round-trip (connect) baseline, ms.
    pub connect_base_ms: Option<f64>,
    /// Median change of the round trip, ms.
    pub connect_delta_ms: Option<f64>,
    /// Median TLS handshake baseline, ms.
    pub tls_base_ms: Option<f64>,
    /// Median change of the TLS handshake, ms.
    pub tls_delta_ms: Option<f64>,
    /// Median server-time baseline, ms.
    pub server_base_ms: Option<f64>,
    /// Median change of server time, ms.
    pub server_delta_ms: Option<f64>,
    /// Failed samples among the judged ones.
    pub failures: usize,
    /// The most common error class of the failures.
    pub failure_class: Option<String>,
}

impl From<&RegionEvidence> for EvidenceRecord {
    fn from(e: &RegionEvidence) -> EvidenceRecord {
        EvidenceRecord {
            region: e.region.clone(),
            probes: e.probes,
            affected: e.affected,
            connect_base_ms: e.connect_base_ms,
            connect_delta_ms: e.connect_delta_ms,
            tls_base_ms: e.tls_base_ms,
            tls_delta_ms: e.tls_delta_ms,
            server_base_ms: e.server_base_ms,
            server_delta_ms: e.server_delta_ms,
            failures: e.failures,
            failure_class: e.failure_class.clone(),
        }
    }
}

/// One line of an incident's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineRecord {
    /// When, Unix ms (coordinator clock).
    pub at_ms: i64,
    /// What happened.
    pub what: String,
}

impl From<&TimelineEntry> for TimelineRecord {
    fn from(t: &TimelineEntry) -> TimelineRecord {
        TimelineRecord {
            at_ms: t.at_ms,
            what: t.what.clone(),
        }
    }
}

/// One stored incident, as `coordinator incidents --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    /// Stored id: unique across the coordinator's runs (see the module docs).
    pub id: u64,
    /// Class, kebab-case as in `SCENARIOS.md` (`origin-down`, ...).
    pub class: String,
    /// Where it is in its life.
    pub state: StoredState,
    /// `info`, `ticket` or `page`.
    pub severity: String,
    /// Regions affected, sorted.
    pub regions: Vec<String>,
    /// Targets (check ids) affected, sorted.
    pub targets: Vec<String>,
    /// Networks affected, sorted.
    pub asns: Vec<u32>,
    /// The probe concerned (probe-fault, clock-skew).
    pub probe: Option<String>,
    /// The CDN edge concerned (cdn-edge).
    pub edge: Option<String>,
    /// Estimated start, Unix ms.
    pub onset_ms: i64,
    /// Confirmation by a quorum, Unix ms.
    pub detected_ms: i64,
    /// Time to detect: detection minus onset, ms.
    pub ttd_ms: i64,
    /// When it paged, Unix ms.
    pub paged_ms: Option<i64>,
    /// When it resolved, Unix ms.
    pub resolved_ms: Option<i64>,
    /// Plain words with the arithmetic.
    pub explanation: String,
    /// Per-region evidence at the latest confirmation.
    pub evidence: Vec<EvidenceRecord>,
    /// History, oldest first.
    pub timeline: Vec<TimelineRecord>,
    /// When the row was last written, Unix ms.
    pub updated_ms: i64,
    /// What maintenance windows had to do with it (empty for most).
    #[serde(default, skip_serializing_if = "MaintenanceRecord::is_empty")]
    pub maintenance: MaintenanceRecord,
}

/// What maintenance windows ([`crate::maintenance`]) had to do with an incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRecord {
    /// The windows that were active over part of its scope while it was open, in the order
    /// first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<MaintenanceNote>,
    /// The window whose page it is holding back (its whole scope under maintenance, never
    /// paged out); `None` once a page went out, or when none applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    /// When its page was held back first, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_ms: Option<i64>,
    /// When a held-back page went out after all (the window ended with the incident still
    /// open), Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_ms: Option<i64>,
}

impl MaintenanceRecord {
    /// Nothing to say.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.suppressed_by.is_none() && self.suppressed_ms.is_none()
    }

    /// Whether its page is being held back.
    pub fn is_suppressed(&self) -> bool {
        self.suppressed_by.is_some()
    }
}

/// One maintenance window an incident overlapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceNote {
    /// The window's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// When the incident was first seen inside it, Unix ms.
    pub since_ms: i64,
}

impl IncidentRecord {
    /// The engine's incident under stored id `id`, as of `now_ms`.
    pub fn from_engine(id: u64, inc: &Incident, now_ms: i64) -> IncidentRecord {
        IncidentRecord {
            id,
            class: inc.class.as_str().to_owned(),
            state: inc.state.into(),
            severity: inc.severity.as_str().to_owned(),
            regions: inc.regions.iter().cloned().collect(),
            targets: inc.targets.iter().cloned().collect(),
            asns: inc.asns.iter().copied().collect(),
            probe: inc.probe.clone(),
            edge: inc.edge.clone(),
            onset_ms: inc.onset_ms,
            detected_ms: inc.detected_ms,
            ttd_ms: inc.time_to_detect_ms(),
            paged_ms: inc.paged_ms,
            resolved_ms: inc.resolved_ms,
            explanation: inc.explanation.clone(),
            evidence: inc.evidence.iter().map(EvidenceRecord::from).collect(),
            timeline: inc.timeline.iter().map(TimelineRecord::from).collect(),
            updated_ms: now_ms,
            maintenance: MaintenanceRecord::default(),
        }
    }
}

/// JSON text of plain data (strings, integers, optional floats, nested records of those).
fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("records of strings and numbers always serialize")
}

/// A row as SQLite holds it, before the JSON columns are parsed.
struct RawRow {
    id: i64,
    class: String,
    state: String,
    severity: String,
    regions: String,
    targets: String,
    asns: String,
    probe: Option<String>,
    edge: Option<String>,
    onset_ms: i64,
    detected_ms: i64,
    paged_ms: Option<i64>,
    resolved_ms: Option<i64>,
    explanation: String,
    evidence: String,
    timeline: String,
    updated_ms: i64,
    maintenance: String,
}

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        class: r.get(1)?,
        state: r.get(2)?,
        severity: r.get(3)?,
        regions: r.get(4)?,
        targets: r.get(5)?,
        asns: r.get(6)?,
        probe: r.get(7)?,
        edge: r.get(8)?,
        onset_ms: r.get(9)?,
        detected_ms: r.get(10)?,
        paged_ms: r.get(11)?,
        resolved_ms: r.get(12)?,
        explanation: r.get(13)?,
        evidence: r.get(14)?,
        timeline: r.get(15)?,
        updated_ms: r.get(16)?,
        maintenance: r.get(17)?,
    })
}

/// The columns [`raw_row`] reads, in order.
const COLUMNS: &str = "id, class, state, severity, regions, targets, asns, probe, edge, onset_ms,
    detected_ms, paged_ms, resolved_ms, explanation, evidence, timeline, updated_ms, maintenance";

impl Store {
    /// Begins a detection run at `now_ms`: incidents left open by an earlier run are marked
    /// `interrupted`. Returns the id base of the new run (the highest stored id; the engine's
    /// incident `n` is stored as `base + n`) and how many incidents were interrupted.
    pub fn begin_detection(&mut self, now_ms: i64) -> Result<(u64, usize), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let interrupted = tx
            .execute(
                "UPDATE incidents SET state = 'interrupted', updated_ms = ?1
                 WHERE state IN ('confirmed', 'paged')",
                [now_ms],
            )
            .map_err(err)?;
        let base: Option<i64> = tx
            .query_row("SELECT max(id) FROM incidents", [], |r| r.get(0))
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok((
            base.and_then(|b| u64::try_from(b).ok()).unwrap_or(0),
            interrupted,
        ))
    }

    /// Deletes closed incidents (resolved or interrupted) last written before
    /// `now_ms - retention`; returns how many. The incident with the highest id is kept
    /// whatever its age: the next run's ids continue from it, so no id is ever reused (a
    /// status page or a post-mortem may still link to it).
    pub fn prune_incidents(&self, now_ms: i64, retention: Duration) -> Result<usize, StoreError> {
        let cutoff = now_ms - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "DELETE FROM incidents
                 WHERE state IN ('resolved', 'interrupted') AND updated_ms < ?1
                   AND id < (SELECT max(id) FROM incidents)",
                [cutoff],
            )
            .and_then(|pruned| {
                // Their member messages and notes go with them.
                self.conn
                    .execute(
                        "DELETE FROM messages WHERE incident_id NOT IN (SELECT id FROM incidents)",
                        [],
                    )
                    .and_then(|_| {
                        self.conn.execute(
                            "DELETE FROM incident_notes
                             WHERE incident_id NOT IN (SELECT id FROM incidents)",
                            [],
                        )
                    })
                    .map(|_| pruned)
            })
            .map_err(|e| self.sqlite(e))
    }

    /// Writes an incident: inserted the first time, replaced on every later transition.
    pub fn upsert_incident(&self, inc: &IncidentRecord) -> Result<(), StoreError> {
        let id = i64::try_from(inc.id).map_err(|_| StoreError::IncidentIdOutOfRange(inc.id))?;
        self.conn
            .prepare_cached(
                "INSERT INTO incidents (id, class, state, severity, regions, targets, asns, probe,
                   edge, onset_ms, detected_ms, paged_ms, resolved_ms, explanation, evidence,
                   timeline, updated_ms, maintenance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                   ?18)
                 ON CONFLICT (id) DO UPDATE SET class = excluded.class, state = excluded.state,
                   severity = excluded.severity, regions = excluded.regions,
                   targets = excluded.targets, asns = excluded.asns, probe = excluded.probe,
                   edge = excluded.edge, onset_ms = excluded.onset_ms,
                   detected_ms = excluded.detected_ms, paged_ms = excluded.paged_ms,
                   resolved_ms = excluded.resolved_ms, explanation = excluded.explanation,
                   evidence = excluded.evidence, timeline = excluded.timeline,
                   updated_ms = excluded.updated_ms, maintenance = excluded.maintenance",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id,
                    inc.class,
                    inc.state.as_str(),
                    inc.severity,
                    json(&inc.regions),
                    json(&inc.targets),
                    json(&inc.asns),
                    inc.probe,
                    inc.edge,
                    inc.onset_ms,
                    inc.detected_ms,
                    inc.paged_ms,
                    inc.resolved_ms,
                    inc.explanation,
                    json(&inc.evidence),
                    json(&inc.timeline),
                    inc.updated_ms,
                    json(&inc.maintenance),
                ])
            })
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// One stored incident by id.
    pub fn incident(&self, id: u64) -> Result<Option<IncidentRecord>, StoreError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1");
        let row = self
            .conn
            .query_row(&sql, [id], raw_row)
            .optional()
            .map_err(|e| self.sqlite(e))?;
        row.map(|r| self.decode(r)).transpose()
    }

    /// Stored incidents by id (detection order); only confirmed and paged ones when
    /// `open_only`.
    pub fn incidents(&self, open_only: bool) -> Result<Vec<IncidentRecord>, StoreError> {
        let filter = if open_only {
            "WHERE state IN ('confirmed', 'paged')"
        } else {
            ""
        };
        let sql = format!("SELECT {COLUMNS} FROM incidents {filter} ORDER BY id");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], raw_row)
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    fn decode(&self, r: RawRow) -> Result<IncidentRecord, StoreError> {
        let bad = |column: &'static str, detail: String| StoreError::BadIncident {
            path: self.path.clone(),
            id: r.id,
            column,
            detail,
        };
        fn parse<T: serde::de::DeserializeOwned>(
            text: &str,
            column: &'static str,
            bad: &dyn Fn(&'static str, String) -> StoreError,
        ) -> Result<T, StoreError> {
            serde_json::from_str(text).map_err(|e| bad(column, e.to_string()))
        }
        Ok(IncidentRecord {
            id: u64::try_from(r.id).map_err(|_| bad("id", "negative".into()))?,
            state: StoredState::parse(&r.state)
                .ok_or_else(|| bad("state", format!("unknown state {:?}", r.state)))?,
            regions: parse(&r.regions, "regions", &bad)?,
            targets: parse(&r.targets, "targets", &bad)?,
            asns: parse(&r.asns, "asns", &bad)?,
            evidence: parse(&r.evidence, "evidence", &bad)?,
            timeline: parse(&r.timeline, "timeline", &bad)?,
            maintenance: parse(&r.maintenance, "maintenance", &bad)?,
            class: r.class,
            severity: r.severity,
            probe: r.probe,
            edge: r.edge,
            onset_ms: r.onset_ms,
            detected_ms: r.detected_ms,
            ttd_ms: r.detected_ms - r.onset_ms,
            paged_ms: r.paged_ms,
            resolved_ms: r.resolved_ms,
            explanation: r.explanation,
            updated_ms: r.updated_ms,
        })
    }
}
