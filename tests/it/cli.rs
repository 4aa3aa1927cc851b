//! The command lines: `probe check` (JSON keys and types, exit codes 0/1/2, DNS targets,
//! `--resolve`, `--cacert`) and `probe validate`; both binaries' `completions` (bash scripts
//! that parse, zsh's `#compdef`); `coordinator migrate`; and the progress bars of `coordinator
//! simulate`, `incident export` and `migrate`: drawn on a terminal (under `script`, a SKIP line
//! without it), and not a byte of them when the output is piped. The binaries are found next to
//! the test executable (see `meridian_tests::cli`).

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use meridian_probe::demo::origin::TlsVersions;
use meridian_tests::cli::{Output, probe, workspace_root};
use meridian_tests::coordinator::{coordinator, coordinator_bin};
use meridian_tests::{OriginBuilder, ScriptedDns, ZoneServer};
use serde_json::Value;

/// Every documented key of `probe check --json` (README and `probe/src/output.rs`).
const KEYS: [&str; 21] = [
    "target",
    "ok",
    "error",
    "message",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "transfer_ms",
    "total_ms",
    "status",
    "http_version",
    "tls_version",
    "cert_days_left",
    "bytes",
    "redirects",
    "remote_ip",
    "edge",
    "rcode",
    "answers",
    "warnings",
];

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"))
}

#[tokio::test]
async fn check_json_has_every_documented_key_with_its_type() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain()
        .name("cli-origin")
        .start()
        .await
        .expect("origin");
    let url = origin.url_via("origin.example.test", "/?delay_ms=100");
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    let obj = v.as_object().expect("an object");
    for key in KEYS {
        assert!(obj.contains_key(key), "missing {key}: {v}");
    }
    assert_eq!(obj.len(), KEYS.len(), "no undocumented keys: {v}");

    assert_eq!(v["target"], url.as_str());
    assert_eq!(v["ok"], true);
    assert!(v["error"].is_null() && v["message"].is_null(), "{v}");
    assert!(num(&v, "dns_ms") > 0.0, "{v}");
    assert!(num(&v, "connect_ms") >= 0.0, "{v}");
    assert_eq!(num(&v, "tls_ms"), 0.0, "plain http: {v}");
    assert!(num(&v, "ttfb_ms") >= 95.0, "{v}");
    assert!(num(&v, "transfer_ms") >= 0.0, "{v}");
    assert!(num(&v, "total_ms") >= num(&v, "ttfb_ms"), "{v}");
    assert_eq!(v["status"], 200);
    assert_eq!(v["http_version"], "HTTP/1.1");
    assert!(
        v["tls_version"].is_null() && v["cert_days_left"].is_null(),
        "{v}"
    );
    assert!(v["bytes"].as_u64().expect("bytes") > 0, "{v}");
    assert_eq!(v["redirects"], 0);
    assert_eq!(v["remote_ip"], "127.0.0.1");
    assert_eq!(v["edge"]["server"], "meridian-demo", "{v}");
    assert_eq!(v["edge"]["x-served-by"], "cli-origin", "{v}");
    assert!(
        v["rcode"].is_null() && v["answers"].is_null(),
        "HTTP check: {v}"
    );
    assert!(
        v["warnings"].as_array().expect("warnings array").is_empty(),
        "{v}"
    );
}

#[tokio::test]
async fn check_https_with_cacert_reports_tls() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::tls(TlsVersions::Tls12)
        .valid_days(40)
        .start()
        .await
        .expect("origin");
    let mut ca = tempfile::NamedTempFile::new().expect("temp file");
    ca.write_all(origin.ca_pem().expect("pem").as_bytes())
        .expect("write CA");
    let ca_path = ca.path().to_str().expect("utf-8 path");
    let url = origin.url_via("origin.example.test", "/");
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
        "--cacert",
        ca_path,
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["tls_version"], "TLSv1.2", "{v}");
    assert_eq!(v["http_version"], "HTTP/2", "{v}");
    assert_eq!(v["cert_days_left"], 40, "{v}");
    assert!(num(&v, "tls_ms") > 0.0, "{v}");

    // Without the CA the same check fails verification.
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.json().expect("json")["error"], "tls");
}

#[tokio::test]
async fn failing_check_exits_1_with_the_error_set() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let url = origin.url("/?status=503");
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &resolver,
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"], "http-status");
    assert!(
        v["message"].as_str().expect("message").contains("503"),
        "{v}"
    );
    assert_eq!(v["status"], 503);
}

