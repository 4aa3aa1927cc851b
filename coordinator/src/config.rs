//! `coordinator.toml`: where the coordinator listens and keeps its data, how long it keeps
//! it, how enrolment behaves, the monitored targets with their checks and regions, and where
//! probes' networks come from (`[geoip]` databases, `[probes."ID"]` pins).
//!
//! Strict like every Meridian file: unknown fields are errors, and every problem is reported at
//! once as `file:line:column: field: message`. Reading is split from the pure
//! [`CoordinatorConfig::from_source`]; the files it names (`regions_file`) are read then, except
//! the GeoIP databases, which are large and opened by whoever uses them
//! ([`GeoIpFiles::open`]: `coordinator run` and `coordinator validate`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_shared::check::parse::{RawDnsCheck, RawHttpCheck};
use meridian_shared::check::{Check, CheckId};
use meridian_shared::config::{ConfigError, Issues, SourceFile};
use meridian_shared::regions::{Catalog, RegionId};
use serde::Deserialize;
use toml::Spanned;

use crate::geoip::{GeoIp, GeoIpError, Network};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Database, CA and state live here.
    pub data_dir: PathBuf,
    /// The region catalog in force.
    pub catalog: Catalog,
    /// QUIC address probes connect to.
    pub quic: SocketAddr,
    /// HTTP address of the web UI, the API and the public status page.
    pub http: SocketAddr,
    /// Names the coordinator's TLS certificate is issued for (what probes dial).
    pub server_names: Vec<String>,
    /// How long raw results are kept.
    pub raw_retention: Duration,
    /// How long per-minute rollups are kept.
    pub rollup_retention: Duration,
    /// Default lifetime of an enrolment token.
    pub token_ttl: Duration,
    /// Lifetime of a probe certificate.
    pub cert_validity: Duration,
    /// Monitored targets, in file order.
    pub targets: Vec<Target>,
    /// The GeoIP databases probes' networks are read from; none without `[geoip]`.
    pub geoip: Option<GeoIpFiles>,
    /// Networks the operator pinned by probe id (`[probes."ID"]`); they win over GeoIP. Only
    /// `asn`, `as_org` and `country` are ever set.
    pub pinned_networks: BTreeMap<String, Network>,
    /// Member-message drafts: the operator's templates file and the update cadence.
    pub drafts: DraftSettings,
    /// The web UI: sessions, tokens, the status page's title and public address.
    pub web: WebSettings,
    /// Where incident alerts go (`[alerting]`, see [`crate::alerting`]); no sinks by default.
    pub alerting: crate::alerting::AlertingSettings,
    /// Maintenance windows of the file (`[[maintenance]]`, see [`crate::maintenance`]); the
    /// API's are in the store.
    pub maintenance: Vec<crate::maintenance::Window>,
}

/// The `[web]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// How long a browser login lasts (default 12 h).
    pub session_ttl: Duration,
    /// Default lifetime of an API token (default 90 days).
    pub api_token_ttl: Duration,
    /// The address members reach the status page at (`https://status.example.com`), for the
    /// feed's links and ids; without it they are made from the request's `Host`. Cookies are
    /// marked `Secure` when it is `https`.
    pub public_url: Option<String>,
    /// The status page's title (default "Service status").
    pub title: String,
    /// The bearer token a Prometheus scrape of `/metrics` must send; without one, `/metrics`
    /// is open to whoever reaches `listen.http` (see `crate::metrics`).
    pub metrics_token: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            session_ttl: Duration::from_secs(12 * 3600),
            api_token_ttl: Duration::from_secs(90 * 86_400),
            public_url: None,
            title: "Service status".to_string(),
            metrics_token: None,
        }
    }
}

/// The `[drafts]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftSettings {
    /// A templates file over the built-in wording (resolved against the config file's
    /// directory; read by [`crate::drafts::Templates::load`]).
    pub templates: Option<PathBuf>,
    /// How far ahead a draft promises the next update.
    pub cadence: crate::drafts::Cadence,
}

