//! Maintenance windows: planned work during which a site incident on the covered targets and
//! regions does not page anyone. Windows come from `coordinator.toml` (`[[maintenance]]`) and
//! from the API or CLI (stored in the `maintenance` table, schema v10); both are the same
//! [`Window`], parsed from the same [`RawWindow`] (TOML or JSON).
//!
//! ```toml
//! [[maintenance]]                      # one-off
//! id = "db-upgrade"
//! title = "Database upgrade"
//! targets = ["shop"]                   # target ids; every target when absent
//! regions = ["eu-central", "eu-west"]  # every region when absent
//! start = "2026-12-01T02:00:00+01:00"  # or "2026-12-01 02:00" in `timezone`
//! end = "2026-12-01T04:00:00+01:00"
//!
//! [[maintenance]]                      # recurring
//! id = "sunday-backup"
//! title = "Weekly backup"
//! every = "week"                       # "day", "week" or "month"
//! days = ["sun"]                       # for "week"; `day = 1` (of the month) for "month"
//! at = "02:00"
//! duration = "90m"
//! timezone = "Europe/Berlin"           # IANA; UTC when absent
//! ```
//!
//! # Decisions
//! - **Local wall-clock time.** A recurring window starts at `at` on its days in its own time
//!   zone, across DST changes: "Sundays 02:00 Europe/Berlin" is 01:00 UTC in winter and
//!   00:00 UTC in summer. A start that falls in a DST gap (02:30 on the spring-forward night)
//!   begins when the gap ends; an ambiguous one (the autumn repeat) takes the first.
//!   A monthly window on day 31 skips months without one.
//! - **What is covered**: every (target, region) pair of the listed targets and regions. A
//!   site incident is *fully* covered when each of its (target, region) pairs is covered by
//!   some active window; only then is its page held back. An incident reaching beyond the
//!   windows pages as usual, annotated with the windows it overlapped.
//! - **Suppression is decided at each transition and re-checked every tick**
//!   (`service::detection`): a page held back is sent once the window ends with the incident
//!   still open; an incident that already paged is never silenced by a window that starts
//!   later (its resolution must reach whoever was paged).
//! - **Public by default**: the status page lists active and upcoming windows (next 7 days)
//!   with their title, scope and times; `public = false` keeps one internal.

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime};
use chrono::{LocalResult, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::store::incidents::{IncidentRecord, MaintenanceNote, MaintenanceRecord, TimelineRecord};

/// The longest one-off window: a window longer than this is a mistake, not maintenance.
pub const MAX_ONE_OFF_DAYS: i64 = 31;

/// How far ahead the status page and the API list upcoming occurrences.
pub const UPCOMING_DAYS: i64 = 7;

/// A window's id: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A date-time as written: a string, or (in TOML) a bare datetime literal. Serialized as
/// text either way.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum WhenText {
    /// TOML's own datetime literal (`start = 2026-12-01T02:00:00Z`).
    Toml(toml::value::Datetime),
    /// Text: RFC 3339 with an offset, or a local `YYYY-MM-DD HH:MM[:SS]`.
    Text(String),
}

impl Serialize for WhenText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for WhenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WhenText::Toml(d) => write!(f, "{d}"),
            WhenText::Text(s) => f.write_str(s),
        }
    }
}

/// A window as written in `[[maintenance]]` or posted to `/api/v1/maintenance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Unique id.
    #[serde(default)]
    pub id: String,
    /// What is being done, in words members may read.
    #[serde(default)]
    pub title: String,
    /// Target ids; every target when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Region ids; every region when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Shown on the public status page (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// One-off: the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<WhenText>,
    /// One-off: the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<WhenText>,
    /// Recurring: `day`, `week` or `month`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Weekly: the days (`mon` … `sun`, or full names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Monthly: the day of the month, 1 to 31.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<i64>,
    /// Recurring: the local start time, `HH:MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Recurring: how long each occurrence lasts (`2h`, `90m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// IANA time zone of local times (`Europe/Berlin`); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Recurring: the first local date occurrences may start on (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Recurring: the last local date occurrences may start on (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// How often a recurring window comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Every {
    /// Every day.
    Day,
    /// On these weekdays.
    Week(BTreeSet<u32>),
    /// On this day of the month (months without it are skipped).
    Month(u32),
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Once, `[start_ms, end_ms)`.
    Once {
        /// Start, Unix ms.
        start_ms: i64,
        /// End, Unix ms.
        end_ms: i64,
    },
    /// Again and again, in local time.
    Recurring {
        /// Which days.
        every: Every,
        /// Local start time.
        at: NaiveTime,
        /// Length of each occurrence, ms.
        duration_ms: i64,
        /// First local date an occurrence may start on.
        from: Option<NaiveDate>,
        /// Last local date an occurrence may start on.
        until: Option<NaiveDate>,
    },
}

