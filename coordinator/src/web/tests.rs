//! The web side over real HTTP on 127.0.0.1, against a running service: who may see and do
//! what, the member-message workflow from draft to the public page and feed, sessions, CSRF,
//! tokens, throttling, the live event stream, and the API document. Pure views are tested on
//! hand-made inputs. Every wait is bounded.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::detect::{RegionCell, RegionStatus};
use crate::drafts::{Draft, Stage};
use crate::pki::Ca;
use crate::service::live::{LiveView, OpenIncident};
use crate::service::{Service, ServiceConfig};
use crate::store::incidents::{IncidentRecord, StoredState};
use crate::store::users::Role;

const WAIT: Duration = Duration::from_secs(10);

const CONFIG: &str = r#"
data_dir = "data"
[listen]
quic = "127.0.0.1:0"
http = "127.0.0.1:0"
[[target]]
id = "site"
name = "Example shop"
[[target.http]]
id = "web"
url = "http://127.0.0.1:9/"
"#;

fn config() -> Arc<CoordinatorConfig> {
    let src = meridian_shared::config::SourceFile::new("coordinator.toml", CONFIG);
    Arc::new(CoordinatorConfig::from_source(&src, Path::new("/nonexistent")).unwrap())
}

/// A service and its web side on 127.0.0.1.
struct Site {
    addr: SocketAddr,
    handle: ServiceHandle,
    _dir: tempfile::TempDir,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Site {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
    }
}

