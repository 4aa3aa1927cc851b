//! One probe's link session: certificate identity, `Hello`/`HelloAck`, then result batches
//! and heartbeats on the single bidirectional stream the probe opened.
//!
//! Order of checks: the certificate (verified against the CA by TLS) must name a probe; the
//! connection is registered as live *before* the store is asked whether the probe is known and
//! not revoked, so a revocation racing with a connect either is seen by the check or finds the
//! connection to close. Each batch is validated (`validate_batch`), the accepted records are
//! stored under the certificate's id and region, and only after the transaction committed is
//! an `Ack` sent, covering refused records too.
//!
//! Right after `HelloAck` the probe's current assignment is sent, and again whenever the
//! service nudges the session ([`Push::Assignment`]) and the version differs from the one sent.
//! Commands arrive the same way; a ping's t1 is stamped as it is written, and its `Pong`
//! gives an offset sample (`wire::clock_offset`), and the filtered estimate goes to detection.
//! Any message refreshes the probe's last-seen time in memory; nothing is written to the store
//! per heartbeat. Stored results reach detection from the store thread, after their commit.
//! Once the probe is known, its network is learnt from the connection's remote address
//! ([`network`]): GeoIP, the operator's pin on top, a WARN when it geolocates far from the
//! region, and a detection topology refresh when its ASN is new.
//!
//! Bad input: a payload that does not decode costs that frame only (counted, logged); an
//! oversized length ends the session with a `Reject` (it breaks framing for good).

use std::collections::HashMap;
use std::sync::Arc;

use meridian_shared::wire::{
    self, Ack, CoordinatorMessage, FrameDecoder, HelloAck, ProbeMessage, Reject, RejectReason,
    ResultBatch, SequencedResult, WireError,
};
use quinn::{Connection, RecvStream, SendStream};
use tracing::Instrument as _;

use super::detection::{self, Observation};
use super::state::{self, Push};
use super::{Counters, LiveConn, ServiceError, Shared, close, now_ms};
use crate::geoip::{self, Network};
use crate::pki::ProbeIdentity;
use crate::store::probes::ProbeNetwork;

