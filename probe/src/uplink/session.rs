//! One coordinator's delivery task: connect, `Hello`, then batches out and acks in, until
//! something fails; then back off and start over.
//!
//! Within a session the spool is read *after* the last sequence sent (not after the cursor),
//! so up to `max_in_flight` batches travel before their acks; the cursor moves only on an
//! `Ack`, so a session that dies with batches in flight re-sends them next time and the
//! coordinator's idempotent ingest stores them once. A record the probe cannot decode (a
//! payload from a newer build) is skipped and acknowledged along with its neighbours, and so
//! is a record of a check this coordinator did not assign ([`Deliver`]); no batch is sent
//! before the coordinator's assignment is known.
//!
//! Deliberately absent: anything that reads a clock other than through tokio (the heartbeat's
//! wall-clock stamp aside).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use meridian_shared::check::CheckId;
use meridian_shared::wire::{
    self, CommandDone, CommandKind, CoordinatorMessage, FrameDecoder, Heartbeat, Hello, Pong,
    ProbeMessage, Reject, RejectReason, ResultBatch, SequencedResult, WireError,
};
use quinn::{RecvStream, SendStream};
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

use super::{
    Backoff, InboundCommand, LinkStatus, SpooledResult, Target, UplinkConfig, bump, offer,
};
use crate::assignment::{self, Held};
use crate::spool::{Record, Spool, SpoolError};

/// The coordinator's close code for a revoked probe (its `service::close::REVOKED`; the probe
/// cannot depend on the coordinator crate, so the number is repeated here).
const CLOSE_REVOKED: u32 = 2;

