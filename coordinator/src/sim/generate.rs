//! One check run in the simulated world: the [`CheckResult`] a real probe would have written,
//! phase by phase, from the world's paths, the faults' [`Conditions`] and the noise model.
//!
//! The phases follow the probe's own rules: each phase on its own, `Some(0)` for a phase that
//! does not apply (TLS on plain HTTP, everything but `dns` on a DNS check), `None` for one not
//! reached. Round trips: connect = 1 RTT, TLS = 1 RTT (1.3) or 2 (1.2) plus a little CPU,
//! first byte = 1 RTT plus server time. Noise (detection.md, Appendix A): each round trip is
//! `base·LN(0, σ) + Exp(1 ms)`, a check may carry a congestion spike of +20..300 ms on every
//! round trip, and each packet may be lost: a lost SYN or SYN-ACK costs the 1 s initial
//! retransmission timeout, doubling, until the 10 s connect timeout; a loss later costs about
//! one RTO (RTT + 200 ms).
//!
//! Deliberately absent: scheduling, delivery and clocks other than the one passed in.

use meridian_shared::check::Rcode;
use meridian_shared::result::{CheckError, CheckResult, DnsDetail, ErrorClass, HttpDetail, Phases};
use rand::RngExt as _;
use rand_distr::{Distribution as _, Exp, LogNormal};
use rand_pcg::Pcg64Mcg;

use super::conditions::Conditions;
use super::scenario::{DnsFailure, DnsScope, TargetKind, Tls};
use super::world::World;

/// A check's overall timeout, ms (the probe's default).
pub const TIMEOUT_MS: f64 = 10_000.0;

/// How long a stub resolver waits before giving up, ms.
pub const DNS_TIMEOUT_MS: f64 = 5_000.0;

/// Body size of a healthy response, bytes.
const BODY_BYTES: u64 = 16_384;

/// The random draws of one check.
struct Draw<'a> {
    rng: &'a mut Pcg64Mcg,
    jitter: Option<LogNormal<f64>>,
    queue: Exp<f64>,
}

impl Draw<'_> {
    /// A lognormal factor around 1 (exactly 1 without jitter).
    fn factor(&mut self) -> f64 {
        match &self.jitter {
            Some(d) => d.sample(self.rng),
            None => 1.0,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (p >= 1.0 || self.rng.random::<f64>() < p)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.rng.random::<f64>()
    }
}

/// Runs probe `p`'s check of target `k` starting at `start_ms` (true time), for the slot
/// `scheduled_ms` (true time); the probe's clock offset is applied to both stamps.
pub fn run_check(
    world: &World,
    p: usize,
    k: usize,
    scheduled_ms: i64,
    start_ms: i64,
    rng: &mut Pcg64Mcg,
) -> CheckResult {
    let sigma = world.scenario.noise.jitter;
    let mut draw = Draw {
        rng,
        jitter: (sigma > 0.0)
            .then(|| LogNormal::new(0.0, sigma).ok())
            .flatten(),
        queue: Exp::new(1.0).expect("a rate of 1/ms is finite and positive"),
    };
    let c = world.conditions(p, k, start_ms);
    let probe = &world.probes[p];
    let target = &world.targets[k];
    let offset = world.clock_offset_ms(p, start_ms);
    let mut result = CheckResult {
        probe_id: probe.id.clone(),
        region: probe.at.region.to_string(),
        check_id: target.check_id.clone(),
        scheduled_ms: scheduled_ms + offset,
        started_ms: start_ms + offset,
        phases: Phases::default(),
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: Vec::new(),
    };
    match world.scenario.targets[k].kind {
        TargetKind::Http => http(world, p, k, start_ms, &c, &mut draw, &mut result),
        TargetKind::Dns => dns(world, p, k, &c, &mut draw, &mut result),
    }
    result
}

fn us(ms: f64) -> u64 {
    // Float to integer `as` saturates, and phases are never negative.
    (ms.max(0.0) * 1000.0).round() as u64
}

fn fail(class: ErrorClass, message: String) -> Option<CheckError> {
    Some(CheckError { class, message })
}

