//! The region catalog: which places probes run in, what members call them, where they are on
//! the map, and which long-haul corridors their traffic shares.
//!
//! The catalog is the repository's `regions.toml`, embedded at build time ([`Catalog::builtin`])
//! or read from disk ([`Catalog::load`]). Reading is split from a pure [`Catalog::from_source`];
//! validation collects every problem (duplicate ids, bad coordinates, undeclared or unused
//! corridors, ...) with its `file:line:column: field` before failing, the way every Meridian
//! config file is checked.
//!
//! Bad-catalog fixtures live in `shared/testdata/regions/invalid-*.toml`, each next to the exact
//! message it must produce (`invalid-*.expected`); the tests below run every one.
//!
//! Deliberately absent: anything that measures or infers. Whether a corridor is degraded is the
//! detection engine's business; this module only says who sits behind which corridor.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

use crate::config::{ConfigError, Issues, SourceFile};

/// The repository's catalog, compiled into every binary so a probe or coordinator needs no
/// extra file to start.
const BUILTIN_TOML: &str = include_str!("../../regions.toml");

/// The name the embedded catalog is reported under in error messages.
const BUILTIN_NAME: &str = "regions.toml";

/// A region's stable handle, such as `me-south`: used in probe configs, on the wire and as a
/// storage key, never shown to members (they see [`Region::name`]).
///
/// Always valid: 2 to 32 characters, lowercase ASCII letters, digits and `-`, starting with a
/// letter. It serializes as a plain string, and deserializing checks the same rules as
/// [`RegionId::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionId(String);

impl RegionId {
    /// Shortest valid id, in characters.
    pub const MIN_LEN: usize = 2;
    /// Longest valid id, in characters: long enough for `ap-southeast-12`, short enough for a
    /// metric label and a map tooltip.
    pub const MAX_LEN: usize = 32;

