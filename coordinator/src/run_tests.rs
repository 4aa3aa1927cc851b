//! `coordinator run` as a process: started on 127.0.0.1 port 0 with a config file, its
//! "listening on" line read back, SIGHUP with an invalid then a valid file, SIGTERM, exit 0.
//!
//! The process is this test binary itself, re-run on the [`child`] test with the config path
//! in [`CHILD_ENV`]: a unit test cannot name the `coordinator` executable (Cargo builds it only
//! for integration tests), and `child` calls the very `run` that `coordinator run` calls.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

/// Set only in the child process: the config file to run.
const CHILD_ENV: &str = "MERIDIAN_RUN_TEST_CONFIG";

const WAIT: Duration = Duration::from_secs(30);

fn config_text(checks: &[&str], extra: &str) -> String {
    let mut text = format!(
        "{extra}data_dir = \"data\"\n[listen]\nquic = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n[[target]]\nid = \"site\"\n"
    );
    for id in checks {
        text.push_str(&format!(
            "[[target.http]]\nid = \"{id}\"\nurl = \"http://127.0.0.1:9/{id}\"\n"
        ));
    }
    text
}

/// Runs the coordinator when started by the smoke test; passes trivially otherwise.
#[test]
fn child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    crate::init_logging(tracing::Level::INFO);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(run(Path::new(&path), std::future::pending()))
        .unwrap();
}

/// Kills the child if the test fails half-way.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The next log line containing every one of `needles`, within [`WAIT`].
fn wait_line(lines: &mpsc::Receiver<String>, needles: &[&str]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needles:?}: {e}"),
        }
    }
}

#[test]
fn run_listens_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.toml");
    std::fs::write(&path, config_text(&["web"], "")).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "run::tests::child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    let stderr = child.0.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("child: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let line = wait_line(&lines, &["listening on "]);
    let addr: std::net::SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    assert!(dir.path().join("data").join("meridian.db").exists());

    // An invalid file: every problem logged with its place, the old config kept.
    std::fs::write(&path, config_text(&["web"], "bogus = 1\n")).unwrap();
    signal(&child.0, "HUP");
    wait_line(&lines, &["config reload failed"]);
    wait_line(&lines, &["coordinator.toml:1:1", "bogus"]);
    // A valid one: in force.
    std::fs::write(&path, config_text(&["web", "api"], "")).unwrap();
    signal(&child.0, "HUP");
    wait_line(&lines, &["config reloaded"]);

    signal(&child.0, "TERM");
    wait_line(&lines, &["coordinator stopped"]);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the coordinator did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
