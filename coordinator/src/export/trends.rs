//! Trends over stored incidents: time to detect, to resolve and (site incidents) to
//! communicate, per UTC month of onset, per scope (site or operational) and per class, as
//! median, p90 and count. Pure: records in, numbers out; the caller reads the store.
//!
//! **Statistics.** The median of an even count is the mean of the two middle values; the p90
//! is the nearest-rank one (the `ceil(0.9 n)`-th smallest), so it is always an observed value.
//! An incident counts towards time to resolve only once resolved, towards time to communicate
//! only once a member message was published.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::detect::Class;
use crate::store::incidents::IncidentRecord;

/// A calendar month in UTC, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    /// The year.
    pub year: i32,
    /// 1..=12.
    pub month: u8,
}

impl Month {
    /// The UTC month a Unix-ms instant falls in.
    pub fn of_ms(ms: i64) -> Month {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Month {
            year: at.year(),
            month: u8::from(at.month()),
        }
    }

    /// `2026-01` (a four-digit year, a two-digit month), or `None`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u8 = m.parse().ok()?;
        (1..=12).contains(&month).then_some(Month { year, month })
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Median, p90 and count of a set of durations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stat {
    /// How many durations.
    pub count: usize,
    /// Median, ms (`null` when there are none).
    pub median_ms: Option<f64>,
    /// Nearest-rank 90th percentile, ms (`null` when there are none).
    pub p90_ms: Option<f64>,
}

impl Stat {
    /// The statistics of `values` (any order).
    pub fn of(values: &[i64]) -> Stat {
        let mut v = values.to_vec();
        v.sort_unstable();
        let n = v.len();
        let median_ms = match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2] as f64),
            _ => Some((v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0),
        };
        // Nearest rank: ceil(0.9 n), 1-based; integer arithmetic avoids 0.9's rounding.
        let p90_ms = (n > 0).then(|| v[(9 * n).div_ceil(10) - 1] as f64);
        Stat {
            count: n,
            median_ms,
            p90_ms,
        }
    }
}

/// The numbers of one group of incidents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Incidents in the group.
    pub incidents: usize,
    /// Time to detect: onset to confirmation.
    pub ttd: Stat,
    /// Time to resolve: onset to resolution (resolved incidents only).
    pub ttr: Stat,
    /// Time to communicate: onset to the first published member message (site incidents
    /// only; absent for operational groups, which members never hear about).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttc: Option<Stat>,
}

/// One class in one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassRow {
    /// The class, kebab-case.
    pub class: String,
    /// Whether it is a state of the monitoring network rather than a site incident.
    pub operational: bool,
    /// Its numbers.
    #[serde(flatten)]
    pub group: Group,
}

/// One month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthRow {
    /// `YYYY-MM`, UTC, by onset.
    pub month: String,
    /// Site incidents (what members experience).
    pub site: Group,
    /// Operational incidents (states of the monitoring network).
    pub operational: Group,
    /// Per class, by name.
    pub classes: Vec<ClassRow>,
}

/// What `coordinator trends --json` prints and `GET /api/v1/trends` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trends {
    /// The first month included, if limited.
    pub since: Option<String>,
    /// Months with incidents, oldest first.
    pub months: Vec<MonthRow>,
}

/// Whether a stored class is operational; an unknown class counts as a site incident, the
/// side that matters to members.
fn operational(class: &str) -> bool {
    Class::parse(class).is_some_and(Class::is_operational)
}

/// Durations of a set of incidents, gathered before the statistics.
#[derive(Default)]
struct Acc {
    incidents: usize,
    ttd: Vec<i64>,
    ttr: Vec<i64>,
    ttc: Vec<i64>,
}

impl Acc {
    fn add(&mut self, i: &IncidentRecord, first_published: Option<i64>) {
        self.incidents += 1;
        self.ttd.push(i.ttd_ms);
        if let Some(r) = i.resolved_ms {
            self.ttr.push(r - i.onset_ms);
        }
        if let Some(p) = first_published {
            self.ttc.push(p - i.onset_ms);
        }
    }

    fn group(&self, with_ttc: bool) -> Group {
        Group {
            incidents: self.incidents,
            ttd: Stat::of(&self.ttd),
            ttr: Stat::of(&self.ttr),
            ttc: with_ttc.then(|| Stat::of(&self.ttc)),
        }
    }
}

/// The trends of `incidents` from `since` on; `first_published` maps an incident id to its
/// first member message's publication, Unix ms.
pub fn trends(
    incidents: &[IncidentRecord],
    first_published: &BTreeMap<u64, i64>,
    since: Option<Month>,
) -> Trends {
    type PerMonth = (Acc, Acc, BTreeMap<String, Acc>);
    let mut months: BTreeMap<Month, PerMonth> = BTreeMap::new();
    for i in incidents {
        let month = Month::of_ms(i.onset_ms);
        if since.is_some_and(|s| month < s) {
            continue;
        }
        let published = first_published.get(&i.id).copied();
        let (site, ops, classes) = months.entry(month).or_default();
        if operational(&i.class) {
            ops.add(i, None);
        } else {
            site.add(i, published);
        }
        classes
            .entry(i.class.clone())
            .or_default()
            .add(i, published);
    }
    Trends {
        since: since.map(|s| s.to_string()),
        months: months
            .into_iter()
            .map(|(month, (site, ops, classes))| MonthRow {
                month: month.to_string(),
                site: site.group(true),
                operational: ops.group(false),
                classes: classes
                    .into_iter()
                    .map(|(class, acc)| {
                        let op = operational(&class);
                        ClassRow {
                            group: acc.group(!op),
                            operational: op,
                            class,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The trends as a table, one line per month and scope and per month and class.
pub fn text(t: &Trends) -> String {
    use std::fmt::Write as _;
    let d = |s: &Stat, f: fn(&Stat) -> Option<f64>| {
        f(s).map_or("-".to_string(), |ms| format!("{:.1}s", ms / 1000.0))
    };
    let med = |s: &Stat| s.median_ms;
    let p90 = |s: &Stat| s.p90_ms;
    let mut out = format!(
        "{:<8} {:<20} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "month", "group", "n", "ttd p50", "ttd p90", "ttr p50", "ttr p90", "ttc p50"
    );
    for m in &t.months {
        let rows = [
            ("site (all)", &m.site),
            ("operational (all)", &m.operational),
        ]
        .into_iter()
        .filter(|(_, g)| g.incidents > 0)
        .chain(m.classes.iter().map(|c| (c.class.as_str(), &c.group)));
        for (name, g) in rows {
            let _ = writeln!(
                out,
                "{:<8} {:<20} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}",
                m.month,
                name,
                g.incidents,
                d(&g.ttd, med),
                d(&g.ttd, p90),
                d(&g.ttr, med),
                d(&g.ttr, p90),
                g.ttc.as_ref().map_or("-".to_string(), |s| d(s, med)),
            );
        }
    }
    let total: usize = t
        .months
        .iter()
        .map(|m| m.site.incidents + m.operational.incidents)
        .sum();
    let _ = writeln!(out, "{total} incidents in {} months", t.months.len());
    out
}