    /// Checks `s` against the id rules.
    pub fn parse(s: &str) -> Result<RegionId, InvalidRegionId> {
        check_handle(s).map_err(|reason| InvalidRegionId {
            id: s.to_string(),
            reason,
        })?;
        Ok(RegionId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RegionId {
    type Err = InvalidRegionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionId::parse(s)
    }
}

impl AsRef<str> for RegionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by [`RegionId`] be queried with a `&str`; ordering and hashing are those
/// of the underlying string, as `Borrow` requires.
impl Borrow<str> for RegionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for RegionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RegionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        RegionId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A string that is not a valid [`RegionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region id {id:?} {reason}")]
pub struct InvalidRegionId {
    /// The rejected text.
    pub id: String,
    /// Which rule it breaks.
    pub reason: HandleError,
}

/// Which rule a region id or corridor name breaks. Both follow the same syntax, so that either
/// can appear in a URL, a metric label or a TOML key without quoting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Shorter than [`RegionId::MIN_LEN`] or longer than [`RegionId::MAX_LEN`] characters.
    #[error("must be 2 to 32 characters long, not {0}")]
    Length(usize),
    /// The first character is not a lowercase ASCII letter.
    #[error("must start with a lowercase ASCII letter")]
    Start,
    /// A character other than a lowercase ASCII letter, a digit or `-`.
    #[error("contains {0:?}; only lowercase ASCII letters, digits and '-' are allowed")]
    Character(char),
}

fn check_handle(s: &str) -> Result<(), HandleError> {
    let len = s.chars().count();
    if !(RegionId::MIN_LEN..=RegionId::MAX_LEN).contains(&len) {
        return Err(HandleError::Length(len));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(HandleError::Start);
    }
    match s
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        Some(c) => Err(HandleError::Character(c)),
        None => Ok(()),
    }
}

/// The nine areas regions are grouped into on the map and in summaries. Finer than the usual
/// seven continents because connectivity differs more between, say, South and East Asia than
/// between two European countries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Continent {
    /// The United States, Canada and Mexico.
    NorthAmerica,
    /// South America.
    SouthAmerica,
    /// Europe, including the British Isles and the Nordics.
    Europe,
    /// The Gulf, the Arabian Peninsula and the Levant.
    MiddleEast,
    /// Africa, including Egypt.
    Africa,
    /// India and its neighbours.
    SouthAsia,
    /// Singapore, Indonesia, Thailand, the Philippines and their neighbours.
    SouthEastAsia,
    /// Japan, Korea, Hong Kong, Taiwan and mainland China.
    EastAsia,
    /// Australia, New Zealand and the Pacific islands.
    Oceania,
}

impl Continent {
    /// Every continent, in the order they are declared (roughly west to east).
    pub const ALL: [Continent; 9] = [
        Continent::NorthAmerica,
        Continent::SouthAmerica,
        Continent::Europe,
        Continent::MiddleEast,
        Continent::Africa,
        Continent::SouthAsia,
        Continent::SouthEastAsia,
        Continent::EastAsia,
        Continent::Oceania,
    ];

    /// The kebab-case name used in TOML and on the wire, such as `middle-east`; also what
    /// `Display` prints.
    pub fn as_str(&self) -> &'static str {
        match self {
            Continent::NorthAmerica => "north-america",
            Continent::SouthAmerica => "south-america",
            Continent::Europe => "europe",
            Continent::MiddleEast => "middle-east",
            Continent::Africa => "africa",
            Continent::SouthAsia => "south-asia",
            Continent::SouthEastAsia => "south-east-asia",
            Continent::EastAsia => "east-asia",
            Continent::Oceania => "oceania",
        }
    }

    /// The member-facing phrase, written to fit "members in NAME": `the Middle East`,
    /// `South-East Asia`.
    pub fn name(&self) -> &'static str {
        match self {
            Continent::NorthAmerica => "North America",
            Continent::SouthAmerica => "South America",
            Continent::Europe => "Europe",
            Continent::MiddleEast => "the Middle East",
            Continent::Africa => "Africa",
            Continent::SouthAsia => "South Asia",
            Continent::SouthEastAsia => "South-East Asia",
            Continent::EastAsia => "East Asia",
            Continent::Oceania => "Oceania",
        }
    }
}

impl fmt::Display for Continent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One place probes run in, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Region {
    /// Stable handle, unique within the catalog.
    pub id: RegionId,
    /// What members call the place, written to fit "members in NAME may see slow pages";
    /// non-empty and unique within the catalog.
    pub name: String,
    /// Latitude of the region's data centres, decimal degrees, north positive, in -90..=90.
    pub lat: f64,
    /// Longitude of the region's data centres, decimal degrees, east positive, in -180..=180.
    pub lon: f64,
    /// The area it is grouped under on the map and in summaries.
    pub continent: Continent,
    /// The long-haul corridors its traffic to the rest of the world depends on, in file order;
    /// each is declared in the catalog's `[corridors]` table.
    pub corridors: Vec<String>,
}

/// The validated region catalog.
///
/// Invariants, checked on construction: at least one region; ids and names unique; coordinates
/// in range; every region's corridors declared; every declared corridor has a member.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Regions in file order, which is the order summaries list them in.
    regions: Vec<Region>,
    /// Position of each region in `regions`.
    index: HashMap<RegionId, usize>,
    /// Corridor name → description.
    corridors: BTreeMap<String, String>,
}

impl Catalog {
    /// The catalog in the repository's `regions.toml`, embedded at build time and reported
    /// as `regions.toml` in messages.
    ///
    /// # Panics
    ///
    /// Never in a tested build: the test `builtin_catalog_is_valid` parses the same text.
    pub fn builtin() -> Catalog {
        let src = SourceFile::new(BUILTIN_NAME, BUILTIN_TOML);
        Catalog::from_source(&src).expect(
            "the embedded regions.toml is valid: the `builtin_catalog_is_valid` test parses it",
        )
    }

    /// Reads and validates a catalog file.
    pub fn load(path: &Path) -> Result<Catalog, ConfigError> {
        Catalog::from_source(&SourceFile::read(path)?)
    }

    /// Parses and validates catalog text, reporting every problem at once.
    pub fn from_source(src: &SourceFile) -> Result<Catalog, ConfigError> {
        let raw = src.parse::<RawCatalog>()?;
        validate(src, raw)
    }

    /// Every region, in file order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The region with this id, if the catalog has one.
    pub fn get(&self, id: &RegionId) -> Option<&Region> {
        self.index.get(id).map(|&i| &self.regions[i])
    }

    /// The region with this id given as text (from a URL, a stored record), if any.
    pub fn by_id(&self, id: &str) -> Option<&Region> {
        self.index.get(id).map(|&i| &self.regions[i])
    }

    /// Corridor name → description, sorted by name.
    pub fn corridors(&self) -> &BTreeMap<String, String> {
        &self.corridors
    }

    /// The regions tagged with `corridor`, in file order; empty for an undeclared corridor.
    pub fn members_of<'a>(&'a self, corridor: &'a str) -> impl Iterator<Item = &'a Region> + 'a {
        self.regions
            .iter()
            .filter(move |r| r.corridors.iter().any(|c| c == corridor))
    }

    /// How many regions there are.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// Whether there are none; never true for a validated catalog, provided for symmetry
    /// with [`Catalog::len`].
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

/// `regions.toml` as written, with spans kept for the values semantic checks look at.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    corridors: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    region: Vec<RawRegion>,
}

/// One `[[region]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    id: Spanned<String>,
    name: Spanned<String>,
    lat: Spanned<f64>,
    lon: Spanned<f64>,
    continent: Continent,
    #[serde(default)]
    corridors: Vec<Spanned<String>>,
}

/// Turns the raw file into a [`Catalog`], recording every semantic problem in `src`'s terms.
fn validate(src: &SourceFile, raw: RawCatalog) -> Result<Catalog, ConfigError> {
    let mut issues = Issues::default();

    let mut corridors = BTreeMap::new();
    for (name, description) in &raw.corridors {
        let field = format!("corridors.{}", name.get_ref());
        if let Err(e) = check_handle(name.get_ref()) {
            let message = format!("corridor name {:?} {e}", name.get_ref());
            issues.push(src.issue(name.span(), field.as_str(), message));
        }
        if description.get_ref().trim().is_empty() {
            let message = "description must not be empty; say which paths the corridor covers";
            issues.push(src.issue(description.span(), field, message));
        }
        corridors.insert(name.get_ref().clone(), description.get_ref().clone());
    }

    if raw.region.is_empty() {
        let message = "the catalog has no regions; add at least one [[region]] table";
        issues.push(src.issue(0..0, "region", message));
    }

    // Line of each id and name's first occurrence, for messages about a second one.
    let mut id_lines: HashMap<&str, usize> = HashMap::new();
    let mut name_lines: HashMap<&str, usize> = HashMap::new();
    let mut used_corridors: BTreeSet<&str> = BTreeSet::new();
    let mut regions = Vec::with_capacity(raw.region.len());
    for (i, r) in raw.region.iter().enumerate() {
        let at = |field: &str| format!("region[{i}].{field}");

        let id = match RegionId::parse(r.id.get_ref()) {
            Ok(id) => Some(id),
            Err(e) => {
                issues.push(src.issue(r.id.span(), at("id"), e.to_string()));
                None
            }
        };
        if let Some(first) = first_line(&mut id_lines, src, &r.id) {
            let message = format!(
                "duplicate region id {:?}; first defined on line {first}",
                r.id.get_ref()
            );
            issues.push(src.issue(r.id.span(), at("id"), message));
        }

        let name = r.name.get_ref();
        if name.trim().is_empty() {
            let message = "must not be empty; write what members call the place";
            issues.push(src.issue(r.name.span(), at("name"), message));
        } else if let Some(first) = first_line(&mut name_lines, src, &r.name) {
            let message = format!(
                "duplicate region name {name:?}; first used on line {first}, and members \
                 could not tell the two apart"
            );
            issues.push(src.issue(r.name.span(), at("name"), message));
        }

        check_degrees(src, &mut issues, &r.lat, at("lat"), "latitude", 90.0);
        check_degrees(src, &mut issues, &r.lon, at("lon"), "longitude", 180.0);

        let mut seen = BTreeSet::new();
        for (j, c) in r.corridors.iter().enumerate() {
            let field = at(&format!("corridors[{j}]"));
            let name = c.get_ref().as_str();
            if !corridors.contains_key(name) {
                let message = format!("corridor {name:?} is not declared in [corridors]");
                issues.push(src.issue(c.span(), field, message));
            } else if !seen.insert(name) {
                let message = format!("corridor {name:?} is listed twice");
                issues.push(src.issue(c.span(), field, message));
            }
            used_corridors.insert(name);
        }

        if let Some(id) = id {
            regions.push(Region {
                id,
                name: name.clone(),
                lat: *r.lat.get_ref(),
                lon: *r.lon.get_ref(),
                continent: r.continent,
                corridors: r.corridors.iter().map(|c| c.get_ref().clone()).collect(),
            });
        }
    }

    // With no regions at all every corridor is unused, and the "no regions" issue says it all.
    for name in raw.corridors.keys() {
        if !raw.region.is_empty() && !used_corridors.contains(name.get_ref().as_str()) {
            let message = format!(
                "corridor {:?} has no member regions; tag at least one region with it or remove it",
                name.get_ref()
            );
            let field = format!("corridors.{}", name.get_ref());
            issues.push(src.issue(name.span(), field, message));
        }
    }

    let index = regions
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    issues.finish(Catalog {
        regions,
        index,
        corridors,
    })
}

/// The line `value` was first seen on, if an equal value was seen before; otherwise records
/// this one's line and returns `None`.
fn first_line<'a>(
    seen: &mut HashMap<&'a str, usize>,
    src: &SourceFile,
    value: &'a Spanned<String>,
) -> Option<usize> {
    match seen.entry(value.get_ref().as_str()) {
        Entry::Occupied(first) => Some(*first.get()),
        Entry::Vacant(slot) => {
            slot.insert(src.line_col(value.span().start).0);
            None
        }
    }
}

/// Records an issue unless `value` is a finite number of degrees within ±`limit`.
fn check_degrees(
    src: &SourceFile,
    issues: &mut Issues,
    value: &Spanned<f64>,
    field: String,
    what: &str,
    limit: f64,
) {
    let v = *value.get_ref();
    // `contains` is false for NaN, so one test covers both non-finite and out-of-range values.
    if !(-limit..=limit).contains(&v) {
        let message = format!("{what} must be between -{limit} and {limit} degrees, not {v}");
        issues.push(src.issue(value.span(), field, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalog, ConfigError> {
        Catalog::from_source(&SourceFile::new("t.toml", text))
    }

    #[test]
    fn builtin_catalog_is_valid() {
        let src = SourceFile::new(BUILTIN_NAME, BUILTIN_TOML);
        if let Err(e) = Catalog::from_source(&src) {
            panic!("the repository's regions.toml is invalid:\n{e}");
        }
    }

    #[test]
    fn repository_catalog_loads_from_disk_and_matches_the_embedded_one() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../regions.toml");
        let on_disk = Catalog::load(&path).unwrap();
        let builtin = Catalog::builtin();
        assert!(on_disk.len() >= 24, "only {} regions", on_disk.len());
        assert_eq!(on_disk.regions(), builtin.regions());
        assert_eq!(on_disk.corridors(), builtin.corridors());
    }

    #[test]
    fn builtin_catalog_covers_every_continent() {
        let catalog = Catalog::builtin();
        for continent in Continent::ALL {
            assert!(
                catalog.regions().iter().any(|r| r.continent == continent),
                "no region in {continent}"
            );
        }
    }

    #[test]
    fn builtin_catalog_has_the_middle_east_behind_the_red_sea() {
        let catalog = Catalog::builtin();
        let id = RegionId::parse("me-south").unwrap();
        let region = catalog.get(&id).expect("me-south is in the catalog");
        assert_eq!(region.name, "the Middle East");
        assert_eq!(region.continent, Continent::MiddleEast);
        assert!(region.corridors.iter().any(|c| c == "red-sea"));
        assert!(catalog.corridors().contains_key("red-sea"));
        let members: Vec<&str> = catalog
            .members_of("red-sea")
            .map(|r| r.id.as_str())
            .collect();
        assert!(members.contains(&"me-south"), "{members:?}");
        assert_eq!(catalog.members_of("no-such-corridor").count(), 0);
    }

    #[test]
    fn builtin_catalog_has_at_least_one_corridor_per_region() {
        // Not a validation rule (a region may be well connected everywhere), but true of ours,
        // and detection's corridor explanations are better for it.
        let catalog = Catalog::builtin();
        for r in catalog.regions() {
            assert!(!r.corridors.is_empty(), "{} has no corridor", r.id);
        }
    }

    #[test]
    fn every_invalid_fixture_produces_its_expected_message() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/regions");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("invalid-") && n.ends_with(".toml"))
            .collect();
        names.sort();
        assert!(
            names.len() >= 7,
            "fixtures missing from {}: {names:?}",
            dir.display()
        );

        let mut failures = Vec::new();
        for name in &names {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let expected_path = dir.join(name.replace(".toml", ".expected"));
            let expected = std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            let src = SourceFile::new(format!("testdata/regions/{name}"), text);
            match Catalog::from_source(&src) {
                Ok(_) => failures.push(format!("{name}: loaded without error")),
                Err(e) if e.to_string() == expected.trim_end_matches('\n') => {}
                Err(e) => failures.push(format!(
                    "{name}:\n  expected: {expected:?}\n  actual:   {:?}",
                    e.to_string()
                )),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_expected_file_has_a_fixture() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/regions");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".expected") {
                assert!(
                    dir.join(format!("{stem}.toml")).exists(),
                    "{name} has no .toml"
                );
            }
        }
    }

    #[test]
    fn all_issues_in_a_file_are_reported_in_line_order() {
        let text = r#"
[corridors]
red-sea = "Red Sea cables"
unused = "nobody"

[[region]]
id = "me-south"
name = "the Middle East"
lat = 126.07
lon = 50.55
continent = "middle-east"
corridors = ["red-sea", "red-see"]

[[region]]
id = "me-south"
name = ""
lat = 25.2
lon = nan
continent = "middle-east"
corridors = ["red-sea", "red-sea"]
"#;
        let err = parse(text).unwrap_err();
        let got: Vec<(usize, &str)> = err
            .issues()
            .iter()
            .map(|i| (i.line, i.field.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (4, "corridors.unused"),
                (9, "region[0].lat"),
                (12, "region[0].corridors[1]"),
                (15, "region[1].id"),
                (16, "region[1].name"),
                (18, "region[1].lon"),
                (20, "region[1].corridors[1]"),
            ],
            "{err}"
        );
        assert!(err.to_string().contains("first defined on line 7"), "{err}");
        assert_eq!(err.to_string().lines().count(), 7, "{err}");
    }

    #[test]
    fn region_id_rules() {
        for ok in ["me-south", "ap-southeast-4", "x1", "a-", &"a".repeat(32)] {
            assert_eq!(RegionId::parse(ok).unwrap().as_str(), ok);
        }
        let cases = [
            ("", HandleError::Length(0)),
            ("a", HandleError::Length(1)),
            (&"a".repeat(33), HandleError::Length(33)),
            ("1a", HandleError::Start),
            ("-a", HandleError::Start),
            ("Me-south", HandleError::Start),
            ("me_south", HandleError::Character('_')),
            ("me-South", HandleError::Character('S')),
            ("me south", HandleError::Character(' ')),
            ("mé", HandleError::Character('é')),
        ];
        for (bad, reason) in cases {
            let err = RegionId::parse(bad).unwrap_err();
            assert_eq!(err.reason, reason, "{bad:?}");
            assert_eq!(err.id, bad);
        }
        assert_eq!(
            RegionId::parse("me_south").unwrap_err().to_string(),
            "region id \"me_south\" contains '_'; only lowercase ASCII letters, digits and '-' are allowed"
        );
    }

    #[test]
    fn region_id_serializes_as_a_plain_string_and_validates_on_the_way_in() {
        let id: RegionId = "eu-west".parse().unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"eu-west\"");
        let back: RegionId = serde_json::from_str("\"eu-west\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(back.to_string(), "eu-west");
        let err = serde_json::from_str::<RegionId>("\"EU-WEST\"").unwrap_err();
        assert!(
            err.to_string().contains("must start with a lowercase"),
            "{err}"
        );
    }

    #[test]
    fn continent_display_matches_its_toml_spelling() {
        for c in Continent::ALL {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            let back: Continent = serde_json::from_str(&format!("\"{}\"", c.as_str())).unwrap();
            assert_eq!(back, c);
            assert!(!c.name().is_empty());
        }
        assert_eq!(Continent::SouthEastAsia.to_string(), "south-east-asia");
        assert_eq!(Continent::MiddleEast.name(), "the Middle East");
    }

    #[test]
    fn a_minimal_catalog_loads_with_integer_coordinates_and_no_corridors() {
        let catalog = parse(
            "[[region]]\nid = \"xx\"\nname = \"Null Island\"\nlat = 0\nlon = 0\ncontinent = \"africa\"\n",
        )
        .unwrap();
        assert_eq!(catalog.len(), 1);
        assert!(!catalog.is_empty());
        assert!(catalog.corridors().is_empty());
        let r = &catalog.regions()[0];
        assert_eq!((r.lat, r.lon, r.corridors.len()), (0.0, 0.0, 0));
    }
}
