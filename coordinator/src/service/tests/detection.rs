//! Live detection: what the service feeds the engine (a recording fake, then the real engine
//! telling burst runs from scheduled ones), and over real QUIC on 127.0.0.1 with raw
//! wire-codec probes: failing results order a burst from the live probes (a probe without a
//! session skipped and counted), and the incident is stored. Every wait is bounded.

use meridian_shared::result::{CheckError, ErrorClass};
use meridian_shared::wire::{BurstTag, CommandKind};

use super::super::detection::{self, Observation};
use super::*;
use crate::detect::{Action, Engine, Params, ProbeInfo, RegionInfo, Topology};
use crate::drafts::Stage;
use crate::sim::run::Detector;
use crate::store::incidents::{IncidentRecord, StoredState};
use crate::store::messages::MessageState;

/// What a detector was handed, in order.
#[derive(Debug, Default)]
struct Recorder {
    calls: Vec<String>,
}

impl Detector for Recorder {
    fn observe(&mut self, result: &CheckResult, burst: bool, received_ms: i64) {
        self.calls.push(format!(
            "observe {} {} burst={burst} received={received_ms}",
            result.probe_id, result.started_ms
        ));
    }
    fn heartbeat(&mut self, probe_id: &str, at_ms: i64) {
        self.calls.push(format!("heartbeat {probe_id} {at_ms}"));
    }
    fn clock_offset(&mut self, probe_id: &str, offset_ms: i64, at_ms: i64) {
        self.calls
            .push(format!("clock {probe_id} {offset_ms} {at_ms}"));
    }
    fn tick(&mut self, _now_ms: i64) -> Vec<Action> {
        Vec::new()
    }
}

/// A result of `probe_id` for `web` at `at_ms` that failed with an HTTP status.
fn failing(seq: u64, probe_id: &str, at_ms: i64) -> CheckResult {
    let mut r = result(seq, probe_id, "eu-west");
    r.scheduled_ms = at_ms;
    r.started_ms = at_ms;
    r.error = Some(CheckError {
        class: ErrorClass::HttpStatus,
        message: "status 503 is not in 200-399".into(),
    });
    r
}

fn sequenced(seq: u64, result: CheckResult, burst: Option<u64>) -> SequencedResult {
    SequencedResult {
        seq,
        result,
        burst: burst.map(|burst_id| BurstTag { burst_id }),
    }
}

#[test]
fn stored_results_reach_the_detector_with_their_burst_flag_and_arrival_time() {
    let mut d = Recorder::default();
    let stored = Observation::Stored {
        records: vec![
            sequenced(1, failing(1, "p1", 1_000), None),
            sequenced(2, failing(2, "p1", 2_000), Some(77)),
        ],
        received_ms: 2_500,
    };
    assert!(detection::feed(&mut d, &stored), "results: tick after");
    let heard = Observation::Heard {
        probe_id: "p1".into(),
        at_ms: 3_000,
    };
    assert!(!detection::feed(&mut d, &heard));
    let clock = Observation::Clock {
        probe_id: "p1".into(),
        offset_ms: -40,
        at_ms: 4_000,
    };
    assert!(!detection::feed(&mut d, &clock));
    assert_eq!(
        d.calls,
        [
            "observe p1 1000 burst=false received=2500",
            "observe p1 2000 burst=true received=2500",
            "heartbeat p1 3000",
            "clock p1 -40 4000",
        ]
    );
}