/// Pings still awaiting their pong, at most: older ones are forgotten.
const MAX_PENDING_PINGS: usize = 16;

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum LinkEnd {
    /// Reading from the stream failed (connection lost, closed by a revocation).
    #[error("read: {0}")]
    Read(#[from] quinn::ReadError),
    /// Writing to the stream failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// A frame header announced more than the limit.
    #[error("{0}")]
    Oversized(WireError),
    /// A message could not be encoded.
    #[error("encode: {0}")]
    Encode(WireError),
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Serves one link connection to its end.
pub(super) async fn serve(shared: Arc<Shared>, conn: Connection) {
    let remote = conn.remote_address();
    let identity = match identity(&conn) {
        Ok(identity) => identity,
        Err(why) => {
            Counters::add(&shared.counters.refused, 1);
            tracing::warn!(%remote, why, "link refused");
            conn.close(close::NO_CERTIFICATE.into(), why.as_bytes());
            return;
        }
    };
    let span = tracing::info_span!("link", probe_id = %identity.probe_id, region = %identity.region, %remote);
    let (_live, inbox) = Live::register(&shared, &identity.probe_id, &conn);
    async {
        match session(&shared, &conn, &identity, inbox).await {
            Ok(()) => {
                tracing::info!("link closed by the probe");
                conn.close(close::NORMAL.into(), b"bye");
            }
            Err(LinkEnd::Read(error)) => tracing::info!(%error, "link ended"),
            Err(error) => {
                tracing::warn!(%error, "link ended with an error");
                conn.close(close::INTERNAL.into(), b"coordinator error");
            }
        }
    }
    .instrument(span)
    .await;
}

/// The probe identity from the verified client certificate.
fn identity(conn: &Connection) -> Result<ProbeIdentity, &'static str> {
    let chain = conn
        .peer_identity()
        .and_then(|id| {
            id.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .ok_or("client certificate required")?;
    let leaf = chain.first().ok_or("client certificate required")?;
    crate::pki::identity_from_cert(leaf.as_ref()).map_err(|_| "certificate names no probe")
}

/// This connection's entry in the live map, removed when the session ends. A newer connection
/// of the same probe supersedes older ones: a probe runs one link per coordinator, so an older
/// connection is a half-open leftover.
struct Live {
    /// The map's owner.
    shared: Arc<Shared>,
    /// Key in the map.
    probe_id: String,
    /// The connection's `stable_id`.
    id: usize,
}

impl Live {
    fn register(
        shared: &Arc<Shared>,
        probe_id: &str,
        conn: &Connection,
    ) -> (Live, tokio::sync::mpsc::UnboundedReceiver<Push>) {
        let id = conn.stable_id();
        // Unbounded: pushes are rare (config changes, operator commands, one ping a minute)
        // and a session drains its inbox as it goes.
        let (push, inbox) = tokio::sync::mpsc::unbounded_channel();
        let old = {
            let mut live = shared.live();
            let entry = live.entry(probe_id.to_owned()).or_default();
            let old = std::mem::take(entry);
            entry.push(LiveConn {
                id,
                conn: conn.clone(),
                push,
            });
            old
        };
        for c in old {
            c.conn.close(
                close::SUPERSEDED.into(),
                b"superseded by a newer connection",
            );
        }
        let live = Live {
            shared: shared.clone(),
            probe_id: probe_id.to_owned(),
            id,
        };
        (live, inbox)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = self.shared.live();
        if let Some(conns) = live.get_mut(&self.probe_id) {
            conns.retain(|c| c.id != self.id);
            if conns.is_empty() {
                live.remove(&self.probe_id);
            }
        }
    }
}

/// Reads probe messages from the stream, skipping (and counting) frames that do not decode.
struct Reader<'a> {
    /// The probe's half of the stream.
    recv: RecvStream,
    /// Framing state.
    decoder: FrameDecoder,
    /// Read buffer.
    buf: Vec<u8>,
    /// Where bad frames are counted.
    counters: &'a Counters,
}

impl Reader<'_> {
    /// The next message; `None` when the probe finished the stream.
    async fn next(&mut self) -> Result<Option<ProbeMessage>, LinkEnd> {
        loop {
            match self.decoder.next_message::<ProbeMessage>() {
                Ok(Some(msg)) => return Ok(Some(msg)),
                Ok(None) => {}
                Err(error @ WireError::FrameTooLarge { .. }) => {
                    Counters::add(&self.counters.oversized_frames, 1);
                    tracing::warn!(%error, "oversized frame: closing the link");
                    return Err(LinkEnd::Oversized(error));
                }
                Err(error) => {
                    Counters::add(&self.counters.garbage_frames, 1);
                    tracing::warn!(%error, "undecodable frame skipped");
                    continue;
                }
            }
            match self.recv.read(&mut self.buf).await? {
                Some(n) => {
                    let chunk = self.buf.get(..n).unwrap_or_default();
                    self.decoder.push(chunk).map_err(LinkEnd::Oversized)?;
                }
                None => return Ok(None),
            }
        }
    }
}

/// Learns the probe's network from the address this connection comes from (GeoIP, the
/// operator's pin on top), warns once if it geolocates over
/// [`FAR_FROM_REGION_KM`](geoip::FAR_FROM_REGION_KM) from the probe's region, and refreshes
/// detection's topology when the ASN is new or changed.
fn network(shared: &Arc<Shared>, conn: &Connection, identity: &ProbeIdentity) -> Network {
    let probe_id = identity.probe_id.as_str();
    let targets = shared.targets();
    let pin = targets.as_ref().and_then(|c| c.network_override(probe_id));
    let net = geoip::probe_network(
        shared.config.geoip.as_deref(),
        conn.remote_address().ip(),
        pin.as_ref(),
    );
    let catalog = detection::catalog(targets.as_deref());
    let far_km = catalog
        .get(&identity.region)
        .and_then(|region| geoip::far_from_region(&net, region));
    if let Some(km) = far_km {
        tracing::warn!(
            probe_id = %probe_id,
            region = %identity.region,
            km = km.round(),
            country = %net.country.as_deref().unwrap_or("unknown"),
            asn = ?net.asn,
            "the probe's address geolocates far from its region"
        );
    }
    let learnt = state::learn_network(shared, probe_id, net.clone());
    if learnt.asn_changed {
        tracing::info!(probe_id, asn = ?net.asn, "probe network learnt: refreshing the topology");
        state::refresh_later(shared);
    }
    if learnt.changed {
        let stored = ProbeNetwork {
            address: Some(conn.remote_address().ip().to_canonical()),
            network: net.clone(),
            far_km,
            learnt_ms: now_ms(),
        };
        let id = probe_id.to_owned();
        let queued = shared.store.send(move |store| {
            if let Err(error) = store.record_probe_network(&id, &stored) {
                tracing::warn!(probe_id = %id, %error, "storing the probe's network failed");
            }
        });
        if queued.is_err() {
            tracing::warn!(
                probe_id,
                "storing the probe's network failed: store stopped"
            );
        }
    }
    net
}

async fn send(stream: &mut SendStream, msg: &CoordinatorMessage) -> Result<(), LinkEnd> {
    let frame = wire::encode(msg).map_err(LinkEnd::Encode)?;
    stream.write_all(&frame).await?;
    Ok(())
}

/// Sends a `Reject`, waits (briefly) for the probe to read it, and closes the connection.
async fn reject(
    shared: &Shared,
    conn: &Connection,
    stream: &mut SendStream,
    reason: RejectReason,
    code: u32,
    message: &str,
) {
    Counters::add(&shared.counters.refused, 1);
    tracing::warn!(?reason, message, "link refused");
    let msg = CoordinatorMessage::Reject(Reject {
        reason,
        message: message.to_owned(),
    });
    if send(stream, &msg).await.is_ok() && stream.finish().is_ok() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.stopped()).await;
    }
    conn.close(code.into(), message.as_bytes());
}

