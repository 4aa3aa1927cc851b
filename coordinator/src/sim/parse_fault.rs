//! `[[fault]]` tables, read strictly.
//!
//! A fault table accepts the union of every kind's keys (so serde can reject typos as unknown
//! fields), then each kind checks that only its own keys were given: `loss` on a `dns` fault is
//! an error, not silently ignored. References are checked against the world: regions within
//! `world.regions`, probes `region/N` within that region's count, edges within
//! `target.edges`.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::duration::{self, RawDuration};
use super::parse::Cx;
use super::parse_expect::probe_ref;
use super::parse_world::edge_names;
use super::scenario::{DnsFailure, DnsScope, Fault, FaultKind, PathScope, TargetSpec, WorldSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    kind: Spanned<String>,
    #[serde(default)]
    at: Option<RawDuration>,
    #[serde(default, rename = "for")]
    for_: Option<RawDuration>,
    #[serde(default)]
    regions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    probes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    rtt_ms: Option<Spanned<f64>>,
    #[serde(default)]
    loss: Option<Spanned<f64>>,
    #[serde(default)]
    asn: Option<Spanned<i64>>,
    #[serde(default)]
    ramp_ms_per_min: Option<Spanned<f64>>,
    #[serde(default)]
    error_rate: Option<Spanned<f64>>,
    #[serde(default)]
    status: Option<Spanned<i64>>,
    #[serde(default)]
    server_ms: Option<Spanned<f64>>,
    #[serde(default)]
    tls_ms: Option<Spanned<f64>>,
    #[serde(default)]
    edge: Option<Spanned<String>>,
    #[serde(default)]
    rcode: Option<Spanned<String>>,
    #[serde(default)]
    scope: Option<Spanned<String>>,
    #[serde(default)]
    probe: Option<Spanned<String>>,
    #[serde(default)]
    down: Option<Spanned<bool>>,
    #[serde(default)]
    offset: Option<RawDuration>,
    #[serde(default)]
    path: Option<Spanned<bool>>,
}

impl RawFault {
    /// The kind-specific keys present, with the span of their values.
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        fn s<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
            v.as_ref().map(Spanned::span)
        }
        [
            ("regions", s(&self.regions)),
            ("probes", s(&self.probes)),
            ("rtt_ms", s(&self.rtt_ms)),
            ("loss", s(&self.loss)),
            ("asn", s(&self.asn)),
            ("ramp_ms_per_min", s(&self.ramp_ms_per_min)),
            ("error_rate", s(&self.error_rate)),
            ("status", s(&self.status)),
            ("server_ms", s(&self.server_ms)),
            ("tls_ms", s(&self.tls_ms)),
            ("edge", s(&self.edge)),
            ("rcode", s(&self.rcode)),
            ("scope", s(&self.scope)),
            ("probe", s(&self.probe)),
            ("down", s(&self.down)),
            ("offset", s(&self.offset)),
            ("path", s(&self.path)),
        ]
        .into_iter()
        .filter_map(|(k, span)| Some((k, span?)))
        .collect()
    }
}

/// The keys each fault kind takes besides `at` and `for`.
const KINDS: [(&str, &[&str]); 7] = [
    (
        "path",
        &[
            "regions",
            "probes",
            "rtt_ms",
            "loss",
            "asn",
            "ramp_ms_per_min",
        ],
    ),
    (
        "origin",
        &["error_rate", "status", "server_ms", "tls_ms", "regions"],
    ),
    ("edge", &["edge", "error_rate", "server_ms"]),
    ("dns", &["rcode", "scope", "regions"]),
    ("probe", &["probe", "rtt_ms", "loss", "down"]),
    ("clock", &["probe", "offset"]),
    ("silence", &["regions", "path"]),
];

