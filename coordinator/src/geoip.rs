//! Which network a probe is on, from GeoIP2/GeoLite2 databases: its autonomous system (what
//! detection's quorums count as independent networks), its country, and where its address
//! geolocates, which flags a probe far from the region it was enrolled into.
//!
//! [`GeoIp::open`] reads a City or Country database and an optional ASN (or ISP) database
//! once, into memory; [`GeoIp::lookup`] is then a pure, infallible look-up of the address the
//! coordinator sees (IPv4-mapped IPv6 addresses, as a dual-stack socket reports IPv4 peers,
//! are looked up as IPv4). An operator's pins in `coordinator.toml` (`[probes."ID"]`) win over
//! the database: [`probe_network`] applies them.
//!
//! Deliberately absent: reloading an updated database (a restart picks it up), names of
//! cities and organisations in other languages, and any network I/O: the databases are files
//! that geoipupdate (or the operator) keeps current.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Reader};
use meridian_shared::regions::Region;
use serde::Deserialize;

#[cfg(test)]
mod tests;

/// A probe's network as far as the coordinator knows it; unknown parts are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Network {
    /// Autonomous system number: the "independent network" quorums count.
    pub asn: Option<u32>,
    /// The autonomous system's organisation, for people ("Amazon.com, Inc.").
    pub as_org: Option<String>,
    /// ISO 3166-1 alpha-2 country code, such as `DE`.
    pub country: Option<String>,
    /// Where the address geolocates, (latitude, longitude) in degrees.
    pub location: Option<(f64, f64)>,
}

impl Network {
    /// This network with an operator's pin on top. The pin replaces fields in pairs, so that a
    /// pinned ASN never shows the database's organisation name for another AS, and a pinned
    /// country never keeps coordinates the operator has just overruled: `asn` replaces `asn`
    /// and `as_org`; `country` replaces `country` and `location`.
    pub fn pinned(self, pin: &Network) -> Network {
        let (asn, as_org) = match pin.asn {
            Some(_) => (pin.asn, pin.as_org.clone()),
            None => (self.asn, self.as_org),
        };
        let (country, location) = match &pin.country {
            Some(_) => (pin.country.clone(), pin.location),
            None => (self.country, self.location),
        };
        Network {
            asn,
            as_org,
            country,
            location,
        }
    }
}

/// A probe's network: the database's view of `addr` (nothing without a database), with the
/// operator's pin, if any, on top (see [`Network::pinned`]).
pub fn probe_network(geoip: Option<&GeoIp>, addr: IpAddr, pin: Option<&Network>) -> Network {
    let found = geoip.map(|g| g.lookup(addr)).unwrap_or_default();
    match pin {
        Some(pin) => found.pinned(pin),
        None => found,
    }
}

/// How far from its region's coordinates a probe's address may geolocate before it is flagged.
///
/// GeoIP places cloud and hosting ranges coarsely: a city hundreds of kilometres off is common,
/// and an address MaxMind only knows the country of sits at a fixed point for that country (the
/// United States' is in Kansas: 2,100 km from Northern California, the Pacific Northwest and
/// Montreal, 1,800 km from Virginia). A probe enrolled into the wrong part of the world, or
/// leaving through a tunnel abroad, is thousands of kilometres off: Bahrain to Frankfurt is
/// 4,450 km, Virginia to Frankfurt 6,550, Singapore to Mumbai 3,900, Tokyo to Singapore 5,300.
/// 2,500 km lies between the two, so the flag means "another part of the world", never "GeoIP
/// was imprecise". It does not tell neighbours apart (Frankfurt and London, 640 km; Bahrain and
/// Dubai, 480; Bahrain and Mumbai, 2,400): GeoIP cannot, for cloud addresses.
pub const FAR_FROM_REGION_KM: f64 = 2_500.0;

/// Mean Earth radius, km; the simulator's great circles use the same.
const EARTH_KM: f64 = 6371.0;

/// Great-circle (haversine) distance between two (latitude, longitude) points in degrees, km.
pub fn distance_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().min(1.0).asin()
}

