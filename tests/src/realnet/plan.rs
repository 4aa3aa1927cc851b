//! The address plan of a real-network run: which hosts exist, in which site, at which address.
//! Pure: no namespace, no socket; [`Plan::new`] only computes and validates.
//!
//! Every address comes from one range, [`TEST_RANGE`] = 198.18.0.0/15 (RFC 2544's benchmarking
//! range: never routed on the Internet, and unused on this machine):
//!
//! | block | what |
//! |---|---|
//! | 198.18.1.0/24 | the origin site: host `k` at .10+k (`origin`, `origin-1`, …) |
//! | 198.18.2.0/24 | the DNS site: `dns` at .10 |
//! | 198.18.3.0/24 | the coordinator site: `coordinator` at .10 |
//! | 198.18.4.0/24 | CDN edge PoPs ([`Plan::with_edges`]): PoP `k` at .10+k, each its own site |
//! | 198.18.5.10/32 | the CDN's anycast address, held by every PoP ([`EDGE_ANYCAST`]) |
//! | 198.19.0.0/17 | network A ([`ASN_A`]): region `r` (0-based, in builder order) owns 198.19.r.0/24 |
//! | 198.19.128.0/17 | network B ([`ASN_B`]): region `r` owns 198.19.(128+r).0/24 |
//!
//! A region's probes alternate between its two blocks, A first: probe `i` is at .10+⌊i/2⌋ of
//! block A when `i` is even, of block B when odd. Three probes per region are thus two
//! independent networks (A, B, A), which is what detection counts. Region hosts other than
//! probes take .200+k of block A: the region's recursive resolver, `REGION-resolver` at .200
//! ([`Plan::with_resolvers`]), in the region's site (no AS: it is not a probe).
//!
//! # Decisions
//! - Every site and every probe is its own host with its own network namespace, and a region is
//!   the group of its hosts. The `probe` binary cannot choose its source address, so two probes
//!   sharing one namespace would reach the origin and the coordinator from the same address;
//!   distinct namespaces give each probe its own address (GeoIP, per-probe faults) with no
//!   product change, and the emulator applies region rules to the whole group.
//! - Documentation ASNs (RFC 5398), so a GeoIP database built from [`Plan::blocks`] cannot be
//!   mistaken for a real one.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The one range every address of a run comes from, blackholed in the root namespace.
pub const TEST_RANGE: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15);

/// The AS number of network A (RFC 5398 documentation range).
pub const ASN_A: u32 = 64500;
/// The AS number of network B.
pub const ASN_B: u32 = 64501;
/// Network A's organisation name, as a GeoIP ASN database would carry it.
pub const ASN_A_NAME: &str = "Meridian Test Network A";
/// Network B's organisation name.
pub const ASN_B_NAME: &str = "Meridian Test Network B";

/// The site of the origin(s).
pub const ORIGIN: &str = "origin";
/// The site of the DNS servers.
pub const DNS: &str = "dns";
/// The site of the coordinator.
pub const COORDINATOR: &str = "coordinator";

/// The CDN's one service address: every edge PoP holds it, and the emulator delivers a packet
/// for it to the PoP serving the sender's region (anycast, as a CDN announces one prefix from
/// every PoP and BGP takes each client to the nearest).
pub const EDGE_ANYCAST: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 10);

/// Most edge PoPs.
pub const MAX_EDGES: usize = 190;

/// Most regions a plan holds: one /24 per region in each /17.
pub const MAX_REGIONS: usize = 128;
/// Most probes a region holds: .10 to .199 of each of its two blocks.
pub const MAX_PROBES_PER_REGION: usize = 2 * 190;
/// Most origin hosts.
pub const MAX_ORIGINS: usize = 190;

/// One host of the plan: a network namespace with one address, in one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Unique in the run, e.g. `eu-central-p0`, `origin`, `origin-1`, `dns`, `coordinator`;
    /// also the tail of the namespace's name.
    pub name: String,
    /// The site it belongs to: a region id, [`ORIGIN`], [`DNS`] or [`COORDINATOR`].
    pub site: String,
    /// Its only address.
    pub addr: Ipv4Addr,
    /// The AS its address block belongs to (probes only).
    pub asn: Option<u32>,
}