/// The stub resolver's query: its median time, retries after lost packets; `Err` with the
/// time spent when it times out.
fn resolve(median_ms: f64, c: &Conditions, draw: &mut Draw<'_>) -> Result<f64, f64> {
    let mut waited = 0.0;
    let lost = 1.0 - (1.0 - c.dns_loss).powi(2);
    while draw.chance(lost) {
        waited += 1_000.0;
        if waited >= DNS_TIMEOUT_MS {
            return Err(DNS_TIMEOUT_MS);
        }
    }
    Ok(waited + (median_ms + c.dns_extra_ms) * draw.factor() + 0.2 * draw.queue.sample(draw.rng))
}

fn http(
    world: &World,
    p: usize,
    k: usize,
    start_ms: i64,
    c: &Conditions,
    draw: &mut Draw<'_>,
    out: &mut CheckResult,
) {
    let spec = &world.scenario.targets[k];
    let target = &world.targets[k];
    let leg = &target.legs[p];
    let host = &target.host;
    let region = world.probes[p].region_index;

    // Name resolution, from the region's resolver.
    let mut dns_ms = match resolve(world.probes[p].resolver_ms, c, draw) {
        Ok(ms) => ms,
        Err(ms) => {
            out.phases.dns = Some(us(ms));
            out.phases.total = us(ms);
            out.error = fail(
                ErrorClass::DnsTimeout,
                format!("resolving {host} timed out"),
            );
            return;
        }
    };
    if let Some((failure, scope)) = c.dns {
        if scope == DnsScope::Authoritative {
            dns_ms += target.auth_rtt_ms[region] * draw.factor();
        }
        let (class, message, ms) = match failure {
            DnsFailure::Timeout => (
                ErrorClass::DnsTimeout,
                format!("resolving {host} timed out"),
                DNS_TIMEOUT_MS,
            ),
            DnsFailure::ServFail => (
                ErrorClass::Dns,
                format!("resolving {host}: SERVFAIL, no address"),
                dns_ms,
            ),
            DnsFailure::NxDomain => (
                ErrorClass::Dns,
                format!("resolving {host}: NXDOMAIN, no address"),
                dns_ms,
            ),
        };
        out.phases.dns = Some(us(ms));
        out.phases.total = us(ms);
        out.error = fail(class, message);
        return;
    }
    out.phases.dns = Some(us(dns_ms));

    // One path sample per check: base RTT under the diurnal swing, plus fault delay; a
    // congestion spike lasts the whole check.
    let base = leg.rtt_ms * world.diurnal(p, start_ms) + c.extra_rtt_ms;
    let noise = world.scenario.noise;
    let spike = if draw.chance(noise.spike_rate) {
        draw.uniform(20.0, 300.0)
    } else {
        0.0
    };
    let rt = |draw: &mut Draw<'_>| base * draw.factor() + draw.queue.sample(draw.rng) + spike;
    let rto = base + 200.0;

    // TCP: SYN and SYN-ACK must both get through; each failed attempt waits out the
    // retransmission timer (1 s, doubling) until the connect timeout.
    let attempt_lost = if c.unreachable {
        1.0
    } else {
        1.0 - (1.0 - c.loss).powi(2)
    };
    let mut waited = 0.0;
    let mut timer = 1_000.0;
    let connect_ms = loop {
        if !draw.chance(attempt_lost) {
            break waited + rt(draw);
        }
        if waited + timer >= TIMEOUT_MS {
            out.phases.connect = Some(us(TIMEOUT_MS));
            out.phases.total = us(dns_ms + TIMEOUT_MS);
            out.error = fail(
                ErrorClass::ConnectTimeout,
                format!(
                    "TCP connect to {}:443 did not complete before the check's timeout",
                    leg.remote_ip
                ),
            );
            return;
        }
        waited += timer;
        timer *= 2.0;
    };
    out.phases.connect = Some(us(connect_ms));
    out.remote_ip = Some(leg.remote_ip);
    let mut detail = HttpDetail {
        http_version: Some("HTTP/2".to_string()),
        ..HttpDetail::default()
    };
    if let Some(edge) = &leg.edge {
        detail.edge.insert("x-served-by".to_string(), edge.clone());
    }
    let lost_packets = |draw: &mut Draw<'_>, n: u32| -> f64 {
        (0..n).filter(|_| draw.chance(c.loss)).count() as f64 * rto
    };

    // TLS.
    let round_trips = match spec.tls {
        Tls::None => 0,
        Tls::V13 => 1,
        Tls::V12 => 2,
    };
    let tls_ms = if round_trips == 0 {
        0.0
    } else {
        let mut ms = (0..round_trips).map(|_| rt(draw)).sum::<f64>();
        ms += 1.5 * draw.factor() + c.tls_ms + lost_packets(draw, 2 * round_trips);
        detail.tls_version = Some(
            if round_trips == 1 {
                "TLSv1.3"
            } else {
                "TLSv1.2"
            }
            .to_string(),
        );
        detail.cert_days_left = Some(60);
        ms
    };
    let mut spent = connect_ms + tls_ms;
    if spent >= TIMEOUT_MS {
        out.phases.tls = Some(us(TIMEOUT_MS - connect_ms));
        out.phases.total = us(dns_ms + TIMEOUT_MS);
        out.http = Some(detail);
        out.error = fail(
            ErrorClass::Tls,
            format!("TLS handshake with {host} did not complete before the check's timeout"),
        );
        return;
    }
    out.phases.tls = Some(us(tls_ms));

    // Request to first byte: one round trip plus server time (the edge→origin round trip
    // included when an edge serves the region).
    let failed = draw.chance(c.error_rate);
    let server_ms = if failed {
        3.0 * draw.factor()
    } else {
        let upstream = if leg.upstream_ms > 0.0 {
            1.0 + leg.upstream_ms * draw.factor()
        } else {
            0.0
        };
        spec.server_ms * draw.factor() + upstream + c.server_ms
    };
    let ttfb_ms = rt(draw) + server_ms + lost_packets(draw, 2);
    spent += ttfb_ms;
    if spent >= TIMEOUT_MS {
        out.phases.ttfb = None;
        out.phases.total = us(dns_ms + TIMEOUT_MS);
        out.http = Some(detail);
        out.error = fail(
            ErrorClass::HttpTimeout,
            format!("no response from {host} before the check's timeout"),
        );
        return;
    }
    out.phases.ttfb = Some(us(ttfb_ms));
    let status = if failed { c.error_status } else { 200 };
    detail.status = Some(status);
    detail.bytes = if failed { 120 } else { BODY_BYTES };
    let transfer_ms = if failed { 0.05 } else { 0.4 * draw.factor() };
    out.phases.transfer = Some(us(transfer_ms));
    out.phases.total = us(dns_ms + spent + transfer_ms + 0.2);
    if failed {
        out.error = fail(
            ErrorClass::HttpStatus,
            format!("status {status} is not in the expected set 200-399"),
        );
    }
    out.http = Some(detail);
}

