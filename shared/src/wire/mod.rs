//! The probe↔coordinator protocol as data: messages, framing, version negotiation, clock
//! arithmetic and the ingest checks, all pure.
//!
//! # Shape of a session
//!
//! One bidirectional QUIC stream per connection, ALPN [`ALPN`], mutual TLS. The probe opens
//! with a [`Hello`]; the coordinator answers [`HelloAck`] (then an [`Assignment`] when the
//! probe's version differs from its own) or [`Reject`] and closes. Then the probe sends
//! [`ResultBatch`]es, [`Heartbeat`]s, [`Pong`]s and [`CommandDone`]s; the coordinator sends
//! [`Ack`]s (only once a batch is durable), new [`Assignment`]s and [`Command`]s.
//!
//! # Decisions
//!
//! - **One enum per direction** ([`ProbeMessage`], [`CoordinatorMessage`]) rather than one
//!   `Message`: a coordinator cannot even decode an `Ack` from a probe, so "wrong direction"
//!   is a decode error, not a match arm every handler must remember.
//! - **Framing** is `len: u32 big-endian | payload`, the payload `rmp_serde::to_vec_named` of
//!   the message (maps keyed by field name, enums externally tagged). Named fields cost bytes
//!   but let either side add optional fields without a version bump. [`MAX_FRAME`] is checked
//!   on the 4-byte header before anything is buffered or decoded ([`FrameDecoder`]).
//! - **Versions**: [`ALPN`] names the framing and changes only if the bytes on the stream
//!   change shape; [`PROTOCOL_VERSION`] names the message set and is negotiated by
//!   [`negotiate`]. [`Hello`], [`HelloAck`] and [`Reject`] are frozen (later versions may only
//!   add optional fields), so any two versions can at least refuse each other clearly.
//! - **Identity**: a probe's id and region come from its client certificate, never from a
//!   payload. [`Hello`] carries neither, and the coordinator overwrites `probe_id` and `region`
//!   of every stored result.
//! - **Delivery**: per-probe sequence numbers from the spool; an [`Ack`] covers everything up
//!   to a sequence, rejected records included, so a poison record is not resent forever.
//!   [`HelloAck::acked_up_to_seq`] lets a probe that lost an ack skip what is stored.
//!
//! Deliberately absent: sockets, QUIC, async and clocks (every time is an argument). Streams
//! live in `probe` and `coordinator`.

mod frame;
mod message;
mod validate;

#[cfg(test)]
mod tests;

pub use frame::{FrameDecoder, WireError, WireMessage, decode, encode};
pub use message::{
    Ack, Assignment, BurstTag, Command, CommandDone, CommandKind, CoordinatorMessage, Heartbeat,
    Hello, HelloAck, Pong, ProbeMessage, Reject, RejectReason, ResultBatch, SequencedResult,
};
pub use validate::{RejectKind, Rejection, validate_batch};

/// TLS ALPN protocol id of the Meridian link.
pub const ALPN: &[u8] = b"meridian/1";

/// The message-set version this build speaks, sent in [`Hello::version`].
pub const PROTOCOL_VERSION: u16 = 1;

/// Every version this build accepts, ascending.
pub const SUPPORTED_VERSIONS: &[u16] = &[PROTOCOL_VERSION];

/// Largest payload of one frame, in bytes (4 MiB). A batch of a few thousand results fits with
/// room to spare; anything larger is a bug or an attack and ends the stream.
pub const MAX_FRAME: u32 = 4 * 1024 * 1024;

/// The version a session runs at, given the one in the probe's [`Hello`]; the error is the
/// reason to put in the [`Reject`].
pub fn negotiate(hello_version: u16) -> Result<u16, RejectReason> {
    if SUPPORTED_VERSIONS.contains(&hello_version) {
        Ok(hello_version)
    } else {
        Err(RejectReason::UnsupportedVersion {
            supported: SUPPORTED_VERSIONS.to_vec(),
        })
    }
}

/// NTP-style estimate from one ping round trip, all times wall-clock Unix milliseconds:
/// `t1` coordinator sends the ping, `t2` probe receives it, `t3` probe sends the pong, `t4`
/// coordinator receives it.
///
/// Returns `(offset_ms, delay_ms)`: `offset_ms` is how far the probe's clock is ahead of the
/// coordinator's (negative when behind), exact when the two directions take equally long and
/// otherwise wrong by at most `delay_ms / 2`; `delay_ms` is the round trip minus the probe's
/// own processing time. A negative delay means the timestamps are inconsistent (a clock
/// stepped mid-exchange): discard the sample. Prefer the samples with the smallest delay.
/// Computed without overflow; results saturate at the `i64` range.
pub fn clock_offset(t1: i64, t2: i64, t3: i64, t4: i64) -> (i64, i64) {
    let [t1, t2, t3, t4] = [t1, t2, t3, t4].map(i128::from);
    let offset = ((t2 - t1) + (t3 - t4)) / 2;
    let delay = (t4 - t1) - (t3 - t2);
    (saturate(offset), saturate(delay))
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}
