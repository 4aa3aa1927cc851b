//! How `probe check` shows a result: a per-phase table for people, or one JSON object for
//! scripts (`--json`), with per-phase durations in milliseconds as floats.

use std::fmt::Write as _;

use meridian_shared::result::CheckResult;
use serde::Serialize;

/// The `--json` object. Field names are a public contract for scripts.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// The check's target (URL or `dns:NAME/TYPE`).
    pub target: &'a str,
    /// Whether the check passed.
    pub ok: bool,
    /// Error class (`http-status`, `dns`, ...) or null.
    pub error: Option<&'static str>,
    /// Human explanation of the error, or null.
    pub message: Option<&'a str>,
    /// Resolution time in ms (0 when no resolution was needed, null when not reached).
    pub dns_ms: Option<f64>,
    /// TCP connect time in ms.
    pub connect_ms: Option<f64>,
    /// TLS handshake time in ms (0 for plain HTTP).
    pub tls_ms: Option<f64>,
    /// Request written to first response byte, ms.
    pub ttfb_ms: Option<f64>,
    /// First to last body byte, ms.
    pub transfer_ms: Option<f64>,
    /// Whole check, ms.
    pub total_ms: f64,
    /// Final HTTP status.
    pub status: Option<u16>,
    /// `HTTP/1.1` or `HTTP/2`.
    pub http_version: Option<&'a str>,
    /// `TLSv1.2` or `TLSv1.3`.
    pub tls_version: Option<&'a str>,
    /// Days until the certificate expires.
    pub cert_days_left: Option<i64>,
    /// Body bytes read.
    pub bytes: Option<u64>,
    /// Redirects followed.
    pub redirects: Option<u8>,
    /// Address talked to.
    pub remote_ip: Option<String>,
    /// Edge-identity headers.
    pub edge: Option<&'a std::collections::BTreeMap<String, String>>,
    /// DNS response code, for DNS checks.
    pub rcode: Option<String>,
    /// DNS answers, for DNS checks.
    pub answers: Option<&'a [String]>,
    /// Non-fatal findings.
    pub warnings: &'a [String],
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|u| u as f64 / 1000.0)
}

/// Builds the JSON report of a result.
pub fn json<'a>(target: &'a str, r: &'a CheckResult) -> JsonReport<'a> {
    let http = r.http.as_ref();
    JsonReport {
        target,
        ok: r.passed(),
        error: r.error.as_ref().map(|e| e.class.as_str()),
        message: r.error.as_ref().map(|e| e.message.as_str()),
        dns_ms: ms(r.phases.dns),
        connect_ms: ms(r.phases.connect),
        tls_ms: ms(r.phases.tls),
        ttfb_ms: ms(r.phases.ttfb),
        transfer_ms: ms(r.phases.transfer),
        total_ms: r.phases.total as f64 / 1000.0,
        status: http.and_then(|h| h.status),
        http_version: http.and_then(|h| h.http_version.as_deref()),
        tls_version: http.and_then(|h| h.tls_version.as_deref()),
        cert_days_left: http.and_then(|h| h.cert_days_left),
        bytes: http.map(|h| h.bytes),
        redirects: http.map(|h| h.redirects),
        remote_ip: r.remote_ip.map(|ip| ip.to_string()),
        edge: http.map(|h| &h.edge).filter(|e| !e.is_empty()),
        rcode: r.dns.as_ref().map(|d| d.rcode.name()),
        answers: r.dns.as_ref().map(|d| d.answers.as_slice()),
        warnings: &r.warnings,
    }
}

/// Renders the human table: a summary line, one row per phase with a bar, the verdict.
pub fn table(target: &str, r: &CheckResult) -> String {
    let mut out = String::new();
    let mut head = vec![target.to_string()];
    if let Some(ip) = r.remote_ip {
        head.push(format!("→ {ip}"));
    }
    if let Some(h) = &r.http {
        head.extend(h.http_version.clone());
        head.extend(h.tls_version.clone());
        head.extend(h.status.map(|s| s.to_string()));
        head.push(format!("{} bytes", h.bytes));
        if h.redirects > 0 {
            head.push(format!("{} redirects", h.redirects));
        }
    }
    if let Some(d) = &r.dns {
        head.push(d.rcode.name());
    }
    let _ = writeln!(out, "{}", head.join("  "));
    let rows = [
        ("dns", r.phases.dns),
        ("connect", r.phases.connect),
        ("tls", r.phases.tls),
        ("ttfb", r.phases.ttfb),
        ("transfer", r.phases.transfer),
    ];
    let total = r.phases.total.max(1);
    for (name, us) in rows {
        // DNS checks have no connection phases (they are Some(0), "does not apply").
        if r.http.is_none() && name != "dns" && us == Some(0) {
            continue;
        }
        match us {
            Some(us) => {
                let width = (us * 40).div_ceil(total).min(40) as usize;
                let _ = writeln!(
                    out,
                    "  {name:<9}{:>10.3} ms  {}",
                    us as f64 / 1000.0,
                    "█".repeat(width)
                );
            }
            None => {
                let _ = writeln!(out, "  {name:<9}{:>13}", "—");
            }
        }
    }
    let _ = writeln!(
        out,
        "  {:<9}{:>10.3} ms",
        "total",
        r.phases.total as f64 / 1000.0
    );
    if let Some(d) = &r.dns {
        for a in &d.answers {
            let _ = writeln!(out, "  answer   {a}");
        }
    }
    if let Some(h) = &r.http {
        if let Some(days) = h.cert_days_left {
            let _ = writeln!(out, "  certificate expires in {days} days");
        }
        for (k, v) in &h.edge {
            let _ = writeln!(out, "  {k}: {v}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    match &r.error {
        None => {
            let _ = writeln!(out, "ok");
        }
        Some(e) => {
            let _ = writeln!(out, "FAILED {}: {}", e.class, e.message);
        }
    }
    out
}