/// Where a window was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `coordinator.toml`: changed by editing the file and reloading.
    Config,
    /// The API or `coordinator maintenance add`: stored in the database.
    Api,
}

/// One validated window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Unique id.
    pub id: String,
    /// What is being done.
    pub title: String,
    /// Target ids; every target when empty.
    pub targets: Vec<String>,
    /// Region ids; every region when empty.
    pub regions: Vec<String>,
    /// Listed on the public status page.
    pub public: bool,
    /// When.
    pub schedule: Schedule,
    /// The time zone local times are in.
    pub timezone: Tz,
    /// Where it was defined.
    pub source: Source,
    /// As written (what the store keeps and the API shows).
    pub raw: RawWindow,
}

/// One occurrence of a window, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms.
    pub end_ms: i64,
}

/// A problem with a window: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, as written (`timezone`, `days`).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What windows are checked against: the configured targets and the catalog's regions.
pub struct Known<'a> {
    /// Target ids of `coordinator.toml`.
    pub targets: &'a [String],
    /// Region ids of the catalog.
    pub regions: &'a [String],
}

fn weekday(name: &str) -> Option<u32> {
    let n = name.trim().to_ascii_lowercase();
    let days = [
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
        ("sun", "sunday"),
    ];
    days.iter()
        .position(|(short, long)| n == *short || n == *long)
        .and_then(|i| u32::try_from(i).ok())
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A local date-time in `tz`: the first of an ambiguous pair, the end of a DST gap.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(a, b) => Some(a.min(b)),
        LocalResult::None => {
            // In a gap: the first representable minute after it (gaps are at most a few hours).
            let mut probe = local;
            for _ in 0..(4 * 60) {
                probe += ChronoDuration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    // The instant the gap ends, not `local` + the gap's length.
                    return Some(t);
                }
            }
            None
        }
    }
}

fn parse_when(text: &WhenText, tz: Tz, field: &'static str) -> Result<i64, Problem> {
    let s = text.to_string();
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let formats = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ];
    for f in formats {
        if let Ok(local) = NaiveDateTime::parse_from_str(s, f) {
            return local_to_utc(tz, local)
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| Problem {
                    field,
                    message: format!("{s:?} does not exist in {tz}"),
                });
        }
    }
    Err(Problem {
        field,
        message: format!(
            "{s:?} is not a date and time such as \"2026-12-01T02:00:00+01:00\" or \"2026-12-01 02:00\" (in `timezone`)"
        ),
    })
}

fn parse_date(s: &str, field: &'static str) -> Result<NaiveDate, Problem> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| Problem {
        field,
        message: format!("{s:?} is not a date such as \"2026-12-31\""),
    })
}

