//! `coordinator demo`: detection shown live, on one machine, with nothing but loopback.
//!
//! A real coordinator service (the one `coordinator run` starts: QUIC endpoint, embedded
//! SQLite store, CA, detection thread) runs in-process on 127.0.0.1, with 30 simulated probes
//! in six regions feeding it through the real ingest path in real time, on a compressed clock
//! (a check every 2 s stands for one a minute: `Params::for_interval` scales every detection
//! time constant, so it behaves as a 60 s world, 30 times faster). After a couple of minutes a
//! fiber cut adds 180 ms to every round trip between one region and the origins; the
//! coordinator's incidents are printed as it stores them (class, scope, explanation, times),
//! and the demo ends once the incident resolved after the repair, or at a deadline.
//!
//! The phases, in order:
//! 1. **World** ([`world`]): the scenario file and `coordinator.toml` written into the data
//!    directory and read back by their ordinary loaders.
//! 2. **Enrolment** ([`fleet`]): the coordinator serves enrolment; each probe enrols with a
//!    one-time token (CSR → certificate), exactly as `probe enroll` does.
//! 3. **History** ([`history`]): an hour or so of results, generated in virtual time from the
//!    same world model, written to each probe's spool and the coordinator's store through its
//!    normal ingest, so that seasonal baselines exist.
//! 4. **Live**: the coordinator restarts with the targets (its warm start replays the stored
//!    history into the engine's baselines) and the probes go live ([`probe`]: the probe
//!    crate's scheduler, bursts, spool and uplink, with the world model in place of real
//!    checks); the fault is scripted in the world; [`screen`] prints status and incidents.
//!
//! The verdict is the coordinator's: it passes when a stored incident of class
//! `regional-network`, scoped to exactly the cut region, was confirmed during the cut, carries
//! an explanation, and resolved. Deliberately absent: any detection logic of its own, and any
//! address other than 127.0.0.1.

pub mod fleet;
pub mod history;
mod live;
pub mod probe;
pub mod screen;
pub mod verdict;
mod watch;
pub mod world;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_shared::config::ConfigError;

use crate::detect::Params;
use crate::pki::PkiError;
use crate::service::ServiceError;
use crate::store::StoreError;

pub use verdict::Verdict;

/// What the demo runs; the CLI's flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// Check interval (default 2 s: 30 times faster than a 60 s world).
    pub interval: Duration,
    /// Live time before the fiber cut (default 2 min).
    pub cut_after: Duration,
    /// How long the cut lasts (default 2 min).
    pub cut_for: Duration,
    /// Seed of the world's draws (default 7).
    pub seed: u64,
    /// Where the coordinator keeps its data; a fresh temporary directory when `None`.
    pub data_dir: Option<PathBuf>,
    /// Keep the temporary data directory at the end (a given `data_dir` is always kept).
    pub keep: bool,
    /// Where the map and the other pages are served (default 127.0.0.1:8080; a free port
    /// when that one is taken).
    pub http: std::net::SocketAddr,
    /// How long the probes, the coordinator and its pages keep running after the verdict, for
    /// a look around; `None`: until Ctrl-C.
    pub linger: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            interval: Duration::from_secs(2),
            cut_after: Duration::from_secs(120),
            cut_for: Duration::from_secs(120),
            seed: 7,
            data_dir: None,
            keep: false,
            http: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            linger: Some(Duration::ZERO),
        }
    }
}

