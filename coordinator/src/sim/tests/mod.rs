//! Tests of the simulator: parsing (defaults, the suite, the contract's example, invalid
//! fixtures with their exact messages), the generator's physics, the driver's delivery rules
//! and the scorer's matching.

mod generate;
mod parse;
mod run;
mod score;
mod suite;

use meridian_shared::config::{ConfigError, SourceFile};
use meridian_shared::regions::Catalog;

use super::parse::from_source;
use super::scenario::Scenario;
use super::world::World;

/// A quiet little world: three regions of three probes on two ASNs, one HTTPS target in
/// us-east, no noise at all, no warm-up. Tests append `[[fault]]`, `[[expect]]`, ... tables.
pub(super) const BASE: &str = r#"
name = "t"
seed = 1
duration = "60m"
warmup = "0s"

[world]
regions = ["us-east", "eu-west", "me-south"]
probes_per_region = 3
asns = [64500, 64501]

[noise]
jitter = 0.0
spike_rate = 0.0
loss = 0.0

[[target]]
id = "www"
origin = "us-east"
server_ms = 60
"#;

pub(super) fn parse(text: &str) -> Result<Scenario, ConfigError> {
    from_source(&SourceFile::new("t.toml", text), &Catalog::builtin())
}

/// `BASE` plus `extra`, which must be valid.
pub(super) fn scenario(extra: &str) -> Scenario {
    let text = format!("{BASE}\n{extra}");
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

pub(super) fn world(extra: &str) -> World {
    World::new(scenario(extra), &Catalog::builtin())
}
