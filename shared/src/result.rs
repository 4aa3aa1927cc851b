//! What a check produced: the result record that a probe writes to its spool and (later) sends
//! to the coordinator.
//!
//! Phase durations are each phase on its own, never cumulative, in whole microseconds, so the
//! coordinator can add and compare them without re-deriving boundaries. A phase that does not
//! apply (no TLS on `http://`, no DNS for an IP literal) is `Some(0)`; a phase that was never
//! reached because an earlier one failed is `None`. Field names are part of the wire format.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::check::{CheckId, Rcode};

/// One run of one check on one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which probe ran it.
    pub probe_id: String,
    /// The probe's region id.
    pub region: String,
    /// Which check.
    pub check_id: CheckId,
    /// The slot the scheduler meant the run for, Unix milliseconds; ties samples across probes.
    pub scheduled_ms: i64,
    /// When the run actually began, Unix milliseconds (wall clock).
    pub started_ms: i64,
    /// Per-phase durations.
    pub phases: Phases,
    /// Address the check finally talked to (the origin, or the DNS server asked).
    pub remote_ip: Option<IpAddr>,
    /// HTTP-specific findings, for HTTP checks that got far enough to connect.
    pub http: Option<HttpDetail>,
    /// DNS-specific findings, for DNS checks that got an answer.
    pub dns: Option<DnsDetail>,
    /// Why the check failed; `None` when it passed.
    pub error: Option<CheckError>,
    /// Things worth knowing that do not fail the check (a certificate close to expiry).
    pub warnings: Vec<String>,
}

impl CheckResult {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.error.is_none()
    }
}

/// Each phase on its own, in microseconds (see the module docs for `None` versus `Some(0)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Phases {
    /// Name resolution.
    pub dns: Option<u64>,
    /// TCP handshake (SYN to established).
    pub connect: Option<u64>,
    /// TLS handshake, after connect.
    pub tls: Option<u64>,
    /// Request written to first response byte: server time plus one round trip.
    pub ttfb: Option<u64>,
    /// First to last byte of the body read.
    pub transfer: Option<u64>,
    /// Start to end of the run, gaps and redirects included.
    pub total: u64,
}

/// What an HTTP check saw of the final response and the connection that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpDetail {
    /// Status code of the final response, when one arrived.
    pub status: Option<u16>,
    /// Body bytes read (capped by the check's `max_body_bytes`).
    pub bytes: u64,
    /// Whether the body was longer than the cap and reading stopped there.
    pub truncated: bool,
    /// `HTTP/1.1` or `HTTP/2`.
    pub http_version: Option<String>,
    /// `TLSv1.2` or `TLSv1.3`.
    pub tls_version: Option<String>,
    /// Whole days until the server certificate expires (negative once expired).
    pub cert_days_left: Option<i64>,
    /// Redirects followed.
    pub redirects: u8,
    /// Edge-identity headers (`server`, `via`, `x-served-by`, `x-cache`, `cf-ray`,
    /// `x-amz-cf-pop`, `server-timing`) of the final response, lower-case names.
    pub edge: BTreeMap<String, String>,
}

/// The response headers that identify a CDN edge or the serving origin.
pub const EDGE_HEADERS: [&str; 7] = [
    "server",
    "via",
    "x-served-by",
    "x-cache",
    "cf-ray",
    "x-amz-cf-pop",
    "server-timing",
];

/// What a DNS check got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsDetail {
    /// Response code.
    pub rcode: Rcode,
    /// Answer records of the asked type, in presentation form.
    pub answers: Vec<String>,
}

/// Why a check failed: a class for machines and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckError {
    /// Coarse cause, stable across versions; detection keys on it.
    pub class: ErrorClass,
    /// Human explanation with the specifics (addresses, codes, expectations).
    pub message: String,
}

/// Coarse causes of a failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The name could not be resolved (NXDOMAIN, SERVFAIL, no address of the wanted family).
    Dns,
    /// The resolver did not answer in time.
    DnsTimeout,
    /// A DNS check got a response code other than the expected one.
    DnsRcode,
    /// A DNS check's answers did not match the expectation.
    DnsAnswer,
    /// The TCP handshake did not finish in time.
    ConnectTimeout,
    /// The server actively refused the connection (RST).
    ConnectRefused,
    /// Another connect failure: unreachable network or host, reset.
    Connect,
    /// The TLS handshake failed (certificate, protocol, alert).
    Tls,
    /// Connected, but the response (headers or body) did not arrive in time.
    HttpTimeout,
    /// The server broke the protocol or closed the connection mid-exchange.
    HttpProtocol,
    /// The final status was not in the expected set.
    HttpStatus,
    /// The body did not contain or match what was expected.
    ContentMismatch,
    /// More redirects than the policy allows.
    TooManyRedirects,
    /// A redirect that cannot be followed: a `Location` that is not a URL, or not http(s).
    BadRedirect,
    /// The target resolved to an address the probe refuses to contact.
    BlockedTarget,
}

