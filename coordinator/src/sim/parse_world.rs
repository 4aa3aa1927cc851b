//! `[world]`, `[noise]` and `[[target]]`: regions from the catalog, probe counts (one for
//! all, or a table with a `default`), ASNs, noise bounds, target kinds, TLS versions and CDN
//! edges (each region served by at most one edge of a target).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use meridian_shared::check::CheckId;
use meridian_shared::regions::RegionId;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::parse::Cx;
use super::scenario::{Noise, TargetKind, TargetSpec, Tls, WorldSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorld {
    regions: Vec<Spanned<String>>,
    #[serde(default)]
    probes_per_region: Option<Spanned<RawCount>>,
    #[serde(default)]
    asns: Option<Spanned<Vec<Spanned<i64>>>>,
}

/// `probes_per_region`: one count for every region, or a table of region → count with an
/// optional `default`.
#[derive(Debug)]
enum RawCount {
    All(i64),
    Table(Vec<(Spanned<String>, Spanned<i64>)>),
}

impl<'de> Deserialize<'de> for RawCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = RawCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a table such as { me-south = 3, default = 5 }")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawCount, E> {
                Ok(RawCount::All(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawCount, E> {
                Ok(RawCount::All(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCount, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value::<Spanned<i64>>()?));
                }
                Ok(RawCount::Table(entries))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNoise {
    #[serde(default)]
    jitter: Option<Spanned<f64>>,
    #[serde(default)]
    spike_rate: Option<Spanned<f64>>,
    #[serde(default)]
    loss: Option<Spanned<f64>>,
    #[serde(default)]
    diurnal: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    id: Spanned<String>,
    #[serde(default)]
    kind: Option<Spanned<String>>,
    origin: Spanned<String>,
    #[serde(default)]
    server_ms: Option<Spanned<f64>>,
    #[serde(default)]
    tls: Option<Spanned<String>>,
    #[serde(default)]
    edges: Option<BTreeMap<Spanned<String>, Vec<Spanned<String>>>>,
}

pub(super) fn world(cx: &mut Cx<'_>, raw: &Spanned<RawWorld>) -> WorldSpec {
    let w = raw.get_ref();
    let mut regions: Vec<RegionId> = Vec::new();
    if w.regions.is_empty() {
        cx.push(raw.span(), "world.regions", "list at least one region");
    }
    for (i, r) in w.regions.iter().enumerate() {
        let field = format!("world.regions[{i}]");
        if let Some(id) = cx.catalog_region(r, &field) {
            if regions.contains(&id) {
                cx.push(
                    r.span(),
                    &field,
                    format!("region {:?} is listed twice", id.as_str()),
                );
            } else {
                regions.push(id);
            }
        }
    }
    let mut probes = BTreeMap::new();
    let count = |cx: &mut Cx<'_>, v: i64, span, field: &str| match u32::try_from(v) {
        Ok(n) if (1..=100).contains(&n) => Some(n),
        _ => {
            cx.push(span, field, format!("must be between 1 and 100, not {v}"));
            None
        }
    };
    match &w.probes_per_region {
        None => regions.iter().for_each(|r| {
            probes.insert(r.clone(), 5);
        }),
        Some(spanned) => match spanned.get_ref() {
            RawCount::All(v) => {
                let n = count(cx, *v, spanned.span(), "world.probes_per_region").unwrap_or(1);
                regions.iter().for_each(|r| {
                    probes.insert(r.clone(), n);
                });
            }
            RawCount::Table(entries) => {
                let mut default = None;
                for (key, value) in entries {
                    let field = format!("world.probes_per_region.{}", key.get_ref());
                    let n = count(cx, *value.get_ref(), value.span(), &field).unwrap_or(1);
                    if key.get_ref() == "default" {
                        default = Some(n);
                    } else if let Some(id) = cx.world_region(&WorldSpec::of(&regions), key, &field)
                    {
                        probes.insert(id, n);
                    }
                }
                for r in &regions {
                    if !probes.contains_key(r) {
                        match default {
                            Some(n) => {
                                probes.insert(r.clone(), n);
                            }
                            None => {
                                let message = format!(
                                    "no count for region {:?}; give it one or add `default = N`",
                                    r.as_str()
                                );
                                cx.push(spanned.span(), "world.probes_per_region", message);
                                probes.insert(r.clone(), 1);
                            }
                        }
                    }
                }
            }
        },
    }
    let mut asns = Vec::new();
    if let Some(list) = &w.asns {
        if list.get_ref().is_empty() {
            cx.push(
                list.span(),
                "world.asns",
                "list at least one ASN, or leave `asns` out",
            );
        }
        for (i, a) in list.get_ref().iter().enumerate() {
            match u32::try_from(*a.get_ref()) {
                Ok(asn) if asn > 0 && !asns.contains(&asn) => asns.push(asn),
                Ok(asn) if asn > 0 => {
                    cx.push(
                        a.span(),
                        &format!("world.asns[{i}]"),
                        format!("AS{asn} is listed twice"),
                    );
                }
                _ => {
                    let message = format!("{} is not an ASN (1 to 4294967295)", a.get_ref());
                    cx.push(a.span(), &format!("world.asns[{i}]"), message);
                }
            }
        }
    }
    WorldSpec {
        regions,
        probes,
        asns,
    }
}

impl WorldSpec {
    /// A world of these regions only, for checking region references before probes are known.
    fn of(regions: &[RegionId]) -> WorldSpec {
        WorldSpec {
            regions: regions.to_vec(),
            probes: BTreeMap::new(),
            asns: Vec::new(),
        }
    }
}

pub(super) fn noise(cx: &mut Cx<'_>, raw: &RawNoise) -> Noise {
    let d = Noise::default();
    let mut get = |v: &Option<Spanned<f64>>, field: &str, default: f64, max: f64| match v {
        None => default,
        Some(s) if (0.0..=max).contains(s.get_ref()) => *s.get_ref(),
        Some(s) => {
            let message = format!("must be between 0 and {max}, not {}", s.get_ref());
            cx.push(s.span(), field, message);
            default
        }
    };
    Noise {
        jitter: get(&raw.jitter, "noise.jitter", d.jitter, 2.0),
        spike_rate: get(&raw.spike_rate, "noise.spike_rate", d.spike_rate, 1.0),
        loss: get(&raw.loss, "noise.loss", d.loss, 1.0),
        diurnal: get(&raw.diurnal, "noise.diurnal", d.diurnal, 0.9),
    }
}

pub(super) fn targets(
    cx: &mut Cx<'_>,
    world: &WorldSpec,
    raw: &[Spanned<RawTarget>],
) -> Vec<TargetSpec> {
    if raw.is_empty() {
        cx.push(0..0, "target", "a scenario needs at least one [[target]]");
    }
    let mut out: Vec<TargetSpec> = Vec::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (i, t) in raw.iter().enumerate() {
        let at = |f: &str| format!("target[{i}].{f}");
        let t = t.get_ref();
        let id = t.id.get_ref().clone();
        if let Err(e) = CheckId::parse(&id) {
            cx.push(t.id.span(), &at("id"), e);
        }
        let line = cx.src.line_col(t.id.span().start).0;
        if let Some(first) = first_line.insert(id.clone(), line) {
            first_line.insert(id.clone(), first);
            let message = format!("duplicate target id {id:?} (first used on line {first})");
            cx.push(t.id.span(), &at("id"), message);
        }
        let kind = match t.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
            None | Some(("http", _)) => TargetKind::Http,
            Some(("dns", _)) => TargetKind::Dns,
            Some((other, span)) => {
                cx.push(
                    span,
                    &at("kind"),
                    format!("{other:?} is not a target kind: use \"http\" or \"dns\""),
                );
                TargetKind::Http
            }
        };
        let origin = cx.catalog_region(&t.origin, &at("origin"));
        let server_ms = t
            .server_ms
            .as_ref()
            .map_or(Some(50.0), |s| cx.millis(s, &at("server_ms")))
            .unwrap_or(50.0);
        let tls = match t.tls.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
            None | Some(("1.3", _)) => Tls::V13,
            Some(("1.2", _)) => Tls::V12,
            Some(("none", _)) => Tls::None,
            Some((other, span)) => {
                let message =
                    format!("{other:?} is not a TLS version: use \"1.2\", \"1.3\" or \"none\"");
                cx.push(span, &at("tls"), message);
                Tls::V13
            }
        };
        if kind == TargetKind::Dns {
            for (key, span) in [
                ("server_ms", t.server_ms.as_ref().map(Spanned::span)),
                ("tls", t.tls.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    cx.push(span, &at(key), "does not apply to a dns target");
                }
            }
        }
        let mut edges = BTreeMap::new();
        let mut served: BTreeMap<RegionId, String> = BTreeMap::new();
        for (name, regions) in t.edges.iter().flatten() {
            let field = at(&format!("edges.{}", name.get_ref()));
            if kind == TargetKind::Dns {
                cx.push(name.span(), &field, "a dns target has no CDN edges");
                continue;
            }
            if regions.is_empty() {
                cx.push(
                    name.span(),
                    &field,
                    "an edge must serve at least one region",
                );
            }
            let mut list = Vec::new();
            for (j, r) in regions.iter().enumerate() {
                let field = format!("{field}[{j}]");
                let Some(id) = cx.world_region(world, r, &field) else {
                    continue;
                };
                if let Some(other) = served.insert(id.clone(), name.get_ref().clone()) {
                    let message = format!(
                        "region {:?} is already served by edge {other:?}",
                        id.as_str()
                    );
                    cx.push(r.span(), &field, message);
                } else {
                    list.push(id);
                }
            }
            edges.insert(name.get_ref().clone(), list);
        }
        out.push(TargetSpec {
            id,
            kind,
            origin: origin.unwrap_or_else(|| RegionId::parse("xx").expect("\"xx\" is a valid id")),
            server_ms,
            tls,
            edges,
        });
    }
    out
}

/// Every edge name of every target, for `fault.edge` references.
pub(super) fn edge_names(targets: &[TargetSpec]) -> BTreeSet<&str> {
    targets
        .iter()
        .flat_map(|t| t.edges.keys().map(String::as_str))
        .collect()
}
