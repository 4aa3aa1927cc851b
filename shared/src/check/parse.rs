//! The TOML form of checks (`[[http]]` and `[[dns]]` tables) and its validation into
//! [`Check`]s, with every problem located at its line and field.
//!
//! Raw structs mirror the file exactly (`deny_unknown_fields`, `Spanned` values); validation
//! collects all issues through [`Issues`] instead of stopping at the first. Any file format that
//! embeds checks (the probe config now, the coordinator's target list later) flattens
//! [`RawChecks`] into its own top level and calls [`RawChecks::validate`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::{
    AnswerMatch, BodyMatch, Check, CheckId, CheckSpec, DEFAULT_INTERVAL, DnsCheck, HttpCheck,
    Pattern, RedirectPolicy, ResolveOverride, StatusSet,
};
use crate::config::{Issues, SourceFile};

/// The `[[http]]` and `[[dns]]` arrays of a file.
#[derive(Debug, Default, Deserialize)]
pub struct RawChecks {
    /// `[[http]]` tables.
    #[serde(default)]
    pub http: Vec<Spanned<RawHttpCheck>>,
    /// `[[dns]]` tables.
    #[serde(default)]
    pub dns: Vec<Spanned<RawDnsCheck>>,
}

/// One `[[http]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "fields are documented by the typed HttpCheck")]
pub struct RawHttpCheck {
    pub id: Spanned<String>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub expect_status: Option<Spanned<Vec<StatusItem>>>,
    #[serde(default)]
    pub body_contains: Option<Spanned<String>>,
    #[serde(default)]
    pub body_regex: Option<Spanned<String>>,
    #[serde(default)]
    pub cert_expiry_warn_days: Option<u32>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    #[serde(default)]
    pub max_redirects: Option<u8>,
    #[serde(default)]
    pub ip_version: Option<Spanned<String>>,
    #[serde(default)]
    pub resolve: Vec<Spanned<String>>,
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
}

/// A status item is written either as a number (`200`) or as text (`"2xx"`, `"200-299"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(missing_docs, reason = "the two spellings of one status item")]
pub enum StatusItem {
    Code(u16),
    Text(String),
}

/// One `[[dns]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "fields are documented by the typed DnsCheck")]
pub struct RawDnsCheck {
    pub id: Spanned<String>,
    pub name: Spanned<String>,
    #[serde(default, rename = "type")]
    pub record_type: Option<Spanned<String>>,
    #[serde(default)]
    pub resolver: Option<Spanned<String>>,
    #[serde(default)]
    pub expect_rcode: Option<Spanned<String>>,
    #[serde(default)]
    pub expect_answers: Option<Vec<String>>,
    #[serde(default)]
    pub answers_regex: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
}

/// Shortest interval a check may ask for: below this a probe spends its time on one target.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Shortest timeout a check may ask for: below this even loopback round trips fail.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);

impl RawChecks {
    /// Validates every check, recording each problem in `issues`; returns the valid checks.
    pub fn validate(self, src: &SourceFile, issues: &mut Issues) -> Vec<Check> {
        self.validate_under("", src, issues)
    }

    /// Like [`RawChecks::validate`], for checks nested in another table: `prefix` (such as
    /// `"target[2]."`) starts every field path in the messages.
    pub fn validate_under(self, prefix: &str, src: &SourceFile, issues: &mut Issues) -> Vec<Check> {
        let mut checks = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut dup = |id: &Spanned<String>, field: &str, issues: &mut Issues| {
            let (line, _) = src.line_col(id.span().start);
            if let Some(first) = seen.insert(id.get_ref().clone(), line) {
                issues.push(src.issue(
                    id.span(),
                    field,
                    format!(
                        "duplicate check id {:?} (first used on line {first})",
                        id.get_ref()
                    ),
                ));
            }
        };
        for (i, raw) in self.http.into_iter().enumerate() {
            let field = format!("{prefix}http[{i}]");
            dup(&raw.get_ref().id, &format!("{field}.id"), issues);
            if let Some(c) = validate_http(raw.into_inner(), &field, src, issues) {
                checks.push(c);
            }
        }
        for (i, raw) in self.dns.into_iter().enumerate() {
            let field = format!("{prefix}dns[{i}]");
            dup(&raw.get_ref().id, &format!("{field}.id"), issues);
            if let Some(c) = validate_dns(raw.into_inner(), &field, src, issues) {
                checks.push(c);
            }
        }
        checks
    }
}

