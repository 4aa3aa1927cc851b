//! Staff accounts end to end: `coordinator user ...` writes them, a running `coordinator run`
//! lets them log in to its web side, and role changes, tokens and removal take effect at the
//! next request.

use std::net::SocketAddr;
use std::time::Duration;

use meridian_tests::coordinator::{Coordinator, config_text, coordinator, wait_web_addr};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One HTTP/1.1 request with `Connection: close`: (status, head, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .expect("connect within 10 s")
    .expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("answer within 10 s")
        .expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} line in {stdout}"))
}

#[tokio::test]
async fn accounts_made_with_the_cli_log_in_and_lose_access_when_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let d = data.to_str().expect("UTF-8");
    let out = coordinator(&[
        "user",
        "add",
        "alice",
        "--role",
        "community-manager",
        "--data-dir",
        d,
    ])
    .await
    .expect("user add");
    assert_eq!(out.code, Some(0), "{out:?}");
    let password = field(&out.stdout, "password:").to_string();
    assert_eq!(password.len(), 20, "{out:?}");
    let again = coordinator(&["user", "add", "alice", "--role", "viewer", "--data-dir", d])
        .await
        .expect("user add again");
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("exists already"), "{again:?}");
    let bad = coordinator(&["user", "add", "Alice!", "--role", "viewer", "--data-dir", d])
        .await
        .expect("user add bad name");
    assert_eq!(bad.code, Some(2), "{bad:?}");
    let bad_role = coordinator(&["user", "add", "bob", "--role", "root", "--data-dir", d])
        .await
        .expect("user add bad role");
    assert_eq!(bad_role.code, Some(2), "{bad_role:?}");
    let list = coordinator(&["user", "list", "--data-dir", d])
        .await
        .expect("user list");
    assert!(
        list.stdout.contains("alice") && list.stdout.contains("community-manager"),
        "{list:?}"
    );

    let config = dir.path().join("coordinator.toml");
    let quic: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    std::fs::write(
        &config,
        config_text(&data, quic, "eu-west", "web", "http://127.0.0.1:9/"),
    )
    .expect("write config");
    let log = dir.path().join("coordinator.log");
    let running = Coordinator::start(&config, &log)
        .await
        .expect("coordinator run");
    let web = wait_web_addr(&log).await.expect("web address");

    let form = format!("name=alice&password={password}&next=%2F");
    let (status, head, _) = http(
        web,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    )
    .await;
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let me = |cookie: String| async move {
        http(web, "GET", "/api/v1/me", &[("Cookie", cookie.as_str())], "").await
    };
    let (status, _, body) = me(cookie.clone()).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"role\":\"community-manager\""), "{body}");

    // A role change applies at the next request, without logging in again.
    let out = coordinator(&["user", "role", "alice", "viewer", "--data-dir", d])
        .await
        .expect("user role");
    assert_eq!(out.code, Some(0), "{out:?}");
    let (_, _, body) = me(cookie.clone()).await;
    assert!(body.contains("\"role\":\"viewer\""), "{body}");

    // A token from the CLI works as a bearer.
    let out = coordinator(&[
        "user",
        "token",
        "alice",
        "--label",
        "ci",
        "--expires",
        "1h",
        "--data-dir",
        d,
    ])
    .await
    .expect("user token");
    assert_eq!(out.code, Some(0), "{out:?}");
    let bearer = format!("Bearer {}", field(&out.stdout, "token:"));
    let (status, _, _) = http(
        web,
        "GET",
        "/api/v1/regions",
        &[("Authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 200);

    // Removing the user ends the session and the token.
    let out = coordinator(&["user", "remove", "alice", "--data-dir", d])
        .await
        .expect("user remove");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(me(cookie).await.0, 401);
    let (status, _, _) = http(
        web,
        "GET",
        "/api/v1/regions",
        &[("Authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 401);
    // The status page never needed a login.
    assert_eq!(http(web, "GET", "/status", &[], "").await.0, 200);
    running.kill().await.expect("kill");
}
