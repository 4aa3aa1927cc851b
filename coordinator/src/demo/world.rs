//! The demo's world, written down twice in the project's own formats: a scenario file (the
//! `SCENARIOS.md` contract: regions, probes, targets, noise, the fiber cut and what must be
//! concluded) and a `coordinator.toml` assigning the same targets to the same regions. Both are
//! written into the data directory and read back by the ordinary loaders, so what the demo runs
//! is exactly what `coordinator simulate` and `coordinator run` would read from those files.
//!
//! The scenario's `warmup` is the seeded history, and its fault offsets count from the start
//! of the live phase: [`world_at`] places the world's start at a given Unix time (the
//! simulator starts it at a fixed date), which is the only thing the demo changes.
//!
//! Deliberately absent: random draws and clocks (the world model draws, the caller passes
//! times).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use meridian_shared::regions::Catalog;

use crate::sim::scenario::Scenario;
use crate::sim::world::{EPOCH_MS, World};

/// Regions with probes: two in North America and Europe's backbone, the Gulf and India behind
/// the Red Sea cables (sharing the `red-sea` corridor), and Southern Africa.
pub const REGIONS: [&str; 6] = [
    "us-east",
    "eu-west",
    "eu-central",
    "me-south",
    "ap-south",
    "af-south",
];

/// Probes per region.
pub const PROBES_PER_REGION: u32 = 5;

/// The region whose long-haul path is cut.
pub const CUT_REGION: &str = "me-south";

/// What the cut adds to every round trip from [`CUT_REGION`] to the origins, ms.
pub const CUT_RTT_MS: u32 = 180;

/// The incident class the cut must be explained as.
pub const EXPECTED_CLASS: &str = "regional-network";

/// One monitored endpoint: the check id, where its origin sits, its server time, its URL.
pub struct DemoTarget {
    /// Check id, in the scenario and in `coordinator.toml`.
    pub id: &'static str,
    /// Region the origin sits in (round trips follow great-circle distance from it).
    pub origin: &'static str,
    /// Origin processing time before the first byte, ms.
    pub server_ms: u32,
    /// The URL `coordinator.toml` assigns (never contacted: the world model answers).
    pub url: &'static str,
}

/// The two endpoints of one site: a page served from Virginia and an API from Frankfurt.
pub const TARGETS: [DemoTarget; 2] = [
    DemoTarget {
        id: "www",
        origin: "us-east",
        server_ms: 60,
        url: "https://www.example.net/",
    },
    DemoTarget {
        id: "api",
        origin: "eu-central",
        server_ms: 25,
        url: "https://api.example.net/health",
    },
];

/// A duration as scenario files write it: the largest unit that divides it exactly.
pub fn scenario_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms > 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// What the scenario file holds, besides the fixed world above.
pub struct ScenarioSpec {
    /// Seed of every draw.
    pub seed: u64,
    /// Check interval.
    pub interval: Duration,
    /// History seeded before the live phase (the scenario's warm-up).
    pub history: Duration,
    /// Live time before the cut.
    pub cut_after: Duration,
    /// How long the cut lasts.
    pub cut_for: Duration,
    /// Live time after the cut heals, at most.
    pub tail: Duration,
}

/// The scenario file's text.
pub fn scenario_text(spec: &ScenarioSpec) -> String {
    let regions = quoted(&REGIONS);
    let mut out = format!(
        "# Written by `coordinator demo`. The live demo's world as a scenario file: `coordinator\n\
         # simulate` runs the same world through the same engine in virtual time (SCENARIOS.md).\n\
         name = \"demo-fiber-cut\"\n\
         description = \"+{CUT_RTT_MS} ms on every round trip between {CUT_REGION} and the origins\"\n\
         seed = {seed}\n\
         duration = \"{duration}\"\n\
         interval = \"{interval}\"\n\
         warmup = \"{warmup}\"\n\n\
         [world]\n\
         regions = [{regions}]\n\
         probes_per_region = {PROBES_PER_REGION}\n",
        seed = spec.seed,
        duration = scenario_duration(spec.cut_after + spec.cut_for + spec.tail),
        interval = scenario_duration(spec.interval),
        warmup = scenario_duration(spec.history),
    );
    for t in &TARGETS {
        let _ = write!(
            out,
            "\n[[target]]\nid = \"{}\"\nkind = \"http\"\norigin = \"{}\"\nserver_ms = {}\ntls = \"1.3\"\n",
            t.id, t.origin, t.server_ms
        );
    }
    let _ = write!(
        out,
        "\n[[fault]]\nkind = \"path\"\nregions = [\"{CUT_REGION}\"]\nat = \"{at}\"\nfor = \"{for_}\"\n\
         rtt_ms = {CUT_RTT_MS}\n\n\
         [[expect]]\nclass = \"{EXPECTED_CLASS}\"\nregions = [\"{CUT_REGION}\"]\n",
        at = scenario_duration(spec.cut_after),
        for_ = scenario_duration(spec.cut_for),
    );
    out
}