/// Records the error of a parse step and turns it into an `Option`.
fn check<T>(
    r: Result<T, String>,
    spanned: std::ops::Range<usize>,
    field: String,
    src: &SourceFile,
    issues: &mut Issues,
) -> Option<T> {
    r.map_err(|msg| issues.push(src.issue(spanned, field, msg)))
        .ok()
}

/// Parses an optional duration field (`"10s"`, `"1m 30s"`), applying `default` when absent and
/// requiring at least `min`.
fn duration_field(
    raw: &Option<Spanned<String>>,
    default: Duration,
    min: Duration,
    field: String,
    src: &SourceFile,
    issues: &mut Issues,
) -> Option<Duration> {
    let Some(text) = raw else {
        return Some(default);
    };
    let r = humantime::parse_duration(text.get_ref())
        .map_err(|e| {
            format!(
                "{:?} is not a duration such as \"10s\" or \"1m\": {e}",
                text.get_ref()
            )
        })
        .and_then(|d| {
            if d < min {
                Err(format!(
                    "{} is shorter than the minimum of {}",
                    humantime::format_duration(d),
                    humantime::format_duration(min)
                ))
            } else {
                Ok(d)
            }
        });
    check(r, text.span(), field, src, issues)
}

/// A check's `timeout` (default `default_timeout`) and `interval` (default 60 s).
fn cadence(
    timeout: &Option<Spanned<String>>,
    interval: &Option<Spanned<String>>,
    default_timeout: Duration,
    field: &str,
    src: &SourceFile,
    issues: &mut Issues,
) -> (Option<Duration>, Option<Duration>) {
    let f = |name: &str| format!("{field}.{name}");
    (
        duration_field(
            timeout,
            default_timeout,
            MIN_TIMEOUT,
            f("timeout"),
            src,
            issues,
        ),
        duration_field(
            interval,
            DEFAULT_INTERVAL,
            MIN_INTERVAL,
            f("interval"),
            src,
            issues,
        ),
    )
}

fn validate_http(
    raw: RawHttpCheck,
    field: &str,
    src: &SourceFile,
    issues: &mut Issues,
) -> Option<Check> {
    let f = |name: &str| format!("{field}.{name}");
    let id = check(
        CheckId::parse(raw.id.get_ref()),
        raw.id.span(),
        f("id"),
        src,
        issues,
    );
    let url = check(
        parse_url(raw.url.get_ref()),
        raw.url.span(),
        f("url"),
        src,
        issues,
    );
    let method = match &raw.method {
        Some(m) => check(
            parse_method(m.get_ref()),
            m.span(),
            f("method"),
            src,
            issues,
        ),
        None => Some("GET".to_string()),
    };
    let expect_status = match &raw.expect_status {
        Some(items) => {
            let texts: Vec<String> = items
                .get_ref()
                .iter()
                .map(|i| match i {
                    StatusItem::Code(c) => c.to_string(),
                    StatusItem::Text(t) => t.clone(),
                })
                .collect();
            let r = StatusSet::parse_items(texts.iter().map(String::as_str));
            check(r, items.span(), f("expect_status"), src, issues)
        }
        None => Some(StatusSet::default()),
    };
    let body = match (&raw.body_contains, &raw.body_regex) {
        (Some(_), Some(re)) => {
            issues.push(src.issue(
                re.span(),
                f("body_regex"),
                "body_contains and body_regex cannot both be set",
            ));
            None
        }
        (Some(text), None) => Some(Some(BodyMatch::Contains(text.get_ref().clone()))),
        (None, Some(re)) => check(
            Pattern::new(re.get_ref()),
            re.span(),
            f("body_regex"),
            src,
            issues,
        )
        .map(|p| Some(BodyMatch::Regex(p))),
        (None, None) => Some(None),
    };
    let ip_version = match &raw.ip_version {
        Some(v) => check(v.get_ref().parse(), v.span(), f("ip_version"), src, issues),
        None => Some(Default::default()),
    };
    let mut resolve = Vec::new();
    for (j, r) in raw.resolve.iter().enumerate() {
        if let Some(o) = check(
            r.get_ref().parse::<ResolveOverride>(),
            r.span(),
            format!("{field}.resolve[{j}]"),
            src,
            issues,
        ) {
            resolve.push(o);
        }
    }
    let headers = raw
        .headers
        .into_iter()
        .filter_map(|(k, v)| {
            let ok = http_token(&k) && !v.contains(['\r', '\n']);
            if !ok {
                issues.push(src.issue(
                    raw.id.span(),
                    f(&format!("headers.{k}")),
                    format!("header {k:?} is not a valid header name/value"),
                ));
            }
            ok.then_some((k, v))
        })
        .collect();
    let redirects = match (raw.follow_redirects, raw.max_redirects) {
        (Some(false), _) => RedirectPolicy::None,
        (_, max) => RedirectPolicy::Follow {
            max: max.unwrap_or(5),
        },
    };
    let (timeout, interval) = cadence(
        &raw.timeout,
        &raw.interval,
        Duration::from_secs(10),
        field,
        src,
        issues,
    );
    let spec = HttpCheck {
        url: url?,
        method: method?,
        headers,
        expect_status: expect_status?,
        body: body?,
        cert_expiry_warn_days: raw.cert_expiry_warn_days.unwrap_or(14),
        timeout: timeout?,
        redirects,
        ip_version: ip_version?,
        resolve,
        max_body_bytes: raw.max_body_bytes.unwrap_or(1 << 20),
    };
    Some(Check {
        id: id?,
        interval: interval?,
        spec: CheckSpec::Http(spec),
    })
}

