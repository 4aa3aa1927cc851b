//! The messages of protocol version 1, one enum per direction.
//!
//! Every struct and field name here is part of the wire format (payloads are MessagePack maps
//! keyed by field name, enums externally tagged by variant name): renaming one is a protocol
//! change. Adding an optional field (`Option<_>` or `#[serde(default)]`) is not, because
//! decoding ignores unknown fields and fills missing optional ones. Adding an enum variant *is*
//! a change for the peer that receives it (it cannot decode that frame), so it needs a version.
//!
//! Deliberately absent: who the probe is and where it runs. A probe's identity and region come
//! from its client certificate, checked by the coordinator's TLS layer; nothing a probe says in
//! a payload (including `probe_id` and `region` inside a [`CheckResult`]) is trusted for that.

use serde::{Deserialize, Serialize};

use crate::check::{Check, CheckId};
use crate::result::CheckResult;

/// A message a probe sends to the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProbeMessage {
    /// First message on every connection.
    Hello(Hello),
    /// Spooled results, in sequence order.
    ResultBatch(ResultBatch),
    /// "Still here", sent on a fixed cadence.
    Heartbeat(Heartbeat),
    /// Answer to a [`CommandKind::Ping`].
    Pong(Pong),
    /// A [`Command`] was carried out (or could not be).
    CommandDone(CommandDone),
}

/// A message the coordinator sends to a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CoordinatorMessage {
    /// The probe's [`Hello`] is accepted; the session is open.
    HelloAck(HelloAck),
    /// The probe is refused; the coordinator closes the connection after sending it.
    Reject(Reject),
    /// The full set of checks the probe must run, replacing any earlier assignment.
    Assignment(Assignment),
    /// Results up to a sequence number are durably handled.
    Ack(Ack),
    /// Something to do now.
    Command(Command),
}

/// Opens a session. Its shape is frozen across protocol versions (later versions may only add
/// optional fields), so a coordinator can always read `version` and answer with a precise
/// [`Reject`]. The probe's id and region are not here: they come from its client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the probe speaks ([`super::PROTOCOL_VERSION`] of its build).
    pub version: u16,
    /// The probe's software version (`CARGO_PKG_VERSION`), for fleet views and logs only.
    pub probe_version: String,
    /// Version of the [`Assignment`] the probe is running, `None` before its first one; the
    /// coordinator sends a fresh assignment when it differs from its own.
    pub assignment_version: Option<u64>,
    /// The sequence number the probe's spool will give its next result. A coordinator that has
    /// stored sequences at or above it learns that the probe lost or reset its spool.
    pub spool_next_seq: u64,
}

/// Accepts a [`Hello`]. Frozen like it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloAck {
    /// The negotiated protocol version (see [`super::negotiate`]).
    pub version: u16,
    /// The coordinator's wall clock when it answered, Unix milliseconds: a first, rough clock
    /// comparison before any [`CommandKind::Ping`] round trip.
    pub server_time_ms: i64,
    /// Highest sequence this coordinator has already durably handled for this probe, `None`
    /// when it has none. Lets a probe whose last [`Ack`] was lost (crash, cut link) move its
    /// cursor for this coordinator forward instead of re-sending what is stored.
    #[serde(default)]
    pub acked_up_to_seq: Option<u64>,
}

/// Refuses a probe, at Hello or later (a revocation closes live sessions). Frozen like
/// [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// Why, for machines: decides whether and when the probe retries.
    pub reason: RejectReason,
    /// Why, for people: logged by the probe as is.
    pub message: String,
}

/// Why a coordinator refuses a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The probe speaks a protocol version this coordinator does not.
    UnsupportedVersion {
        /// Versions the coordinator accepts, ascending.
        supported: Vec<u16>,
    },
    /// The probe's certificate was revoked: retrying is pointless until it is enrolled again.
    Revoked,
    /// The certificate is signed by the coordinator's CA but names no probe it knows.
    Unknown,
    /// A newer connection of the same probe replaced this one.
    Superseded,
    /// The probe broke the protocol (no Hello first, an oversized frame, ...).
    ProtocolViolation,
}