/// Everything one coordinator's task needs.
pub(super) struct Link {
    /// The coordinator.
    pub(super) target: Target,
    /// Batching, timing and backoff.
    pub(super) config: Arc<UplinkConfig>,
    /// QUIC and TLS client configuration.
    pub(super) client: quinn::ClientConfig,
    /// The shared spool.
    pub(super) spool: Arc<Mutex<Spool>>,
    /// Reported progress.
    pub(super) status: Arc<LinkStatus>,
    /// Every coordinator's newest assignment.
    pub(super) assignment: Arc<watch::Sender<Held>>,
    /// Burst and reload commands, for the agent.
    pub(super) commands: mpsc::Sender<InboundCommand>,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    /// The local UDP socket could not be set up.
    #[error("local socket: {0}")]
    Bind(#[from] std::io::Error),
    /// Connecting failed before the handshake.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to the stream failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading from the stream failed.
    #[error("read: {0}")]
    Read(#[from] quinn::ReadError),
    /// The coordinator sent an oversized frame, or a message could not be encoded.
    #[error("framing: {0}")]
    Wire(#[from] WireError),
    /// The spool failed.
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    /// A blocking spool call did not complete.
    #[error("spool task: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The coordinator refused the probe.
    #[error("refused: {} ({:?})", .0.message, .0.reason)]
    Rejected(Reject),
    /// The coordinator did not answer in time, or answered out of protocol.
    #[error("{0}")]
    Protocol(&'static str),
}

impl SessionError {
    /// The refusal that makes retrying pointless, if this is one.
    fn fatal(&self) -> Option<RejectReason> {
        match self {
            SessionError::Rejected(r) => match &r.reason {
                RejectReason::Revoked | RejectReason::UnsupportedVersion { .. } => {
                    Some(r.reason.clone())
                }
                _ => None,
            },
            SessionError::Connection(quinn::ConnectionError::ApplicationClosed(close))
                if close.error_code == quinn::VarInt::from_u32(CLOSE_REVOKED) =>
            {
                Some(RejectReason::Revoked)
            }
            _ => None,
        }
    }
}

/// Runs one coordinator's task until shutdown or a fatal refusal.
pub(super) async fn run(link: Link, mut shutdown: watch::Receiver<bool>) {
    let span =
        tracing::info_span!("uplink", coordinator = %link.target.name, addr = %link.target.addr);
    async move {
        let mut backoff = Backoff::new(link.config.backoff_min, link.config.backoff_max);
        let mut deliver = Deliver::new(link.assignment.subscribe(), &link.target.name);
        while !*shutdown.borrow() {
            let mut established = false;
            let outcome = tokio::select! {
                r = session(&link, &mut deliver, &mut established) => r,
                _ = shutdown.changed() => break,
            };
            link.status
                .connected
                .store(false, std::sync::atomic::Ordering::Relaxed);
            if established {
                backoff = Backoff::new(link.config.backoff_min, link.config.backoff_max);
            }
            if let Err(error) = outcome {
                bump(&link.status.failures);
                if let Some(reason) = error.fatal() {
                    tracing::error!(%error, "coordinator refused this probe for good; uplink stopped");
                    link.status.stop(reason);
                    return;
                }
                tracing::warn!(%error, "uplink session ended");
            }
            let delay = backoff.next_delay();
            tracing::debug!(?delay, "reconnecting after a delay");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
    .instrument(span)
    .await;
}

/// Runs a blocking spool operation off the runtime.
async fn with_spool<T: Send + 'static>(
    spool: &Arc<Mutex<Spool>>,
    f: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SessionError> {
    let spool = spool.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut guard = spool.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    })
    .await??;
    Ok(out)
}

async fn send(stream: &mut SendStream, msg: &ProbeMessage) -> Result<(), SessionError> {
    stream.write_all(&wire::encode(msg)?).await?;
    Ok(())
}

/// Binds a local UDP socket of the target's family: loopback for a loopback target (tests
/// never touch another address), the unspecified address otherwise.
fn endpoint(target: &Target) -> Result<quinn::Endpoint, SessionError> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let ip: IpAddr = match (target.addr.ip().is_loopback(), target.addr.is_ipv4()) {
        (true, true) => Ipv4Addr::LOCALHOST.into(),
        (true, false) => Ipv6Addr::LOCALHOST.into(),
        (false, true) => Ipv4Addr::UNSPECIFIED.into(),
        (false, false) => Ipv6Addr::UNSPECIFIED.into(),
    };
    Ok(quinn::Endpoint::client(SocketAddr::new(ip, 0))?)
}

/// Forwards the coordinator's messages; bad frames are skipped, an oversized one ends it.
/// Each message carries the wall-clock time it was decoded (a ping's t2).
async fn read_messages(
    mut recv: RecvStream,
    out: mpsc::Sender<(Result<CoordinatorMessage, SessionError>, i64)>,
) {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let item = match decoder.next_message::<CoordinatorMessage>() {
            Ok(Some(msg)) => Ok(msg),
            Err(e @ WireError::FrameTooLarge { .. }) => Err(SessionError::Wire(e)),
            Err(error) => {
                tracing::warn!(%error, "undecodable frame from the coordinator skipped");
                continue;
            }
            Ok(None) => match recv.read(&mut buf).await {
                Ok(Some(n)) => match decoder.push(buf.get(..n).unwrap_or_default()) {
                    Ok(()) => continue,
                    Err(e) => Err(SessionError::Wire(e)),
                },
                Ok(None) => Err(SessionError::Protocol("the coordinator ended the stream")),
                Err(e) => Err(SessionError::Read(e)),
            },
        };
        let end = item.is_err();
        if out.send((item, wall_ms())).await.is_err() || end {
            return;
        }
    }
}

/// Decodes spool records into a batch; undecodable records are left out (and logged).
pub(super) fn to_results(records: Vec<Record>) -> Vec<SequencedResult> {
    records
        .into_iter()
        .filter_map(|r| match SpooledResult::decode(&r.payload) {
            Ok(s) => Some(SequencedResult {
                seq: r.seq,
                result: s.result,
                burst: s.burst,
            }),
            Err(error) => {
                tracing::warn!(seq = r.seq, %error, "spooled record does not decode; skipped");
                None
            }
        })
        .collect()
}

/// A batch on its way: the highest sequence it carries (`None`: every record was skipped) and
/// the highest sequence read for it, which the cursor may move to once it is acknowledged.
struct InFlight {
    /// Highest sequence sent in the batch.
    sent: Option<u64>,
    /// Highest sequence read from the spool for it.
    read: u64,
    /// Results it carries (`LinkStatus::results_acked` once acknowledged).
    results: u64,
}

/// Which records go to one coordinator, decided when they are sent: results of the checks it
/// assigned that run as it assigned them ([`assignment::deliverable`]), and, until the next
/// change, those of the set before that no coordinator runs any more (results still in the
/// spool from before the change, which the coordinator accepts as its previous assignment's).
/// Kept across sessions.
///
/// Deciding at send time rather than when a result is produced is exact except around a change
/// for a check id that keeps running: a record produced just before is judged by the new set
/// (with one coordinator, or coordinators agreeing on their checks, there is no such case).
pub(super) struct Deliver {
    /// Every coordinator's assignment, as published.
    held: watch::Receiver<Held>,
    /// The coordinator's name.
    name: String,
    /// The checks delivered now; `None` until the coordinator's assignment is known.
    current: Option<BTreeSet<CheckId>>,
    /// The checks delivered before the last change.
    previous: BTreeSet<CheckId>,
    /// Every check id some coordinator assigns now (runs now).
    running: BTreeSet<CheckId>,
}

impl Deliver {
    pub(super) fn new(held: watch::Receiver<Held>, name: &str) -> Deliver {
        let mut d = Deliver {
            held,
            name: name.to_owned(),
            current: None,
            previous: BTreeSet::new(),
            running: BTreeSet::new(),
        };
        d.take_in();
        d
    }

    /// Takes in a newly published assignment, if any.
    pub(super) fn refresh(&mut self) {
        if self.held.has_changed().unwrap_or(false) {
            self.take_in();
        }
    }

    fn take_in(&mut self) {
        let held = self.held.borrow_and_update();
        let next = assignment::deliverable(&held, &self.name);
        self.running = held
            .iter()
            .flat_map(|(_, a)| a.checks.iter().map(|c| c.id.clone()))
            .collect();
        drop(held);
        if next != self.current {
            if let Some(current) = self.current.take() {
                self.previous = current;
            }
            self.current = next;
        }
    }

    /// Whether the coordinator's assignment is known (before that, nothing is sent).
    pub(super) fn ready(&self) -> bool {
        self.current.is_some()
    }

    /// Whether results of `check` go to this coordinator.
    pub(super) fn allows(&self, check: &CheckId) -> bool {
        self.current.as_ref().is_some_and(|c| c.contains(check))
            || (self.previous.contains(check) && !self.running.contains(check))
    }
}

async fn session(
    link: &Link,
    deliver: &mut Deliver,
    established: &mut bool,
) -> Result<(), SessionError> {
    let cfg = &link.config;
    let cursor = link.target.name.clone();
    let endpoint = endpoint(&link.target)?;
    let _close = CloseOnDrop(endpoint.clone());
    let connecting = endpoint.connect_with(
        link.client.clone(),
        link.target.addr,
        &link.target.server_name,
    )?;
    let conn = tokio::time::timeout(cfg.connect_timeout, connecting)
        .await
        .map_err(|_| SessionError::Protocol("connect timed out"))??;
    let (mut tx, rx) = conn.open_bi().await?;
    let next_seq = with_spool(&link.spool, |s| Ok(s.stats().next_seq)).await?;
    let hello = ProbeMessage::Hello(Hello {
        version: wire::PROTOCOL_VERSION,
        probe_version: env!("CARGO_PKG_VERSION").to_string(),
        assignment_version: link
            .assignment
            .borrow()
            .get(&link.target.name)
            .map(|a| a.version),
        spool_next_seq: next_seq,
    });
    send(&mut tx, &hello).await?;
    let (msgs_tx, mut msgs) = mpsc::channel(16);
    let reader = tokio::spawn(read_messages(rx, msgs_tx));
    let _reader = AbortOnDrop(reader);
    let ack = match tokio::time::timeout(cfg.connect_timeout, msgs.recv())
        .await
        .map(|m| m.map(|(m, _)| m))
    {
        Err(_) => return Err(SessionError::Protocol("no HelloAck in time")),
        Ok(None) => return Err(SessionError::Protocol("the coordinator ended the stream")),
        Ok(Some(Err(e))) => return Err(close_reason(&conn, e)),
        Ok(Some(Ok(CoordinatorMessage::HelloAck(ack)))) => ack,
        Ok(Some(Ok(CoordinatorMessage::Reject(r)))) => return Err(SessionError::Rejected(r)),
        Ok(Some(Ok(_))) => return Err(SessionError::Protocol("expected HelloAck")),
    };
    // What the coordinator already holds (a lost ack) need not be sent again.
    let c = cursor.clone();
    let mut sent = with_spool(&link.spool, move |s| {
        let newest = s.stats().next_seq.saturating_sub(1);
        if let Some(stored) = ack.acked_up_to_seq {
            if stored <= newest {
                s.ack(&c, stored)?;
            } else {
                tracing::warn!(
                    stored,
                    newest,
                    "the coordinator holds sequences this spool never assigned"
                );
            }
        }
        Ok(s.stats()
            .cursors
            .iter()
            .find(|x| x.name == c)
            .map_or(0, |x| x.acked))
    })
    .await?;
    *established = true;
    link.status
        .connected
        .store(true, std::sync::atomic::Ordering::Relaxed);
    link.status
        .acked
        .store(sent, std::sync::atomic::Ordering::Relaxed);
    bump(&link.status.sessions);
    tracing::info!(acked = sent, "uplink session open");

    let (done_tx, mut done_rx) = mpsc::channel::<CommandDone>(16);
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let start = tokio::time::Instant::now() + cfg.heartbeat;
    let mut heartbeat = tokio::time::interval_at(start, cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut drained = false;
        deliver.refresh();
        if deliver.ready() && in_flight.len() < cfg.max_in_flight.max(1) {
            let (after, n, bytes) = (sent, cfg.batch_records.max(1), cfg.batch_bytes);
            let records = with_spool(&link.spool, move |s| s.read_after(after, n, bytes)).await?;
            match records.last().map(|r| r.seq) {
                None => drained = true,
                Some(read) => {
                    let first_seq = sent + 1;
                    let mut results = to_results(records);
                    let decoded = results.len();
                    results.retain(|r| deliver.allows(&r.result.check_id));
                    let skipped = (decoded - results.len()) as u64;
                    if skipped > 0 {
                        link.status
                            .skipped
                            .fetch_add(skipped, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(
                            skipped,
                            up_to = read,
                            "results of checks this coordinator did not assign skipped"
                        );
                    }
                    let highest = results.last().map(|r| r.seq);
                    let carried = results.len() as u64;
                    if let Some(highest) = highest {
                        send_batch(&mut tx, first_seq, results).await?;
                        bump(&link.status.batches_sent);
                        link.status
                            .results_sent
                            .fetch_add(carried, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(first_seq, highest, "batch sent");
                    }
                    sent = read;
                    if highest.is_none() && in_flight.is_empty() {
                        ack_cursor(link, &cursor, read).await?;
                    } else {
                        in_flight.push_back(InFlight {
                            sent: highest,
                            read,
                            results: carried,
                        });
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            Some(done) = done_rx.recv() => send(&mut tx, &ProbeMessage::CommandDone(done)).await?,
            msg = msgs.recv() => match msg {
                Some((Ok(CoordinatorMessage::Assignment(a)), _)) => {
                    let version = a.version;
                    if let Some(problem) = assignment::problem(&a) {
                        tracing::warn!(version, %problem, "assignment refused; keeping the current one");
                    } else if offer(&link.assignment, &link.target.name, a) {
                        tracing::info!(version, "new assignment");
                    } else {
                        tracing::debug!(version, "assignment not newer than the one held; ignored");
                    }
                }
                Some((Ok(CoordinatorMessage::Command(c)), recv_ms)) => {
                    if let CommandKind::Ping { ping_id, .. } = c.kind {
                        let pong = Pong { ping_id, probe_recv_ms: recv_ms, probe_send_ms: wall_ms() };
                        send(&mut tx, &ProbeMessage::Pong(pong)).await?;
                    } else {
                        let command_id = c.command_id;
                        let inbound = InboundCommand {
                            coordinator: link.target.name.clone(),
                            command: c,
                            done: done_tx.clone(),
                        };
                        if link.commands.try_send(inbound).is_err() {
                            tracing::warn!(command_id, "command refused: the agent is not taking commands");
                            let done = CommandDone { command_id, error: Some("the probe is busy or not taking commands".into()) };
                            send(&mut tx, &ProbeMessage::CommandDone(done)).await?;
                        }
                    }
                }
                Some((Ok(CoordinatorMessage::Ack(a)), _)) => {
                    let (mut to, mut acked) = (None, 0);
                    while in_flight.front().is_some_and(|f| f.sent.is_none_or(|s| s <= a.up_to_seq)) {
                        if let Some(f) = in_flight.pop_front() {
                            (to, acked) = (Some(f.read), acked + f.results);
                        }
                    }
                    link.status.results_acked.fetch_add(acked, std::sync::atomic::Ordering::Relaxed);
                    let up_to = to.map_or(a.up_to_seq, |r| r.max(a.up_to_seq)).min(sent);
                    ack_cursor(link, &cursor, up_to).await?;
                }
                Some((Ok(CoordinatorMessage::Reject(r)), _)) => return Err(SessionError::Rejected(r)),
                Some((Ok(CoordinatorMessage::HelloAck(_)), _)) => tracing::debug!("a second HelloAck; ignored"),
                Some((Err(e), _)) => return Err(close_reason(&conn, e)),
                None => return Err(SessionError::Protocol("the coordinator ended the stream")),
            },
            _ = heartbeat.tick() => {
                let beat = ProbeMessage::Heartbeat(Heartbeat { sent_ms: wall_ms() });
                send(&mut tx, &beat).await?;
            }
            () = tokio::time::sleep(cfg.poll), if drained || in_flight.len() < cfg.max_in_flight.max(1) => {}
        }
    }
}

/// A read error caused by the connection closing is reported as the close itself (so that a
/// revocation's close code is seen).
fn close_reason(conn: &quinn::Connection, error: SessionError) -> SessionError {
    match conn.close_reason() {
        Some(reason) => SessionError::Connection(reason),
        None => error,
    }
}

/// Sends a batch, halving it while it does not fit in one frame.
async fn send_batch(
    tx: &mut SendStream,
    first_seq: u64,
    results: Vec<SequencedResult>,
) -> Result<(), SessionError> {
    let mut pending = VecDeque::from([(first_seq, results)]);
    // At most 64 pieces: records are capped far below a frame, so halving ends quickly.
    for _ in 0..64 {
        let Some((first_seq, results)) = pending.pop_front() else {
            return Ok(());
        };
        let msg = ProbeMessage::ResultBatch(ResultBatch { first_seq, results });
        match wire::encode(&msg) {
            Ok(frame) => tx.write_all(&frame).await?,
            Err(WireError::FrameTooLarge { .. }) => {
                let ProbeMessage::ResultBatch(mut b) = msg else {
                    return Err(SessionError::Protocol("unreachable: not a batch"));
                };
                if b.results.len() < 2 {
                    return Err(SessionError::Protocol("one result does not fit in a frame"));
                }
                let tail = b.results.split_off(b.results.len() / 2);
                let tail_first = tail.first().map_or(b.first_seq, |r| r.seq);
                pending.push_front((tail_first, tail));
                pending.push_front((b.first_seq, b.results));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SessionError::Protocol(
        "a batch could not be split into frames",
    ))
}

async fn ack_cursor(link: &Link, cursor: &str, up_to: u64) -> Result<(), SessionError> {
    let c = cursor.to_owned();
    with_spool(&link.spool, move |s| s.ack(&c, up_to)).await?;
    link.status
        .acked
        .fetch_max(up_to, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Closes the session's endpoint however the session ends.
struct CloseOnDrop(quinn::Endpoint);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(0u32.into(), b"probe closing the session");
    }
}

/// Aborts the reader task with the session.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
