//! What a check is: the typed, validated specification of an HTTP or DNS check.
//!
//! These types are wire types: the probe reads them from its config file today and will receive
//! them from the coordinator later, so they derive `Serialize`/`Deserialize` and hold only data
//! (patterns are kept as validated strings and compiled by whoever runs them).
//! The TOML file format, with its spans and error messages, lives in [`parse`].

pub mod parse;

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

/// Stable name of a check, unique within one probe's (later: one coordinator's) configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckId(String);

impl CheckId {
    /// Accepts 1..=64 characters of ASCII letters, digits, `-`, `_` and `.`.
    pub fn parse(s: &str) -> Result<CheckId, String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) {
            return Err(format!(
                "check id {s:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'"
            ));
        }
        Ok(CheckId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Default interval between two runs of a check.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// One configured check: its identity, its cadence and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name, used in results and (later) in incidents.
    pub id: CheckId,
    /// Time between two scheduled runs on one probe.
    pub interval: Duration,
    /// The check itself.
    pub spec: CheckSpec,
}

/// The two kinds of check a probe runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckSpec {
    /// Fetch a URL and time each phase.
    Http(HttpCheck),
    /// Ask a resolver one question and time the answer.
    Dns(DnsCheck),
}

/// An HTTP(S) request with the expectations that make it pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheck {
    /// `http` or `https` URL; the host may be a name or an IP literal.
    pub url: Url,
    /// Request method, upper-case (`GET`, `HEAD`, ...).
    pub method: String,
    /// Extra request headers, in order.
    pub headers: Vec<(String, String)>,
    /// Status codes that count as success, checked on the final response after redirects.
    pub expect_status: StatusSet,
    /// Optional expectation on the (capped) response body.
    pub body: Option<BodyMatch>,
    /// Warn (not fail) when the server certificate expires within this many days.
    pub cert_expiry_warn_days: u32,
    /// Budget for the whole check, all phases and redirects included.
    pub timeout: Duration,
    /// Whether and how far to follow redirects.
    pub redirects: RedirectPolicy,
    /// Which address families to use.
    pub ip_version: IpVersion,
    /// curl-style `--resolve` overrides: these names skip DNS and use the given address.
    pub resolve: Vec<ResolveOverride>,
    /// Stop reading the body after this many bytes (the check is not failed for it).
    pub max_body_bytes: u64,
}

impl HttpCheck {
    /// A GET of `url` with the defaults a user would expect from `curl`-like tools:
    /// any 2xx passes, up to 5 redirects are followed, 10 s timeout, 1 MiB body cap.
    pub fn get(url: Url) -> HttpCheck {
        HttpCheck {
            url,
            method: "GET".to_string(),
            headers: Vec::new(),
            expect_status: StatusSet::default(),
            body: None,
            cert_expiry_warn_days: 14,
            timeout: Duration::from_secs(10),
            redirects: RedirectPolicy::Follow { max: 5 },
            ip_version: IpVersion::Any,
            resolve: Vec::new(),
            max_body_bytes: 1 << 20,
        }
    }
}

/// A set of HTTP status codes, written as codes (`204`), classes (`2xx`) or ranges (`200-299`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSet(Vec<(u16, u16)>);

impl Default for StatusSet {
    /// Any 2xx.
    fn default() -> Self {
        StatusSet(vec![(200, 299)])
    }
}

impl StatusSet {
    /// Parses a list of items such as `["2xx", "301", "400-404"]`.
    pub fn parse_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<StatusSet, String> {
        let mut ranges = Vec::new();
        for item in items {
            ranges.push(parse_status_item(item)?);
        }
        if ranges.is_empty() {
            return Err("the expected status set is empty".to_string());
        }
        Ok(StatusSet(ranges))
    }

    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else if lo % 100 == 0 && hi == lo + 99 {
                    format!("{}xx", lo / 100)
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn parse_status_item(item: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{item:?} is not a status code, class (\"2xx\") or range (\"200-299\")");
    let code = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(c),
            _ => Err(bad()),
        }
    };
    let item = item.trim();
    if let Some(class) = item.strip_suffix("xx").or_else(|| item.strip_suffix("XX")) {
        return match class.parse::<u16>() {
            Ok(c @ 1..=5) => Ok((c * 100, c * 100 + 99)),
            _ => Err(bad()),
        };
    }
    if let Some((lo, hi)) = item.split_once('-') {
        let (lo, hi) = (code(lo)?, code(hi)?);
        if lo > hi {
            return Err(bad());
        }
        return Ok((lo, hi));
    }
    code(item).map(|c| (c, c))
}

