//! The public status page, its Atom feed and its JSON summary: no login, and nothing on them
//! that a person did not approve, apart from each region's state.
//!
//! # Decisions
//! - **A region's public state comes from confirmed site incidents only**: `outage` where one
//!   that includes the region leaves the site unreachable there, `degraded` where one makes
//!   it slow, `maintenance` where a public maintenance window is open over it and no incident
//!   beyond the windows' scope shows (an incident whose page a window holds back counts as
//!   the maintenance it is), `operational` otherwise. Faults of the monitoring network (a broken probe, a
//!   region cut off from the coordinator) never show: members would read them as ours.
//!   Regions without probes are not listed (nothing is known about them).
//! - **Maintenance**: public windows open now or starting within 7 days, with their scope in
//!   members' words (`web::maintenance::public_windows`).
//! - **Messages are the published ones only**, newest first, 50 at most in the feed (the usual
//!   size), one Atom entry per publication with a stable id; published words never change, so
//!   an entry never changes either.
//! - **Caching**: `Cache-Control: public, max-age=60` and a strong `ETag` on the feed and the
//!   summary (`304` to `If-None-Match`); members' readers poll, and the answer changes only when
//!   something is published or a state changes. The page itself is revalidated at every visit
//!   (`no-cache` with its `ETag`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value as J, context};
use serde::Serialize;

use super::maintenance::{PublicWindow, public_windows};
use super::{AppState, WebError};
use crate::config::CoordinatorConfig;
use crate::detect::Class;
use crate::service::live::LiveView;
use crate::store::messages::MessageRecord;

/// Entries in the feed.
const FEED_ENTRIES: usize = 50;

/// Messages on the page.
const PAGE_MESSAGES: usize = 20;

/// A region as members see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicRegion {
    /// Region id.
    pub id: String,
    /// Member-facing name.
    pub name: String,
    /// `operational`, `maintenance`, `degraded` or `outage`.
    pub state: &'static str,
    /// The same in words.
    pub state_words: &'static str,
}

/// A published message as members see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicMessage {
    /// Message id.
    pub id: u64,
    /// The incident it is about.
    pub incident: u64,
    /// `investigating`, `identified`, `monitoring` or `resolved`.
    pub stage: String,
    /// Headline.
    pub title: String,
    /// The message.
    pub body: String,
    /// Regions it concerns, by their member-facing names.
    pub regions: Vec<String>,
    /// When it was published, Unix ms.
    pub published_ms: i64,
}

/// Each monitored region's public state; `windows` are the maintenance windows in force.
pub fn public_regions(
    view: &LiveView,
    config: &CoordinatorConfig,
    windows: &[crate::maintenance::Window],
    now: i64,
) -> Vec<PublicRegion> {
    let open_windows: Vec<&crate::maintenance::Window> = windows
        .iter()
        .filter(|w| w.public && w.active_at(now).is_some())
        .collect();
    let mut monitored: BTreeMap<&str, bool> = BTreeMap::new();
    for cell in &view.cells {
        let unreachable = cell.status == crate::detect::RegionStatus::Failing;
        let e = monitored.entry(cell.region.as_str()).or_insert(false);
        *e |= unreachable;
    }
    config
        .catalog
        .regions()
        .iter()
        .filter_map(|r| {
            let id = r.id.to_string();
            let unreachable = *monitored.get(id.as_str())?;
            let mut state = "operational";
            for i in view
                .open
                .iter()
                .filter(|i| !i.operational && !i.held && i.regions.contains(&id))
            {
                let hard = matches!(
                    Class::parse(&i.class),
                    Some(Class::OriginDown | Class::DnsAuthoritative)
                ) || unreachable;
                state = if hard || state == "outage" {
                    "outage"
                } else {
                    "degraded"
                };
            }
            if state == "operational"
                && open_windows
                    .iter()
                    .any(|w| w.regions.is_empty() || w.regions.contains(&id))
            {
                state = "maintenance";
            }
            Some(PublicRegion {
                name: r.name.clone(),
                id,
                state,
                state_words: match state {
                    "outage" => "Outage",
                    "degraded" => "Degraded performance",
                    "maintenance" => "Scheduled maintenance",
                    _ => "Operational",
                },
            })
        })
        .collect()
}

fn public_message(m: &MessageRecord, config: &CoordinatorConfig) -> PublicMessage {
    PublicMessage {
        id: m.id,
        incident: m.incident,
        stage: m.stage.to_string(),
        title: m.title.clone(),
        body: m.body.clone(),
        regions: m.regions.iter().map(|r| config.region_name(r)).collect(),
        published_ms: m.published_ms.unwrap_or(m.drafted_ms),
    }
}

/// What the public page, summary and feed show.
struct Public {
    /// The minute it was gathered for, Unix ms.
    as_of: i64,
    regions: Vec<PublicRegion>,
    messages: Vec<PublicMessage>,
    maintenance: Vec<PublicWindow>,
}

