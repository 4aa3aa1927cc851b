//! The probe→coordinator transport end to end, with the real `coordinator` and `probe`
//! binaries on 127.0.0.1: token, enrolment, the coordinator's assignment run by the probe,
//! results stored under the certificate's identity; `kill -9` of the coordinator mid-upload
//! and a restart on the same data directory and port, after which every result is stored
//! exactly once; a network partition (a [`Relay`] cut with the coordinator up) past the QUIC
//! idle timeout, after which the same holds and the results of the cut keep their times; and a
//! probe revoked with `coordinator probe revoke`.
//!
//! The store is read through a second [`Store`] while the coordinator runs: SQLite in WAL mode
//! lets a reader see committed transactions without blocking the writer, and opening it runs
//! no migration when the schema is current.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_coordinator::store::Store;
use meridian_shared::result::CheckResult;
use meridian_tests::cli::Agent;
use meridian_tests::coordinator::{self as coord, Coordinator};
use meridian_tests::relay::Relay;
use meridian_tests::{OriginBuilder, TestOrigin, ZoneServer};

pub(crate) const REGION: &str = "eu-central";
const CHECK: &str = "home";
/// How long the first results may take to reach the store.
const FIRST_RESULTS: Duration = Duration::from_secs(15);
/// How long catching up after the restart may take. The restarted coordinator resets the
/// probe's stale connection at the probe's next packet (within its 5 s keep-alive; see
/// `service::endpoint_config`), and the probe reconnects within a backoff step; the bound
/// still allows the QUIC idle timeout (30 s) so that this test checks delivery, not the
/// reset (`service::tests::reconnect` asserts that).
const CATCH_UP: Duration = Duration::from_secs(75);
/// How long a probe cut off by the relay may take to give its connection up: the QUIC idle
/// timeout (30 s, not settable in `probe.toml`), and a margin.
const NOTICE_CUT: Duration = Duration::from_secs(45);
/// How long catching up after the relay is restored may take: the reconnect attempt under way
/// retransmits its handshake within seconds (backoff starts over at 200 ms after a session).
const CATCH_UP_RESTORED: Duration = Duration::from_secs(20);
pub(crate) const STOP: Duration = Duration::from_secs(10);

/// One test's world: DNS, origin, directories, a running coordinator and an enrolled probe.
struct Setup {
    _dns: ZoneServer,
    _origin: TestOrigin,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    config: PathBuf,
    coordinator: Option<Coordinator>,
    addr: SocketAddr,
    probe_id: String,
    agent: Option<Agent>,
    /// Between the probe and the coordinator, when the test cuts the network.
    relay: Option<Relay>,
}

impl Setup {
    /// Starts everything up to a running `probe run` linked to the coordinator.
    async fn start() -> Setup {
        Setup::start_with(false).await
    }