/// The checks a probe runs for one coordinator and its place in its region's stagger. Always
/// complete: it replaces everything this coordinator assigned before (never a delta). A probe
/// with several coordinators runs the union of their assignments, the first coordinator in its
/// config winning a check id both assign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Increases with every change; echoed in [`Hello::assignment_version`] on reconnect.
    pub version: u64,
    /// The probe's stagger slot `i` in `0..slots` within its region.
    pub slot: u32,
    /// Number of slots `P` in the region (probes assigned these checks there).
    pub slots: u32,
    /// Every check the probe must run.
    pub checks: Vec<Check>,
}

/// Marks the results of a burst so detection can tell confirmation runs from scheduled ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BurstTag {
    /// Chosen by the coordinator, unique among its bursts.
    pub burst_id: u64,
}

/// One spooled result with its per-probe sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequencedResult {
    /// Assigned by the probe's spool, strictly increasing per probe; with the probe's identity
    /// it is the key that makes ingest idempotent.
    pub seq: u64,
    /// The result, with its original timestamps (late results are not re-stamped).
    pub result: CheckResult,
    /// Set when the run was part of a burst, `None` for scheduled runs.
    pub burst: Option<BurstTag>,
}

/// Results read from the spool, sent in sequence order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultBatch {
    /// The probe's upload cursor: every sequence below it was sent before or lost by the
    /// spool. `results` carry sequences at or above it, strictly increasing; gaps are records
    /// the spool dropped (size bound, bad checksum).
    pub first_seq: u64,
    /// The results, in sequence order. A batch must fit in one frame ([`super::MAX_FRAME`]).
    pub results: Vec<SequencedResult>,
}

/// Says the probe is alive; the coordinator marks it silent after two missed heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The probe's wall clock when sent, Unix milliseconds.
    pub sent_ms: i64,
}

/// Answer to [`CommandKind::Ping`]: the probe's two timestamps of an NTP-style exchange (the
/// coordinator holds the other two; see [`super::clock_offset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's `ping_id`.
    pub ping_id: u64,
    /// Probe wall clock when the ping arrived (t2), Unix milliseconds.
    pub probe_recv_ms: i64,
    /// Probe wall clock when this pong left (t3), Unix milliseconds.
    pub probe_send_ms: i64,
}

/// Reports that a [`Command`] is finished. Pings are answered by [`Pong`] instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandDone {
    /// The command's `command_id`.
    pub command_id: u64,
    /// `None` when the command was carried out; otherwise why not (a burst for a check the
    /// probe does not have, ...).
    #[serde(default)]
    pub error: Option<String>,
}

/// Confirms that results are durably handled: stored, or rejected for good (a rejected record
/// is acknowledged too, so the probe does not resend it forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Every sequence at or below this one is handled; the probe may advance this
    /// coordinator's cursor past it. Sent only after the store has made it durable.
    pub up_to_seq: u64,
}

/// An instruction from the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Chosen by the coordinator, echoed in [`CommandDone`] or [`Pong`].
    pub command_id: u64,
    /// What to do.
    pub kind: CommandKind,
}

/// The things a coordinator can ask of a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandKind {
    /// Run one assigned check now, `runs` times back to back, results tagged with `tag`.
    Burst {
        /// Which assigned check.
        check_id: CheckId,
        /// How many runs.
        runs: u8,
        /// Carried by every result of the burst.
        tag: BurstTag,
    },
    /// Re-read the probe's local configuration (`probe.toml`, certificates) and apply it.
    Reload,
    /// Clock probe: answer at once with a [`Pong`].
    Ping {
        /// Echoed in the pong.
        ping_id: u64,
        /// Coordinator wall clock when sent (t1), Unix milliseconds, for the probe's logs; the
        /// coordinator keeps its own copy and does not trust an echo.
        sent_ms: i64,
    },
}
