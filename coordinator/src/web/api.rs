//! `/api/v1`: everything the pages show, as JSON, for scripts and other programs. The
//! document at `/api/v1/openapi.json` describes it (`coordinator/web/openapi.json`; a test
//! checks every route is in it).
//!
//! Errors are `{"error": "..."}` with a 4xx/5xx status. State changes need a community-manager
//! or sre-admin role and, with a browser session, the `X-CSRF-Token` header.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Staff, hash_password, new_secret, user_error};
use super::view::{self, RegionsView};
use super::{AppState, WebError, now_ms};
use crate::service::live::Event;
use crate::store::incidents::IncidentRecord;
use crate::store::messages::{MessageError, MessageRecord};
use crate::store::notes::{NoteError, NoteRecord};
use crate::store::rollup::PHASES;
use crate::store::users::{NewSession, Role, SessionKind, secret_hash};

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("../../web/openapi.json");

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /api/v1/me`: who is logged in, and the CSRF token scripts send with changes.
pub async fn me(staff: Staff) -> Json<Value> {
    let s = &staff.session;
    Json(json!({
        "user": s.user,
        "role": s.role,
        "kind": s.kind,
        "csrf": (s.kind == SessionKind::Browser).then_some(&s.csrf),
        "expires_ms": s.expires_ms,
        "can_communicate": s.role.can_communicate(),
        "is_admin": s.role.is_admin(),
    }))
}

/// The regions as of detection's latest view.
pub(super) async fn current_regions(state: &Arc<AppState>) -> Result<RegionsView, WebError> {
    let config = state.config()?;
    let fallbacks = state.latency.fallbacks(state, &config).await?;
    let live = state.handle.live_view().borrow().clone();
    Ok(view::regions(&live, &config, &fallbacks))
}

/// `GET /api/v1/regions`.
pub async fn regions(
    _: Staff,
    State(state): State<Arc<AppState>>,
) -> Result<Json<RegionsView>, WebError> {
    Ok(Json(current_regions(&state).await?))
}

/// `GET /api/v1/regions/{id}`: the region and its phases now against their baselines.
pub async fn region(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, WebError> {
    let all = current_regions(&state).await?;
    let region = all
        .regions
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| WebError::NotFound(format!("no region {id:?} in the catalog")))?;
    let config = state.config()?;
    let phases = state.latency.phases(&state, &config, &id).await?;
    let mut value = serde_json::to_value(&region).map_err(internal)?;
    if let Value::Object(map) = &mut value {
        map.insert(
            "phases".into(),
            serde_json::to_value(&*phases).map_err(internal)?,
        );
        map.insert("generated_ms".into(), json!(all.generated_ms));
    }
    Ok(Json(value))
}

/// The series query.
#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    hours: Option<u32>,
}

/// `GET /api/v1/regions/{id}/series?phase=connect&hours=6`: per-minute p50/p95, merged over
/// every check of the region.
pub async fn series(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<Value>, WebError> {
    let config = state.config()?;
    if config.catalog.by_id(&id).is_none() {
        return Err(WebError::NotFound(format!(
            "no region {id:?} in the catalog"
        )));
    }
    let phase = q.phase.unwrap_or_else(|| "connect".into());
    let Some(phase) = PHASES.iter().find(|p| **p == phase) else {
        return Err(WebError::BadRequest(format!(
            "phase {phase:?}: one of {}",
            PHASES.join(", ")
        )));
    };
    let hours = q.hours.unwrap_or(6);
    if !(1..=168).contains(&hours) {
        return Err(WebError::BadRequest("hours: 1 to 168".into()));
    }
    let checks: Vec<String> = config
        .targets
        .iter()
        .flat_map(|t| t.checks.iter().map(|c| c.id.to_string()))
        .collect();
    let now = now_ms();
    let from = now - i64::from(hours) * 3_600_000;
    let region = id.clone();
    let points = state
        .readers
        .read_rollups(move |s| s.rollup_region(&checks, &region, phase, from, now + 60_000, true))
        .await?;
    let points: Vec<Value> = points
        .iter()
        .map(|p| {
            json!({
                "t": p.minute_ms,
                "p50_ms": (p.p50_us / 100.0).round() / 10.0,
                "p95_ms": (p.p95_us / 100.0).round() / 10.0,
                "count": p.count,
            })
        })
        .collect();
    Ok(Json(json!({
        "region": id, "phase": phase, "step_ms": 60_000, "points": points,
    })))
}

fn internal(e: impl std::fmt::Display) -> WebError {
    WebError::Internal(e.to_string())
}

/// An incident as the API shows it: the stored record with region names, time to resolve and
/// time to communicate.
pub(super) fn incident_json(
    record: &IncidentRecord,
    ttc_ms: Option<i64>,
    config: &crate::config::CoordinatorConfig,
) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        let names: Vec<String> = record
            .regions
            .iter()
            .map(|r| {
                config
                    .catalog
                    .by_id(r)
                    .map_or_else(|| r.clone(), |x| x.name.clone())
            })
            .collect();
        map.insert("region_names".into(), json!(names));
        map.insert(
            "ttr_ms".into(),
            json!(record.resolved_ms.map(|r| r - record.onset_ms)),
        );
        map.insert("ttc_ms".into(), json!(ttc_ms));
        map.insert(
            "operational".into(),
            json!(crate::detect::Class::parse(&record.class).is_some_and(|c| c.is_operational())),
        );
    }
    value
}

/// The incident list's query.
#[derive(Debug, Deserialize)]
pub struct IncidentsQuery {
    #[serde(default)]
    open: Option<bool>,
    #[serde(default)]
    limit: Option<usize>,
}

/// Incidents newest first, with their times to communicate.
pub(super) async fn list_incidents(
    state: &Arc<AppState>,
    open_only: bool,
    limit: usize,
) -> Result<Vec<(IncidentRecord, Option<i64>)>, WebError> {
    state
        .readers
        .read(move |s| {
            let mut all = s.incidents(open_only)?;
            all.reverse();
            all.truncate(limit);
            all.into_iter()
                .map(|i| {
                    let ttc = s.time_to_communicate(i.id)?;
                    Ok((i, ttc))
                })
                .collect()
        })
        .await
}

/// `GET /api/v1/incidents?open=true&limit=100`: newest first.
pub async fn incidents(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Query(q): Query<IncidentsQuery>,
) -> Result<Json<Value>, WebError> {
    let config = state.config()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1_000);
    let list = list_incidents(&state, q.open.unwrap_or(false), limit).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|(i, ttc)| incident_json(i, *ttc, &config))
        .collect();
    Ok(Json(json!({ "incidents": items })))
}

/// One incident with what people did about it.
pub(super) struct Loaded {
    /// The incident.
    pub record: IncidentRecord,
    /// Its time to communicate, ms.
    pub ttc: Option<i64>,
    /// Its member messages.
    pub messages: Vec<MessageRecord>,
    /// People's notes.
    pub notes: Vec<NoteRecord>,
}

/// One incident with its messages and notes.
pub(super) async fn load_incident(state: &Arc<AppState>, id: u64) -> Result<Loaded, WebError> {
    state
        .readers
        .read(move |s| {
            let Some(record) = s.incident(id)? else {
                return Ok(None);
            };
            Ok(Some(Loaded {
                record,
                ttc: s.time_to_communicate(id)?,
                messages: s.messages(Some(id))?,
                notes: s.notes(id)?,
            }))
        })
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no incident {id}")))
}

/// `GET /api/v1/incidents/{id}`: the incident, its messages and a timeline merging detection's
/// history with the messages' drafting, approval and publication.
pub async fn incident(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, WebError> {
    let config = state.config()?;
    let Loaded {
        record,
        ttc,
        messages,
        notes,
    } = load_incident(&state, id).await?;
    let mut value = incident_json(&record, ttc, &config);
    if let Value::Object(map) = &mut value {
        map.insert("messages".into(), json!(messages));
        map.insert("notes".into(), json!(notes));
        map.insert(
            "timeline".into(),
            json!(
                merged_timeline(&record, &messages, &notes)
                    .into_iter()
                    .map(|(at_ms, what)| json!({"at_ms": at_ms, "what": what}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    Ok(Json(value))
}

/// A note to add.
#[derive(Debug, Deserialize)]
pub struct NewNote {
    /// The words.
    pub text: String,
    /// The moment it is about (RFC 3339); now when absent.
    #[serde(default)]
    pub at: Option<String>,
}

/// Adds a note by `staff` to incident `id` (community-manager or sre-admin); the note.
pub(super) async fn add_note(
    state: &Arc<AppState>,
    staff: &Staff,
    id: u64,
    note: NewNote,
) -> Result<NoteRecord, WebError> {
    if !staff.session.role.can_communicate() {
        return Err(WebError::Forbidden(
            "notes are written by community managers and SREs".into(),
        ));
    }
    let now = now_ms();
    let at_ms = match note.at.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => now,
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .or_else(|_| {
                // A browser's datetime-local field: minutes, UTC as the page shows times.
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                    .map(|t| t.and_utc().timestamp_millis())
            })
            .map_err(|_| {
                WebError::BadRequest(format!(
                    "at {text:?}: a time such as \"2026-11-28T14:02:00Z\""
                ))
            })?,
    };
    if at_ms > now + 60_000 {
        return Err(WebError::BadRequest(
            "a note cannot be about the future".into(),
        ));
    }
    let author = staff.user().to_owned();
    let text = note.text.trim().to_owned();
    let (who, words) = (author.clone(), text.clone());
    let note_id = state
        .handle
        .with_store(move |s| s.add_note(id, at_ms, &who, &words, now))
        .await?
        .map_err(|e| match e {
            NoteError::NoIncident(_) => WebError::NotFound(e.to_string()),
            NoteError::BadText => WebError::BadRequest(e.to_string()),
            NoteError::Store(e) => internal(e),
        })?;
    tracing::info!(incident = id, note = note_id, by = %author, "incident note added");
    Ok(NoteRecord {
        id: note_id,
        incident: id,
        at_ms,
        author,
        text,
        created_ms: now,
    })
}

/// `POST /api/v1/incidents/{id}/notes` (community-manager, sre-admin): `{text, at?}`.
pub async fn create_note(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(note): Json<NewNote>,
) -> Result<Response, WebError> {
    staff.csrf_header(&headers)?;
    let note = add_note(&state, &staff, id, note).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

/// Detection's timeline with the messages' moments, oldest first (shared with the
/// post-mortem export).
pub(super) use crate::export::merged_timeline;

/// `GET /api/v1/incidents/{id}/export`: the incident's post-mortem, as `coordinator incident
/// export ID --format json` prints it (region names from the running configuration's catalog).
pub async fn export_incident(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<crate::export::PostMortem>, WebError> {
    let config = state.config()?;
    let now = now_ms();
    // The chart reads rollups: the lane for long reads, not the quick pool.
    state
        .readers
        .read_rollups(move |s| crate::export::PostMortem::gather(s, id, &config.catalog, now))
        .await?
        .map(Json)
        .ok_or_else(|| WebError::NotFound(format!("no incident {id}")))
}

/// The trends' query.
#[derive(Debug, Deserialize)]
pub struct TrendsQuery {
    /// First month included, `YYYY-MM` (UTC).
    #[serde(default)]
    since: Option<String>,
}

/// `GET /api/v1/trends?since=2026-01`: time to detect, resolve and (site incidents)
/// communicate per month and class, as `coordinator trends --json` prints them.
pub async fn trends(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Query(q): Query<TrendsQuery>,
) -> Result<Json<crate::export::trends::Trends>, WebError> {
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(
            crate::export::trends::Month::parse(s)
                .ok_or_else(|| WebError::BadRequest(format!("since {s:?}: a month as YYYY-MM")))?,
        ),
    };
    let trends = state
        .readers
        .read(move |s| crate::export::gather_trends(s, since))
        .await?;
    Ok(Json(trends))
}

