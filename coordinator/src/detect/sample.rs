//! One check result as the detectors see it: per-phase metrics in milliseconds, the failure
//! kind, the CDN edge that served it, and the per-sample gate that judges it against its
//! baselines.
//!
//! The metrics are chosen so that a fault moves as few of them as possible:
//! - `Rtt`: the TCP connect, one round trip.
//! - `Tls`: the TLS handshake, one (1.3) or two (1.2) round trips plus server CPU.
//! - `Server`: first byte minus one round trip, i.e. what the server (or CDN edge) spent.
//! - `Dns`: name resolution (HTTP checks) or the query itself (DNS checks).
//!
//! A path change moves `Rtt`, `Tls` and the first byte by the same round-trip delta and leaves
//! `Server` flat; an origin change moves `Server` (or `Tls` with `Rtt` flat) only.

use meridian_shared::result::{CheckResult, ErrorClass};

use super::baseline::Estimate;

/// The metrics kept per (target, probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// TCP connect: one round trip.
    Rtt = 0,
    /// TLS handshake.
    Tls = 1,
    /// First byte minus one round trip.
    Server = 2,
    /// Name resolution or DNS query.
    Dns = 3,
}

impl Metric {
    /// Every metric, in index order.
    pub const ALL: [Metric; 4] = [Metric::Rtt, Metric::Tls, Metric::Server, Metric::Dns];

    /// Gate floors `(absolute ms, relative to the median)`: a sample is anomalous above
    /// `m + max(4·s, absolute, relative·m)`. Round-trip floors are tight (a 15 ms or 30 %
    /// step is a real path change); server and DNS times are noisier by nature.
    fn floors(self) -> (f64, f64) {
        match self {
            Metric::Rtt | Metric::Tls => (15.0, 0.3),
            Metric::Server => (100.0, 0.5),
            Metric::Dns => (100.0, 1.0),
        }
    }

    /// The threshold above which a value of this metric is anomalous.
    pub fn threshold(self, e: &Estimate) -> f64 {
        let (abs, rel) = self.floors();
        e.median + (4.0 * e.sigma).max(abs).max(rel * e.median)
    }
}

/// A connect slower than the round-trip baseline by this much paid a SYN retransmission
/// timeout (1 s on Linux): loss evidence, and not a round-trip measurement.
pub const RETRANSMIT_EXCESS_MS: f64 = 800.0;

/// What failed, coarsely, for attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailKind {
    /// Name resolution failed or timed out.
    Dns,
    /// The TCP connect failed: timeout, unreachable, refused.
    Connect,
    /// The server answered wrongly: TLS failure, HTTP error status, timeout after connecting,
    /// protocol error, unexpected content.
    Server,
    /// Not a fault of the target or the network (the probe refused the address, a redirect
    /// policy): ignored by detection.
    Policy,
}

impl FailKind {
    /// The kind of an error class.
    pub fn of(class: ErrorClass) -> FailKind {
        match class {
            ErrorClass::Dns
            | ErrorClass::DnsTimeout
            | ErrorClass::DnsRcode
            | ErrorClass::DnsAnswer => FailKind::Dns,
            ErrorClass::ConnectTimeout | ErrorClass::ConnectRefused | ErrorClass::Connect => {
                FailKind::Connect
            }
            ErrorClass::Tls
            | ErrorClass::HttpTimeout
            | ErrorClass::HttpProtocol
            | ErrorClass::HttpStatus
            | ErrorClass::ContentMismatch => FailKind::Server,
            _ => FailKind::Policy,
        }
    }
}

/// A result reduced to what detection uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Per-metric values in ms, indexed by [`Metric`]; `None` when not measured.
    pub values: [Option<f64>; 4],
    /// Why it failed, if it did.
    pub fail: Option<(FailKind, ErrorClass)>,
    /// The CDN edge (or serving host) that answered, from the edge-identity headers.
    pub edge: Option<String>,
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|v| v as f64 / 1000.0)
}

impl Sample {
    /// Reduce a result. DNS checks carry their query time as `Dns`; a phase that does not
    /// apply (`Some(0)`, e.g. no TLS on plain HTTP) is not a metric.
    pub fn of(r: &CheckResult) -> Sample {
        let p = &r.phases;
        let applies = |v: Option<u64>| v.filter(|&us| us > 0);
        let rtt = ms(applies(p.connect));
        let server = match (ms(applies(p.ttfb)), rtt) {
            (Some(t), Some(rtt)) => Some((t - rtt).max(0.0)),
            _ => None,
        };
        let values = [rtt, ms(applies(p.tls)), server, ms(applies(p.dns))];
        let fail = r.error.as_ref().map(|e| (FailKind::of(e.class), e.class));
        Sample {
            values,
            fail,
            edge: r.http.as_ref().and_then(|h| edge_identity(&h.edge)),
        }
    }