async fn site_with(settings: WebSettings) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let service = Service::bind(
        socket,
        Ca::load_or_create(data).unwrap(),
        Store::open(data).unwrap(),
        ServiceConfig {
            targets: Some(config()),
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    let handle = service.handle();
    let (stop_service, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(service.run(async {
        let _ = rx.await;
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web = Web::with_listener(listener, handle.clone(), data, settings).unwrap();
    let addr = web.local_addr().unwrap();
    let (stop_web, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(web.run(async {
        let _ = rx.await;
    }));
    Site {
        addr,
        handle,
        _dir: dir,
        stops: vec![stop_service, stop_web],
    }
}

async fn site() -> Site {
    site_with(WebSettings::default()).await
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request (`Connection: close`), raw, so that the test sees exactly what a
/// browser would.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Answer {
    let c = cookie.map(|c| format!("meridian_session={c}"));
    let headers: Vec<(&str, &str)> = c.iter().map(|c| ("Cookie", c.as_str())).collect();
    request(addr, "GET", path, &headers, "").await
}

/// Adds a user with `password` through the store thread.
async fn add_user(site: &Site, name: &str, role: Role, password: &str) {
    let phc = hash_password(password).unwrap();
    let name = name.to_owned();
    site.handle
        .with_store(move |s| s.add_user(&name, role, &phc, 1))
        .await
        .unwrap()
        .unwrap();
}

/// Logs in through the form; the session cookie's value.
async fn login(site: &Site, name: &str, password: &str) -> String {
    let body = format!("name={name}&password={password}&next=%2Fincidents");
    let a = request(
        site.addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    )
    .await;
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(a.header("location"), Some("/incidents"));
    let cookie = a.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie
        .split(';')
        .next()
        .and_then(|c| c.strip_prefix("meridian_session="))
        .unwrap()
        .to_string()
}

/// The CSRF token of a session.
async fn csrf(site: &Site, cookie: &str) -> String {
    let me = get(site.addr, "/api/v1/me", Some(cookie)).await.json();
    me["csrf"].as_str().unwrap().to_string()
}

/// A resolved-looking site incident with its investigating draft offered; the message id.
async fn incident_with_draft(site: &Site, id: u64) -> u64 {
    let record = IncidentRecord {
        id,
        class: "regional-network".into(),
        state: StoredState::Confirmed,
        severity: "page".into(),
        regions: vec!["me-central".into()],
        targets: vec!["web".into()],
        asns: vec![],
        probe: None,
        edge: None,
        onset_ms: 1_000_000,
        detected_ms: 1_030_000,
        ttd_ms: 30_000,
        paged_ms: Some(1_040_000),
        resolved_ms: None,
        explanation: "Round trips from the Middle East grew by 180 ms; server time unchanged."
            .into(),
        evidence: vec![],
        timeline: vec![],
        updated_ms: 1_030_000,
        maintenance: Default::default(),
    };
    let draft = Draft {
        incident: id,
        class: "regional-network".into(),
        stage: Stage::Investigating,
        title: "Slow pages for members in the Middle East".into(),
        body: "Members in the Middle East may see slow pages. The cause is a network problem \
               outside our systems."
            .into(),
    };
    site.handle
        .with_store(move |s| {
            s.upsert_incident(&record).unwrap();
            s.offer_draft(&draft, &record.regions, 1_040_000).unwrap().0
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn anonymous_visitors_see_only_the_public_pages() {
    let site = site().await;
    for path in [
        "/status",
        "/status/feed.atom",
        "/status/summary.json",
        "/api/v1/status",
    ] {
        let a = get(site.addr, path, None).await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
        assert_eq!(
            a.header("content-security-policy"),
            Some(CSP),
            "{path}: every response carries the CSP"
        );
    }
    for path in ["/", "/incidents", "/incidents/1", "/messages"] {
        let a = get(site.addr, path, None).await;
        assert_eq!(a.status, 303, "{path}: {a:?}");
        assert!(
            a.header("location").unwrap().starts_with("/login?next="),
            "{a:?}"
        );
    }
    for path in [
        "/api/v1/regions",
        "/api/v1/incidents",
        "/api/v1/messages",
        "/api/v1/events",
        "/api/v1/users",
    ] {
        let a = get(site.addr, path, None).await;
        assert_eq!(a.status, 401, "{path}: {a:?}");
        assert_eq!(a.json()["error"], "log in first");
    }
    let a = request(site.addr, "POST", "/api/v1/messages/1/publish", &[], "").await;
    assert_eq!(a.status, 401, "{a:?}");
    // A forged cookie is no session.
    let a = get(site.addr, "/api/v1/regions", Some("00ff")).await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn a_community_manager_approves_and_publishes_and_members_see_it_while_a_viewer_cannot() {
    let site = site().await;
    add_user(&site, "vera", Role::Viewer, "viewer-password-1").await;
    add_user(&site, "carl", Role::CommunityManager, "manager-password-1").await;
    let message = incident_with_draft(&site, 7).await;

    // The viewer reads the draft but cannot act on it, with or without a valid CSRF token.
    let viewer = login(&site, "vera", "viewer-password-1").await;
    let page = get(site.addr, "/incidents/7", Some(&viewer)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Slow pages for members in the Middle East")
    );
    assert!(!page.body.contains("/approve"), "no forms for a viewer");
    let token = csrf(&site, &viewer).await;
    for step in ["approve", "publish"] {
        let a = request(
            site.addr,
            "POST",
            &format!("/api/v1/messages/{message}/{step}"),
            &[
                ("Cookie", &format!("meridian_session={viewer}")),
                ("X-CSRF-Token", &token),
            ],
            "",
        )
        .await;
        assert_eq!(a.status, 403, "{step}: {a:?}");
        let form = request(
            site.addr,
            "POST",
            &format!("/messages/{message}/{step}"),
            &[
                ("Cookie", &format!("meridian_session={viewer}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &format!("csrf={token}"),
        )
        .await;
        assert_eq!(form.status, 403, "{step}: {form:?}");
    }

    // The community manager: without the CSRF token nothing happens.
    let manager = login(&site, "carl", "manager-password-1").await;
    // The community manager is offered the actions, on the incident and in the queue.
    for page in ["/incidents/7", "/messages"] {
        let html = get(site.addr, page, Some(&manager)).await.body;
        assert!(
            html.contains(&format!("/messages/{message}/approve"))
                && html.contains(&format!("/messages/{message}/edit")),
            "{page}: {html}"
        );
    }
    let cm_cookie = format!("meridian_session={manager}");
    let a = request(
        site.addr,
        "POST",
        &format!("/messages/{message}/approve"),
        &[
            ("Cookie", &cm_cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "csrf=wrong",
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    // Publishing before approval is refused.
    let token = csrf(&site, &manager).await;
    let form = |step: &str| {
        let path = format!("/messages/{message}/{step}");
        let body = format!("csrf={token}&back=%2Fmessages");
        let cookie = cm_cookie.clone();
        async move {
            request(
                site.addr,
                "POST",
                &path,
                &[
                    ("Cookie", &cookie),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                &body,
            )
            .await
        }
    };
    assert_eq!(form("publish").await.status, 409);
    // Nothing is public yet.
    let public = get(site.addr, "/status", None).await;
    assert!(
        !public.body.contains("Slow pages for members"),
        "{}",
        public.body
    );
    let a = form("approve").await;
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(
        a.header("location"),
        Some(format!("/messages#message-{message}").as_str())
    );
    assert_eq!(form("publish").await.status, 303);

    // Public: the page, the feed and the summary; the incident's timeline and TTC.
    let public = get(site.addr, "/status", None).await;
    assert!(
        public
            .body
            .contains("Slow pages for members in the Middle East")
    );
    let feed = get(site.addr, "/status/feed.atom", None).await;
    assert_eq!(
        feed.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    assert!(feed.body.contains("<entry>"), "{}", feed.body);
    assert!(
        feed.body
            .contains("Investigating: Slow pages for members in the Middle East")
    );
    assert!(feed.body.contains("Regions: the Middle East") || feed.body.contains("Regions: "));
    let summary = get(site.addr, "/status/summary.json", None).await.json();
    assert_eq!(summary["messages"][0]["id"], message);
    assert_eq!(summary["messages"][0]["stage"], "investigating");
    let incident = get(site.addr, "/api/v1/incidents/7", Some(&manager))
        .await
        .json();
    assert!(incident["ttc_ms"].as_i64().unwrap() > 0);
    let timeline = incident["timeline"].to_string();
    assert!(timeline.contains("approved by carl"), "{timeline}");
    assert!(
        timeline.contains("published to members by carl"),
        "{timeline}"
    );
    // Published words never change.
    let a = request(
        site.addr,
        "PUT",
        &format!("/api/v1/messages/{message}"),
        &[
            ("Cookie", &cm_cookie),
            ("X-CSRF-Token", &token),
            ("Content-Type", "application/json"),
        ],
        r#"{"title":"changed"}"#,
    )
    .await;
    assert_eq!(a.status, 409, "{a:?}");
}

#[tokio::test]
async fn the_feed_and_summary_answer_not_modified_to_a_reader_that_has_them() {
    let site = site().await;
    let first = get(site.addr, "/status/feed.atom", None).await;
    let etag = first.header("etag").unwrap().to_string();
    assert_eq!(first.header("cache-control"), Some("public, max-age=60"));
    let again = request(
        site.addr,
        "GET",
        "/status/feed.atom",
        &[("If-None-Match", &etag)],
        "",
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    // The page too, within the minute its "as of" names (a minute boundary between the two
    // requests changes it: then the next pair is inside one minute).
    let mut revalidated = None;
    for _ in 0..2 {
        let page = get(site.addr, "/status", None).await;
        assert_eq!(page.header("cache-control"), Some("no-cache"));
        let etag = page.header("etag").unwrap().to_string();
        // A reader coming back a little later, not within the same second.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let again = request(site.addr, "GET", "/status", &[("If-None-Match", &etag)], "").await;
        revalidated = Some(again.status);
        if again.status == 304 {
            break;
        }
    }
    assert_eq!(revalidated, Some(304));
}

#[tokio::test]
async fn sessions_end_at_logout_and_expire_and_tokens_work_without_csrf() {
    let site = site().await;
    add_user(&site, "sre", Role::SreAdmin, "admin-password-12").await;
    let cookie = login(&site, "sre", "admin-password-12").await;
    let token = csrf(&site, &cookie).await;
    // A token for scripts, made with the browser session (which needs its CSRF token).
    let a = request(
        site.addr,
        "POST",
        "/api/v1/tokens",
        &[
            ("Cookie", &format!("meridian_session={cookie}")),
            ("Content-Type", "application/json"),
        ],
        r#"{"label":"ci"}"#,
    )
    .await;
    assert_eq!(a.status, 403, "no CSRF token: {a:?}");
    let a = request(
        site.addr,
        "POST",
        "/api/v1/tokens",
        &[
            ("Cookie", &format!("meridian_session={cookie}")),
            ("X-CSRF-Token", &token),
            ("Content-Type", "application/json"),
        ],
        r#"{"label":"ci","ttl":"1h"}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let bearer = a.json()["token"].as_str().unwrap().to_string();
    let auth = format!("Bearer {bearer}");
    // The token adds a user without any CSRF header.
    let a = request(
        site.addr,
        "POST",
        "/api/v1/users",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"newbie","role":"viewer","password":"short"}"#,
    )
    .await;
    assert_eq!(a.status, 400, "a short password is refused: {a:?}");
    let a = request(
        site.addr,
        "POST",
        "/api/v1/users",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"newbie","role":"viewer","password":"long-enough-pass"}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    let users = request(
        site.addr,
        "GET",
        "/api/v1/users",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(users.json()["users"].as_array().unwrap().len(), 2);
    // The last administrator cannot be removed.
    let a = request(
        site.addr,
        "DELETE",
        "/api/v1/users/sre",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(a.status, 409, "{a:?}");

    // Logout ends the browser session (with its CSRF token only).
    let a = request(
        site.addr,
        "POST",
        "/logout",
        &[
            ("Cookie", &format!("meridian_session={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "csrf=nope",
    )
    .await;
    assert_eq!(a.status, 403);
    let a = request(
        site.addr,
        "POST",
        "/logout",
        &[
            ("Cookie", &format!("meridian_session={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(a.status, 303);
    assert_eq!(
        get(site.addr, "/api/v1/me", Some(&cookie)).await.status,
        401
    );
    // The token still works; an expired session does not.
    assert_eq!(
        request(
            site.addr,
            "GET",
            "/api/v1/me",
            &[("Authorization", &auth)],
            ""
        )
        .await
        .status,
        200
    );
    let hash = crate::store::users::secret_hash(&bearer);
    site.handle
        .with_store(move |s| {
            s.create_session(&crate::store::users::NewSession {
                user: "sre",
                kind: crate::store::users::SessionKind::Token,
                label: None,
                secret_hash: "expired",
                csrf: "x",
                now_ms: 0,
                expires_ms: 1,
            })
            .unwrap();
            s.end_session(&hash).unwrap()
        })
        .await
        .unwrap();
    assert_eq!(
        request(
            site.addr,
            "GET",
            "/api/v1/me",
            &[("Authorization", &auth)],
            ""
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_a_name_that_keeps_failing_is_throttled() {
    let site = site().await;
    add_user(&site, "cm", Role::CommunityManager, "right-password-1").await;
    let attempt = |password: &'static str| async move {
        request(
            site.addr,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!("name=cm&password={password}"),
        )
        .await
    };
    for _ in 0..5 {
        let a = attempt("wrong").await;
        assert_eq!(a.status, 401, "{a:?}");
        assert!(a.body.contains("Wrong name or password."));
        assert!(a.header("set-cookie").is_none());
    }
    // Even the right password waits now.
    let a = attempt("right-password-1").await;
    assert_eq!(a.status, 429, "{a:?}");
    // An unknown name is refused the same way as a wrong password.
    let a = request(
        site.addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "name=nobody&password=whatever",
    )
    .await;
    assert_eq!(a.status, 401);
    // A redirect after login never leaves the site.
    assert_eq!(auth::safe_next(Some("//evil.example/")), "/");
    assert_eq!(auth::safe_next(Some("https://evil.example/")), "/");
    assert_eq!(auth::safe_next(Some("/incidents/3")), "/incidents/3");
}

#[tokio::test]
async fn the_event_stream_starts_with_the_regions_and_carries_message_changes() {
    let site = site().await;
    add_user(&site, "cm", Role::CommunityManager, "right-password-1").await;
    let cookie = login(&site, "cm", "right-password-1").await;
    let message = incident_with_draft(&site, 3).await;
    let token = csrf(&site, &cookie).await;
    let mut stream = tokio::net::TcpStream::connect(site.addr).await.unwrap();
    let req = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nCookie: meridian_session={cookie}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 65536];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.contains("event: regions") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the first event within 10 s")
            .unwrap();
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("content-type: text/event-stream"), "{seen}");
    // An approval reaches open pages.
    let a = request(
        site.addr,
        "POST",
        &format!("/api/v1/messages/{message}/approve"),
        &[
            ("Cookie", &format!("meridian_session={cookie}")),
            ("X-CSRF-Token", &token),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let want = format!("\"id\":{message},\"incident\":3,\"state\":\"approved\"");
    while !seen.contains(&want) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the message event within 10 s")
            .unwrap();
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("event: message"), "{seen}");
}

#[tokio::test]
async fn the_map_page_lists_every_region_and_assets_are_served_from_the_binary() {
    let site = site().await;
    add_user(&site, "v", Role::Viewer, "viewer-password-1").await;
    let cookie = login(&site, "v", "viewer-password-1").await;
    let page = get(site.addr, "/", Some(&cookie)).await;
    assert_eq!(page.status, 200);
    let rows = page.body.matches("<tr data-region=").count();
    assert_eq!(rows, config().catalog.len(), "one table row per region");
    for (path, _, bytes) in assets::ASSETS {
        let a = get(site.addr, &format!("/assets/{path}"), None).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body.len(), bytes.len(), "{path}");
        assert!(a.header("etag").is_some());
    }
    assert_eq!(
        get(site.addr, "/assets/../Cargo.toml", None).await.status,
        404
    );
    // Compressed for clients that accept it (the list is large), plain for the others.
    let gz = request(
        site.addr,
        "GET",
        "/api/v1/regions",
        &[
            ("Cookie", &format!("meridian_session={cookie}")),
            ("Accept-Encoding", "gzip"),
        ],
        "",
    )
    .await;
    assert_eq!(
        gz.header("content-encoding"),
        Some("gzip"),
        "{:?}",
        gz.headers
    );
    let regions = get(site.addr, "/api/v1/regions", Some(&cookie))
        .await
        .json();
    let list = regions["regions"].as_array().unwrap();
    assert_eq!(list.len(), config().catalog.len());
    // No probe has reported: nothing is called normal.
    assert!(list.iter().all(|r| r["status"] == "no-data"), "{regions}");
    let series = get(
        site.addr,
        "/api/v1/regions/me-central/series?phase=tls&hours=2",
        Some(&cookie),
    )
    .await;
    assert_eq!(series.status, 200);
    assert_eq!(series.json()["points"], serde_json::json!([]));
    let bad = get(
        site.addr,
        "/api/v1/regions/me-central/series?phase=ping",
        Some(&cookie),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("connect"));
    assert_eq!(
        get(site.addr, "/api/v1/regions/atlantis", Some(&cookie))
            .await
            .status,
        404
    );
}

fn cell(region: &str, status: RegionStatus, base: f64, delta: f64) -> RegionCell {
    RegionCell {
        target: "web".into(),
        region: region.into(),
        status,
        probes: 3,
        healthy: 3,
        evidence: Some(crate::detect::incident::RegionEvidence {
            region: region.into(),
            probes: 3,
            affected: if status == RegionStatus::Normal { 0 } else { 3 },
            connect_base_ms: Some(base),
            connect_delta_ms: Some(delta),
            tls_base_ms: None,
            tls_delta_ms: None,
            server_base_ms: Some(20.0),
            server_delta_ms: Some(0.4),
            failures: 0,
            failure_class: None,
        }),
    }
}

#[test]
fn a_region_reads_detections_state_and_only_site_incidents_reach_the_public() {
    let config = config();
    let view = LiveView {
        at_ms: 5,
        cells: vec![
            cell("me-central", RegionStatus::Degraded, 95.0, 87.4),
            cell("eu-west", RegionStatus::Normal, 12.0, 0.3),
            RegionCell {
                evidence: None,
                ..cell("us-east", RegionStatus::Unknown, 0.0, 0.0)
            },
        ],
        open: vec![
            OpenIncident {
                id: 4,
                class: "regional-network".into(),
                state: "paged".into(),
                severity: "page".into(),
                regions: vec!["me-central".into()],
                operational: false,
                held: false,
            },
            OpenIncident {
                id: 5,
                class: "region-silent".into(),
                state: "confirmed".into(),
                severity: "info".into(),
                regions: vec!["us-east".into()],
                operational: true,
                held: false,
            },
        ],
    };
    let regions = view::regions(&view, &config, &std::collections::HashMap::new());
    let get = |id: &str| regions.regions.iter().find(|r| r.id == id).unwrap();
    let me = get("me-central");
    assert_eq!(me.status, "degraded");
    assert_eq!(me.latency_ms, Some(182.4));
    assert_eq!(me.baseline_ms, Some(95.0));
    assert_eq!(me.incidents, vec![4]);
    assert_eq!(me.targets[0].name, "Example shop");
    assert_eq!(get("eu-west").status, "normal");
    // A region detection cannot judge is unknown, and its monitoring incident is not listed.
    let us = get("us-east");
    assert_eq!((us.status, us.incidents.len()), ("unknown", 0));
    assert_eq!(get("ap-south").status, "no-data");

    let public = public::public_regions(&view, &config, &[], 5);
    let state = |id: &str| public.iter().find(|r| r.id == id).map(|r| r.state);
    assert_eq!(state("me-central"), Some("degraded"));
    assert_eq!(state("eu-west"), Some("operational"));
    // Cut off from the coordinator is not an outage for members.
    assert_eq!(state("us-east"), Some("operational"));
    // Without probes, a region is not on the public page at all.
    assert_eq!(state("ap-south"), None);

    // A public maintenance window open over eu-west and me-central.
    let (targets, regions) = config.maintenance_scope();
    let window = crate::maintenance::RawWindow {
        id: "net".into(),
        title: "Network upgrade".into(),
        regions: vec!["eu-west".into(), "me-central".into()],
        start: Some(crate::maintenance::WhenText::Text(
            "1970-01-01T00:00:00Z".into(),
        )),
        end: Some(crate::maintenance::WhenText::Text(
            "1970-01-01T01:00:00Z".into(),
        )),
        ..Default::default()
    }
    .validate(
        crate::maintenance::Source::Api,
        &crate::maintenance::Known {
            targets: &targets,
            regions: &regions,
        },
    )
    .unwrap();
    let public = public::public_regions(&view, &config, std::slice::from_ref(&window), 5);
    let state = |id: &str| public.iter().find(|r| r.id == id).map(|r| r.state);
    assert_eq!(state("eu-west"), Some("maintenance"));
    // An incident the window does not hold back still shows.
    assert_eq!(state("me-central"), Some("degraded"));
    assert_eq!(state("us-east"), Some("operational"));
    // Held back by the window: it is the maintenance.
    let mut held = view.clone();
    held.open[0].held = true;
    let public = public::public_regions(&held, &config, std::slice::from_ref(&window), 5);
    let state = |id: &str| public.iter().find(|r| r.id == id).map(|r| r.state);
    assert_eq!(state("me-central"), Some("maintenance"));
    // Closed windows change nothing.
    let public = public::public_regions(&view, &config, &[window], 3_600_000);
    assert!(public.iter().all(|r| r.state != "maintenance"));
}

/// `method` on `path` with a session and its CSRF token, JSON `body`.
async fn send_json(
    site: &Site,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: &str,
    body: &str,
) -> Answer {
    let c = format!("meridian_session={cookie}");
    request(
        site.addr,
        method,
        path,
        &[
            ("Cookie", &c),
            ("X-CSRF-Token", csrf),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn admins_schedule_maintenance_that_staff_list_and_members_see_on_the_status_page() {
    let site = site().await;
    add_user(&site, "ada", Role::SreAdmin, "correct horse battery").await;
    add_user(&site, "val", Role::Viewer, "correct horse battery").await;
    let admin = login(&site, "ada", "correct horse battery").await;
    let admin_csrf = csrf(&site, &admin).await;
    let viewer = login(&site, "val", "correct horse battery").await;
    let viewer_csrf = csrf(&site, &viewer).await;
    let rfc = |ms: i64| crate::alerting::rfc3339(ms);
    let now = now_ms();
    let window = serde_json::json!({
        "id": "db-upgrade",
        "title": "Database upgrade",
        "targets": ["site"],
        "regions": ["eu-west"],
        "start": rfc(now - 60_000),
        "end": rfc(now + 3_600_000),
    })
    .to_string();

    let post = |body: &str| {
        let body = body.to_owned();
        let (site, admin, csrf) = (&site, &admin, &admin_csrf);
        async move { send_json(site, "POST", "/api/v1/maintenance", admin, csrf, &body).await }
    };
    // A viewer may list but not schedule.
    let a = send_json(
        &site,
        "POST",
        "/api/v1/maintenance",
        &viewer,
        &viewer_csrf,
        &window,
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    // Without the CSRF token even an admin is refused.
    let a = send_json(
        &site,
        "POST",
        "/api/v1/maintenance",
        &admin,
        "wrong",
        &window,
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    // Every mistake is named.
    let bad = r#"{"id":"x","title":"X","targets":["nope"],"every":"week","at":"02:00","duration":"1h","timezone":"Mars/Olympus"}"#;
    let a = post(bad).await;
    assert_eq!(a.status, 400, "{a:?}");
    let error = a.json()["error"].as_str().unwrap().to_string();
    for needle in [
        "targets: \"nope\"",
        "timezone: \"Mars/Olympus\"",
        "days: missing",
    ] {
        assert!(error.contains(needle), "{needle} not in {error}");
    }

    let a = post(&window).await;
    assert_eq!(a.status, 201, "{a:?}");
    let made = a.json();
    assert_eq!(made["source"], "api");
    assert_eq!(made["created_by"], "ada");
    assert!(made["active"]["end_ms"].as_i64().is_some(), "{made}");
    let a = post(&window).await;
    assert_eq!(a.status, 409, "the id is taken: {a:?}");
    // An internal recurring window: listed for staff, not shown to members.
    let internal = r#"{"id":"backup","title":"Nightly backup","every":"day","at":"03:00","duration":"30m","timezone":"Europe/Berlin","public":false}"#;
    let a = post(internal).await;
    assert_eq!(a.status, 201, "{a:?}");

    // In force for detection at once.
    let ids: Vec<String> = site
        .handle
        .maintenance_windows()
        .iter()
        .map(|w| w.id.clone())
        .collect();
    assert_eq!(ids, vec!["backup".to_string(), "db-upgrade".to_string()]);

    let list = get(site.addr, "/api/v1/maintenance", Some(&viewer)).await;
    assert_eq!(list.status, 200);
    let list = list.json();
    let windows = list["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    let backup = windows.iter().find(|w| w["id"] == "backup").unwrap();
    assert_eq!(
        backup["schedule"],
        "every day at 03:00 for 30m (Europe/Berlin)"
    );
    assert_eq!(backup["upcoming"].as_array().unwrap().len(), 7, "{backup}");

    // Members see the public one, with the region's member-facing name.
    let summary = get(site.addr, "/status/summary.json", None).await.json();
    let shown = summary["maintenance"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{summary}");
    assert_eq!(shown[0]["title"], "Database upgrade");
    assert_eq!(shown[0]["active"], true);
    assert_eq!(shown[0]["targets"][0], "Example shop");
    let page = get(site.addr, "/status", None).await;
    assert!(page.body.contains("Scheduled maintenance"), "{}", page.body);
    assert!(page.body.contains("Database upgrade"));
    assert!(!page.body.contains("Nightly backup"));

    // Removal: only admins; then it is gone everywhere.
    let a = send_json(
        &site,
        "DELETE",
        "/api/v1/maintenance/db-upgrade",
        &viewer,
        &viewer_csrf,
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    let a = send_json(
        &site,
        "DELETE",
        "/api/v1/maintenance/db-upgrade",
        &admin,
        &admin_csrf,
        "",
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = send_json(
        &site,
        "DELETE",
        "/api/v1/maintenance/db-upgrade",
        &admin,
        &admin_csrf,
        "",
    )
    .await;
    assert_eq!(a.status, 404);
    let summary = get(site.addr, "/status/summary.json", None).await.json();
    assert_eq!(summary["maintenance"].as_array().unwrap().len(), 0);
    assert_eq!(site.handle.maintenance_windows().len(), 1);
}

#[test]
fn every_api_route_is_documented_and_nothing_else() {
    let source = include_str!("mod.rs");
    let mut routes: Vec<&str> = source
        .split(".route(")
        .skip(1)
        .filter_map(|r| r.trim_start().strip_prefix('"'))
        .filter_map(|r| r.split('"').next())
        .filter(|p| p.starts_with("/api/v1/"))
        .collect();
    routes.sort_unstable();
    routes.dedup();
    let doc: serde_json::Value = serde_json::from_str(api::OPENAPI).expect("openapi.json parses");
    let mut documented: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .filter(|p| p.starts_with("/api/v1/"))
        .collect();
    documented.sort_unstable();
    assert!(routes.len() >= 15, "{routes:?}");
    assert_eq!(routes, documented);
}

#[test]
fn durations_and_times_read_as_people_say_them() {
    assert_eq!(pages::duration(850), "850 ms");
    assert_eq!(pages::duration(42_300), "42.3 s");
    assert_eq!(pages::duration(192_000), "3 min 12 s");
    assert_eq!(pages::duration(7_500_000), "2 h 5 min");
    assert_eq!(pages::utc(0), "1970-01-01 00:00:00 UTC");
}

#[test]
fn the_vendored_files_match_their_manifest() {
    let mut checked = 0;
    for line in assets::MANIFEST
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (sha, size, file) = (fields[0], fields[1], fields[2]);
        let Some((_, _, bytes)) = assets::ASSETS
            .iter()
            .find(|(p, _, _)| *p == format!("vendor/{file}"))
        else {
            continue;
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        assert_eq!(crate::store::users::hex(digest.as_ref()), sha, "{file}");
        assert_eq!(bytes.len().to_string(), size, "{file}");
        checked += 1;
    }
    assert_eq!(
        checked, 5,
        "every embedded vendored file is in the manifest"
    );
}

#[tokio::test]
async fn notes_join_the_timeline_and_only_communicators_write_them() {
    let site = site().await;
    add_user(&site, "vera", Role::Viewer, "viewer-password-1").await;
    add_user(&site, "sam", Role::SreAdmin, "admin-password-12").await;
    incident_with_draft(&site, 7).await;
    let viewer = login(&site, "vera", "viewer-password-1").await;
    let viewer_csrf = csrf(&site, &viewer).await;
    let admin = login(&site, "sam", "admin-password-12").await;
    let admin_csrf = csrf(&site, &admin).await;
    let note = r#"{"text":"Rolled back deploy 881","at":"1970-01-01T00:17:40Z"}"#;

    let empty = r#"{"text":"   "}"#;
    let future = r#"{"text":"later","at":"2999-01-01T00:00:00Z"}"#;
    let cases = [
        ("a viewer", 7, &viewer, viewer_csrf.as_str(), note, 403),
        ("no CSRF token", 7, &admin, "nope", note, 403),
        (
            "no such incident",
            8,
            &admin,
            admin_csrf.as_str(),
            note,
            404,
        ),
        ("empty words", 7, &admin, admin_csrf.as_str(), empty, 400),
        ("the future", 7, &admin, admin_csrf.as_str(), future, 400),
        ("an admin", 7, &admin, admin_csrf.as_str(), note, 201),
    ];
    let mut a = None;
    for (who, incident, cookie, token, body, status) in cases {
        let path = format!("/api/v1/incidents/{incident}/notes");
        let got = send_json(&site, "POST", &path, cookie, token, body).await;
        assert_eq!(got.status, status, "{who}: {got:?}");
        a = Some(got);
    }
    let a = a.expect("the cases ran");
    let made = a.json();
    assert_eq!(made["author"], "sam");
    assert_eq!(made["at_ms"], 1_060_000);

    // The form on the page works the same way (and the viewer sees the note, not the form).
    let c = format!("meridian_session={admin}");
    let body = format!("csrf={admin_csrf}&text=CDN+ticket+4411&at=");
    let a = request(
        site.addr,
        "POST",
        "/incidents/7/notes",
        &[
            ("Cookie", &c),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    )
    .await;
    assert_eq!(a.status, 303, "{a:?}");
    assert!(
        a.header("location")
            .is_some_and(|l| l.starts_with("/incidents/7#note-"))
    );

    let detail = get(site.addr, "/api/v1/incidents/7", Some(&viewer))
        .await
        .json();
    let notes = detail["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{detail}");
    let timeline: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["what"].as_str())
        .collect();
    assert!(
        timeline.contains(&"note by sam: Rolled back deploy 881"),
        "{timeline:?}"
    );
    let page = get(site.addr, "/incidents/7", Some(&viewer)).await;
    assert!(page.body.contains("CDN ticket 4411"), "{}", page.body);
    assert!(
        !page.body.contains("id=\"note-form\""),
        "no form for a viewer"
    );
    let page = get(site.addr, "/incidents/7", Some(&admin)).await;
    assert!(page.body.contains("id=\"note-form\""));
    // And the post-mortem carries them.
    let pm = get(site.addr, "/api/v1/incidents/7/export", Some(&viewer))
        .await
        .json();
    assert_eq!(pm["notes"].as_array().map(Vec::len), Some(2), "{pm}");
    assert!(
        pm["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "note")
    );
}