/// The `[geoip]` table: paths, resolved against the config file's directory, not yet opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoIpFiles {
    /// A GeoIP2/GeoLite2 City (or Country) database.
    pub location: PathBuf,
    /// A GeoLite2-ASN or GeoIP2-ISP database, when given.
    pub asn: Option<PathBuf>,
}

impl GeoIpFiles {
    /// Opens (reads into memory) the databases.
    pub fn open(&self) -> Result<GeoIp, GeoIpError> {
        GeoIp::open(&self.location, self.asn.as_deref())
    }
}

/// A monitored site or service and the checks probes run against it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Stable id, unique in the file.
    pub id: String,
    /// Human name for pages and messages.
    pub name: String,
    /// Regions whose probes run the checks; every region of the catalog when empty.
    pub regions: Vec<RegionId>,
    /// The checks; their ids are unique across all targets.
    pub checks: Vec<Check>,
}

impl CoordinatorConfig {
    /// The checks a probe in `region` is assigned, across all targets.
    pub fn checks_for(&self, region: &RegionId) -> Vec<&Check> {
        self.targets
            .iter()
            .filter(|t| t.regions.is_empty() || t.regions.contains(region))
            .flat_map(|t| t.checks.iter())
            .collect()
    }

    /// The network the operator pinned for this probe, if any: apply it over GeoIP with
    /// [`Network::pinned`] (or [`crate::geoip::probe_network`]).
    pub fn network_override(&self, probe_id: &str) -> Option<Network> {
        self.pinned_networks.get(probe_id).cloned()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    data_dir: PathBuf,
    #[serde(default)]
    regions_file: Option<Spanned<PathBuf>>,
    listen: RawListen,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    enrollment: RawEnrollment,
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
    #[serde(default)]
    geoip: Option<RawGeoIp>,
    #[serde(default)]
    probes: BTreeMap<String, Spanned<RawProbeNetwork>>,
    #[serde(default)]
    drafts: RawDrafts,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    alerting: crate::alerting::settings::RawAlerting,
    #[serde(default)]
    maintenance: Vec<Spanned<crate::maintenance::RawWindow>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    #[serde(default)]
    session_ttl: Option<Spanned<String>>,
    #[serde(default)]
    api_token_ttl: Option<Spanned<String>>,
    #[serde(default)]
    public_url: Option<Spanned<String>>,
    #[serde(default)]
    title: Option<Spanned<String>>,
    #[serde(default)]
    metrics_token: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrafts {
    #[serde(default)]
    templates: Option<Spanned<String>>,
    #[serde(default)]
    update_every: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeoIp {
    location: Spanned<String>,
    #[serde(default)]
    asn: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbeNetwork {
    #[serde(default)]
    asn: Option<Spanned<i64>>,
    #[serde(default)]
    as_org: Option<Spanned<String>>,
    #[serde(default)]
    country: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    quic: Spanned<String>,
    #[serde(default)]
    http: Option<Spanned<String>>,
    #[serde(default)]
    server_names: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default)]
    raw_retention: Option<Spanned<String>>,
    #[serde(default)]
    rollup_retention: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnrollment {
    #[serde(default)]
    token_ttl: Option<Spanned<String>>,
    #[serde(default)]
    cert_validity: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    id: Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
    #[serde(default)]
    http: Vec<Spanned<RawHttpCheck>>,
    #[serde(default)]
    dns: Vec<Spanned<RawDnsCheck>>,
}

const DAY: u64 = 86_400;

/// AS_TRANS (RFC 6793): what a 2-byte-only speaker sees instead of a 4-byte AS number.
const AS_TRANS: i64 = 23_456;

/// Target and probe ids: 1 to 64 letters, digits, `-`, `_` or `.` (as certificates carry them).
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl CoordinatorConfig {
    /// Reads and validates a file; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<CoordinatorConfig, ConfigError> {
        let src = SourceFile::read(path)?;
        CoordinatorConfig::from_source(&src, path.parent().unwrap_or(Path::new(".")))
    }

    /// Validates configuration text; `base` resolves relative paths.
    pub fn from_source(src: &SourceFile, base: &Path) -> Result<CoordinatorConfig, ConfigError> {
        let raw: Raw = src.parse()?;
        let mut issues = Issues::default();

        let catalog = match &raw.regions_file {
            None => Catalog::builtin(),
            Some(p) => match Catalog::load(&base.join(p.get_ref())) {
                Ok(c) => c,
                Err(e) => {
                    issues.push(src.issue(
                        p.span(),
                        "regions_file",
                        format!("cannot use the region catalog: {e}"),
                    ));
                    Catalog::builtin()
                }
            },
        };

        let addr = |s: &Spanned<String>, field: &str, issues: &mut Issues| -> Option<SocketAddr> {
            s.get_ref()
                .parse::<SocketAddr>()
                .map_err(|_| {
                    issues.push(src.issue(
                        s.span(),
                        field,
                        format!(
                            "{:?} is not an address:port such as \"0.0.0.0:4433\" or \"[::]:4433\"",
                            s.get_ref()
                        ),
                    ))
                })
                .ok()
        };
        let quic = addr(&raw.listen.quic, "listen.quic", &mut issues);
        let http = match &raw.listen.http {
            Some(h) => addr(h, "listen.http", &mut issues),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        };
        let server_names = if raw.listen.server_names.is_empty() {
            vec!["localhost".to_string()]
        } else {
            raw.listen.server_names.clone()
        };

        let dur = |v: &Option<Spanned<String>>,
                   default_s: u64,
                   min: Duration,
                   field: &str,
                   issues: &mut Issues| {
            let Some(v) = v else {
                return Duration::from_secs(default_s);
            };
            match humantime::parse_duration(v.get_ref()) {
                Ok(d) if d >= min => d,
                Ok(d) => {
                    issues.push(src.issue(
                        v.span(),
                        field,
                        format!(
                            "{} is shorter than the minimum of {}",
                            humantime::format_duration(d),
                            humantime::format_duration(min)
                        ),
                    ));
                    Duration::from_secs(default_s)
                }
                Err(e) => {
                    issues.push(src.issue(
                        v.span(),
                        field,
                        format!(
                            "{:?} is not a duration such as \"14d\" or \"24h\": {e}",
                            v.get_ref()
                        ),
                    ));
                    Duration::from_secs(default_s)
                }
            }
        };
        let hour = Duration::from_secs(3600);
        let raw_retention = dur(
            &raw.storage.raw_retention,
            14 * DAY,
            hour,
            "storage.raw_retention",
            &mut issues,
        );
        let rollup_retention = dur(
            &raw.storage.rollup_retention,
            400 * DAY,
            hour,
            "storage.rollup_retention",
            &mut issues,
        );
        let token_ttl = dur(
            &raw.enrollment.token_ttl,
            DAY,
            Duration::from_secs(60),
            "enrollment.token_ttl",
            &mut issues,
        );
        let cert_validity = dur(
            &raw.enrollment.cert_validity,
            90 * DAY,
            hour,
            "enrollment.cert_validity",
            &mut issues,
        );
        let update_every = dur(
            &raw.drafts.update_every,
            30 * 60,
            Duration::from_secs(60),
            "drafts.update_every",
            &mut issues,
        );
        let session_ttl = dur(
            &raw.web.session_ttl,
            12 * 3600,
            Duration::from_secs(300),
            "web.session_ttl",
            &mut issues,
        );
        let api_token_ttl = dur(
            &raw.web.api_token_ttl,
            90 * DAY,
            hour,
            "web.api_token_ttl",
            &mut issues,
        );
        let public_url = match &raw.web.public_url {
            Some(u) => {
                let text = u.get_ref().trim_end_matches('/');
                let ok = (text.starts_with("https://") || text.starts_with("http://"))
                    && url::Url::parse(text).is_ok_and(|p| p.host_str().is_some());
                if !ok {
                    issues.push(src.issue(
                        u.span(),
                        "web.public_url",
                        "not an absolute http(s) URL such as \"https://status.example.com\"",
                    ));
                }
                Some(text.to_string())
            }
            None => None,
        };
        let title = match &raw.web.title {
            Some(t) if t.get_ref().trim().is_empty() => {
                issues.push(src.issue(t.span(), "web.title", "an empty title"));
                String::new()
            }
            Some(t) => t.get_ref().trim().to_string(),
            None => WebSettings::default().title,
        };
        let metrics_token = raw.web.metrics_token.as_ref().map(|t| {
            let token = t.get_ref();
            if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                issues.push(src.issue(
                    t.span(),
                    "web.metrics_token",
                    "must be at least 16 characters of visible ASCII, no spaces (it is sent as `Authorization: Bearer TOKEN`)",
                ));
            }
            token.clone()
        });
        let draft_templates = match &raw.drafts.templates {
            Some(p) if p.get_ref().trim().is_empty() => {
                issues.push(src.issue(
                    p.span(),
                    "drafts.templates",
                    "an empty path: name a templates file such as \"drafts.toml\"",
                ));
                None
            }
            Some(p) => Some(base.join(p.get_ref())),
            None => None,
        };

        let mut targets = Vec::new();
        let mut target_ids: BTreeMap<String, usize> = BTreeMap::new();
        let mut check_ids: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (i, raw_target) in raw.target.into_iter().enumerate() {
            let t = raw_target.into_inner();
            let field = format!("target[{i}]");
            let (line, _) = src.line_col(t.id.span().start);
            if !is_id(t.id.get_ref()) {
                issues.push(src.issue(
                    t.id.span(),
                    format!("{field}.id"),
                    format!(
                        "{:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
                        t.id.get_ref()
                    ),
                ));
            }
            if let Some(first) = target_ids.insert(t.id.get_ref().clone(), line) {
                issues.push(src.issue(
                    t.id.span(),
                    format!("{field}.id"),
                    format!(
                        "duplicate target id {:?} (first used on line {first})",
                        t.id.get_ref()
                    ),
                ));
            }
            let mut regions = Vec::new();
            for (j, r) in t.regions.iter().enumerate() {
                match RegionId::parse(r.get_ref()) {
                    Ok(id) if catalog.get(&id).is_some() => regions.push(id),
                    _ => issues.push(src.issue(
                        r.span(),
                        format!("{field}.regions[{j}]"),
                        format!(
                            "unknown region {:?}: it is not in the region catalog",
                            r.get_ref()
                        ),
                    )),
                }
            }
            let (http, dns) = (t.http, t.dns);
            if http.is_empty() && dns.is_empty() {
                issues.push(src.issue(
                    t.id.span(),
                    field.clone(),
                    "a target needs at least one [[target.http]] or [[target.dns]] check",
                ));
            }
            let spans: Vec<(String, std::ops::Range<usize>)> = http
                .iter()
                .map(|c| (c.get_ref().id.get_ref().clone(), c.get_ref().id.span()))
                .chain(
                    dns.iter()
                        .map(|c| (c.get_ref().id.get_ref().clone(), c.get_ref().id.span())),
                )
                .collect();
            // Within a target, RawChecks reports duplicates; across targets, this does.
            for (id, span) in &spans {
                match check_ids.get(id) {
                    Some(&(target, first)) if target != i => issues.push(src.issue(
                        span.clone(),
                        format!("{field}.checks"),
                        format!("check id {id:?} is already used on line {first}: check ids are unique across targets"),
                    )),
                    Some(_) => {}
                    None => {
                        check_ids.insert(id.clone(), (i, src.line_col(span.start).0));
                    }
                }
            }
            let checks = meridian_shared::check::parse::RawChecks { http, dns }.validate_under(
                &format!("{field}."),
                src,
                &mut issues,
            );
            targets.push(Target {
                id: t.id.get_ref().clone(),
                name: t.name.unwrap_or_else(|| t.id.get_ref().clone()),
                regions,
                checks,
            });
        }

        let alerting = crate::alerting::settings::validate(raw.alerting, src, base, &mut issues);
        let maintenance =
            maintenance_windows(&raw.maintenance, &targets, &catalog, src, &mut issues);
        let geoip = raw
            .geoip
            .and_then(|g| geoip_files(g, base, src, &mut issues));
        let pinned_networks = pinned_networks(raw.probes, src, &mut issues);

        // An unparsable address was recorded as an issue, so `finish` fails; the stand-in
        // never escapes.
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let (quic, http) = (quic.unwrap_or(unspecified), http.unwrap_or(unspecified));
        issues.finish(CoordinatorConfig {
            data_dir: base.join(raw.data_dir),
            catalog,
            quic,
            http,
            server_names,
            raw_retention,
            rollup_retention,
            token_ttl,
            cert_validity,
            targets,
            geoip,
            pinned_networks,
            drafts: DraftSettings {
                templates: draft_templates,
                cadence: crate::drafts::Cadence { update_every },
            },
            web: WebSettings {
                session_ttl,
                api_token_ttl,
                public_url,
                title,
                metrics_token,
            },
            alerting,
            maintenance,
        })
    }

    /// The check ids of target `id`.
    pub fn checks_of(&self, id: &str) -> impl Iterator<Item = &CheckId> + '_ {
        let id = id.to_string();
        self.targets
            .iter()
            .filter(move |t| t.id == id)
            .flat_map(|t| t.checks.iter().map(|c| &c.id))
    }