    /// One metric's value.
    pub fn get(&self, m: Metric) -> Option<f64> {
        self.values[m as usize]
    }
}

/// The edge identity from the edge headers, most specific first: `x-served-by` (Fastly,
/// Varnish), `x-amz-cf-pop` (CloudFront), the PoP suffix of `cf-ray` (Cloudflare).
fn edge_identity(h: &std::collections::BTreeMap<String, String>) -> Option<String> {
    if let Some(v) = h.get("x-served-by").or_else(|| h.get("x-amz-cf-pop")) {
        return Some(v.trim().to_string());
    }
    h.get("cf-ray")
        .and_then(|v| v.rsplit_once('-'))
        .map(|(_, pop)| pop.trim().to_string())
}

/// How one sample was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Within baseline (or nothing to judge it against yet, and it did not fail).
    Ok,
    /// The connect paid a retransmission timeout: loss evidence only.
    Loss,
    /// Server time (or TLS with a flat round trip) above its gate.
    Slow,
    /// Round trip above its gate.
    Path,
    /// The server answered wrongly (HTTP error, TLS failure, timeout after connect).
    Error,
    /// The connect failed (timeout, unreachable, refused).
    Unreachable,
    /// Name resolution failed or was far too slow.
    DnsFail,
}

impl Verdict {
    /// Whether the sample counts against its probe in a quorum.
    pub fn is_bad(self) -> bool {
        !matches!(self, Verdict::Ok | Verdict::Loss)
    }

    /// A failure rather than a slowdown: pages at once.
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Verdict::Error | Verdict::Unreachable | Verdict::DnsFail
        )
    }

    /// The family a quorum is counted over.
    pub fn family(self) -> Family {
        match self {
            Verdict::Ok | Verdict::Loss | Verdict::Path | Verdict::Unreachable => Family::Net,
            Verdict::Slow | Verdict::Error => Family::Server,
            Verdict::DnsFail => Family::Dns,
        }
    }
}

/// Where a verdict points: the path, the server, or name resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Between the probe and the server: round trips, loss, connects.
    Net,
    /// The server (or edge): its time, its answers.
    Server,
    /// Name resolution.
    Dns,
}

/// Judge a sample against its baselines (`base[m]` is `None` while warming up).
/// Returns the verdict and whether the connect was a retransmission.
pub fn judge(s: &Sample, base: &[Option<Estimate>; 4]) -> (Verdict, bool) {
    if let Some((kind, _)) = s.fail {
        let v = match kind {
            FailKind::Dns => Verdict::DnsFail,
            FailKind::Connect => Verdict::Unreachable,
            FailKind::Server => Verdict::Error,
            FailKind::Policy => Verdict::Ok,
        };
        return (v, false);
    }
    let over = |m: Metric| match (s.get(m), &base[m as usize]) {
        (Some(v), Some(e)) => v > m.threshold(e),
        _ => false,
    };
    let retransmit = match (s.get(Metric::Rtt), &base[Metric::Rtt as usize]) {
        (Some(v), Some(e)) => v > e.median + RETRANSMIT_EXCESS_MS,
        _ => false,
    };
    if over(Metric::Dns) && s.get(Metric::Rtt).is_none() && s.get(Metric::Server).is_none() {
        // A DNS check far slower than usual: resolution, not the path to a web server.
        return (Verdict::DnsFail, false);
    }
    if retransmit {
        return (Verdict::Loss, true);
    }
    if over(Metric::Rtt) {
        return (Verdict::Path, false);
    }
    if over(Metric::Server) || tls_over_path(s, base) {
        return (Verdict::Slow, false);
    }
    (Verdict::Ok, false)
}

/// Whether the TLS handshake grew by more than its round trips explain: a path change adds
/// `round trips × Δrtt` to it (one for TLS 1.3, two for 1.2, read off the baselines' ratio),
/// a slow TLS server adds time on top.
fn tls_over_path(s: &Sample, base: &[Option<Estimate>; 4]) -> bool {
    let (Some(tls), Some(tb)) = (s.get(Metric::Tls), &base[Metric::Tls as usize]) else {
        return false;
    };
    let path_share = match (s.get(Metric::Rtt), &base[Metric::Rtt as usize]) {
        (Some(rtt), Some(rb)) if rb.median > 0.0 => {
            let rtts = (tb.median / rb.median).clamp(0.5, 3.0);
            (rtt - rb.median).max(0.0) * rtts
        }
        _ => 0.0,
    };
    tls - path_share > Metric::Tls.threshold(tb)
}