/// The message list's query.
#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    #[serde(default)]
    incident: Option<u64>,
    #[serde(default)]
    state: Option<String>,
}

/// `GET /api/v1/messages?incident=12&state=draft`.
pub async fn messages(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Value>, WebError> {
    if let Some(s) = &q.state
        && !["draft", "approved", "published"].contains(&s.as_str())
    {
        return Err(WebError::BadRequest(format!(
            "state {s:?}: one of draft, approved, published"
        )));
    }
    let incident = q.incident;
    let mut list = state.readers.read(move |s| s.messages(incident)).await?;
    if let Some(wanted) = q.state {
        list.retain(|m| m.state.as_str() == wanted);
    }
    list.reverse();
    Ok(Json(json!({ "messages": list })))
}

/// `GET /api/v1/messages/{id}`.
pub async fn message(
    _: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<MessageRecord>, WebError> {
    state
        .readers
        .read(move |s| s.message(id))
        .await?
        .map(Json)
        .ok_or_else(|| WebError::NotFound(format!("no message {id}")))
}

/// A refused message action as a web error.
pub(super) fn message_error(e: MessageError) -> WebError {
    match e {
        MessageError::Store(e) => WebError::from(e),
        MessageError::NotFound(_) => WebError::NotFound(e.to_string()),
        MessageError::Refused { .. } => WebError::Conflict(e.to_string()),
        MessageError::Invalid(_) => WebError::BadRequest(e.to_string()),
    }
}

/// What a person does to a message.
#[derive(Debug, Clone)]
pub(super) enum Action {
    /// New words (either may be left as they are).
    Edit {
        /// Headline.
        title: Option<String>,
        /// Message.
        body: Option<String>,
    },
    /// Approve as it reads.
    Approve,
    /// Publish (approved first).
    Publish,
}

/// Applies `action` to message `id` as `staff` (role checked here; CSRF by the caller),
/// through the store thread, and tells open pages.
pub(super) async fn act(
    state: &Arc<AppState>,
    staff: &Staff,
    id: u64,
    action: Action,
) -> Result<MessageRecord, WebError> {
    staff.communicator()?;
    let by = staff.user().to_owned();
    let now = now_ms();
    let what = format!("{action:?}");
    let record = state
        .handle
        .with_store(move |s| match action {
            Action::Edit { title, body } => {
                s.edit_message(id, title.as_deref(), body.as_deref(), &by, now)
            }
            Action::Approve => s.approve_message(id, &by, now),
            Action::Publish => s.publish_message(id, &by, now),
        })
        .await?
        .map_err(message_error)?;
    tracing::info!(
        message = id, incident = record.incident, state = record.state.as_str(),
        by = %staff.user(), action = %what.split_whitespace().next().unwrap_or(""),
        "member message changed"
    );
    state.handle.announce(Event::Message {
        id,
        incident: record.incident,
        state: record.state.as_str().to_string(),
    });
    Ok(record)
}

/// An edit's body.
#[derive(Debug, Deserialize)]
pub struct EditBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

/// `PUT /api/v1/messages/{id}`: new words; the message goes back to draft.
pub async fn edit_message(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Json(edit): Json<EditBody>,
) -> Result<Json<MessageRecord>, WebError> {
    staff.csrf_header(&headers)?;
    let action = Action::Edit {
        title: edit.title,
        body: edit.body,
    };
    Ok(Json(act(&state, &staff, id, action).await?))
}

/// `POST /api/v1/messages/{id}/approve`.
pub async fn approve_message(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Json<MessageRecord>, WebError> {
    staff.csrf_header(&headers)?;
    Ok(Json(act(&state, &staff, id, Action::Approve).await?))
}

/// `POST /api/v1/messages/{id}/publish`.
pub async fn publish_message(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Json<MessageRecord>, WebError> {
    staff.csrf_header(&headers)?;
    Ok(Json(act(&state, &staff, id, Action::Publish).await?))
}

/// `GET /api/v1/events`: server-sent events. `regions` (the region list, at once and at every
/// change, at most once a second), `incident` and `message` (`{id, state, ...}`: re-read the
/// API). A keep-alive comment every 15 s; the stream ends when the server shuts down.
pub async fn events(
    _: Staff,
    State(state): State<Arc<AppState>>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    struct Feed {
        state: Arc<AppState>,
        view: tokio::sync::watch::Receiver<Arc<crate::service::live::LiveView>>,
        events: tokio::sync::broadcast::Receiver<Event>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    }
    let mut view = state.handle.live_view();
    // The current view goes out at once, before any change.
    view.mark_changed();
    let feed = Feed {
        events: state.handle.events(),
        shutdown: state.shutdown.clone(),
        state,
        view,
    };
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        loop {
            if *f.shutdown.borrow() {
                return None;
            }
            tokio::select! {
                changed = f.view.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    f.view.borrow_and_update();
                    match current_regions(&f.state).await {
                        Ok(regions) => {
                            let data = serde_json::to_string(&regions).unwrap_or_default();
                            return Some((Ok(SseEvent::default().event("regions").data(data)), f));
                        }
                        Err(error) => tracing::warn!(%error, "live map update failed"),
                    }
                }
                event = f.events.recv() => {
                    let data = match event {
                        Ok(Event::Incident { id, class, state }) => {
                            ("incident", json!({"id": id, "class": class, "state": state}))
                        }
                        Ok(Event::Message { id, incident, state }) => {
                            ("message", json!({"id": id, "incident": incident, "state": state}))
                        }
                        // Skipped ahead: pages re-read what they show on the next event.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    };
                    return Some((Ok(SseEvent::default().event(data.0).data(data.1.to_string())), f));
                }
                _ = f.shutdown.changed() => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /api/v1/users` (sre-admin).
pub async fn users(
    staff: Staff,
    State(state): State<Arc<AppState>>,
) -> Result<Json<Value>, WebError> {
    staff.admin()?;
    let users = state.readers.read(|s| s.users()).await?;
    Ok(Json(json!({ "users": users })))
}

/// A new account.
#[derive(Debug, Deserialize)]
pub struct NewUser {
    name: String,
    role: String,
    password: String,
}

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// `POST /api/v1/users` (sre-admin): `{name, role, password}`.
pub async fn add_user(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(new): Json<NewUser>,
) -> Result<Response, WebError> {
    staff.admin()?;
    staff.csrf_header(&headers)?;
    let role = Role::parse(&new.role).ok_or_else(|| {
        WebError::BadRequest(format!(
            "role {:?}: one of viewer, community-manager, sre-admin",
            new.role
        ))
    })?;
    if new.password.chars().count() < MIN_PASSWORD {
        return Err(WebError::BadRequest(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        )));
    }
    let password = new.password;
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let name = new.name.clone();
    let now = now_ms();
    state
        .handle
        .with_store(move |s| s.add_user(&name, role, &phc, now))
        .await?
        .map_err(user_error)?;
    tracing::info!(user = %new.name, role = %role, by = %staff.user(), "user added");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": new.name, "role": role })),
    )
        .into_response())
}

/// `DELETE /api/v1/users/{name}` (sre-admin).
pub async fn remove_user(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, WebError> {
    staff.admin()?;
    staff.csrf_header(&headers)?;
    let who = name.clone();
    state
        .handle
        .with_store(move |s| s.remove_user(&who))
        .await?
        .map_err(user_error)?;
    tracing::info!(user = %name, by = %staff.user(), "user removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A token request.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    label: Option<String>,
    /// A duration such as `30d`; at most the configured `[web] api_token_ttl`.
    #[serde(default)]
    ttl: Option<String>,
}

/// `POST /api/v1/tokens`: an API token for the caller, with the caller's role. The token is
/// shown once; only its hash is kept.
pub async fn create_token(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(req): Json<TokenRequest>,
) -> Result<Response, WebError> {
    staff.csrf_header(&headers)?;
    let max = state.settings.api_token_ttl;
    let ttl = match &req.ttl {
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| WebError::BadRequest(format!("ttl {t:?}: {e}")))?
            .min(max),
        None => max,
    };
    let (secret, csrf) = (
        new_secret().map_err(internal)?,
        new_secret().map_err(internal)?,
    );
    let now = now_ms();
    let expires_ms = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let (user, hash, label) = (
        staff.user().to_owned(),
        secret_hash(&secret),
        req.label.clone(),
    );
    state
        .handle
        .with_store(move |s| {
            s.create_session(&NewSession {
                user: &user,
                kind: SessionKind::Token,
                label: label.as_deref(),
                secret_hash: &hash,
                csrf: &csrf,
                now_ms: now,
                expires_ms,
            })
        })
        .await?
        .map_err(user_error)?;
    tracing::info!(user = %staff.user(), label = ?req.label, "API token issued");
    let mut res = (
        StatusCode::CREATED,
        Json(json!({ "token": secret, "expires_ms": expires_ms, "role": staff.session.role })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