fn validate_dns(
    raw: RawDnsCheck,
    field: &str,
    src: &SourceFile,
    issues: &mut Issues,
) -> Option<Check> {
    let f = |name: &str| format!("{field}.{name}");
    let id = check(
        CheckId::parse(raw.id.get_ref()),
        raw.id.span(),
        f("id"),
        src,
        issues,
    );
    let name = check(
        parse_dns_name(raw.name.get_ref()),
        raw.name.span(),
        f("name"),
        src,
        issues,
    );
    let record_type = match &raw.record_type {
        Some(t) => check(t.get_ref().parse(), t.span(), f("type"), src, issues),
        None => Some(super::RecordType::A),
    };
    let resolver = match &raw.resolver {
        Some(r) => check(r.get_ref().parse(), r.span(), f("resolver"), src, issues),
        None => Some(super::ResolverSpec::System),
    };
    let expect_rcode = match &raw.expect_rcode {
        Some(r) => check(
            r.get_ref().parse(),
            r.span(),
            f("expect_rcode"),
            src,
            issues,
        ),
        None => Some(super::Rcode::NoError),
    };
    let expect_answers = match (raw.expect_answers, &raw.answers_regex) {
        (Some(_), Some(re)) => {
            issues.push(src.issue(
                re.span(),
                f("answers_regex"),
                "expect_answers and answers_regex cannot both be set",
            ));
            None
        }
        (Some(set), None) => Some(Some(AnswerMatch::Exact(
            set.into_iter().collect::<BTreeSet<_>>(),
        ))),
        (None, Some(re)) => check(
            Pattern::new(re.get_ref()),
            re.span(),
            f("answers_regex"),
            src,
            issues,
        )
        .map(|p| Some(AnswerMatch::Regex(p))),
        (None, None) => Some(None),
    };
    let (timeout, interval) = cadence(
        &raw.timeout,
        &raw.interval,
        Duration::from_secs(5),
        field,
        src,
        issues,
    );
    let spec = DnsCheck {
        name: name?,
        record_type: record_type?,
        resolver: resolver?,
        expect_rcode: expect_rcode?,
        expect_answers: expect_answers?,
        timeout: timeout?,
    };
    Some(Check {
        id: id?,
        interval: interval?,
        spec: CheckSpec::Dns(spec),
    })
}

/// Parses an `http`/`https` URL with a host.
pub fn parse_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?}: only http and https URLs can be checked"));
    }
    if url.host().is_none() {
        return Err(format!("{s:?} has no host"));
    }
    Ok(url)
}

fn parse_method(m: &str) -> Result<String, String> {
    if http_token(m) {
        Ok(m.to_ascii_uppercase())
    } else {
        Err(format!("{m:?} is not an HTTP method"))
    }
}

/// RFC 9110 token characters.
fn http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A DNS name: labels of 1..=63 octets, 253 in all, no empty label but the final dot.
pub fn parse_dns_name(s: &str) -> Result<String, String> {
    let bare = s.strip_suffix('.').unwrap_or(s);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(bare.to_ascii_lowercase())
    } else {
        Err(format!("{s:?} is not a DNS name"))
    }
}
