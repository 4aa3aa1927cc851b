//! GeoIP databases for a run's address plan, for the coordinator's `[geoip]` table: an ASN
//! database mapping each region's block A to network A's AS and block B to network B's, and a City
//! database placing both blocks of a region where the built-in region catalog puts the region
//! (so the coordinator's "probe far from its region" check stays quiet), in the country the
//! test names. Written with [`crate::mmdb`]; no file from MaxMind is involved.
//!
//! A region missing from the catalog gets a country-only record (no location), and a region
//! the test names no country for gets `ZZ`, ISO 3166's code for an unknown country.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use meridian_shared::regions::{Catalog, RegionId};

use super::plan::Plan;
use crate::mmdb::{MmdbBuilder, asn_record, city_record, country_record};

/// Where [`write`] put the databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoIpFiles {
    /// `GeoLite2-City` database (`city.mmdb`).
    pub city: PathBuf,
    /// `GeoLite2-ASN` database (`asn.mmdb`).
    pub asn: PathBuf,
}

/// Writes `city.mmdb` and `asn.mmdb` for `plan` into `dir`; `countries` maps region ids to
/// ISO 3166-1 alpha-2 codes.
pub fn write(plan: &Plan, dir: &Path, countries: &[(&str, &str)]) -> anyhow::Result<GeoIpFiles> {
    let catalog = Catalog::builtin();
    let mut city = MmdbBuilder::new("GeoLite2-City");
    let mut asn = MmdbBuilder::new("GeoLite2-ASN");
    for block in &plan.blocks {
        let net = block.net.to_string();
        let country = countries
            .iter()
            .find(|(region, _)| *region == block.region)
            .map_or("ZZ", |(_, iso)| iso);
        let place = RegionId::parse(&block.region)
            .ok()
            .and_then(|id| catalog.get(&id).map(|r| (r.lat, r.lon)));
        let record = match place {
            Some((lat, lon)) => city_record(country, lat, lon),
            None => country_record(country),
        };
        city.insert(&net, &record);
        asn.insert(&net, &asn_record(block.asn, block.asn_name));
    }
    let files = GeoIpFiles {
        city: dir.join("city.mmdb"),
        asn: dir.join("asn.mmdb"),
    };
    city.write(&files.city)
        .with_context(|| format!("writing {}", files.city.display()))?;
    asn.write(&files.asn)
        .with_context(|| format!("writing {}", files.asn.display()))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realnet::plan::{ASN_A, ASN_B};
    use meridian_coordinator::geoip::GeoIp;

    #[test]
    fn the_coordinator_reads_each_probe_s_network_and_place() {
        let regions = ["eu-central".to_string(), "lab-1".to_string()];
        let plan = Plan::new(&regions, 2, 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = write(&plan, dir.path(), &[("eu-central", "DE")]).unwrap();
        let geoip = GeoIp::open(&files.city, Some(&files.asn)).unwrap();

        let frankfurt = Catalog::builtin()
            .get(&RegionId::parse("eu-central").unwrap())
            .map(|r| (r.lat, r.lon));
        for (host, asn) in plan
            .hosts
            .iter()
            .filter(|h| h.site == "eu-central")
            .zip([ASN_A, ASN_B])
        {
            let network = geoip.lookup(host.addr.into());
            assert_eq!(network.asn, Some(asn), "{host:?}");
            assert_eq!(network.country.as_deref(), Some("DE"));
            assert_eq!(network.location, frankfurt);
        }
        let lab = plan.hosts.iter().find(|h| h.site == "lab-1").unwrap();
        let network = geoip.lookup(lab.addr.into());
        assert_eq!(
            (network.asn, network.country.as_deref()),
            (Some(ASN_A), Some("ZZ"))
        );
        assert_eq!(network.location, None);
        // Service hosts are in no block.
        assert_eq!(
            geoip.lookup(plan.hosts.last().unwrap().addr.into()).asn,
            None
        );
    }
}
