//! Assignments, computed: for the configured checks and the enrolled probes, each probe's
//! [`Assignment`] (checks, stagger slot `i` of `P`, version). Pure: no I/O, no clock; the
//! service loads its inputs from the store and persists what [`reconcile`] returns.
//!
//! # Decisions
//! - **Checks**: every check the configuration gives the probe's region
//!   (`CoordinatorConfig::checks_for`), in file order.
//! - **Slots**: `P` counts the region's enrolled, non-revoked probes, and slot `i` is the
//!   probe's index among them sorted by probe id. Enrolled rather than live: a probe that drops
//!   off for a minute does not reshuffle every other probe's stagger (and send them all a new
//!   assignment) twice; the cost is one empty slot in the stagger while a probe is down.
//!   Sorting by id makes the slots a function of the set alone, so every coordinator with the
//!   same registry computes the same slots, and an enrolment moves only the probes after it.
//! - **Versions**: per probe, persisted, only ever rising. The content (slot, slots, checks)
//!   is digested (SHA-256 of its MessagePack form); a re-computation with the same digest keeps
//!   the version, a different digest takes the previous version plus one. A hash alone could
//!   not be a rising number, and a global generation would change every probe's version for a
//!   change in one region.
//! - **Grace**: the issued record keeps the check ids of the assignment before it; results of
//!   either are accepted. A probe runs its last assignment until the new one reaches it (and
//!   while disconnected), so results of a check removed a moment ago are honest; results of
//!   checks from two changes back are refused.

use std::collections::BTreeMap;

use meridian_shared::check::Check;
use meridian_shared::regions::RegionId;
use meridian_shared::wire::Assignment;

use crate::store::probes::IssuedAssignment;

/// One probe's assignment content, before it is versioned.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The probe.
    pub probe_id: String,
    /// Its region (from its certificate, as recorded at enrolment).
    pub region: RegionId,
    /// Its slot `i` in `0..slots`.
    pub slot: u32,
    /// `P`: enrolled, non-revoked probes in the region.
    pub slots: u32,
    /// The checks of its region.
    pub checks: Vec<Check>,
}

/// Plans every probe's content: `probes` are the enrolled, non-revoked probes with their
/// regions (any order, duplicates ignored); `checks_for` gives a region's checks.
pub fn plan<'a>(
    probes: impl IntoIterator<Item = (&'a str, &'a RegionId)>,
    checks_for: impl Fn(&RegionId) -> Vec<Check>,
) -> Vec<Planned> {
    let mut by_region: BTreeMap<&RegionId, Vec<&str>> = BTreeMap::new();
    for (id, region) in probes {
        by_region.entry(region).or_default().push(id);
    }
    let mut out = Vec::new();
    for (region, mut ids) in by_region {
        ids.sort_unstable();
        ids.dedup();
        let checks = checks_for(region);
        let slots = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        for (i, id) in ids.into_iter().enumerate() {
            out.push(Planned {
                probe_id: id.to_owned(),
                region: region.clone(),
                slot: u32::try_from(i).unwrap_or(u32::MAX),
                slots,
                checks: checks.clone(),
            });
        }
    }
    out
}

/// The content's digest, hex SHA-256 over MessagePack of `(slot, slots, checks)`.
pub fn digest(p: &Planned) -> String {
    // Encoding plain data cannot fail; were it to, Debug is an equally deterministic form.
    let bytes = rmp_serde::to_vec(&(p.slot, p.slots, &p.checks))
        .unwrap_or_else(|_| format!("{:?}", (p.slot, p.slots, &p.checks)).into_bytes());
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One probe's versioned assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// Its region.
    pub region: RegionId,
    /// What is sent to the probe.
    pub assignment: Assignment,
    /// What is stored (and which checks' results are accepted).
    pub record: IssuedAssignment,
    /// Whether the version is new (to be stored, then pushed).
    pub changed: bool,
}