/// A regular expression kept as its source text, validated when built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(String);

impl Pattern {
    /// Validates the pattern with the `regex` crate's syntax.
    pub fn new(source: &str) -> Result<Pattern, String> {
        regex::Regex::new(source)
            .map(|_| Pattern(source.to_string()))
            .map_err(|e| {
                // The regex crate's syntax errors span several lines (pattern, caret, reason);
                // config messages are one line, so keep the reason.
                let text = e.to_string();
                let reason = text
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                format!("invalid regular expression {source:?}: {reason}")
            })
    }

    /// Compiles the (already validated) pattern.
    pub fn compile(&self) -> regex::Regex {
        regex::Regex::new(&self.0).expect("a Pattern is validated when it is built")
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Pattern::new(&s)
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.0
    }
}

/// An expectation on the response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyMatch {
    /// The body contains this text.
    Contains(String),
    /// The body matches this regular expression somewhere.
    Regex(Pattern),
}

/// Redirect handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectPolicy {
    /// Report the redirect response itself.
    None,
    /// Follow up to `max` redirects; one more fails the check with `too-many-redirects`.
    Follow {
        /// Most hops followed.
        max: u8,
    },
}

/// Address families a check may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum IpVersion {
    /// Whatever resolution returns, IPv4 addresses tried first.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl IpVersion {
    /// Whether `ip` is usable under this preference.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            IpVersion::Any => true,
            IpVersion::V4 => ip.is_ipv4(),
            IpVersion::V6 => ip.is_ipv6(),
        }
    }
}

impl FromStr for IpVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "any" => Ok(IpVersion::Any),
            "v4" | "ipv4" | "4" => Ok(IpVersion::V4),
            "v6" | "ipv6" | "6" => Ok(IpVersion::V6),
            _ => Err(format!("{s:?} is not an IP version (any, v4, v6)")),
        }
    }
}

/// A curl-style `name:port:address` override: connect to `addr` when the URL names `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveOverride {
    /// Host name as written in URLs, lower-case.
    pub host: String,
    /// Port the override applies to.
    pub port: u16,
    /// Address used instead of resolving.
    pub addr: IpAddr,
}

impl FromStr for ResolveOverride {
    type Err = String;
    /// Parses `host:port:addr`; an IPv6 address may be bracketed (`[::1]`).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not host:port:address");
        let mut parts = s.splitn(3, ':');
        let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let port = parts
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(bad)?;
        let addr = parts.next().ok_or_else(bad)?;
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr = addr.parse::<IpAddr>().map_err(|_| bad())?;
        Ok(ResolveOverride {
            host: host.to_ascii_lowercase(),
            port,
            addr,
        })
    }
}

/// A DNS question with the expectations that make it pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsCheck {
    /// The name asked about, fully qualified (a trailing dot is implied).
    pub name: String,
    /// Record type asked for.
    pub record_type: RecordType,
    /// Which server is asked.
    pub resolver: ResolverSpec,
    /// The response code that counts as success.
    pub expect_rcode: Rcode,
    /// Optional expectation on the answer data.
    pub expect_answers: Option<AnswerMatch>,
    /// Budget for the query, retries included.
    pub timeout: Duration,
}

impl DnsCheck {
    /// A query with defaults: NOERROR expected, any answers, 5 s timeout.
    pub fn new(name: &str, record_type: RecordType, resolver: ResolverSpec) -> DnsCheck {
        DnsCheck {
            name: name.to_string(),
            record_type,
            resolver,
            expect_rcode: Rcode::NoError,
            expect_answers: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Record types a DNS check may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs, reason = "the variants are the record types' own names")]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Soa,
}

