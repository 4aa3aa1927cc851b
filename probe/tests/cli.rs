//! The `probe` binary's contract with scripts and service managers, offline: exit codes for
//! usage and configuration errors, and `validate` on the shipped example. (Checks against real
//! servers are in the workspace's `tests/` crate, which also relies on this target: it is what
//! makes `cargo test --workspace` build the `probe` binary.)

use std::process::Command;

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_probe"))
}

#[test]
fn version_and_help_succeed() {
    let out = probe().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("probe "));
    let out = probe().args(["check", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit status"));
}

#[test]
fn usage_errors_exit_2_without_running_anything() {
    for args in [
        &["check"][..],
        &["check", "ftp://example.test/"],
        &["check", "dns:bad name/A"],
        &["check", "dns:example.test/SRV"],
        &["check", "--resolve", "nonsense", "http://example.test/"],
        &["frobnicate"],
    ] {
        let out = probe().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn enroll_usage_errors_exit_2_without_contacting_anything() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let fp = "ab".repeat(32);
    for args in [
        // A host name: the probe does not resolve names, so this is a usage error.
        &[
            "enroll",
            "--coordinator",
            "coordinator.example.test:7443",
            "--token",
            "t",
            "--ca-fingerprint",
            &fp,
            "--state-dir",
            dir,
        ][..],
        &[
            "enroll",
            "--coordinator",
            "127.0.0.1",
            "--token",
            "t",
            "--ca-fingerprint",
            &fp,
            "--state-dir",
            dir,
        ],
        &[
            "enroll",
            "--coordinator",
            "127.0.0.1:9",
            "--ca-fingerprint",
            &fp,
            "--state-dir",
            dir,
        ],
        &[
            "enroll",
            "--coordinator",
            "127.0.0.1:9",
            "--token",
            "t",
            "--ca-fingerprint",
            &fp,
        ],
        // Checked before any packet is sent.
        &[
            "enroll",
            "--coordinator",
            "127.0.0.1:9",
            "--token",
            "t",
            "--ca-fingerprint",
            "xyz",
            "--state-dir",
            dir,
        ],
    ] {
        let out = probe().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An already enrolled state directory is refused before connecting, too.
    std::fs::write(state.path().join("probe.key"), "").unwrap();
    let out = probe()
        .args([
            "enroll",
            "--coordinator",
            "127.0.0.1:9",
            "--token",
            "t",
            "--ca-fingerprint",
            &fp,
            "--state-dir",
            dir,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already enrolled"));
    let help = probe().args(["enroll", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("does not resolve"));
}

#[test]
fn validate_accepts_the_example_and_rejects_a_bad_file_with_its_location() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = probe()
        .args(["validate", "--config", &format!("{dir}/probe.example.toml")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = probe()
        .current_dir(dir)
        .args(["validate", "--config", "testdata/invalid-slot.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "testdata/invalid-slot.toml:3:8: slot: slot 3 is out of range for 3 slots (0 to 2)"
    );
}

#[test]
fn run_with_a_missing_config_exits_2() {
    let out = probe()
        .args(["run", "--config", "/nonexistent/probe.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/probe.toml"));
}