/// The `coordinator.toml` text: the targets' checks every `interval` for the demo's regions,
/// the data in `data_dir`, listening on a fresh loopback port (`127.0.0.1:0`, as `serve` binds).
pub fn config_text(data_dir: &Path, interval: Duration) -> Option<String> {
    let data_dir = toml::Value::String(data_dir.to_str()?.to_owned()).to_string();
    let interval = scenario_duration(interval);
    let mut out = format!(
        "# Written by `coordinator demo`: what its coordinator runs.\n\
         data_dir = {data_dir}\n\n\
         [listen]\nquic = \"127.0.0.1:0\"\nserver_names = [\"localhost\"]\n\n\
         [[target]]\nid = \"site\"\nname = \"Example site\"\nregions = [{}]\n",
        quoted(&REGIONS)
    );
    for t in &TARGETS {
        let _ = write!(
            out,
            "\n[[target.http]]\nid = \"{}\"\nurl = \"{}\"\ninterval = \"{interval}\"\n",
            t.id, t.url
        );
    }
    Some(out)
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The scenario's world with its start (the end of warm-up, where fault offsets count from)
/// at `start_ms`, Unix ms. Everything else (probes' access networks, paths, slots) depends
/// only on the scenario and its seed, so worlds started at different times agree on them.
pub fn world_at(scenario: &Scenario, catalog: &Catalog, start_ms: i64) -> World {
    let mut scenario = scenario.clone();
    scenario.warmup_ms = (start_ms - EPOCH_MS).max(0);
    World::new(scenario, catalog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_shared::config::SourceFile;

    fn spec() -> ScenarioSpec {
        ScenarioSpec {
            seed: 7,
            interval: Duration::from_secs(2),
            history: Duration::from_secs(56 * 60),
            cut_after: Duration::from_secs(120),
            cut_for: Duration::from_secs(120),
            tail: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_scenario_file_is_valid_and_says_what_the_demo_does() {
        let catalog = Catalog::builtin();
        let src = SourceFile::new("scenario.toml", scenario_text(&spec()));
        let s = crate::sim::parse::from_source(&src, &catalog).expect("valid scenario");
        assert_eq!(s.interval_ms, 2_000);
        assert_eq!(s.warmup_ms, 56 * 60_000);
        assert_eq!(s.duration_ms, 300_000);
        assert_eq!(s.world.regions.len(), REGIONS.len());
        assert_eq!(s.targets.len(), TARGETS.len());
        assert_eq!(
            (s.faults[0].at_ms, s.faults[0].until_ms),
            (120_000, 240_000)
        );
        let world = world_at(&s, &catalog, 1_800_000_000_000);
        assert_eq!(world.start_ms, 1_800_000_000_000);
        assert_eq!(
            world.probes.len(),
            REGIONS.len() * PROBES_PER_REGION as usize
        );
    }

    #[test]
    fn the_configuration_is_valid_and_assigns_every_target_everywhere() {
        let text = config_text(Path::new("/tmp/demo \"quoted\""), Duration::from_secs(2))
            .expect("UTF-8 path");
        let src = SourceFile::new("coordinator.toml", text);
        let c = crate::config::CoordinatorConfig::from_source(&src, Path::new("/tmp"))
            .expect("valid configuration");
        assert_eq!(c.data_dir, Path::new("/tmp/demo \"quoted\""));
        for region in REGIONS {
            let id = meridian_shared::regions::RegionId::parse(region).expect("region id");
            assert_eq!(c.checks_for(&id).len(), TARGETS.len(), "{region}");
        }
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(scenario_duration(Duration::from_secs(120)), "2m");
        assert_eq!(scenario_duration(Duration::from_secs(90)), "90s");
        assert_eq!(scenario_duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(scenario_duration(Duration::ZERO), "0s");
    }
}
