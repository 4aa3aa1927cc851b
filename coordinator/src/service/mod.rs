//! The coordinator's QUIC endpoint: the probe link (ALPN `meridian/1`) and enrolment (ALPN
//! `meridian-enroll/1`) on one UDP socket.
//!
//! [`Service::bind`] takes an already-bound socket (tests bind `127.0.0.1:0`), the [`Ca`] and
//! the [`Store`]; [`Service::run`] serves until a shutdown future resolves. A cloneable
//! [`ServiceHandle`] reads the [`Counters`] and the probes' [`ProbeState`]s, revokes probes
//! (closing their live connections at once), reloads the targets (new assignments pushed to
//! live probes), sends commands and runs closures on the store.
//!
//! # Decisions
//! - **TLS**: the server certificate is issued by the coordinator's own CA at every start (its
//!   chain carries the CA, which an enrolling probe pins by fingerprint). Client certificates
//!   are verified against the CA, but a client without one is let through the handshake, only
//!   so that enrolment works: the link refuses it right after, with close code
//!   [`close::NO_CERTIFICATE`]. TLS 1.3 only (QUIC), 0-RTT off (a replayed first flight could
//!   replay a batch or a token), keep-alive below the idle timeout.
//! - **Restarts**: the stateless-reset key and the connection-ID generator's key are derived
//!   from the CA key, so a coordinator restarted after a crash resets the connections its
//!   previous run left open at their next packet ([`endpoint_config`]).
//! - **Flow control**: a probe may send [`LINK_WINDOW`] bytes ahead of its session, so the
//!   coordinator's memory under full ingest does not grow with every probe's in-flight batches.
//! - **Storage** runs on one dedicated thread that owns the [`Store`] (SQLite calls block);
//!   connections send it closures and batches and await the answer, so an acknowledgement is
//!   sent only once the transaction committed. Batches are group-committed: whatever is queued
//!   when the thread comes round (many connections' batches) goes into ONE transaction
//!   ([`Store::ingest_many_fresh`]), so one fsync and one rollup merge serve them all, and
//!   each batch's answer (hence its `Ack`) follows that commit ([`store_thread`]).
//! - **Identity** is the certificate's; see [`link`] for the session itself and [`enroll`] for
//!   enrolment.
//! - **Assignments** are computed by the pure [`assign`] from the targets in force and the
//!   registry, versioned and stored, then pushed: right after `HelloAck`, and to live sessions
//!   whenever they change (reload, enrolment, revocation). Results of checks outside a probe's
//!   current and previous assignment are refused and counted.
//! - **Commands**: [`ServiceHandle::send_command`]; a `Ping` goes to every live probe every
//!   [`ServiceConfig::ping_interval`], and each `Pong` feeds the probe's clock-offset estimate.
//! - **Liveness** is kept in memory (every message refreshes it) and flushed to the store every
//!   [`ServiceConfig::flush_interval`], many probes per transaction, and at shutdown.
//! - **Detection** runs on its own thread owning the `detect` engine ([`detection`]): fed each
//!   result once its commit succeeded (duplicates left out), heartbeats, clock estimates and the
//!   topology; its bursts go out as commands, its incident transitions are logged and stored.
//! - **Networks**: at every link connection the probe's network is looked up
//!   ([`geoip::probe_network`](crate::geoip::probe_network): [`ServiceConfig::geoip`] on the
//!   address the connection comes from, the operator's pin from the targets' configuration on
//!   top), kept in memory ([`ServiceHandle::probe_network`]), and its ASN goes into the
//!   detection topology (refreshed when it is first learnt or changes). A probe whose address
//!   geolocates far from its region is logged at WARN, once per connection.
//!
//! Deliberately absent: reading the config file and signals (`coordinator run` does that).

pub mod assign;
mod detection;
mod enroll;
mod link;
pub mod live;
mod liveness;
mod state;
mod store_thread;
#[cfg(test)]
mod tests;
mod warm_start;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_shared::wire::{Assignment, Command, CommandKind};
use quinn::crypto::rustls::QuicServerConfig;
use tokio::task::JoinSet;