#[tokio::test]
async fn loopback_target_without_allow_private_is_blocked() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let url = origin.url("/");
    let out = probe(&["check", "--json", "--resolver", &resolver, url.as_str()])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["error"], "blocked-target", "{v}");
    assert!(v["connect_ms"].is_null(), "never connected: {v}");
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn expectations_and_no_follow_from_the_command_line() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let base = [
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &resolver,
    ];
    let url = origin.url("/old?status=301&location=%2Fnew");
    let out = probe(
        &[
            &base[..],
            &["--no-follow", "--expect-status", "2xx,301", url.as_str()],
        ]
        .concat(),
    )
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(
        (v["status"].as_u64(), v["redirects"].as_u64()),
        (Some(301), Some(0)),
        "{v}"
    );

    let url = origin.url("/");
    let out = probe(
        &[
            &base[..],
            &["--body-contains", "no such text", url.as_str()],
        ]
        .concat(),
    )
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.json().expect("json")["error"], "content-mismatch");

    let out = probe(&[&base[..], &["--body-regex", "^hello from", url.as_str()]].concat())
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn resolve_flag_skips_the_resolver() {
    let silent = ScriptedDns::silent().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let url = origin.url_via("app.invalid", "/");
    let pin = format!("app.invalid:{}:127.0.0.1", origin.port());
    let resolver = format!("udp://{}", silent.addr());
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--timeout",
        "3s",
        "--resolver",
        &resolver,
        "--resolve",
        &pin,
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(num(&v, "dns_ms"), 0.0, "{v}");
    assert_eq!(silent.queries().total(), 0);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    // A resolver that never answers, so that even a wrongly accepted target queries only it.
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let cases: [&[&str]; 6] = [
        &["ftp://x"],
        &["not a url"],
        &["-H", "no colon here", "http://127.0.0.1:9/"],
        &["dns:example.test/BOGUS"],
        &["--expect-status", "6xx", "http://127.0.0.1:9/"],
        &["--timeout", "soon", "http://127.0.0.1:9/"],
    ];
    for case in cases {
        let args = [
            &["check", "--timeout", "1s", "--resolver", &resolver][..],
            case,
        ]
        .concat();
        let out = probe(&args).await.expect("probe ran");
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(
            out.stdout.is_empty(),
            "no result printed on a usage error: {out:?}"
        );
        assert!(!out.stderr.is_empty(), "the error is explained: {args:?}");
    }
    assert_eq!(dns.queries().total(), 0, "a usage error runs no check");
    let bad_resolver = probe(&["check", "--resolver", "dns.example", "dns:example.test"])
        .await
        .expect("probe ran");
    assert_eq!(bad_resolver.code, Some(2), "{bad_resolver:?}");
}

