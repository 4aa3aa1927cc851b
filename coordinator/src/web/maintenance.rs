//! Maintenance windows on the web side: `/api/v1/maintenance` (list for staff, create and
//! delete for sre-admins) and what the public status page shows of them.
//!
//! Windows of `coordinator.toml` are listed with `"source": "config"` and cannot be deleted
//! here (the file is the truth; edit it and reload). A created window is validated exactly as
//! the file's are (`crate::maintenance`), stored, and in force for detection as soon as the
//! response is sent.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::auth::Staff;
use super::{AppState, WebError, now_ms};
use crate::config::CoordinatorConfig;
use crate::maintenance::{Known, Occurrence, RawWindow, Source, UPCOMING_DAYS, Window};
use crate::store::maintenance::StoredWindow;

/// Occurrences listed ahead per window.
const UPCOMING_MAX: usize = 10;

const DAY_MS: i64 = 86_400_000;

/// One window as the API shows it.
#[derive(Debug, Serialize)]
pub struct WindowView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Target ids; every target when empty.
    pub targets: Vec<String>,
    /// Region ids; every region when empty.
    pub regions: Vec<String>,
    /// Listed on the public status page.
    pub public: bool,
    /// `config` or `api`.
    pub source: Source,
    /// The schedule in words.
    pub schedule: String,
    /// IANA time zone.
    pub timezone: String,
    /// The occurrence open now, if any.
    pub active: Option<Occurrence>,
    /// Occurrences starting in the next 7 days (after the active one).
    pub upcoming: Vec<Occurrence>,
    /// Whether it can never open again.
    pub over: bool,
    /// As written.
    pub spec: RawWindow,
    /// When it was created (stored windows), Unix ms.
    pub created_ms: Option<i64>,
    /// Who created it (stored windows).
    pub created_by: Option<String>,
}

/// The view of `w` at `now`.
pub fn window_view(w: &Window, stored: Option<&StoredWindow>, now: i64) -> WindowView {
    let active = w.active_at(now);
    let upcoming = w
        .occurrences(now, now + UPCOMING_DAYS * DAY_MS, UPCOMING_MAX + 1)
        .into_iter()
        .filter(|o| o.start_ms > now)
        .take(UPCOMING_MAX)
        .collect();
    WindowView {
        id: w.id.clone(),
        title: w.title.clone(),
        targets: w.targets.clone(),
        regions: w.regions.clone(),
        public: w.public,
        source: w.source,
        schedule: w.describe(),
        timezone: w.timezone.to_string(),
        active,
        upcoming,
        over: w.is_over(now),
        spec: w.raw.clone(),
        created_ms: stored.map(|s| s.created_ms),
        created_by: stored.map(|s| s.created_by.clone()),
    }
}

/// `GET /api/v1/maintenance`: every window in force, the file's first.
pub async fn list(
    _staff: Staff,
    State(state): State<Arc<AppState>>,
) -> Result<Json<Value>, WebError> {
    let stored = state.readers.read(|s| s.maintenance_windows()).await?;
    let now = now_ms();
    let windows: Vec<WindowView> = state
        .handle
        .maintenance_windows()
        .iter()
        .map(|w| {
            let meta = stored.iter().find(|s| s.raw.id == w.id);
            window_view(w, meta.filter(|_| w.source == Source::Api), now)
        })
        .collect();
    Ok(Json(json!({ "windows": windows })))
}

/// Validates a window against the configuration in force.
pub fn validate(raw: &RawWindow, config: &CoordinatorConfig) -> Result<Window, WebError> {
    let (targets, regions) = config.maintenance_scope();
    raw.validate(
        Source::Api,
        &Known {
            targets: &targets,
            regions: &regions,
        },
    )
    .map_err(|problems| {
        WebError::BadRequest(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// `POST /api/v1/maintenance` (sre-admin): a window as `coordinator.toml` writes one, in
/// JSON. `201` with the window; `400` with every problem; `409` when the id is taken.
pub async fn create(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(raw): Json<RawWindow>,
) -> Result<Response, WebError> {
    staff.admin()?;
    staff.csrf_header(&headers)?;
    let config = state.config()?;
    let window = validate(&raw, &config)?;
    if config.maintenance.iter().any(|w| w.id == raw.id) {
        return Err(WebError::Conflict(format!(
            "maintenance window {:?} is defined in coordinator.toml",
            raw.id
        )));
    }
    let now = now_ms();
    let by = staff.user().to_owned();
    let spec = raw.clone();
    let added = state
        .handle
        .with_store(move |s| s.add_maintenance(&spec, &by, now))
        .await??;
    if !added {
        return Err(WebError::Conflict(format!(
            "a maintenance window {:?} exists",
            raw.id
        )));
    }
    state.handle.refresh_maintenance().await?;
    tracing::info!(id = %window.id, schedule = %window.describe(), by = %staff.user(), "maintenance window added");
    let stored = StoredWindow {
        raw,
        created_ms: now,
        created_by: staff.user().to_owned(),
    };
    Ok((
        StatusCode::CREATED,
        Json(window_view(&window, Some(&stored), now)),
    )
        .into_response())
}

/// `DELETE /api/v1/maintenance/{id}` (sre-admin): ends and forgets a stored window; a page it
/// held back goes out at detection's next tick if the incident is still open.
pub async fn remove(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, WebError> {
    staff.admin()?;
    staff.csrf_header(&headers)?;
    let config = state.config()?;
    if config.maintenance.iter().any(|w| w.id == id) {
        return Err(WebError::Conflict(format!(
            "maintenance window {id:?} is defined in coordinator.toml: remove it there and reload"
        )));
    }
    let which = id.clone();
    let removed = state
        .handle
        .with_store(move |s| s.remove_maintenance(&which))
        .await??;
    if !removed {
        return Err(WebError::NotFound(format!("no maintenance window {id:?}")));
    }
    state.handle.refresh_maintenance().await?;
    tracing::info!(id = %id, by = %staff.user(), "maintenance window removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A window as members see it on the status page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicWindow {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Member-facing names of the regions; empty for every region.
    pub regions: Vec<String>,
    /// Names of the targets; empty for all.
    pub targets: Vec<String>,
    /// Open now.
    pub active: bool,
    /// The occurrence shown: the open one, else the next, Unix ms.
    pub start_ms: i64,
    /// Its end, Unix ms.
    pub end_ms: i64,
    /// The schedule in words (recurring windows), or the one-off's times.
    pub schedule: String,
}

/// Public windows open now or starting within 7 days: one line each (the open or next
/// occurrence), open ones first, then by start.
pub fn public_windows(
    windows: &[Window],
    config: &CoordinatorConfig,
    now: i64,
) -> Vec<PublicWindow> {
    let mut out: Vec<PublicWindow> = windows
        .iter()
        .filter(|w| w.public)
        .filter_map(|w| {
            let o = w
                .occurrences(now, now + UPCOMING_DAYS * DAY_MS, 1)
                .into_iter()
                .next()?;
            Some(PublicWindow {
                id: w.id.clone(),
                title: w.title.clone(),
                regions: w.regions.iter().map(|r| config.region_name(r)).collect(),
                targets: w
                    .targets
                    .iter()
                    .map(|t| {
                        config
                            .targets
                            .iter()
                            .find(|x| &x.id == t)
                            .map_or_else(|| t.clone(), |x| x.name.clone())
                    })
                    .collect(),
                active: o.start_ms <= now,
                start_ms: o.start_ms,
                end_ms: o.end_ms,
                schedule: w.describe(),
            })
        })
        .collect();
    out.sort_by_key(|w| (!w.active, w.start_ms));
    out
}
