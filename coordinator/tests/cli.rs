//! The `coordinator` binary's contract with scripts and service managers, offline: the
//! version, exit 2 on usage errors, `validate` on the shipped example and on bad files (each
//! paired with its exact message), and `token create` on a fresh data directory. (The service
//! against a real probe is in the workspace's `tests/` crate, which also relies on this
//! target: it is what makes `cargo test --workspace` build the `coordinator` binary.)

use std::path::Path;
use std::process::{Command, Output};

fn coordinator() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coordinator"));
    // Relative paths in the expected messages are relative to the package.
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[test]
fn version_and_help_succeed() {
    let out = coordinator().arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).starts_with("coordinator "),
        "{}",
        show(&out)
    );
    let out = coordinator()
        .args(["token", "create", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out.stdout).contains("--region"), "{}", show(&out));
}

#[test]
fn usage_errors_exit_2_without_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for args in [
        &[][..],
        &["frobnicate"],
        &["run"],
        &["validate"],
        &["token", "create", "--region", "eu-central"],
        &["token", "create", "--data-dir", data],
        &[
            "token",
            "create",
            "--data-dir",
            data,
            "--region",
            "eu-central",
            "--expires",
            "soon",
        ],
        // Parsed, then refused: not a region of the catalog.
        &[
            "token",
            "create",
            "--data-dir",
            data,
            "--region",
            "atlantis-1",
        ],
        &["probe", "revoke", "--data-dir", data],
        &["probe", "list"],
    ] {
        let out = coordinator().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
    }
    assert!(
        !Path::new(data).join("meridian.db").exists(),
        "a usage error creates no database"
    );
}

