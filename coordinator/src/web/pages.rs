//! Staff pages, rendered on the server from the templates in `coordinator/web/templates/`
//! (embedded; minijinja, auto-escaped): the map, incidents, one incident, the member-message
//! queue, and the login form. Forms post back here with the session's CSRF token and are
//! answered with a redirect (post/redirect/get), or a page saying why not.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{Environment, Value as J, context};
use serde::Deserialize;
use serde_json::json;

use super::api::{self, Action};
use super::auth::{Staff, safe_next};
use super::view::status_words;
use super::{AppState, WebError};

/// The templates, by name.
const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("../../web/templates/base.html")),
    ("login.html", include_str!("../../web/templates/login.html")),
    ("map.html", include_str!("../../web/templates/map.html")),
    (
        "incidents.html",
        include_str!("../../web/templates/incidents.html"),
    ),
    (
        "incident.html",
        include_str!("../../web/templates/incident.html"),
    ),
    (
        "messages.html",
        include_str!("../../web/templates/messages.html"),
    ),
    (
        "message_forms.html",
        include_str!("../../web/templates/message_forms.html"),
    ),
    (
        "status.html",
        include_str!("../../web/templates/status.html"),
    ),
    ("error.html", include_str!("../../web/templates/error.html")),
];

/// A Unix-ms time as `2026-11-28 08:12:03 UTC`.
pub fn utc(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_or_else(
        |_| ms.to_string(),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    )
}

/// A duration in ms as people say it: `850 ms`, `42 s`, `3 min 12 s`, `2 h 5 min`.
pub fn duration(ms: i64) -> String {
    let s = ms / 1000;
    match ms {
        i64::MIN..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The template environment, every template parsed (a broken one fails the start).
pub fn environment() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| anyhow::anyhow!("web template {name}: {e}"))?;
    }
    env.add_filter("utc", |ms: Option<i64>| {
        ms.map_or_else(|| "—".to_string(), utc)
    });
    env.add_filter("dur", |ms: Option<i64>| {
        ms.map_or_else(|| "—".to_string(), duration)
    });
    env.add_filter("ms", |v: Option<f64>| {
        v.map_or_else(|| "—".to_string(), |v| format!("{v:.0} ms"))
    });
    env.add_filter("signed_ms", |v: Option<f64>| {
        v.map_or_else(|| "—".to_string(), |v| format!("{v:+.0} ms"))
    });
    env.add_filter("status_words", |s: String| status_words(&s).to_string());
    Ok(env)
}

/// Renders `name`; a failure is logged and becomes a plain error page.
fn render(state: &AppState, name: &str, ctx: J) -> Html<String> {
    let out = state.pages.get_template(name).and_then(|t| t.render(ctx));
    match out {
        Ok(html) => Html(html),
        Err(error) => {
            tracing::error!(template = name, error = %format!("{error:#}"), "rendering a page failed");
            Html(plain_page(
                "Something went wrong",
                "The page could not be rendered; the coordinator's log says why.",
            ))
        }
    }
}

/// A minimal page without templates (errors, 404).
pub fn plain_page(title: &str, text: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><main class=\"narrow\">\
         <h1>{t}</h1><p>{x}</p><p><a href=\"/\">Back to the map</a></p></main></body></html>",
        t = esc(title),
        x = esc(text)
    )
}

/// The logged-in user for templates.
fn me(staff: &Staff) -> J {
    let s = &staff.session;
    J::from_serialize(json!({
        "user": s.user,
        "role": s.role.as_str(),
        "csrf": s.csrf,
        "can_communicate": s.role.can_communicate(),
        "is_admin": s.role.is_admin(),
    }))
}

/// A page for an error of a form or page request.
fn error_page(state: &AppState, staff: Option<&Staff>, e: &WebError) -> Response {
    let status = e.status();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "web page failed");
    }
    let ctx = context! {
        title => "Not possible",
        me => staff.map(me),
        nav => "",
        message => e.to_string(),
    };
    (status, render(state, "error.html", ctx)).into_response()
}

/// The login page with an optional error.
pub fn login_page(
    state: &AppState,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    let ctx = context! {
        title => "Log in",
        me => J::from(()),
        nav => "",
        next => safe_next(next),
        error => error,
    };
    (status, render(state, "login.html", ctx)).into_response()
}

/// The login form's query.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    login_page(&state, StatusCode::OK, q.next.as_deref(), None)
}

/// `GET /`: the map, with a table of every region for readers without scripts.
pub async fn map(staff: Staff, State(state): State<Arc<AppState>>) -> Response {
    match api::current_regions(&state).await {
        Ok(regions) => {
            let ctx = context! {
                title => "Regions",
                me => me(&staff),
                nav => "map",
                regions => J::from_serialize(&regions.regions),
                generated_ms => regions.generated_ms,
            };
            render(&state, "map.html", ctx).into_response()
        }
        Err(e) => error_page(&state, Some(&staff), &e),
    }
}