/// An address block of a region, for GeoIP databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The /24.
    pub net: Ipv4Net,
    /// The region it is in.
    pub region: String,
    /// Its AS number ([`ASN_A`] or [`ASN_B`]).
    pub asn: u32,
    /// Its AS organisation name.
    pub asn_name: &'static str,
}

/// A CDN edge PoP of the plan: a host of its own (and a site of its own), serving some regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSpec {
    /// Its id, also its host's and its site's name (e.g. `edge-west`).
    pub name: String,
    /// The regions whose traffic for [`EDGE_ANYCAST`] it receives.
    pub serves: Vec<String>,
}

/// The hosts and blocks of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every host, sites in order: regions (builder order, probes in index order), then
    /// origins, DNS, coordinator.
    pub hosts: Vec<HostSpec>,
    /// Two blocks per region, A then B.
    pub blocks: Vec<Block>,
    /// Site names in order: regions, then [`ORIGIN`], [`DNS`], [`COORDINATOR`], then edge PoPs.
    pub sites: Vec<String>,
    /// The CDN's edge PoPs ([`Plan::with_edges`]), in order.
    pub edges: Vec<EdgeSpec>,
}

impl Plan {
    /// Lays out `regions` with `probes_per_region` probes each, and `origins` origin hosts.
    /// Region ids must be distinct, must not be a service site's name, and must be 1 to 32
    /// characters of `a-z`, `0-9`, `-` (they become part of namespace names).
    pub fn new(
        regions: &[String],
        probes_per_region: usize,
        origins: usize,
    ) -> anyhow::Result<Plan> {
        anyhow::ensure!(
            regions.len() <= MAX_REGIONS,
            "at most {MAX_REGIONS} regions, not {}",
            regions.len()
        );
        anyhow::ensure!(
            probes_per_region <= MAX_PROBES_PER_REGION,
            "at most {MAX_PROBES_PER_REGION} probes per region, not {probes_per_region}"
        );
        anyhow::ensure!(
            (1..=MAX_ORIGINS).contains(&origins),
            "1 to {MAX_ORIGINS} origins, not {origins}"
        );
        let mut seen = BTreeSet::new();
        for region in regions {
            anyhow::ensure!(
                !region.is_empty()
                    && region.len() <= 32
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "region id {region:?} must be 1 to 32 characters of a-z, 0-9 and -"
            );
            anyhow::ensure!(
                ![ORIGIN, DNS, COORDINATOR].contains(&region.as_str()),
                "{region:?} is the name of a service site, not a region"
            );
            anyhow::ensure!(seen.insert(region), "region {region:?} is listed twice");
        }

        let mut hosts = Vec::new();
        let mut blocks = Vec::new();
        for (r, region) in regions.iter().enumerate() {
            let r = u8::try_from(r).expect("at most 128 regions, checked above");
            let a = Ipv4Net::new_assert(Ipv4Addr::new(198, 19, r, 0), 24);
            let b = Ipv4Net::new_assert(Ipv4Addr::new(198, 19, 128 + r, 0), 24);
            blocks.push(Block {
                net: a,
                region: region.clone(),
                asn: ASN_A,
                asn_name: ASN_A_NAME,
            });
            blocks.push(Block {
                net: b,
                region: region.clone(),
                asn: ASN_B,
                asn_name: ASN_B_NAME,
            });
            for i in 0..probes_per_region {
                let (block, asn) = if i % 2 == 0 { (a, ASN_A) } else { (b, ASN_B) };
                hosts.push(HostSpec {
                    name: format!("{region}-p{i}"),
                    site: region.clone(),
                    addr: nth(block, 10 + i / 2),
                    asn: Some(asn),
                });
            }
        }
        for k in 0..origins {
            hosts.push(HostSpec {
                name: if k == 0 {
                    ORIGIN.to_string()
                } else {
                    format!("{ORIGIN}-{k}")
                },
                site: ORIGIN.to_string(),
                addr: nth(
                    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 1, 0), 24),
                    10 + k,
                ),
                asn: None,
            });
        }
        for (site, third) in [(DNS, 2), (COORDINATOR, 3)] {
            hosts.push(HostSpec {
                name: site.to_string(),
                site: site.to_string(),
                addr: Ipv4Addr::new(198, 18, third, 10),
                asn: None,
            });
        }
        let mut sites: Vec<String> = regions.to_vec();
        sites.extend([ORIGIN, DNS, COORDINATOR].map(String::from));
        Ok(Plan {
            hosts,
            blocks,
            sites,
            edges: Vec::new(),
        })
    }

    /// Adds CDN edge PoPs, each a host and a site of its own at the end of the plan. A PoP's id
    /// follows the rules of region ids and names no other site; every region it serves is in
    /// the plan, and no region is served by two PoPs.
    pub fn with_edges(mut self, edges: &[EdgeSpec]) -> anyhow::Result<Plan> {
        anyhow::ensure!(
            edges.len() <= MAX_EDGES,
            "at most {MAX_EDGES} edge PoPs, not {}",
            edges.len()
        );
        let mut served = BTreeSet::new();
        for (k, edge) in edges.iter().enumerate() {
            let name = &edge.name;
            anyhow::ensure!(
                !name.is_empty()
                    && name.len() <= 32
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "edge id {name:?} must be 1 to 32 characters of a-z, 0-9 and -"
            );
            anyhow::ensure!(
                !self.sites.contains(name),
                "edge id {name:?} is already a site of the plan"
            );
            for region in &edge.serves {
                anyhow::ensure!(
                    self.blocks.iter().any(|b| &b.region == region),
                    "edge {name:?} serves {region:?}, which is not a region of the plan"
                );
                anyhow::ensure!(
                    served.insert(region.clone()),
                    "region {region:?} is served by two edges"
                );
            }
            self.hosts.push(HostSpec {
                name: name.clone(),
                site: name.clone(),
                addr: nth(
                    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 4, 0), 24),
                    10 + k,
                ),
                asn: None,
            });
            self.sites.push(name.clone());
            self.edges.push(edge.clone());
        }
        Ok(self)
    }

    /// Adds each region's recursive resolver: host `REGION-resolver` at .200 of the region's
    /// block A, in the region's site (its probes reach it inside the site, see
    /// [`super::rules`]), appended to the hosts.
    pub fn with_resolvers(mut self) -> Plan {
        let regions: Vec<(String, Ipv4Net)> = self
            .blocks
            .iter()
            .filter(|b| b.asn == ASN_A)
            .map(|b| (b.region.clone(), b.net))
            .collect();
        for (region, block) in regions {
            self.hosts.push(HostSpec {
                name: resolver_name(&region),
                site: region,
                addr: nth(block, RESOLVER_HOST),
                asn: None,
            });
        }
        self
    }

    /// The edge PoP serving `region`, if any.
    pub fn edge_of(&self, region: &str) -> Option<&EdgeSpec> {
        self.edges
            .iter()
            .find(|e| e.serves.iter().any(|r| r == region))
    }
}

