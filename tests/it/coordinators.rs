//! One probe, two coordinators, with the real binaries on 127.0.0.1: each coordinator assigns
//! the probe its own checks and numbers its own assignment versions; the probe runs the union,
//! and each coordinator receives exactly the results of the checks it assigned, refusing
//! nothing.
//!
//! The coordinators share a CA, as two instances of one deployment would: the second one's
//! data directory gets the first one's `ca.pem` and `ca.key` (so the probe's certificate and
//! pinned CA work with both) and a registry entry for the probe, written through a [`Store`]
//! before it starts (enrolment happens once, with the first). The second registry also holds a
//! decoy probe whose id sorts first, so the second coordinator places the probe in slot 1 of 2
//! while the first places it in slot 0 of 1: each check must run in its own coordinator's slot.
//!
//! The assignments:
//! - `a`: `alpha` (100-byte body), `both` (300), `clash` (400);
//! - `b`: `beta` (200), `both` (the same check as `a`'s), `clash` (500: another check, one id).
//!
//! `a` comes first in `probe.toml`, so `clash` runs as `a` assigned it, and `b` is not sent
//! its results; `both` runs once and goes to both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_coordinator::store::Store;
use meridian_probe::schedule::{Slot, offset};
use meridian_shared::result::CheckResult;
use meridian_tests::cli::Agent;
use meridian_tests::coordinator::Coordinator;
use meridian_tests::{OriginBuilder, TestOrigin, ZoneServer};

use crate::transport::{REGION, STOP, enroll, jsonl_records, key, wall_ms};

/// How long the probe may take to run both assignments merged.
const MERGED: Duration = Duration::from_secs(20);
/// How long delivering what was produced may take.
const DELIVERED: Duration = Duration::from_secs(15);
/// Sorts before every `probe-…` id the coordinator hands out.
const DECOY: &str = "decoy";

/// `coordinator.toml` on `data_dir`, one target with `checks` (id, body size) every second.
fn coordinator_toml(data_dir: &Path, origin: &TestOrigin, checks: &[(&str, u32)]) -> String {
    let mut text = format!(
        r#"data_dir = "{}"

[listen]
quic = "127.0.0.1:0"
http = "127.0.0.1:0"
server_names = ["localhost"]

[[target]]
id = "origin"
regions = ["{REGION}"]
"#,
        data_dir.display()
    );
    for (id, size) in checks {
        text.push_str(&format!(
            r#"
[[target.http]]
id = "{id}"
url = "http://127.0.0.1:{port}/?size={size}"
interval = "1s"
timeout = "900ms"
"#,
            port = origin.port()
        ));
    }
    text
}

/// The probe's results in one coordinator's store.
async fn stored(data_dir: &Path, probe_id: &str) -> Vec<(u64, CheckResult)> {
    let (dir, id) = (data_dir.to_path_buf(), probe_id.to_owned());
    tokio::task::spawn_blocking(move || Store::open(&dir).and_then(|s| s.results(&id)))
        .await
        .expect("store task")
        .expect("reading the store")
}

/// The check ids of `results`.
fn ids(results: &[(u64, CheckResult)]) -> BTreeSet<String> {
    results
        .iter()
        .map(|(_, r)| r.check_id.to_string())
        .collect()
}

struct World {
    _dns: ZoneServer,
    _origin: TestOrigin,
    dir: tempfile::TempDir,
    /// `a`'s and `b`'s data directories.
    data: [PathBuf; 2],
    coordinators: Vec<Coordinator>,
    probe_id: String,
    agent: Option<Agent>,
}

