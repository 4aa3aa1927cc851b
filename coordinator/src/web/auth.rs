//! Logging in and out, sessions and API tokens, roles and CSRF.
//!
//! # Decisions
//! - **Secrets** are 32 random bytes (hex) from the system's generator; the store keeps only
//!   their SHA-256 ([`crate::store::users`]). A browser gets its secret in an `HttpOnly`,
//!   `SameSite=Strict` cookie (`Secure` behind https); a program sends an API token as
//!   `Authorization: Bearer`.
//! - **CSRF**: every form of a logged-in page carries the session's own CSRF token, and every
//!   state-changing request made with a browser session must present it (a form field, or the
//!   `X-CSRF-Token` header from scripts); `SameSite=Strict` is the second line. Requests made
//!   with an API token need none: no other site can make a browser send that header.
//! - **Password checks** run off the runtime (Argon2id is deliberately slow) and a name that
//!   keeps failing is throttled: after five failures, each further attempt waits a minute, then
//!   longer, up to fifteen; a success clears it. Unknown names cost the same work as known
//!   ones, so timing does not tell which names exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{AppState, WebError, now_ms};
use crate::store::users::{NewSession, Role, Session, SessionKind, UserError, secret_hash};

/// The session cookie's name.
pub const COOKIE: &str = "meridian_session";

/// Failures before a name is throttled.
const FREE_FAILURES: u32 = 5;

/// The longest a throttled name waits, ms.
const MAX_WAIT_MS: i64 = 15 * 60_000;

/// Names tracked at most; beyond, the table is cleared (an attacker spraying names gets no
/// more than the throttle of a fresh table, and the coordinator's memory stays bounded).
const MAX_TRACKED: usize = 10_000;

/// Hashes a password with Argon2id's default parameters into a PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC string `phc`.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A fresh secret: 32 random bytes, hex.
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random generator failed"))?;
    Ok(crate::store::users::hex(&bytes))
}

/// A PHC string of a password nobody has, verified against for unknown names.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("meridian: no such user").unwrap_or_default())
}

/// Failed logins by name.
#[derive(Default)]
pub(super) struct Throttle(Mutex<HashMap<String, (u32, i64)>>);

impl Throttle {
    /// How long `name` must still wait, ms (0: go ahead).
    fn wait_ms(&self, name: &str, now: i64) -> i64 {
        let table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match table.get(name) {
            Some(&(failures, last)) if failures >= FREE_FAILURES => {
                let over = (failures - FREE_FAILURES).min(4);
                let wait = (60_000i64 << over).min(MAX_WAIT_MS);
                (last + wait - now).max(0)
            }
            _ => 0,
        }
    }

    fn failed(&self, name: &str, now: i64) {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= MAX_TRACKED && !table.contains_key(name) {
            table.clear();
        }
        let entry = table.entry(name.to_owned()).or_insert((0, now));
        *entry = (entry.0.saturating_add(1), now);
    }

    fn succeeded(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

/// A logged-in request: who, with which role, through which kind of session.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The session as stored.
    pub session: Session,
}

impl Staff {
    /// The user's name.
    pub fn user(&self) -> &str {
        &self.session.user
    }

    /// Refuses unless the role may work on member messages.
    pub fn communicator(&self) -> Result<(), WebError> {
        if self.session.role.can_communicate() {
            Ok(())
        } else {
            Err(WebError::Forbidden(format!(
                "{} is a {}: editing, approving and publishing member messages needs the community-manager or sre-admin role",
                self.session.user, self.session.role
            )))
        }
    }

    /// Refuses unless the role is sre-admin.
    pub fn admin(&self) -> Result<(), WebError> {
        if self.session.role.is_admin() {
            Ok(())
        } else {
            Err(WebError::Forbidden(format!(
                "{} is a {}: managing accounts needs the sre-admin role",
                self.session.user, self.session.role
            )))
        }
    }

    /// Refuses a state change from a browser session without its CSRF token.
    pub fn csrf(&self, presented: Option<&str>) -> Result<(), WebError> {
        if self.session.kind == SessionKind::Token {
            return Ok(());
        }
        match presented {
            Some(t) if constant_time_eq(t.as_bytes(), self.session.csrf.as_bytes()) => Ok(()),
            _ => Err(WebError::Forbidden(
                "missing or wrong CSRF token: reload the page and try again".into(),
            )),
        }
    }