#[test]
fn validate_accepts_the_shipped_example() {
    let out = coordinator()
        .args(["validate", "--config", "coordinator.example.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("coordinator.example.toml: valid (2 targets, 3 checks"),
        "{}",
        show(&out)
    );
}

#[test]
fn validate_reports_each_bad_fixture_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".toml") else {
            continue;
        };
        let expected = std::fs::read_to_string(dir.join(format!("{stem}.expected")))
            .unwrap_or_else(|e| panic!("{name} has no .expected file: {e}"));
        let out = coordinator()
            .args(["validate", "--config", &format!("testdata/{name}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", show(&out));
        assert_eq!(text(&out.stderr).trim_end(), expected.trim_end(), "{name}");
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} fixtures in {}", dir.display());
}

#[test]
fn token_create_prints_a_token_and_the_ca_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let create = || {
        coordinator()
            .args(["token", "create", "--data-dir", data.to_str().unwrap()])
            .args(["--region", "eu-central", "--expires", "1h"])
            .output()
            .unwrap()
    };
    let field = |out: &Output, key: &str| -> String {
        text(&out.stdout)
            .lines()
            .find_map(|l| Some(l.strip_prefix(key)?.strip_prefix(':')?.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {key}: line\n{}", show(out)))
    };
    let first = create();
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let token = field(&first, "token");
    assert!(token.len() >= 16, "{token:?}");
    assert_eq!(field(&first, "region"), "eu-central");
    let fingerprint = field(&first, "ca-fingerprint");
    assert_eq!(fingerprint.len(), 64, "{fingerprint:?}");
    assert!(
        fingerprint
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "lower-case hex: {fingerprint:?}"
    );
    assert!(data.join("meridian.db").exists());

    // The CA persists: a second token pins the same fingerprint; tokens are not reused.
    let second = create();
    assert_eq!(second.status.code(), Some(0), "{}", show(&second));
    assert_eq!(field(&second, "ca-fingerprint"), fingerprint);
    assert_ne!(field(&second, "token"), token);

    // No probe enrolled yet.
    let out = coordinator()
        .args(["probe", "list", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(text(&out.stdout).contains("0 probes"), "{}", show(&out));
    let out = coordinator()
        .args([
            "probe",
            "revoke",
            "nobody",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing to revoke: {}",
        show(&out)
    );
}

/// A scenario small enough to run in a debug build in well under a second: two regions of two
/// probes, ten minutes, no warm-up. `tail` adds `[[fault]]`, `[[expect]]` or `[score]` tables.
fn tiny_scenario(dir: &Path, name: &str, tail: &str) -> String {
    let text = format!(
        "name = \"{name}\"\nseed = 3\nduration = \"10m\"\nwarmup = \"0s\"\n\n\
         [world]\nregions = [\"us-east\", \"eu-west\"]\nprobes_per_region = 2\n\n\
         [[target]]\nid = \"www\"\norigin = \"us-east\"\n\n{tail}"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("the temporary directory is writable");
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

#[test]
fn simulate_exits_0_when_every_scenario_passes_and_1_when_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    // Without baselines the engine may raise anything: tolerate it, expect nothing.
    let passes = tiny_scenario(
        dir.path(),
        "passes",
        "[score]\nmax_false_incidents = 1000\n",
    );
    // Nothing is wrong, so nothing can meet this expectation.
    let fails = tiny_scenario(
        dir.path(),
        "fails",
        "[[expect]]\nclass = \"origin-down\"\ndetect_within = \"60s\"\n\n[score]\nmax_false_incidents = 1000\n",
    );
    let out = coordinator().args(["simulate", &passes]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stdout).starts_with("PASS passes (seed 3)"),
        "{}",
        show(&out)
    );

    let out = coordinator()
        .args(["simulate", &passes, &fails])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("PASS passes") && stdout.contains("FAIL fails"),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("MISS origin-down"), "{}", show(&out));
}

#[test]
fn simulate_json_prints_one_documented_object_per_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny_scenario(dir.path(), "a", "[score]\nmax_false_incidents = 1000\n");
    let b = tiny_scenario(
        dir.path(),
        "b",
        "[[fault]]\nkind = \"origin\"\nat = \"2m\"\nfor = \"5m\"\nerror_rate = 1.0\n\n\
         [[expect]]\nclass = \"origin-down\"\n\n[score]\nmax_false_incidents = 1000\n",
    );
    let out = coordinator()
        .args(["simulate", "--json", &a, &b])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", show(&out));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(&out));
    for (line, name) in lines.iter().zip(["a", "b"]) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = [
            "scenario",
            "passed",
            "seed",
            "incidents",
            "expectations",
            "false_incidents",
            "stats",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want, "{line}");
        assert_eq!(v["scenario"], name);
        assert_eq!(v["seed"], 3);
        // 2 regions × 2 probes × 10 one-minute slots, plus any bursts.
        assert!(v["stats"]["results"].as_u64().unwrap() >= 40, "{line}");
        assert!(v["stats"]["wall_ms"].is_u64(), "{line}");
        for i in v["incidents"].as_array().unwrap() {
            for key in [
                "id",
                "class",
                "regions",
                "targets",
                "onset_s",
                "detected_s",
                "paged_s",
                "resolved_s",
                "explanation",
            ] {
                assert!(i.get(key).is_some(), "incident without {key}: {line}");
            }
        }
    }
    let b: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    let e = &b["expectations"][0];
    assert_eq!(e["class"], "origin-down");
    for key in ["met", "ttd_s", "ttr_s"] {
        assert!(e.get(key).is_some(), "expectation without {key}: {e}");
    }
}

#[test]
fn simulate_exits_2_with_the_reason_for_unreadable_or_invalid_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".toml") else {
            continue;
        };
        let expected = std::fs::read_to_string(dir.join(format!("{stem}.expected"))).unwrap();
        let out = coordinator()
            .args(["simulate", &format!("testdata/scenarios/{name}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", show(&out));
        assert_eq!(text(&out.stderr).trim_end(), expected.trim_end(), "{name}");
        assert!(out.stdout.is_empty(), "nothing runs: {}", show(&out));
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} fixtures");

    // A bad file among good ones: nothing runs, every bad file is reported.
    let out = coordinator()
        .args([
            "simulate",
            "../tests/scenarios/fiber-cut.toml",
            "no-such-file.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).starts_with("no-such-file.toml: cannot read"),
        "{}",
        show(&out)
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));

    for args in [&["simulate"][..], &["simulate", "--frobnicate", "x.toml"]] {
        let out = coordinator().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
    }
    let out = coordinator().args(["simulate", "--help"]).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out.stdout).contains("coordinator simulate tests/scenarios/*.toml"));
}

/// A stored incident for `coordinator incidents` to list.
fn stored_incident(
    id: u64,
    class: &str,
    state: meridian_coordinator::store::incidents::StoredState,
) -> meridian_coordinator::store::incidents::IncidentRecord {
    meridian_coordinator::store::incidents::IncidentRecord {
        id,
        class: class.into(),
        state,
        severity: "page".into(),
        regions: vec!["eu-central".into(), "us-east".into()],
        targets: vec!["home".into()],
        asns: Vec::new(),
        probe: None,
        edge: None,
        onset_ms: 1_767_571_200_000,
        detected_ms: 1_767_571_203_500,
        ttd_ms: 3_500,
        paged_ms: Some(1_767_571_203_500),
        resolved_ms: None,
        explanation: format!("incident {id}: 4 of 4 probes fail (http-status)"),
        evidence: Vec::new(),
        timeline: Vec::new(),
        updated_ms: 1_767_571_203_500,
        maintenance: Default::default(),
    }
}

