//! Running the real `probe` binary from a test.
//!
//! Cargo sets `CARGO_BIN_EXE_<name>` only for binaries of the package under test, and `probe`
//! belongs to `meridian-probe`, so [`probe_bin`] finds it next to the test executable
//! (`target/<profile>/deps/it-HASH` → `target/<profile>/probe`). Nothing here builds it: cargo
//! holds the build directory's lock while tests run, so a nested `cargo build` would wait
//! forever. `cargo test` builds a package's binaries only for that package's own integration
//! tests: `meridian-probe` has one (`probe/tests/cli.rs`), so `cargo test --workspace` builds
//! `target/<profile>/probe`, while `cargo test -p meridian-tests` alone does not (run
//! `cargo build -p meridian-probe` first). [`probe_bin`] fails with that advice when the binary
//! is missing or older than the probe's sources, rather than testing stale code.
//!
//! Every child runs with a bounded wait and is killed if it outlives it.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// How long one `probe check` may run before the test gives up on it.
pub const CHILD_BUDGET: Duration = Duration::from_secs(30);

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Newest modification time of any file under `dir`, walked without following links.
fn newest_under(dir: &Path, newest: &mut SystemTime) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            newest_under(&entry.path(), newest)?;
        } else if kind.is_file() {
            *newest = (*newest).max(entry.metadata()?.modified()?);
        }
    }
    Ok(())
}

/// The files cargo's dep-info (`BIN.d`, beside the binary) says `bin` was built from: the
/// first rule's prerequisites, separated by spaces (a space inside a path is escaped).
fn dep_info(bin: &Path) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(bin.with_extension("d")).ok()?;
    let (_, prerequisites) = text.lines().next()?.split_once(": ")?;
    let mut files = Vec::new();
    let mut current = String::new();
    let mut chars = prerequisites.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => {
                if !current.is_empty() {
                    files.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        files.push(PathBuf::from(current));
    }
    (!files.is_empty()).then_some(files)
}

/// Path of the `probe` binary of this build, checked to exist and to be newer than the
/// sources it is built from (`probe/src`, `shared/src`).
pub fn probe_bin() -> anyhow::Result<PathBuf> {
    workspace_bin("probe", "meridian-probe", &["probe/src", "shared/src"])
}

/// Path of the workspace binary `name` (of package `package`) of this build, next to the test
/// executable (or the benchmark binary), checked to exist and to be newer than the workspace
/// files it was built from (its dep-info; without one, every file under `sources`, relative to
/// the workspace root), so that tests never run stale code.
pub fn workspace_bin(name: &str, package: &str, sources: &[&str]) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    // A test executable sits in target/<profile>/deps, a benchmark binary in target/<profile>.
    let dir = exe
        .parent()
        .context("the executable is not in target/<profile>")?;
    let profile_dir = if dir.file_name() == Some("deps".as_ref()) {
        dir.parent()
            .context("the test executable is not in target/<profile>/deps")?
    } else {
        dir
    };
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .with_context(|| {
            format!(
                "{} is missing: build it with `cargo build -p {package}` before the tests, or \
                 run `cargo test --workspace`, which builds it",
                bin.display()
            )
        })?;
    let root = workspace_root();
    let mut newest = SystemTime::UNIX_EPOCH;
    match dep_info(&bin) {
        // Exactly the workspace files cargo built it from: a test-only file changed since is
        // no reason to call it stale (cargo would not relink it for that).
        Some(files) => {
            for file in files.iter().filter(|f| f.starts_with(&root)) {
                if let Ok(modified) = std::fs::metadata(file).and_then(|m| m.modified()) {
                    newest = newest.max(modified);
                }
            }
        }
        None => {
            for dir in sources {
                newest_under(&root.join(dir), &mut newest)
                    .with_context(|| format!("reading {dir} for the staleness check"))?;
            }
        }
    }
    anyhow::ensure!(
        built >= newest,
        "{} is older than its sources: rebuild it with `cargo build -p {package}` so the \
         tests do not test stale code",
        bin.display()
    );
    Ok(bin)
}

/// What a finished `probe` run printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error (logs).
    pub stderr: String,
}

impl Output {
    /// Standard output parsed as one JSON value (`--json`).
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("stdout is not one JSON object: {self:?}"))
    }
}

/// Runs `probe ARGS` to completion (at most [`CHILD_BUDGET`]). The child inherits no
/// `RUST_LOG` so that its output does not depend on the caller's environment.
pub async fn probe(args: &[&str]) -> anyhow::Result<Output> {
    run_bin(&probe_bin()?, "probe", args).await
}

/// Runs the binary at `path` (called `name` in messages) with `args` to completion, at most
/// [`CHILD_BUDGET`], with no standard input and without `RUST_LOG`.
pub async fn run_bin(path: &Path, name: &str, args: &[&str]) -> anyhow::Result<Output> {
    let child = Command::new(path)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let out = tokio::time::timeout(CHILD_BUDGET, child.wait_with_output())
        .await
        .with_context(|| format!("{name} {args:?} still running after {CHILD_BUDGET:?}"))??;
    Ok(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A long-running `probe run` child; killed if dropped while running.
pub struct Agent {
    child: Child,
}

impl Agent {
    /// Starts `probe run --config CONFIG`, its stderr going to `log`.
    pub fn start(config: &Path, log: &Path) -> anyhow::Result<Agent> {
        let log = std::fs::File::create(log).context("creating the agent's log file")?;
        let child = Command::new(probe_bin()?)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting probe run")?;
        Ok(Agent { child })
    }

    /// Sends a signal by name (`"HUP"`, `"TERM"`) with `kill`, no FFI.
    pub async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("the agent already exited")?;
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await
            .with_context(|| format!("running kill -{signal}"))?;
        anyhow::ensure!(sent.success(), "kill -{signal} {pid} failed: {sent}");
        Ok(())
    }

    /// Whether the agent is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits up to `budget` for the exit; kills the child if it does not
    /// stop in time.
    pub async fn terminate(mut self, budget: Duration) -> anyhow::Result<ExitStatus> {
        self.signal("TERM").await?;
        match tokio::time::timeout(budget, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                anyhow::bail!("the agent did not stop within {budget:?} of SIGTERM")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_lists_the_first_rules_files_with_escaped_spaces() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("coordinator");
        std::fs::write(
            bin.with_extension("d"),
            "/t/coordinator: /w/a\\ b.rs /w/c.rs\n\n/w/a\\ b.rs:\n",
        )
        .expect("write");
        assert_eq!(
            dep_info(&bin),
            Some(vec![PathBuf::from("/w/a b.rs"), PathBuf::from("/w/c.rs")])
        );
        assert_eq!(dep_info(&dir.path().join("missing")), None);
    }
}
