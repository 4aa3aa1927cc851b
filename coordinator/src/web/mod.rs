//! The coordinator's web side on `listen.http`: the regional latency map, incident pages, the
//! member-message workflow for community managers, the public status page with its Atom feed
//! and JSON summary, and the versioned JSON API (`/api/v1`, described by `openapi.json`) that
//! the pages themselves use.
//!
//! # Decisions
//! - **axum on hyper 1**, HTTP/1.1, plain HTTP: the coordinator is meant to sit behind the
//!   operator's TLS-terminating proxy like any other internal service; `[web] public_url`
//!   says when it is reached over https (cookies are then `Secure`).
//! - **Server-rendered pages** (minijinja templates embedded in the binary, auto-escaped),
//!   with scripts only where they earn their keep: the map (d3-geo over the vendored
//!   world-atlas, see `coordinator/web/`) and live updates over server-sent events. Every page
//!   works as a document without them: the map page carries a table of every region.
//! - **Everything offline**: scripts, styles and map data are embedded ([`assets`]), and every
//!   response says `Content-Security-Policy: default-src 'self'`, so an accidental reference to a
//!   CDN fails loudly in the browser instead of leaking members' visits to a third party.
//! - **Reads never queue behind ingest**: pages and the API read through their own read-only
//!   connections ([`Readers`], WAL lets them read while the store thread commits); the few
//!   writes (logins, message actions, accounts) go through the store thread like any other.
//! - **The live view** comes from the detection thread ([`crate::service::live`]): the map's
//!   states are detection's own conclusions, never recomputed here, so the map and the pages
//!   can never disagree with the incidents.
//! - **Access** ([`auth`]): staff pages and the API need a session (browser login or API
//!   token) and a role; the status page, its feed and summary, the assets and `/healthz` need
//!   none and show only what people approved and published, plus each region's state as far as
//!   confirmed site incidents say.

mod api;
pub mod assets;
pub mod auth;
mod maintenance;
mod pages;
mod public;
#[cfg(test)]
mod tests;
mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::alerting::AlertStats;
use crate::config::{CoordinatorConfig, WebSettings};
use crate::service::ServiceHandle;
use crate::store::{Store, StoreError};

pub use auth::{hash_password, new_secret};

/// The Content-Security-Policy of every response: nothing from anywhere but this origin, no
/// inline scripts or styles, no framing.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Read-only connections to the store, for pages and the API: a pool for quick reads
/// (sessions, incidents, messages) and a lane of its own for the long rollup reads behind the
/// map's latencies, so a region's week of sketches never holds up a login.
pub struct Readers {
    quick: Pool,
    rollups: Pool,
    background: Pool,
}

/// Connections handed to whichever caller comes first; a caller finding none waits for the
/// first one returned.
struct Pool {
    free: Mutex<Vec<Store>>,
    returned: std::sync::Condvar,
}

impl Pool {
    fn open(data_dir: &std::path::Path, n: usize) -> Result<Pool, StoreError> {
        let conns = (0..n.max(1))
            .map(|_| Store::open_reader(data_dir))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pool {
            free: Mutex::new(conns),
            returned: std::sync::Condvar::new(),
        })
    }

    /// Runs `f` on a connection of the pool (blocking).
    fn with<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let store = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(s) = free.pop() {
                    break s;
                }
                free = self
                    .returned
                    .wait(free)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // Returned even if `f` panics, so the pool never shrinks (and nobody waits forever).
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&store)));
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(store);
        self.returned.notify_one();
        match out {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Readers {
    /// Read-only connections to the database in `data_dir` (which must exist): three quick,
    /// one for rollups read for a request, one for background computations.
    pub fn open(data_dir: &std::path::Path) -> Result<Readers, StoreError> {
        Ok(Readers {
            quick: Pool::open(data_dir, 3)?,
            rollups: Pool::open(data_dir, 1)?,
            background: Pool::open(data_dir, 1)?,
        })
    }

    /// Runs `f` on a quick connection, off the runtime (SQLite blocks).
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        self.on(|r| &r.quick, f).await
    }

    /// As [`Readers::read`], on the rollup lane (reads of many minutes' sketches).
    pub async fn read_rollups<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        self.on(|r| &r.rollups, f).await
    }

    /// As [`Readers::read`], on the connection of background computations (the map's
    /// baselines), which nobody waits for.
    pub async fn read_background<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        self.on(|r| &r.background, f).await
    }

    /// Runs `f` on a connection of the pool `lane` picks, on a blocking thread.
    async fn on<T: Send + 'static>(
        self: &Arc<Self>,
        lane: fn(&Readers) -> &Pool,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || lane(&me).with(f))
            .await
            .map_err(|e| WebError::Internal(format!("reader task failed: {e}")))?
            .map_err(WebError::from)
    }
}

/// What every handler shares.
pub struct AppState {
    /// The running service: live view, events, the store thread, the configuration.
    pub handle: ServiceHandle,
    /// Read-only store connections.
    pub readers: Arc<Readers>,
    /// `[web]` as at start.
    pub settings: WebSettings,
    /// The alert dispatcher's counters, exported on `/metrics`; none without `[alerting]`
    /// sinks (or in the demo). Set by [`Web::with_alerts`].
    pub alerts: Option<AlertStats>,
    /// The page templates.
    pages: minijinja::Environment<'static>,
    /// Login attempts, for throttling ([`auth`]).
    logins: auth::Throttle,
    /// Regions' recent and baseline latencies from the rollups, refreshed lazily.
    latency: view::LatencyCache,
    /// Resolves when the server is shutting down: open event streams end with it.
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// The configuration in force.
    fn config(&self) -> Result<Arc<CoordinatorConfig>, WebError> {
        self.handle
            .config()
            .ok_or_else(|| WebError::Internal("the service has no configuration".into()))
    }