    /// The target a check belongs to.
    pub fn target_of_check(&self, check_id: &str) -> Option<&Target> {
        self.targets
            .iter()
            .find(|t| t.checks.iter().any(|c| c.id.as_str() == check_id))
    }

    /// What maintenance windows are checked against: the target ids and the catalog's region
    /// ids.
    pub fn maintenance_scope(&self) -> (Vec<String>, Vec<String>) {
        (
            self.targets.iter().map(|t| t.id.clone()).collect(),
            region_ids(&self.catalog),
        )
    }

    /// What members call region `id` (the id itself when the catalog does not know it).
    pub fn region_name(&self, id: &str) -> String {
        self.catalog
            .by_id(id)
            .map_or_else(|| id.to_string(), |r| r.name.clone())
    }
}

/// Every region id of `catalog`, in its order.
pub fn region_ids(catalog: &Catalog) -> Vec<String> {
    catalog
        .regions()
        .iter()
        .map(|r| r.id.as_str().to_string())
        .collect()
}

/// Where `key = ...` is written inside `table` (a table's span), for pointing at the value;
/// the table itself when the key is not written (a missing field).
fn field_span(
    src: &SourceFile,
    table: std::ops::Range<usize>,
    key: &str,
) -> std::ops::Range<usize> {
    let text = src.text();
    // toml spans an array-of-tables entry by its header: its keys run to the next header.
    let Some(rest) = text.get(table.start..) else {
        return table;
    };
    let header = rest.find('\n').map_or(rest.len(), |i| i + 1);
    let end = rest[header..]
        .find("\n[")
        .map_or(rest.len(), |i| header + i + 1);
    let body = &rest[..end];
    let mut offset = table.start;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            let value = line.find('=').map_or(0, |i| {
                i + 1 + line[i + 1..].len() - line[i + 1..].trim_start().len()
            });
            return offset + value..offset + line.len();
        }
        offset += line.len();
    }
    table
}