impl World {
    async fn start() -> World {
        let dns = ZoneServer::start().await.expect("dns");
        let origin = OriginBuilder::plain().start().await.expect("origin");
        let dir = tempfile::tempdir().expect("temp dir");
        let data = [dir.path().join("data-a"), dir.path().join("data-b")];
        let start = |i: usize, checks: &'static [(&'static str, u32)]| {
            let config = dir.path().join(format!("coordinator-{i}.toml"));
            std::fs::write(&config, coordinator_toml(&data[i], &origin, checks))
                .expect("write coordinator.toml");
            let log = dir.path().join(format!("coordinator-{i}.log"));
            async move {
                Coordinator::start(&config, &log)
                    .await
                    .expect("coordinator started")
            }
        };
        let a = start(0, &[("alpha", 100), ("both", 300), ("clash", 400)]).await;
        let state = dir.path().join("state");
        let probe_id = enroll(&data[0], a.addr(), &state).await;
        assert!(DECOY < probe_id.as_str(), "{probe_id}");

        // The second instance: the same CA, and the probe (and a decoy) in its registry.
        std::fs::create_dir_all(&data[1]).expect("data dir b");
        for f in ["ca.pem", "ca.key"] {
            std::fs::copy(data[0].join(f), data[1].join(f)).expect("copy the CA");
        }
        let (b_dir, id) = (data[1].clone(), probe_id.clone());
        tokio::task::spawn_blocking(move || {
            let store = Store::open(&b_dir)?;
            store.upsert_probe(&id, REGION, None, wall_ms())?;
            store.upsert_probe(DECOY, REGION, None, wall_ms())
        })
        .await
        .expect("store task")
        .expect("registering the probe with b");
        let b = start(1, &[("beta", 200), ("both", 300), ("clash", 500)]).await;

        let probe_config = dir.path().join("probe.toml");
        std::fs::write(
            &probe_config,
            format!(
                r#"state_dir = "{state}"
resolver = "{resolver}"
allow_networks = ["127.0.0.1/32"]
results = "results.jsonl"

[[coordinator]]
name = "a"
address = "{a}"
server_name = "localhost"

[[coordinator]]
name = "b"
address = "{b}"
server_name = "localhost"
"#,
                state = state.display(),
                resolver = dns.udp_uri(),
                a = a.addr(),
                b = b.addr(),
            ),
        )
        .expect("write probe.toml");
        let agent = Agent::start(&probe_config, &dir.path().join("probe.log")).expect("probe run");
        World {
            _dns: dns,
            _origin: origin,
            dir,
            data,
            coordinators: vec![a, b],
            probe_id,
            agent: Some(agent),
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn logs(&self) -> String {
        ["coordinator-0.log", "coordinator-1.log", "probe.log"]
            .iter()
            .map(|n| format!("--- {n}\n{}\n", self.log(n)))
            .collect()
    }

    fn written(&self) -> Vec<CheckResult> {
        jsonl_records(&self.log("results.jsonl"))
    }

    /// Waits (at most `budget`) until `done` holds for what the probe wrote.
    async fn wait_written(
        &self,
        budget: Duration,
        what: &str,
        done: impl Fn(&[CheckResult]) -> bool,
    ) -> Vec<CheckResult> {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let written = self.written();
            if done(&written) {
                return written;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {budget:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (at most `budget`) until coordinator `i` holds every result of `expected`.
    async fn wait_delivered(&self, i: usize, expected: &BTreeSet<(i64, String)>) {
        let deadline = tokio::time::Instant::now() + DELIVERED;
        loop {
            let have: BTreeSet<_> = stored(&self.data[i], &self.probe_id)
                .await
                .iter()
                .map(|(_, r)| key(r))
                .collect();
            let missing: Vec<_> = expected.difference(&have).collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "coordinator {i} lacks {missing:?} after {DELIVERED:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(agent) = self.agent.take() {
            let status = agent.terminate(STOP).await.expect("probe stopped");
            assert!(status.success(), "probe: {status}\n{}", self.logs());
        }
        for c in self.coordinators.drain(..) {
            let status = c.terminate(STOP).await.expect("coordinator stopped");
            assert!(status.success(), "coordinator: {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_each_get_exactly_the_results_of_what_they_assigned() {
    let mut w = World::start().await;
    // Both assignments run once a check of each has run; from then on the plan is the merge.
    let first = |written: &[CheckResult], id: &str| {
        written
            .iter()
            .filter(|r| r.check_id.as_str() == id)
            .map(|r| r.started_ms)
            .min()
    };
    let written = w
        .wait_written(MERGED, "both assignments running", |written| {
            first(written, "alpha").is_some() && first(written, "beta").is_some()
        })
        .await;
    let merged_ms = first(&written, "alpha")
        .max(first(&written, "beta"))
        .expect("both ran");
    // A few rounds of the merged plan.
    w.wait_written(MERGED, "three rounds merged", |written| {
        ["alpha", "beta", "both", "clash"].iter().all(|id| {
            written
                .iter()
                .filter(|r| r.check_id.as_str() == *id && r.started_ms > merged_ms)
                .count()
                >= 3
        })
    })
    .await;

    let produced = w.written();
    let wanted = |ids: &[&str]| -> BTreeSet<(i64, String)> {
        produced
            .iter()
            .filter(|r| ids.contains(&r.check_id.as_str()))
            .map(key)
            .collect()
    };
    // `clash` as `a` assigned it is `a`'s; before the merge it may have run as `b` assigned it.
    let clash_of_a: BTreeSet<_> = produced
        .iter()
        .filter(|r| r.check_id.as_str() == "clash" && r.started_ms > merged_ms)
        .map(key)
        .collect();
    let mut for_a = wanted(&["alpha", "both"]);
    for_a.extend(clash_of_a.iter().cloned());
    w.wait_delivered(0, &for_a).await;
    w.wait_delivered(1, &wanted(&["beta", "both"])).await;
    w.stop().await;

    let written = w.written();
    let by_key: BTreeMap<(i64, String), &CheckResult> =
        written.iter().map(|r| (key(r), r)).collect();
    let stores = [
        stored(&w.data[0], &w.probe_id).await,
        stored(&w.data[1], &w.probe_id).await,
    ];
    let allowed = [["alpha", "both", "clash"], ["beta", "both", "clash"]];
    for (i, rows) in stores.iter().enumerate() {
        // Each stored result is the probe's result of that sequence, unchanged: the spool's
        // sequences are shared, each coordinator holds its own subset of them, once each.
        for (seq, r) in rows {
            let line = &written[usize::try_from(*seq).expect("small") - 1];
            assert_eq!(r, line, "coordinator {i}, seq {seq}");
        }
        let seqs: Vec<u64> = rows.iter().map(|(s, _)| *s).collect();
        assert!(
            seqs.windows(2).all(|p| p[0] < p[1]),
            "coordinator {i}: {seqs:?}"
        );
        let got = ids(rows);
        assert!(
            got.iter().all(|id| allowed[i].contains(&id.as_str())),
            "coordinator {i} got {got:?}"
        );
    }
    let count =
        |i: usize, k: &(i64, String)| stores[i].iter().filter(|(_, r)| key(r) == *k).count();
    for k in &for_a {
        assert_eq!(count(0, k), 1, "a holds {k:?} once");
    }
    for k in &wanted(&["beta", "both"]) {
        assert_eq!(count(1, k), 1, "b holds {k:?} once");
    }
    for k in &clash_of_a {
        assert_eq!(
            count(1, k),
            0,
            "b is not sent {k:?}: its clash is another check"
        );
        assert_eq!(
            by_key[k].http.as_ref().map(|h| h.bytes),
            Some(400),
            "a's clash ran"
        );
    }

    // Each check in its own coordinator's slot: `a` says 0 of 1, `b` 1 of 2.
    let slot_a = Slot { index: 0, count: 1 };
    let slot_b = Slot { index: 1, count: 2 };
    for (id, slot) in [
        ("alpha", slot_a),
        ("both", slot_a),
        ("clash", slot_a),
        ("beta", slot_b),
    ] {
        let off = i64::try_from(offset(Duration::from_secs(1), slot, &w.probe_id, id).as_millis())
            .expect("small");
        let runs: Vec<i64> = written
            .iter()
            .filter(|r| r.check_id.as_str() == id && r.started_ms > merged_ms)
            .map(|r| r.scheduled_ms)
            .collect();
        assert!(!runs.is_empty(), "{id} ran");
        for t in runs {
            assert_eq!((t - off).rem_euclid(1000), 0, "{id} at {t}: slot {slot:?}");
        }
    }

    for i in 0..2 {
        assert!(
            !w.log(&format!("coordinator-{i}.log"))
                .contains("results refused"),
            "coordinator {i} refused nothing\n{}",
            w.logs()
        );
    }
    let probe_log = w.log("probe.log");
    assert!(
        probe_log.contains("two coordinators assign different checks under one id"),
        "the conflict is reported\n{probe_log}"
    );
    let state = w.dir.path().join("state");
    for name in ["a", "b"] {
        assert!(
            state.join(format!("assignment.{name}.msgpack")).is_file(),
            "{name}'s assignment persisted on its own"
        );
    }
}