impl RawWindow {
    /// Validates the window; every problem at once. `known` checks targets and regions
    /// exist.
    pub fn validate(&self, source: Source, known: &Known<'_>) -> Result<Window, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut bad = |field: &'static str, message: String| {
            problems.push(Problem { field, message });
        };
        if !is_id(&self.id) {
            bad(
                "id",
                format!(
                    "{:?} is not an id: 1 to 64 letters, digits, '-', '_' or '.'",
                    self.id
                ),
            );
        }
        let title = self.title.trim();
        if title.is_empty() {
            bad("title", "missing: say what is being done".into());
        } else if title.chars().count() > 200 {
            bad("title", "longer than 200 characters".into());
        }
        for t in &self.targets {
            if !known.targets.contains(t) {
                bad("targets", format!("{t:?} is not a configured target id"));
            }
        }
        for r in &self.regions {
            if !known.regions.contains(r) {
                bad("regions", format!("{r:?} is not a region of the catalog"));
            }
        }
        let timezone = match self.timezone.as_deref() {
            None => Tz::UTC,
            Some(name) => match name.trim().parse::<Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    bad(
                        "timezone",
                        format!("{name:?} is not an IANA time zone such as \"Europe/Berlin\""),
                    );
                    Tz::UTC
                }
            },
        };
        let once = self.start.is_some() || self.end.is_some();
        let recurring = self.every.is_some()
            || self.at.is_some()
            || self.duration.is_some()
            || !self.days.is_empty()
            || self.day.is_some()
            || self.from.is_some()
            || self.until.is_some();
        let schedule = match (once, recurring) {
            (true, true) => {
                bad(
                    "every",
                    "give `start` and `end` (one-off) or `every`, `at` and `duration` (recurring), not both".into(),
                );
                None
            }
            (false, false) => {
                bad(
                    "start",
                    "missing: give `start` and `end` (one-off) or `every`, `at` and `duration` (recurring)".into(),
                );
                None
            }
            (true, false) => self.once(timezone, &mut bad),
            (false, true) => self.recurring(&mut bad),
        };
        match schedule {
            Some(schedule) if problems.is_empty() => Ok(Window {
                id: self.id.clone(),
                title: title.to_string(),
                targets: self.targets.clone(),
                regions: self.regions.clone(),
                public: self.public.unwrap_or(true),
                schedule,
                timezone,
                source,
                raw: self.clone(),
            }),
            _ => Err(problems),
        }
    }

    fn once(&self, tz: Tz, bad: &mut impl FnMut(&'static str, String)) -> Option<Schedule> {
        let when = |v: &Option<WhenText>,
                    field: &'static str,
                    bad: &mut dyn FnMut(&'static str, String)| match v {
            None => {
                bad(
                    field,
                    "missing: a one-off window needs `start` and `end`".into(),
                );
                None
            }
            Some(t) => parse_when(t, tz, field)
                .map_err(|p| bad(p.field, p.message))
                .ok(),
        };
        let start_ms = when(&self.start, "start", bad);
        let end_ms = when(&self.end, "end", bad);
        let (start_ms, end_ms) = (start_ms?, end_ms?);
        if end_ms <= start_ms {
            bad("end", "is not after `start`".into());
            return None;
        }
        if end_ms - start_ms > MAX_ONE_OFF_DAYS * 86_400_000 {
            bad(
                "end",
                format!("the window is longer than {MAX_ONE_OFF_DAYS} days"),
            );
            return None;
        }
        Some(Schedule::Once { start_ms, end_ms })
    }

    fn recurring(&self, bad: &mut impl FnMut(&'static str, String)) -> Option<Schedule> {
        let every = match self.every.as_deref().map(str::trim) {
            Some("day") => {
                if !self.days.is_empty() || self.day.is_some() {
                    bad("days", "a daily window takes no `days` or `day`".into());
                }
                Some(Every::Day)
            }
            Some("week") => {
                let mut set = BTreeSet::new();
                for d in &self.days {
                    match weekday(d) {
                        Some(i) => {
                            set.insert(i);
                        }
                        None => bad(
                            "days",
                            format!("{d:?} is not a weekday such as \"sun\" or \"monday\""),
                        ),
                    }
                }
                if self.days.is_empty() {
                    bad(
                        "days",
                        "missing: a weekly window needs its days, such as [\"sun\"]".into(),
                    );
                }
                if self.day.is_some() {
                    bad("day", "a weekly window takes `days`, not `day`".into());
                }
                (!set.is_empty()).then_some(Every::Week(set))
            }
            Some("month") => {
                if !self.days.is_empty() {
                    bad("days", "a monthly window takes `day`, not `days`".into());
                }
                match self.day {
                    Some(d @ 1..=31) => u32::try_from(d).ok().map(Every::Month),
                    Some(d) => {
                        bad("day", format!("{d} is not a day of the month (1 to 31)"));
                        None
                    }
                    None => {
                        bad(
                            "day",
                            "missing: a monthly window needs `day` (1 to 31)".into(),
                        );
                        None
                    }
                }
            }
            Some(other) => {
                bad(
                    "every",
                    format!("{other:?} is not \"day\", \"week\" or \"month\""),
                );
                None
            }
            None => {
                bad("every", "missing: \"day\", \"week\" or \"month\"".into());
                None
            }
        };
        let at = match self.at.as_deref() {
            None => {
                bad(
                    "at",
                    "missing: the local start time, such as \"02:00\"".into(),
                );
                None
            }
            Some(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M")
                .map_err(|_| bad("at", format!("{s:?} is not a time such as \"02:00\"")))
                .ok(),
        };
        let period_ms = match &every {
            Some(Every::Day) => 86_400_000,
            Some(Every::Week(days)) => {
                // The shortest gap between two of its days.
                let v: Vec<u32> = days.iter().copied().collect();
                let mut gap = 7;
                for (i, d) in v.iter().enumerate() {
                    let next = v.get(i + 1).copied().unwrap_or(v[0] + 7);
                    gap = gap.min(next - d);
                }
                i64::from(gap) * 86_400_000
            }
            _ => 28 * 86_400_000,
        };
        let duration_ms = match self.duration.as_deref() {
            None => {
                bad(
                    "duration",
                    "missing: how long each occurrence lasts, such as \"2h\"".into(),
                );
                None
            }
            Some(s) => match humantime::parse_duration(s.trim()) {
                Ok(d) => {
                    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                    if ms < 60_000 {
                        bad("duration", "shorter than a minute".into());
                        None
                    } else if ms >= period_ms {
                        bad(
                            "duration",
                            "as long as the time between two occurrences or longer: they would overlap".into(),
                        );
                        None
                    } else {
                        Some(ms)
                    }
                }
                Err(e) => {
                    bad(
                        "duration",
                        format!("{s:?} is not a duration such as \"2h\" or \"90m\": {e}"),
                    );
                    None
                }
            },
        };
        let from = self.from.as_deref().and_then(|s| {
            parse_date(s, "from")
                .map_err(|p| bad(p.field, p.message))
                .ok()
        });
        let until = self.until.as_deref().and_then(|s| {
            parse_date(s, "until")
                .map_err(|p| bad(p.field, p.message))
                .ok()
        });
        if let (Some(f), Some(u)) = (from, until)
            && u < f
        {
            bad("until", "is before `from`".into());
            return None;
        }
        Some(Schedule::Recurring {
            every: every?,
            at: at?,
            duration_ms: duration_ms?,
            from,
            until,
        })
    }
}

impl Window {
    /// Whether the window covers `target` (a target id) in `region`.
    pub fn covers(&self, target: &str, region: &str) -> bool {
        (self.targets.is_empty() || self.targets.iter().any(|t| t == target))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
    }

    /// Whether an occurrence may start on local date `d`.
    fn starts_on(&self, d: NaiveDate) -> bool {
        let Schedule::Recurring {
            every, from, until, ..
        } = &self.schedule
        else {
            return false;
        };
        if from.is_some_and(|f| d < f) || until.is_some_and(|u| d > u) {
            return false;
        }
        match every {
            Every::Day => true,
            Every::Week(days) => days.contains(&d.weekday().num_days_from_monday()),
            Every::Month(day) => d.day() == *day,
        }
    }

    /// The occurrence starting on local date `d`, if one does.
    fn occurrence_on(&self, d: NaiveDate) -> Option<Occurrence> {
        let Schedule::Recurring {
            at, duration_ms, ..
        } = &self.schedule
        else {
            return None;
        };
        if !self.starts_on(d) {
            return None;
        }
        let start = local_to_utc(self.timezone, d.and_time(*at))?.timestamp_millis();
        Some(Occurrence {
            start_ms: start,
            end_ms: start + duration_ms,
        })
    }

    /// Occurrences overlapping `[from_ms, to_ms)`, in order, at most `max`.
    pub fn occurrences(&self, from_ms: i64, to_ms: i64, max: usize) -> Vec<Occurrence> {
        match &self.schedule {
            Schedule::Once { start_ms, end_ms } => {
                if *start_ms < to_ms && *end_ms > from_ms && max > 0 {
                    vec![Occurrence {
                        start_ms: *start_ms,
                        end_ms: *end_ms,
                    }]
                } else {
                    Vec::new()
                }
            }
            Schedule::Recurring { duration_ms, .. } => {
                let local_date = |ms: i64| {
                    Utc.timestamp_millis_opt(ms)
                        .single()
                        .map(|t| t.with_timezone(&self.timezone).date_naive())
                };
                // An occurrence overlapping `from_ms` started at most its length before it,
                // plus a day for offsets and DST.
                let (Some(first), Some(last)) = (
                    local_date(from_ms - duration_ms - 86_400_000),
                    local_date(to_ms),
                ) else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                for d in first.iter_days().take_while(|d| *d <= last) {
                    if out.len() >= max {
                        break;
                    }
                    if let Some(o) = self.occurrence_on(d)
                        && o.start_ms < to_ms
                        && o.end_ms > from_ms
                    {
                        out.push(o);
                    }
                }
                out
            }
        }
    }

    /// The first occurrence starting after `at_ms`, within a year.
    pub fn next_after(&self, at_ms: i64) -> Option<Occurrence> {
        self.occurrences(at_ms, at_ms + 366 * 86_400_000, 2)
            .into_iter()
            .find(|o| o.start_ms > at_ms)
    }

    /// The occurrence open at `at_ms`, if any.
    pub fn active_at(&self, at_ms: i64) -> Option<Occurrence> {
        self.occurrences(at_ms, at_ms + 1, 1).into_iter().next()
    }

    /// The schedule in words: `2026-12-01 02:00 – 04:00 Europe/Berlin`, `every Sunday at
    /// 02:00 for 1h 30m (Europe/Berlin)`.
    pub fn describe(&self) -> String {
        match &self.schedule {
            Schedule::Once { start_ms, end_ms } => {
                let local = |ms: i64| {
                    Utc.timestamp_millis_opt(ms)
                        .single()
                        .map(|t| t.with_timezone(&self.timezone))
                };
                match (local(*start_ms), local(*end_ms)) {
                    (Some(s), Some(e)) if s.date_naive() == e.date_naive() => format!(
                        "{} – {} {}",
                        s.format("%Y-%m-%d %H:%M"),
                        e.format("%H:%M"),
                        self.timezone
                    ),
                    (Some(s), Some(e)) => format!(
                        "{} – {} {}",
                        s.format("%Y-%m-%d %H:%M"),
                        e.format("%Y-%m-%d %H:%M"),
                        self.timezone
                    ),
                    _ => String::new(),
                }
            }
            Schedule::Recurring {
                every,
                at,
                duration_ms,
                from,
                until,
            } => {
                let days = match every {
                    Every::Day => "every day".to_string(),
                    Every::Week(days) => {
                        let names: Vec<String> = days
                            .iter()
                            .filter_map(|d| {
                                Weekday::try_from(u8::try_from(*d).ok()?)
                                    .ok()
                                    .map(|w| format!("{w:?}"))
                            })
                            .collect();
                        format!("every {}", names.join(", "))
                    }
                    Every::Month(d) => format!("on day {d} of every month"),
                };
                let length = humantime::format_duration(std::time::Duration::from_millis(
                    duration_ms.unsigned_abs(),
                ));
                let mut s = format!(
                    "{days} at {} for {length} ({})",
                    at.format("%H:%M"),
                    self.timezone
                );
                if let Some(f) = from {
                    s.push_str(&format!(", from {f}"));
                }
                if let Some(u) = until {
                    s.push_str(&format!(", until {u}"));
                }
                s
            }
        }
    }

    /// Whether it can never open again after `now_ms`.
    pub fn is_over(&self, now_ms: i64) -> bool {
        match &self.schedule {
            Schedule::Once { end_ms, .. } => *end_ms <= now_ms,
            Schedule::Recurring { until, .. } => until.is_some_and(|u| {
                // Past the end of `until` in every time zone.
                let end = u.succ_opt().map_or(i64::MAX, |d| {
                    d.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
                });
                now_ms > end + 2 * 86_400_000
            }),
        }
    }
}

/// Names of weekdays as the configuration accepts them, for messages and docs.
pub fn weekday_names() -> &'static [&'static str] {
    &WEEKDAYS
}

/// How the active windows cover an incident's scope at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Active windows covering at least one (target, region) pair of the scope, as
    /// `(id, title)`, in the order given.
    pub windows: Vec<(String, String)>,
    /// Every pair is covered by some active window.
    pub full: bool,
}

