//! `probe.toml`: the long-running agent's configuration, strictly parsed and validated with
//! every problem reported at once as `file:line:column: field: message`.
//!
//! Two shapes. A standalone probe names its `probe_id`, `region`, `results` file and checks
//! here. A linked probe lists `[[coordinator]]` tables and a `state_dir` (what `probe enroll`
//! wrote): its id and region then come from its certificate (and must match when the file
//! repeats them), its results go to the spool, and its checks and slot come from the
//! coordinator's assignment (local checks, if any, run until the first one arrives).
//! Reading the file is split from [`ProbeConfig::from_source`], which reads only the files the
//! configuration names (`regions_file`, `ca_file`'s existence, `state_dir/probe.pem`).
//!
//! A running probe re-reads this file on SIGHUP and on a coordinator's `Reload` and applies
//! everything in it, except what [`ProbeConfig::restart_only_changes`] names: where the state
//! and the spool live, and whether the probe is linked at all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use meridian_shared::check::parse::RawChecks;
use meridian_shared::check::{Check, ResolverSpec};
use meridian_shared::config::{ConfigError, Issues, SourceFile};
use meridian_shared::regions::{Catalog, RegionId};
use serde::Deserialize;
use toml::Spanned;

use crate::enroll::StateFiles;
use crate::safety::TargetPolicy;
use crate::schedule::Slot;
use crate::spool::{SpoolConfig, valid_cursor_name};
use crate::uplink::Target;

/// The smallest `spool_max_bytes`: room for a few segments holding the largest record.
const MIN_SPOOL_BYTES: u64 = 16 << 20;

/// The validated configuration of one probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// This probe's id, stamped on every result.
    pub probe_id: String,
    /// The region it runs in (checked against the region catalog).
    pub region: RegionId,
    /// Its stagger slot among the probes of the region.
    pub slot: Slot,
    /// Most checks running at once.
    pub concurrency: usize,
    /// Resolver for the host names of HTTP checks.
    pub resolver: ResolverSpec,
    /// Which addresses checks may contact.
    pub policy: TargetPolicy,
    /// Extra trusted CA certificates (PEM), for origins with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Where results are appended as JSON lines; optional for a linked probe.
    pub results: Option<PathBuf>,
    /// The local checks: all of them for a standalone probe; for a linked one, what runs until
    /// the coordinator's first assignment (possibly nothing).
    pub checks: Vec<Check>,
    /// The coordinators and the spool, when `[[coordinator]]` tables are present.
    pub link: Option<LinkConfig>,
    /// Where `/metrics` is served for Prometheus (`metrics_listen`); none by default.
    pub metrics_listen: Option<SocketAddr>,
}

/// How a linked probe reaches its coordinators.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Where `probe enroll` wrote `probe.pem`, `probe.key` and `ca.pem`; the agent also keeps
    /// `assignment.msgpack` here.
    pub state_dir: PathBuf,
    /// The spool's directory (default `<state_dir>/spool`).
    pub spool_dir: PathBuf,
    /// The spool's bounds (`spool_max_bytes`, `spool_max_age`).
    pub spool: SpoolConfig,
    /// The coordinators, each also the name of its spool cursor.
    pub coordinators: Vec<Target>,
}

/// One `[[coordinator]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoordinator {
    name: Spanned<String>,
    address: Spanned<String>,
    #[serde(default)]
    server_name: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    probe_id: Option<Spanned<String>>,
    #[serde(default)]
    region: Option<Spanned<String>>,
    #[serde(default)]
    regions_file: Option<PathBuf>,
    #[serde(default)]
    slot: Option<Spanned<u32>>,
    #[serde(default)]
    slots: Option<Spanned<u32>>,
    #[serde(default)]
    concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    resolver: Option<Spanned<String>>,
    #[serde(default)]
    allow_private: bool,
    #[serde(default)]
    allow_networks: Vec<Spanned<String>>,
    #[serde(default)]
    ca_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    results: Option<PathBuf>,
    #[serde(default)]
    state_dir: Option<Spanned<PathBuf>>,
    #[serde(default)]
    spool_dir: Option<PathBuf>,
    #[serde(default)]
    spool_max_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    spool_max_age: Option<Spanned<String>>,
    #[serde(default)]
    coordinator: Vec<Spanned<RawCoordinator>>,
    #[serde(default)]
    metrics_listen: Option<Spanned<String>>,
    #[serde(default)]
    http: Vec<Spanned<meridian_shared::check::parse::RawHttpCheck>>,
    #[serde(default)]
    dns: Vec<Spanned<meridian_shared::check::parse::RawDnsCheck>>,
}

