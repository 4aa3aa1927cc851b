//! Running the real `coordinator` binary from a test: one-shot commands (`token create`,
//! `probe list|revoke`, [`enroll`] with the `probe` binary too), and `coordinator run` as a
//! child that is found listening by its "listening on ADDR" log line, killed with SIGKILL or
//! stopped with SIGTERM.
//!
//! Like [`crate::cli::probe_bin`], [`coordinator_bin`] finds the binary next to the test
//! executable and refuses a build older than its sources; `coordinator/tests/cli.rs` is what
//! makes `cargo test --workspace` build it (`cargo build -p meridian-coordinator` otherwise).
//! Every child runs with a bounded wait and is killed when dropped, so a failing test leaves no
//! process behind. Nothing here contacts anything but 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};

use crate::cli::Output;

/// How long `coordinator run` may take to log its listening address.
pub const START_BUDGET: Duration = Duration::from_secs(20);

/// Path of the `coordinator` binary of this build, checked to exist and to be newer than the
/// sources it is built from (`coordinator/src`, `shared/src`, and `probe/src`, which
/// `coordinator demo` links). Checked once per test process:
/// a test that restarts the coordinator must run the same build throughout, even if a source
/// file is touched while it runs.
pub fn coordinator_bin() -> anyhow::Result<PathBuf> {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| checked_bin().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn checked_bin() -> anyhow::Result<PathBuf> {
    crate::cli::workspace_bin(
        "coordinator",
        "meridian-coordinator",
        &["coordinator/src", "shared/src", "probe/src"],
    )
}

/// Runs `coordinator ARGS` to completion (at most [`crate::cli::CHILD_BUDGET`]), without `RUST_LOG`.
pub async fn coordinator(args: &[&str]) -> anyhow::Result<Output> {
    crate::cli::run_bin(&coordinator_bin()?, "coordinator", args).await
}

/// A fresh enrolment token, as `coordinator token create` printed it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The one-time token.
    pub token: String,
    /// SHA-256 of the coordinator's CA certificate, lower-case hex.
    pub ca_fingerprint: String,
}

/// The value of the `key:` line of `coordinator token create`'s output.
fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// Parses `coordinator token create`'s output.
pub fn parse_token(stdout: &str) -> anyhow::Result<Token> {
    let token = field(stdout, "token").context("no `token:` line")?;
    let ca_fingerprint = field(stdout, "ca-fingerprint").context("no `ca-fingerprint:` line")?;
    Ok(Token {
        token: token.to_owned(),
        ca_fingerprint: ca_fingerprint.to_owned(),
    })
}

/// `coordinator token create --data-dir DIR --region REGION --expires 1h`, parsed.
pub async fn create_token(data_dir: &Path, region: &str) -> anyhow::Result<Token> {
    let dir = data_dir.to_str().context("data dir is not UTF-8")?;
    let out = coordinator(&[
        "token",
        "create",
        "--data-dir",
        dir,
        "--region",
        region,
        "--expires",
        "1h",
    ])
    .await?;
    anyhow::ensure!(out.code == Some(0), "token create failed: {out:?}");
    parse_token(&out.stdout).with_context(|| format!("token create printed: {out:?}"))
}

/// Enrols a probe in `region` with the coordinator keeping `data_dir` and listening on `addr`:
/// `coordinator token create`, then `probe enroll` into `state`. Returns the probe's id.
pub async fn enroll(
    data_dir: &Path,
    addr: SocketAddr,
    region: &str,
    state: &Path,
) -> anyhow::Result<String> {
    let token = create_token(data_dir, region).await?;
    let out = crate::cli::probe(&[
        "enroll",
        "--coordinator",
        &addr.to_string(),
        "--server-name",
        "localhost",
        "--token",
        &token.token,
        "--ca-fingerprint",
        &token.ca_fingerprint,
        "--state-dir",
        state.to_str().context("state dir is not UTF-8")?,
    ])
    .await?;
    anyhow::ensure!(out.code == Some(0), "probe enroll failed: {out:?}");
    anyhow::ensure!(
        out.stdout.contains(&format!("in region {region}")),
        "probe enroll enrolled elsewhere: {out:?}"
    );
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("enrolled as probe "))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .with_context(|| format!("no probe id in {out:?}"))
}