#[tokio::test]
async fn dns_target_prints_rcode_and_answers() {
    let dns = ZoneServer::start().await.expect("dns");
    let out = probe(&[
        "check",
        "--json",
        "--resolver",
        &dns.udp_uri(),
        "dns:example.test/MX",
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["rcode"], "NOERROR", "{v}");
    assert_eq!(
        v["answers"],
        serde_json::json!(["10 mail.example.test."]),
        "{v}"
    );
    assert_eq!(v["remote_ip"], "127.0.0.1", "{v}");
    assert!(num(&v, "dns_ms") > 0.0, "{v}");
    assert!(v["status"].is_null() && v["http_version"].is_null(), "{v}");

    let out = probe(&[
        "check",
        "--json",
        "--resolver",
        &dns.udp_uri(),
        "dns:nope.example.test",
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(
        (v["error"].as_str(), v["rcode"].as_str()),
        (Some("dns-rcode"), Some("NXDOMAIN")),
        "{v}"
    );

    let out = probe(&[
        "check",
        "--json",
        "--resolver",
        &dns.udp_uri(),
        "--expect-rcode",
        "NXDOMAIN",
        "dns:nope.example.test",
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn table_output_shows_phases_and_verdict() {
    let dns = ZoneServer::start().await.expect("dns");
    let out = probe(&["check", "--resolver", &dns.udp_uri(), "dns:example.test/MX"])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("NOERROR"), "{}", out.stdout);
    assert!(
        out.stdout.contains("answer   10 mail.example.test."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("dns")),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().last(), Some("ok"), "{}", out.stdout);
}

#[tokio::test]
async fn validate_accepts_the_example_config() {
    let example = workspace_root().join("probe/probe.example.toml");
    let out = probe(&["validate", "--config", example.to_str().expect("utf-8")])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("valid (3 checks"), "{}", out.stdout);
}

#[tokio::test]
async fn validate_rejects_a_bad_config_with_its_location() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("probe.toml");
    std::fs::write(
        &path,
        "probe_id = \"p1\"\nregion = \"eu-central\"\nresults = \"r.jsonl\"\n\n[[http]]\nid = \"x\"\nurl = \"ftp://example.test/\"\n",
    )
    .expect("write config");
    let out = probe(&["validate", "--config", path.to_str().expect("utf-8")])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("probe.toml:7:"),
        "file:line of the bad URL: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("http[0].url"),
        "the field: {}",
        out.stderr
    );
}

#[tokio::test]
async fn address_family_flags_filter_resolved_addresses() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let url = origin.url_via("origin.example.test", "/");
    let base = [
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
    ];
    let v4 = probe(&[&base[..], &["-4", url.as_str()]].concat())
        .await
        .expect("probe ran");
    assert_eq!(v4.code, Some(0), "{v4:?}");
    // origin.example.test has no AAAA record.
    let v6 = probe(&[&base[..], &["-6", url.as_str()]].concat())
        .await
        .expect("probe ran");
    assert_eq!(v6.code, Some(1), "{v6:?}");
    assert_eq!(v6.json().expect("json")["error"], "dns");
}

#[tokio::test]
async fn run_with_a_missing_config_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.toml");
    let out = probe(&["run", "--config", missing.to_str().expect("utf-8")])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("nope.toml"),
        "names the file: {}",
        out.stderr
    );
}

/// Prints a SKIP line straight to stderr (past the harness's capture, so `cargo test` shows it).
fn skip(what: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP cli {what}: {reason}");
}

/// Runs `program args` (a tool, not ours) to completion within 60 s, no standard input;
/// `None` when it is not installed.
async fn tool(program: &str, args: &[&str], env: &[(&str, &str)]) -> Option<Output> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("starting {program}: {e}"),
    };
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} still running after 60 s"))
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    Some(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// No escape sequence and no carriage return: nothing of a progress bar.
fn assert_plain(what: &str, out: &Output) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains('\x1b') && !text.contains('\r'),
            "{what}: terminal control characters on a piped {stream}: {text:?}"
        );
    }
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

#[tokio::test]
async fn bash_completions_parse_and_name_the_subcommands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &[&str]); 2] = [
        (
            "coordinator",
            &["simulate", "migrate", "incident", "export", "completions"],
        ),
        ("probe", &["check", "enroll", "validate", "completions"]),
    ];
    for (bin, subcommands) in cases {
        let out = match bin {
            "coordinator" => coordinator(&["completions", "bash"]).await,
            _ => probe(&["completions", "bash"]).await,
        }
        .expect("the binary runs");
        assert_eq!(out.code, Some(0), "{bin}: {out:?}");
        for sub in subcommands {
            assert!(out.stdout.contains(sub), "{bin}: no {sub}: {}", out.stdout);
        }
        let script = dir.path().join(format!("{bin}.bash"));
        std::fs::write(&script, &out.stdout).expect("writing the script");
        let Some(check) = tool("bash", &["-n", utf8(&script)], &[]).await else {
            skip("bash_completions", "bash is not installed");
            return;
        };
        assert_eq!(check.code, Some(0), "{bin}: bash -n: {}", check.stderr);
        // Sourced, it registers the completion function for the command's name.
        let source = format!("source {} && complete -p {bin}", utf8(&script));
        let loaded = tool("bash", &["-c", &source], &[])
            .await
            .expect("bash ran above");
        assert_eq!(loaded.code, Some(0), "{bin}: {loaded:?}");
        assert!(loaded.stdout.contains(bin), "{bin}: {loaded:?}");
    }
}

