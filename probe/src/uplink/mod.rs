//! The uplink: delivers spooled results to every configured coordinator over QUIC with mutual
//! TLS, one task and one spool cursor per coordinator, so a coordinator that is down delays
//! only its own cursor.
//!
//! [`Uplink::start`] reads the probe's certificate, key and pinned CA (files written by
//! [`crate::enroll`]) and starts the tasks; each connects, sends `Hello`, then keeps up to
//! [`UplinkConfig::max_in_flight`] `ResultBatch`es outstanding and advances its cursor on every
//! `Ack` (see `session`). Any failure ends the session and the task reconnects after an
//! exponential backoff with full jitter; a `Reject` for revocation or an unsupported version
//! stops the task for good, since retrying cannot help.
//!
//! The spool is synchronous: it is shared as `Arc<Mutex<Spool>>` and only touched from
//! `spawn_blocking`.
//!
//! What coordinators send back reaches the agent without the uplink applying it: each
//! coordinator's newest usable `Assignment` (versions compared per coordinator: each numbers
//! its own) is published in a [`Held`] on a `tokio::sync::watch` ([`Uplink::assignments`]),
//! and `Burst` and `Reload` commands go down an mpsc ([`Uplink::take_commands`]) with a reply
//! channel back to the session that received them, which sends the `CommandDone`. A `Ping`
//! never leaves the session: it is answered with a `Pong` at once, stamped with the wall clock
//! when the frame was decoded and when the pong is sent.
//!
//! A coordinator is sent only the results of the checks it assigned and that run as it
//! assigned them ([`crate::assignment::deliverable`]), plus, until the next change, those of
//! its previous set that no coordinator runs any more (the coordinator accepts its current and
//! previous assignment's checks); other records are skipped and its cursor moves past them. Until a coordinator's assignment is
//! known (it sends one right after `HelloAck`), its session sends no batch, since nothing
//! would be accepted.

mod session;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::BackoffBuilder as _;
use meridian_shared::wire::{Assignment, Command, CommandDone, RejectReason};
use quinn::crypto::rustls::QuicClientConfig;
use ring::rand::SecureRandom as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::assignment::Held;
use crate::spool::Spool;

/// What the agent appends to the spool for every result: named MessagePack of this struct.
///
/// The burst tag travels next to the result rather than inside it because `CheckResult` is the
/// shared record both sides store, and a burst is a fact about why the run happened, which
/// the wire carries in `SequencedResult::burst`. Records written by earlier builds (a bare
/// `CheckResult`) still decode, as scheduled runs. This is an on-disk format of the probe's
/// own, hence the derive outside `shared`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpooledResult {
    /// The result.
    pub result: meridian_shared::result::CheckResult,
    /// Set when the run was part of a burst.
    #[serde(default)]
    pub burst: Option<meridian_shared::wire::BurstTag>,
}

impl SpooledResult {
    /// The spool payload.
    pub fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// Reads a spool payload of this build or of an earlier one (a bare `CheckResult`).
    pub fn decode(payload: &[u8]) -> Result<SpooledResult, rmp_serde::decode::Error> {
        rmp_serde::from_slice::<SpooledResult>(payload).or_else(|e| {
            rmp_serde::from_slice(payload)
                .map(|result| SpooledResult {
                    result,
                    burst: None,
                })
                .map_err(|_| e)
        })
    }
}

/// One coordinator to deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The coordinator's name: also the spool cursor's name (declare it when opening the spool).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The name its certificate carries (DNS name or IP address).
    pub server_name: String,
}

/// How the uplink behaves.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// The coordinators.
    pub targets: Vec<Target>,
    /// The probe's certificate (PEM), from enrolment.
    pub cert_path: PathBuf,
    /// The probe's private key (PEM), from enrolment.
    pub key_path: PathBuf,
    /// The coordinators' CA (PEM), pinned at enrolment.
    pub ca_path: PathBuf,
    /// Most records per batch (default 500).
    pub batch_records: usize,
    /// Most payload bytes per batch (default 1 MiB; a frame may carry 4 MiB).
    pub batch_bytes: usize,
    /// Batches sent and not yet acknowledged, at most (default 4).
    pub max_in_flight: usize,
    /// Heartbeat interval (default 10 s).
    pub heartbeat: Duration,
    /// How often an idle session looks at the spool for new records (default 250 ms).
    pub poll: Duration,
    /// Shortest reconnect delay (default 200 ms).
    pub backoff_min: Duration,
    /// Longest reconnect delay (default 30 s).
    pub backoff_max: Duration,
    /// Idle timeout of the QUIC connection (default 30 s).
    pub idle_timeout: Duration,
    /// Keep-alive interval, below the idle timeout (default 5 s). It also bounds how long an
    /// idle probe stays silent, hence how soon a coordinator restarted after a crash hears from
    /// it and resets the stale connection (the probe then reconnects at once instead of waiting
    /// out the idle timeout).
    pub keep_alive: Duration,
    /// How long connecting and the `Hello` exchange may take (default 10 s).
    pub connect_timeout: Duration,
}

