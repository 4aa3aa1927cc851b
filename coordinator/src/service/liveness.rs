//! Liveness and clock offsets, the pure parts: when a probe counts as silent, and which ping
//! round trips the offset estimate keeps. Time is an argument; the service keeps the state in
//! memory and flushes it to the store periodically.

use std::collections::VecDeque;
use std::time::Duration;

/// A probe as the service sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    /// Its id.
    pub probe_id: String,
    /// Its region.
    pub region: String,
    /// Whether a link session of it is open.
    pub live: bool,
    /// When anything last arrived from it (Unix ms), including before this start (from the
    /// store); `None` when never.
    pub last_seen_ms: Option<i64>,
    /// Nothing arrived for two heartbeat intervals (see [`is_silent`]).
    pub silent: bool,
    /// How far its clock is ahead of the coordinator's, from the best recent ping round trip.
    pub clock_offset_ms: Option<i64>,
}

/// A probe is silent when nothing arrived from it for more than two heartbeat intervals (two
/// missed heartbeats), or never.
pub fn is_silent(last_seen_ms: Option<i64>, now_ms: i64, heartbeat: Duration) -> bool {
    let two = i64::try_from(heartbeat.as_millis().saturating_mul(2)).unwrap_or(i64::MAX);
    last_seen_ms.is_none_or(|seen| now_ms.saturating_sub(seen) > two)
}

/// How many recent round trips the offset estimate chooses from.
const SAMPLES: usize = 8;

/// The last few `(offset, delay)` samples of one probe; the estimate is the offset of the one
/// with the smallest delay (NTP's clock filter: the shortest round trip bounds the error best,
/// by `delay / 2`).
#[derive(Debug, Clone, Default)]
pub struct ClockFilter {
    /// Most recent last.
    samples: VecDeque<(i64, i64)>,
}

impl ClockFilter {
    /// Adds a sample from `wire::clock_offset`; one with a negative delay (a clock stepped
    /// mid-exchange) is discarded, and `false` returned.
    pub fn add(&mut self, offset_ms: i64, delay_ms: i64) -> bool {
        if delay_ms < 0 {
            return false;
        }
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((offset_ms, delay_ms));
        true
    }

    /// The current estimate `(offset, delay)`, if any sample was kept.
    pub fn best(&self) -> Option<(i64, i64)> {
        self.samples.iter().copied().min_by_key(|s| s.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_takes_two_missed_heartbeats() {
        let hb = Duration::from_secs(10);
        assert!(is_silent(None, 0, hb));
        assert!(!is_silent(Some(1_000), 21_000, hb));
        assert!(is_silent(Some(1_000), 21_001, hb));
        assert!(!is_silent(Some(i64::MIN), i64::MIN, hb));
    }

    #[test]
    fn the_shortest_round_trip_wins_and_bad_samples_are_dropped() {
        let mut f = ClockFilter::default();
        assert_eq!(f.best(), None);
        assert!(f.add(5_000, 40));
        assert!(f.add(5_010, 4));
        assert!(!f.add(9_999, -1));
        assert_eq!(f.best(), Some((5_010, 4)));
        for _ in 0..SAMPLES {
            f.add(4_990, 20);
        }
        assert_eq!(f.best(), Some((4_990, 20)), "old samples age out");
    }
}