#[tokio::test]
async fn the_packaged_completions_are_what_this_build_prints() {
    // deploy/completions/ is what the Debian packages install; a flag added without
    // regenerating them would complete wrongly for every packaged user.
    let dir = workspace_root().join("deploy/completions");
    for bin in ["coordinator", "probe"] {
        for (shell, file) in [
            ("bash", format!("{bin}.bash")),
            ("zsh", format!("_{bin}")),
            ("fish", format!("{bin}.fish")),
        ] {
            let args = ["completions", shell];
            let out = match bin {
                "coordinator" => coordinator(&args).await,
                _ => probe(&args).await,
            }
            .expect("the binary runs");
            assert_eq!(out.code, Some(0), "{bin} {shell}: {out:?}");
            let kept = std::fs::read_to_string(dir.join(&file)).unwrap_or_default();
            assert!(
                kept == out.stdout,
                "deploy/completions/{file} is stale; regenerate it:\n  \
                 target/debug/{bin} completions {shell} > deploy/completions/{file}"
            );
        }
    }
}

#[tokio::test]
async fn every_shell_gets_a_script_and_an_unknown_one_is_a_usage_error() {
    for (bin, name) in [("coordinator", "coordinator"), ("probe", "probe")] {
        let run = |args: &'static [&'static str]| async move {
            match bin {
                "coordinator" => coordinator(args).await,
                _ => probe(args).await,
            }
            .expect("the binary runs")
        };
        let zsh = run(&["completions", "zsh"]).await;
        assert_eq!(zsh.code, Some(0), "{zsh:?}");
        assert!(
            zsh.stdout.starts_with(&format!("#compdef {name}")),
            "{}",
            zsh.stdout
        );
        for shell in ["fish", "elvish", "powershell"] {
            let out = run(match shell {
                "fish" => &["completions", "fish"],
                "elvish" => &["completions", "elvish"],
                _ => &["completions", "powershell"],
            })
            .await;
            assert_eq!(out.code, Some(0), "{bin} {shell}: {out:?}");
            assert!(out.stdout.contains(name), "{bin} {shell}: {}", out.stdout);
        }
        let bad = run(&["completions", "tcsh"]).await;
        assert_eq!(bad.code, Some(2), "{bad:?}");
        assert!(bad.stderr.contains("tcsh"), "{}", bad.stderr);
        let help = run(&["completions", "--help"]).await;
        assert!(
            help.stdout.contains("Examples:") && help.stdout.contains("bash_completion.d"),
            "{}",
            help.stdout
        );
    }
}

#[tokio::test]
async fn migrate_brings_a_new_directory_to_the_schema_then_has_nothing_to_do() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let d = utf8(tmp.path());
    let latest = meridian_coordinator::store::latest_schema();

    let first = coordinator(&["migrate", "--data-dir", d])
        .await
        .expect("coordinator runs");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(first.stdout, format!("schema 0 → {latest}\n"), "{first:?}");
    assert_plain("migrate", &first);

    let again = coordinator(&["migrate", "--data-dir", d])
        .await
        .expect("coordinator runs");
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.stdout, format!("already at schema {latest}\n"));

    let listed = coordinator(&["incidents", "--data-dir", d])
        .await
        .expect("coordinator runs");
    assert_eq!(listed.code, Some(0), "{listed:?}");
    assert!(listed.stdout.ends_with("0 incidents\n"), "{listed:?}");

    // A mistyped directory is an error naming it, not a new database.
    let missing = tmp.path().join("nope");
    let out = coordinator(&["migrate", "--data-dir", utf8(&missing)])
        .await
        .expect("coordinator runs");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("nope") && !out.stderr.contains("panicked"),
        "{}",
        out.stderr
    );
    assert!(!missing.exists());
}