impl RecordType {
    /// The mnemonic as written in zone files.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Ns => "NS",
            RecordType::Soa => "SOA",
        }
    }
}

impl FromStr for RecordType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "CNAME" => RecordType::Cname,
            "MX" => RecordType::Mx,
            "TXT" => RecordType::Txt,
            "NS" => RecordType::Ns,
            "SOA" => RecordType::Soa,
            _ => {
                return Err(format!(
                    "{s:?} is not a supported record type (A, AAAA, CNAME, MX, TXT, NS, SOA)"
                ));
            }
        })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which DNS server a check asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResolverSpec {
    /// The machine's own resolvers, from `/etc/resolv.conf`.
    System,
    /// One server over UDP (falling back to TCP on truncation).
    Udp(SocketAddr),
    /// One server over TCP only.
    Tcp(SocketAddr),
}

impl FromStr for ResolverSpec {
    type Err = String;
    /// `system`, `udp://ADDR[:PORT]`, `tcp://ADDR[:PORT]` or a bare `ADDR[:PORT]` (UDP); port 53
    /// when omitted; IPv6 addresses with a port are bracketed.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "system" {
            return Ok(ResolverSpec::System);
        }
        let (tcp, rest) = if let Some(r) = s.strip_prefix("tcp://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("udp://") {
            (false, r)
        } else {
            (false, s)
        };
        let addr = rest
            .parse::<SocketAddr>()
            .or_else(|_| {
                rest.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
            .map_err(|_| {
                format!("{s:?} is not a resolver (system, udp://IP[:PORT] or tcp://IP[:PORT])")
            })?;
        Ok(if tcp {
            ResolverSpec::Tcp(addr)
        } else {
            ResolverSpec::Udp(addr)
        })
    }
}

impl fmt::Display for ResolverSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolverSpec::System => f.write_str("system"),
            ResolverSpec::Udp(a) => write!(f, "udp://{a}"),
            ResolverSpec::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// DNS response codes a check can expect or report. On the wire and in files they are
/// written as `dig` prints them: `NOERROR`, `NXDOMAIN`, ..., `RCODE9` for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
#[allow(missing_docs, reason = "the variants are RFC 1035/2136 response codes")]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    /// Any other code, by number.
    Other(u16),
}

impl Rcode {
    /// The conventional upper-case name (`NOERROR`, `NXDOMAIN`, ...).
    pub fn name(self) -> String {
        match self {
            Rcode::NoError => "NOERROR".into(),
            Rcode::FormErr => "FORMERR".into(),
            Rcode::ServFail => "SERVFAIL".into(),
            Rcode::NxDomain => "NXDOMAIN".into(),
            Rcode::NotImp => "NOTIMP".into(),
            Rcode::Refused => "REFUSED".into(),
            Rcode::Other(n) => format!("RCODE{n}"),
        }
    }

    /// From the numeric code on the wire.
    pub fn from_u16(n: u16) -> Rcode {
        match n {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            n => Rcode::Other(n),
        }
    }
}

impl FromStr for Rcode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NOERROR" => Rcode::NoError,
            "FORMERR" => Rcode::FormErr,
            "SERVFAIL" => Rcode::ServFail,
            "NXDOMAIN" => Rcode::NxDomain,
            "NOTIMP" => Rcode::NotImp,
            "REFUSED" => Rcode::Refused,
            other => match other
                .strip_prefix("RCODE")
                .and_then(|n| n.parse::<u16>().ok())
            {
                Some(n) if n <= 4095 => Rcode::from_u16(n),
                _ => {
                    return Err(format!(
                        "{s:?} is not a response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, NOTIMP)"
                    ));
                }
            },
        })
    }
}

impl From<Rcode> for String {
    fn from(r: Rcode) -> String {
        r.name()
    }
}

