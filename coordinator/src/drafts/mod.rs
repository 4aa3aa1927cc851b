//! Member-message drafts: for every site incident, the message a community manager edits,
//! approves and publishes, one per status-page stage (investigating, identified, monitoring,
//! resolved), in plain words and scoped with the regions' member-facing names.
//!
//! The wording lives in templates (`coordinator/drafts.toml`, built in; an operator's file
//! overrides any class and stage of it, see [`Templates::load`]). Facts come from the stored
//! incident: its class decides the wording (a cut cable reads differently from the site being
//! down, or a failed address lookup), its regions the scope, its evidence whether members see
//! slowness or failure. Monitoring-network states (probe faults, clock skew, silent regions)
//! never produce a draft: they are not something members experience.
//!
//! Drafts are pure text: nothing here stores, approves or publishes anything.
//!
//! # Decisions
//! - Templates are Jinja (minijinja) with undefined variables as errors. Every template is
//!   rendered once at load with both branches of `failing`, so a typo surfaces in
//!   `coordinator validate` as `file:line:column: field: message`, not in a message to members.
//! - Times are UTC, written "14:02 UTC" (with the date when it is not the day of writing):
//!   members are everywhere, and a status page's readers compare times across zones.
//! - "Failing" rather than "slow" when the evidence holds at least as many failed samples as
//!   affected probes in some region (a region that mostly times out), or the class is
//!   `origin-down`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use meridian_shared::config::{ConfigError, ConfigIssue, Issues, SourceFile};
use meridian_shared::regions::{Catalog, RegionId};
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::detect::incident::Class;
use crate::store::incidents::{IncidentRecord, StoredState};

#[cfg(test)]
mod tests;

/// The built-in templates, and the name their errors are reported under.
const BUILTIN: &str = include_str!("../../drafts.toml");
const BUILTIN_NAME: &str = "<built-in drafts.toml>";

/// How long the regions list may get before the rest are counted ("and 4 other regions").
const MAX_NAMED_REGIONS: usize = 5;

/// Where an incident's public communication stands, as status pages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Something is wrong; we are looking into it.
    Investigating,
    /// The cause is known.
    Identified,
    /// It looks fixed; we are watching.
    Monitoring,
    /// It is over.
    Resolved,
}

impl Stage {
    /// Every stage, in the order an incident goes through them.
    pub const ALL: [Stage; 4] = [
        Stage::Investigating,
        Stage::Identified,
        Stage::Monitoring,
        Stage::Resolved,
    ];

    /// The lower-case name, as in the templates file.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Investigating => "investigating",
            Stage::Identified => "identified",
            Stage::Monitoring => "monitoring",
            Stage::Resolved => "resolved",
        }
    }

    /// The stage named `name`, if any.
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The stage to draft first for an incident in `state`: `investigating` while it is open,
    /// `resolved` once it is over.
    pub fn suggested(state: StoredState) -> Stage {
        match state {
            StoredState::Resolved => Stage::Resolved,
            StoredState::Confirmed | StoredState::Paged | StoredState::Interrupted => {
                Stage::Investigating
            }
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One drafted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Draft {
    /// The incident it is about.
    pub incident: u64,
    /// The incident's class.
    pub class: String,
    /// The stage it is written for.
    pub stage: Stage,
    /// A one-line headline.
    pub title: String,
    /// The message.
    pub body: String,
}

/// Why no draft could be written.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// The incident is still open: there is nothing to say "resolved" about yet.
    #[error("incident {0} is still open: it has no resolved message yet")]
    NotResolved(u64),
    /// The stored class is not one this coordinator knows.
    #[error("incident {id} has an unknown class {class:?}")]
    UnknownClass {
        /// The incident.
        id: u64,
        /// Its class as stored.
        class: String,
    },
    /// A template failed while rendering (a value the load-time check could not foresee).
    #[error("{template}: {message}")]
    Render {
        /// Which template: `class.part`.
        template: String,
        /// What went wrong.
        message: String,
    },
}

/// What the drafts call things: regions, services and networks by their human names.
#[derive(Debug, Clone)]
pub struct Names<'a> {
    /// The region catalog (member-facing region names).
    pub catalog: &'a Catalog,
    /// A check's id → the name of the target it belongs to (`[[target]] name`).
    pub services: HashMap<String, String>,
    /// An ASN → its organisation, as learnt from probes' networks.
    pub networks: HashMap<u32, String>,
}