/// Validates one `[[fault]]`; `None` (with issues recorded) when it is unusable.
pub(super) fn fault(
    cx: &mut Cx<'_>,
    world: &WorldSpec,
    targets: &[TargetSpec],
    duration_ms: i64,
    i: usize,
    raw: &Spanned<RawFault>,
) -> Option<Fault> {
    let at = |f: &str| format!("fault[{i}].{f}");
    let whole = format!("fault[{i}]");
    let table_span = raw.span();
    // Whether a key was given a non-zero value (valid or not: an invalid one has its own issue).
    let given = |v: &Option<Spanned<f64>>| v.as_ref().is_some_and(|v| *v.get_ref() != 0.0);
    let f = raw.get_ref();
    let kind = f.kind.get_ref().as_str();
    let Some((_, keys)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        let names: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        let message = format!(
            "unknown fault kind {kind:?}; use one of {}",
            names.join(", ")
        );
        cx.push(f.kind.span(), &at("kind"), message);
        return None;
    };
    let mut ok = true;
    for (key, span) in f.present() {
        if !keys.contains(&key) {
            let message = format!(
                "does not apply to a {kind:?} fault (its keys: {})",
                keys.join(", ")
            );
            cx.push(span, &at(key), message);
            ok = false;
        }
    }

    let start = match &f.at {
        Some(v) => duration::read(cx.src, cx.issues, v, &at("at"), false),
        None => Some(0),
    };
    if let (Some(s), Some(v)) = (start, &f.at)
        && s >= duration_ms
    {
        let message = format!(
            "starts at or after the end of the run ({}): it would never happen",
            duration::format(duration_ms)
        );
        cx.push(v.span(), &at("at"), message);
    }
    let length = match &f.for_ {
        Some(v) => duration::read_positive(cx.src, cx.issues, v, &at("for")),
        None => Some(duration_ms),
    };

    let regions = |cx: &mut Cx<'_>, list: &Option<Spanned<Vec<Spanned<String>>>>| {
        let list = list.as_ref()?;
        if list.get_ref().is_empty() {
            cx.push(
                list.span(),
                &at("regions"),
                "list at least one region, or leave the key out",
            );
        }
        let found: Vec<_> = (list.get_ref().iter().enumerate())
            .filter_map(|(j, r)| cx.world_region(world, r, &at(&format!("regions[{j}]"))))
            .collect();
        Some(found)
    };
    let fraction = |cx: &mut Cx<'_>, v: &Option<Spanned<f64>>, key: &str| {
        v.as_ref()
            .and_then(|v| cx.fraction(v, &at(key)))
            .unwrap_or(0.0)
    };
    let millis = |cx: &mut Cx<'_>, v: &Option<Spanned<f64>>, key: &str| {
        v.as_ref()
            .and_then(|v| cx.millis(v, &at(key)))
            .unwrap_or(0.0)
    };
    let probe = |cx: &mut Cx<'_>| match &f.probe {
        Some(p) => probe_ref(cx, world, p, &at("probe")),
        None => {
            cx.push(
                table_span.clone(),
                &at("probe"),
                format!("a {kind:?} fault needs `probe = \"region/N\"`"),
            );
            None
        }
    };

    let fault_kind = match kind {
        "path" => {
            let scope = match (&f.regions, &f.probes) {
                (Some(_), None) => regions(cx, &f.regions).map(PathScope::Regions),
                (None, Some(list)) => {
                    let probes = (list.get_ref().iter().enumerate())
                        .filter_map(|(j, p)| probe_ref(cx, world, p, &at(&format!("probes[{j}]"))))
                        .collect();
                    Some(PathScope::Probes(probes))
                }
                _ => {
                    let message = "a \"path\" fault needs either `regions` or `probes` (not both)";
                    cx.push(table_span.clone(), &at("regions"), message);
                    None
                }
            };
            let asn = f.asn.as_ref().and_then(|a| {
                let found = u32::try_from(*a.get_ref())
                    .ok()
                    .filter(|n| world.asns.contains(n));
                if found.is_none() {
                    let message = format!("AS{} is not in world.asns", a.get_ref());
                    cx.push(a.span(), &at("asn"), message);
                }
                found
            });
            let (rtt_ms, loss) = (
                millis(cx, &f.rtt_ms, "rtt_ms"),
                fraction(cx, &f.loss, "loss"),
            );
            let ramp = f
                .ramp_ms_per_min
                .as_ref()
                .and_then(|r| cx.millis(r, &at("ramp_ms_per_min")));
            if !(given(&f.rtt_ms) || given(&f.loss) || given(&f.ramp_ms_per_min)) {
                let message = "does nothing: give `rtt_ms`, `loss` or `ramp_ms_per_min`";
                cx.push(table_span.clone(), &whole, message);
            }
            FaultKind::Path {
                scope: scope?,
                rtt_ms,
                loss,
                asn,
                ramp_ms_per_min: ramp,
            }
        }
        "origin" => {
            let status = match &f.status {
                None => 503,
                Some(s) => match u16::try_from(*s.get_ref()) {
                    Ok(code) if (100..=599).contains(&code) => code,
                    _ => {
                        cx.push(
                            s.span(),
                            &at("status"),
                            format!("{} is not an HTTP status", s.get_ref()),
                        );
                        503
                    }
                },
            };
            let error_rate = fraction(cx, &f.error_rate, "error_rate");
            let server_ms = millis(cx, &f.server_ms, "server_ms");
            let tls_ms = millis(cx, &f.tls_ms, "tls_ms");
            if !(given(&f.error_rate) || given(&f.server_ms) || given(&f.tls_ms)) {
                let message = "does nothing: give `error_rate`, `server_ms` or `tls_ms`";
                cx.push(table_span.clone(), &whole, message);
            }
            FaultKind::Origin {
                error_rate,
                status,
                server_ms,
                tls_ms,
                regions: regions(cx, &f.regions),
            }
        }
        "edge" => {
            let edge = match &f.edge {
                Some(e) if edge_names(targets).contains(e.get_ref().as_str()) => {
                    e.get_ref().clone()
                }
                Some(e) => {
                    let message = format!("edge {:?} is not in any target's `edges`", e.get_ref());
                    cx.push(e.span(), &at("edge"), message);
                    return None;
                }
                None => {
                    cx.push(
                        table_span.clone(),
                        &at("edge"),
                        "an \"edge\" fault needs `edge`",
                    );
                    return None;
                }
            };
            let error_rate = fraction(cx, &f.error_rate, "error_rate");
            let server_ms = millis(cx, &f.server_ms, "server_ms");
            if !(given(&f.error_rate) || given(&f.server_ms)) {
                let message = "does nothing: give `error_rate` or `server_ms`";
                cx.push(table_span.clone(), &whole, message);
            }
            FaultKind::Edge {
                edge,
                error_rate,
                server_ms,
            }
        }
        "dns" => {
            let rcode = match f.rcode.as_ref().map(|r| (r.get_ref().as_str(), r.span())) {
                Some(("SERVFAIL", _)) => Some(DnsFailure::ServFail),
                Some(("NXDOMAIN", _)) => Some(DnsFailure::NxDomain),
                Some(("TIMEOUT", _)) => Some(DnsFailure::Timeout),
                Some((other, span)) => {
                    let message = format!(
                        "{other:?} is not a DNS failure: use SERVFAIL, NXDOMAIN or TIMEOUT"
                    );
                    cx.push(span, &at("rcode"), message);
                    None
                }
                None => {
                    cx.push(
                        table_span.clone(),
                        &at("rcode"),
                        "a \"dns\" fault needs `rcode`",
                    );
                    None
                }
            };
            let scope = match f.scope.as_ref().map(|r| (r.get_ref().as_str(), r.span())) {
                Some(("resolver", _)) => Some(DnsScope::Resolver),
                Some(("authoritative", _)) => Some(DnsScope::Authoritative),
                Some((other, span)) => {
                    let message = format!(
                        "{other:?} is not a DNS scope: use \"resolver\" or \"authoritative\""
                    );
                    cx.push(span, &at("scope"), message);
                    None
                }
                None => {
                    cx.push(
                        table_span.clone(),
                        &at("scope"),
                        "a \"dns\" fault needs `scope`",
                    );
                    None
                }
            };
            let regions = regions(cx, &f.regions);
            FaultKind::Dns {
                rcode: rcode?,
                scope: scope?,
                regions,
            }
        }
        "probe" => {
            let probe = probe(cx);
            let rtt_ms = millis(cx, &f.rtt_ms, "rtt_ms");
            let loss = fraction(cx, &f.loss, "loss");
            let down = f.down.as_ref().is_some_and(|d| *d.get_ref());
            if !(given(&f.rtt_ms) || given(&f.loss) || down) {
                let message = "does nothing: give `rtt_ms`, `loss` or `down = true`";
                cx.push(table_span.clone(), &whole, message);
            }
            FaultKind::Probe {
                probe: probe?,
                rtt_ms,
                loss,
                down,
            }
        }
        "clock" => {
            let probe = probe(cx);
            let offset_ms = match &f.offset {
                Some(v) => duration::read(cx.src, cx.issues, v, &at("offset"), true),
                None => {
                    let message = "a \"clock\" fault needs `offset`, such as \"-90s\"";
                    cx.push(table_span.clone(), &at("offset"), message);
                    None
                }
            };
            FaultKind::Clock {
                probe: probe?,
                offset_ms: offset_ms?,
            }
        }
        _ => {
            let Some(regions) = regions(cx, &f.regions) else {
                cx.push(
                    table_span.clone(),
                    &at("regions"),
                    "a \"silence\" fault needs `regions`",
                );
                return None;
            };
            FaultKind::Silence {
                regions,
                path: f.path.as_ref().is_some_and(|p| *p.get_ref()),
            }
        }
    };
    let (at_ms, length) = (start?, length?);
    ok.then(|| Fault {
        at_ms,
        until_ms: at_ms.saturating_add(length).min(duration_ms),
        kind: fault_kind,
    })
}