impl TryFrom<String> for Rcode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An expectation on a DNS answer section, compared on the records' presentation text
/// (`192.0.2.1`, `10 mail.example.test.`, `"v=spf1 -all"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnswerMatch {
    /// The answers, as a set, are exactly these.
    Exact(BTreeSet<String>),
    /// Every answer matches this regular expression.
    Regex(Pattern),
}

impl AnswerMatch {
    /// Whether `answers` satisfies the expectation.
    pub fn matches(&self, answers: &[String]) -> bool {
        match self {
            AnswerMatch::Exact(want) => {
                let got: BTreeSet<String> = answers.iter().map(|a| normalize_answer(a)).collect();
                let want: BTreeSet<String> = want.iter().map(|a| normalize_answer(a)).collect();
                got == want
            }
            AnswerMatch::Regex(p) => {
                let re = p.compile();
                !answers.is_empty() && answers.iter().all(|a| re.is_match(a))
            }
        }
    }
}

/// Names compare case-insensitively and with or without their final dot.
fn normalize_answer(a: &str) -> String {
    a.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets_accept_codes_classes_and_ranges() {
        let set = StatusSet::parse_items(["2xx", "301", "400-404"]).unwrap();
        for ok in [200, 250, 299, 301, 400, 404] {
            assert!(set.contains(ok), "{ok}");
        }
        for bad in [199, 300, 302, 405, 500] {
            assert!(!set.contains(bad), "{bad}");
        }
        assert_eq!(set.to_string(), "2xx,301,400-404");
        assert!(StatusSet::parse_items(["6xx"]).is_err());
        assert!(StatusSet::parse_items(["404-400"]).is_err());
        assert!(StatusSet::parse_items(["abc"]).is_err());
        assert!(StatusSet::parse_items([]).is_err());
    }

    #[test]
    fn resolve_overrides_parse_like_curl() {
        let r: ResolveOverride = "WWW.example.test:443:127.0.0.1".parse().unwrap();
        assert_eq!((r.host.as_str(), r.port), ("www.example.test", 443));
        let r: ResolveOverride = "h:80:[::1]".parse().unwrap();
        assert_eq!(r.addr, "::1".parse::<IpAddr>().unwrap());
        assert!("h:80".parse::<ResolveOverride>().is_err());
        assert!("h:x:1.2.3.4".parse::<ResolveOverride>().is_err());
    }

    #[test]
    fn resolver_specs_parse() {
        assert_eq!("system".parse(), Ok(ResolverSpec::System));
        assert_eq!(
            "127.0.0.1:5353".parse(),
            Ok(ResolverSpec::Udp("127.0.0.1:5353".parse().unwrap()))
        );
        assert_eq!(
            "tcp://[::1]:53".parse(),
            Ok(ResolverSpec::Tcp("[::1]:53".parse().unwrap()))
        );
        assert_eq!(
            "udp://::1".parse(),
            Ok(ResolverSpec::Udp("[::1]:53".parse().unwrap()))
        );
        assert!("dns.example".parse::<ResolverSpec>().is_err());
    }

    #[test]
    fn rcodes_round_trip_through_their_names() {
        for n in 0..=30u16 {
            let rc = Rcode::from_u16(n);
            assert_eq!(rc.name().parse::<Rcode>(), Ok(rc), "{n}");
        }
        assert!("RCODE99999".parse::<Rcode>().is_err());
    }

    #[test]
    fn answer_sets_ignore_case_order_and_final_dot() {
        let m = AnswerMatch::Exact(["mail.Example.test.".to_string(), "192.0.2.1".into()].into());
        assert!(m.matches(&["192.0.2.1".into(), "mail.example.test".into()]));
        assert!(!m.matches(&["192.0.2.1".into()]));
        let r = AnswerMatch::Regex(Pattern::new(r"^192\.0\.2\.\d+$").unwrap());
        assert!(r.matches(&["192.0.2.1".into(), "192.0.2.9".into()]));
        assert!(!r.matches(&["192.0.2.1".into(), "10.0.0.1".into()]));
        assert!(!r.matches(&[]));
    }
}
