//! What the coordinator pushes and what it learns from live probes, over real QUIC on
//! 127.0.0.1 with a raw wire-codec client as the probe: assignments after `HelloAck` and on
//! every change, results refused outside the assignment (with the previous one's grace),
//! ping/pong clock offsets, commands, and silence. Every wait is bounded.

use meridian_shared::wire::{Assignment, BurstTag, Command, CommandDone, CommandKind, Pong};

use super::*;

/// An open raw session: the endpoint (kept alive), the streams and the decoder.
struct Session {
    _endpoint: quinn::Endpoint,
    tx: quinn::SendStream,
    rx: quinn::RecvStream,
    dec: FrameDecoder,
}

impl Session {
    async fn open(service: &Running, e: &Enrollment) -> Session {
        let cert = Some((e.files.cert.as_path(), e.files.key.as_path()));
        let (endpoint, streams, first) = raw_session(service.addr(), &e.files.ca, cert).await;
        assert!(
            matches!(first, Ok(CoordinatorMessage::HelloAck(_))),
            "{first:?}"
        );
        let (tx, rx, dec) = streams.unwrap();
        Session {
            _endpoint: endpoint,
            tx,
            rx,
            dec,
        }
    }

    async fn next(&mut self) -> CoordinatorMessage {
        next_msg(&mut self.rx, &mut self.dec).await.unwrap()
    }

    async fn assignment(&mut self) -> Assignment {
        match self.next().await {
            CoordinatorMessage::Assignment(a) => a,
            other => panic!("expected an Assignment, got {other:?}"),
        }
    }

    async fn command(&mut self) -> Command {
        match self.next().await {
            CoordinatorMessage::Command(c) => c,
            other => panic!("expected a Command, got {other:?}"),
        }
    }

    async fn send(&mut self, msg: &ProbeMessage) {
        self.tx
            .write_all(&wire::encode(msg).unwrap())
            .await
            .unwrap();
    }

    /// Sends one result per check id, sequences from `first`; returns the acknowledged seq.
    async fn results(&mut self, first: u64, checks: &[&str]) -> u64 {
        let results = checks
            .iter()
            .zip(first..)
            .map(|(check, seq)| {
                let mut r = result(seq, "x", "eu-west");
                r.check_id = CheckId::parse(check).unwrap();
                SequencedResult {
                    seq,
                    result: r,
                    burst: None,
                }
            })
            .collect();
        let batch = ResultBatch {
            first_seq: first,
            results,
        };
        self.send(&ProbeMessage::ResultBatch(batch)).await;
        match self.next().await {
            CoordinatorMessage::Ack(a) => a.up_to_seq,
            other => panic!("expected an Ack, got {other:?}"),
        }
    }
}

fn with_checks(ids: &[&str]) -> Arc<CoordinatorConfig> {
    let mut text = String::from("data_dir = \"data\"\n[listen]\nquic = \"127.0.0.1:0\"\n");
    text.push_str("[[target]]\nid = \"site\"\n");
    for id in ids {
        text.push_str(&format!(
            "[[target.http]]\nid = \"{id}\"\nurl = \"http://127.0.0.1:9/{id}\"\n"
        ));
    }
    targets(&text)
}