/// Why the demo could not run (as opposed to running and not seeing the incident, which is a
/// [`Verdict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// An option is out of range.
    #[error("--{option}: {message}")]
    Option {
        /// The flag.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The data directory given holds something already.
    #[error("{}: not empty; the demo needs a fresh data directory", .0.display())]
    DataDirNotEmpty(PathBuf),
    /// The data directory's path is not UTF-8 (the configuration file names it).
    #[error("{}: the data directory's path must be UTF-8", .0.display())]
    DataDirNotUtf8(PathBuf),
    /// A UDP socket on 127.0.0.1 could not be bound for the coordinator.
    #[error("binding the coordinator's socket on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// A file or directory could not be created, written or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The scenario or configuration file the demo wrote does not load (a bug: they are
    /// generated).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The CA could not be created or loaded.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The coordinator's service failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Enrolling the probes failed.
    #[error(transparent)]
    Fleet(#[from] fleet::FleetError),
    /// Seeding the history failed.
    #[error("seeding the history: {0}")]
    History(#[from] history::HistoryError),
    /// A probe's spool could not be opened.
    #[error("opening {}: {source}", path.display())]
    Spool {
        /// The spool's directory.
        path: PathBuf,
        /// What the spool said.
        #[source]
        source: meridian_probe::spool::SpoolError,
    },
    /// A probe's uplink could not start.
    #[error("starting a probe's uplink: {0}")]
    Uplink(#[from] meridian_probe::uplink::UplinkError),
    /// The web pages could not be served.
    #[error("serving the map: {0}")]
    Web(String),
    /// A background task failed to finish.
    #[error("a demo task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Options {
    /// Checks the ranges: an interval of at least a second (a check's shortest), and a cut
    /// after and lasting at least ten intervals (fresh samples from every probe on both sides).
    pub fn validate(&self) -> Result<(), DemoError> {
        let bad = |option, message: String| Err(DemoError::Option { option, message });
        if self.interval < meridian_shared::check::parse::MIN_INTERVAL {
            return bad("interval", "must be at least 1s".into());
        }
        if self.interval > Duration::from_secs(60) {
            return bad("interval", "must be at most 60s (60s is real time)".into());
        }
        let least = self.interval * 10;
        for (option, value) in [("cut-after", self.cut_after), ("cut-for", self.cut_for)] {
            if value < least {
                let least = humantime::format_duration(least);
                return bad(option, format!("must be at least 10 intervals ({least})"));
            }
            if value > Duration::from_secs(24 * 3600) {
                return bad(option, "must be at most 24h".into());
            }
        }
        Ok(())
    }

    /// The history seeded before the live phase: one seasonal period and four slots (with
    /// `Params::for_interval`'s slots, 56 min at a 2 s interval).
    pub fn history(&self) -> Duration {
        let p = Params::for_interval(ms(self.interval));
        let slots = u32::try_from(p.slots_per_period + 4).unwrap_or(u32::MAX);
        Duration::from_millis(p.slot_ms.unsigned_abs()) * slots
    }
}

/// Runs the demo, printing to `out`; the coordinator's verdict, or why it could not run.
/// Must be called inside a multi-threaded tokio runtime.
pub async fn run(options: &Options, out: &mut dyn Write) -> Result<Verdict, DemoError> {
    options.validate()?;
    let (temp, data_dir) = match &options.data_dir {
        Some(dir) => {
            let empty = std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
            if !empty {
                return Err(DemoError::DataDirNotEmpty(dir.clone()));
            }
            (None, dir.clone())
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("meridian-demo-")
                .tempdir()
                .map_err(|source| DemoError::Io {
                    path: std::env::temp_dir(),
                    source,
                })?;
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        }
    };
    let kept = temp.is_none() || options.keep;
    let outcome = live::run(options, &data_dir, kept, out).await;
    if let Some(temp) = temp {
        if options.keep {
            let _ = temp.keep();
        } else {
            temp.close().map_err(|source| DemoError::Io {
                path: data_dir.clone(),
                source,
            })?;
        }
    }
    outcome
}

/// Prints a line (output errors are ignored: a closed pipe must not stop the demo).
fn say(out: &mut dyn Write, line: impl AsRef<str>) {
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// Creates `path`'s parent directories and writes `text` into it.
fn write_file(path: &Path, text: &str) -> Result<(), DemoError> {
    let io = |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// A duration in ms, saturating.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Wall clock, Unix ms: results and incidents carry this clock.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_the_history_covers_a_period_and_more() {
        let o = Options::default();
        o.validate().expect("defaults are valid");
        assert_eq!(o.history(), Duration::from_secs(56 * 60));
        let short = Options {
            cut_for: Duration::from_secs(5),
            ..Options::default()
        };
        let e = short.validate().expect_err("too short").to_string();
        assert_eq!(e, "--cut-for: must be at least 10 intervals (20s)");
        let fast = Options {
            interval: Duration::from_millis(500),
            ..Options::default()
        };
        assert!(fast.validate().is_err());
    }
}