async fn gather(state: &Arc<AppState>, limit: usize) -> Result<Public, WebError> {
    let config = state.config()?;
    let view = state.handle.live_view().borrow().clone();
    let messages = state
        .readers
        .read(move |s| s.published_messages(limit))
        .await?;
    let windows = state.handle.maintenance_windows();
    // Minute resolution: the page's ETag changes when a window opens or closes, not with
    // every request.
    let now = super::now_ms() / 60_000 * 60_000;
    Ok(Public {
        as_of: now,
        regions: public_regions(&view, &config, &windows, now),
        messages: messages
            .iter()
            .map(|m| public_message(m, &config))
            .collect(),
        maintenance: public_windows(&windows, &config, now),
    })
}

/// The site's public address: `[web] public_url`, else from the request's `Host`.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.settings.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Answers `304` when the client has this version, else `body` with caching headers.
fn cached(headers: &HeaderMap, content_type: &'static str, body: String) -> Response {
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    let etag = format!("\"{}\"", crate::store::users::hex(&digest.as_ref()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// `GET /status`.
pub async fn page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match gather(&state, PAGE_MESSAGES).await {
        Ok(Public {
            as_of,
            regions,
            messages,
            maintenance,
        }) => {
            let overall = if regions.is_empty() {
                "No regions are monitored yet"
            } else if regions.iter().any(|r| r.state == "outage") {
                "Some members cannot reach the service"
            } else if regions.iter().any(|r| r.state == "degraded") {
                "Some members may see slow pages"
            } else if regions.iter().any(|r| r.state == "maintenance") {
                "Scheduled maintenance in progress"
            } else {
                "All systems operational"
            };
            let ctx = context! {
                title => state.settings.title.clone(),
                overall => overall,
                regions => J::from_serialize(&regions),
                messages => J::from_serialize(&messages),
                maintenance => J::from_serialize(&maintenance),
                // The minute the page's data was gathered for: the same page within a minute
                // is the same bytes, so a revisit gets its 304.
                as_of => super::pages::utc(as_of),
            };
            // Revalidated at every visit (a 304 costs nothing): someone who just published
            // must see their words, not a copy from before.
            let html = super::pages::status_page(&state, ctx).0;
            let mut res = cached(&headers, "text/html; charset=utf-8", html);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /status/summary.json` and `GET /api/v1/status`.
pub async fn summary(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match gather(&state, PAGE_MESSAGES).await {
        Ok(Public {
            regions,
            messages,
            maintenance,
            ..
        }) => {
            let base = base_url(&state, &headers);
            let body = serde_json::json!({
                "title": state.settings.title,
                "page": format!("{base}/status"),
                "feed": format!("{base}/status/feed.atom"),
                "regions": regions,
                "maintenance": maintenance,
                "messages": messages,
            });
            cached(&headers, "application/json", body.to_string())
        }
        Err(e) => e.into_response(),
    }
}

fn datetime(ms: i64) -> atom_syndication::FixedDateTime {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .fixed_offset()
}

/// `GET /status/feed.atom`: one entry per published message.
pub async fn feed(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Public { messages, .. } = match gather(&state, FEED_ENTRIES).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let base = base_url(&state, &headers);
    let entries: Vec<atom_syndication::Entry> = messages
        .iter()
        .map(|m| {
            let when = datetime(m.published_ms);
            let mut entry = atom_syndication::Entry::default();
            entry.set_id(format!("{base}/status#message-{}", m.id));
            entry.set_title(format!("{}: {}", stage_words(&m.stage), m.title));
            entry.set_updated(when);
            entry.set_published(Some(when));
            let mut link = atom_syndication::Link::default();
            link.set_href(format!("{base}/status#message-{}", m.id));
            link.set_rel("alternate");
            entry.set_links(vec![link]);
            let mut content = atom_syndication::Content::default();
            content.set_content_type(Some("text".to_string()));
            let scope = if m.regions.is_empty() {
                String::new()
            } else {
                format!("\n\nRegions: {}", m.regions.join(", "))
            };
            content.set_value(Some(format!("{}{scope}", m.body)));
            entry.set_content(Some(content));
            entry
        })
        .collect();
    let mut feed = atom_syndication::Feed::default();
    feed.set_id(format!("{base}/status"));
    feed.set_title(state.settings.title.clone());
    feed.set_updated(datetime(messages.first().map_or(0, |m| m.published_ms)));
    let mut this = atom_syndication::Link::default();
    this.set_href(format!("{base}/status/feed.atom"));
    this.set_rel("self");
    let mut page = atom_syndication::Link::default();
    page.set_href(format!("{base}/status"));
    page.set_rel("alternate");
    feed.set_links(vec![this, page]);
    let mut author = atom_syndication::Person::default();
    author.set_name(state.settings.title.clone());
    feed.set_authors(vec![author]);
    feed.set_entries(entries);
    cached(
        &headers,
        "application/atom+xml; charset=utf-8",
        feed.to_string(),
    )
}

fn stage_words(stage: &str) -> &'static str {
    match stage {
        "investigating" => "Investigating",
        "identified" => "Identified",
        "monitoring" => "Monitoring",
        _ => "Resolved",
    }
}