fn ids(a: &Assignment) -> Vec<String> {
    a.checks.iter().map(|c| c.id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_are_pushed_on_connect_and_on_every_change_and_enforced() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let mut s = Session::open(&service, &e).await;

    let a = s.assignment().await;
    assert_eq!((a.version, a.slot, a.slots), (1, 0, 1));
    assert_eq!(ids(&a), ["web"]);

    // A reload adding a check: a new version, pushed at once.
    let h = &service.handle;
    assert_eq!(h.reload(with_checks(&["web", "api"])).await.unwrap(), 1);
    let a = s.assignment().await;
    assert_eq!(a.version, 2);
    assert_eq!(ids(&a), ["web", "api"]);
    // The same again: nothing changes, nothing is sent.
    assert_eq!(h.reload(with_checks(&["web", "api"])).await.unwrap(), 0);

    // A check never assigned is refused and counted; the assigned ones are stored.
    assert_eq!(s.results(1, &["web", "stranger", "api"]).await, 3);
    let c = h.counters();
    assert_eq!(c.results_unassigned.load(Ordering::Relaxed), 1);
    assert_eq!(c.results_rejected.load(Ordering::Relaxed), 1);
    let seqs = |rows: Vec<(u64, CheckResult)>| rows.iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(seqs(stored(data.path(), &e.probe_id)), [1, 3]);

    // `web` removed: its in-flight results are still accepted (previous version's grace)...
    h.reload(with_checks(&["api"])).await.unwrap();
    assert_eq!(s.assignment().await.version, 3);
    assert_eq!(s.results(4, &["web"]).await, 4);
    assert_eq!(c.results_unassigned.load(Ordering::Relaxed), 1);
    // ...but not two versions later.
    h.reload(with_checks(&["api", "dns"])).await.unwrap();
    assert_eq!(s.assignment().await.version, 4);
    assert_eq!(s.results(5, &["web", "dns"]).await, 6);
    assert_eq!(c.results_unassigned.load(Ordering::Relaxed), 2);
    assert_eq!(seqs(stored(data.path(), &e.probe_id)), [1, 3, 4, 6]);

    // A second probe in the region: both get slots of 2, in probe-id order.
    let state2 = tempfile::tempdir().unwrap();
    let e2 = enroll_probe(&service, "eu-west", state2.path()).await;
    let a = s.assignment().await;
    assert_eq!((a.version, a.slots), (5, 2));
    let other = h.assignment(&e2.probe_id).unwrap();
    assert_eq!(a.slot, u32::from(e.probe_id > e2.probe_id));
    assert_eq!(other.slot, 1 - a.slot);
    // A probe elsewhere does not move them.
    let state3 = tempfile::tempdir().unwrap();
    let e3 = enroll_probe(&service, "us-east", state3.path()).await;
    assert_eq!(h.assignment(&e3.probe_id).map(|a| a.slots), Some(1));
    assert_eq!(h.assignment(&e.probe_id).map(|a| a.version), Some(5));

    // Revoking the second one closes the gap.
    h.revoke(&e2.probe_id).await.unwrap();
    let a = s.assignment().await;
    assert_eq!((a.version, a.slot, a.slots), (6, 0, 1));
    // Counted just after the write: the probe may read it first.
    wait_until("six assignments counted", || {
        c.assignments_sent.load(Ordering::Relaxed) == 6
    })
    .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_measure_a_skewed_clock_and_commands_are_answered() {
    let data = tempfile::tempdir().unwrap();
    let mut config = config();
    config.ping_interval = Duration::from_millis(300);
    config.flush_interval = Duration::from_secs(3600);
    let service = start_with(data.path(), "127.0.0.1:0".parse().unwrap(), config).await;
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let mut s = Session::open(&service, &e).await;
    s.assignment().await;

    // The periodic ping arrives unasked; this probe's clock runs 5 s ahead.
    let started = std::time::SystemTime::now();
    let ping = s.command().await;
    let CommandKind::Ping { ping_id, .. } = ping.kind else {
        panic!("expected a Ping, got {ping:?}");
    };
    assert_eq!(ping_id, ping.command_id);
    let skewed = now_ms() + 5_000;
    s.send(&ProbeMessage::Pong(Pong {
        ping_id,
        probe_recv_ms: skewed,
        probe_send_ms: skewed,
    }))
    .await;
    let h = service.handle.clone();
    let id = e.probe_id.clone();
    let offset = || {
        h.probe_states()
            .into_iter()
            .find(|p| p.probe_id == id)
            .and_then(|p| p.clock_offset_ms)
    };
    wait_until("a clock offset", || offset().is_some()).await;
    // The error is at most half the round trip, which took less than what the test waited.
    let bound = i64::try_from(started.elapsed().unwrap().as_millis()).unwrap() + 1;
    let measured = offset().unwrap();
    assert!(
        (measured - 5_000).abs() <= bound,
        "offset {measured} ms, expected 5000 ± {bound}"
    );
    assert_eq!(h.counters().pongs.load(Ordering::Relaxed), 1);

    // Stored by the flush, not before.
    let listing = |data: &Path| Store::open(data).unwrap().probe_listing().unwrap();
    assert_eq!(listing(data.path())[0].clock_offset_ms, None);
    assert_eq!(h.flush_liveness().await.unwrap(), 1);
    assert_eq!(
        listing(data.path())[0].clock_offset_ms,
        Some(measured as f64)
    );

    // A command by hand, answered (pings may interleave).
    let burst = CommandKind::Burst {
        check_id: CheckId::parse("web").unwrap(),
        runs: 3,
        tag: BurstTag { burst_id: 7 },
    };
    let command_id = h.send_command(&e.probe_id, burst.clone()).unwrap();
    let mut got = None;
    for _ in 0..20 {
        let c = s.command().await;
        if c.kind == burst {
            got = Some(c);
            break;
        }
    }
    assert_eq!(got.map(|c| c.command_id), Some(command_id));
    s.send(&ProbeMessage::CommandDone(CommandDone {
        command_id,
        error: None,
    }))
    .await;
    let c = h.counters();
    wait_until("the command done", || {
        c.commands_done.load(Ordering::Relaxed) == 1
    })
    .await;
    assert!(matches!(
        h.send_command("nobody", CommandKind::Reload),
        Err(ServiceError::NotConnected(_))
    ));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_stops_heartbeating_becomes_silent() {
    let data = tempfile::tempdir().unwrap();
    let mut config = config();
    config.heartbeat_interval = Duration::from_millis(200);
    config.flush_interval = Duration::from_secs(3600);
    let service = start_with(data.path(), "127.0.0.1:0".parse().unwrap(), config).await;
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let h = service.handle.clone();
    let me = |h: &ServiceHandle| {
        h.probe_states()
            .into_iter()
            .find(|p| p.probe_id == e.probe_id)
            .unwrap()
    };
    assert!(me(&h).silent, "never seen is silent");
    assert!(!me(&h).live);

    let mut s = Session::open(&service, &e).await;
    s.assignment().await;
    for i in 0..3 {
        s.send(&ProbeMessage::Heartbeat(Heartbeat { sent_ms: i }))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = h.counters();
    wait_until("heartbeats", || c.heartbeats.load(Ordering::Relaxed) == 3).await;
    let now = me(&h);
    assert!(now.live && !now.silent, "{now:?}");
    // Heartbeats are not written one by one: the store has nothing until the flush.
    let seen = |data: &Path| Store::open(data).unwrap().probe_listing().unwrap()[0].last_seen_ms;
    assert_eq!(seen(data.path()), None);

    // The probe goes quiet (the connection stays up): silent after two intervals.
    wait_until("silent", || me(&h).silent).await;
    assert!(me(&h).live);
    h.flush_liveness().await.unwrap();
    assert_eq!(seen(data.path()), me(&h).last_seen_ms);
    service.stop().await;
}