/// `[[maintenance]]`: each window validated, ids unique; problems at the field's value (the
/// window's table for a missing one).
fn maintenance_windows(
    raw: &[Spanned<crate::maintenance::RawWindow>],
    targets: &[Target],
    catalog: &Catalog,
    src: &SourceFile,
    issues: &mut Issues,
) -> Vec<crate::maintenance::Window> {
    let target_ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let regions = region_ids(catalog);
    let known = crate::maintenance::Known {
        targets: &target_ids,
        regions: &regions,
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let field = |f: &str| format!("maintenance[{i}].{f}");
        if !w.get_ref().id.is_empty() && !seen.insert(w.get_ref().id.clone()) {
            issues.push(src.issue(
                field_span(src, w.span(), "id"),
                field("id"),
                format!("{:?} is used by an earlier window", w.get_ref().id),
            ));
        }
        match w
            .get_ref()
            .validate(crate::maintenance::Source::Config, &known)
        {
            Ok(window) => out.push(window),
            Err(problems) => {
                for p in problems {
                    let at = field_span(src, w.span(), p.field);
                    issues.push(src.issue(at, field(p.field), p.message));
                }
            }
        }
    }
    out
}

/// `[geoip]`: the paths, resolved against `base`; only their syntax is checked here.
fn geoip_files(
    raw: RawGeoIp,
    base: &Path,
    src: &SourceFile,
    issues: &mut Issues,
) -> Option<GeoIpFiles> {
    let mut path = |p: &Spanned<String>, field: &str, what: &str| {
        if p.get_ref().trim().is_empty() {
            issues.push(src.issue(p.span(), field, format!("an empty path: name {what}")));
            None
        } else {
            Some(base.join(p.get_ref()))
        }
    };
    let location = path(
        &raw.location,
        "geoip.location",
        "a GeoIP2/GeoLite2 City or Country database (.mmdb)",
    );
    let asn = raw.asn.as_ref().map(|a| {
        path(
            a,
            "geoip.asn",
            "a GeoLite2-ASN or GeoIP2-ISP database (.mmdb), or leave `asn` out",
        )
    });
    // An empty `asn` was recorded as an issue, so dropping it here never reaches a caller.
    Some(GeoIpFiles {
        location: location?,
        asn: asn.flatten(),
    })
}

