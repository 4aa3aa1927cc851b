//! The root namespace's blackhole route for [`TEST_RANGE`], shared by every run on the machine.
//!
//! Without it, a packet for a test address sent from the root namespace would follow the
//! default route off the machine. Runs (several per test process, several test processes) hold
//! the route together: each run leaves a holder file named `PID-RUN` in
//! `/run/meridian-realnet/holders` while it lives. Under an exclusive `flock` on
//! `/run/meridian-realnet/lock`, [`RouteHold::acquire`] removes the files of dead processes,
//! adds the route when absent (noting so in `route-added`) and writes its own file;
//! [`RouteHold`]'s drop removes its file and, when no holder is left and the harness added the
//! route, deletes it. A route an operator added (no `route-added` note) is never deleted.
//!
//! # Decisions
//! - A holder directory, not a counter: a counter left behind by a killed process would never
//!   come back to zero, a file with a dead PID is recognised and removed.
//! - [`RouteHold::acquire`] refuses to run when any route inside the range is not a blackhole:
//!   the harness would otherwise be one typo away from sending test traffic off the machine.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nix::fcntl::{Flock, FlockArg};

use super::TEST_RANGE;
use super::ns::ip;

/// Where the lock, the note and the holders live.
const STATE_DIR: &str = "/run/meridian-realnet";

/// One run's share of the route; released when dropped.
#[derive(Debug)]
pub struct RouteHold {
    /// This run's holder file.
    holder: PathBuf,
}

/// What the shared state looks like, read under the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStatus {
    /// Whether the root namespace has the blackhole route for the range.
    pub present: bool,
    /// Whether the harness added it (and will remove it with the last holder).
    pub added_by_harness: bool,
    /// Live holders (`PID-RUN`).
    pub holders: Vec<String>,
}

fn state_dir() -> &'static Path {
    Path::new(STATE_DIR)
}

/// Takes the exclusive lock on the shared state, creating the directories.
fn lock() -> anyhow::Result<Flock<File>> {
    std::fs::create_dir_all(state_dir().join("holders"))
        .with_context(|| format!("creating {STATE_DIR}"))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_dir().join("lock"))
        .context("opening the route lock file")?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("locking {STATE_DIR}/lock: {errno}"))
}

/// Whether the blackhole route for the range is in the root namespace's main table. Fails when
/// a route inside the range is anything but a blackhole.
fn route_present() -> anyhow::Result<bool> {
    let range = TEST_RANGE.to_string();
    let routes = ip(&["-4", "route", "show", "root", &range])?;
    let mut present = false;
    for line in routes.lines().filter(|l| !l.trim().is_empty()) {
        anyhow::ensure!(
            line.starts_with("blackhole "),
            "the root namespace routes part of the test range {range} somewhere: `{line}`; \
             remove that route before running the real-network tests"
        );
        present |= line.split_whitespace().nth(1) == Some(range.as_str());
    }
    Ok(present)
}

/// Live holders, after removing the files of processes that are gone.
fn prune_holders() -> anyhow::Result<Vec<String>> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir(state_dir().join("holders"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let alive = name
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if alive {
            live.push(name);
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    live.sort();
    Ok(live)
}

impl RouteHold {
    /// Registers run `run` of this process as a holder, adding the route if it is absent.
    pub fn acquire(run: u32) -> anyhow::Result<RouteHold> {
        let _lock = lock()?;
        prune_holders()?;
        let note = state_dir().join("route-added");
        if !route_present()? {
            let range = TEST_RANGE.to_string();
            ip(&["route", "add", "blackhole", &range])?;
            std::fs::write(&note, b"").context("noting the route as the harness's")?;
        }
        let holder = state_dir()
            .join("holders")
            .join(format!("{}-{run}", std::process::id()));
        std::fs::write(&holder, b"").context("writing the holder file")?;
        anyhow::ensure!(route_present()?, "the blackhole route did not stick");
        Ok(RouteHold { holder })
    }

    /// Releases this run's share: the route goes with the last holder, if the harness added it.
    pub fn release(mut self) -> anyhow::Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> anyhow::Result<()> {
        if self.holder.as_os_str().is_empty() {
            return Ok(());
        }
        let _lock = lock()?;
        std::fs::remove_file(&self.holder).context("removing the holder file")?;
        self.holder = PathBuf::new();
        let note = state_dir().join("route-added");
        if prune_holders()?.is_empty() && note.exists() {
            if route_present()? {
                ip(&["route", "del", "blackhole", &TEST_RANGE.to_string()])?;
            }
            std::fs::remove_file(&note).context("removing the route note")?;
        }
        Ok(())
    }
}

impl Drop for RouteHold {
    fn drop(&mut self) {
        if let Err(e) = self.release_inner() {
            eprintln!("realnet: releasing the blackhole route: {e:#}");
        }
    }
}

/// The shared state as it is now, read under the lock (for tests of the teardown).
pub fn status() -> anyhow::Result<RouteStatus> {
    let _lock = lock()?;
    Ok(RouteStatus {
        present: route_present()?,
        added_by_harness: state_dir().join("route-added").exists(),
        holders: prune_holders()?,
    })
}
