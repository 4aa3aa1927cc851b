//! What an SRE copies onto a VM (`deploy/`), checked against this build's binaries:
//!
//! - the systemd units: the hardening the deployment promises, consistent with their sysusers.d
//!   and tmpfiles.d files, `systemd-analyze verify` clean, `systemd-analyze security` exposure
//!   below 2.0;
//! - the cloud-init template: every template variable documented; filled in, its probe.toml and its
//!   `probe enroll` command line run against a real coordinator on 127.0.0.1, its script
//!   parses (`sh -n`), and `cloud-init schema` accepts it (where cloud-init is installed; CI
//!   installs it);
//! - the Dockerfiles, statically: what they build and copy exists (no image is built: that
//!   needs a Docker daemon);
//! - as root with cargo-deb (CI installs it): the Debian packages, made from this build's debug
//!   binaries, installed with dpkg, checked (versions, the installed configurations validate,
//!   the installed units verify, nothing enabled before enrolment) and purged, leaving the
//!   machine as it was.
//!
//! Not here: starting the units under systemd (test machines do not run it as PID 1). Every
//! command is bounded in time; a SKIP line says what did not run and why.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use meridian_tests::cli::{Output, probe_bin, workspace_root};
use meridian_tests::coordinator::{self as coord, Coordinator, coordinator_bin};
use tokio::process::Command;

/// Budget of one quick command (`systemd-analyze`, `dpkg -P`, `--version`, `validate`).
const QUICK: Duration = Duration::from_secs(30);
/// Budget of one `cargo deb` run (about 10 s for the coordinator's 80 MB debug binary).
const PACKAGING: Duration = Duration::from_secs(90);
/// How long to wait for another test run's package test to finish (dpkg has one lock).
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// The two services: (binary and config name, package and unit name).
const SERVICES: [(&str, &str); 2] = [
    ("probe", "meridian-probe"),
    ("coordinator", "meridian-coordinator"),
];

/// Runs `cmd` to completion with no standard input, killing it past `budget`.
async fn run(cmd: &mut Command, budget: Duration) -> Output {
    let what = format!("{:?}", cmd.as_std());
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let out = tokio::time::timeout(budget, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after {budget:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Prints a SKIP line straight to stderr (past the harness's capture, so `cargo test` shows it).
fn skip(what: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP deploy {what}: {reason}");
}

/// Whether a missing tool must fail the test rather than skip it: where `.ci/run` installs
/// every tool these tests use (in CI, as root, with apt-get).
fn ci_installs_tools() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
        && nix::unistd::geteuid().is_root()
        && Path::new("/usr/bin/apt-get").exists()
}

fn read(rel: &str) -> String {
    let path = workspace_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of the first active (uncommented) `key=` line of a unit or conf file.
fn directive<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test]
async fn units_are_hardened_verified_and_consistent_with_their_users() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut copies = Vec::new();
    for (bin, unit) in SERVICES {
        let text = read(&format!("deploy/systemd/{unit}.service"));
        let config = format!("/etc/meridian/{bin}.toml");
        let required = [
            format!("ExecStartPre=/usr/bin/{bin} validate --config {config}"),
            format!("ExecStart=/usr/bin/{bin} run --config {config}"),
            "ExecReload=/bin/kill -HUP $MAINPID".to_owned(),
            "Restart=on-failure".to_owned(),
            format!("User={unit}"),
            format!("StateDirectory={unit}"),
            "ConfigurationDirectory=meridian".to_owned(),
            "NoNewPrivileges=yes".to_owned(),
            "CapabilityBoundingSet=".to_owned(),
            "AmbientCapabilities=".to_owned(),
            "ProtectSystem=strict".to_owned(),
            "ProtectHome=yes".to_owned(),
            "PrivateTmp=yes".to_owned(),
            "PrivateDevices=yes".to_owned(),
            "ProtectKernelTunables=yes".to_owned(),
            "ProtectKernelModules=yes".to_owned(),
            "ProtectKernelLogs=yes".to_owned(),
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX".to_owned(),
            "SystemCallFilter=@system-service".to_owned(),
            "MemoryDenyWriteExecute=yes".to_owned(),
            "LockPersonality=yes".to_owned(),
        ];
        for line in &required {
            assert!(
                text.lines().any(|l| l == line),
                "{unit}.service lacks `{line}`"
            );
        }
        // No capability comes back on a later line (only the documented drop-in adds one).
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("AmbientCapabilities=CAP")
                    || l.starts_with("CapabilityBoundingSet=CAP")),
            "{unit}.service grants a capability"
        );
        for key in ["RestartSec", "StartLimitIntervalSec", "StartLimitBurst"] {
            assert!(directive(&text, key).is_some(), "{unit}.service: no {key}=");
        }

        // The user and directory the unit runs with are the ones the package creates.
        let sysusers = read(&format!("deploy/systemd/{unit}.sysusers"));
        let state = format!("/var/lib/{unit}");
        assert!(
            sysusers
                .lines()
                .any(|l| l.starts_with(&format!("u {unit} ")) && l.ends_with(&format!(" {state}"))),
            "{unit}.sysusers does not make user {unit} with home {state}:\n{sysusers}"
        );
        let mode = directive(&text, "StateDirectoryMode").unwrap_or("0755");
        let tmpfile = read(&format!("deploy/systemd/{unit}.tmpfile"));
        let entry = format!("d {state} {mode} {unit} {unit} -");
        assert!(
            tmpfile.lines().any(|l| l == entry),
            "{unit}.tmpfile lacks `{entry}`:\n{tmpfile}"
        );

        let exposure =
            exposure(&workspace_root().join(format!("deploy/systemd/{unit}.service"))).await;
        let _ = writeln!(
            std::io::stderr(),
            "deploy: systemd-analyze security {unit}.service: {exposure}"
        );
        assert!(exposure < 2.0, "{unit}.service: exposure {exposure}");

        // `systemd-analyze verify` checks that every command exists: this build's binaries
        // stand in for the installed ones.
        let built = match bin {
            "probe" => probe_bin(),
            _ => coordinator_bin(),
        }
        .expect("the binary of this build");
        let copy = dir.path().join(format!("{unit}.service"));
        let text = text.replace(&format!("/usr/bin/{bin}"), &built.to_string_lossy());
        std::fs::write(&copy, text).expect("write the unit");
        copies.push(copy);
    }
    verify(&copies).await;
}