impl ProbeConfig {
    /// Reads and validates a configuration file. Relative paths inside it are taken relative
    /// to the file's directory.
    pub fn load(path: &Path) -> Result<ProbeConfig, ConfigError> {
        let src = SourceFile::read(path)?;
        ProbeConfig::from_source(&src, path.parent().unwrap_or(Path::new(".")))
    }

    /// Validates configuration text; `base` resolves relative paths. Files the configuration
    /// names (`regions_file`, `ca_file`) are read or checked for existence.
    pub fn from_source(src: &SourceFile, base: &Path) -> Result<ProbeConfig, ConfigError> {
        let raw: Raw = src.parse()?;
        let mut issues = Issues::default();

        let linked = !raw.coordinator.is_empty();
        let link = link_config(&raw, src, base, &mut issues);
        let identity = link.as_ref().and_then(|(_, identity)| identity.clone());

        let probe_id = match &raw.probe_id {
            Some(written) => {
                let probe_id = written.get_ref().clone();
                if !valid_probe_id(&probe_id) {
                    issues.push(src.issue(
                        written.span(),
                        "probe_id",
                        format!(
                            "{probe_id:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'"
                        ),
                    ));
                } else if let Some(id) = identity.as_ref().filter(|id| id.probe_id != probe_id) {
                    issues.push(src.issue(
                        written.span(),
                        "probe_id",
                        format!(
                            "{probe_id:?} does not match this probe's certificate, which says {:?}",
                            id.probe_id
                        ),
                    ));
                }
                probe_id
            }
            None => {
                if !linked {
                    issues.push(src.issue(0..0, "", "missing field `probe_id`"));
                }
                identity
                    .as_ref()
                    .map(|id| id.probe_id.clone())
                    .unwrap_or_default()
            }
        };

        let region = match &raw.region {
            Some(written) => {
                let region =
                    checked_region(written, raw.regions_file.as_deref(), src, base, &mut issues);
                if let (Some(r), Some(id)) = (&region, &identity)
                    && *r != id.region
                {
                    issues.push(src.issue(
                        written.span(),
                        "region",
                        format!(
                            "{:?} does not match this probe's certificate, which says {:?}",
                            r.as_str(),
                            id.region.as_str()
                        ),
                    ));
                }
                region
            }
            None => {
                if !linked {
                    issues.push(src.issue(0..0, "", "missing field `region`"));
                }
                identity.as_ref().map(|id| id.region.clone())
            }
        };

        let count = raw.slots.as_ref().map_or(1, |s| *s.get_ref());
        let index = raw.slot.as_ref().map_or(0, |s| *s.get_ref());
        if count == 0 {
            let span = raw.slots.as_ref().map_or(0..0, |s| s.span());
            issues.push(src.issue(span, "slots", "slots must be at least 1"));
        } else if index >= count {
            let span = raw.slot.as_ref().map_or(0..0, |s| s.span());
            issues.push(src.issue(
                span,
                "slot",
                format!(
                    "slot {index} is out of range for {count} slots (0 to {})",
                    count - 1
                ),
            ));
        }

        let concurrency = raw.concurrency.as_ref().map_or(64, |c| *c.get_ref());
        if concurrency == 0 {
            let span = raw.concurrency.as_ref().map_or(0..0, |c| c.span());
            issues.push(src.issue(span, "concurrency", "concurrency must be at least 1"));
        }

        let resolver = match &raw.resolver {
            None => ResolverSpec::System,
            Some(r) => r.get_ref().parse().unwrap_or_else(|e: String| {
                issues.push(src.issue(r.span(), "resolver", e));
                ResolverSpec::System
            }),
        };

        let mut nets: Vec<IpNet> = Vec::new();
        for (i, n) in raw.allow_networks.iter().enumerate() {
            match n.get_ref().parse::<IpNet>() {
                Ok(net) => nets.push(net),
                Err(_) => issues.push(src.issue(
                    n.span(),
                    format!("allow_networks[{i}]"),
                    format!(
                        "{:?} is not a network in CIDR notation (such as 10.0.0.0/8)",
                        n.get_ref()
                    ),
                )),
            }
        }
        let policy = if raw.allow_private {
            TargetPolicy::allow_all()
        } else {
            TargetPolicy::with_allowed(nets)
        };

        let ca_file = raw.ca_file.map(|p| {
            let path = base.join(p.get_ref());
            if !path.is_file() {
                issues.push(src.issue(
                    p.span(),
                    "ca_file",
                    format!("{} does not exist", path.display()),
                ));
            }
            path
        });

        let metrics_listen = raw.metrics_listen.as_ref().and_then(|m| {
            m.get_ref()
                .parse::<SocketAddr>()
                .map_err(|_| {
                    issues.push(src.issue(
                        m.span(),
                        "metrics_listen",
                        format!(
                            "{:?} is not IP:PORT such as \"127.0.0.1:9465\" (where Prometheus scrapes /metrics)",
                            m.get_ref()
                        ),
                    ))
                })
                .ok()
        });

        let declared = !raw.http.is_empty() || !raw.dns.is_empty();
        let checks = RawChecks {
            http: raw.http,
            dns: raw.dns,
        }
        .validate(src, &mut issues);
        if raw.results.is_none() && !linked {
            issues.push(src.issue(0..0, "", "missing field `results`"));
        }
        if !declared && !linked {
            issues.push(src.issue(
                0..0,
                "",
                "no checks: add at least one [[http]] or [[dns]] table",
            ));
        }

        issues.finish(ProbeConfig {
            probe_id,
            region: region.unwrap_or_else(|| {
                RegionId::parse("unknown").expect("\"unknown\" is a valid region id")
            }),
            slot: Slot {
                index,
                count: count.max(1),
            },
            concurrency: concurrency.max(1),
            resolver,
            policy,
            ca_file,
            results: raw.results.map(|r| base.join(r)),
            checks,
            link: link.map(|(link, _)| link),
            metrics_listen,
        })
    }
}

