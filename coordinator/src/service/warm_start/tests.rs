//! The replay on a real store: what it teaches, what it leaves out, and why.

use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckResult, Phases};
use meridian_shared::wire::{BurstTag, SequencedResult};

use super::*;
use crate::detect::{Params, ProbeInfo, RegionInfo, Topology};
use crate::store::incidents::{IncidentRecord, StoredState};

const MIN: i64 = 60_000;
/// 2026-01-05T00:00Z.
const T0: i64 = 1_767_571_200_000;

fn result(check: &str, started_ms: i64) -> CheckResult {
    CheckResult {
        // Whatever the payload claims, the replay sees the stored identity.
        probe_id: "someone-else".into(),
        region: "elsewhere".into(),
        check_id: CheckId::parse(check).unwrap(),
        scheduled_ms: started_ms,
        started_ms,
        phases: Phases {
            dns: Some(1_000),
            connect: Some(96_000),
            tls: Some(97_000),
            ttfb: Some(150_000),
            transfer: Some(300),
            total: 350_000,
        },
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: vec![],
    }
}

fn engine() -> Engine {
    let probes = [("me-south/1", "me-south"), ("eu-west/1", "eu-west")];
    Engine::new(
        Params::default(),
        Topology {
            regions: ["me-south", "eu-west"]
                .iter()
                .map(|id| RegionInfo {
                    id: (*id).to_string(),
                    corridors: Vec::new(),
                })
                .collect(),
            probes: probes
                .iter()
                .map(|(id, region)| ProbeInfo {
                    id: (*id).to_string(),
                    region: (*region).to_string(),
                    asn: None,
                })
                .collect(),
        },
    )
}

fn incident(id: u64, class: &str, regions: &[&str], probe: Option<&str>) -> IncidentRecord {
    IncidentRecord {
        id,
        class: class.into(),
        state: StoredState::Resolved,
        severity: "page".into(),
        regions: regions.iter().map(|r| (*r).to_string()).collect(),
        targets: vec!["www".into()],
        asns: Vec::new(),
        probe: probe.map(str::to_string),
        edge: None,
        onset_ms: T0 + 100 * MIN,
        detected_ms: T0 + 101 * MIN,
        ttd_ms: MIN,
        paged_ms: None,
        resolved_ms: Some(T0 + 109 * MIN + 30_000),
        explanation: String::new(),
        evidence: Vec::new(),
        timeline: Vec::new(),
        updated_ms: T0 + 110 * MIN,
        maintenance: Default::default(),
    }
}

/// Two probes, one result a minute each for three hours; `began` is when the new run began.
fn stored(dir: &std::path::Path, began: i64) -> Store {
    let mut store = Store::open(dir).unwrap();
    for (probe, region) in [("me-south/1", "me-south"), ("eu-west/1", "eu-west")] {
        store.upsert_probe(probe, region, None, T0).unwrap();
        let batch: Vec<(u64, CheckResult)> = (0..180)
            .map(|m| (m as u64 + 1, result("www", T0 + m * MIN)))
            .collect();
        // Received in good time, before the run began.
        store.ingest(probe, region, &batch, T0 + 180 * MIN).unwrap();
        // Five burst runs: never learnt.
        let bursts: Vec<SequencedResult> = (0..5)
            .map(|k| SequencedResult {
                seq: 1_000 + k,
                result: result("www", T0 + 50 * MIN + i64::try_from(k).unwrap() * 1_000),
                burst: Some(BurstTag { burst_id: 9 }),
            })
            .collect();
        store
            .ingest(probe, region, &bursts, T0 + 180 * MIN)
            .unwrap();
        // Three results that arrive after the run began: the live feed's, not the replay's.
        let late: Vec<(u64, CheckResult)> = (0..3)
            .map(|k| {
                (
                    2_000 + k,
                    result("www", T0 + 170 * MIN + i64::try_from(k).unwrap()),
                )
            })
            .collect();
        store.ingest(probe, region, &late, began + 1).unwrap();
    }
    store
}

#[test]
fn replay_learns_scheduled_history_received_before_the_run_began() {
    let dir = tempfile::tempdir().unwrap();
    let began = T0 + 181 * MIN;
    let store = stored(dir.path(), began);
    let mut engine = engine();
    let r = replay(&mut engine, &store.reader().unwrap(), began).unwrap();
    assert_eq!(
        r,
        Replayed {
            learnt: 360,
            excluded: 0,
            undecodable: 0,
            since_ms: began - window_ms(&engine),
        }
    );
    // A week and an hour at 60 s.
    assert_eq!(window_ms(&engine), (7 * 24 + 1) * 60 * MIN);
}

#[test]
fn replay_leaves_out_incident_spans_but_not_monitoring_faults() {
    let dir = tempfile::tempdir().unwrap();
    let began = T0 + 181 * MIN;
    let store = stored(dir.path(), began);
    // A regional incident in me-south from minute 100 to 109:30: ten samples of its probe.
    store
        .upsert_incident(&incident(1, "regional-network", &["me-south"], None))
        .unwrap();
    // A region-silent span in eu-west: the samples are sound, nothing left out.
    store
        .upsert_incident(&incident(2, "region-silent", &["eu-west"], None))
        .unwrap();
    // A probe fault of eu-west/1 left open by a crash: everything from minute 150 on.
    let mut fault = incident(3, "probe-fault", &["eu-west"], Some("eu-west/1"));
    fault.onset_ms = T0 + 150 * MIN;
    fault.resolved_ms = None;
    fault.state = StoredState::Interrupted;
    store.upsert_incident(&fault).unwrap();
    let mut engine = engine();
    let r = replay(&mut engine, &store.reader().unwrap(), began).unwrap();
    assert_eq!((r.learnt, r.excluded), (360 - 10 - 30, 10 + 30));
}

#[test]
fn replay_starts_at_the_window_the_baselines_remember() {
    let dir = tempfile::tempdir().unwrap();
    // The run began a week and three hours after the first sample: the window (a week and an
    // hour) starts two hours in, so the first 120 minutes of each probe are too old.
    let began = T0 + (7 * 24 + 3) * 60 * MIN;
    let store = stored(dir.path(), began);
    let mut engine = engine();
    let since = began - window_ms(&engine);
    assert_eq!(since, T0 + 120 * MIN);
    let inside = (0..180).filter(|m| T0 + m * MIN >= since).count() as u64;
    let r = replay(&mut engine, &store.reader().unwrap(), began).unwrap();
    assert_eq!(r.learnt, 2 * inside);
    assert_eq!(inside, 60);
}

#[test]
fn a_reader_refuses_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Store::open_reader(dir.path()).is_err());
}