#[test]
fn the_engine_suspects_on_a_scheduled_failure_and_not_on_a_burst_run() {
    let topology = Topology {
        regions: vec![RegionInfo {
            id: "eu-west".into(),
            corridors: Vec::new(),
        }],
        probes: ["p1", "p2"]
            .map(|id| ProbeInfo {
                id: id.into(),
                region: "eu-west".into(),
                asn: None,
            })
            .into(),
    };
    let now = 1_767_571_200_000;
    let bursts = |tag: Option<u64>| {
        let mut engine = Engine::new(Params::default(), topology.clone());
        let stored = Observation::Stored {
            records: vec![sequenced(1, failing(1, "p1", now), tag)],
            received_ms: now + 200,
        };
        detection::feed(&mut engine, &stored);
        engine
            .tick(now + 300)
            .into_iter()
            .filter_map(|a| match a {
                Action::Burst(order) => Some(order),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let scheduled = bursts(None);
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    assert_eq!(scheduled[0].check_id, "web");
    assert_eq!(scheduled[0].probe_ids, ["p1", "p2"]);
    assert!(
        bursts(Some(9)).is_empty(),
        "a burst run confirms; it does not raise suspicion by itself"
    );
}

/// A raw session: HelloAck and the first assignment read.
struct Probe {
    _endpoint: quinn::Endpoint,
    tx: quinn::SendStream,
    rx: quinn::RecvStream,
    dec: FrameDecoder,
}

impl Probe {
    async fn open(service: &Running, e: &Enrollment) -> Probe {
        let cert = Some((e.files.cert.as_path(), e.files.key.as_path()));
        let (endpoint, streams, first) = raw_session(service.addr(), &e.files.ca, cert).await;
        assert!(
            matches!(first, Ok(CoordinatorMessage::HelloAck(_))),
            "{first:?}"
        );
        let (tx, rx, dec) = streams.unwrap();
        let mut p = Probe {
            _endpoint: endpoint,
            tx,
            rx,
            dec,
        };
        assert!(matches!(p.next().await, CoordinatorMessage::Assignment(_)));
        p
    }

    async fn next(&mut self) -> CoordinatorMessage {
        next_msg(&mut self.rx, &mut self.dec).await.unwrap()
    }

    /// Sends one batch and waits for its Ack (commands that come first are returned).
    async fn send(&mut self, records: Vec<SequencedResult>) -> Vec<CommandKind> {
        let batch = ResultBatch {
            first_seq: records[0].seq,
            results: records,
        };
        let frame = wire::encode(&ProbeMessage::ResultBatch(batch)).unwrap();
        self.tx.write_all(&frame).await.unwrap();
        let mut commands = Vec::new();
        loop {
            match self.next().await {
                CoordinatorMessage::Ack(_) => return commands,
                CoordinatorMessage::Command(c) => commands.push(c.kind),
                other => panic!("expected an Ack, got {other:?}"),
            }
        }
    }

    /// The next command's kind.
    async fn command(&mut self) -> CommandKind {
        match self.next().await {
            CoordinatorMessage::Command(c) => c.kind,
            other => panic!("expected a Command, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_results_order_a_burst_from_live_probes_and_the_incident_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let e1 = enroll_probe(&service, "eu-west", dirs[0].path()).await;
    let e2 = enroll_probe(&service, "eu-west", dirs[1].path()).await;
    // Enrolled, never connected: a burst that names it skips it.
    let _far = enroll_probe(&service, "us-east", dirs[2].path()).await;
    let mut p1 = Probe::open(&service, &e1).await;
    let mut p2 = Probe::open(&service, &e2).await;
    let h = service.handle.clone();

    // One failing scheduled result: the region is suspected, a burst ordered at once.
    let now = now_ms();
    let mut commands = p1
        .send(vec![sequenced(1, failing(1, "x", now), None)])
        .await;
    while !commands
        .iter()
        .any(|c| matches!(c, CommandKind::Burst { .. }))
    {
        match p1.next().await {
            CoordinatorMessage::Command(c) => commands.push(c.kind),
            CoordinatorMessage::Assignment(_) => {}
            other => panic!("expected a Burst, got {other:?}"),
        }
    }
    let Some(CommandKind::Burst {
        check_id,
        runs,
        tag,
    }) = commands
        .into_iter()
        .find(|c| matches!(c, CommandKind::Burst { .. }))
    else {
        unreachable!("found above");
    };
    assert_eq!((check_id.as_str(), runs), ("web", 3));
    let mut second = p2.command().await;
    while matches!(second, CommandKind::Ping { .. }) {
        second = p2.command().await;
    }
    assert_eq!(
        second,
        CommandKind::Burst {
            check_id: check_id.clone(),
            runs,
            tag
        },
        "one burst id for the whole order"
    );
    let c = h.counters();
    wait_until("the burst counted", || {
        c.burst_commands.load(Ordering::Relaxed) == 2
    })
    .await;
    assert_eq!(c.bursts_ordered.load(Ordering::Relaxed), 1);
    assert_eq!(
        c.burst_probes_skipped.load(Ordering::Relaxed),
        1,
        "the us-east probe has no session"
    );

    // The burst's runs fail too, and the second probe's schedule: a quorum, an incident.
    let at = now_ms();
    p1.send(
        (0..3)
            .map(|i| {
                sequenced(
                    2 + i,
                    failing(2 + i, "x", at + i as i64),
                    Some(tag.burst_id),
                )
            })
            .collect(),
    )
    .await;
    p2.send(vec![sequenced(1, failing(1, "x", at), None)]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let incident: IncidentRecord = loop {
        let open = h.with_store(|s| s.incidents(true)).await.unwrap().unwrap();
        if let Some(i) = open.into_iter().next() {
            break i;
        }
        assert!(tokio::time::Instant::now() < deadline, "no incident stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(incident.targets, ["web"]);
    assert_eq!(incident.regions, ["eu-west"]);
    assert_eq!(incident.state, StoredState::Paged, "{incident:?}");
    assert!(!incident.explanation.is_empty());
    assert!(c.incident_transitions.load(Ordering::Relaxed) >= 1);
    // A site incident comes with its member drafts, waiting for a person: investigating and
    // identified while it is open, scoped with the region's member-facing name.
    let id = incident.id;
    let messages = h
        .with_store(move |s| s.messages(Some(id)))
        .await
        .unwrap()
        .unwrap();
    let stages: Vec<(Stage, MessageState)> = messages.iter().map(|m| (m.stage, m.state)).collect();
    assert_eq!(
        stages,
        [
            (Stage::Investigating, MessageState::Draft),
            (Stage::Identified, MessageState::Draft)
        ],
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .all(|m| m.regions == ["eu-west"] && m.body.contains("Ireland")),
        "{messages:#?}"
    );
    // The burst runs are stored with their tag.
    let tags: Vec<Option<u64>> = Store::open(data.path())
        .unwrap()
        .sequenced_results(&e1.probe_id)
        .unwrap()
        .iter()
        .map(|r| r.burst.map(|b| b.burst_id))
        .collect();
    assert_eq!(
        tags,
        [
            None,
            Some(tag.burst_id),
            Some(tag.burst_id),
            Some(tag.burst_id)
        ]
    );
    service.stop().await;

    // A restart begins a new run: the open incident is interrupted, ids go on from it.
    let mut store = Store::open(data.path()).unwrap();
    assert_eq!(store.begin_detection(now_ms()).unwrap(), (incident.id, 1));
    assert_eq!(
        store.incident(incident.id).unwrap().map(|i| i.state),
        Some(StoredState::Interrupted)
    );
}
