//! Self-test of the browser driver (`meridian_tests::browser`) against a page served from
//! loopback: a form, a script that fetches a second URL before marking itself ready, and a
//! button that rewrites an element. Checks navigation, waits (and their timeout report),
//! form filling, clicks, text and attributes, screenshots, console errors, and that no
//! Chromium process outlives its `Browser`. Skips (SKIP line) where chromedriver is missing.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use meridian_tests::browser::Browser;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Driver self-test</title></head>
<body>
<h1>Driver self-test</h1>
<form id="login">
  <input id="user" name="user"> <input id="pass" name="pass" type="password">
  <button id="go" type="button">Go</button>
</form>
<p id="out" data-state="idle">nothing yet</p>
<p id="status">loading</p>
<script>
  fetch('/data').then(r => r.text()).then(t => {
    const s = document.getElementById('status');
    s.textContent = t;
    s.dataset.ready = 'yes';
  });
  document.getElementById('go').addEventListener('click', () => {
    const o = document.getElementById('out');
    o.textContent = 'hello ' + document.getElementById('user').value;
    o.dataset.state = 'clicked';
  });
  document.getElementById('login').addEventListener('submit', e => {
    e.preventDefault();
    document.getElementById('out').dataset.submitted =
      String(document.getElementById('pass').value.length);
  });
  console.error('self-test console error');
</script>
</body></html>
"#;

/// How long `/data` makes the page wait, so that readiness really is something to wait for.
const DATA_DELAY: Duration = Duration::from_millis(300);

/// Serves [`PAGE`] at every path but `/data`, which answers "fetched-ok" after [`DATA_DELAY`].
/// Stops when the returned set is dropped.
async fn serve_page() -> (SocketAddr, JoinSet<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            conns.spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let (body, kind) = if req.uri().path() == "/data" {
                            tokio::time::sleep(DATA_DELAY).await;
                            ("fetched-ok", "text/plain")
                        } else {
                            (PAGE, "text/html; charset=utf-8")
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(kind),
                        );
                        Ok::<_, Infallible>(response)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while conns.try_join_next().is_some() {}
        }
    });
    (addr, tasks)
}

/// Live (not zombie) processes in process group `pgid`, as "pid comm", from /proc.
fn live_members(pgid: u32) -> Vec<String> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ')'.
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = tail.split_whitespace().collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) && fields.first() != Some(&"Z") {
            members.push(head.replacen(" (", " ", 1));
        }
    }
    members
}

/// Waits (at most 5 s) until process group `pgid` has no live member left.
async fn group_gone(pgid: u32) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = live_members(pgid);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn driver_navigates_waits_fills_clicks_and_screenshots() {
    let t0 = Instant::now();
    let Some(browser) = Browser::start().await.expect("browser") else {
        return;
    };
    let started = t0.elapsed();
    let pgid = browser.process_group();
    let (addr, _server) = serve_page().await;
    let url = format!("http://{addr}/");

    let t = Instant::now();
    browser.goto(&url).await.expect("goto");
    let loaded = t.elapsed();
    assert_eq!(browser.title().await.expect("title"), "Driver self-test");
    assert_eq!(browser.current_url().await.expect("url"), url);

    let ready = browser
        .wait_for(
            "return document.querySelector('#status').dataset.ready === 'yes';",
            Duration::from_secs(10),
        )
        .await
        .expect("the page fetches /data and marks itself ready");
    assert_eq!(browser.text("#status").await.expect("text"), "fetched-ok");
    assert_eq!(
        browser.attr("#status", "data-ready").await.expect("attr"),
        Some("yes".to_owned())
    );
    assert_eq!(
        browser.attr("#status", "data-nope").await.expect("attr"),
        None
    );

    // A second fill replaces the first: fill clears before typing.
    browser.fill("#user", "mallory").await.expect("fill");
    browser.fill("#user", "alice").await.expect("fill");
    let typed: String = browser
        .eval(
            "return document.querySelector(arguments[0]).value;",
            vec![json!("#user")],
        )
        .await
        .expect("eval");
    assert_eq!(typed, "alice");
    let sum: i64 = browser
        .eval(
            "return arguments[0] + arguments[1];",
            vec![json!(2), json!(3)],
        )
        .await
        .expect("eval with arguments");
    assert_eq!(sum, 5);

    browser.click("#go").await.expect("click");
    browser
        .wait_for(
            "return document.querySelector('#out').dataset.state === 'clicked';",
            Duration::from_secs(5),
        )
        .await
        .expect("the click handler ran");
    assert_eq!(browser.text("#out").await.expect("text"), "hello alice");

    browser.fill("#pass", "secret").await.expect("fill");
    browser.submit_form("#login").await.expect("submit");
    assert_eq!(
        browser.attr("#out", "data-submitted").await.expect("attr"),
        Some("6".to_owned())
    );
    assert_eq!(browser.count("input").await.expect("count"), 2);
    assert_eq!(browser.count(".absent").await.expect("count"), 0);

    let missing = browser.text("#absent").await.expect_err("no such element");
    assert!(
        format!("{missing:#}").contains("no such element"),
        "{missing:#}"
    );

    let t = Instant::now();
    let shot = browser
        .screenshot("browser-self-test")
        .await
        .expect("screenshot");
    let shot_time = t.elapsed();
    let png = std::fs::read(&shot).expect("the screenshot file");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", shot.display());

    let errors = browser.console_errors().await.expect("console errors");
    assert!(
        errors.iter().any(|e| e.contains("self-test console error")),
        "{errors:?}"
    );

    // A predicate that never holds (and throws, reading an element that is not there).
    let predicate = "return document.querySelector('#never').dataset.x === 'y';";
    let t = Instant::now();
    let err = browser
        .wait_for(predicate, Duration::from_secs(1))
        .await
        .expect_err("the predicate never holds");
    let timed_out = t.elapsed();
    let msg = format!("{err:#}");
    eprintln!("the timeout, as reported:\n{msg}");
    assert!(timed_out >= Duration::from_secs(1), "{timed_out:?}");
    for part in [predicate, "threw", url.as_str(), "hello alice", "timeout-"] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    let saved = msg
        .lines()
        .find_map(|l| l.trim().strip_prefix("screenshot: "))
        .expect("a screenshot line");
    assert!(std::path::Path::new(saved).exists(), "{msg}");

    // Chromium runs in chromedriver's process group, which is what makes the kill complete.
    let members = live_members(pgid);
    assert!(
        members.len() > 1,
        "Chromium is not in the group: {members:?}"
    );
    browser.close().await.expect("close");
    assert_eq!(group_gone(pgid).await, Vec::<String>::new());

    eprintln!(
        "browser self-test: start {started:?}, load {loaded:?}, ready after {ready:?}, \
         screenshot {shot_time:?}, timeout reported after {timed_out:?}, total {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn dropping_the_browser_kills_chromium() {
    let Some(browser) = Browser::start().await.expect("browser") else {
        return;
    };
    browser.goto("about:blank").await.expect("goto");
    let pgid = browser.process_group();
    let profile = browser.dir().to_path_buf();
    assert!(live_members(pgid).len() > 1);
    // As when a test panics: no close, no session deletion.
    drop(browser);
    assert_eq!(group_gone(pgid).await, Vec::<String>::new());
    assert!(!profile.exists(), "{} was left behind", profile.display());
}
