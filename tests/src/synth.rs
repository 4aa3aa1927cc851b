//! Synthetic check results for the detection benchmarks: deterministic noise without a random
//! number crate, and a successful HTTPS check composed like a real one (connect one round
//! trip, TLS 1.3 one more, first byte a round trip plus server time).

use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckResult, HttpDetail, Phases};

/// SplitMix64: a well-mixed 64-bit hash of `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic number in `[0, 1)` for `key`.
pub fn unit(key: u64) -> f64 {
    (mix(key) >> 11) as f64 / (1u64 << 53) as f64
}

/// A successful HTTPS check started at `t` (Unix ms) over a `rtt_ms` round trip with
/// `server_ms` of server time.
pub fn https_ok(
    probe: &str,
    region: &str,
    check: &CheckId,
    t: i64,
    rtt_ms: f64,
    server_ms: f64,
) -> CheckResult {
    let us = |ms: f64| (ms * 1000.0) as u64;
    CheckResult {
        probe_id: probe.to_string(),
        region: region.to_string(),
        check_id: check.clone(),
        scheduled_ms: t,
        started_ms: t,
        phases: Phases {
            dns: Some(us(2.0)),
            connect: Some(us(rtt_ms)),
            tls: Some(us(rtt_ms + 1.5)),
            ttfb: Some(us(rtt_ms + server_ms)),
            transfer: Some(150),
            total: us(3.0 * rtt_ms + server_ms + 2.0),
        },
        remote_ip: None,
        http: Some(HttpDetail {
            status: Some(200),
            ..HttpDetail::default()
        }),
        dns: None,
        error: None,
        warnings: Vec::new(),
    }
}