impl ErrorClass {
    /// The kebab-case name used on the wire and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Dns => "dns",
            ErrorClass::DnsTimeout => "dns-timeout",
            ErrorClass::DnsRcode => "dns-rcode",
            ErrorClass::DnsAnswer => "dns-answer",
            ErrorClass::ConnectTimeout => "connect-timeout",
            ErrorClass::ConnectRefused => "connect-refused",
            ErrorClass::Connect => "connect",
            ErrorClass::Tls => "tls",
            ErrorClass::HttpTimeout => "http-timeout",
            ErrorClass::HttpProtocol => "http-protocol",
            ErrorClass::HttpStatus => "http-status",
            ErrorClass::ContentMismatch => "content-mismatch",
            ErrorClass::TooManyRedirects => "too-many-redirects",
            ErrorClass::BadRedirect => "bad-redirect",
            ErrorClass::BlockedTarget => "blocked-target",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn error_class() -> impl Strategy<Value = ErrorClass> {
        prop::sample::select(vec![
            ErrorClass::Dns,
            ErrorClass::DnsTimeout,
            ErrorClass::DnsRcode,
            ErrorClass::DnsAnswer,
            ErrorClass::ConnectTimeout,
            ErrorClass::ConnectRefused,
            ErrorClass::Connect,
            ErrorClass::Tls,
            ErrorClass::HttpTimeout,
            ErrorClass::HttpProtocol,
            ErrorClass::HttpStatus,
            ErrorClass::ContentMismatch,
            ErrorClass::TooManyRedirects,
            ErrorClass::BadRedirect,
            ErrorClass::BlockedTarget,
        ])
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
            any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        ]
    }

    fn phases() -> impl Strategy<Value = Phases> {
        let p = || proptest::option::of(any::<u64>());
        (p(), p(), p(), p(), p(), any::<u64>()).prop_map(
            |(dns, connect, tls, ttfb, transfer, total)| Phases {
                dns,
                connect,
                tls,
                ttfb,
                transfer,
                total,
            },
        )
    }

    fn http_detail() -> impl Strategy<Value = HttpDetail> {
        (
            proptest::option::of(100u16..600),
            any::<u64>(),
            any::<bool>(),
            proptest::option::of("HTTP/1\\.1|HTTP/2"),
            proptest::option::of("TLSv1\\.[23]"),
            proptest::option::of(any::<i64>()),
            any::<u8>(),
            prop::collection::btree_map(
                prop::sample::select(EDGE_HEADERS.to_vec()).prop_map(String::from),
                ".{0,40}",
                0..4,
            ),
        )
            .prop_map(
                |(
                    status,
                    bytes,
                    truncated,
                    http_version,
                    tls_version,
                    cert_days_left,
                    redirects,
                    edge,
                )| HttpDetail {
                    status,
                    bytes,
                    truncated,
                    http_version,
                    tls_version,
                    cert_days_left,
                    redirects,
                    edge,
                },
            )
    }

    fn dns_detail() -> impl Strategy<Value = DnsDetail> {
        (0u16..4096, prop::collection::vec(".{0,30}", 0..5)).prop_map(|(rc, answers)| DnsDetail {
            rcode: Rcode::from_u16(rc),
            answers,
        })
    }

    prop_compose! {
        fn check_result()(
            probe_id in "[a-z0-9-]{1,20}",
            region in "[a-z]{2}-[a-z]{4,8}",
            check_id in "[a-z0-9._-]{1,64}",
            scheduled_ms in any::<i64>(),
            started_ms in any::<i64>(),
            phases in phases(),
            remote_ip in proptest::option::of(ip()),
            http in proptest::option::of(http_detail()),
            dns in proptest::option::of(dns_detail()),
            error in proptest::option::of((error_class(), ".{0,80}").prop_map(|(class, message)| CheckError { class, message })),
            warnings in prop::collection::vec(".{0,40}", 0..3),
        ) -> CheckResult {
            CheckResult {
                probe_id,
                region,
                check_id: CheckId::parse(&check_id).expect("strategy makes valid ids"),
                scheduled_ms,
                started_ms,
                phases,
                remote_ip,
                http,
                dns,
                error,
                warnings,
            }
        }
    }

    proptest! {
        #[test]
        fn msgpack_round_trip_is_lossless(r in check_result()) {
            let bytes = rmp_serde::to_vec_named(&r).unwrap();
            let back: CheckResult = rmp_serde::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, r);
        }

        #[test]
        fn json_round_trip_is_lossless(r in check_result()) {
            let text = serde_json::to_string(&r).unwrap();
            let back: CheckResult = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, r);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = rmp_serde::from_slice::<CheckResult>(&bytes);
        }
    }

    #[test]
    fn error_classes_use_their_documented_names_on_the_wire() {
        for class in [
            ErrorClass::BlockedTarget,
            ErrorClass::ConnectTimeout,
            ErrorClass::HttpStatus,
        ] {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
        }
    }
}