/// `GET /incidents`.
pub async fn incidents(staff: Staff, State(state): State<Arc<AppState>>) -> Response {
    let result = async {
        let config = state.config()?;
        let list = api::list_incidents(&state, false, 200).await?;
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|(i, ttc)| api::incident_json(i, *ttc, &config))
            .collect();
        Ok::<_, WebError>(items)
    }
    .await;
    match result {
        Ok(items) => {
            let ctx = context! {
                title => "Incidents",
                me => me(&staff),
                nav => "incidents",
                incidents => J::from_serialize(&items),
            };
            render(&state, "incidents.html", ctx).into_response()
        }
        Err(e) => error_page(&state, Some(&staff), &e),
    }
}

/// `GET /incidents/{id}`.
pub async fn incident(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Response {
    let result = async {
        let config = state.config()?;
        let api::Loaded {
            record,
            ttc,
            messages,
            notes,
        } = api::load_incident(&state, id).await?;
        let mut value = api::incident_json(&record, ttc, &config);
        let evidence: Vec<serde_json::Value> = record
            .evidence
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                if let serde_json::Value::Object(m) = &mut v {
                    let name = config
                        .catalog
                        .by_id(&e.region)
                        .map_or_else(|| e.region.clone(), |r| r.name.clone());
                    m.insert("name".into(), json!(name));
                }
                v
            })
            .collect();
        let timeline: Vec<serde_json::Value> = api::merged_timeline(&record, &messages, &notes)
            .into_iter()
            .map(|(at, what)| json!({"at_ms": at, "what": what}))
            .collect();
        if let serde_json::Value::Object(m) = &mut value {
            m.insert("evidence".into(), json!(evidence));
            m.insert("timeline".into(), json!(timeline));
            m.insert("notes".into(), json!(notes));
            m.insert("scope".into(), json!(record.regions.join(",")));
        }
        Ok::<_, WebError>((value, messages))
    }
    .await;
    match result {
        Ok((incident, messages)) => {
            let ctx = context! {
                title => format!("Incident {id}"),
                me => me(&staff),
                nav => "incidents",
                incident => J::from_serialize(&incident),
                messages => J::from_serialize(&messages),
                back => format!("/incidents/{id}"),
            };
            render(&state, "incident.html", ctx).into_response()
        }
        Err(e) => error_page(&state, Some(&staff), &e),
    }
}

/// `GET /messages`: what waits for a community manager, and what was published lately.
pub async fn messages(staff: Staff, State(state): State<Arc<AppState>>) -> Response {
    let result = state
        .readers
        .read(|s| {
            let all = s.messages(None)?;
            let pending: Vec<_> = all
                .iter()
                .rev()
                .filter(|m| m.state.as_str() != "published")
                .cloned()
                .collect();
            let published = s.published_messages(20)?;
            Ok((pending, published))
        })
        .await;
    match result {
        Ok((pending, published)) => {
            let ctx = context! {
                title => "Member messages",
                me => me(&staff),
                nav => "messages",
                pending => J::from_serialize(&pending),
                published => J::from_serialize(&published),
                back => "/messages",
            };
            render(&state, "messages.html", ctx).into_response()
        }
        Err(e) => error_page(&state, Some(&staff), &e),
    }
}

/// A message form's fields.
#[derive(Debug, Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    back: Option<String>,
}

async fn message_form(
    state: Arc<AppState>,
    staff: Staff,
    id: u64,
    form: MessageForm,
    action: impl FnOnce(&MessageForm) -> Action,
) -> Response {
    let result = async {
        staff.csrf(form.csrf.as_deref())?;
        api::act(&state, &staff, id, action(&form)).await
    }
    .await;
    match result {
        Ok(record) => {
            let back = safe_next(form.back.as_deref());
            let back = if back == "/" {
                format!("/incidents/{}", record.incident)
            } else {
                back
            };
            Redirect::to(&format!("{back}#message-{id}")).into_response()
        }
        Err(e) => error_page(&state, Some(&staff), &e),
    }
}

/// The note form's fields.
#[derive(Debug, Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    csrf: Option<String>,
    text: String,
    #[serde(default)]
    at: Option<String>,
}

/// `POST /incidents/{id}/notes`.
pub async fn add_note(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    Form(form): Form<NoteForm>,
) -> Response {
    let result = async {
        staff.csrf(form.csrf.as_deref())?;
        api::add_note(
            &state,
            &staff,
            id,
            api::NewNote {
                text: form.text,
                at: form.at,
            },
        )
        .await
    }
    .await;
    match result {
        Ok(note) => Redirect::to(&format!("/incidents/{id}#note-{}", note.id)).into_response(),
        Err(e) => error_page(&state, Some(&staff), &e),
    }
}

/// `POST /messages/{id}/edit`.
pub async fn edit_message(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    Form(form): Form<MessageForm>,
) -> Response {
    message_form(state, staff, id, form, |f| Action::Edit {
        title: f.title.clone(),
        body: f.body.clone(),
    })
    .await
}

/// `POST /messages/{id}/approve`.
pub async fn approve_message(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    Form(form): Form<MessageForm>,
) -> Response {
    message_form(state, staff, id, form, |_| Action::Approve).await
}

/// `POST /messages/{id}/publish`.
pub async fn publish_message(
    staff: Staff,
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    Form(form): Form<MessageForm>,
) -> Response {
    message_form(state, staff, id, form, |_| Action::Publish).await
}

/// Renders the public status page (see `public`).
pub(super) fn status_page(state: &AppState, ctx: J) -> Html<String> {
    render(state, "status.html", ctx)
}