use crate::config::CoordinatorConfig;
use crate::geoip::{GeoIp, Network};
use crate::pki::{Ca, PkiError};
use crate::store::{Store, StoreError};

pub use enroll::{ENROLL_ALPN, EnrollRequest, EnrollResponse, Enrolled, MAX_ENROLL_FRAME};
pub use liveness::{ClockFilter, ProbeState, is_silent};
use state::Push;
use store_thread::StoreThread;

/// QUIC application close codes the coordinator uses. The reason text says the same for
/// people; the code is what a probe acts on (it stops retrying on [`close::REVOKED`]).
pub mod close {
    /// The coordinator is shutting down, or the session ended normally.
    pub const NORMAL: u32 = 0;
    /// The link needs a client certificate from the coordinator's CA naming a probe.
    pub const NO_CERTIFICATE: u32 = 1;
    /// The probe was revoked.
    pub const REVOKED: u32 = 2;
    /// The certificate names a probe this coordinator does not know.
    pub const UNKNOWN: u32 = 3;
    /// The peer broke the protocol (oversized frame, no Hello, unsupported version or ALPN).
    pub const PROTOCOL: u32 = 4;
    /// A newer connection of the same probe replaced this one.
    pub const SUPERSEDED: u32 = 5;
    /// The coordinator failed (storage error); the probe retries later.
    pub const INTERNAL: u32 = 6;
}

/// Bytes a probe may send beyond what its session has read (QUIC flow control, per stream and
/// per connection); see [`Service::bind`].
const LINK_WINDOW: u32 = 64 * 1024;

/// How the service behaves.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Names (DNS names or IP addresses) the server certificate carries: what probes dial.
    pub server_names: Vec<String>,
    /// A connection silent this long is dropped (default 30 s).
    pub idle_timeout: Duration,
    /// Keep-alive interval, below the idle timeout (default 10 s).
    pub keep_alive: Duration,
    /// How long a new connection may take to open its stream and send its first message
    /// (default 10 s).
    pub hello_timeout: Duration,
    /// How far in the future a result's timestamps may be (clock skew allowance, default 60 s).
    pub max_future_ms: i64,
    /// Validity of certificates issued at enrolment (default 365 days).
    pub probe_cert_validity: Duration,
    /// Whether enrolment (ALPN `meridian-enroll/1`) is served (default true).
    pub enrollment: bool,
    /// The configuration whose targets are assigned (`checks_for` each probe's region);
    /// `None` assigns nothing, so every result is refused. Replaced by
    /// [`ServiceHandle::reload`].
    pub targets: Option<Arc<CoordinatorConfig>>,
    /// The probes' heartbeat interval: a probe is silent after two of them without a message
    /// (default 10 s, the probe's default).
    pub heartbeat_interval: Duration,
    /// How often every live probe is pinged for its clock offset (default 60 s).
    pub ping_interval: Duration,
    /// How often last-seen times and clock offsets are written to the store (default 15 s).
    pub flush_interval: Duration,
    /// How often the store is checked for probes revoked from outside the service (the
    /// `coordinator probe revoke` command writes the store directly), whose live connections
    /// are then closed (default 2 s).
    pub revocation_poll: Duration,
    /// The GeoIP databases probes' addresses are looked up in, opened once at start; without
    /// them only the operator's pins give probes a network (default none).
    pub geoip: Option<Arc<GeoIp>>,
    /// Where the detection thread hands incident transitions for alerting (the dispatcher of
    /// [`crate::alerting`]; default none: nothing is alerted).
    pub alerts: Option<crate::alerting::AlertSender>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            server_names: vec!["localhost".to_string()],
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            max_future_ms: 60_000,
            probe_cert_validity: Duration::from_secs(365 * 86_400),
            enrollment: true,
            targets: None,
            heartbeat_interval: Duration::from_secs(10),
            ping_interval: Duration::from_secs(60),
            flush_interval: Duration::from_secs(15),
            revocation_poll: Duration::from_secs(2),
            geoip: None,
            alerts: None,
        }
    }
}

