//! `probe.toml`: the long-running agent's configuration, strictly parsed and validated with
//! every problem reported at once as `file:line:column: field: message`.
//!
//! Until the coordinator pushes assignments (a later issue), the slot, interval and checks
//! come from this file. Reading the file is split from the pure [`ProbeConfig::from_source`].

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use meridian_shared::check::parse::RawChecks;
use meridian_shared::check::{Check, ResolverSpec};
use meridian_shared::config::{ConfigError, Issues, SourceFile};
use meridian_shared::regions::{Catalog, RegionId};
use serde::Deserialize;
use toml::Spanned;

use crate::safety::TargetPolicy;
use crate::schedule::Slot;

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
    /// Where results are appended as JSON lines.
    pub results: PathBuf,
    /// The checks to run.
    pub checks: Vec<Check>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    probe_id: Spanned<String>,
    region: Spanned<String>,
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
    results: PathBuf,
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

        let probe_id = raw.probe_id.get_ref().clone();
        let id_ok = !probe_id.is_empty()
            && probe_id.len() <= 64
            && probe_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !id_ok {
            issues.push(src.issue(
                raw.probe_id.span(),
                "probe_id",
                format!(
                    "{probe_id:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'"
                ),
            ));
        }

        let catalog = match &raw.regions_file {
            Some(p) => Catalog::load(&base.join(p)),
            None => Ok(Catalog::builtin()),
        };
        let region = match (catalog, RegionId::parse(raw.region.get_ref())) {
            (Err(e), _) => {
                issues.push(src.issue(
                    raw.region.span(),
                    "regions_file",
                    format!("cannot use the region catalog: {e}"),
                ));
                None
            }
            (Ok(_), Err(e)) => {
                issues.push(src.issue(raw.region.span(), "region", e.to_string()));
                None
            }
            (Ok(catalog), Ok(id)) => {
                if catalog.get(&id).is_none() {
                    issues.push(src.issue(
                        raw.region.span(),
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

        let declared = !raw.http.is_empty() || !raw.dns.is_empty();
        let checks = RawChecks {
            http: raw.http,
            dns: raw.dns,
        }
        .validate(src, &mut issues);
        if !declared {
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
            results: base.join(raw.results),
            checks,
        })
    }
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
            let err = ProbeConfig::from_source(&src, manifest_dir()).expect_err(&name);
            let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
            assert_eq!(err.to_string(), expected.trim_end(), "{name}");
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} invalid fixtures found");
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
        assert!(c.results.ends_with("results.jsonl"));
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
        assert_eq!(c.results, Path::new("/base/r"));
    }
}
