//! The `[alerting]` table of `coordinator.toml`: its raw form (spanned, strict) and its
//! validation into [`AlertingSettings`], every problem reported as `file:line:column: field:
//! message` like the rest of `crate::config`. Secret files (`*_file`) are read here, so
//! `coordinator validate` catches a missing one.
//!
//! Deliberately absent: secrets in `Debug` output ([`Secret`] prints as `<redacted>`).

use std::path::Path;
use std::time::Duration;

use meridian_shared::config::{Issues, SourceFile};
use serde::Deserialize;
use toml::Spanned;

use super::retry::RetryPolicy;

/// Which incidents a sink receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Site incidents (classes members experience) once they paged; tickets only with
    /// `tickets = true`.
    Site,
    /// The monitoring network's own states (probe faults, silent regions, clock skew): a
    /// low-urgency route, never a page.
    Operational,
}

impl Route {
    /// `site` or `operational`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Site => "site",
            Route::Operational => "operational",
        }
    }
}

/// A credential: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where and how a sink delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// An Alertmanager (API v2): `url` is its base, `/api/v2/alerts` is appended.
    Alertmanager {
        /// `http://alertmanager:9093`.
        url: url::Url,
        /// How often firing alerts (and resolved ones, for 5 minutes) are re-sent.
        resend_every: Duration,
    },
    /// A generic JSON webhook signed with HMAC-SHA256.
    Webhook {
        /// Where to POST.
        url: url::Url,
        /// The shared HMAC key.
        secret: Secret,
    },
    /// A Slack incoming webhook; the URL is the credential.
    Slack {
        /// `https://hooks.slack.com/services/...`.
        url: Secret,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The enqueue endpoint (default `https://events.pagerduty.com/v2/enqueue`).
        url: url::Url,
        /// The integration's routing key.
        routing_key: Secret,
    },
}

impl SinkKind {
    /// `alertmanager`, `webhook`, `slack` or `pagerduty`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Alertmanager { .. } => "alertmanager",
            SinkKind::Webhook { .. } => "webhook",
            SinkKind::Slack { .. } => "slack",
            SinkKind::PagerDuty { .. } => "pagerduty",
        }
    }
}

/// One `[[alerting.sink]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSettings {
    /// Unique name, for logs and counters (default: the kind).
    pub name: String,
    /// Which incidents it receives (default `site`).
    pub route: Route,
    /// Whether a `site` sink also receives tickets (slow drifts; default false).
    pub tickets: bool,
    /// Where and how.
    pub kind: SinkKind,
}

/// The `[alerting]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertingSettings {
    /// The sinks; none: nothing is sent and no dispatcher runs.
    pub sinks: Vec<SinkSettings>,
    /// Alerts waiting for delivery, per queue (the dispatcher's and each sink's; default 256).
    pub queue: usize,
    /// Retries of one delivery.
    pub retry: RetryPolicy,
    /// Runbook links: `{class}` in it is replaced by the class, or the class is appended.
    pub runbook_url: Option<String>,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        AlertingSettings {
            sinks: Vec::new(),
            queue: 256,
            retry: RetryPolicy::default(),
            runbook_url: None,
        }
    }
}

/// `[alerting]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    #[serde(default)]
    queue: Option<Spanned<i64>>,
    #[serde(default)]
    max_attempts: Option<Spanned<i64>>,
    #[serde(default)]
    max_retry_time: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    runbook_url: Option<Spanned<String>>,
    #[serde(default)]
    sink: Vec<Spanned<RawSink>>,
}

/// `[[alerting.sink]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    kind: Spanned<String>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    route: Option<Spanned<String>>,
    #[serde(default)]
    tickets: Option<bool>,
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    url_file: Option<Spanned<String>>,
    #[serde(default)]
    secret: Option<Spanned<String>>,
    #[serde(default)]
    secret_file: Option<Spanned<String>>,
    #[serde(default)]
    routing_key: Option<Spanned<String>>,
    #[serde(default)]
    routing_key_file: Option<Spanned<String>>,
    #[serde(default)]
    resend_every: Option<Spanned<String>>,
}

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

struct Ctx<'a> {
    src: &'a SourceFile,
    base: &'a Path,
    issues: &'a mut Issues,
}