/// Event counters, for tests and (later) metrics. Each is monotonic since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Link sessions opened (HelloAck sent).
    pub sessions: AtomicU64,
    /// Connections refused: no certificate, unknown, revoked, bad version.
    pub refused: AtomicU64,
    /// Handshakes that failed (a certificate from another CA, no common ALPN, ...).
    pub handshake_failures: AtomicU64,
    /// Frames whose payload did not decode (garbage MessagePack, trailing bytes); only that
    /// frame was lost.
    pub garbage_frames: AtomicU64,
    /// Frame headers over the size limit; each closed its connection.
    pub oversized_frames: AtomicU64,
    /// Messages out of place (a second Hello, anything before Hello).
    pub protocol_violations: AtomicU64,
    /// Result batches handled and acknowledged.
    pub batches: AtomicU64,
    /// Results newly stored.
    pub results_stored: AtomicU64,
    /// Results already stored before (re-sent after a lost ack).
    pub results_duplicate: AtomicU64,
    /// Results refused by validation (acknowledged, never stored).
    pub results_rejected: AtomicU64,
    /// Of those, results of a check outside the probe's current and previous assignment.
    pub results_unassigned: AtomicU64,
    /// Assignments sent.
    pub assignments_sent: AtomicU64,
    /// Commands sent (pings included).
    pub commands_sent: AtomicU64,
    /// `CommandDone` answers that report success.
    pub commands_done: AtomicU64,
    /// `CommandDone` answers that report an error.
    pub commands_failed: AtomicU64,
    /// `Pong`s that gave a clock-offset sample.
    pub pongs: AtomicU64,
    /// `Pong`s discarded: unknown ping, or inconsistent timestamps.
    pub pongs_discarded: AtomicU64,
    /// Heartbeats received.
    pub heartbeats: AtomicU64,
    /// Probes enrolled.
    pub enrolled: AtomicU64,
    /// Enrolment attempts refused.
    pub enroll_refused: AtomicU64,
    /// Bursts the detection engine ordered.
    pub bursts_ordered: AtomicU64,
    /// Burst commands sent for them (one per probe with a live session).
    pub burst_commands: AtomicU64,
    /// Probes a burst named that had no live session (skipped).
    pub burst_probes_skipped: AtomicU64,
    /// Incident transitions (opened, paged, updated, resolved, re-opened) logged and stored.
    pub incident_transitions: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why the service could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Issuing the server certificate failed.
    #[error("server certificate: {0}")]
    Pki(#[from] PkiError),
    /// Building the TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built over the CA.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The TLS configuration has no cipher suite QUIC can start with.
    #[error("QUIC TLS configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// Setting up the QUIC endpoint on the socket failed.
    #[error("QUIC endpoint: {0}")]
    Io(#[from] std::io::Error),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A group commit holding this batch failed (every batch in it gets the same error).
    #[error("storing a batch: {0}")]
    Ingest(Arc<StoreError>),
    /// The store thread is gone (it panicked or the service stopped).
    #[error("the store thread has stopped")]
    StoreGone,
    /// The probe has no live link session to send a command on.
    #[error("probe {0} is not connected")]
    NotConnected(String),
}

/// State shared by the accept loop, every connection task and the handles.
struct Shared {
    /// Behaviour.
    config: ServiceConfig,
    /// Event counters.
    counters: Counters,
    /// The store's thread.
    store: StoreThread,
    /// Signs probe certificates at enrolment.
    ca: Ca,
    /// Live link connections by probe id: what revocation closes and pushes reach.
    live: Mutex<HashMap<String, Vec<LiveConn>>>,
    /// Assignments and liveness; see [`state`].
    state: Mutex<state::State>,
    /// The configuration whose targets are assigned.
    targets: Mutex<Option<Arc<CoordinatorConfig>>>,
    /// Serializes assignment recomputations.
    refreshing: tokio::sync::Mutex<()>,
    /// The next command id (pings included); unique for this run of the service.
    next_command: AtomicU64,
    /// The detection thread's inbox.
    detection: detection::Feed,
    /// The detection thread's latest view and the changes pages are told about.
    views: live::Live,
    /// Latency histograms and failure counts of stored results, for `/metrics`.
    checks: Arc<crate::metrics::CheckMetrics>,
    /// The stored maintenance windows (API, CLI), validated against the configuration;
    /// re-read with every revocation sweep and after every change through the API.
    maintenance: std::sync::RwLock<Arc<Vec<crate::maintenance::Window>>>,
}

/// One live link connection.
struct LiveConn {
    /// The connection's `stable_id`.
    id: usize,
    /// The connection, to close it.
    conn: quinn::Connection,
    /// Its session's inbox.
    push: tokio::sync::mpsc::UnboundedSender<Push>,
}

impl Shared {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<LiveConn>>> {
        // The map stays consistent even if a holder panicked: every update is one insert/remove.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every maintenance window in force: the configuration's, then the stored ones.
    fn maintenance_windows(&self) -> Vec<crate::maintenance::Window> {
        let stored = self
            .maintenance
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut all = self
            .targets()
            .map(|c| c.maintenance.clone())
            .unwrap_or_default();
        all.extend(stored.iter().cloned());
        all
    }

    fn targets(&self) -> Option<Arc<CoordinatorConfig>> {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Hands `push` to the probe's newest live session; false when it has none.
    fn push(&self, probe_id: &str, push: Push) -> bool {
        let live = self.live();
        live.get(probe_id)
            .and_then(|conns| conns.last())
            .is_some_and(|c| c.push.send(push).is_ok())
    }

    /// Queues a command for a probe; returns its id.
    fn command(&self, probe_id: &str, kind: CommandKind) -> Result<u64, ServiceError> {
        let command_id = self.next_command.fetch_add(1, Ordering::Relaxed);
        let kind = match kind {
            // The id is the command's, and t1 is stamped by the session as it writes.
            CommandKind::Ping { .. } => CommandKind::Ping {
                ping_id: command_id,
                sent_ms: 0,
            },
            other => other,
        };
        let cmd = Command { command_id, kind };
        if self.push(probe_id, Push::Command(cmd)) {
            Ok(command_id)
        } else {
            Err(ServiceError::NotConnected(probe_id.to_owned()))
        }
    }
}

/// The running service's handle: counters, revocation, store access. Cheap to clone.
#[derive(Clone)]
pub struct ServiceHandle {
    /// The shared state.
    shared: Arc<Shared>,
    /// Where the endpoint listens.
    local_addr: SocketAddr,
}

impl ServiceHandle {
    /// The address the QUIC endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The event counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Live link connections of a probe.
    pub fn live_connections(&self, probe_id: &str) -> usize {
        self.shared.live().get(probe_id).map_or(0, Vec::len)
    }

    /// Revokes a probe in the store, then closes its live connections at once (close code
    /// [`close::REVOKED`]). Returns whether the store changed (false: unknown or already
    /// revoked; connections are closed either way).
    pub async fn revoke(&self, probe_id: &str) -> Result<bool, ServiceError> {
        let id = probe_id.to_owned();
        let changed = self
            .shared
            .store
            .call(move |s| s.revoke_probe(&id, now_ms()))
            .await??;
        let conns = self.shared.live().remove(probe_id).unwrap_or_default();
        for c in &conns {
            c.conn.close(close::REVOKED.into(), b"probe revoked");
        }
        tracing::info!(probe_id, closed = conns.len(), "probe revoked");
        // The region's other probes move up a slot.
        state::refresh(&self.shared).await?;
        Ok(changed)
    }

    /// Closes the live connections of every probe the store says is revoked (revoked by the
    /// CLI or another process); returns how many probes were cut off.
    pub async fn sweep_revocations(&self) -> Result<usize, ServiceError> {
        let revoked = self.shared.store.call(|s| s.revoked_probe_ids()).await??;
        let mut cut = 0;
        for probe_id in revoked {
            let conns = self.shared.live().remove(&probe_id).unwrap_or_default();
            if conns.is_empty() {
                continue;
            }
            for c in &conns {
                c.conn.close(close::REVOKED.into(), b"probe revoked");
            }
            tracing::info!(
                probe_id,
                closed = conns.len(),
                "probe revoked in the store; connections closed"
            );
            cut += 1;
        }
        if cut > 0 {
            state::refresh(&self.shared).await?;
        }
        Ok(cut)
    }

    /// Puts a new configuration's targets in force: every probe's assignment is recomputed,
    /// and the changed ones are pushed to live probes. Returns how many changed.
    pub async fn reload(&self, config: Arc<CoordinatorConfig>) -> Result<usize, ServiceError> {
        let interval_ms = detection::interval_ms(Some(&config));
        if interval_ms != self.shared.detection.interval_ms {
            tracing::warn!(
                interval_ms,
                detection_interval_ms = self.shared.detection.interval_ms,
                "the smallest check interval changed: detection keeps its time scale until restart"
            );
        }
        self.shared.checks.set_targets(&config);
        *self
            .shared
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(config);
        state::refresh(&self.shared).await
    }

    /// A probe's current assignment.
    pub fn assignment(&self, probe_id: &str) -> Option<Assignment> {
        self.shared
            .state()
            .assignments
            .get(probe_id)
            .map(|c| c.assignment.clone())
    }

    /// Sends a command to a live probe; returns its `command_id`. For a `Ping`, the given
    /// `ping_id` and `sent_ms` are replaced: the ping id is the command id, and the send time
    /// is stamped as the command is written.
    pub fn send_command(&self, probe_id: &str, kind: CommandKind) -> Result<u64, ServiceError> {
        self.shared.command(probe_id, kind)
    }

    /// Pings every live probe (what the service does every [`ServiceConfig::ping_interval`]);
    /// returns how many were pinged.
    pub fn ping_all(&self) -> usize {
        let ids: Vec<String> = self.shared.live().keys().cloned().collect();
        let ping = || CommandKind::Ping {
            ping_id: 0,
            sent_ms: 0,
        };
        ids.iter()
            .filter(|id| self.shared.command(id, ping()).is_ok())
            .count()
    }

    /// A probe's network as learnt at its latest connection this run (GeoIP of its address,
    /// the operator's pin on top); `None` before it connected.
    pub fn probe_network(&self, probe_id: &str) -> Option<Network> {
        self.shared.state().networks.get(probe_id).cloned()
    }

    /// Tests: the probes of the topology the detection thread last installed, with their ASNs.
    #[cfg(test)]
    fn installed_topology(&self) -> Vec<crate::detect::ProbeInfo> {
        self.shared.detection.installed().unwrap_or_default()
    }

    /// The detection thread's newest view of every (target, region) and the open incidents;
    /// `changed()` wakes when a new one is published (at most once a second).
    pub fn live_view(&self) -> tokio::sync::watch::Receiver<Arc<live::LiveView>> {
        self.shared.views.view.subscribe()
    }

    /// The configuration in force (the one the service was started or last reloaded with).
    pub fn config(&self) -> Option<Arc<CoordinatorConfig>> {
        self.shared.targets()
    }

    /// Incident and message changes from now on.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<live::Event> {
        self.shared.views.events.subscribe()
    }

    /// Tells pages about a change made outside detection (a person edited a message).
    pub fn announce(&self, event: live::Event) {
        self.shared.views.announce(event);
    }

    /// The latency histograms and failure counts fed at ingest (`/metrics`).
    pub fn check_metrics(&self) -> &Arc<crate::metrics::CheckMetrics> {
        &self.shared.checks
    }

    /// Every enrolled, non-revoked probe: live or not, last seen, silent, clock offset.
    pub fn probe_states(&self) -> Vec<ProbeState> {
        state::probe_states(&self.shared, now_ms())
    }

    /// Writes last-seen times and clock offsets to the store now (the service does it every
    /// [`ServiceConfig::flush_interval`] and at shutdown); returns how many probes.
    pub async fn flush_liveness(&self) -> Result<usize, ServiceError> {
        state::flush(&self.shared).await
    }

    /// Every maintenance window in force: the configuration's, then the stored ones.
    pub fn maintenance_windows(&self) -> Vec<crate::maintenance::Window> {
        self.shared.maintenance_windows()
    }

    /// Re-reads the stored maintenance windows (after a change through the API; the service
    /// also does it with every revocation sweep, which picks up the CLI's); returns how many
    /// are in force.
    pub async fn refresh_maintenance(&self) -> Result<usize, ServiceError> {
        let stored = self.with_store(|s| s.maintenance_windows()).await??;
        let windows = validated_windows(self.shared.targets().as_deref(), stored);
        let n = windows.len();
        *self
            .shared
            .maintenance
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(windows);
        Ok(n)
    }

    /// Runs `f` on the store thread (queries, token creation) and returns its result.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.shared.store.call(f).await
    }
}

/// Stored windows that still validate against `config` (a window naming a target or region
/// since removed is logged and left out).
fn validated_windows(
    config: Option<&CoordinatorConfig>,
    stored: Vec<crate::store::maintenance::StoredWindow>,
) -> Vec<crate::maintenance::Window> {
    let (targets, regions) = match config {
        Some(c) => c.maintenance_scope(),
        None => (
            Vec::new(),
            crate::config::region_ids(&meridian_shared::regions::Catalog::builtin()),
        ),
    };
    let known = crate::maintenance::Known {
        targets: &targets,
        regions: &regions,
    };
    let configured: Vec<&str> = config
        .map(|c| c.maintenance.iter().map(|w| w.id.as_str()).collect())
        .unwrap_or_default();
    stored
        .into_iter()
        .filter_map(|w| {
            if configured.contains(&w.raw.id.as_str()) {
                tracing::warn!(id = %w.raw.id, "stored maintenance window shadowed by one of the configuration with its id");
                return None;
            }
            match w.raw.validate(crate::maintenance::Source::Api, &known) {
                Ok(window) => Some(window),
                Err(problems) => {
                    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    tracing::warn!(id = %w.raw.id, problems = %problems.join("; "), "stored maintenance window no longer valid: not in force");
                    None
                }
            }
        })
        .collect()
}

/// The QUIC service, bound and not yet serving.
pub struct Service {
    /// The endpoint (server role only).
    endpoint: quinn::Endpoint,
    /// Shared with connection tasks and handles.
    handle: ServiceHandle,
}

impl Service {
    /// Sets up the endpoint on `socket` with a fresh server certificate from `ca`, and starts
    /// the store thread. Must be called inside a tokio runtime.
    pub fn bind(
        socket: std::net::UdpSocket,
        ca: Ca,
        mut store: Store,
        config: ServiceConfig,
    ) -> Result<Service, ServiceError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (chain, key) =
            ca.server_cert(&config.server_names, Duration::from_secs(86_400 * 825))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        tls.alpn_protocols = vec![meridian_shared::wire::ALPN.to_vec(), ENROLL_ALPN.to_vec()];
        tls.max_early_data_size = 0;
        let mut server =
            quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok())
            .keep_alive_interval(Some(config.keep_alive))
            // Probes open one stream each; nothing else is accepted.
            .max_concurrent_uni_streams(0u8.into())
            .max_concurrent_bidi_streams(1u8.into())
            // What a probe may send ahead of the session reading it, per connection. quinn's
            // defaults (1.25 MB per stream, no connection limit) let every probe park its whole
            // in-flight window in the coordinator's memory while its session waits on a group
            // commit: ~70 MiB of bench-link's peak with 200 probes. 256 KiB still holds a few
            // default batches (~55 KB each), and a larger frame simply flows as it is read.
            .stream_receive_window(LINK_WINDOW.into())
            .receive_window(LINK_WINDOW.into());
        server.transport_config(Arc::new(transport));
        let endpoint = quinn::Endpoint::new(
            endpoint_config(&ca),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let local_addr = endpoint.local_addr()?;
        tracing::info!(%local_addr, "QUIC service listening");
        // The first assignments, before any probe can connect.
        let mut probes = state::State::default();
        // Networks learnt in earlier runs: quorums count independent networks from the start,
        // not only once every probe has reconnected.
        probes.networks = store
            .probe_networks()?
            .into_iter()
            .map(|(id, stored)| (id, stored.network))
            .collect();
        let (versioned, registry) =
            state::compute(&mut store, config.targets.as_deref(), now_ms())?;
        // Detection: a new run of the engine over the registry.
        let began_ms = now_ms();
        let (id_base, interrupted) = store.begin_detection(began_ms)?;
        if interrupted > 0 {
            tracing::info!(
                interrupted,
                "incidents left open by the previous run marked interrupted"
            );
        }
        let targets = config.targets.clone();
        let engine = crate::detect::Engine::new(
            detection::params(targets.as_deref(), config.heartbeat_interval),
            detection::topology(
                &registry,
                &detection::catalog(targets.as_deref()),
                &probes.networks,
            ),
        );
        let (feed, inbox) = detection::channel(detection::interval_ms(targets.as_deref()));
        // A cold engine is better than no service: a reader that cannot open is logged.
        let history = match store.reader() {
            Ok(reader) => Some((reader, began_ms)),
            Err(e) => {
                tracing::warn!(error = %e, "no warm start: cannot open a reader of the store");
                None
            }
        };
        state::install(&mut probes, versioned, registry);
        let maintenance = match store.maintenance_windows() {
            Ok(stored) => validated_windows(targets.as_deref(), stored),
            Err(error) => {
                tracing::error!(%error, "stored maintenance windows unreadable: none in force");
                Vec::new()
            }
        };
        let checks = Arc::new(crate::metrics::CheckMetrics::default());
        if let Some(config) = &targets {
            checks.set_targets(config);
        }
        let shared = Arc::new(Shared {
            config,
            counters: Counters::default(),
            store: StoreThread::spawn(store, feed.clone(), checks.clone())?,
            ca,
            live: Mutex::new(HashMap::new()),
            state: Mutex::new(probes),
            targets: Mutex::new(targets),
            refreshing: tokio::sync::Mutex::new(()),
            next_command: AtomicU64::new(1),
            detection: feed,
            views: live::Live::new(),
            checks,
            maintenance: std::sync::RwLock::new(Arc::new(maintenance)),
        });
        detection::spawn(Arc::downgrade(&shared), engine, id_base, inbox, history)?;
        Ok(Service {
            endpoint,
            handle: ServiceHandle { shared, local_addr },
        })
    }

    /// A handle to the service.
    pub fn handle(&self) -> ServiceHandle {
        self.handle.clone()
    }

    /// Serves connections until `shutdown` resolves, then closes every connection. Dropping
    /// the future (aborting its task) stops the service just as abruptly as a crash would,
    /// from the probes' point of view: connections close, nothing more is acknowledged.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let _close = CloseOnDrop(self.endpoint.clone());
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        let shared = self.handle.shared.clone();
        let first = tokio::time::Instant::now();
        // A zero period would panic in `interval`: a millisecond is the floor.
        let floor = Duration::from_millis(1);
        let (every_ping, every_flush, every_sweep) = (
            shared.config.ping_interval.max(floor),
            shared.config.flush_interval.max(floor),
            shared.config.revocation_poll.max(floor),
        );
        let mut ping = tokio::time::interval_at(first + every_ping, every_ping);
        let mut flush = tokio::time::interval_at(first + every_flush, every_flush);
        let mut sweep = tokio::time::interval_at(first + every_sweep, every_sweep);
        for timer in [&mut ping, &mut flush, &mut sweep] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ping.tick() => {
                    let pinged = self.handle.ping_all();
                    tracing::debug!(pinged, "clock pings sent");
                }
                _ = sweep.tick() => {
                    let handle = self.handle.clone();
                    tasks.spawn(async move {
                        if let Err(error) = handle.sweep_revocations().await {
                            tracing::error!(%error, "checking the store for revocations failed");
                        }
                        if let Err(error) = handle.refresh_maintenance().await {
                            tracing::error!(%error, "re-reading the maintenance windows failed");
                        }
                    });
                }
                _ = flush.tick() => {
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        if let Err(error) = state::flush(&shared).await {
                            tracing::error!(%error, "flushing liveness failed");
                        }
                    });
                }
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => {
                        tasks.spawn(serve(self.handle.shared.clone(), incoming));
                    }
                    None => break,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        self.endpoint
            .close(close::NORMAL.into(), b"coordinator shutting down");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        if let Err(error) = state::flush(&shared).await {
            tracing::error!(%error, "flushing liveness at shutdown failed");
        }
        tracing::info!("QUIC service stopped");
    }
}