/// `systemd-analyze verify UNITS`: succeeds with nothing on stderr.
async fn verify(units: &[PathBuf]) {
    let out = run(
        Command::new("systemd-analyze").arg("verify").args(units),
        QUICK,
    )
    .await;
    assert!(
        out.code == Some(0) && out.stderr.is_empty(),
        "systemd-analyze verify {units:?}: {out:?}"
    );
}

/// The overall exposure `systemd-analyze security --offline=true` gives the unit file.
async fn exposure(unit: &Path) -> f64 {
    let out = run(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(unit),
        QUICK,
    )
    .await;
    assert_eq!(out.code, Some(0), "systemd-analyze security: {out:?}");
    out.stdout
        .lines()
        .find_map(|l| {
            let rest = l.split("Overall exposure level for ").nth(1)?;
            rest.split_once(": ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no overall exposure level in {out:?}"))
}

/// The template variables of the cloud-init template, in the order its header documents them.
const TEMPLATE_VARIABLES: [&str; 7] = [
    "PROBE_DEB_URL",
    "PROBE_DEB_SHA256",
    "COORDINATOR_NAME",
    "COORDINATOR_ADDRESS",
    "COORDINATOR_SERVER_NAME",
    "ENROLL_TOKEN",
    "CA_FINGERPRINT",
];

/// Every `${NAME}` in `text`.
fn template_variables(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// The YAML literal block (`|`) that follows the line `header` (compared trimmed), dedented:
/// the lines after it that are empty or indented deeper than it.
fn literal_block(yaml: &str, header: &str) -> Option<String> {
    let depth = |l: &str| l.len() - l.trim_start().len();
    let mut lines = yaml.lines().skip_while(|l| l.trim() != header);
    let parent = depth(lines.next()?);
    let mut indent = None;
    let mut block = String::new();
    for line in lines {
        if line.trim().is_empty() {
            block.push('\n');
            continue;
        }
        if depth(line) <= parent {
            break;
        }
        let indent = *indent.get_or_insert(depth(line));
        block.push_str(line.get(indent..).unwrap_or(line.trim_start()));
        block.push('\n');
    }
    Some(block.trim_end().to_owned() + "\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_init_template_enrols_a_probe_and_is_valid_cloud_config() {
    const REGION: &str = "eu-central";
    let template = read("deploy/cloud-init/probe-user-data.yaml");
    assert!(template.starts_with("#cloud-config\n"), "the first line");
    let expected: BTreeSet<String> = TEMPLATE_VARIABLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        template_variables(&template),
        expected,
        "the template's variables"
    );
    let header: String = template
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect();
    for name in TEMPLATE_VARIABLES {
        assert!(
            header.contains(name),
            "{name} is not documented in the header"
        );
    }

    // A real coordinator, and a one-time token from it.
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n\n[listen]\nquic = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\
             server_names = [\"localhost\"]\n",
            data.display()
        ),
    )
    .expect("write coordinator.toml");
    let coordinator = Coordinator::start(&config, &dir.path().join("coordinator.log"))
        .await
        .expect("coordinator started");
    let token = coord::create_token(&data, REGION).await.expect("a token");

    let values = [
        (
            "PROBE_DEB_URL",
            "https://packages.example.invalid/meridian-probe_0.1.0-1_amd64.deb".to_owned(),
        ),
        ("PROBE_DEB_SHA256", "0".repeat(64)),
        ("COORDINATOR_NAME", "eu-1".to_owned()),
        ("COORDINATOR_ADDRESS", coordinator.addr().to_string()),
        ("COORDINATOR_SERVER_NAME", "localhost".to_owned()),
        ("ENROLL_TOKEN", token.token.clone()),
        ("CA_FINGERPRINT", token.ca_fingerprint.clone()),
    ];
    let mut user_data = template.clone();
    for (name, value) in &values {
        user_data = user_data.replace(&format!("${{{name}}}"), value);
    }
    assert!(!user_data.contains("${"), "left unfilled:\n{user_data}");
    let user_data_file = dir.path().join("user-data");
    std::fs::write(&user_data_file, &user_data).expect("write user-data");

    // The bootstrap script parses.
    let script = literal_block(&user_data, "- |").expect("runcmd's script block");
    assert!(script.starts_with("set -eu\n"), "{script}");
    let script_file = dir.path().join("bootstrap.sh");
    std::fs::write(&script_file, &script).expect("write the script");
    let out = run(Command::new("sh").arg("-n").arg(&script_file), QUICK).await;
    assert_eq!(out.code, Some(0), "sh -n: {out:?}\n{script}");

    // Its enrolment command, as written, enrols against the real coordinator (into a temporary
    // state directory instead of the package's).
    let state = dir.path().join("state");
    let state_str = state.to_str().expect("utf-8 path");
    let joined = script.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.contains("probe enroll"))
        .expect("an enrolment line");
    assert!(
        line.trim_start()
            .starts_with("runuser -u meridian-probe -- probe enroll "),
        "enrols as the service's user: {line}"
    );
    let command = &line[line.find("probe enroll").expect("probe enroll")..];
    let command = command.split(" && ").next().expect("the command");
    let args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(|a| {
            a.trim_matches('\'')
                .replace("/var/lib/meridian-probe", state_str)
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = meridian_tests::cli::probe(&args)
        .await
        .expect("probe enroll");
    assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
    assert!(
        out.stdout.contains(&format!("in region {REGION}")),
        "{out:?}"
    );
    // What the script checks for before starting the service is what enrolment wrote.
    let proof = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("test -s /var/lib/meridian-probe/"))
        .expect("the script checks for the certificate");
    assert!(state.join(proof).is_file(), "enrolment wrote no {proof}");

    // The probe.toml it writes validates with that enrolment.
    let probe_toml = literal_block(&user_data, "content: |").expect("write_files' content");
    assert!(probe_toml.contains("state_dir = \"/var/lib/meridian-probe\""));
    let probe_config = dir.path().join("probe.toml");
    std::fs::write(
        &probe_config,
        probe_toml.replace("/var/lib/meridian-probe", state_str),
    )
    .expect("write probe.toml");
    let out = meridian_tests::cli::probe(&[
        "validate",
        "--config",
        probe_config.to_str().expect("utf-8 path"),
    ])
    .await
    .expect("probe validate");
    assert_eq!(out.code, Some(0), "{out:?}\n{probe_toml}");
    assert!(
        out.stdout.contains(&format!("region {REGION}")) && out.stdout.contains("1 coordinators"),
        "{out:?}"
    );
    let status = coordinator
        .terminate(QUICK)
        .await
        .expect("coordinator stop");
    assert!(status.success(), "{status}");

    // cloud-init's own schema check of the filled-in file.
    let cloud_init = run(
        Command::new("sh").args(["-c", "command -v cloud-init"]),
        QUICK,
    )
    .await;
    if cloud_init.code != Some(0) {
        assert!(
            !ci_installs_tools(),
            "cloud-init is not installed (.ci/run installs it)"
        );
        skip(
            "cloud-init schema",
            "cloud-init is not installed (`apt-get install cloud-init`); the template's script, \
             probe.toml and enrolment were checked",
        );
        return;
    }
    let out = run(
        Command::new("cloud-init")
            .args(["schema", "--config-file"])
            .arg(&user_data_file),
        QUICK,
    )
    .await;
    assert!(
        out.code == Some(0) && out.stdout.contains("Valid cloud-config"),
        "cloud-init schema: {out:?}"
    );
}

/// Where `include_str!`/`include_bytes!` in the Rust files under `dir` point, resolved.
fn included_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            included_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            for macro_call in ["include_str!(\"", "include_bytes!(\""] {
                for rest in text.split(macro_call).skip(1) {
                    if let Some((target, _)) = rest.split_once('"') {
                        found.push(normalize(&path.parent().expect("a parent").join(target)));
                    }
                }
            }
        }
    }
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn dockerfiles_build_and_copy_what_exists() {
    let root = workspace_root();
    let manifest = read("Cargo.toml");
    let members: Vec<String> = manifest
        .lines()
        .find_map(|l| l.strip_prefix("members = ["))
        .expect("the workspace's members line")
        .trim_end_matches(']')
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    // Everything a release build reads outside a member crate's own directory.
    let mut included = Vec::new();
    for member in &members {
        let src = root.join(member).join("src");
        if src.is_dir() {
            included_files(&src, &mut included);
        }
    }
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock"]
        .iter()
        .map(|s| s.to_string())
        .chain(members.iter().cloned())
        .collect();
    for file in &included {
        assert!(file.exists(), "included but missing: {}", file.display());
        let rel = file.strip_prefix(&root).expect("inside the workspace");
        let top = rel.components().next().expect("a component");
        needed.insert(top.as_os_str().to_string_lossy().into_owned());
    }

    for (bin, package) in SERVICES {
        let path = format!("deploy/docker/{bin}.Dockerfile");
        let text = read(&path);
        let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(
            froms,
            [
                "FROM rust:1.95-slim-bookworm AS build",
                "FROM debian:bookworm-slim"
            ],
            "{path}"
        );
        let crate_manifest = read(&format!("{bin}/Cargo.toml"));
        assert!(
            crate_manifest.contains(&format!("name = \"{package}\""))
                && crate_manifest.contains(&format!("[[bin]]\nname = \"{bin}\"")),
            "{bin}/Cargo.toml: package {package} with binary {bin}"
        );
        for line in [
            format!("cargo build --release --locked -p {package} --bin {bin}"),
            format!("install -m 0755 target/release/{bin} /usr/local/bin/{bin}"),
            format!("COPY --from=build /usr/local/bin/{bin} /usr/bin/{bin}"),
            format!("ENTRYPOINT [\"/usr/bin/{bin}\"]"),
            format!("CMD [\"run\", \"--config\", \"/etc/meridian/{bin}.toml\"]"),
        ] {
            assert!(text.contains(&line), "{path} lacks `{line}`");
        }
        let user = text
            .lines()
            .find_map(|l| l.strip_prefix("USER "))
            .expect("a USER line");
        let (uid, gid) = user.split_once(':').expect("USER uid:gid");
        assert!(
            uid.parse::<u32>().is_ok_and(|u| u > 0) && gid.parse::<u32>().is_ok_and(|g| g > 0),
            "{path}: USER {user} is numeric and not root"
        );

        // The build context (BuildKit's per-Dockerfile ignore file) holds everything the
        // build reads, and only names what exists.
        let ignore = read(&format!("{path}.dockerignore"));
        let allowed: BTreeSet<String> = ignore
            .lines()
            .filter_map(|l| l.strip_prefix('!'))
            .map(str::to_owned)
            .collect();
        assert!(
            ignore.lines().any(|l| l == "*"),
            "{path}.dockerignore starts from nothing"
        );
        for name in &allowed {
            assert!(root.join(name).exists(), "{path}.dockerignore: no {name}");
        }
        let missing: Vec<&String> = needed.difference(&allowed).collect();
        assert!(
            missing.is_empty(),
            "{path}.dockerignore leaves out {missing:?}"
        );
    }

    // The coordinator's health check asks a route the coordinator serves.
    let coordinator = read("deploy/docker/coordinator.Dockerfile");
    assert!(coordinator.contains("HEALTHCHECK") && coordinator.contains("GET /healthz "));
    assert!(
        read("coordinator/src/web/mod.rs").contains(".route(\"/healthz\""),
        "the coordinator serves /healthz"
    );
}