/// The flag rule: `Some(km)` when the network's location is more than [`FAR_FROM_REGION_KM`]
/// from the region's coordinates; `None` when it is within, or the location is unknown.
pub fn far_from_region(net: &Network, region: &Region) -> Option<f64> {
    let km = distance_km(net.location?, (region.lat, region.lon));
    (km > FAR_FROM_REGION_KM).then_some(km)
}

/// Why the GeoIP databases cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoIpError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read the GeoIP database {}: {source}", path.display())]
    Read {
        /// The database's path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a MaxMind DB, or a damaged one (truncated, bad metadata).
    #[error("{} is not a usable MaxMind DB (.mmdb) file: {source}", path.display())]
    Invalid {
        /// The database's path.
        path: PathBuf,
        /// What the reader found wrong.
        #[source]
        source: MaxMindDbError,
    },
    /// A MaxMind database of the wrong kind for its place, such as the ASN database given as
    /// `location`.
    #[error(
        "{} is a {database_type} database, but `geoip.{role}` needs {needs}",
        path.display()
    )]
    WrongKind {
        /// The database's path.
        path: PathBuf,
        /// The `database_type` its metadata names.
        database_type: String,
        /// `location` or `asn`.
        role: &'static str,
        /// What would do, in words.
        needs: &'static str,
    },
}

/// One open database.
struct Db {
    /// Where it was read from, for messages.
    path: PathBuf,
    /// The whole file, in memory.
    reader: Reader<Vec<u8>>,
}

impl Db {
    /// Reads a database, checking its kind when its type is one of MaxMind's.
    fn open(
        path: &Path,
        role: &'static str,
        kinds: &[&str],
        needs: &'static str,
    ) -> Result<Db, GeoIpError> {
        let bytes = std::fs::read(path).map_err(|source| GeoIpError::Read {
            path: path.to_owned(),
            source,
        })?;
        let reader = Reader::from_source(bytes).map_err(|source| GeoIpError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        // MaxMind's own databases say what they are; other vendors' and custom databases
        // name themselves freely, so they are taken at their word.
        let database_type = &reader.metadata().database_type;
        let maxmind =
            database_type.starts_with("GeoIP2-") || database_type.starts_with("GeoLite2-");
        if maxmind && !kinds.iter().any(|k| database_type.contains(k)) {
            return Err(GeoIpError::WrongKind {
                path: path.to_owned(),
                database_type: database_type.clone(),
                role,
                needs,
            });
        }
        Ok(Db {
            path: path.to_owned(),
            reader,
        })
    }

    /// The record for `ip`; `None` when there is none or it cannot be decoded (logged).
    fn record(&self, ip: IpAddr) -> Option<Record> {
        let found = self
            .reader
            .lookup(ip)
            .and_then(|r| r.decode::<Record>())
            .inspect_err(|error| {
                tracing::debug!(%ip, db = %self.path.display(), %error, "GeoIP record unreadable");
            });
        found.ok().flatten()
    }

    /// "GeoLite2-City built 2026-01-01 (/var/lib/GeoIP/GeoLite2-City.mmdb)".
    fn describe(&self) -> String {
        let meta = self.reader.metadata();
        let built = i64::try_from(meta.build_epoch)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .map_or_else(
                || "at an unknown date".to_string(),
                |t| format!("{}", t.date()),
            );
        format!(
            "{} built {built} ({})",
            meta.database_type,
            self.path.display()
        )
    }
}

/// The open GeoIP databases: one for location, one (optional) for ASNs. Shareable across
/// threads (`Arc<GeoIp>`); look-ups take `&self`.
pub struct GeoIp {
    /// City or Country database: country, location, and ASN when it carries one.
    location: Db,
    /// ASN or ISP database: the autonomous system, preferred over the location database's.
    asn: Option<Db>,
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not derived: that would print both databases byte by byte.
        f.write_str(&self.summary())
    }
}

