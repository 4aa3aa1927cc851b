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
