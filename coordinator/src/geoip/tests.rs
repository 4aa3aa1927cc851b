//! GeoIP look-ups against small databases each test builds (`meridian_tests::mmdb`), the
//! distance rule, and operators' pins.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use meridian_shared::regions::{Catalog, RegionId};
use meridian_tests::mmdb::{MmdbBuilder, Value, asn_record, city_record, country_record};
use proptest::prelude::*;

use super::*;

const FRANKFURT: (f64, f64) = (50.11, 8.68);
const MANAMA: (f64, f64) = (26.22, 50.58);
/// Where MaxMind puts a US address it knows only the country of.
const US_FALLBACK: (f64, f64) = (37.751, -97.822);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two /24s in two countries and ASes, and an IPv6 block with a location but no AS.
struct Dbs {
    dir: tempfile::TempDir,
}

impl Dbs {
    fn new() -> Dbs {
        let dir = tempfile::tempdir().unwrap();
        MmdbBuilder::new("GeoLite2-City")
            .insert(
                "198.51.100.0/24",
                &city_record("DE", FRANKFURT.0, FRANKFURT.1),
            )
            .insert("203.0.113.0/24", &city_record("BH", MANAMA.0, MANAMA.1))
            .insert("2001:db8:1::/48", &city_record("JP", 35.68, 139.69))
            .write(&dir.path().join("city.mmdb"))
            .unwrap();
        MmdbBuilder::new("GeoLite2-ASN")
            .insert("198.51.100.0/24", &asn_record(64500, "Example Transit"))
            .insert("203.0.113.0/24", &asn_record(64501, "Gulf Example"))
            .write(&dir.path().join("asn.mmdb"))
            .unwrap();
        Dbs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn both(&self) -> GeoIp {
        GeoIp::open(&self.path("city.mmdb"), Some(&self.path("asn.mmdb"))).unwrap()
    }
}

fn frankfurt_net() -> Network {
    Network {
        asn: Some(64500),
        as_org: Some("Example Transit".into()),
        country: Some("DE".into()),
        location: Some(FRANKFURT),
    }
}

#[test]
fn two_blocks_give_two_networks() {
    let geo = Dbs::new().both();
    assert_eq!(geo.lookup(ip("198.51.100.7")), frankfurt_net());
    assert_eq!(
        geo.lookup(ip("203.0.113.250")),
        Network {
            asn: Some(64501),
            as_org: Some("Gulf Example".into()),
            country: Some("BH".into()),
            location: Some(MANAMA),
        }
    );
}

#[test]
fn addresses_outside_every_block_are_unknown() {
    let geo = Dbs::new().both();
    for addr in [
        "198.51.101.1",
        "192.0.2.1",
        "10.0.0.1",
        "2001:db8:2::1",
        "::1",
    ] {
        assert_eq!(geo.lookup(ip(addr)), Network::default(), "{addr}");
    }
}

#[test]
fn ipv4_mapped_addresses_are_looked_up_as_ipv4() {
    // The test databases do not alias ::ffff:0:0/96 (MaxMind's do): only the mapping finds it.
    let geo = Dbs::new().both();
    let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
    assert_eq!(mapped, ip("::ffff:198.51.100.7"));
    assert_eq!(geo.lookup(mapped), frankfurt_net());
}

#[test]
fn ipv6_addresses_are_looked_up_in_the_ipv6_tree() {
    let geo = Dbs::new().both();
    assert_eq!(
        geo.lookup(ip("2001:db8:1::42")),
        Network {
            country: Some("JP".into()),
            location: Some((35.68, 139.69)),
            ..Network::default()
        }
    );
}

#[test]
fn without_an_asn_database_the_as_is_unknown_unless_the_location_database_has_it() {
    let dbs = Dbs::new();
    let geo = GeoIp::open(&dbs.path("city.mmdb"), None).unwrap();
    assert_eq!(
        geo.lookup(ip("198.51.100.7")),
        Network {
            asn: None,
            as_org: None,
            ..frankfurt_net()
        }
    );
    assert!(
        geo.summary().ends_with("no ASN database"),
        "{}",
        geo.summary()
    );

    // Enterprise databases keep the AS under `traits`; other vendors' at the top level, and
    // some narrow it to a uint16 (which `maxminddb` refuses as a u32).
    let traits = Value::map([
        ("country", Value::map([("iso_code", Value::str("DE"))])),
        (
            "traits",
            Value::map([
                ("autonomous_system_number", Value::U32(64500)),
                (
                    "autonomous_system_organization",
                    Value::str("Example Transit"),
                ),
            ]),
        ),
    ]);
    let narrow = Value::map([
        ("country", Value::map([("iso_code", Value::str("BH"))])),
        ("autonomous_system_number", Value::U16(64501)),
    ]);
    let path = dbs.path("enterprise.mmdb");
    MmdbBuilder::new("GeoIP2-Enterprise")
        .insert("198.51.100.0/24", &traits)
        .insert("203.0.113.0/24", &narrow)
        .write(&path)
        .unwrap();
    let geo = GeoIp::open(&path, None).unwrap();
    assert_eq!(
        geo.lookup(ip("198.51.100.7")),
        Network {
            location: None,
            ..frankfurt_net()
        }
    );
    assert_eq!(geo.lookup(ip("203.0.113.1")).asn, Some(64501));

    // An ASN database that lacks the address leaves the location database's AS standing.
    let geo = GeoIp::open(&path, Some(&dbs.path("asn.mmdb"))).unwrap();
    assert_eq!(geo.lookup(ip("203.0.113.1")).asn, Some(64501));
}

#[test]
fn country_databases_and_registered_countries_give_a_country_without_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("country.mmdb");
    let registered_only = Value::map([(
        "registered_country",
        Value::map([("iso_code", Value::str("US"))]),
    )]);
    MmdbBuilder::new("GeoLite2-Country")
        .insert("198.51.100.0/24", &country_record("DE"))
        .insert("203.0.113.0/24", &registered_only)
        .write(&path)
        .unwrap();
    let geo = GeoIp::open(&path, None).unwrap();
    let de = geo.lookup(ip("198.51.100.1"));
    assert_eq!((de.country.as_deref(), de.location), (Some("DE"), None));
    assert_eq!(geo.lookup(ip("203.0.113.1")).country.as_deref(), Some("US"));
}