    /// As [`Staff::csrf`], with the token from the `X-CSRF-Token` header.
    pub fn csrf_header(&self, headers: &HeaderMap) -> Result<(), WebError> {
        self.csrf(headers.get("x-csrf-token").and_then(|v| v.to_str().ok()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The secret a request presents: a bearer token, else the session cookie.
fn presented_secret(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = auth.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    cookie(headers, COOKIE)
}

/// A cookie's value.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The session a request presents, if it is live.
pub(super) async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, WebError> {
    let Some(secret) = presented_secret(headers) else {
        return Ok(None);
    };
    let hash = secret_hash(&secret);
    let now = now_ms();
    state.readers.read(move |s| s.session(&hash, now)).await
}

/// Why a request was not let in.
pub enum Rejection {
    /// A page: go and log in, then come back.
    Login(String),
    /// The API: 401.
    Api(WebError),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Login(next) => {
                let to = format!("/login?next={}", urlencode(&next));
                Redirect::to(&to).into_response()
            }
            Rejection::Api(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Staff {
    type Rejection = Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let api = parts.uri.path().starts_with("/api/");
        match session_of(state, &parts.headers).await {
            Ok(Some(session)) => Ok(Staff { session }),
            Ok(None) if api => Err(Rejection::Api(WebError::Unauthenticated)),
            Ok(None) => Err(Rejection::Login(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/".to_string(), |p| p.to_string()),
            )),
            Err(e) => Err(Rejection::Api(e)),
        }
    }
}

/// Percent-encodes everything but unreserved characters.
pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where to go after logging in: a path on this site, never another site.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let now = now_ms();
    let name = form.name.trim().to_lowercase();
    let wait = state.logins.wait_ms(&name, now);
    if wait > 0 {
        return Ok(super::pages::login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            form.next.as_deref(),
            Some(&format!(
                "Too many failed attempts for this name: try again in {} s.",
                (wait + 999) / 1000
            )),
        ));
    }
    let lookup = name.clone();
    let credentials = state.readers.read(move |s| s.credentials(&lookup)).await?;
    let password = form.password;
    let (ok, role) = tokio::task::spawn_blocking(move || match credentials {
        Some((role, phc)) => (verify_password(&password, &phc), Some(role)),
        None => {
            let _ = verify_password(&password, decoy());
            (false, None)
        }
    })
    .await
    .map_err(|e| WebError::Internal(format!("password check failed: {e}")))?;
    if !ok {
        state.logins.failed(&name, now);
        tracing::info!(user = %name, "web login refused");
        return Ok(super::pages::login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            form.next.as_deref(),
            Some("Wrong name or password."),
        ));
    }
    state.logins.succeeded(&name);
    let secret = new_secret().map_err(|e| WebError::Internal(e.to_string()))?;
    let csrf = new_secret().map_err(|e| WebError::Internal(e.to_string()))?;
    let ttl = i64::try_from(state.settings.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_ms = now.saturating_add(ttl);
    let hash = secret_hash(&secret);
    let user = name.clone();
    state
        .handle
        .with_store(move |s| {
            s.create_session(&NewSession {
                user: &user,
                kind: SessionKind::Browser,
                label: None,
                secret_hash: &hash,
                csrf: &csrf,
                now_ms: now,
                expires_ms,
            })
        })
        .await?
        .map_err(user_error)?;
    tracing::info!(user = %name, role = ?role.map(Role::as_str), "web login");
    let mut res = Redirect::to(&safe_next(form.next.as_deref())).into_response();
    let cookie = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl / 1000,
        if state.secure_cookies() {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// The logout form's field.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /logout`: ends the session (with its CSRF token: nobody else may log you out).
pub async fn logout(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, WebError> {
    staff.csrf(form.csrf.as_deref())?;
    if let Some(secret) = presented_secret(&headers) {
        let hash = secret_hash(&secret);
        state
            .handle
            .with_store(move |s| s.end_session(&hash))
            .await??;
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("meridian_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(res)
}

/// A refused account change as a web error.
pub(super) fn user_error(e: UserError) -> WebError {
    match e {
        UserError::Store(e) => WebError::from(e),
        UserError::NotFound(_) => WebError::NotFound(e.to_string()),
        UserError::Exists(_) | UserError::LastAdmin(_) => WebError::Conflict(e.to_string()),
        UserError::BadName(_) => WebError::BadRequest(e.to_string()),
    }
}