async fn session(
    shared: &Arc<Shared>,
    conn: &Connection,
    identity: &ProbeIdentity,
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<Push>,
) -> Result<(), LinkEnd> {
    let timeout = shared.config.hello_timeout;
    let Ok(streams) = tokio::time::timeout(timeout, conn.accept_bi()).await else {
        tracing::info!("no stream opened in time");
        conn.close(close::PROTOCOL.into(), b"no Hello in time");
        return Ok(());
    };
    let (mut tx, rx) = match streams {
        Ok(streams) => streams,
        Err(error) => return Err(LinkEnd::Read(quinn::ReadError::ConnectionLost(error))),
    };
    let mut reader = Reader {
        recv: rx,
        decoder: FrameDecoder::new(),
        buf: vec![0; 64 * 1024],
        counters: &shared.counters,
    };
    let first = match tokio::time::timeout(timeout, reader.next()).await {
        Ok(Ok(Some(msg))) => msg,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(LinkEnd::Oversized(_))) | Err(_) => {
            let why = "no Hello in time, or an oversized frame";
            reject(
                shared,
                conn,
                &mut tx,
                RejectReason::ProtocolViolation,
                close::PROTOCOL,
                why,
            )
            .await;
            return Ok(());
        }
        Ok(Err(e)) => return Err(e),
    };
    let ProbeMessage::Hello(hello) = first else {
        Counters::add(&shared.counters.protocol_violations, 1);
        let why = "the first message must be Hello";
        reject(
            shared,
            conn,
            &mut tx,
            RejectReason::ProtocolViolation,
            close::PROTOCOL,
            why,
        )
        .await;
        return Ok(());
    };
    let version = match wire::negotiate(hello.version) {
        Ok(v) => v,
        Err(reason) => {
            let why = format!("protocol version {} is not supported", hello.version);
            reject(shared, conn, &mut tx, reason, close::PROTOCOL, &why).await;
            return Ok(());
        }
    };
    let id = identity.probe_id.clone();
    let (record, highest) = shared
        .store
        .call(move |s| -> Result<_, crate::store::StoreError> {
            Ok((s.probe(&id)?, s.highest_seq(&id)?))
        })
        .await?
        .map_err(ServiceError::from)?;
    match record {
        None => {
            let why = "this coordinator does not know the probe";
            reject(
                shared,
                conn,
                &mut tx,
                RejectReason::Unknown,
                close::UNKNOWN,
                why,
            )
            .await;
            return Ok(());
        }
        Some(r) if r.revoked_ms.is_some() => {
            let why = "the probe's certificate was revoked";
            reject(
                shared,
                conn,
                &mut tx,
                RejectReason::Revoked,
                close::REVOKED,
                why,
            )
            .await;
            return Ok(());
        }
        Some(_) => {}
    }
    let net = network(shared, conn, identity);
    let ack = CoordinatorMessage::HelloAck(HelloAck {
        version,
        server_time_ms: now_ms(),
        acked_up_to_seq: highest,
    });
    send(&mut tx, &ack).await?;
    Counters::add(&shared.counters.sessions, 1);
    let (probe_id, region) = (identity.probe_id.as_str(), identity.region.as_str());
    state::touch(shared, probe_id, region, now_ms());
    tracing::info!(
        probe_version = %hello.probe_version, spool_next_seq = hello.spool_next_seq,
        acked_up_to_seq = ?highest, assignment_version = ?hello.assignment_version,
        asn = ?net.asn, country = ?net.country, "link open"
    );
    // Always sent, even when the probe runs this version already: a full replacement is
    // idempotent, and it reconciles a probe whose state is unknown.
    let mut sent_version = None;
    send_assignment(shared, &mut tx, probe_id, &mut sent_version).await?;
    let mut pings: HashMap<u64, i64> = HashMap::new();
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            Some(push) = inbox.recv() => {
                match push {
                    Push::Assignment => {
                        send_assignment(shared, &mut tx, probe_id, &mut sent_version).await?;
                    }
                    Push::Command(cmd) => send_command(shared, &mut tx, cmd, &mut pings).await?,
                }
                continue;
            }
        };
        state::touch(shared, probe_id, region, now_ms());
        let msg = match next {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(()),
            Err(LinkEnd::Oversized(_)) => {
                let why = "frame over the size limit";
                reject(
                    shared,
                    conn,
                    &mut tx,
                    RejectReason::ProtocolViolation,
                    close::PROTOCOL,
                    why,
                )
                .await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match msg {
            ProbeMessage::ResultBatch(batch) => {
                if let Some(up_to_seq) = ingest(shared, identity, batch).await? {
                    send(&mut tx, &CoordinatorMessage::Ack(Ack { up_to_seq })).await?;
                }
            }
            ProbeMessage::Heartbeat(_) => {
                // Last-seen is already refreshed in memory; the periodic flush stores it.
                Counters::add(&shared.counters.heartbeats, 1);
            }
            ProbeMessage::Hello(_) => {
                Counters::add(&shared.counters.protocol_violations, 1);
                tracing::warn!("second Hello ignored");
            }
            ProbeMessage::Pong(pong) => {
                let t4 = now_ms();
                let Some(t1) = pings.remove(&pong.ping_id) else {
                    Counters::add(&shared.counters.pongs_discarded, 1);
                    tracing::debug!(ping_id = pong.ping_id, "pong for an unknown ping ignored");
                    continue;
                };
                let (offset_ms, delay_ms) =
                    wire::clock_offset(t1, pong.probe_recv_ms, pong.probe_send_ms, t4);
                match state::clock_sample(shared, probe_id, offset_ms, delay_ms) {
                    Some((best_offset_ms, best_delay_ms)) => {
                        Counters::add(&shared.counters.pongs, 1);
                        shared.detection.observe(Observation::Clock {
                            probe_id: probe_id.to_owned(),
                            offset_ms: best_offset_ms,
                            at_ms: t4,
                        });
                        tracing::debug!(
                            offset_ms,
                            delay_ms,
                            best_offset_ms,
                            best_delay_ms,
                            "clock sample"
                        );
                    }
                    None => {
                        Counters::add(&shared.counters.pongs_discarded, 1);
                        tracing::info!(
                            offset_ms,
                            delay_ms,
                            "clock sample with a negative delay discarded"
                        );
                    }
                }
            }
            ProbeMessage::CommandDone(done) => match done.error {
                None => {
                    Counters::add(&shared.counters.commands_done, 1);
                    tracing::info!(command_id = done.command_id, "command done");
                }
                Some(error) => {
                    Counters::add(&shared.counters.commands_failed, 1);
                    tracing::warn!(command_id = done.command_id, error, "command failed");
                }
            },
        }
    }
}

