//! `coordinator simulate`: the real detection engine run on results generated from a
//! scenario's simulated world, in virtual time, and scored. `SCENARIOS.md` (shared with SREs
//! and reviewers) is the contract for the files; `tests/scenarios/` is the suite.
//!
//! - [`parse`] (with `parse_world`, `parse_fault`, `parse_expect`) reads a file strictly into a
//!   [`scenario::Scenario`]; [`duration`] is its `"45s"` syntax.
//! - [`world`] derives probes and paths, [`conditions`] what the faults do at a moment;
//!   [`generate`] turns one check run into the `CheckResult` a real probe would write.
//! - [`run`] is the discrete-event driver (schedule, heartbeats, clock estimates, bursts, late
//!   data) feeding a [`run::Detector`]; [`score`] applies the Matching rules; [`report`] prints.
//!
//! Deliberately absent: real time (except the wall-clock cost the CLI reports), I/O beyond
//! reading the scenario file, and any detection logic of its own: the engine under test is
//! `crate::detect`, exactly as the live coordinator runs it.

pub mod conditions;
pub mod duration;
pub mod generate;
pub mod parse;
mod parse_expect;
mod parse_fault;
mod parse_world;
pub mod report;
pub mod run;
pub mod scenario;
pub mod score;
pub mod world;

#[cfg(test)]
mod tests;

use meridian_shared::regions::Catalog;

use crate::detect::{Engine, Incident, Params, ProbeInfo, RegionInfo, Topology};
use scenario::Scenario;
use score::Scorecard;
use world::World;

/// One scenario run: what the engine concluded and how it scored.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario as run.
    pub scenario: Scenario,
    /// End of warm-up, Unix ms (virtual).
    pub start_ms: i64,
    /// Every incident the engine produced, warm-up ones included.
    pub incidents: Vec<Incident>,
    /// The score.
    pub card: Scorecard,
    /// What the driver did.
    pub stats: run::Stats,
}

impl Outcome {
    /// The scored incidents (those not resolved before the end of warm-up), detection order.
    pub fn scored(&self) -> impl Iterator<Item = &Incident> {
        self.incidents
            .iter()
            .filter(|i| self.card.scored.contains(&i.id))
    }
}

/// Runs `scenario` through a fresh engine and scores it.
pub fn simulate(scenario: Scenario, catalog: &Catalog) -> Outcome {
    let world = World::new(scenario, catalog);
    let params = Params::for_interval(world.scenario.interval_ms);
    let heartbeat_ms = params.heartbeat_ms;
    let mut engine = Engine::new(params, topology(&world));
    let stats = run::simulate(&world, &mut engine, heartbeat_ms);
    let incidents = engine.incidents().to_vec();
    let card = score::score(
        &world.scenario,
        world.start_ms,
        &|edge| world.edge_regions(edge),
        &incidents,
    );
    Outcome {
        start_ms: world.start_ms,
        scenario: world.scenario,
        incidents,
        card,
        stats,
    }
}

/// The monitoring network as the engine sees it: the world's regions with their catalog
/// corridors, and every probe with its ASN.
pub fn topology(world: &World) -> Topology {
    Topology {
        regions: (world.scenario.world.regions.iter().zip(&world.corridors))
            .map(|(id, corridors)| RegionInfo {
                id: id.to_string(),
                corridors: corridors.clone(),
            })
            .collect(),
        probes: world
            .probes
            .iter()
            .map(|p| ProbeInfo {
                id: p.id.clone(),
                region: p.at.region.to_string(),
                asn: p.asn,
            })
            .collect(),
    }
}