/// How `windows` cover the pairs of `targets` × `regions` at `at_ms`. `targets` are target
/// ids; an empty `regions` means every region, which only windows without a region list
/// cover. Without targets nothing is covered.
pub fn coverage(
    windows: &[Window],
    targets: &[String],
    regions: &[String],
    at_ms: i64,
) -> Coverage {
    let active: Vec<&Window> = windows
        .iter()
        .filter(|w| w.active_at(at_ms).is_some())
        .collect();
    if active.is_empty() || targets.is_empty() {
        return Coverage::default();
    }
    let mut full = true;
    let mut touching = BTreeSet::new();
    for t in targets {
        if regions.is_empty() {
            let hit = active
                .iter()
                .position(|w| w.regions.is_empty() && w.covers(t, ""));
            full &= hit.is_some();
            touching.extend(
                active
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.targets.is_empty() || w.targets.contains(t))
                    .map(|(i, _)| i),
            );
            continue;
        }
        for r in regions {
            let mut any = false;
            for (i, w) in active.iter().enumerate() {
                if w.covers(t, r) {
                    any = true;
                    touching.insert(i);
                }
            }
            full &= any;
        }
    }
    Coverage {
        windows: touching
            .into_iter()
            .map(|i| (active[i].id.clone(), active[i].title.clone()))
            .collect(),
        full: full && !active.is_empty(),
    }
}