/// Sends the probe's current assignment if its version differs from the one last sent.
async fn send_assignment(
    shared: &Shared,
    tx: &mut SendStream,
    probe_id: &str,
    sent_version: &mut Option<u64>,
) -> Result<(), LinkEnd> {
    let current = shared
        .state()
        .assignments
        .get(probe_id)
        .filter(|c| Some(c.assignment.version) != *sent_version)
        .map(|c| c.assignment.clone());
    if let Some(a) = current {
        let (version, slot, slots, checks) = (a.version, a.slot, a.slots, a.checks.len());
        send(tx, &CoordinatorMessage::Assignment(a)).await?;
        *sent_version = Some(version);
        Counters::add(&shared.counters.assignments_sent, 1);
        tracing::info!(version, slot, slots, checks, "assignment sent");
    }
    Ok(())
}

/// Writes a command; a ping is stamped with t1 as it leaves and remembered for its pong.
async fn send_command(
    shared: &Shared,
    tx: &mut SendStream,
    mut cmd: wire::Command,
    pings: &mut HashMap<u64, i64>,
) -> Result<(), LinkEnd> {
    if let wire::CommandKind::Ping { ping_id, sent_ms } = &mut cmd.kind {
        *sent_ms = now_ms();
        if pings.len() >= MAX_PENDING_PINGS
            && let Some(oldest) = pings.keys().min().copied()
        {
            pings.remove(&oldest);
        }
        pings.insert(*ping_id, *sent_ms);
    }
    tracing::debug!(command_id = cmd.command_id, kind = ?cmd.kind, "command sent");
    send(tx, &CoordinatorMessage::Command(cmd)).await?;
    Counters::add(&shared.counters.commands_sent, 1);
    Ok(())
}