impl<'a> Names<'a> {
    /// Names from the catalog and the configured targets; networks are added with
    /// [`Names::with_networks`].
    pub fn new(catalog: &'a Catalog, targets: &[crate::config::Target]) -> Names<'a> {
        let services = targets
            .iter()
            .flat_map(|t| t.checks.iter().map(|c| (c.id.to_string(), t.name.clone())))
            .collect();
        Names {
            catalog,
            services,
            networks: HashMap::new(),
        }
    }

    /// These names, knowing the organisations of `networks` (ASN, organisation) too.
    pub fn with_networks(mut self, networks: impl IntoIterator<Item = (u32, String)>) -> Self {
        self.networks.extend(networks);
        self
    }
}

/// Settings of drafting that are not wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// How far ahead the next update is promised.
    pub update_every: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            update_every: Duration::from_secs(30 * 60),
        }
    }
}

/// A template's text and where it came from, for error messages.
#[derive(Debug, Clone)]
struct Source {
    text: String,
    file: String,
    /// 1-based line and column of the template's first character in its file.
    line: usize,
    column: usize,
}

/// The part of a class's set: its title or one stage's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Title,
    Message(Stage),
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Title => "title",
            Part::Message(stage) => stage.as_str(),
        }
    }
}

/// One class's table in a templates file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    title: Option<Spanned<String>>,
    investigating: Option<Spanned<String>>,
    identified: Option<Spanned<String>>,
    monitoring: Option<Spanned<String>>,
    resolved: Option<Spanned<String>>,
}

impl RawSet {
    fn parts(self) -> [(Part, Option<Spanned<String>>); 5] {
        [
            (Part::Title, self.title),
            (Part::Message(Stage::Investigating), self.investigating),
            (Part::Message(Stage::Identified), self.identified),
            (Part::Message(Stage::Monitoring), self.monitoring),
            (Part::Message(Stage::Resolved), self.resolved),
        ]
    }
}

/// The wording of every class's drafts, checked.
#[derive(Debug, Clone)]
pub struct Templates {
    sources: BTreeMap<(Class, Part), Source>,
}

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Result<Templates, ConfigError> {
        Templates::load(None)
    }

    /// The built-in templates with `path`'s on top (any class, any part of it), every
    /// template rendered once to catch mistakes.
    pub fn load(path: Option<&Path>) -> Result<Templates, ConfigError> {
        let mut sources = BTreeMap::new();
        let mut issues = Issues::default();
        let builtin = SourceFile::new(BUILTIN_NAME, BUILTIN);
        read_into(&builtin, &mut sources, true, &mut issues)?;
        if let Some(path) = path {
            read_into(&SourceFile::read(path)?, &mut sources, false, &mut issues)?;
        }
        Templates::checked(sources, issues)
    }

    /// `sources` once each has rendered with sample facts of its stage, both ways of
    /// `failing`; every problem, with those already found in `issues`.
    fn checked(
        sources: BTreeMap<(Class, Part), Source>,
        mut issues: Issues,
    ) -> Result<Templates, ConfigError> {
        let templates = Templates { sources };
        for ((class, part), source) in &templates.sources {
            let stage = match part {
                Part::Message(stage) => *stage,
                // A title is shown with every stage: it may use only what all of them have.
                Part::Title => Stage::Investigating,
            };
            for failing in [false, true] {
                let mut facts = Facts::sample(stage, failing);
                if *part == Part::Title {
                    facts.next_update = None;
                }
                if let Err(e) = templates.render(*class, *part, &facts) {
                    issues.push(template_issue(source, *class, *part, &e));
                    break;
                }
            }
        }
        issues.finish(templates)
    }

    /// The draft of `incident` at `stage`, written at `now_ms`; `None` for monitoring-network
    /// states, which members never hear about.
    pub fn draft(
        &self,
        incident: &IncidentRecord,
        names: &Names<'_>,
        stage: Stage,
        now_ms: i64,
        cadence: Cadence,
    ) -> Result<Option<Draft>, DraftError> {
        let class = Class::parse(&incident.class).ok_or_else(|| DraftError::UnknownClass {
            id: incident.id,
            class: incident.class.clone(),
        })?;
        if class.is_operational() {
            return Ok(None);
        }
        let facts = Facts::of(incident, class, names, stage, now_ms, cadence)?;
        let mut title_facts = facts.clone();
        title_facts.next_update = None;
        let render = |part: Part, facts: &Facts| {
            self.render(class, part, facts)
                .map_err(|e| DraftError::Render {
                    template: format!("{}.{}", class.as_str(), part.as_str()),
                    message: describe(&e),
                })
        };
        Ok(Some(Draft {
            incident: incident.id,
            class: class.as_str().to_string(),
            stage,
            title: tidy(&render(Part::Title, &title_facts)?),
            body: tidy(&render(Part::Message(stage), &facts)?),
        }))
    }

    fn render(&self, class: Class, part: Part, facts: &Facts) -> Result<String, minijinja::Error> {
        let Some(source) = self.sources.get(&(class, part)) else {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::TemplateNotFound,
                format!("no template for {}.{}", class.as_str(), part.as_str()),
            ));
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.render_named_str(
            &format!("{}.{}", class.as_str(), part.as_str()),
            &source.text,
            facts,
        )
    }
}