fn dns(
    world: &World,
    p: usize,
    k: usize,
    c: &Conditions,
    draw: &mut Draw<'_>,
    out: &mut CheckResult,
) {
    let target = &world.targets[k];
    let leg = &target.legs[p];
    let what = format!("{} A", target.host);
    out.remote_ip = Some(leg.remote_ip);
    out.phases.connect = Some(0);
    out.phases.tls = Some(0);
    out.phases.ttfb = Some(0);
    out.phases.transfer = Some(0);
    let timeout = |out: &mut CheckResult| {
        out.phases.dns = Some(us(DNS_TIMEOUT_MS));
        out.phases.total = us(DNS_TIMEOUT_MS + 0.1);
        out.error = fail(
            ErrorClass::DnsTimeout,
            format!(
                "no answer to {what} from udp://{}:53 before the check's timeout",
                leg.remote_ip
            ),
        );
    };
    let mut ms = match resolve(leg.rtt_ms, c, draw) {
        Ok(ms) if !c.unreachable => ms,
        _ => return timeout(out),
    };
    let rcode = match c.dns {
        None => Rcode::NoError,
        Some((DnsFailure::Timeout, _)) => return timeout(out),
        Some((failure, scope)) => {
            if scope == DnsScope::Authoritative {
                ms += target.auth_rtt_ms[world.probes[p].region_index] * draw.factor();
            }
            match failure {
                DnsFailure::NxDomain => Rcode::NxDomain,
                _ => Rcode::ServFail,
            }
        }
    };
    out.phases.dns = Some(us(ms));
    out.phases.total = us(ms + 0.1);
    let answers = if rcode == Rcode::NoError {
        vec![format!("192.0.2.{}", 10 + k)]
    } else {
        out.error = fail(
            ErrorClass::DnsRcode,
            format!(
                "{what} via udp://{}:53 answered {rcode}, expected NOERROR",
                leg.remote_ip
            ),
        );
        Vec::new()
    };
    out.dns = Some(DnsDetail { rcode, answers });
}