/// One site incident's dealings with maintenance windows over its life, kept by the
/// detection thread and written onto every stored record of it.
#[derive(Debug, Default)]
pub struct Hold {
    /// What the stored record says.
    pub record: MaintenanceRecord,
    /// A page went out for it (not held back): no window may silence it afterwards.
    pub announced: bool,
}

impl Hold {
    /// Applies `coverage` (the windows over the incident's scope now) to one transition's
    /// `record`: notes new windows, holds the page back while the whole scope is covered and
    /// nothing went out yet (through its resolution: a page never sent is never resolved),
    /// releases it otherwise; then writes the result and its timeline lines into `record`.
    pub fn apply(&mut self, coverage: &Coverage, record: &mut IncidentRecord, now: i64) {
        for (id, title) in &coverage.windows {
            if !self.record.windows.iter().any(|n| &n.id == id) {
                self.record.windows.push(MaintenanceNote {
                    id: id.clone(),
                    title: title.clone(),
                    since_ms: now,
                });
            }
        }
        let over = record.resolved_ms.is_some() || !record.state.is_open();
        let hold =
            !self.announced && (coverage.full || (over && self.record.suppressed_by.is_some()));
        if hold {
            if self.record.suppressed_by.is_none() {
                self.record.suppressed_by = coverage.windows.first().map(|(id, _)| id.clone());
            }
            if record.paged_ms.is_some() && self.record.suppressed_ms.is_none() {
                self.record.suppressed_ms = Some(now);
                tracing::info!(
                    id = record.id,
                    window = self.record.suppressed_by.as_deref().unwrap_or(""),
                    "page held back: the incident's whole scope is under maintenance"
                );
            }
        } else {
            if self.record.suppressed_by.take().is_some() && self.record.suppressed_ms.is_some() {
                self.record.released_ms = Some(now);
                tracing::info!(
                    id = record.id,
                    "maintenance over with the incident still open: its page goes out"
                );
            }
            if record.paged_ms.is_some() {
                self.announced = true;
            }
        }
        record.maintenance = self.record.clone();
        let m = &record.maintenance;
        for n in &m.windows {
            record.timeline.push(TimelineRecord {
                at_ms: n.since_ms,
                what: format!("inside maintenance window {:?} ({})", n.id, n.title),
            });
        }
        if let Some(at_ms) = m.suppressed_ms {
            record.timeline.push(TimelineRecord {
                at_ms,
                what: "page held back: its whole scope is under maintenance".into(),
            });
        }
        if let Some(at_ms) = m.released_ms {
            record.timeline.push(TimelineRecord {
                at_ms,
                what: "maintenance over, still failing: paged".into(),
            });
        }
        record.timeline.sort_by_key(|t| t.at_ms);
    }
}
