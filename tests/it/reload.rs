//! `probe run` re-reading `probe.toml` on SIGHUP, with the real binaries on 127.0.0.1.
//!
//! Standalone: a check added to the file runs after the SIGHUP (its results appear in the
//! JSON-lines file); a file that does not validate is reported in the log as
//! `file:line:column: field: message` and changes nothing: the running checks go on, even one
//! the bad file dropped. Linked: a probe started towards a coordinator that is not there
//! (`old`, a closed port) is moved by a SIGHUP to the real one (`c1`): the uplink restarts, the
//! results spooled meanwhile reach the coordinator's store, the spool's cursor for `old` is
//! deleted, and a change of `spool_dir` (which needs a restart) is refused whole. And the
//! systemd unit turns `systemctl reload` into that SIGHUP.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_coordinator::store::Store;
use meridian_shared::result::CheckResult;
use meridian_tests::cli::{Agent, probe_bin};
use meridian_tests::coordinator::{self as coord, Coordinator};
use meridian_tests::origin::closed_port;
use meridian_tests::{OriginBuilder, ZoneServer};
use tokio::process::Command;

/// How long a reload may take to show in the results (a new check runs within its 1 s
/// interval of the restart; a new uplink connects within a second or two).
const APPLIED: Duration = Duration::from_secs(20);
const STOP: Duration = Duration::from_secs(10);

/// A `probe run` child that a test can signal; killed if dropped while running.
struct Probe {
    agent: Agent,
    log: PathBuf,
}

