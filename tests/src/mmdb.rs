//! A small MaxMind DB (`.mmdb`) writer, so that GeoIP tests build their own databases instead
//! of shipping binary fixtures or real GeoLite2 files (whose licence and size we do not want in
//! the repository).
//!
//! It writes format 2.0 as documented at maxmind.github.io/MaxMind-DB: a binary search tree
//! with 24-bit records, the 16-byte separator, a data section of the types GeoIP2 databases
//! use (map, UTF-8 string, double, uint16, uint32, uint64, array, boolean), then the
//! `\xAB\xCD\xEFMaxMind.com` marker and the metadata map. Integers are written with the type
//! their [`Value`] variant names, never narrowed: the `maxminddb` crate refuses a uint16 where
//! GeoIP2 has a uint32 (such as `autonomous_system_number`), so a test database must use the
//! real types.
//!
//! Deliberately absent: pointers and deduplication in the data section, 28- and 32-bit records
//! (a test database has a few dozen nodes), and the `::ffff:0:0/96` alias MaxMind's own
//! databases carry for IPv4-mapped addresses: a lookup of `::ffff:a.b.c.d` here finds nothing,
//! so a test proves that the reader maps such addresses to IPv4 itself.
//!
//! ```
//! use meridian_tests::mmdb::{MmdbBuilder, asn_record, city_record};
//! let mut city = MmdbBuilder::new("GeoLite2-City");
//! city.insert("192.0.2.0/24", &city_record("DE", 50.11, 8.68));
//! let bytes: Vec<u8> = city.to_bytes();
//! let mut asn = MmdbBuilder::new("GeoLite2-ASN");
//! asn.insert("192.0.2.0/24", &asn_record(64500, "Example Networks"));
//! # let _ = (bytes, asn.to_bytes());
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// A value in the data section, by MMDB type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// UTF-8 string (type 2).
    String(String),
    /// IEEE 754 double (type 3): GeoIP2's coordinates.
    Double(f64),
    /// Unsigned 16-bit integer (type 5): `accuracy_radius`, `metro_code`.
    U16(u16),
    /// Unsigned 32-bit integer (type 6): `geoname_id`, `autonomous_system_number`.
    U32(u32),
    /// Unsigned 64-bit integer (type 9).
    U64(u64),
    /// Boolean (type 14): `is_in_european_union`, `is_anycast`.
    Bool(bool),
    /// Array (type 11).
    Array(Vec<Value>),
    /// Map with string keys (type 7), written in key order.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// A map from `(key, value)` pairs.
    pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

/// A GeoIP2 City record: `country.iso_code` (and its English name) and `location` with
/// `latitude`, `longitude` and an `accuracy_radius` of 20 km.
pub fn city_record(iso_code: &str, lat: f64, lon: f64) -> Value {
    Value::map([
        ("country", country(iso_code)),
        (
            "location",
            Value::map([
                ("accuracy_radius", Value::U16(20)),
                ("latitude", Value::Double(lat)),
                ("longitude", Value::Double(lon)),
            ]),
        ),
    ])
}

/// A GeoIP2 Country record: `country.iso_code` and its English name, no location.
pub fn country_record(iso_code: &str) -> Value {
    Value::map([("country", country(iso_code))])
}

/// A GeoLite2-ASN record: `autonomous_system_number` (uint32, as MaxMind writes it) and
/// `autonomous_system_organization`.
pub fn asn_record(asn: u32, organization: &str) -> Value {
    Value::map([
        ("autonomous_system_number", Value::U32(asn)),
        ("autonomous_system_organization", Value::str(organization)),
    ])
}

fn country(iso_code: &str) -> Value {
    Value::map([
        ("geoname_id", Value::U32(1)),
        ("iso_code", Value::str(iso_code)),
        ("names", Value::map([("en", Value::str(iso_code))])),
    ])
}

/// A record of the search tree: where one branch of a node leads.
#[derive(Debug, Clone, Copy)]
enum Record {
    /// No data for the addresses below.
    Empty,
    /// Another node (index).
    Node(usize),
    /// Data at this offset in the data section.
    Data(usize),
}

/// Builds one database in memory. IPv6 trees (as GeoLite2 ships) put IPv4 networks under
/// `::/96`, where readers look for them; [`MmdbBuilder::ipv4_only`] builds an IPv4 tree.
#[derive(Debug, Clone)]
pub struct MmdbBuilder {
    /// The metadata's `database_type`, such as `GeoLite2-City`.
    database_type: String,
    /// 4 or 6.
    ip_version: u16,
    /// The search tree; node 0 is the root.
    nodes: Vec<[Record; 2]>,
    /// The data section, each inserted value encoded once.
    data: Vec<u8>,
}

/// The metadata's `build_epoch`: 2026-01-01T00:00:00Z, fixed so that bytes are reproducible.
pub const BUILD_EPOCH: u64 = 1_767_225_600;

const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
const SEPARATOR: usize = 16;
const RECORD_MAX: usize = (1 << 24) - 1;

impl MmdbBuilder {
    /// An empty IPv6 database of this `database_type`.
    pub fn new(database_type: &str) -> MmdbBuilder {
        MmdbBuilder {
            database_type: database_type.to_string(),
            ip_version: 6,
            nodes: vec![[Record::Empty; 2]],
            data: Vec::new(),
        }
    }

    /// An empty IPv4-only database: looking an IPv6 address up in it is an error.
    pub fn ipv4_only(database_type: &str) -> MmdbBuilder {
        MmdbBuilder {
            ip_version: 4,
            ..MmdbBuilder::new(database_type)
        }
    }