impl Ctx<'_> {
    fn issue(&mut self, span: std::ops::Range<usize>, field: &str, message: impl Into<String>) {
        self.issues
            .push(self.src.issue(span, field.to_string(), message.into()));
    }

    fn duration(&mut self, v: &Spanned<String>, min: Duration, field: &str) -> Option<Duration> {
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) if d >= min => Some(d),
            Ok(d) => {
                self.issue(
                    v.span(),
                    field,
                    format!(
                        "{} is shorter than the minimum of {}",
                        humantime::format_duration(d),
                        humantime::format_duration(min)
                    ),
                );
                None
            }
            Err(e) => {
                self.issue(
                    v.span(),
                    field,
                    format!(
                        "{:?} is not a duration such as \"30s\" or \"2m\": {e}",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn count(&mut self, v: &Spanned<i64>, max: i64, field: &str) -> Option<usize> {
        let n = *v.get_ref();
        if (1..=max).contains(&n) {
            usize::try_from(n).ok()
        } else {
            self.issue(v.span(), field, format!("{n} is not between 1 and {max}"));
            None
        }
    }

    fn url(&mut self, text: &str, span: std::ops::Range<usize>, field: &str) -> Option<url::Url> {
        match url::Url::parse(text.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            _ => {
                self.issue(span, field, "not an absolute http(s) URL");
                None
            }
        }
    }

    /// The value given inline or read from a file (trimmed); exactly one of them.
    fn secret(
        &mut self,
        inline: Option<&Spanned<String>>,
        file: Option<&Spanned<String>>,
        at: std::ops::Range<usize>,
        field: &str,
    ) -> Option<String> {
        let short = field.rsplit('.').next().unwrap_or(field);
        match (inline, file) {
            (Some(v), None) if !v.get_ref().trim().is_empty() => Some(v.get_ref().trim().into()),
            (Some(v), None) => {
                self.issue(
                    v.span(),
                    field,
                    format!("is empty: give a value or `{short}_file`"),
                );
                None
            }
            (None, Some(f)) => {
                let path = self.base.join(f.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                    Ok(_) => {
                        self.issue(
                            f.span(),
                            &format!("{field}_file"),
                            format!("{} is empty", path.display()),
                        );
                        None
                    }
                    Err(e) => {
                        self.issue(
                            f.span(),
                            &format!("{field}_file"),
                            format!("cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (Some(_), Some(f)) => {
                self.issue(
                    f.span(),
                    &format!("{field}_file"),
                    format!("give `{short}` or `{short}_file`, not both"),
                );
                None
            }
            (None, None) => {
                self.issue(
                    at,
                    field,
                    format!("missing: give `{short}` or `{short}_file`"),
                );
                None
            }
        }
    }
}

/// Validates `[alerting]`; `base` resolves `*_file` paths.
pub fn validate(
    raw: RawAlerting,
    src: &SourceFile,
    base: &Path,
    issues: &mut Issues,
) -> AlertingSettings {
    let mut cx = Ctx { src, base, issues };
    let mut settings = AlertingSettings::default();
    if let Some(q) = &raw.queue {
        settings.queue = cx
            .count(q, 100_000, "alerting.queue")
            .unwrap_or(settings.queue);
    }
    if let Some(m) = &raw.max_attempts {
        settings.retry.max_attempts = cx
            .count(m, 20, "alerting.max_attempts")
            .unwrap_or(settings.retry.max_attempts);
    }
    if let Some(t) = &raw.max_retry_time
        && let Some(d) = cx.duration(t, Duration::from_secs(1), "alerting.max_retry_time")
    {
        settings.retry.max_total = d;
    }
    if let Some(t) = &raw.timeout
        && let Some(d) = cx.duration(t, Duration::from_millis(100), "alerting.timeout")
    {
        settings.retry.timeout = d;
    }
    if let Some(r) = &raw.runbook_url
        && cx
            .url(r.get_ref(), r.span(), "alerting.runbook_url")
            .is_some()
    {
        settings.runbook_url = Some(r.get_ref().trim().to_string());
    }
    for (i, s) in raw.sink.iter().enumerate() {
        let field = format!("alerting.sink[{i}]");
        if let Some(sink) = sink(&mut cx, s, &field) {
            if settings.sinks.iter().any(|o| o.name == sink.name) {
                let span = s.get_ref().name.as_ref().map_or(s.span(), Spanned::span);
                cx.issue(
                    span,
                    &format!("{field}.name"),
                    format!(
                        "a second sink named {:?}: give each sink a distinct `name`",
                        sink.name
                    ),
                );
            }
            settings.sinks.push(sink);
        }
    }
    settings
}

fn sink(cx: &mut Ctx<'_>, s: &Spanned<RawSink>, field: &str) -> Option<SinkSettings> {
    let at = s.span();
    let s = s.get_ref();
    let kind = s.kind.get_ref().as_str();
    // Which optional settings each kind takes; any other that is given is an error.
    let takes: &[&str] = match kind {
        "alertmanager" => &["url", "resend_every"],
        "webhook" => &["url", "secret", "secret_file"],
        "slack" => &["url", "url_file"],
        "pagerduty" => &["url", "routing_key", "routing_key_file"],
        other => {
            cx.issue(
                s.kind.span(),
                &format!("{field}.kind"),
                format!(
                    "unknown kind {other:?}: one of \"alertmanager\", \"webhook\", \"slack\", \"pagerduty\""
                ),
            );
            return None;
        }
    };
    let given = [
        ("url_file", s.url_file.as_ref()),
        ("secret", s.secret.as_ref()),
        ("secret_file", s.secret_file.as_ref()),
        ("routing_key", s.routing_key.as_ref()),
        ("routing_key_file", s.routing_key_file.as_ref()),
        ("resend_every", s.resend_every.as_ref()),
    ];
    let mut ok = true;
    for (name, v) in given {
        if let Some(v) = v
            && !takes.contains(&name)
        {
            cx.issue(
                v.span(),
                &format!("{field}.{name}"),
                format!("not a setting of {kind:?} sinks"),
            );
            ok = false;
        }
    }
    let route = match s.route.as_ref().map(|r| (r.get_ref().as_str(), r.span())) {
        None | Some(("site", _)) => Route::Site,
        Some(("operational", _)) => Route::Operational,
        Some((other, span)) => {
            cx.issue(
                span,
                &format!("{field}.route"),
                format!("{other:?} is not \"site\" or \"operational\""),
            );
            ok = false;
            Route::Site
        }
    };
    let name = match &s.name {
        Some(n) if super::is_name(n.get_ref()) => n.get_ref().clone(),
        Some(n) => {
            cx.issue(
                n.span(),
                &format!("{field}.name"),
                "must be 1 to 64 letters, digits, '-', '_' or '.'",
            );
            ok = false;
            String::new()
        }
        None => kind.to_string(),
    };
    let url = |cx: &mut Ctx<'_>| match &s.url {
        Some(u) => cx.url(u.get_ref(), u.span(), &format!("{field}.url")),
        None => {
            cx.issue(at.clone(), &format!("{field}.url"), "missing");
            None
        }
    };
    let kind = match kind {
        "alertmanager" => {
            let url = url(cx);
            let resend_every = match &s.resend_every {
                Some(r) => cx.duration(r, Duration::from_secs(1), &format!("{field}.resend_every")),
                None => Some(Duration::from_secs(60)),
            };
            SinkKind::Alertmanager {
                url: url?,
                resend_every: resend_every?,
            }
        }
        "webhook" => {
            let url = url(cx);
            let secret = cx.secret(
                s.secret.as_ref(),
                s.secret_file.as_ref(),
                at.clone(),
                &format!("{field}.secret"),
            );
            SinkKind::Webhook {
                url: url?,
                secret: Secret(secret?),
            }
        }
        "slack" => {
            let text = cx.secret(
                s.url.as_ref(),
                s.url_file.as_ref(),
                at.clone(),
                &format!("{field}.url"),
            )?;
            // The URL is the credential: the error names the field, never the value.
            if !(text.starts_with("https://") || text.starts_with("http://"))
                || url::Url::parse(&text).is_err()
            {
                cx.issue(at, &format!("{field}.url"), "not an absolute http(s) URL");
                return None;
            }
            SinkKind::Slack { url: Secret(text) }
        }
        _ => {
            let url = match &s.url {
                Some(u) => cx.url(u.get_ref(), u.span(), &format!("{field}.url")),
                None => url::Url::parse(PAGERDUTY_URL).ok(),
            };
            let key = cx.secret(
                s.routing_key.as_ref(),
                s.routing_key_file.as_ref(),
                at.clone(),
                &format!("{field}.routing_key"),
            );
            SinkKind::PagerDuty {
                url: url?,
                routing_key: Secret(key?),
            }
        }
    };
    ok.then_some(SinkSettings {
        name,
        route,
        tickets: s.tickets.unwrap_or(false),
        kind,
    })
}
