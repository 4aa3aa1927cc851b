//! `[[expect]]` tables: a class from `SCENARIOS.md`'s list, an optional scope (regions of the
//! world, targets of the scenario, a probe `region/N`), detection and resolution bounds, and
//! whether a page is expected (default: yes). [`probe_ref`] reads the `region/N` references
//! that faults use too.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use super::duration::{self, RawDuration};
use super::parse::Cx;
use super::scenario::{Expect, ProbeRef, TargetSpec, WorldSpec};
use crate::detect::Class;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    class: Spanned<String>,
    #[serde(default)]
    regions: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    targets: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    probe: Option<Spanned<String>>,
    #[serde(default)]
    detect_within: Option<RawDuration>,
    #[serde(default)]
    resolve_within: Option<RawDuration>,
    #[serde(default)]
    page: Option<bool>,
}

/// Validates one `[[expect]]`.
pub(super) fn expect(
    cx: &mut Cx<'_>,
    world: &WorldSpec,
    targets: &[TargetSpec],
    i: usize,
    raw: &Spanned<RawExpect>,
) -> Option<Expect> {
    let at = |f: &str| format!("expect[{i}].{f}");
    let e = raw.get_ref();
    let class = Class::parse(e.class.get_ref());
    if class.is_none() {
        let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
        let message = format!(
            "unknown incident class {:?}; use one of {}",
            e.class.get_ref(),
            names.join(", ")
        );
        cx.push(e.class.span(), &at("class"), message);
    }
    let regions = e.regions.as_ref().map(|list| {
        (list.iter().enumerate())
            .filter_map(|(j, r)| cx.world_region(world, r, &at(&format!("regions[{j}]"))))
            .map(|r| r.as_str().to_string())
            .collect()
    });
    let target_set = e.targets.as_ref().map(|list| {
        let mut set = BTreeSet::new();
        for (j, t) in list.iter().enumerate() {
            if targets.iter().any(|x| &x.id == t.get_ref()) {
                set.insert(t.get_ref().clone());
            } else {
                let message = format!(
                    "target {:?} is not a [[target]] id of this scenario",
                    t.get_ref()
                );
                cx.push(t.span(), &at(&format!("targets[{j}]")), message);
            }
        }
        set
    });
    let probe = match &e.probe {
        Some(p) => Some(probe_ref(cx, world, p, &at("probe"))?),
        None => None,
    };
    let within = |cx: &mut Cx<'_>, v: &Option<RawDuration>, key: &str| match v {
        Some(v) => duration::read_positive(cx.src, cx.issues, v, &at(key)).map(Some),
        None => Some(None),
    };
    let detect_within_ms = within(cx, &e.detect_within, "detect_within");
    let resolve_within_ms = within(cx, &e.resolve_within, "resolve_within");
    Some(Expect {
        class: class?,
        regions,
        targets: target_set,
        probe,
        detect_within_ms: detect_within_ms?,
        resolve_within_ms: resolve_within_ms?,
        page: e.page.unwrap_or(true),
    })
}

/// A `region/N` reference to a probe of this world, or an issue.
pub(super) fn probe_ref(
    cx: &mut Cx<'_>,
    world: &WorldSpec,
    raw: &Spanned<String>,
    field: &str,
) -> Option<ProbeRef> {
    let text = raw.get_ref();
    let Some((region, n)) = text.rsplit_once('/') else {
        let message = format!("{text:?} is not a probe reference such as \"me-south/3\"");
        cx.push(raw.span(), field, message);
        return None;
    };
    let Some(region) = world.regions.iter().find(|r| r.as_str() == region) else {
        cx.push(
            raw.span(),
            field,
            format!("region {region:?} is not in world.regions"),
        );
        return None;
    };
    let count = world.probes_in(region);
    match n.parse::<u32>() {
        Ok(n) if (1..=count).contains(&n) => Some(ProbeRef {
            region: region.clone(),
            n,
        }),
        _ => {
            let message = format!(
                "{text:?} is not a probe of this world: {region} has {count} probes ({region}/1 to {region}/{count})"
            );
            cx.push(raw.span(), field, message);
            None
        }
    }
}