#[test]
fn records_of_an_unexpected_shape_and_ipv6_in_an_ipv4_database_read_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.mmdb");
    let odd = Value::map([("country", Value::str("DE"))]);
    MmdbBuilder::ipv4_only("Custom-Geo")
        .insert("198.51.100.0/24", &odd)
        .insert("203.0.113.0/24", &city_record("BH", MANAMA.0, MANAMA.1))
        .write(&path)
        .unwrap();
    let geo = GeoIp::open(&path, None).unwrap();
    assert_eq!(geo.lookup(ip("198.51.100.1")), Network::default());
    assert_eq!(geo.lookup(ip("2001:db8:1::1")), Network::default());
    assert_eq!(geo.lookup(ip("203.0.113.1")).country.as_deref(), Some("BH"));
}

#[test]
fn unreadable_corrupt_and_misplaced_databases_are_errors_naming_the_file() {
    let dbs = Dbs::new();
    let missing = dbs.path("nope.mmdb");
    let err = GeoIp::open(&missing, None).unwrap_err();
    assert!(matches!(err, GeoIpError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read the GeoIP database {}: ",
            missing.display()
        )),
        "{err}"
    );

    let garbage = dbs.path("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a MaxMind database at all").unwrap();
    let truncated = dbs.path("truncated.mmdb");
    let whole = std::fs::read(dbs.path("city.mmdb")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() - 40]).unwrap();
    for bad in [&garbage, &truncated] {
        let err = GeoIp::open(bad, None).unwrap_err();
        assert!(matches!(err, GeoIpError::Invalid { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(&format!(
                "{} is not a usable MaxMind DB (.mmdb) file: ",
                bad.display()
            )),
            "{err}"
        );
    }
    // A damaged ASN database fails the whole opening too.
    let err = GeoIp::open(&dbs.path("city.mmdb"), Some(&garbage)).unwrap_err();
    assert!(matches!(err, GeoIpError::Invalid { .. }), "{err:?}");

    let swapped = GeoIp::open(&dbs.path("asn.mmdb"), Some(&dbs.path("city.mmdb"))).unwrap_err();
    assert_eq!(
        swapped.to_string(),
        format!(
            "{} is a GeoLite2-ASN database, but `geoip.location` needs a City, Country or \
             Enterprise database",
            dbs.path("asn.mmdb").display()
        )
    );
    let city_as_asn = GeoIp::open(&dbs.path("city.mmdb"), Some(&dbs.path("city.mmdb")));
    assert!(city_as_asn.unwrap_err().to_string().ends_with(
        "is a GeoLite2-City database, but `geoip.asn` needs an ASN, ISP or Enterprise database"
    ));
}

#[test]
fn the_summary_names_each_database_and_its_build_date() {
    let dbs = Dbs::new();
    let geo = dbs.both();
    assert_eq!(
        geo.summary(),
        format!(
            "location: GeoLite2-City built 2026-01-01 ({}); asn: GeoLite2-ASN built 2026-01-01 ({})",
            dbs.path("city.mmdb").display(),
            dbs.path("asn.mmdb").display()
        )
    );
    assert_eq!(format!("{geo:?}"), geo.summary());
}

#[test]
fn distances_are_great_circles() {
    assert_eq!(distance_km(FRANKFURT, FRANKFURT), 0.0);
    let d = distance_km(FRANKFURT, MANAMA);
    assert!((4_400.0..4_500.0).contains(&d), "{d}");
    assert_eq!(d, distance_km(MANAMA, FRANKFURT));
    // Antipodes: half the circumference.
    let half = distance_km((0.0, 0.0), (0.0, 180.0));
    assert!(
        (half - std::f64::consts::PI * 6371.0).abs() < 1e-6,
        "{half}"
    );
}

#[test]
fn a_probe_far_from_its_region_is_flagged_and_one_nearby_is_not() {
    let catalog = Catalog::builtin();
    let region = |id: &str| catalog.get(&RegionId::parse(id).unwrap()).unwrap();
    let me_south = region("me-south");
    let at = |location| Network {
        location: Some(location),
        ..Network::default()
    };

    let km = far_from_region(&at(FRANKFURT), me_south).expect("Frankfurt is far from Bahrain");
    assert!(km > 4_000.0, "{km}");
    assert_eq!(far_from_region(&at(MANAMA), me_south), None);
    assert_eq!(far_from_region(&Network::default(), me_south), None);
    // GeoIP's usual imprecision is tolerated: Dubai for a Bahrain probe, and the US
    // country-level fallback in Kansas for a Northern California one.
    assert_eq!(far_from_region(&at((25.2, 55.27)), me_south), None);
    assert_eq!(far_from_region(&at(US_FALLBACK), region("us-west")), None);
    // Against the database: the Frankfurt block, for a probe enrolled in me-south.
    let geo = Dbs::new().both();
    assert!(far_from_region(&geo.lookup(ip("198.51.100.7")), me_south).is_some());
    assert!(far_from_region(&geo.lookup(ip("203.0.113.7")), me_south).is_none());
}

#[test]
fn pins_replace_the_database_in_pairs() {
    let found = frankfurt_net();
    let asn_pin = Network {
        asn: Some(65001),
        ..Network::default()
    };
    assert_eq!(
        found.clone().pinned(&asn_pin),
        Network {
            asn: Some(65001),
            as_org: None,
            ..frankfurt_net()
        }
    );
    let country_pin = Network {
        country: Some("BH".into()),
        ..Network::default()
    };
    assert_eq!(
        found.clone().pinned(&country_pin),
        Network {
            country: Some("BH".into()),
            location: None,
            ..frankfurt_net()
        }
    );
    assert_eq!(found.clone().pinned(&Network::default()), found);

    let geo = Dbs::new().both();
    let addr = ip("::ffff:198.51.100.7");
    assert_eq!(probe_network(Some(&geo), addr, None), frankfurt_net());
    assert_eq!(
        probe_network(Some(&geo), addr, Some(&asn_pin)).asn,
        Some(65001)
    );
    assert_eq!(probe_network(None, addr, Some(&asn_pin)), asn_pin);
    assert_eq!(probe_network(None, addr, None), Network::default());
}

/// One set of databases for every case: the readers hold the bytes, the files can go.
static SHARED: std::sync::LazyLock<GeoIp> = std::sync::LazyLock::new(|| Dbs::new().both());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lookups_never_panic_and_find_only_what_was_inserted(v4 in any::<u32>(), v6 in any::<u128>()) {
        let geo = &*SHARED;
        let v4 = Ipv4Addr::from(v4);
        let net = geo.lookup(IpAddr::V4(v4));
        let expected = match v4.octets() {
            [198, 51, 100, _] => Some("DE"),
            [203, 0, 113, _] => Some("BH"),
            _ => None,
        };
        prop_assert_eq!(net.country.as_deref(), expected);
        prop_assert_eq!(geo.lookup(IpAddr::V6(v4.to_ipv6_mapped())), net);
        let v6 = Ipv6Addr::from(v6);
        let in_block = v6.segments()[..3] == [0x2001, 0xdb8, 1];
        prop_assert_eq!(geo.lookup(IpAddr::V6(v6)).country.is_some(), in_block);
    }
}