impl GeoIp {
    /// Opens the databases. `location` is a GeoIP2/GeoLite2 City or Country database (or
    /// Enterprise); `asn` an optional ASN database (GeoLite2-ASN, GeoIP2-ISP). Without it, ASN
    /// fields are read from the location database when it has them (Enterprise, and many
    /// non-MaxMind databases).
    pub fn open(location: &Path, asn: Option<&Path>) -> Result<GeoIp, GeoIpError> {
        let location = Db::open(
            location,
            "location",
            &["City", "Country", "Enterprise"],
            "a City, Country or Enterprise database",
        )?;
        let asn = asn
            .map(|p| {
                Db::open(
                    p,
                    "asn",
                    &["ASN", "ISP", "Enterprise"],
                    "an ASN, ISP or Enterprise database",
                )
            })
            .transpose()?;
        Ok(GeoIp { location, asn })
    }

    /// What the address's network is, as far as the databases know. Never fails: an address
    /// they do not cover, or a record of an unexpected shape, leaves fields `None`.
    pub fn lookup(&self, ip: IpAddr) -> Network {
        let ip = ip.to_canonical();
        let place = self.location.record(ip).unwrap_or_default();
        let (asn, as_org) = self
            .asn
            .as_ref()
            .and_then(|db| db.record(ip))
            .and_then(|r| r.autonomous_system())
            .or_else(|| place.autonomous_system())
            .unwrap_or_default();
        let country = place
            .country
            .and_then(|c| c.iso_code)
            .or_else(|| place.registered_country.and_then(|c| c.iso_code));
        let location = place
            .location
            .and_then(|l| match (l.latitude, l.longitude) {
                (Some(Float(lat)), Some(Float(lon))) => Some((lat, lon)),
                _ => None,
            });
        Network {
            asn,
            as_org,
            country,
            location,
        }
    }

    /// Each database with its type and build date, on one line: for `coordinator validate` and
    /// the start-up log (a database months old places addresses by stale data).
    pub fn summary(&self) -> String {
        match &self.asn {
            Some(asn) => format!(
                "location: {}; asn: {}",
                self.location.describe(),
                asn.describe()
            ),
            None => format!("location: {}; no ASN database", self.location.describe()),
        }
    }
}

/// The parts of a GeoIP2 record Meridian reads: City, Country and Enterprise records
/// (`country`, `registered_country`, `location`, `traits`) and ASN/ISP records (top-level
/// `autonomous_system_*`). Everything else in the record is skipped.
#[derive(Debug, Clone, Default, Deserialize)]
struct Record {
    country: Option<Place>,
    /// Where the block is registered; stands in when `country` is missing (often so for
    /// anycast and cloud ranges).
    registered_country: Option<Place>,
    location: Option<Location>,
    autonomous_system_number: Option<Unsigned>,
    autonomous_system_organization: Option<String>,
    /// Enterprise databases keep the AS here.
    traits: Option<Traits>,
}

impl Record {
    /// The record's AS number and organisation, top-level first; `None` without a number.
    fn autonomous_system(&self) -> Option<(Option<u32>, Option<String>)> {
        let (number, org) = match (&self.autonomous_system_number, &self.traits) {
            (Some(n), _) => (n, &self.autonomous_system_organization),
            (None, Some(t)) => (
                t.autonomous_system_number.as_ref()?,
                &t.autonomous_system_organization,
            ),
            (None, None) => return None,
        };
        Some((u32::try_from(number.0).ok(), org.clone()))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Place {
    iso_code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Location {
    latitude: Option<Float>,
    longitude: Option<Float>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Traits {
    autonomous_system_number: Option<Unsigned>,
    autonomous_system_organization: Option<String>,
}

/// An unsigned integer of any MMDB width. MaxMind writes AS numbers as uint32, but databases
/// built with other tools often narrow small values to uint16, which `maxminddb` refuses as a
/// `u32`; accepting every width keeps such an AS from silently reading as unknown.
#[derive(Debug, Clone, Copy)]
struct Unsigned(u64);

impl<'de> Deserialize<'de> for Unsigned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Unsigned, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Unsigned;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Unsigned, E> {
                Ok(Unsigned(v))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Unsigned, E> {
                u64::try_from(v)
                    .map(Unsigned)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Unsigned, E> {
                u64::try_from(v)
                    .map(Unsigned)
                    .map_err(|_| E::custom("negative integer"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A coordinate written as a double (as MaxMind does), a float, or an integer.
#[derive(Debug, Clone, Copy)]
struct Float(f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Float, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}