    /// Whether cookies must be `Secure`.
    fn secure_cookies(&self) -> bool {
        self.settings
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// An error a handler answers with: JSON under `/api/`, a page elsewhere.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// 400: the request is malformed or breaks a rule.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session.
    #[error("log in first")]
    Unauthenticated,
    /// 403: the role does not allow it, or the CSRF token is wrong.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the state of the thing does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// 429: too many failed logins.
    #[error("{0}")]
    TooMany(String),
    /// 500: our fault; logged.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        WebError::Internal(e.to_string())
    }
}

impl From<crate::service::ServiceError> for WebError {
    fn from(e: crate::service::ServiceError) -> WebError {
        WebError::Internal(e.to_string())
    }
}

impl WebError {
    /// The HTTP status it answers with.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unauthenticated => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "web request failed");
        }
        let body = serde_json::json!({ "error": self.to_string() });
        (status, axum::Json(body)).into_response()
    }
}

/// The whole site.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        // Public.
        .route("/healthz", get(|| async { "ok\n" }))
        // Prometheus: no session; `[web] metrics_token` guards it when set (crate::metrics).
        .route("/metrics", get(crate::metrics::scrape))
        .route("/status", get(public::page))
        .route("/status/feed.atom", get(public::feed))
        .route("/status/summary.json", get(public::summary))
        .route("/api/v1/status", get(public::summary))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/assets/{*path}", get(assets::serve))
        .route("/login", get(pages::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        // Staff pages.
        .route("/", get(pages::map))
        .route("/incidents", get(pages::incidents))
        .route("/incidents/{id}", get(pages::incident))
        .route("/incidents/{id}/notes", post(pages::add_note))
        .route("/messages", get(pages::messages))
        .route("/messages/{id}/edit", post(pages::edit_message))
        .route("/messages/{id}/approve", post(pages::approve_message))
        .route("/messages/{id}/publish", post(pages::publish_message))
        // The API.
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/regions", get(api::regions))
        .route("/api/v1/regions/{id}", get(api::region))
        .route("/api/v1/regions/{id}/series", get(api::series))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/incidents/{id}", get(api::incident))
        .route("/api/v1/trends", get(api::trends))
        .route("/api/v1/incidents/{id}/export", get(api::export_incident))
        .route("/api/v1/incidents/{id}/notes", post(api::create_note))
        .route("/api/v1/messages", get(api::messages))
        .route(
            "/api/v1/messages/{id}",
            get(api::message).put(api::edit_message),
        )
        .route("/api/v1/messages/{id}/approve", post(api::approve_message))
        .route("/api/v1/messages/{id}/publish", post(api::publish_message))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/users", get(api::users).post(api::add_user))
        .route(
            "/api/v1/users/{name}",
            axum::routing::delete(api::remove_user),
        )
        .route("/api/v1/tokens", post(api::create_token))
        .route(
            "/api/v1/maintenance",
            get(maintenance::list).post(maintenance::create),
        )
        .route(
            "/api/v1/maintenance/{id}",
            axum::routing::delete(maintenance::remove),
        )
        .fallback(not_found)
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        WebError::NotFound(format!("no such endpoint: {}", req.uri().path())).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::response::Html(pages::plain_page("Not found", "There is no page here.")),
        )
            .into_response()
    }
}

/// Headers every response carries.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// The web server, bound and ready to serve.
pub struct Web {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Web {
    /// Binds `addr` and prepares the site for `handle`'s service, reading the store in
    /// `data_dir`.
    pub async fn bind(
        addr: SocketAddr,
        handle: ServiceHandle,
        data_dir: &std::path::Path,
        settings: WebSettings,
    ) -> anyhow::Result<Web> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding the web server on {addr}: {e}"))?;
        Web::with_listener(listener, handle, data_dir, settings)
    }

    /// As [`Web::bind`], on a listener already bound.
    pub fn with_listener(
        listener: tokio::net::TcpListener,
        handle: ServiceHandle,
        data_dir: &std::path::Path,
        settings: WebSettings,
    ) -> anyhow::Result<Web> {
        let readers = Arc::new(Readers::open(data_dir)?);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState {
            handle,
            readers,
            settings,
            alerts: None,
            pages: pages::environment()?,
            logins: auth::Throttle::default(),
            latency: view::LatencyCache::default(),
            shutdown,
        });
        Ok(Web {
            listener,
            state,
            stop,
        })
    }

    /// Exports the alert dispatcher's counters on `/metrics`.
    pub fn with_alerts(mut self, alerts: AlertStats) -> Web {
        Arc::get_mut(&mut self.state)
            .expect("the state is shared only once the server runs")
            .alerts = Some(alerts);
        self
    }

    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves; open event streams are ended, then requests in
    /// flight finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Web {
            listener,
            state,
            stop,
        } = self;
        tokio::spawn(view::baselines(state.clone(), state.shutdown.clone()));
        let app = router(state);
        let graceful = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(graceful)
            .await
        {
            tracing::error!(%error, "web server failed");
        }
    }
}

/// Now, Unix ms.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