/// The host number of a region's resolver in its block A.
const RESOLVER_HOST: usize = 200;

/// The host name of `region`'s resolver ([`Plan::with_resolvers`]).
pub fn resolver_name(region: &str) -> String {
    format!("{region}-resolver")
}

/// The `k`-th address of `block` (`k` below 256, checked by the callers' limits).
fn nth(block: Ipv4Net, k: usize) -> Ipv4Addr {
    let k = u32::try_from(k).expect("host numbers are below 256");
    Ipv4Addr::from(u32::from(block.network()) + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn probes_alternate_networks_and_every_address_is_distinct_and_in_range() {
        let plan = Plan::new(&regions(&["eu-central", "us-east"]), 3, 2).unwrap();
        let eu: Vec<_> = plan
            .hosts
            .iter()
            .filter(|h| h.site == "eu-central")
            .collect();
        assert_eq!(
            eu.iter()
                .map(|h| (h.name.as_str(), h.addr, h.asn))
                .collect::<Vec<_>>(),
            [
                ("eu-central-p0", Ipv4Addr::new(198, 19, 0, 10), Some(ASN_A)),
                (
                    "eu-central-p1",
                    Ipv4Addr::new(198, 19, 128, 10),
                    Some(ASN_B)
                ),
                ("eu-central-p2", Ipv4Addr::new(198, 19, 0, 11), Some(ASN_A)),
            ]
        );
        let us_p1 = plan.hosts.iter().find(|h| h.name == "us-east-p1").unwrap();
        assert_eq!(us_p1.addr, Ipv4Addr::new(198, 19, 129, 10));
        let names: BTreeSet<_> = plan.hosts.iter().map(|h| &h.name).collect();
        let addrs: BTreeSet<_> = plan.hosts.iter().map(|h| h.addr).collect();
        assert_eq!(names.len(), plan.hosts.len());
        assert_eq!(addrs.len(), plan.hosts.len());
        assert!(plan.hosts.iter().all(|h| TEST_RANGE.contains(&h.addr)));
        assert_eq!(plan.hosts.len(), 6 + 2 + 2);
        assert_eq!(
            plan.sites,
            ["eu-central", "us-east", "origin", "dns", "coordinator"]
        );
        // Every probe sits in one of its region's blocks, with that block's AS.
        for h in plan.hosts.iter().filter(|h| h.asn.is_some()) {
            let block = plan
                .blocks
                .iter()
                .find(|b| b.net.contains(&h.addr))
                .unwrap();
            assert_eq!(
                (block.region.as_str(), Some(block.asn)),
                (h.site.as_str(), h.asn)
            );
        }
    }

    #[test]
    fn edges_are_sites_of_their_own_serving_distinct_regions() {
        let edge = |name: &str, serves: &[&str]| EdgeSpec {
            name: name.to_string(),
            serves: regions(serves),
        };
        let plan = Plan::new(&regions(&["eu-central", "us-east", "me-south"]), 1, 1)
            .unwrap()
            .with_edges(&[
                edge("edge-west", &["eu-central", "us-east"]),
                edge("edge-east", &["me-south"]),
            ])
            .unwrap();
        assert_eq!(&plan.sites[6..], ["edge-west", "edge-east"]);
        let east = plan.hosts.iter().find(|h| h.name == "edge-east").unwrap();
        assert_eq!(
            (east.site.as_str(), east.addr),
            ("edge-east", Ipv4Addr::new(198, 18, 4, 11))
        );
        assert_eq!(plan.edge_of("us-east").unwrap().name, "edge-west");
        assert!(TEST_RANGE.contains(&EDGE_ANYCAST));
        assert!(plan.hosts.iter().all(|h| h.addr != EDGE_ANYCAST));
        let base = Plan::new(&regions(&["eu-central", "us-east"]), 1, 1).unwrap();
        assert!(base.clone().with_edges(&[edge("origin", &[])]).is_err());
        assert!(
            base.clone()
                .with_edges(&[edge("e1", &["eu-central"]), edge("e2", &["eu-central"])])
                .is_err()
        );
        assert!(base.with_edges(&[edge("e1", &["ap-south"])]).is_err());
    }

    #[test]
    fn resolvers_sit_at_200_of_block_a_in_their_region_without_an_as() {
        let plan = Plan::new(&regions(&["eu-central", "us-east"]), 3, 1)
            .unwrap()
            .with_resolvers();
        let us = plan
            .hosts
            .iter()
            .find(|h| h.name == "us-east-resolver")
            .unwrap();
        assert_eq!(
            (us.site.as_str(), us.addr, us.asn),
            ("us-east", Ipv4Addr::new(198, 19, 1, 200), None)
        );
        assert_eq!(
            plan.hosts.len(),
            6 + 1 + 2 + 2,
            "probes, origin, dns, coordinator, resolvers"
        );
        assert_eq!(plan.sites.len(), 5, "no new site");
        let addrs: BTreeSet<_> = plan.hosts.iter().map(|h| h.addr).collect();
        assert_eq!(addrs.len(), plan.hosts.len());
    }

    #[test]
    fn bad_region_lists_are_refused() {
        assert!(Plan::new(&regions(&["eu", "eu"]), 1, 1).is_err());
        assert!(Plan::new(&regions(&["origin"]), 1, 1).is_err());
        assert!(Plan::new(&regions(&["EU"]), 1, 1).is_err());
        assert!(Plan::new(&regions(&["eu"]), MAX_PROBES_PER_REGION + 1, 1).is_err());
        assert!(Plan::new(&regions(&["eu"]), 1, 0).is_err());
        let max = Plan::new(&regions(&["eu"]), MAX_PROBES_PER_REGION, 1).unwrap();
        let last = max.hosts.iter().rfind(|h| h.site == "eu").unwrap();
        assert_eq!(last.addr, Ipv4Addr::new(198, 19, 128, 199));
    }
}