/// `[probes."ID"]`: networks pinned by hand, each checked on its own.
fn pinned_networks(
    raw: BTreeMap<String, Spanned<RawProbeNetwork>>,
    src: &SourceFile,
    issues: &mut Issues,
) -> BTreeMap<String, Network> {
    let mut pinned = BTreeMap::new();
    for (id, p) in raw {
        let field = format!("probes.{id}");
        let span = p.span();
        let p = p.into_inner();
        if !is_id(&id) {
            issues.push(src.issue(
                span.clone(),
                field.clone(),
                format!(
                    "{id:?} is not a probe id: 1 to 64 characters of letters, digits, '-', '_' or '.'"
                ),
            ));
        }
        if p.asn.is_none() && p.country.is_none() {
            issues.push(src.issue(
                span,
                field.clone(),
                "pins nothing: give `asn`, `country` or both",
            ));
        }
        let asn = p.asn.as_ref().and_then(|a| {
            let n = *a.get_ref();
            let problem = match u32::try_from(n) {
                Ok(0 | u32::MAX) | Err(_) => Some(format!(
                    "{n} is not an AS number: they run from 1 to 4294967294"
                )),
                Ok(_) if n == AS_TRANS => Some(format!(
                    "{n} is AS_TRANS, which stands in for a 4-byte AS number: pin that number"
                )),
                Ok(_) => None,
            };
            match problem {
                Some(message) => {
                    issues.push(src.issue(a.span(), format!("{field}.asn"), message));
                    None
                }
                None => u32::try_from(n).ok(),
            }
        });
        if let (Some(org), None) = (&p.as_org, &p.asn) {
            issues.push(src.issue(
                org.span(),
                format!("{field}.as_org"),
                "names the pinned AS: give `asn` too",
            ));
        }
        let country = p.country.as_ref().and_then(|c| {
            let code = c.get_ref();
            if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
                Some(code.clone())
            } else {
                issues.push(src.issue(
                    c.span(),
                    format!("{field}.country"),
                    format!("{code:?} is not an ISO 3166-1 alpha-2 country code such as \"DE\""),
                ));
                None
            }
        });
        pinned.insert(
            id,
            Network {
                asn,
                as_org: p.as_org.map(Spanned::into_inner),
                country,
                location: None,
            },
        );
    }
    pinned
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