impl ProbeConfig {
    /// The settings in which `self` (a file just read) differs from `running` (the
    /// configuration in force) that a running probe cannot take on: `state_dir` and
    /// `spool_dir` (the identity, the assignments and the spool live there, open and locked),
    /// `[[coordinator]]` tables appearing or disappearing (a standalone probe has no spool
    /// or uplink to reconfigure, a linked one no way to drop them without losing results), and
    /// `metrics_listen` (bound once at start). Empty when a reload can apply `self`.
    pub fn restart_only_changes(&self, running: &ProbeConfig) -> Vec<&'static str> {
        let mut changed = self.link_restart_changes(running);
        if self.metrics_listen != running.metrics_listen {
            changed.push("metrics_listen");
        }
        changed
    }

    /// [`ProbeConfig::restart_only_changes`] of the link settings.
    fn link_restart_changes(&self, running: &ProbeConfig) -> Vec<&'static str> {
        match (&self.link, &running.link) {
            (None, None) => Vec::new(),
            (Some(_), None) => vec!["[[coordinator]] (a standalone probe becoming linked)"],
            (None, Some(_)) => vec!["[[coordinator]] (a linked probe becoming standalone)"],
            (Some(new), Some(old)) => {
                let mut changed = Vec::new();
                if new.state_dir != old.state_dir {
                    changed.push("state_dir");
                }
                if new.spool_dir != old.spool_dir {
                    changed.push("spool_dir");
                }
                changed
            }
        }
    }
}

