//! Network namespaces by name: made and deleted with iproute2's `ip netns` (so they appear in
//! `ip netns list` and `ip netns exec` works on them), entered by one thread with `setns(2)`.
//!
//! Names are `meridian-PID-RUN-HOST`: the test process's id keeps parallel test processes
//! apart, the run number parallel runs of one process, and a namespace left behind by a
//! process that was killed (SIGKILL skips every destructor) is recognised by its dead PID and
//! removed by the next run ([`sweep_stale`]).
//!
//! # Decisions
//! - `setns` only on a thread this module spawned and that ends right after: a socket or a TUN
//!   device keeps the namespace it was made in, so binding or opening on that thread is all it
//!   takes, and no pooled thread (tokio's blocking pool) is ever left in a test namespace.
//! - `ip` is run synchronously: teardown runs in `Drop`, where nothing can be awaited, and
//!   each call takes a few milliseconds.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// What every namespace of this harness is called first.
pub const PREFIX: &str = "meridian-";

/// Why a namespace could not be made.
#[derive(Debug)]
pub enum AddError {
    /// The kernel refused (no CAP_SYS_ADMIN, e.g. an unprivileged container).
    NotPermitted(String),
    /// Anything else.
    Failed(anyhow::Error),
}

/// Runs `ip ARGS` in the root namespace; its stdout, or an error with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    anyhow::ensure!(
        out.status.success(),
        "ip {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip -n NS -batch -` with `lines` (one `ip` command each, without `ip`) on stdin.
pub fn ip_batch(ns: &str, lines: &[String]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("ip")
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running ip -batch")?;
    let mut stdin = child.stdin.take().context("ip -batch has no stdin")?;
    stdin.write_all(lines.join("\n").as_bytes())?;
    drop(stdin);
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip -n {ns} -batch failed ({}) on {lines:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// `ip netns add NAME`.
pub fn add(name: &str) -> Result<(), AddError> {
    let out = Command::new("ip")
        .args(["netns", "add", name])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| AddError::Failed(anyhow::Error::new(e).context("running ip netns add")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        Err(AddError::NotPermitted(stderr))
    } else {
        Err(AddError::Failed(anyhow::anyhow!(
            "ip netns add {name} failed ({}): {stderr}",
            out.status
        )))
    }
}

/// The names in `ip netns list`.
pub fn list() -> anyhow::Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// The processes inside namespace `name` (`ip netns pids`), this process excluded.
pub fn pids(name: &str) -> anyhow::Result<Vec<i32>> {
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    Ok(ip(&["netns", "pids", name])?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != me)
        .collect())
}

/// SIGKILLs every process inside `name` and waits (at most 2 s) until none is left, then
/// deletes the namespace. Only processes in a namespace this harness made are ever signalled.
pub fn destroy(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.starts_with(PREFIX),
        "{name} is not a harness namespace"
    );
    for _ in 0..40 {
        let left = pids(name)?;
        if left.is_empty() {
            break;
        }
        for pid in left {
            // Already gone between listing and killing: nothing to do.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ip(&["netns", "delete", name]).map(drop)
}

/// Destroys namespaces of this harness whose process is gone (killed before its teardown ran).
/// Errors are ignored: another process may be sweeping the same namespace.
pub fn sweep_stale() {
    let Ok(names) = list() else { return };
    for name in names {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = destroy(&name);
        }
    }
}

/// Moves the calling thread into namespace `name`. Only for threads that end afterwards.
fn enter(name: &str) -> anyhow::Result<()> {
    let file = File::open(format!("/run/netns/{name}"))
        .with_context(|| format!("opening namespace {name}"))?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering namespace {name}"))
}

/// Runs `f` on a new thread inside namespace `name`, waiting for it. Sockets and devices it
/// creates stay in that namespace.
pub fn in_thread<T: Send, F: FnOnce() -> T + Send>(name: &str, f: F) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn_scoped(scope, || {
                enter(name)?;
                Ok(f())
            })
            .context("spawning a namespace thread")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the thread in namespace {name} panicked"))?
    })
}

/// Like [`in_thread`], without blocking the caller: the result comes back on `tx` (for async
/// callers, which must not block their runtime's worker while `f` waits on the network).
pub fn spawn_thread<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(
    name: &str,
    f: F,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<anyhow::Result<T>>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let owned = name.to_string();
    std::thread::Builder::new()
        .name(format!("netns {name}"))
        .spawn(move || {
            let result = enter(&owned).map(|()| f());
            let _ = tx.send(result);
        })
        .context("spawning a namespace thread")?;
    Ok(rx)
}