/// Reads one templates file into `sources`, its problems into `issues` (a syntax error, which
/// stops reading, is the error); `complete` requires every member-facing class with every part
/// (the built-in file).
fn read_into(
    src: &SourceFile,
    sources: &mut BTreeMap<(Class, Part), Source>,
    complete: bool,
    issues: &mut Issues,
) -> Result<(), ConfigError> {
    let raw: BTreeMap<String, Spanned<RawSet>> = src.parse()?;
    for (name, set) in raw {
        let span = set.span();
        let class = match Class::parse(&name) {
            Some(class) if class.is_operational() => {
                issues.push(src.issue(
                    span,
                    &name,
                    format!("{name} is a state of the monitoring network: members never get a message about it"),
                ));
                continue;
            }
            Some(class) => class,
            None => {
                let known: Vec<&str> = Class::ALL
                    .iter()
                    .filter(|c| !c.is_operational())
                    .map(|c| c.as_str())
                    .collect();
                issues.push(src.issue(
                    span,
                    &name,
                    format!(
                        "unknown incident class; expected one of {}",
                        known.join(", ")
                    ),
                ));
                continue;
            }
        };
        for (part, text) in set.into_inner().parts() {
            let Some(text) = text else { continue };
            let (line, column) = src.line_col(text.span().start);
            let raw_start = &src.text()[text.span().start.min(src.text().len())..];
            // A multi-line string's opening quotes and the newline after them are not text.
            let (line, column) =
                if raw_start.starts_with("\"\"\"\n") || raw_start.starts_with("'''\n") {
                    (line + 1, 1)
                } else {
                    (line, column + 1)
                };
            sources.insert(
                (class, part),
                Source {
                    text: text.into_inner(),
                    file: src.name().to_string(),
                    line,
                    column,
                },
            );
        }
    }
    if complete {
        for class in Class::ALL.into_iter().filter(|c| !c.is_operational()) {
            for part in std::iter::once(Part::Title).chain(Stage::ALL.map(Part::Message)) {
                if !sources.contains_key(&(class, part)) {
                    issues.push(ConfigIssue {
                        file: src.name().to_string(),
                        line: 1,
                        column: 1,
                        field: format!("{}.{}", class.as_str(), part.as_str()),
                        message: "missing".to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// A template error located in its file: the template's own line added to where it starts.
fn template_issue(source: &Source, class: Class, part: Part, e: &minijinja::Error) -> ConfigIssue {
    let (line, column) = match e.line() {
        Some(l) if l > 1 => (source.line + l - 1, 1),
        _ => (source.line, source.column),
    };
    let mut message = describe(e);
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        let known = match part {
            Part::Title => "service, regions, region_count, failing, networks, since",
            Part::Message(Stage::Resolved) => {
                "service, regions, region_count, failing, networks, since, resolved_at, duration"
            }
            Part::Message(_) => {
                "service, regions, region_count, failing, networks, since, next_update"
            }
        };
        let what = match part {
            Part::Title => "title".to_string(),
            Part::Message(stage) => format!("{stage} message"),
        };
        message = format!("{message}: the {what} has no such name (it has {known})");
    }
    ConfigIssue {
        file: source.file.clone(),
        line,
        column,
        field: format!("{}.{}", class.as_str(), part.as_str()),
        message,
    }
}

/// A minijinja error in one line, without its own location suffix.
fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Paragraphs kept, each one line (templates may wrap lines, messages should not), and every
/// sentence starting with a capital: "the Shop" or "the Middle East" may open one.
fn tidy(text: &str) -> String {
    text.split("\n\n")
        .map(|p| capitalize(&p.split_whitespace().collect::<Vec<_>>().join(" ")))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The first letter of the text and of every sentence after ". ", "! " or "? " upper-cased.
fn capitalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    let mut prev = ' ';
    for c in text.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            if !c.is_whitespace() {
                start = false;
            }
            if c.is_whitespace() && matches!(prev, '.' | '!' | '?') {
                start = true;
            }
            out.push(c);
        }
        prev = c;
    }
    out
}

/// What a template may say, as the templates file documents it.
#[derive(Debug, Clone, Serialize)]
struct Facts {
    service: String,
    regions: String,
    region_count: usize,
    failing: bool,
    networks: String,
    since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_update: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
}

impl Facts {
    /// Made-up facts with what `stage` has, to render every template once at load.
    fn sample(stage: Stage, failing: bool) -> Facts {
        let resolved = stage == Stage::Resolved;
        Facts {
            service: "Example".to_string(),
            regions: "the Middle East and India".to_string(),
            region_count: 2,
            failing,
            networks: "Example Telecom".to_string(),
            since: "14:02 UTC".to_string(),
            next_update: (!resolved).then(|| "14:32 UTC".to_string()),
            resolved_at: resolved.then(|| "15:10 UTC".to_string()),
            duration: resolved.then(|| "1 hour 8 minutes".to_string()),
        }
    }

    fn of(
        incident: &IncidentRecord,
        class: Class,
        names: &Names<'_>,
        stage: Stage,
        now_ms: i64,
        cadence: Cadence,
    ) -> Result<Facts, DraftError> {
        let regions: Vec<String> = incident
            .regions
            .iter()
            .map(|id| {
                RegionId::parse(id)
                    .ok()
                    .and_then(|id| names.catalog.get(&id))
                    .map_or_else(|| id.clone(), |r| r.name.clone())
            })
            .collect();
        let services: BTreeSet<&str> = incident
            .targets
            .iter()
            .filter_map(|check| names.services.get(check).map(String::as_str))
            .collect();
        let service = if services.is_empty() {
            "our service".to_string()
        } else {
            join(&services.into_iter().map(str::to_string).collect::<Vec<_>>())
        };
        let networks: Vec<String> = incident
            .asns
            .iter()
            .map(|asn| {
                names
                    .networks
                    .get(asn)
                    .cloned()
                    .unwrap_or_else(|| format!("network AS{asn}"))
            })
            .collect();
        let failing = class == Class::OriginDown
            || incident
                .evidence
                .iter()
                .any(|e| e.failures > 0 && e.failures >= e.affected);
        let (next_update, resolved_at, duration) = if stage == Stage::Resolved {
            let Some(end) = incident.resolved_ms else {
                return Err(DraftError::NotResolved(incident.id));
            };
            let lasted = u64::try_from(end.saturating_sub(incident.onset_ms)).unwrap_or(0);
            (
                None,
                Some(clock(end, now_ms)),
                Some(duration_words(Duration::from_millis(lasted))),
            )
        } else {
            let every = i64::try_from(cadence.update_every.as_millis()).unwrap_or(i64::MAX);
            (
                Some(clock(now_ms.saturating_add(every), now_ms)),
                None,
                None,
            )
        };
        Ok(Facts {
            service,
            region_count: regions.len(),
            regions: named_regions(&regions),
            failing,
            networks: join(&networks),
            since: clock(incident.onset_ms, now_ms),
            next_update,
            resolved_at,
            duration,
        })
    }
}

/// "a", "a and b", "a, b and c".
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Region names joined, the tail counted once the list gets long.
fn named_regions(names: &[String]) -> String {
    if names.len() <= MAX_NAMED_REGIONS {
        return join(names);
    }
    let shown = MAX_NAMED_REGIONS - 1;
    let rest = names.len() - shown;
    let mut list: Vec<String> = names[..shown].to_vec();
    list.push(format!("{rest} other regions"));
    join(&list)
}

/// "14:02 UTC" on the day of `now_ms`, "27 Nov 23:58 UTC" on another.
fn clock(at_ms: i64, now_ms: i64) -> String {
    let utc = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    let (at, now) = (utc(at_ms), utc(now_ms));
    let hm = format!("{:02}:{:02} UTC", at.hour(), at.minute());
    if at.date() == now.date() {
        hm
    } else {
        let month = format!("{}", at.month());
        format!("{} {} {hm}", at.day(), &month[..3.min(month.len())])
    }
}

/// "less than a minute", "1 minute", "42 minutes", "2 hours", "1 hour 8 minutes".
fn duration_words(d: Duration) -> String {
    let minutes = (d.as_secs() + 30) / 60;
    if minutes == 0 {
        return "less than a minute".to_string();
    }
    let unit = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let (hours, minutes) = (minutes / 60, minutes % 60);
    match (hours, minutes) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}
