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
//! Bad input: a payload that does not decode costs that frame only (counted, logged); an
//! oversized length ends the session with a `Reject` (it breaks framing for good).
//!
//! Deliberately absent: assignments and commands (the coordinator sends neither yet).

use std::sync::Arc;

use meridian_shared::result::CheckResult;
use meridian_shared::wire::{
    self, Ack, CoordinatorMessage, FrameDecoder, HelloAck, ProbeMessage, Reject, RejectReason,
    ResultBatch, WireError,
};
use quinn::{Connection, RecvStream, SendStream};
use tracing::Instrument as _;

use super::{Counters, ServiceError, Shared, close, now_ms};
use crate::pki::ProbeIdentity;

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
    let _live = Live::register(&shared, &identity.probe_id, &conn);
    async {
        match session(&shared, &conn, &identity).await {
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
    ProbeIdentity::from_cert(leaf.as_ref()).map_err(|_| "certificate names no probe")
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
    fn register(shared: &Arc<Shared>, probe_id: &str, conn: &Connection) -> Live {
        let id = conn.stable_id();
        let old = {
            let mut live = shared.live();
            let entry = live.entry(probe_id.to_owned()).or_default();
            let old = std::mem::take(entry);
            entry.push((id, conn.clone()));
            old
        };
        for (_, c) in old {
            c.close(
                close::SUPERSEDED.into(),
                b"superseded by a newer connection",
            );
        }
        Live {
            shared: shared.clone(),
            probe_id: probe_id.to_owned(),
            id,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = self.shared.live();
        if let Some(conns) = live.get_mut(&self.probe_id) {
            conns.retain(|(id, _)| *id != self.id);
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
    let region = identity.region.to_string();
    let (record, highest) = shared
        .store
        .call(move |s| -> Result<_, crate::store::StoreError> {
            let record = s.probe(&id)?;
            if record.as_ref().is_some_and(|r| r.revoked_ms.is_none()) {
                // An empty ingest only marks the probe seen.
                s.ingest(&id, &region, &[], now_ms())?;
            }
            Ok((record, s.highest_seq(&id)?))
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
    let ack = CoordinatorMessage::HelloAck(HelloAck {
        version,
        server_time_ms: now_ms(),
        acked_up_to_seq: highest,
    });
    send(&mut tx, &ack).await?;
    Counters::add(&shared.counters.sessions, 1);
    tracing::info!(
        probe_version = %hello.probe_version, spool_next_seq = hello.spool_next_seq,
        acked_up_to_seq = ?highest, "link open"
    );
    loop {
        let msg = match reader.next().await {
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
                Counters::add(&shared.counters.heartbeats, 1);
                let (id, region) = (identity.probe_id.clone(), identity.region.to_string());
                shared
                    .store
                    .call(move |s| s.ingest(&id, &region, &[], now_ms()))
                    .await?
                    .map_err(ServiceError::from)?;
            }
            ProbeMessage::Hello(_) => {
                Counters::add(&shared.counters.protocol_violations, 1);
                tracing::warn!("second Hello ignored");
            }
            ProbeMessage::Pong(_) | ProbeMessage::CommandDone(_) => {
                tracing::debug!("answer to a command this coordinator never sent; ignored");
            }
        }
    }
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
    let assigned = |check: &meridian_shared::check::CheckId| {
        shared
            .config
            .assigned
            .as_ref()
            .is_none_or(|f| f(identity, check))
    };
    let (accepted, rejected) =
        wire::validate_batch(batch, assigned, now, shared.config.max_future_ms);
    refused += rejected.len();
    if let Some(first) = rejected.first() {
        tracing::warn!(
            refused, first_seq = first.seq, check_id = %first.check_id, reason = %first.reason,
            "results refused"
        );
    }
    for r in &rejected {
        tracing::debug!(seq = r.seq, check_id = %r.check_id, reason = %r.reason, "result refused");
    }
    let records: Vec<(u64, CheckResult)> =
        accepted.into_iter().map(|r| (r.seq, r.result)).collect();
    let (id, region) = (identity.probe_id.clone(), identity.region.to_string());
    let ingested = shared
        .store
        .call(move |s| s.ingest(&id, &region, &records, now))
        .await?
        .map_err(ServiceError::from)?;
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