#[test]
fn incidents_lists_the_stored_incidents_as_a_table_or_json_lines() {
    use meridian_coordinator::store::incidents::StoredState;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let list = |extra: &[&str]| {
        let out = coordinator()
            .args(["incidents", "--data-dir", data.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        text(&out.stdout)
    };
    assert_eq!(list(&[]).lines().last(), Some("0 incidents"));
    assert_eq!(list(&["--json"]), "");

    {
        let store = meridian_coordinator::store::Store::open(&data).unwrap();
        let mut resolved = stored_incident(1, "origin-down", StoredState::Resolved);
        resolved.resolved_ms = Some(1_767_571_260_000);
        store.upsert_incident(&resolved).unwrap();
        store
            .upsert_incident(&stored_incident(2, "regional-network", StoredState::Paged))
            .unwrap();
    }

    let table = list(&[]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    for column in [
        "id", "class", "state", "regions", "detected", "ttd", "paged", "resolved",
    ] {
        assert!(lines[0].contains(column), "{table}");
    }
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        first[..8],
        [
            "1",
            "origin-down",
            "resolved",
            "eu-central,us-east",
            "2026-01-05T00:00:03Z",
            "3.5s",
            "2026-01-05T00:00:03Z",
            "2026-01-05T00:01:00Z",
        ],
        "{table}"
    );
    assert!(lines[1].ends_with("incident 1: 4 of 4 probes fail (http-status)"));
    assert!(
        lines[2].contains(" paged ") && lines[2].contains(" - "),
        "{table}"
    );
    assert_eq!(lines[3], "2 incidents");

    // --open: only what is still open; --json: one object per line, the documented fields.
    let open = list(&["--open"]);
    assert!(
        open.contains("regional-network") && !open.contains("origin-down"),
        "{open}"
    );
    let json = list(&["--json"]);
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2, "{json}");
    assert_eq!(objects[0]["class"], "origin-down");
    assert_eq!(objects[0]["state"], "resolved");
    assert_eq!(objects[0]["ttd_ms"], 3_500);
    assert_eq!(
        objects[0]["regions"],
        serde_json::json!(["eu-central", "us-east"])
    );
    assert_eq!(objects[1]["paged_ms"], 1_767_571_203_500_i64);
    assert!(objects[1]["resolved_ms"].is_null());
    let open_json = list(&["--json", "--open"]);
    assert_eq!(open_json.lines().count(), 1, "{open_json}");
}

/// A store holding incident 1 (a fiber cut in me-south, open), 2 (the same, resolved after 68
/// minutes) and 3 (a probe fault), and a config naming the target, in `dir`.
fn store_with_incidents(dir: &Path) -> std::path::PathBuf {
    use meridian_coordinator::store::Store;
    use meridian_coordinator::store::incidents::StoredState;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("test setup");
    let store = Store::open(&data).expect("test setup");
    let onset = 1_795_788_120_000; // 2026-11-27 14:02 UTC
    let record = |id: u64, class: &str, resolved: Option<i64>| {
        let state = match resolved {
            Some(_) => StoredState::Resolved,
            None => StoredState::Paged,
        };
        let mut r = stored_incident(id, class, state);
        r.regions = vec!["me-south".into()];
        r.targets = vec!["shop-home".into()];
        r.onset_ms = onset;
        r.resolved_ms = resolved;
        r
    };
    store
        .upsert_incident(&record(1, "regional-network", None))
        .expect("test setup");
    store
        .upsert_incident(&record(2, "regional-network", Some(onset + 68 * 60_000)))
        .expect("test setup");
    store
        .upsert_incident(&record(3, "probe-fault", None))
        .expect("test setup");
    let config = dir.join("coordinator.toml");
    std::fs::write(
        &config,
        "data_dir = \"data\"\n[listen]\nquic = \"127.0.0.1:4433\"\n\
         [[target]]\nid = \"shop\"\nname = \"The shop\"\n\
         [[target.http]]\nid = \"shop-home\"\nurl = \"https://shop.example.com/\"\n",
    )
    .expect("test setup");
    config
}

#[test]
fn draft_writes_the_member_message_of_a_stored_incident() {
    let dir = tempfile::tempdir().unwrap();
    let config = store_with_incidents(dir.path());
    let config = config.to_str().unwrap();
    let draft = |args: &[&str]| {
        coordinator()
            .args(["draft", "--config", config])
            .args(args)
            .output()
            .unwrap()
    };

    // Open: investigating by default, scoped with the region's member-facing name.
    let out = draft(&["1"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    let mut parts = stdout.splitn(2, "\n\n");
    assert_eq!(
        parts.next(),
        Some("Slow pages for members in the Middle East")
    );
    let body = parts.next().unwrap_or_default();
    assert!(
        body.starts_with(
            "Members in the Middle East may find The shop slow to load since 27 Nov 14:02 UTC."
        ),
        "{}",
        show(&out)
    );

    let out = draft(&["1", "--stage", "identified", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stage"], "identified");
    assert_eq!(json["class"], "regional-network");
    assert!(
        json["body"]
            .as_str()
            .unwrap()
            .contains("outside our own systems"),
        "{json}"
    );

    // Resolved: the default stage says when it ended and for how long.
    let out = draft(&["2"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("For 1 hour 8 minutes,"),
        "{}",
        show(&out)
    );

    // Nothing to say: still open, a probe fault, no such incident; a stage that does not exist.
    for (args, code, says) in [
        (&["1", "--stage", "resolved"][..], 1, "still open"),
        (&["3"], 1, "probe-fault, a state of the monitoring network"),
        (&["9"], 1, "no incident 9"),
        (
            &["1", "--stage", "postmortem"],
            2,
            "expected one of investigating",
        ),
    ] {
        let out = draft(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", show(&out));
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", show(&out));
    }
}

#[test]
fn a_draft_is_published_only_after_approval_and_then_never_changes() {
    use meridian_coordinator::drafts::{Draft, Stage};
    use meridian_coordinator::store::Store;
    let dir = tempfile::tempdir().unwrap();
    store_with_incidents(dir.path());
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // The coordinator offers a draft for incident 1, as the live service does.
    let offered = Draft {
        incident: 1,
        class: "regional-network".into(),
        stage: Stage::Identified,
        title: "Slow pages for members in the Middle East".into(),
        body: "Members in the Middle East may find The shop slow to load.".into(),
    };
    let onset = 1_795_788_120_000_i64;
    let (id, _) = Store::open(Path::new(data))
        .unwrap()
        .offer_draft(&offered, &["me-south".into()], onset + 30_000)
        .unwrap();
    let id = id.to_string();
    let message = |args: &[&str]| {
        coordinator()
            .arg("message")
            .args(args)
            .args(["--data-dir", data])
            .output()
            .unwrap()
    };

    let list = message(&["list"]);
    assert_eq!(list.status.code(), Some(0), "{}", show(&list));
    let listed = text(&list.stdout);
    assert!(
        listed
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().take(4).eq([
                id.as_str(),
                "1",
                "identified",
                "draft"
            ])),
        "{listed}"
    );

    // Not approved: not published.
    let early = message(&["publish", &id, "--by", "dana"]);
    assert_eq!(early.status.code(), Some(1), "{}", show(&early));
    assert!(
        text(&early.stderr).contains("only an approved message is published"),
        "{}",
        show(&early)
    );

    // Reworded from a file, approved, published.
    let words = dir.path().join("words.txt");
    std::fs::write(&words, "Members in the Gulf may see slow pages.\n").unwrap();
    let edit = message(&[
        "edit",
        &id,
        "--by",
        "lee",
        "--body-file",
        words.to_str().unwrap(),
    ]);
    assert_eq!(edit.status.code(), Some(0), "{}", show(&edit));
    let approve = message(&["approve", &id, "--by", "dana"]);
    assert_eq!(approve.status.code(), Some(0), "{}", show(&approve));
    let publish = message(&["publish", &id, "--by", "dana"]);
    assert_eq!(publish.status.code(), Some(0), "{}", show(&publish));
    let shown = text(&publish.stdout);
    assert!(
        shown.contains("Members in the Gulf may see slow pages."),
        "{shown}"
    );
    for who in ["edited", "approved", "published"] {
        assert!(
            shown.lines().any(|l| l.starts_with(who)
                && l.ends_with(if who == "edited" { "by lee" } else { "by dana" })),
            "{who}: {shown}"
        );
    }

    // Published words never change; nameless or empty steps are usage errors.
    let again = message(&["edit", &id, "--by", "lee", "--title", "New"]);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    assert!(
        text(&again.stderr).contains("never changed"),
        "{}",
        show(&again)
    );
    assert_eq!(
        message(&["approve", &id, "--by", " "]).status.code(),
        Some(2)
    );
    assert_eq!(
        message(&["edit", &id, "--by", "lee"]).status.code(),
        Some(2)
    );
    assert_eq!(message(&["show", "999"]).status.code(), Some(1));

    // The incident's time to communicate is now known.
    let incidents = coordinator()
        .args(["incidents", "--data-dir", data])
        .output()
        .unwrap();
    let table = text(&incidents.stdout);
    let first: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(first.first(), Some(&"1"), "{table}");
    let ttc: f64 = first[8].trim_end_matches('s').parse().unwrap();
    assert!(ttc > 0.0, "onset to publication: {table}");
}