/// A scenario that runs in a debug build in well under a second (as in
/// `coordinator/tests/cli.rs`): two regions of two probes, ten minutes.
fn tiny_scenario(dir: &Path, name: &str) -> String {
    let text = format!(
        "name = \"{name}\"\nseed = 3\nduration = \"10m\"\nwarmup = \"0s\"\n\n\
         [world]\nregions = [\"us-east\", \"eu-west\"]\nprobes_per_region = 2\n\n\
         [[target]]\nid = \"www\"\norigin = \"us-east\"\n\n\
         [score]\nmax_false_incidents = 1000\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("writing the scenario");
    utf8(&path).to_owned()
}

/// A data directory holding one resolved incident (1), written with the coordinator's store.
fn one_incident(dir: &Path) {
    use meridian_coordinator::store::Store;
    use meridian_coordinator::store::incidents::IncidentRecord;
    let onset: i64 = 1_768_478_400_000;
    let record: IncidentRecord = serde_json::from_value(serde_json::json!({
        "id": 1,
        "class": "regional-network",
        "state": "resolved",
        "severity": "page",
        "regions": ["me-south"],
        "targets": ["home"],
        "asns": [],
        "probe": null,
        "edge": null,
        "onset_ms": onset,
        "detected_ms": onset + 95_000,
        "ttd_ms": 95_000,
        "paged_ms": null,
        "resolved_ms": onset + 1_200_000,
        "explanation": "Round trips from me-south grew by 180 ms.",
        "evidence": [],
        "timeline": [],
        "updated_ms": onset + 1_200_000,
    }))
    .expect("an incident as `coordinator incidents --json` prints it");
    let store = Store::open(dir).expect("opening the store");
    store
        .upsert_incident(&record)
        .expect("storing the incident");
}

#[tokio::test]
async fn piped_output_of_long_commands_carries_no_progress_bar() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let a = tiny_scenario(tmp.path(), "quiet-a");
    let b = tiny_scenario(tmp.path(), "quiet-b");
    for json in [false, true] {
        let args: Vec<&str> = if json {
            vec!["simulate", "--json", &a, &b]
        } else {
            vec!["simulate", &a, &b]
        };
        let out = coordinator(&args).await.expect("coordinator runs");
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_plain("simulate", &out);
        assert!(out.stderr.is_empty(), "{out:?}");
        assert!(!out.stdout.contains("simulating"), "{out:?}");
    }

    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    one_incident(&data);
    for format in ["md", "json"] {
        let out = coordinator(&[
            "incident",
            "export",
            "1",
            "--data-dir",
            utf8(&data),
            "--format",
            format,
        ])
        .await
        .expect("coordinator runs");
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_plain("export", &out);
        assert!(out.stderr.is_empty(), "{out:?}");
    }
}

/// `cmd` under `script` (util-linux), on a pseudo-terminal, `TERM` set; `None` (after a SKIP
/// line) where `script` is not installed.
async fn on_a_terminal(test: &str, cmd: &str) -> Option<Output> {
    let Some(out) = tool(
        "script",
        &["-qfec", cmd, "/dev/null"],
        &[("TERM", "xterm"), ("SHELL", "/bin/sh")],
    )
    .await
    else {
        skip(
            test,
            "`script` (util-linux) is not installed, so no terminal to draw on",
        );
        return None;
    };
    Some(out)
}

#[tokio::test]
async fn on_a_terminal_long_commands_draw_a_bar_on_stderr() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let scenario = tiny_scenario(tmp.path(), "drawn-scenario");
    let bin = coordinator_bin().expect("the coordinator binary");
    let bin = utf8(&bin);
    // stdout goes to a file: the bar is stderr's alone, and stdout keeps only the report.
    let report = tmp.path().join("report.txt");
    let cmd = format!("'{bin}' simulate '{scenario}' > '{}'", utf8(&report));
    let Some(out) = on_a_terminal("on_a_terminal_long_commands_draw_a_bar_on_stderr", &cmd).await
    else {
        return;
    };
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("simulating [") && out.stdout.contains("drawn-scenario"),
        "no bar on the terminal: {:?}",
        out.stdout
    );
    let report = std::fs::read_to_string(&report).expect("the report");
    assert!(report.starts_with("PASS drawn-scenario"), "{report:?}");
    assert!(
        !report.contains('\x1b') && !report.contains('\r'),
        "{report:?}"
    );

    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    one_incident(&data);
    let cmd = format!(
        "'{bin}' incident export 1 --data-dir '{}' --format json > /dev/null",
        utf8(&data)
    );
    let out = on_a_terminal("on_a_terminal_long_commands_draw_a_bar_on_stderr", &cmd)
        .await
        .expect("script ran above");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("exporting ["),
        "no bar: {:?}",
        out.stdout
    );

    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).expect("data dir");
    let cmd = format!("'{bin}' migrate --data-dir '{}'", utf8(&fresh));
    let out = on_a_terminal("on_a_terminal_long_commands_draw_a_bar_on_stderr", &cmd)
        .await
        .expect("script ran above");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("migrating ["),
        "no bar: {:?}",
        out.stdout
    );
    let latest = meridian_coordinator::store::latest_schema();
    assert!(
        out.stdout.contains(&format!("schema 0 → {latest}")),
        "{:?}",
        out.stdout
    );
}