    /// Maps every address of `network` ("192.0.2.0/24", "2001:db8::/32") to `value`. A later
    /// insert wins over an earlier one where they overlap, so insert wide networks first.
    ///
    /// # Panics
    /// On a malformed network, a /0, or an IPv6 network in an IPv4 database: test input.
    pub fn insert(&mut self, network: &str, value: &Value) -> &mut MmdbBuilder {
        let (addr, len) = network
            .split_once('/')
            .and_then(|(a, l)| Some((a.parse::<IpAddr>().ok()?, l.parse::<u32>().ok()?)))
            .unwrap_or_else(|| panic!("{network:?} is not an address/prefix-length"));
        let (bits, width, len) = match (addr, self.ip_version) {
            (IpAddr::V4(v4), 4) => (u128::from(u32::from(v4)) << 96, 32, len),
            (IpAddr::V4(v4), _) => (u128::from(u32::from(v4)), 128, 96 + len),
            (IpAddr::V6(v6), 6) => (u128::from(v6), 128, len),
            (IpAddr::V6(_), _) => panic!("{network}: an IPv4 database holds no IPv6 network"),
        };
        assert!(
            (1..=width).contains(&len),
            "{network}: prefix length out of range"
        );
        let offset = self.data.len();
        encode(value, &mut self.data);
        // In an IPv4 tree the address was shifted to the top, so bit i is always bit 127 - i.
        let bit = |i: u32| usize::from((bits >> (127 - i)) & 1 == 1);
        let mut node = 0;
        for i in 0..len - 1 {
            let b = bit(i);
            node = match self.nodes[node][b] {
                Record::Node(next) => next,
                below @ (Record::Empty | Record::Data(_)) => {
                    // A wider network's data is pushed down to both halves.
                    self.nodes.push([below; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][b] = Record::Node(next);
                    next
                }
            };
        }
        self.nodes[node][bit(len - 1)] = Record::Data(offset);
        self
    }

    /// The database file's bytes.
    ///
    /// # Panics
    /// When the tree and data outgrow 24-bit records (millions of nodes: not a test database).
    pub fn to_bytes(&self) -> Vec<u8> {
        let node_count = self.nodes.len();
        assert!(
            node_count + SEPARATOR + self.data.len() <= RECORD_MAX,
            "too large for 24-bit records"
        );
        let record = |r: Record| match r {
            Record::Empty => node_count,
            Record::Node(n) => n,
            Record::Data(offset) => node_count + SEPARATOR + offset,
        };
        let mut out = Vec::with_capacity(node_count * 6 + SEPARATOR + self.data.len() + 256);
        for [left, right] in &self.nodes {
            for r in [left, right] {
                out.extend_from_slice(&record(*r).to_be_bytes()[5..]);
            }
        }
        out.extend_from_slice(&[0; SEPARATOR]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(METADATA_MARKER);
        let node_count = u32::try_from(node_count).expect("node count checked against 2^24");
        let metadata = Value::map([
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(BUILD_EPOCH)),
            ("database_type", Value::str(&self.database_type)),
            (
                "description",
                Value::map([("en", Value::str("Meridian test database"))]),
            ),
            ("ip_version", Value::U16(self.ip_version)),
            ("languages", Value::Array(vec![Value::str("en")])),
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U16(24)),
        ]);
        encode(&metadata, &mut out);
        out
    }

    /// Writes the database to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }
}

/// Appends one value in the data-section encoding.
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Double(d) => {
            control(3, 8, out);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::U16(v) => unsigned(5, &v.to_be_bytes(), out),
        Value::U32(v) => unsigned(6, &v.to_be_bytes(), out),
        Value::U64(v) => unsigned(9, &v.to_be_bytes(), out),
        // A boolean's value is its size; it has no payload.
        Value::Bool(b) => control(14, usize::from(*b), out),
        Value::Array(items) => {
            control(11, items.len(), out);
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(entries) => {
            control(7, entries.len(), out);
            for (key, v) in entries {
                encode(&Value::String(key.clone()), out);
                encode(v, out);
            }
        }
    }
}

/// An unsigned integer: its big-endian bytes without leading zeros, the count as its size.
fn unsigned(type_id: u8, be: &[u8], out: &mut Vec<u8>) {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    control(type_id, be.len() - start, out);
    out.extend_from_slice(&be[start..]);
}

/// The control byte (type in the top 3 bits, size in the low 5), then the extended type byte
/// for types above 7, then the size's extra bytes for sizes of 29 and more.
fn control(type_id: u8, size: usize, out: &mut Vec<u8>) {
    let (head, extended) = if type_id <= 7 {
        (type_id << 5, None)
    } else {
        (0, Some(type_id - 7))
    };
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, Vec::new()),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => {
            let rest = u32::try_from(size - 65_821).expect("a test value under 16 MB");
            (31, rest.to_be_bytes()[1..].to_vec())
        }
    };
    out.push(head | size_bits);
    out.extend(extended);
    out.extend(extra);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_documented_extensions() {
        let mut out = Vec::new();
        control(2, 28, &mut out);
        control(2, 29, &mut out);
        control(2, 300, &mut out);
        control(14, 1, &mut out);
        assert_eq!(
            out,
            [0x5c, 0x5d, 0x00, 0x5e, 0x00, 0x0f, 0x01, 0x07],
            "28 inline; 29 → 29+0; 300 → 30+(300-285); bool true: extended type 7, size 1"
        );
    }

    #[test]
    fn integers_drop_leading_zero_bytes_but_keep_their_type() {
        let mut out = Vec::new();
        encode(&Value::U32(64500), &mut out);
        encode(&Value::U16(0), &mut out);
        assert_eq!(out, [0xc2, 0xfb, 0xf4, 0xa0]);
    }
}
