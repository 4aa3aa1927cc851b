//! The detection engine: check results in, incidents out. Pure and deterministic.
//!
//! The live coordinator and `coordinator simulate` drive the very same [`Engine`]: they hand it
//! every stored [`CheckResult`] ([`Engine::observe`]), every heartbeat and clock estimate, and
//! call [`Engine::tick`] with the current time; the engine answers with [`Action`]s (bursts to
//! order, incident transitions to publish) and keeps the [`Incident`]s.
//!
//! # How it decides
//!
//! 1. **Samples** ([`sample`]): each result becomes per-phase metrics — round trip (TCP
//!    connect), TLS, server time (first byte minus one round trip), DNS — and a failure kind.
//!    A path change adds the same delta to connect, every TLS round trip and the wait for the
//!    first byte; an origin change adds it to server time only.
//! 2. **Baselines** ([`baseline`]): per (target, probe, metric), the median and MAD of each
//!    hour-of-day slot over the previous days (a frozen seasonal reference: today's samples
//!    cannot teach the slot they are judged against), falling back to recent slots, and saying
//!    "warming up" rather than guessing when there is no history. Samples taken while the probe
//!    is inside a confirmed incident, and burst samples, teach nothing.
//! 3. **Gate** ([`sample`]): a sample is anomalous when it fails, or a metric exceeds
//!    `m + max(4·s, absolute floor, relative floor·m)`.
//! 4. **Quorum** ([`evaluate`]): per (target, region), over the fresh samples of the healthy
//!    probes (not quarantined, not silent): confirmed when at least `max(2, ⌈0.6·P⌉)` probes
//!    agree on a signature, counting independent networks (two probes on one ASN are one
//!    witness when the region has several), or when the region's pooled connects show excess
//!    loss ([`slow`]) that the other networks, two probes of them, corroborate. An anomaly
//!    orders a burst from the region's healthy probes (and one probe per other region when the
//!    signature points at the server); retransmissions order a train of connects instead,
//!    unless a round trip grew or a check failed. Loss costs a retransmission timeout in the
//!    TLS handshake and the first byte too: slow samples in a region whose connects show
//!    excess loss are the path's, and the region stands or falls by the loss test.
//! 5. **Classification** ([`evaluate`]): hierarchical elimination — DNS, then origin and edge
//!    (many regions, or one edge identity), regional server (server time up, connect flat),
//!    regional network (grouped along corridor tags), ISP (one ASN, its probes bad in every
//!    run of a burst or for a burst cooldown, by a step clear of the gate), single probe.
//! 6. **Incidents** ([`incident`]): suspected → confirmed → paged → resolved, with hysteresis
//!    and re-open merging; onset from the first anomalous sample; evidence and an explanation
//!    with the arithmetic. A round-trip step pages only when large (at least 30 ms and 30 %
//!    of the baseline, detection.md §2.8); a smaller one the gate still catches is a ticket
//!    that pages if it grows, and a page waits for a finding that still calls for one. An
//!    incident that resolved before its page and re-opens is checked for persistence again.
//!
//! Deliberately absent: I/O, clocks, async, randomness. Every time is an argument in Unix
//! milliseconds of the coordinator's clock; the same inputs give the same incidents.

pub mod baseline;
pub mod evaluate;
pub mod incident;
pub mod sample;
pub mod slow;

mod engine;
mod explain;

pub use engine::{
    Action, BurstOrder, Engine, ProbeInfo, RegionCell, RegionInfo, RegionStatus, Topology,
};
pub use incident::{Class, Incident, IncidentState, RegionEvidence, Severity, TimelineEntry};

/// Time constants and thresholds. [`Params::for_interval`] scales every time constant with the
/// check interval, so a test world checking every 2 s detects as a real one checking every
/// 60 s, only 30 times faster.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Scheduled check interval per (probe, target), ms.
    pub interval_ms: i64,
    /// Probe heartbeat period, ms; a probe is silent after two missed heartbeats.
    pub heartbeat_ms: i64,
    /// Length of one baseline slot, ms (an hour at a 60 s interval).
    pub slot_ms: i64,
    /// Slots per seasonal period (24: hour-of-day buckets).
    pub slots_per_period: usize,
    /// Seasonal periods remembered per slot (7 days).
    pub periods_kept: usize,
    /// A sample is fresh for quorums while younger than this, ms (1.25 intervals).
    pub fresh_ms: i64,
    /// A result received this long after it was taken is late data: it amends incidents but
    /// never counts toward a quorum, ms (30 s at 60 s; never under [`LATE_FLOOR_MS`]).
    pub late_after_ms: i64,
    /// Minimum time between two bursts for one (target, region), ms (30 s at 60 s).
    pub burst_cooldown_ms: i64,
    /// Runs per probe in one burst.
    pub burst_runs: u8,
    /// Latency-only incidents page only if still confirmed this long after detection, ms.
    pub page_delay_ms: i64,
    /// An incident resolves after this long without confirmation, ms.
    pub resolve_after_ms: i64,
    /// A resolved incident that re-opens within this window continues, ms (10 min).
    pub reopen_window_ms: i64,
    /// Regions sharing a corridor whose onsets are this close form one incident, ms (10 min).
    pub group_window_ms: i64,
    /// A probe bad while its region-mates are fine for this long is quarantined, ms.
    pub quarantine_after_ms: i64,
    /// A single probe silent this long (its region-mates reporting) is a probe fault, ms.
    pub probe_silent_after_ms: i64,
    /// Clock offsets beyond this are a clock-skew, ms (2 s).
    pub max_clock_offset_ms: i64,
}

/// The shortest delay after which a result counts as late, ms. Delivery does not get faster
/// when the check interval is compressed: a check slowed by a fiber cut takes a second, the
/// probe uploads every 250 ms, the store commits in groups. Scaled down to a 2 s interval, the
/// 30 s of a 60 s world would be 1 s, and exactly the slowed samples that reveal a cut would
/// arrive "late" and never count toward a quorum.
pub const LATE_FLOOR_MS: i64 = 3_000;

impl Params {
    /// Defaults for a 60 s check interval, every time constant scaled to `interval_ms`.
    pub fn for_interval(interval_ms: i64) -> Params {
        let interval_ms = interval_ms.max(1);
        let scale = |ms_at_60s: i64| ms_at_60s.saturating_mul(interval_ms) / 60_000;
        Params {
            interval_ms,
            heartbeat_ms: scale(5_000).max(1),
            slot_ms: scale(3_600_000).max(1),
            slots_per_period: 24,
            periods_kept: 7,
            fresh_ms: scale(75_000),
            late_after_ms: scale(30_000).max(LATE_FLOOR_MS),
            burst_cooldown_ms: scale(30_000),
            burst_runs: 3,
            page_delay_ms: scale(30_000),
            resolve_after_ms: scale(60_000),
            reopen_window_ms: scale(600_000),
            group_window_ms: scale(600_000),
            quarantine_after_ms: scale(120_000),
            probe_silent_after_ms: scale(30_000),
            max_clock_offset_ms: 2_000,
        }
    }
}

impl Default for Params {
    fn default() -> Params {
        Params::for_interval(60_000)
    }
}

#[cfg(test)]
mod tests;