/// A probe id: what the coordinator's certificates and the spool accept.
fn valid_probe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The region as written, checked against the catalog (`None` after an issue).
fn checked_region(
    written: &Spanned<String>,
    regions_file: Option<&Path>,
    src: &SourceFile,
    base: &Path,
    issues: &mut Issues,
) -> Option<RegionId> {
    let catalog = match regions_file {
        Some(p) => Catalog::load(&base.join(p)),
        None => Ok(Catalog::builtin()),
    };
    match (catalog, RegionId::parse(written.get_ref())) {
        (Err(e), _) => {
            issues.push(src.issue(
                written.span(),
                "regions_file",
                format!("cannot use the region catalog: {e}"),
            ));
            None
        }
        (Ok(_), Err(e)) => {
            issues.push(src.issue(written.span(), "region", e.to_string()));
            None
        }
        (Ok(catalog), Ok(id)) => {
            if catalog.get(&id).is_none() {
                issues.push(src.issue(
                    written.span(),
                    "region",
                    format!(
                        "unknown region {:?}: it is not in the region catalog",
                        id.as_str()
                    ),
                ));
                None
            } else {
                Some(id)
            }
        }
    }
}

/// The `[[coordinator]]` tables, `state_dir` and the spool settings, with the identity read
/// from `state_dir/probe.pem` (`None` when it could not be read: an issue says why). `None`
/// for a standalone probe.
fn link_config(
    raw: &Raw,
    src: &SourceFile,
    base: &Path,
    issues: &mut Issues,
) -> Option<(LinkConfig, Option<crate::identity::ProbeIdentity>)> {
    let first = raw.coordinator.first()?;
    let mut coordinators: Vec<Target> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in raw.coordinator.iter().enumerate() {
        let c = c.get_ref();
        let name = c.name.get_ref();
        if !valid_cursor_name(name) {
            issues.push(src.issue(
                c.name.span(),
                format!("coordinator[{i}].name"),
                format!("{name:?} must be 1 to 64 characters of letters, digits, '-' or '_'"),
            ));
        } else if names.contains(&name.as_str()) {
            issues.push(src.issue(
                c.name.span(),
                format!("coordinator[{i}].name"),
                format!("{name:?} is already the name of another coordinator"),
            ));
        }
        names.push(name);
        let Ok(addr) = c.address.get_ref().parse::<SocketAddr>() else {
            issues.push(src.issue(
                c.address.span(),
                format!("coordinator[{i}].address"),
                format!(
                    "{:?} is not IP:PORT (names are not resolved: give the address, and the name its certificate carries as server_name)",
                    c.address.get_ref()
                ),
            ));
            continue;
        };
        let server_name = match &c.server_name {
            Some(s) if s.get_ref().trim().is_empty() => {
                issues.push(src.issue(
                    s.span(),
                    format!("coordinator[{i}].server_name"),
                    "must not be empty",
                ));
                String::new()
            }
            Some(s) => s.get_ref().clone(),
            None => addr.ip().to_string(),
        };
        coordinators.push(Target {
            name: name.clone(),
            addr,
            server_name,
        });
    }

    let mut spool = SpoolConfig::default();
    if let Some(max) = &raw.spool_max_bytes {
        if *max.get_ref() < MIN_SPOOL_BYTES {
            issues.push(src.issue(
                max.span(),
                "spool_max_bytes",
                format!("must be at least {MIN_SPOOL_BYTES} (16 MiB)"),
            ));
        } else {
            spool.max_bytes = *max.get_ref();
            spool.segment_bytes = spool.segment_bytes.min(spool.max_bytes / 8);
        }
    }
    if let Some(age) = &raw.spool_max_age {
        match humantime::parse_duration(age.get_ref()) {
            Ok(d) if d >= Duration::from_secs(60) => spool.max_age = d,
            Ok(_) => {
                issues.push(src.issue(age.span(), "spool_max_age", "must be at least 1 minute"))
            }
            Err(e) => issues.push(src.issue(
                age.span(),
                "spool_max_age",
                format!(
                    "{:?} is not a duration (such as \"3d\" or \"12h\"): {e}",
                    age.get_ref()
                ),
            )),
        }
    }

    let Some(state) = &raw.state_dir else {
        issues.push(src.issue(
            first.span(),
            "state_dir",
            "required with [[coordinator]]: the directory `probe enroll --state-dir` wrote",
        ));
        return None;
    };
    let state_dir = base.join(state.get_ref());
    let identity = match crate::identity::from_pem_file(&StateFiles::in_dir(&state_dir).cert) {
        Ok(id) => Some(id),
        Err(e) => {
            issues.push(src.issue(
                state.span(),
                "state_dir",
                format!(
                    "cannot read this probe's identity from probe.pem in {:?} (run `probe enroll` first): {e}",
                    state.get_ref().display().to_string()
                ),
            ));
            None
        }
    };
    let spool_dir = raw
        .spool_dir
        .as_ref()
        .map_or_else(|| state_dir.join("spool"), |d| base.join(d));
    Some((
        LinkConfig {
            state_dir,
            spool_dir,
            spool,
            coordinators,
        },
        identity,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_shared::check::CheckSpec;

    fn manifest_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_invalid_file_produces_exactly_its_expected_message() {
        let dir = manifest_dir().join("testdata");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.starts_with("invalid-") && name.ends_with(".toml")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let src = SourceFile::new(format!("testdata/{name}"), text);
            let err =
                ProbeConfig::from_source(&src, &manifest_dir().join("testdata")).expect_err(&name);
            if std::env::var_os("MERIDIAN_WRITE_FIXTURES").is_some() {
                // Regenerate: MERIDIAN_WRITE_FIXTURES=1 cargo test -p meridian-probe config::
                // (and read the diff before keeping it).
                std::fs::write(path.with_extension("expected"), format!("{err}\n")).unwrap();
            }
            let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
            assert_eq!(err.to_string(), expected.trim_end(), "{name}");
            seen += 1;
        }
        assert!(seen >= 17, "only {seen} invalid fixtures found");
    }

    #[test]
    fn the_example_configuration_is_valid_and_means_what_it_says() {
        let c = ProbeConfig::load(&manifest_dir().join("probe.example.toml")).unwrap();
        assert_eq!(c.probe_id, "me-south-1a");
        assert_eq!(c.region.as_str(), "me-south");
        assert_eq!(c.slot, Slot { index: 0, count: 3 });
        assert_eq!(c.checks.len(), 3);
        let CheckSpec::Http(api) = &c.checks[1].spec else {
            panic!("second check is HTTP")
        };
        assert_eq!(api.redirects, meridian_shared::check::RedirectPolicy::None);
        assert_eq!(api.resolve[0].addr.to_string(), "192.0.2.10");
        assert!(c.results.unwrap().ends_with("results.jsonl"));
        assert!(c.link.is_none(), "the example is a standalone probe");
        // The default policy stays strict: the example lists no allowed networks.
        assert!(c.policy.check("10.1.1.1".parse().unwrap()).is_err());
    }

    #[test]
    fn defaults_apply_when_fields_are_omitted() {
        let src = SourceFile::new(
            "p.toml",
            "probe_id = \"p\"\nregion = \"eu-central\"\nresults = \"r\"\n[[dns]]\nid = \"d\"\nname = \"example.test\"\n",
        );
        let c = ProbeConfig::from_source(&src, Path::new("/base")).unwrap();
        assert_eq!(c.slot, Slot::ALONE);
        assert_eq!(c.concurrency, 64);
        assert_eq!(c.checks[0].interval, std::time::Duration::from_secs(60));
        assert_eq!(c.results.as_deref(), Some(Path::new("/base/r")));
    }

    #[test]
    fn a_linked_probe_takes_its_identity_from_the_certificate() {
        let src = SourceFile::new(
            "p.toml",
            "state_dir = \"state\"\nspool_max_bytes = 33554432\nspool_max_age = \"2d\"\n\
             [[coordinator]]\nname = \"eu-1\"\naddress = \"127.0.0.1:7443\"\n\
             [[coordinator]]\nname = \"us-1\"\naddress = \"127.0.0.1:7444\"\nserver_name = \"c.example.test\"\n",
        );
        let base = manifest_dir().join("testdata");
        let c = ProbeConfig::from_source(&src, &base).unwrap();
        assert_eq!(c.probe_id, "me-south-1a");
        assert_eq!(c.region.as_str(), "me-south");
        assert!(c.checks.is_empty() && c.results.is_none());
        let link = c.link.unwrap();
        assert_eq!(link.state_dir, base.join("state"));
        assert_eq!(link.spool_dir, base.join("state/spool"));
        assert_eq!(link.spool.max_bytes, 32 << 20);
        assert_eq!(
            link.spool.segment_bytes,
            4 << 20,
            "an eighth of a small bound"
        );
        assert_eq!(
            link.spool.max_age,
            std::time::Duration::from_secs(2 * 86_400)
        );
        let names: Vec<&str> = link.coordinators.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["eu-1", "us-1"]);
        assert_eq!(
            link.coordinators[0].server_name, "127.0.0.1",
            "defaults to the IP"
        );
        assert_eq!(link.coordinators[1].server_name, "c.example.test");

        // Repeating the certificate's identity is allowed; local checks still parse.
        let src = SourceFile::new(
            "p.toml",
            "probe_id = \"me-south-1a\"\nregion = \"me-south\"\nstate_dir = \"state\"\nspool_dir = \"/var/spool/m\"\n\
             [[coordinator]]\nname = \"eu-1\"\naddress = \"[::1]:7443\"\n\
             [[dns]]\nid = \"d\"\nname = \"example.test\"\n",
        );
        let c = ProbeConfig::from_source(&src, &base).unwrap();
        assert_eq!(c.checks.len(), 1);
        assert_eq!(c.link.unwrap().spool_dir, Path::new("/var/spool/m"));
    }

    #[test]
    fn a_reload_may_change_anything_but_where_state_lives_and_whether_the_probe_is_linked() {
        let base = manifest_dir().join("testdata");
        let linked = |extra: &str| {
            let text = format!(
                "state_dir = \"state\"\n{extra}\n[[coordinator]]\nname = \"eu-1\"\naddress = \"127.0.0.1:7443\"\n"
            );
            ProbeConfig::from_source(&SourceFile::new("p.toml", text), &base).unwrap()
        };
        let standalone = |checks: &str| {
            let text = format!(
                "probe_id = \"p\"\nregion = \"eu-central\"\nresults = \"r\"\n[[dns]]\nid = \"{checks}\"\nname = \"example.test\"\n"
            );
            ProbeConfig::from_source(&SourceFile::new("p.toml", text), &base).unwrap()
        };
        let running = linked("");
        // Coordinators, bounds, checks, concurrency: all live.
        let mut more = linked("concurrency = 3\nspool_max_age = \"1d\"");
        if let Some(link) = &mut more.link {
            link.coordinators.clear();
        }
        assert!(more.restart_only_changes(&running).is_empty());
        assert_eq!(
            linked("spool_dir = \"elsewhere\"").restart_only_changes(&running),
            ["spool_dir"]
        );
        assert!(
            standalone("a")
                .restart_only_changes(&standalone("b"))
                .is_empty(),
            "a standalone probe's checks change live"
        );
        assert_eq!(standalone("a").restart_only_changes(&running).len(), 1);
        assert_eq!(running.restart_only_changes(&standalone("a")).len(), 1);
        let metrics = linked("metrics_listen = \"127.0.0.1:9465\"");
        assert_eq!(
            metrics.metrics_listen,
            Some("127.0.0.1:9465".parse().unwrap())
        );
        assert_eq!(running.metrics_listen, None, "off by default");
        assert_eq!(
            metrics.restart_only_changes(&running),
            ["metrics_listen"],
            "the listener is bound once, at start"
        );
    }
}