/// Undoes a package install on drop: purges both packages and deletes the system users and
/// state directories the install made (a machine that had them keeps them).
struct Installed {
    new_users: Vec<&'static str>,
    new_dirs: Vec<PathBuf>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("dpkg")
            .args(["--purge", "meridian-probe", "meridian-coordinator"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for user in &self.new_users {
            let _ = std::process::Command::new("userdel")
                .arg(user)
                .stderr(Stdio::null())
                .status();
        }
        for dir in &self.new_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn user_exists(name: &str) -> bool {
    run(Command::new("getent").args(["passwd", name]), QUICK)
        .await
        .code
        == Some(0)
}

/// Hard-links (or copies) a binary of this build to `dir/release/NAME`, where cargo-deb, given
/// `dir` as the target directory, looks for the `target/release/NAME` of its assets.
fn stage(bin: &Path, dir: &Path) {
    let release = dir.join("release");
    std::fs::create_dir_all(&release).expect("create the staging directory");
    let to = release.join(bin.file_name().expect("a file name"));
    if std::fs::hard_link(bin, &to).is_err() {
        std::fs::copy(bin, &to).expect("copy the binary");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_packages_install_check_and_purge() {
    if !nix::unistd::geteuid().is_root() {
        skip("packages", "not root (dpkg -i needs it)");
        return;
    }
    let have = |tool: &'static str| async move {
        run(
            Command::new("sh").args(["-c", &format!("command -v {tool}")]),
            QUICK,
        )
        .await
        .code
            == Some(0)
    };
    if !have("dpkg").await {
        skip("packages", "not a Debian system (no dpkg)");
        return;
    }
    for (tool, install) in [
        ("cargo-deb", "cargo install cargo-deb --locked"),
        ("dpkg-shlibdeps", "apt-get install dpkg-dev"),
    ] {
        if !have(tool).await {
            assert!(
                !ci_installs_tools(),
                "{tool} is not installed (.ci/run installs it)"
            );
            skip(
                "packages",
                &format!("{tool} is not installed (`{install}`)"),
            );
            return;
        }
    }

    // One package test at a time on this machine (dpkg has one lock, and the packages are
    // system-wide).
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/lock/meridian-deploy-test.lock")
        .expect("open the lock file");
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    let mut lock_file = Some(lock_file);
    let _lock = loop {
        let file = lock_file.take().expect("the lock file");
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((file, _)) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "another package test held the lock for {LOCK_WAIT:?}"
                );
                lock_file = Some(file);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    for (_, package) in SERVICES {
        let status = run(
            Command::new("dpkg-query").args(["-W", "-f=${Status}", package]),
            QUICK,
        )
        .await;
        if status.stdout.contains("installed") {
            skip(
                "packages",
                &format!("{package} is installed here; not replacing it"),
            );
            return;
        }
    }
    // The packages, from this build's debug binaries: cargo-deb packages `target/release/BIN`
    // of the target directory it is given, so that directory holds links to them.
    let root = workspace_root();
    let work = tempfile::Builder::new()
        .prefix("deploy-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    stage(&probe_bin().expect("the probe binary"), work.path());
    stage(
        &coordinator_bin().expect("the coordinator binary"),
        work.path(),
    );
    let debs = work.path().join("debs");
    let started = tokio::time::Instant::now();
    let package = |name: &'static str| {
        let mut cmd = Command::new("cargo-deb");
        cmd.current_dir(&root)
            .env("CARGO_TARGET_DIR", work.path())
            .args(["--no-build", "--locked", "--fast", "-p", name, "--output"])
            .arg(&debs);
        cmd
    };
    let (mut probe_cmd, mut coordinator_cmd) =
        (package("meridian-probe"), package("meridian-coordinator"));
    let (p, c) = tokio::join!(
        run(&mut probe_cmd, PACKAGING),
        run(&mut coordinator_cmd, PACKAGING)
    );
    for out in [&p, &c] {
        assert_eq!(out.code, Some(0), "cargo deb: {out:?}");
    }
    let version = env!("CARGO_PKG_VERSION");
    let files: Vec<PathBuf> = SERVICES
        .iter()
        .map(|(_, package)| debs.join(format!("{package}_{version}-1_amd64.deb")))
        .collect();
    for file in &files {
        assert!(file.is_file(), "no {}: {p:?} {c:?}", file.display());
        let fields = run(
            Command::new("dpkg-deb")
                .args(["-f"])
                .arg(file)
                .arg("Depends"),
            QUICK,
        )
        .await;
        assert!(fields.stdout.contains("libc6"), "Depends: {fields:?}");
    }
    let packaged = started.elapsed();

    let mut installed = Installed {
        new_users: Vec::new(),
        new_dirs: Vec::new(),
    };
    for (_, package) in SERVICES {
        if !user_exists(package).await {
            installed.new_users.push(package);
        }
        let dir = PathBuf::from("/var/lib").join(package);
        if !dir.exists() {
            installed.new_dirs.push(dir);
        }
    }

    let out = run(Command::new("dpkg").arg("-i").args(&files), QUICK).await;
    assert_eq!(out.code, Some(0), "dpkg -i: {out:?}");

    for (bin, package) in SERVICES {
        let out = run(
            Command::new(format!("/usr/bin/{bin}")).arg("--version"),
            QUICK,
        )
        .await;
        assert_eq!(out.stdout.trim(), format!("{bin} {version}"), "{out:?}");
        assert!(
            user_exists(package).await,
            "the package made user {package}"
        );
        for (installed, kept) in [
            (
                format!("/usr/share/bash-completion/completions/{bin}"),
                format!("{bin}.bash"),
            ),
            (
                format!("/usr/share/zsh/vendor-completions/_{bin}"),
                format!("_{bin}"),
            ),
            (
                format!("/usr/share/fish/vendor_completions.d/{bin}.fish"),
                format!("{bin}.fish"),
            ),
        ] {
            assert_eq!(
                std::fs::read_to_string(&installed).ok(),
                Some(read(&format!("deploy/completions/{kept}"))),
                "{installed} is the repository's"
            );
        }
        let unit = format!("/usr/lib/systemd/system/{package}.service");
        assert_eq!(
            std::fs::read_to_string(&unit).expect("the installed unit"),
            read(&format!("deploy/systemd/{package}.service")),
            "{unit} is the repository's"
        );
        // Installed disabled: a probe starts once enrolled, a coordinator once configured.
        let wants = format!("/etc/systemd/system/multi-user.target.wants/{package}.service");
        assert!(
            !Path::new(&wants).exists(),
            "{package} was enabled at install"
        );
    }
    verify(&[
        PathBuf::from("/usr/lib/systemd/system/meridian-probe.service"),
        PathBuf::from("/usr/lib/systemd/system/meridian-coordinator.service"),
    ])
    .await;

    // The configurations shipped validate with the installed binaries.
    for (bin, config, expect) in [
        (
            "coordinator",
            "/etc/meridian/coordinator.toml",
            "data in /var/lib/meridian-coordinator",
        ),
        (
            "coordinator",
            "/usr/share/doc/meridian-coordinator/examples/coordinator.example.toml",
            "valid",
        ),
        (
            "probe",
            "/usr/share/doc/meridian-probe/examples/probe.example.toml",
            "valid",
        ),
    ] {
        let out = run(
            Command::new(format!("/usr/bin/{bin}")).args(["validate", "--config", config]),
            QUICK,
        )
        .await;
        assert!(
            out.code == Some(0) && out.stdout.contains(expect),
            "{bin} validate --config {config}: {out:?}"
        );
    }
    let conffiles = run(
        Command::new("dpkg-query").args(["-W", "-f=${Conffiles}\n", "meridian-coordinator"]),
        QUICK,
    )
    .await;
    assert!(
        conffiles.stdout.contains("/etc/meridian/coordinator.toml"),
        "{conffiles:?}"
    );

    let out = run(
        Command::new("dpkg").args(["--purge", "meridian-probe", "meridian-coordinator"]),
        QUICK,
    )
    .await;
    assert_eq!(out.code, Some(0), "dpkg --purge: {out:?}");
    for gone in [
        "/usr/bin/probe",
        "/usr/bin/coordinator",
        "/etc/meridian/coordinator.toml",
        "/usr/lib/systemd/system/meridian-probe.service",
        "/usr/share/bash-completion/completions/coordinator",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} outlived the purge");
    }
    let made = installed.new_users.clone();
    drop(installed);
    for user in made {
        assert!(!user_exists(user).await, "user {user} outlived the test");
    }
    let _ = writeln!(
        std::io::stderr(),
        "deploy: packages built in {packaged:.1?}, installed, checked and purged in {:.1?}",
        started.elapsed()
    );
}