/// The endpoint's configuration: its stateless-reset key and connection-ID generator, both
/// keyed by secrets derived from the CA key, so they are the same in every run on this data
/// directory.
///
/// A coordinator restarted after a crash (`kill -9`, power loss) must answer the packets of the
/// connections its previous run left open with a stateless reset, so that probes reconnect at
/// their next packet instead of waiting out the idle timeout. quinn sends one only for a
/// connection ID its generator recognises as its own (`ConnectionIdGenerator::validate`), and
/// the default generator signs its IDs with a key drawn at random per endpoint: a restarted
/// coordinator dropped the old IDs as invalid, and probes waited the full 30 s. The reset token
/// must match too: it is an HMAC of the connection ID under the reset key.
fn endpoint_config(ca: &Ca) -> quinn::EndpointConfig {
    let reset_key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &ca.derived_secret("quic-stateless-reset"),
    );
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    // quinn sends at most one reset per 20 ms by default: after a restart a fleet of 1,000
    // probes would need 20 s of resets, and a probe whose packet fell in another's interval
    // waits for its next keep-alive. Resets are never larger than the packet that incites them
    // and only answer IDs this generator issued, so a tighter floor amplifies nothing.
    config.min_reset_interval(Duration::from_millis(1));
    let secret = ca.derived_secret("quic-connection-id");
    let mut key = [0u8; 8];
    key.copy_from_slice(secret.get(..8).unwrap_or(&[0; 8]));
    let cid_key = u64::from_le_bytes(key);
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

/// Closes the endpoint when the serving future ends or is dropped.
struct CloseOnDrop(quinn::Endpoint);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0
            .close(close::NORMAL.into(), b"coordinator shutting down");
    }
}

/// One incoming connection: the handshake, then the link or enrolment by ALPN.
async fn serve(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(error) => {
            Counters::add(&shared.counters.handshake_failures, 1);
            tracing::info!(%remote, %error, "QUIC handshake failed");
            return;
        }
    };
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    match alpn.as_deref() {
        Some(meridian_shared::wire::ALPN) => link::serve(shared, conn).await,
        Some(ENROLL_ALPN) if shared.config.enrollment => enroll::serve(shared, conn).await,
        _ => {
            Counters::add(&shared.counters.refused, 1);
            tracing::info!(%remote, "connection with an unsupported ALPN refused");
            conn.close(close::PROTOCOL.into(), b"unsupported application protocol");
        }
    }
}

/// Wall clock, Unix milliseconds (the store's and the wire's unit).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
