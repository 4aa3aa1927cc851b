//! The Slack sink: an incoming webhook's `{text, blocks}`. `text` is the notification's
//! fallback; the blocks are a short section (summary and explanation) and a context line with
//! links. Slack answers `200 ok`; `429` carries `Retry-After`, which the retries honour.
//!
//! Deliberately absent: threading updates under the first message (incoming webhooks cannot;
//! that needs the Web API and a bot token).

use serde_json::{Value, json};

use super::{Alert, Links};

/// Slack's limit for a section's text is 3000 characters; explanations are far shorter, but a
/// pathological one must not make Slack refuse the alert.
const MAX_TEXT: usize = 2900;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The JSON body.
pub fn body(alert: &Alert, links: &Links) -> Value {
    let r = &alert.incident;
    let mark = if alert.is_resolved() {
        "RESOLVED"
    } else {
        match r.severity.as_str() {
            "page" => "PAGE",
            "ticket" => "TICKET",
            _ => "INFO",
        }
    };
    let text = format!("[{mark}] {}", alert.summary());
    let mut context = format!(
        "Incident #{} · {} · <{}|open in Meridian>",
        r.id,
        alert.transition,
        links.incident(r.id)
    );
    if let Some(runbook) = links.runbook(&r.class) {
        context.push_str(&format!(" · <{runbook}|runbook>"));
    }
    json!({
        "text": text,
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": clip(&format!("*{text}*\n{}", r.explanation), MAX_TEXT),
                },
            },
            {
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": context }],
            },
        ],
    })
}