    /// Like [`Setup::start`], with the probe's link (enrolment aside) going through a
    /// [`Relay`] when `relayed`.
    async fn start_with(relayed: bool) -> Setup {
        let dns = ZoneServer::start().await.expect("dns");
        let origin = OriginBuilder::plain().start().await.expect("origin");
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let config = dir.path().join("coordinator.toml");
        let url = format!("http://127.0.0.1:{}/?size=100", origin.port());
        let write = |quic: SocketAddr| {
            std::fs::write(
                &config,
                coord::config_text(&data_dir, quic, REGION, CHECK, &url),
            )
            .expect("write coordinator.toml")
        };
        write("127.0.0.1:0".parse().expect("address"));
        let coordinator = Coordinator::start(&config, &dir.path().join("coordinator.log"))
            .await
            .expect("coordinator started");
        let addr = coordinator.addr();
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        // Restarts must find the probe where it dials: the same port.
        write(addr);

        let state = dir.path().join("state");
        let probe_id = enroll(&data_dir, addr, &state).await;

        let relay = if relayed {
            Some(Relay::start(addr).await.expect("relay"))
        } else {
            None
        };
        let dial = relay.as_ref().map_or(addr, Relay::addr);
        let probe_config = dir.path().join("probe.toml");
        std::fs::write(
            &probe_config,
            format!(
                r#"state_dir = "{state}"
resolver = "{resolver}"
allow_networks = ["127.0.0.1/32"]
results = "results.jsonl"

[[coordinator]]
name = "c1"
address = "{dial}"
server_name = "localhost"
"#,
                state = state.display(),
                resolver = dns.udp_uri(),
            ),
        )
        .expect("write probe.toml");
        let agent = Agent::start(&probe_config, &dir.path().join("probe.log")).expect("probe run");
        Setup {
            _dns: dns,
            _origin: origin,
            dir,
            data_dir,
            config,
            coordinator: Some(coordinator),
            addr,
            probe_id,
            agent: Some(agent),
            relay,
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Both logs, for failure messages.
    fn logs(&self) -> String {
        format!(
            "--- coordinator.log\n{}\n--- probe.log\n{}",
            self.log("coordinator.log"),
            self.log("probe.log")
        )
    }

    /// The probe's stored results, in sequence order, read through a second connection.
    async fn stored(&self) -> Vec<(u64, CheckResult)> {
        let (dir, id) = (self.data_dir.clone(), self.probe_id.clone());
        tokio::task::spawn_blocking(move || Store::open(&dir).and_then(|s| s.results(&id)))
            .await
            .expect("store task")
            .expect("reading the store")
    }

    /// Waits (at most `budget`) until `done` holds for the stored results.
    async fn wait_stored(
        &self,
        budget: Duration,
        what: &str,
        done: impl Fn(&[(u64, CheckResult)]) -> bool,
    ) -> Vec<(u64, CheckResult)> {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let stored = self.stored().await;
            if done(&stored) {
                return stored;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {budget:?} ({} stored)\n{}",
                stored.len(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The complete lines of the probe's JSONL file, as result keys.
    fn jsonl(&self) -> BTreeSet<(i64, String)> {
        self.jsonl_records().iter().map(key).collect()
    }

    /// The complete lines of the probe's JSONL file, in order: line `k` is the result the
    /// probe spooled as sequence `k` (each batch is written to the file, then to the spool).
    fn jsonl_records(&self) -> Vec<CheckResult> {
        jsonl_records(&self.log("results.jsonl"))
    }

    /// Stops the probe (SIGTERM) and then the coordinator (SIGTERM), both cleanly.
    async fn stop(&mut self) {
        if let Some(agent) = self.agent.take() {
            let status = agent.terminate(STOP).await.expect("probe stopped");
            assert!(status.success(), "probe: {status}\n{}", self.logs());
        }
        if let Some(c) = self.coordinator.take() {
            let status = c.terminate(STOP).await.expect("coordinator stopped");
            assert!(status.success(), "coordinator: {status}\n{}", self.logs());
        }
    }

    async fn restart_coordinator(&mut self) {
        let c = Coordinator::start(&self.config, &self.dir.path().join("coordinator.log"))
            .await
            .expect("coordinator restarted");
        assert_eq!(c.addr(), self.addr, "same address after the restart");
        self.coordinator = Some(c);
    }

    /// `coordinator probe list`'s row for the probe, split on whitespace.
    async fn listing_row(&self) -> Vec<String> {
        let out = coord::coordinator(&[
            "probe",
            "list",
            "--data-dir",
            self.data_dir.to_str().expect("utf-8 path"),
        ])
        .await
        .expect("probe list ran");
        assert_eq!(out.code, Some(0), "{out:?}");
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(self.probe_id.as_str()))
            .unwrap_or_else(|| panic!("{} not listed: {out:?}", self.probe_id))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

/// Enrols a probe in [`REGION`] with the coordinator on `data_dir` listening on `addr`
/// (`coordinator token create`, then `probe enroll` into `state`); its id.
pub(crate) async fn enroll(data_dir: &Path, addr: SocketAddr, state: &Path) -> String {
    coord::enroll(data_dir, addr, REGION, state)
        .await
        .expect("probe enrolled")
}

/// The complete lines of a probe's JSONL file, in order.
pub(crate) fn jsonl_records(text: &str) -> Vec<CheckResult> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a result: {e}: {l}")))
        .collect()
}

/// What identifies a result across the JSONL file and the store.
pub(crate) fn key(r: &CheckResult) -> (i64, String) {
    (r.started_ms, r.check_id.to_string())
}

pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Waits (within `budget`) until everything `produced` is stored, stops, and checks the
/// store: results from the assignment, sequences 1..=N with no gap or duplicate, each
/// produced result stored exactly once. Returns the stored results and a count per key.
async fn caught_up_exactly_once(
    s: &mut Setup,
    produced: &BTreeSet<(i64, String)>,
    budget: Duration,
    what: &str,
) -> (Vec<(u64, CheckResult)>, BTreeMap<(i64, String), usize>) {
    s.wait_stored(budget, what, |stored| {
        let keys: BTreeSet<_> = stored.iter().map(|(_, r)| key(r)).collect();
        produced.is_subset(&keys)
    })
    .await;
    s.stop().await;
    let stored = s.stored().await;
    assert_from_assignment(s, &stored);
    let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<u64> = (1..=stored.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "sequence numbers 1..=N, no gap, no duplicate"
    );
    let mut count: BTreeMap<(i64, String), usize> = BTreeMap::new();
    for (_, r) in &stored {
        *count.entry(key(r)).or_default() += 1;
    }
    for k in produced {
        assert_eq!(count.get(k), Some(&1), "{k:?} stored exactly once");
    }
    (stored, count)
}

fn assert_from_assignment(s: &Setup, stored: &[(u64, CheckResult)]) {
    for (seq, r) in stored {
        assert_eq!(r.probe_id, s.probe_id, "seq {seq}");
        assert_eq!(r.region, REGION, "seq {seq}: the certificate's region");
        // probe.toml has no local check: this one came with the coordinator's assignment.
        assert_eq!(r.check_id.to_string(), CHECK, "seq {seq}");
        assert!(r.passed(), "seq {seq}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_coordinator_loses_and_duplicates_nothing() {
    let mut s = Setup::start().await;
    let first = s
        .wait_stored(FIRST_RESULTS, "first results stored", |r| !r.is_empty())
        .await;
    assert_from_assignment(&s, &first);
    let row = s.listing_row().await;
    assert_eq!(row[1..3], [REGION, "active"], "{row:?}");
    assert!(row[3].starts_with('v'), "an assignment was issued: {row:?}");

    // Let a few more results be in flight, then kill -9 in the middle of the uploads.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.coordinator
        .take()
        .expect("running")
        .kill()
        .await
        .expect("kill -9");
    let killed_ms = wall_ms();
    tokio::time::sleep(Duration::from_secs(4)).await;
    s.restart_coordinator().await;
    let restarted_ms = wall_ms();

    // Everything produced so far, the outage included, must arrive.
    let produced = s.jsonl();
    let during_outage = produced
        .iter()
        .filter(|(t, _)| (killed_ms..restarted_ms).contains(t))
        .count();
    assert!(
        during_outage >= 2,
        "the probe kept checking while the coordinator was down ({during_outage} results)\n{}",
        s.logs()
    );
    let (stored, count) =
        caught_up_exactly_once(&mut s, &produced, CATCH_UP, "caught up after the restart").await;
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    // Nothing stored that the probe did not produce (the JSONL line is written first).
    let all = s.jsonl();
    for k in count.keys() {
        assert!(all.contains(k), "{k:?} stored but not in the probe's JSONL");
    }
    assert!(stored.len() >= produced.len());

    let probe_log = s.log("probe.log");
    assert!(
        probe_log.matches("uplink session open").count() >= 2,
        "the probe reconnected\n{}",
        s.logs()
    );
    // The clean stop flushed liveness: the listing shows when the probe was last seen.
    let row = s.listing_row().await;
    assert_ne!(row[4], "never", "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_cut_off_from_a_live_coordinator_spools_and_delivers_everything_once() {
    let mut s = Setup::start_with(true).await;
    s.wait_stored(FIRST_RESULTS, "first results stored", |r| !r.is_empty())
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ended = |s: &Setup| s.log("probe.log").matches("uplink session ended").count();
    let ended_before = ended(&s);
    let relay = s.relay.as_ref().expect("relayed");
    assert!(relay.forwarded() > 0, "the link goes through the relay");
    relay.cut();
    let cut_ms = wall_ms();

    // The probe gives the connection up at its idle timeout and goes into backoff; the
    // coordinator stays up all along. Every wait is bounded.
    let deadline = tokio::time::Instant::now() + NOTICE_CUT;
    while ended(&s) == ended_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the probe did not give its connection up within {NOTICE_CUT:?} of the cut\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let frozen = s.stored().await.len();
    // Reconnect attempts under way, into the void.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        s.stored().await.len(),
        frozen,
        "nothing reaches the coordinator while cut\n{}",
        s.logs()
    );
    let relay = s.relay.as_ref().expect("relayed");
    assert!(relay.dropped() > 0);
    relay.restore();
    let restored_ms = wall_ms();

    let produced = s.jsonl();
    let during_cut = produced
        .iter()
        .filter(|(t, _)| (cut_ms..restored_ms).contains(t))
        .count();
    // One check a second for 30 s and more: most of them, at least.
    assert!(
        during_cut >= 20,
        "the probe kept checking while cut off ({during_cut} results)\n{}",
        s.logs()
    );
    // Sequences 1..=N, each the probe's k-th result exactly as it wrote it: nothing lost,
    // nothing twice, nothing re-stamped on delivery.
    let (stored, _) = caught_up_exactly_once(
        &mut s,
        &produced,
        CATCH_UP_RESTORED,
        "caught up after the restore",
    )
    .await;
    let written = s.jsonl_records();
    assert!(
        stored.len() >= produced.len() && stored.len() <= written.len(),
        "{} stored, {} produced before the restore, {} written",
        stored.len(),
        produced.len(),
        written.len()
    );
    for (seq, r) in &stored {
        let line = &written[usize::try_from(*seq).expect("small") - 1];
        assert_eq!(r, line, "seq {seq} is the probe's result {seq}, unchanged");
    }
    let cut_results: Vec<&CheckResult> = stored
        .iter()
        .map(|(_, r)| r)
        .filter(|r| (cut_ms..restored_ms).contains(&r.started_ms))
        .collect();
    assert_eq!(
        cut_results.len(),
        during_cut,
        "every result of the cut stored"
    );
    for r in cut_results {
        assert!(
            r.scheduled_ms < restored_ms && r.scheduled_ms <= r.started_ms,
            "a result of the cut keeps the time it ran at: {r:?}"
        );
    }
    let probe_log = s.log("probe.log");
    assert!(
        probe_log.matches("uplink session open").count() >= 2,
        "the probe reconnected\n{}",
        s.logs()
    );
    assert!(
        !s.log("coordinator.log").contains("results refused"),
        "the coordinator refused nothing\n{}",
        s.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_revoked_with_the_cli_is_cut_off_at_once() {
    let mut s = Setup::start().await;
    s.wait_stored(FIRST_RESULTS, "first results stored", |r| !r.is_empty())
        .await;

    let dir = s.data_dir.to_str().expect("utf-8 path").to_owned();
    let out = coord::coordinator(&["probe", "revoke", &s.probe_id, "--data-dir", &dir])
        .await
        .expect("probe revoke ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains(&format!("revoked {}", s.probe_id)),
        "{out:?}"
    );
    assert_eq!(s.listing_row().await[2], "revoked");
    let again = coord::coordinator(&["probe", "revoke", &s.probe_id, "--data-dir", &dir])
        .await
        .expect("probe revoke ran");
    assert_eq!(
        again.code,
        Some(1),
        "a second revoke has nothing to do: {again:?}"
    );

    // The CLI writes the store; the running service notices within its revocation poll (2 s)
    // and closes the live connection at once: no restart needed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !s.log("probe.log").contains("refused this probe for good") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the revoked probe was not cut off within 15 s\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = s.stored().await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.stored().await.len(),
        refused,
        "nothing stored from a refused probe\n{}",
        s.logs()
    );
    assert!(
        s.log("coordinator.log").contains("revoked"),
        "the coordinator says why\n{}",
        s.logs()
    );
    s.stop().await;
}