impl Probe {
    fn start(config: &Path, log: &Path) -> Probe {
        Probe {
            agent: Agent::start(config, log).expect("starting probe run"),
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGHUP, then waits until the log holds one more "reload" outcome line than before.
    async fn reload(&mut self) -> String {
        let outcomes = |log: &str| {
            log.lines()
                .filter(|l| l.contains("configuration reloaded") || l.contains("reload refused"))
                .count()
        };
        let before = outcomes(&self.log());
        self.agent.signal("HUP").await.expect("kill -HUP");
        let log = wait_for(APPLIED, "the reload's outcome in the log", || {
            let log = self.log();
            (outcomes(&log) > before).then_some(log)
        })
        .await;
        assert!(
            self.agent.running(),
            "SIGHUP must not stop the probe:\n{log}"
        );
        log.lines()
            .filter(|l| l.contains("configuration reloaded") || l.contains("reload refused"))
            .nth(before)
            .map(str::to_owned)
            .unwrap_or_default()
    }

    async fn stop(self) {
        let Probe { agent, log } = self;
        let status = agent
            .terminate(STOP)
            .await
            .expect("the probe stops on SIGTERM");
        let log = std::fs::read_to_string(log).unwrap_or_default();
        assert!(status.success(), "{status}\n{log}");
    }
}

/// Polls `ready` every 100 ms until it gives a value, at most `budget`.
async fn wait_for<T>(budget: Duration, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {budget:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The complete lines of a JSON-lines results file.
fn results(path: &Path) -> Vec<CheckResult> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether a result of `check` scheduled at or after `since_ms` is in the file.
fn ran_since(path: &Path, check: &str, since_ms: i64) -> bool {
    results(path)
        .iter()
        .any(|r| r.check_id.as_str() == check && r.scheduled_ms >= since_ms)
}

/// An HTTP check of the origin every second.
fn http_table(id: &str, port: u16) -> String {
    format!(
        "[[http]]\nid = \"{id}\"\nurl = \"http://origin.example.test:{port}/?size=10\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_runs_a_new_check_and_an_invalid_file_changes_nothing() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("probe.toml");
    let out = dir.path().join("results.jsonl");
    let head = format!(
        "probe_id = \"it-reload\"\nregion = \"eu-central\"\nresolver = \"{}\"\nallow_networks = [\"127.0.0.1/32\"]\nresults = \"results.jsonl\"\n\n",
        dns.udp_uri()
    );
    let home = http_table("home", origin.port());
    std::fs::write(&config, format!("{head}{home}")).expect("write probe.toml");
    let mut probe = Probe::start(&config, &dir.path().join("probe.log"));
    wait_for(APPLIED, "the first result of home", || {
        ran_since(&out, "home", 0).then_some(())
    })
    .await;

    // A second check, then SIGHUP: it runs, and home goes on.
    let api = http_table("api", origin.port());
    std::fs::write(&config, format!("{head}{home}\n{api}")).expect("rewrite probe.toml");
    let line = probe.reload().await;
    assert!(
        line.contains("configuration reloaded"),
        "{line}\n{}",
        probe.log()
    );
    let reloaded_ms = now_ms();
    wait_for(APPLIED, "results of the added check", || {
        (ran_since(&out, "api", reloaded_ms) && ran_since(&out, "home", reloaded_ms)).then_some(())
    })
    .await;

    // A file that does not validate: it drops home and has a bad interval on line 9. The
    // error names the file and the line, and both checks keep running.
    let bad = format!(
        "{head}[[http]]\nid = \"api\"\nurl = \"http://origin.example.test:{}/\"\ninterval = \"soon\"\n",
        origin.port()
    );
    assert_eq!(
        bad.lines().position(|l| l.contains("soon")).map(|i| i + 1),
        Some(10)
    );
    std::fs::write(&config, &bad).expect("write the bad probe.toml");
    let line = probe.reload().await;
    let log = probe.log();
    assert!(line.contains("reload refused"), "{line}\n{log}");
    let location = format!("{}:10:", config.display());
    assert!(
        log.contains(&location) && log.contains("interval"),
        "the problem at {location} is logged:\n{log}"
    );
    let refused_ms = now_ms();
    wait_for(APPLIED, "both checks still running", || {
        (ran_since(&out, "api", refused_ms) && ran_since(&out, "home", refused_ms)).then_some(())
    })
    .await;
    // `probe validate` reports the same problem.
    let validate =
        meridian_tests::cli::probe(&["validate", "--config", config.to_str().expect("utf-8")])
            .await
            .expect("probe validate ran");
    assert_eq!(validate.code, Some(2), "{validate:?}");
    let first = validate.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(&location), "{validate:?}");
    assert!(
        log.contains(first),
        "the log has validate's message {first:?}:\n{log}"
    );

    probe.stop().await;
    assert!(origin.requests() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_moves_the_uplink_to_the_new_coordinator_list() {
    const REGION: &str = "eu-central";
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let coord_config = dir.path().join("coordinator.toml");
    let url = format!("http://127.0.0.1:{}/?size=10", origin.port());
    std::fs::write(
        &coord_config,
        coord::config_text(
            &data_dir,
            "127.0.0.1:0".parse().expect("address"),
            REGION,
            "home",
            &url,
        ),
    )
    .expect("write coordinator.toml");
    let coordinator = Coordinator::start(&coord_config, &dir.path().join("coordinator.log"))
        .await
        .expect("coordinator started");
    let state = dir.path().join("state");
    let probe_id = crate::transport::enroll(&data_dir, coordinator.addr(), &state).await;

    // The probe starts linked to "old", where nothing listens; its local check "home" (the id
    // the coordinator assigns too) fills the spool meanwhile.
    let config = dir.path().join("probe.toml");
    let text = |name: &str, addr: String, extra: &str| {
        format!(
            "state_dir = \"{state}\"\nresolver = \"{resolver}\"\nallow_networks = [\"127.0.0.1/32\"]\nresults = \"results.jsonl\"\n{extra}\n\n[[coordinator]]\nname = \"{name}\"\naddress = \"{addr}\"\nserver_name = \"localhost\"\n\n{home}",
            state = state.display(),
            resolver = dns.udp_uri(),
            home = http_table("home", origin.port()),
        )
    };
    let nowhere = format!("127.0.0.1:{}", closed_port().await.expect("a closed port"));
    std::fs::write(&config, text("old", nowhere, "")).expect("write probe.toml");
    let mut probe = Probe::start(&config, &dir.path().join("probe.log"));
    let out = dir.path().join("results.jsonl");
    let spooled = wait_for(APPLIED, "local results spooled", || {
        let r = results(&out);
        (r.len() >= 2).then_some(r)
    })
    .await;
    let spool = state.join("spool");
    let stored = || {
        Store::open(&data_dir)
            .and_then(|s| s.results(&probe_id))
            .unwrap_or_default()
    };

    // The real coordinator instead, under another name: SIGHUP. What was spooled while
    // nothing listened is delivered.
    let addr = coordinator.addr().to_string();
    std::fs::write(&config, text("c1", addr.clone(), "")).expect("rewrite probe.toml");
    let line = probe.reload().await;
    assert!(
        line.contains("configuration reloaded"),
        "{line}\n{}",
        probe.log()
    );
    let first = wait_for(
        APPLIED,
        "the spooled results in the coordinator's store",
        || {
            let s = stored();
            spooled
                .iter()
                .all(|r| s.iter().any(|(_, x)| x.scheduled_ms == r.scheduled_ms))
                .then_some(s)
        },
    )
    .await;
    assert!(first.iter().all(|(_, r)| r.check_id.as_str() == "home"));
    assert!(probe.log().contains("uplink restarted"), "{}", probe.log());
    wait_for(APPLIED, "c1's cursor acknowledged", || {
        spool.join("cursor-c1").exists().then_some(())
    })
    .await;

    // The same coordinator under a third name: c1's cursor goes (it would hold back the
    // spool's collection forever), c2's takes over, delivery goes on.
    std::fs::write(&config, text("c2", addr.clone(), "")).expect("rewrite probe.toml");
    let line = probe.reload().await;
    assert!(
        line.contains("configuration reloaded"),
        "{line}\n{}",
        probe.log()
    );
    assert!(
        !spool.join("cursor-c1").exists(),
        "the removed coordinator's cursor is deleted"
    );
    let renamed_ms = now_ms();
    wait_for(APPLIED, "c2's cursor and new results stored", || {
        (spool.join("cursor-c2").exists()
            && stored().iter().any(|(_, r)| r.scheduled_ms >= renamed_ms))
        .then_some(())
    })
    .await;
    assert!(!spool.join("cursor-old").exists());
    let log = probe.log();
    assert!(log.contains("added=[\"c2\"] removed=[\"c1\"]"), "{log}");

    // Moving the spool takes a restart: refused whole, and delivery goes on.
    std::fs::write(
        &config,
        text(
            "c2",
            addr,
            &format!("spool_dir = \"{}\"", dir.path().join("elsewhere").display()),
        ),
    )
    .expect("rewrite probe.toml");
    let line = probe.reload().await;
    assert!(
        line.contains("reload refused") && line.contains("spool_dir"),
        "{line}\n{}",
        probe.log()
    );
    let refused_ms = now_ms();
    wait_for(APPLIED, "results stored after the refused reload", || {
        stored()
            .iter()
            .any(|(_, r)| r.scheduled_ms >= refused_ms)
            .then_some(())
    })
    .await;
    assert!(!dir.path().join("elsewhere").exists());

    probe.stop().await;
    let status = coordinator
        .terminate(STOP)
        .await
        .expect("coordinator stopped");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_systemd_unit_reloads_with_sighup_and_verifies() {
    let unit = meridian_tests::cli::workspace_root().join("deploy/systemd/meridian-probe.service");
    let text = std::fs::read_to_string(&unit).expect("the probe's unit");
    assert!(
        text.lines()
            .any(|l| l.trim() == "ExecReload=/bin/kill -HUP $MAINPID"),
        "{text}"
    );
    // `systemd-analyze verify` checks that every command exists: point it at this build's
    // binary instead of the installed one.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("meridian-probe.service");
    let probe = probe_bin().expect("the probe binary");
    std::fs::write(
        &copy,
        text.replace("/usr/bin/probe", probe.to_str().expect("utf-8 path")),
    )
    .expect("write the unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .await
        .expect("running systemd-analyze (part of systemd)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