/// A `coordinator.toml` with one target holding one HTTP check of `url` every second for
/// `region`, listening on `quic`, certificate for `localhost`.
pub fn config_text(
    data_dir: &Path,
    quic: SocketAddr,
    region: &str,
    check_id: &str,
    url: &str,
) -> String {
    format!(
        r#"data_dir = "{data_dir}"

[listen]
quic = "{quic}"
http = "127.0.0.1:0"
server_names = ["localhost"]

[[target]]
id = "origin"
regions = ["{region}"]

[[target.http]]
id = "{check_id}"
url = "{url}"
interval = "1s"
timeout = "900ms"
"#,
        data_dir = data_dir.display(),
    )
}

/// A running `coordinator run`; killed (SIGKILL) if dropped while running.
pub struct Coordinator {
    child: Child,
    addr: SocketAddr,
}

impl Coordinator {
    /// Starts `coordinator run --config CONFIG` with its stderr appended to `log`, and waits
    /// (at most [`START_BUDGET`]) for its "listening on ADDR" line.
    pub async fn start(config: &Path, log: &Path) -> anyhow::Result<Coordinator> {
        // Appending: a restart's log follows the first run's, and the line of the new run is
        // the one after what the file held before.
        let skip = std::fs::metadata(log).map_or(0, |m| m.len());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .context("opening the coordinator's log file")?;
        let mut child = Command::new(coordinator_bin()?)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .context("starting coordinator run")?;
        let deadline = tokio::time::Instant::now() + START_BUDGET;
        loop {
            let text = std::fs::read(log).unwrap_or_default();
            let fresh = String::from_utf8_lossy(text.get(usize::try_from(skip)?..).unwrap_or(&[]))
                .into_owned();
            if let Some(addr) = listening_addr(&fresh) {
                return Ok(Coordinator { child, addr });
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("coordinator run exited ({status}) before listening:\n{fresh}");
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "coordinator run did not log its address within {START_BUDGET:?}:\n{fresh}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The QUIC address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `kill -9`: no shutdown, no flush; waits for the process to be gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the coordinator")
    }

    /// Sends SIGTERM and waits up to `budget` for the exit; kills it if it does not stop.
    pub async fn terminate(mut self, budget: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().context("the coordinator already exited")?;
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await
            .context("running kill -TERM")?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed: {sent}");
        match tokio::time::timeout(budget, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                anyhow::bail!("the coordinator did not stop within {budget:?} of SIGTERM")
            }
        }
    }
}

/// The web side's address, from the "web UI on http://ADDR/" line of `log`.
pub fn web_addr(log: &str) -> Option<SocketAddr> {
    log.lines().find_map(|l| {
        let rest = &l[l.find("web UI on http://")? + "web UI on http://".len()..];
        rest.split('/').next()?.parse().ok()
    })
}

/// Waits (at most [`START_BUDGET`]) for `log` to name the web side's address.
pub async fn wait_web_addr(log: &Path) -> anyhow::Result<SocketAddr> {
    let deadline = tokio::time::Instant::now() + START_BUDGET;
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        if let Some(addr) = web_addr(&text) {
            return Ok(addr);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no \"web UI on\" line within {START_BUDGET:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The address in the first "listening on ADDR" line of `log`.
pub fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines().find_map(|l| {
        let rest = &l[l.find("listening on ")? + "listening on ".len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_output_and_listening_line_parse() {
        let t = parse_token(
            "token:           abc\nregion:          eu-central\nca-fingerprint:  00ff\n",
        )
        .unwrap();
        assert_eq!(
            (t.token.as_str(), t.ca_fingerprint.as_str()),
            ("abc", "00ff")
        );
        let line =
            "2025-01-01T00:00:00Z  INFO coordinator::run: listening on 127.0.0.1:4433 (QUIC)";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:4433".parse().unwrap())
        );
        assert_eq!(listening_addr("nothing here"), None);
    }
}