/// Validates and stores one batch; returns the sequence to acknowledge (`None`: empty batch).
async fn ingest(
    shared: &Arc<Shared>,
    identity: &ProbeIdentity,
    mut batch: ResultBatch,
) -> Result<Option<u64>, LinkEnd> {
    let Some(up_to) = batch.results.iter().map(|r| r.seq).max() else {
        return Ok(None);
    };
    let total = batch.results.len();
    // The store keys on signed 64-bit integers: a larger sequence can never be stored.
    let limit = i64::MAX.unsigned_abs();
    batch.results.retain(|r| r.seq <= limit);
    let mut refused = total - batch.results.len();
    let now = now_ms();
    // The current and previous assignments' checks (see `assign`); none without an assignment.
    let allowed = shared
        .state()
        .assignments
        .get(&identity.probe_id)
        .map(|c| c.allowed.clone());
    let assigned = |check: &meridian_shared::check::CheckId| {
        allowed.as_ref().is_some_and(|a| a.contains(check.as_str()))
    };
    let (accepted, rejected) =
        wire::validate_batch(batch, assigned, now, shared.config.max_future_ms);
    refused += rejected.len();
    let unassigned = rejected
        .iter()
        .filter(|r| r.reason == wire::RejectKind::UnassignedCheck)
        .count();
    Counters::add(&shared.counters.results_unassigned, unassigned as u64);
    if let Some(first) = rejected.first() {
        tracing::warn!(
            refused, first_seq = first.seq, check_id = %first.check_id, reason = %first.reason,
            "results refused"
        );
    }
    for r in &rejected {
        tracing::debug!(seq = r.seq, check_id = %r.check_id, reason = %r.reason, "result refused");
    }
    let (id, region) = (identity.probe_id.clone(), identity.region.to_string());
    // Relabelled here, where the records are owned, so the store encodes them as they are.
    // The burst tag stays with its record: detection and history tell burst runs apart.
    let records: Vec<SequencedResult> = accepted
        .into_iter()
        .map(|mut r| {
            id.clone_into(&mut r.result.probe_id);
            region.clone_into(&mut r.result.region);
            r
        })
        .collect();
    let ingested = shared.store.ingest(id, region, records, now).await?;
    let c = &shared.counters;
    Counters::add(&c.batches, 1);
    Counters::add(&c.results_stored, ingested.stored as u64);
    Counters::add(&c.results_duplicate, ingested.duplicates as u64);
    Counters::add(&c.results_rejected, refused as u64);
    tracing::debug!(
        up_to,
        stored = ingested.stored,
        duplicates = ingested.duplicates,
        refused,
        "batch stored"
    );
    Ok(Some(up_to))
}