/// Versions the planned contents against what was issued before (see the module's
/// decisions). Probes issued before but absent from `planned` (revoked) are simply not
/// returned; their record stays, so a re-enrolment could never reuse a version.
pub fn reconcile(planned: Vec<Planned>, issued: &[IssuedAssignment]) -> Vec<Versioned> {
    let before: BTreeMap<&str, &IssuedAssignment> =
        issued.iter().map(|a| (a.probe_id.as_str(), a)).collect();
    planned
        .into_iter()
        .map(|p| {
            let digest = digest(&p);
            let checks: Vec<String> = p.checks.iter().map(|c| c.id.to_string()).collect();
            let prev = before.get(p.probe_id.as_str()).copied();
            let (record, changed) = match prev {
                Some(prev) if prev.digest == digest => (prev.clone(), false),
                prev => (
                    IssuedAssignment {
                        probe_id: p.probe_id.clone(),
                        version: prev.map_or(0, |a| a.version).saturating_add(1),
                        digest,
                        checks,
                        prev_checks: prev.map(|a| a.checks.clone()).unwrap_or_default(),
                    },
                    true,
                ),
            };
            Versioned {
                region: p.region,
                assignment: Assignment {
                    version: record.version,
                    slot: p.slot,
                    slots: p.slots,
                    checks: p.checks,
                },
                record,
                changed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use meridian_shared::check::{CheckId, CheckSpec, HttpCheck};
    use proptest::prelude::*;

    use super::*;

    fn check(id: &str) -> Check {
        Check {
            id: CheckId::parse(id).unwrap(),
            interval: std::time::Duration::from_secs(60),
            spec: CheckSpec::Http(HttpCheck::get(
                format!("https://{id}.example.com/").parse().unwrap(),
            )),
        }
    }

    fn region(s: &str) -> RegionId {
        RegionId::parse(s).unwrap()
    }

    /// `eu-west` gets `web`; every region gets `dns`; `extra` adds a check to `eu-west`.
    fn checks(extra: bool) -> impl Fn(&RegionId) -> Vec<Check> {
        move |r: &RegionId| {
            let mut v = vec![check("dns")];
            if r.as_str() == "eu-west" {
                v.push(check("web"));
                if extra {
                    v.push(check("api"));
                }
            }
            v
        }
    }

    fn run(
        probes: &[(&str, &str)],
        extra: bool,
        issued: &[IssuedAssignment],
    ) -> BTreeMap<String, Versioned> {
        let regions: Vec<(String, RegionId)> = probes
            .iter()
            .map(|(id, r)| (id.to_string(), region(r)))
            .collect();
        let planned = plan(regions.iter().map(|(i, r)| (i.as_str(), r)), checks(extra));
        reconcile(planned, issued)
            .into_iter()
            .map(|v| (v.record.probe_id.clone(), v))
            .collect()
    }

    fn records(m: &BTreeMap<String, Versioned>) -> Vec<IssuedAssignment> {
        m.values().map(|v| v.record.clone()).collect()
    }

    #[test]
    fn slots_follow_probe_id_order_per_region() {
        let m = run(
            &[
                ("p3", "eu-west"),
                ("p1", "eu-west"),
                ("p2", "us-east"),
                ("p0", "eu-west"),
            ],
            false,
            &[],
        );
        let slot = |id: &str| (m[id].assignment.slot, m[id].assignment.slots);
        assert_eq!(slot("p0"), (0, 3));
        assert_eq!(slot("p1"), (1, 3));
        assert_eq!(slot("p3"), (2, 3));
        assert_eq!(slot("p2"), (0, 1));
        let ids = |id: &str| m[id].record.checks.clone();
        assert_eq!(ids("p0"), ["dns", "web"]);
        assert_eq!(ids("p2"), ["dns"]);
        assert!(m.values().all(|v| v.changed && v.assignment.version == 1));
    }

    #[test]
    fn versions_rise_on_change_and_stay_otherwise() {
        let probes = [("a", "eu-west"), ("b", "us-east")];
        let first = run(&probes, false, &[]);
        let same = run(&probes, false, &records(&first));
        assert!(
            same.values()
                .all(|v| !v.changed && v.assignment.version == 1)
        );

        // A check added to eu-west: only `a` changes, keeping its old checks as grace.
        let more = run(&probes, true, &records(&same));
        assert!(more["a"].changed);
        assert_eq!(more["a"].assignment.version, 2);
        assert_eq!(more["a"].record.prev_checks, ["dns", "web"]);
        assert!(!more["b"].changed);
        assert_eq!(more["b"].assignment.version, 1);

        // A new probe in us-east moves `b`'s slot count: a new version for `b` only.
        let joined = run(
            &[("a", "eu-west"), ("b", "us-east"), ("c", "us-east")],
            true,
            &records(&more),
        );
        assert_eq!(joined["b"].assignment.version, 2);
        assert_eq!(
            (joined["b"].assignment.slot, joined["b"].assignment.slots),
            (0, 2)
        );
        assert!(!joined["a"].changed);
        assert_eq!(joined["c"].assignment.version, 1);
    }

    proptest! {
        #[test]
        fn slots_are_contiguous_and_order_free(
            ids in proptest::collection::btree_set("[a-z0-9]{1,6}", 0..20),
            regions in proptest::collection::vec(0usize..3, 20),
            seed in any::<u64>(),
        ) {
            let names = ["eu-west", "us-east", "me-south"];
            let mut probes: Vec<(String, RegionId)> = ids
                .iter()
                .zip(&regions)
                .map(|(id, r)| (id.clone(), region(names[*r])))
                .collect();
            let a = plan(probes.iter().map(|(i, r)| (i.as_str(), r)), checks(false));
            // Any input order gives the same slots.
            let len = probes.len().max(1);
            probes.rotate_left(usize::try_from(seed % len as u64).unwrap());
            probes.reverse();
            let b = plan(probes.iter().map(|(i, r)| (i.as_str(), r)), checks(false));
            prop_assert_eq!(&a, &b);
            let mut by_region: BTreeMap<&RegionId, Vec<(&str, u32, u32)>> = BTreeMap::new();
            for p in &a {
                by_region.entry(&p.region).or_default().push((&p.probe_id, p.slot, p.slots));
            }
            for members in by_region.values() {
                let n = u32::try_from(members.len()).unwrap();
                let mut slots: Vec<u32> = members.iter().map(|m| m.1).collect();
                slots.sort_unstable();
                prop_assert_eq!(slots, (0..n).collect::<Vec<_>>());
                prop_assert!(members.iter().all(|m| m.2 == n));
                // Slot order is id order.
                let mut by_slot = members.clone();
                by_slot.sort_by_key(|m| m.1);
                prop_assert!(by_slot.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }
}