impl UplinkConfig {
    /// A configuration with the defaults, for `targets` and the files of an enrolled probe.
    pub fn new(
        targets: Vec<Target>,
        cert_path: PathBuf,
        key_path: PathBuf,
        ca_path: PathBuf,
    ) -> Self {
        UplinkConfig {
            targets,
            cert_path,
            key_path,
            ca_path,
            batch_records: 500,
            batch_bytes: 1 << 20,
            max_in_flight: 4,
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_millis(250),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the uplink could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UplinkError {
    /// A certificate, key or CA file could not be read or holds nothing usable.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS configuration could not be built (a key that does not match, ...).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The TLS configuration has no cipher suite QUIC can start with.
    #[error("QUIC TLS configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The same coordinator name twice.
    #[error("coordinator {0:?} configured twice")]
    DuplicateTarget(String),
}

/// What one coordinator's task is doing, for tests and `probe status`.
#[derive(Debug, Default)]
pub struct LinkStatus {
    /// Whether a session is open (HelloAck received, not yet ended).
    pub connected: AtomicBool,
    /// Sessions opened so far.
    pub sessions: AtomicU64,
    /// Sessions that failed or were refused.
    pub failures: AtomicU64,
    /// Batches sent.
    pub batches_sent: AtomicU64,
    /// Results sent in them (a batch re-sent after a reconnect counts again).
    pub results_sent: AtomicU64,
    /// Results the coordinator acknowledged (stored, or refused for good).
    pub results_acked: AtomicU64,
    /// Records not sent because this coordinator did not assign their check.
    pub skipped: AtomicU64,
    /// The highest sequence this coordinator acknowledged (the cursor).
    pub acked: AtomicU64,
    /// Set when the coordinator refused the probe for good and the task stopped.
    stopped: Mutex<Option<RejectReason>>,
}

impl LinkStatus {
    /// Why the task stopped for good (revoked, unsupported version), if it did.
    pub fn stopped(&self) -> Option<RejectReason> {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stop(&self, reason: RejectReason) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }
}

/// A `Burst` or `Reload` received from a coordinator, for the agent to carry out.
#[derive(Debug)]
pub struct InboundCommand {
    /// The coordinator that sent it (its name in `probe.toml`).
    pub coordinator: String,
    /// The command.
    pub command: Command,
    /// Where the agent sends the `CommandDone` once finished; the session that received the
    /// command forwards it. Sending fails if that session has ended: the coordinator did not
    /// hear back and may ask again.
    pub done: mpsc::Sender<CommandDone>,
}

/// Commands waiting for the agent, at most; beyond that a command is answered at once with a
/// "busy" `CommandDone` rather than queued without bound.
const COMMAND_QUEUE: usize = 64;

/// The running uplink; [`Uplink::shutdown`] stops it (dropping it aborts the tasks).
pub struct Uplink {
    /// Each coordinator's status, by name.
    links: Vec<(String, Arc<LinkStatus>)>,
    /// One task per coordinator.
    tasks: JoinSet<()>,
    /// Tells the tasks to stop.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Each coordinator's newest assignment (or the one the uplink started with).
    assignments: watch::Receiver<Held>,
    /// Commands for the agent, until taken.
    commands: Option<mpsc::Receiver<InboundCommand>>,
}

impl Uplink {
    /// Loads the TLS files and starts one task per target. The spool must have been opened with
    /// a cursor named after each target. Must be called inside a tokio runtime.
    pub fn start(config: UplinkConfig, spool: Arc<Mutex<Spool>>) -> Result<Uplink, UplinkError> {
        Uplink::start_from(config, spool, &Held::default())
    }

    /// Like [`Uplink::start`], for a probe already running what `running` holds (restored from
    /// disk): each coordinator's version goes in its `Hello`, only a higher version from it is
    /// published as new, and its results are delivered by it from the start.
    pub fn start_from(
        config: UplinkConfig,
        spool: Arc<Mutex<Spool>>,
        running: &Held,
    ) -> Result<Uplink, UplinkError> {
        let client = client_config(&config)?;
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let mut held = Held::new(config.targets.iter().map(|t| t.name.clone()));
        for (name, a) in running.iter() {
            held.offer(name, a.clone());
        }
        let (assignment_tx, assignments) = watch::channel(held);
        let assignment_tx = Arc::new(assignment_tx);
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let mut links = Vec::new();
        let mut tasks = JoinSet::new();
        let config = Arc::new(config);
        for target in &config.targets {
            if links.iter().any(|(n, _)| n == &target.name) {
                return Err(UplinkError::DuplicateTarget(target.name.clone()));
            }
            let status = Arc::new(LinkStatus::default());
            links.push((target.name.clone(), status.clone()));
            let link = session::Link {
                target: target.clone(),
                config: config.clone(),
                client: client.clone(),
                spool: spool.clone(),
                status,
                assignment: assignment_tx.clone(),
                commands: commands_tx.clone(),
            };
            tasks.spawn(session::run(link, rx.clone()));
        }
        Ok(Uplink {
            links,
            tasks,
            shutdown,
            assignments,
            commands: Some(commands),
        })
    }

    /// Each coordinator's newest assignment: `changed()` fires when one sends a higher version.
    pub fn assignments(&self) -> watch::Receiver<Held> {
        self.assignments.clone()
    }

    /// The commands coordinators send (`Burst`, `Reload`); `None` after the first call.
    pub fn take_commands(&mut self) -> Option<mpsc::Receiver<InboundCommand>> {
        self.commands.take()
    }

    /// Every coordinator's status, by name, in `probe.toml` order.
    pub fn links(&self) -> Vec<(String, Arc<LinkStatus>)> {
        self.links.clone()
    }

    /// The status of the coordinator named `name`.
    pub fn status(&self, name: &str) -> Option<Arc<LinkStatus>> {
        self.links
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    /// Stops every task: sessions close, unacknowledged records stay in the spool. Waits at
    /// most `grace`, then aborts what is left.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

fn file_error(path: &Path, message: impl ToString) -> UplinkError {
    UplinkError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads every certificate of a PEM file.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, UplinkError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The QUIC client configuration: TLS 1.3 with the probe's certificate, trusting only the
/// pinned CA, ALPN `meridian/1`, keep-alive below the idle timeout.
fn client_config(config: &UplinkConfig) -> Result<quinn::ClientConfig, UplinkError> {
    let chain = read_certs(&config.cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&config.key_path)
        .map_err(|e| file_error(&config.key_path, e))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certs(&config.ca_path)? {
        roots.add(ca)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    tls.alpn_protocols = vec![meridian_shared::wire::ALPN.to_vec()];
    tls.enable_early_data = false;
    let mut client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok())
        .keep_alive_interval(Some(config.keep_alive));
    client.transport_config(Arc::new(transport));
    Ok(client)
}

/// Reconnect delays: backon's exponential schedule (doubling from `min`, capped at `max`, never
/// exhausted) gives each attempt's ceiling, and the delay is drawn uniformly between `min` and
/// that ceiling ("full jitter", floored at `min` so a flapping link never spins). backon's own
/// jitter adds up to one delay *on top* (`[d, 2d)`), which does not spread a fleet that lost
/// its coordinator at the same instant as well.
pub(crate) struct Backoff {
    /// Ceilings.
    schedule: backon::ExponentialBackoff,
    /// Floor and fallback ceiling.
    min: Duration,
    /// Cap.
    max: Duration,
    /// Randomness.
    rng: ring::rand::SystemRandom,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let max = max.max(min);
        Backoff {
            schedule: backon::ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_factor(2.0)
                .without_max_times()
                .build(),
            min,
            max,
            rng: ring::rand::SystemRandom::new(),
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.schedule.next().unwrap_or(self.max).min(self.max);
        let mut bytes = [0u8; 4];
        // Without randomness, the ceiling itself is a safe (if unspread) answer.
        let unit = match self.rng.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_be_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 1.0,
        };
        let span = ceiling.saturating_sub(self.min);
        self.min + span.mul_f64(unit)
    }
}

/// Publishes `assignment` as `coordinator`'s if it is newer than the one held from it;
/// whether it was.
pub(crate) fn offer(
    latest: &watch::Sender<Held>,
    coordinator: &str,
    assignment: Assignment,
) -> bool {
    let assignment = Arc::new(assignment);
    latest.send_if_modified(|held| held.offer(coordinator, assignment.clone()))
}

/// Counts `n` more on `counter`.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
