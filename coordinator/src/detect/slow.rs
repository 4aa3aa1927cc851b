//! The slow detectors: loss counted against a binomial baseline, and a one-sided CUSUM for
//! slow drift against the frozen seasonal baseline.
//!
//! Neither triggers on one sample. Loss hardly moves a median (at 5 % packet loss only ~10 %
//! of connects pay a retransmission timeout), so it is counted: `k` retransmitted connects out
//! of `n` in a region is suspicious when `P(X ≥ k | n, p0)` under the baseline rate is tiny.
//! A drift of a few ms per minute stays under the per-sample gate for many minutes; the CUSUM
//! of the region's median robust z-score finds it in a few, and raises a ticket, not a page.

use statrs::distribution::{Binomial, DiscreteCDF};

/// Baseline retransmission rate never assumed lower than this (0.2 % of connects).
pub const MIN_LOSS_RATE: f64 = 0.002;

/// The loss test rejects "baseline rate" below this p-value. It is tested after every sample
/// of every loss train, so it is strict: at 1e-4, 0.5 % background packet loss (S17) raised a
/// false loss incident in 3 of 20 seeds; 5 % loss still confirms within two trains.
pub const LOSS_P_VALUE: f64 = 1e-5;

/// Loss worth a conclusion: at least this share of the connects retransmitted (about 1.5 %
/// packet loss, as a lost SYN or SYN-ACK costs a retransmission). Against a learnt 0.2 %,
/// the hundreds of connects that loss trains bring make even 1 % "significant": 0.1 %
/// background loss raised a false loss incident in the clean month (seed 31).
pub const MIN_LOSS_SHARE: f64 = 0.03;

/// At least this many retransmissions before loss is called at all.
pub const MIN_LOSS_EVENTS: u64 = 3;

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`.
pub fn binomial_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    match Binomial::new(p.clamp(0.0, 1.0), n) {
        Ok(b) => b.sf(k - 1),
        Err(_) => 1.0,
    }
}

/// Whether `k` retransmissions in `n` connects is loss beyond a baseline rate `p0`.
pub fn excess_loss(k: u64, n: u64, p0: f64) -> bool {
    k >= MIN_LOSS_EVENTS
        && substantial(k, n)
        && binomial_tail(k, n, p0.max(MIN_LOSS_RATE)) < LOSS_P_VALUE
}

/// Whether `k` of `n` is at least [`MIN_LOSS_SHARE`].
fn substantial(k: u64, n: u64) -> bool {
    k as f64 >= MIN_LOSS_SHARE * n as f64
}

/// Whether the probes outside the worst network see excess loss too, at a looser level: the
/// pooled test must not be carried by one probe or one ISP alone.
pub fn corroborated_loss(k: u64, n: u64, p0: f64) -> bool {
    k >= MIN_LOSS_EVENTS
        && substantial(k, n)
        && binomial_tail(k, n, p0.max(MIN_LOSS_RATE)) < CORROBORATION_P_VALUE
}

/// The p-value the other networks' share of the loss must reach. It is tested at every
/// evaluation while loss lasts, so it cannot be lax: at 1 % a network's ordinary 0.2 % loss
/// corroborated another network's real loss within minutes.
pub const CORROBORATION_P_VALUE: f64 = 1e-3;

/// Per-probe retransmission-rate baseline: an exponentially forgetting count, so a probe's
/// usual loss is learnt and old history fades over a few thousand connects.
#[derive(Debug, Clone, Copy, Default)]
pub struct LossRate {
    connects: f64,
    retransmits: f64,
}

impl LossRate {
    const FORGET: f64 = 1.0 / 4096.0;

    /// Count one connect.
    pub fn learn(&mut self, retransmitted: bool) {
        self.connects = self.connects * (1.0 - Self::FORGET) + 1.0;
        self.retransmits =
            self.retransmits * (1.0 - Self::FORGET) + f64::from(u8::from(retransmitted));
    }

    /// The learnt rate, with a prior of 0.2 % worth 500 connects.
    pub fn rate(&self) -> f64 {
        (self.retransmits + MIN_LOSS_RATE * 500.0) / (self.connects + 500.0)
    }
}

/// One-sided CUSUM on the standardised median z-score of a region, `S ← max(0, S + z − k)`,
/// alarming above `h`. k = 0.5 and h = 12 (detection.md §2.4(d)): with ~5 probes that is about
/// one false ticket per hundred region-days, and +2 ms/min is found in ~5 minutes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cusum {
    sum: f64,
    /// When the sum last left zero: the estimated start of the drift.
    since_ms: Option<i64>,
}

impl Cusum {
    /// Allowance.
    pub const K: f64 = 0.5;
    /// Decision threshold.
    pub const H: f64 = 12.0;

    /// Add one standardised observation taken at `t_ms`; returns whether the CUSUM is above
    /// its threshold.
    pub fn push(&mut self, z: f64, t_ms: i64) -> bool {
        let next = (self.sum + z - Self::K).max(0.0);
        if self.sum == 0.0 && next > 0.0 {
            self.since_ms = Some(t_ms);
        }
        if next == 0.0 {
            self.since_ms = None;
        }
        self.sum = next;
        self.alarm()
    }

    /// Whether it is above the threshold.
    pub fn alarm(&self) -> bool {
        self.sum > Self::H
    }

    /// When the current excursion began.
    pub fn since_ms(&self) -> Option<i64> {
        self.since_ms
    }

    /// Forget (after the drift was handled by an incident that resolved).
    pub fn reset(&mut self) {
        *self = Cusum::default();
    }
}

/// Standard deviation of the median of `n` standard normal values (large-sample
/// approximation `1.2533/√n`), to standardise a region's median z-score.
pub fn median_sd(n: usize) -> f64 {
    1.2533 / (n.max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_at_baseline_is_not_excess_and_five_percent_is() {
        // 2 of 60 at a 0.2 % rate is unusual but not decisive; 6 of 60 is.
        assert!(!excess_loss(2, 60, 0.002));
        assert!(excess_loss(6, 60, 0.002));
        assert!(
            !excess_loss(6, 60, 0.08),
            "a probe that always loses 8 % is its normal"
        );
        assert!(
            !excess_loss(6, 300, 0.002),
            "2 % of connects is significant against 0.2 %, but not loss worth calling"
        );
    }

    #[test]
    fn binomial_tail_edges() {
        assert_eq!(binomial_tail(0, 10, 0.5), 1.0);
        assert_eq!(binomial_tail(11, 10, 0.5), 0.0);
        assert!((binomial_tail(10, 10, 0.5) - 0.5f64.powi(10)).abs() < 1e-12);
    }

    #[test]
    fn cusum_ignores_noise_and_finds_a_shift() {
        let mut c = Cusum::default();
        for i in 0..1000 {
            let z = if i % 2 == 0 { 0.9 } else { -0.9 };
            assert!(!c.push(z, i), "alternating noise must not alarm");
        }
        let mut at = None;
        for i in 0..100 {
            if c.push(2.0, 1000 + i) {
                at = Some(i);
                break;
            }
        }
        assert_eq!(
            at,
            Some(8),
            "a 2-sigma shift alarms after (12 / 1.5) observations"
        );
        assert!(c.since_ms().is_some());
    }

    #[test]
    fn loss_rate_learns() {
        let mut r = LossRate::default();
        assert!((r.rate() - 0.002).abs() < 1e-9);
        for i in 0..20_000 {
            r.learn(i % 20 == 0);
        }
        // 4096 connects of memory against a 500-connect prior at 0.2 %.
        assert!((r.rate() - 0.0446).abs() < 0.002, "{}", r.rate());
    }
}
