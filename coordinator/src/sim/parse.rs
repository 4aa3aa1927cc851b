//! Scenario files read strictly: unknown keys are errors, and every semantic problem (an
//! unknown region, a probe out of range, a duration without a unit, ...) is reported at once as
//! `file:line:column: field: message`, the way every Meridian file is checked.
//!
//! This file holds the top level, `[score]` and the validation context; `parse_world.rs` holds
//! `[world]`, `[noise]` and `[[target]]`, `parse_fault.rs` `[[fault]]`, `parse_expect.rs`
//! `[[expect]]`. Bad-file fixtures live in `coordinator/testdata/scenarios/invalid-*.toml`,
//! each next to the exact message it produces (`invalid-*.expected`).

use std::path::Path;

use meridian_shared::config::{ConfigError, Issues, SourceFile};
use meridian_shared::regions::{Catalog, RegionId};
use serde::Deserialize;
use toml::Spanned;

use super::duration::{self, RawDuration};
use super::parse_expect::{self, RawExpect};
use super::parse_fault::{self, RawFault};
use super::parse_world::{self, RawNoise, RawTarget, RawWorld};
use super::scenario::{Scenario, ScoreSpec, WorldSpec};

/// Reads and validates a scenario file against `catalog`.
pub fn load(path: &Path, catalog: &Catalog) -> Result<Scenario, ConfigError> {
    from_source(&SourceFile::read(path)?, catalog)
}

/// Validates scenario text; the name defaults to the file stem of the source's name.
pub fn from_source(src: &SourceFile, catalog: &Catalog) -> Result<Scenario, ConfigError> {
    let raw: RawScenario = src.parse()?;
    let mut issues = Issues::default();
    let cx = Cx {
        src,
        catalog,
        issues: &mut issues,
    };
    let scenario = validate(cx, raw);
    issues.finish(())?;
    Ok(scenario)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    duration: RawDuration,
    #[serde(default)]
    interval: Option<RawDuration>,
    #[serde(default)]
    warmup: Option<RawDuration>,
    world: Spanned<RawWorld>,
    #[serde(default)]
    noise: RawNoise,
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
    #[serde(default)]
    fault: Vec<Spanned<RawFault>>,
    #[serde(default)]
    expect: Vec<Spanned<RawExpect>>,
    #[serde(default)]
    score: RawScore,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScore {
    #[serde(default)]
    max_false_incidents: Option<Spanned<i64>>,
    #[serde(default)]
    strict_ops: Option<bool>,
    #[serde(default)]
    max_false_pages: Option<Spanned<i64>>,
}

/// What validation needs at hand: the text (for locations), the catalog, the issues so far.
pub(super) struct Cx<'a> {
    pub src: &'a SourceFile,
    pub catalog: &'a Catalog,
    pub issues: &'a mut Issues,
}

impl Cx<'_> {
    /// Records an issue at `span`.
    pub fn push(&mut self, span: std::ops::Range<usize>, field: &str, message: impl Into<String>) {
        self.issues.push(self.src.issue(span, field, message));
    }

    /// A region id of the catalog, or an issue.
    pub fn catalog_region(&mut self, raw: &Spanned<String>, field: &str) -> Option<RegionId> {
        let found = RegionId::parse(raw.get_ref())
            .ok()
            .filter(|id| self.catalog.get(id).is_some());
        if found.is_none() {
            let message = format!(
                "unknown region {:?}: it is not in the region catalog",
                raw.get_ref()
            );
            self.push(raw.span(), field, message);
        }
        found
    }

    /// A region of this scenario's world, or an issue.
    pub fn world_region(
        &mut self,
        world: &WorldSpec,
        raw: &Spanned<String>,
        field: &str,
    ) -> Option<RegionId> {
        let found = world
            .regions
            .iter()
            .find(|r| r.as_str() == raw.get_ref())
            .cloned();
        if found.is_none() {
            let message = format!("region {:?} is not in world.regions", raw.get_ref());
            self.push(raw.span(), field, message);
        }
        found
    }

    /// A fraction in 0..=1, or an issue.
    pub fn fraction(&mut self, raw: &Spanned<f64>, field: &str) -> Option<f64> {
        let v = *raw.get_ref();
        if (0.0..=1.0).contains(&v) {
            Some(v)
        } else {
            self.push(
                raw.span(),
                field,
                format!("must be between 0 and 1, not {v}"),
            );
            None
        }
    }

    /// A finite number of milliseconds >= 0, or an issue.
    pub fn millis(&mut self, raw: &Spanned<f64>, field: &str) -> Option<f64> {
        let v = *raw.get_ref();
        if v.is_finite() && (0.0..=3_600_000.0).contains(&v) {
            Some(v)
        } else {
            let message =
                format!("must be a number of milliseconds between 0 and 3600000, not {v}");
            self.push(raw.span(), field, message);
            None
        }
    }
}

fn validate(mut cx: Cx<'_>, raw: RawScenario) -> Scenario {
    let name = raw.name.as_ref().map_or_else(
        || {
            Path::new(cx.src.name()).file_stem().map_or_else(
                || "scenario".to_string(),
                |s| s.to_string_lossy().into_owned(),
            )
        },
        |n| n.get_ref().clone(),
    );
    if name.trim().is_empty()
        && let Some(n) = &raw.name
    {
        cx.push(n.span(), "name", "must not be empty");
    }
    let duration_ms = duration::read_positive(cx.src, cx.issues, &raw.duration, "duration");
    let interval_ms = match &raw.interval {
        Some(v) => duration::read_positive(cx.src, cx.issues, v, "interval"),
        None => Some(60_000),
    };
    if let (Some(i), Some(v)) = (interval_ms, &raw.interval)
        && i < 1_000
    {
        cx.push(v.span(), "interval", "must be at least 1s");
    }
    let warmup_ms = match &raw.warmup {
        Some(v) => duration::read(cx.src, cx.issues, v, "warmup", false),
        None => Some(86_400_000),
    };
    let world = parse_world::world(&mut cx, &raw.world);
    let noise = parse_world::noise(&mut cx, &raw.noise);
    let targets = parse_world::targets(&mut cx, &world, &raw.target);
    let duration_ms = duration_ms.unwrap_or(1);
    let faults = raw
        .fault
        .iter()
        .enumerate()
        .filter_map(|(i, f)| parse_fault::fault(&mut cx, &world, &targets, duration_ms, i, f))
        .collect();
    let expects = raw
        .expect
        .iter()
        .enumerate()
        .filter_map(|(i, e)| parse_expect::expect(&mut cx, &world, &targets, i, e))
        .collect();
    let mut score = ScoreSpec {
        max_false_incidents: 0,
        strict_ops: raw.score.strict_ops.unwrap_or(false),
        max_false_pages: None,
    };
    if let Some(m) = &raw.score.max_false_pages {
        match usize::try_from(*m.get_ref()) {
            Ok(n) => score.max_false_pages = Some(n),
            Err(_) => cx.push(m.span(), "score.max_false_pages", "must be 0 or more"),
        }
    }
    if let Some(m) = &raw.score.max_false_incidents {
        match usize::try_from(*m.get_ref()) {
            Ok(n) => score.max_false_incidents = n,
            Err(_) => cx.push(m.span(), "score.max_false_incidents", "must be 0 or more"),
        }
    }
    Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        seed: raw.seed.unwrap_or(0),
        duration_ms,
        interval_ms: interval_ms.unwrap_or(60_000),
        warmup_ms: warmup_ms.unwrap_or(0),
        world,
        noise,
        targets,
        faults,
        expects,
        score,
    }
}
