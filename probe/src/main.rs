//! `probe`: the Meridian probe agent's command line. Thin by design: parse arguments, call the
//! library, map the outcome to an exit code (0 passed, 1 check failed, 2 usage or config error;
//! for `enroll`, 1 is a refusal or a failed exchange). The process's signals live here too:
//! `probe run` stops on SIGINT or SIGTERM and re-reads its configuration on SIGHUP.
//! `probe completions SHELL` prints a completion script generated from these definitions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use meridian_probe::agent::{self, USER_AGENT};
use meridian_probe::config::ProbeConfig;
use meridian_probe::http::{HttpEnv, tls};
use meridian_probe::output;
use meridian_probe::runner::{Runner, unix_ms};
use meridian_probe::safety::TargetPolicy;
use meridian_shared::check::parse::parse_dns_name;
use meridian_shared::check::{
    BodyMatch, Check, CheckId, CheckSpec, DnsCheck, HttpCheck, IpVersion, Pattern, RecordType,
    RedirectPolicy, ResolveOverride, ResolverSpec, StatusSet,
};

#[derive(Parser)]
#[command(
    name = "probe",
    version,
    about = "Meridian probe agent: HTTP and DNS checks timed phase by phase"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one check now and print its phases, like `curl -w` per phase.
    #[command(
        after_help = "Examples:\n  probe check https://example.com/\n  probe check --json https://example.com/health\n  probe check --resolve www.example.com:443:192.0.2.10 https://www.example.com/\n  probe check --resolver udp://192.0.2.53 dns:example.com/MX\n\nExit status: 0 the check passed, 1 it failed, 2 usage or configuration error."
    )]
    Check(Box<CheckArgs>),
    /// Run the agent: every configured check on its staggered schedule.
    #[command(
        after_help = "Example:\n  probe run --config /etc/meridian/probe.toml\n\nSIGINT or SIGTERM stops it. SIGHUP (systemctl reload) re-reads the configuration file and\napplies it; a file that does not validate is logged and the running configuration stays."
    )]
    Run {
        /// The probe configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Enrol this probe with a coordinator: make its key pair, send a CSR with a one-time token,
    /// store the certificate (which names the probe id and region).
    #[command(
        after_help = "Example:\n  probe enroll --coordinator 192.0.2.7:7443 --server-name coordinator.example.net \\\n    --token TOKEN --ca-fingerprint 3F:A2:... --state-dir /var/lib/meridian\n\nThe coordinator is given as IP:PORT: the probe does not resolve its name. Pass the name\nits certificate carries with --server-name (default: the IP address itself).\n\nExit status: 0 enrolled, 1 refused (invalid token, untrusted server) or the exchange\nfailed, 2 usage error (including an already enrolled state directory)."
    )]
    Enroll(EnrollArgs),
    /// Check a configuration file and exit (0 valid, 2 invalid).
    #[command(after_help = "Example:\n  probe validate --config /etc/meridian/probe.toml")]
    Validate {
        /// The probe configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell to standard
    /// output.
    #[command(
        after_help = "Examples:\n  probe completions bash > /etc/bash_completion.d/probe\n  probe completions zsh > ~/.zfunc/_probe   # with fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc\n  probe completions fish > ~/.config/fish/completions/probe.fish\n  source <(probe completions bash)   # this shell only"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct EnrollArgs {
    /// The coordinator's enrolment address, IP:PORT (names are not resolved).
    #[arg(long, value_name = "IP:PORT")]
    coordinator: SocketAddr,
    /// The name on the coordinator's certificate (default: the IP address).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// The one-time enrolment token (`coordinator token create`).
    #[arg(long)]
    token: String,
    /// SHA-256 of the coordinator's CA certificate, 64 hex digits (colons allowed).
    #[arg(long, value_name = "HEX")]
    ca_fingerprint: String,
    /// Where to write probe.key (0600), probe.pem and ca.pem.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// An http(s) URL, or dns:NAME[/TYPE] (TYPE: A, AAAA, CNAME, MX, TXT, NS, SOA; default A).
    target: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Use ADDRESS for HOST:PORT instead of resolving it (like curl), repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    resolve: Vec<ResolveOverride>,
    /// Allow loopback, private and other non-public targets (lab use).
    #[arg(long)]
    allow_private: bool,
    /// Resolver: system, udp://IP[:PORT] or tcp://IP[:PORT].
    #[arg(long, default_value = "system")]
    resolver: ResolverSpec,
    /// Extra CA certificates to trust (PEM file).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Time budget for the whole check.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Request method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// Extra request header, "Name: value", repeatable.
    #[arg(long, short = 'H', value_name = "NAME: VALUE")]
    header: Vec<String>,
    /// Expected status codes, comma-separated (e.g. 2xx,301).
    #[arg(long, value_name = "SET")]
    expect_status: Option<String>,
    /// The body must contain this text.
    #[arg(long, value_name = "TEXT")]
    body_contains: Option<String>,
    /// The body must match this regular expression.
    #[arg(long, value_name = "REGEX", conflicts_with = "body_contains")]
    body_regex: Option<String>,
    /// Do not follow redirects.
    #[arg(long)]
    no_follow: bool,
    /// IPv4 only.
    #[arg(long, short = '4', conflicts_with = "ipv6")]
    ipv4: bool,
    /// IPv6 only.
    #[arg(long, short = '6')]
    ipv6: bool,
    /// Expected DNS response code (DNS checks).
    #[arg(long, value_name = "RCODE")]
    expect_rcode: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // No logging and no runtime for printing a script.
    if let Command::Completions { shell } = cli.command {
        return completions(shell);
    }
    // RUST_LOG in `target=level` form ("info", "meridian_probe=debug,info"); info by default.
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::fmt()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .finish()
            .with(filter)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("probe: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Check(args) => match one_check(*args).await {
                Ok(passed) => ExitCode::from(if passed { 0 } else { 1 }),
                Err(e) => {
                    eprintln!("probe check: {e:#}");
                    ExitCode::from(2)
                }
            },
            Command::Run { config } => {
                // Before anything slow: from here on SIGHUP reloads instead of terminating.
                let reloads = hangups();
                report(agent::run(&config, shutdown_signal(), reloads).await)
            }
            Command::Enroll(args) => enroll(args).await,
            Command::Completions { shell } => completions(shell),
            Command::Validate { config } => match ProbeConfig::load(&config) {
                Ok(c) => {
                    let coordinators = c.link.as_ref().map_or(0, |l| l.coordinators.len());
                    println!(
                        "{}: valid ({} checks, region {}, slot {} of {}, {} coordinators)",
                        config.display(),
                        c.checks.len(),
                        c.region,
                        c.slot.index,
                        c.slot.count,
                        coordinators
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            },
        }
    })
}

/// `probe completions`: the script is generated into memory first, so a closed pipe is an
/// error message, not a panic inside the generator.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "probe", &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("probe completions: writing the script: {e}");
            ExitCode::from(2)
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// SIGHUP as reload requests. Installing the handler replaces the default action (terminate),
/// so a SIGHUP that arrives while the agent starts waits for it instead of killing it; several
/// before the agent takes one count as one. Must be called inside the runtime.
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    // Full: a reload is already pending, and it will read the newest file.
                    if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) = tx.try_send(())
                    {
                        return;
                    }
                }
            });
        }
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler: configuration changes need a restart")
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// `probe enroll`: 0 enrolled, 1 refused or failed, 2 usage.
async fn enroll(args: EnrollArgs) -> ExitCode {
    use meridian_probe::enroll::{self, EnrollError};
    let server_name = args
        .server_name
        .unwrap_or_else(|| args.coordinator.ip().to_string());
    match enroll::enroll(
        args.coordinator,
        &server_name,
        &args.token,
        &args.ca_fingerprint,
        &args.state_dir,
    )
    .await
    {
        Ok(e) => {
            println!("enrolled as probe {} in region {}", e.probe_id, e.region);
            println!("certificate: {}", e.files.cert.display());
            println!("private key: {}", e.files.key.display());
            println!("coordinator CA: {}", e.files.ca.display());
            ExitCode::SUCCESS
        }
        Err(e @ (EnrollError::BadFingerprint | EnrollError::AlreadyEnrolled(_))) => {
            eprintln!("probe enroll: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("probe enroll: {e}");
            ExitCode::from(1)
        }
    }
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("probe: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Builds the check from the arguments; an `Err` is a usage error.
fn build_check(args: &CheckArgs) -> anyhow::Result<Check> {
    let spec = if let Some(rest) = args.target.strip_prefix("dns:") {
        let (name, rtype) = match rest.rsplit_once('/') {
            Some((n, t)) => (n, t.parse::<RecordType>().map_err(anyhow::Error::msg)?),
            None => (rest, RecordType::A),
        };
        let mut spec = DnsCheck::new(
            &parse_dns_name(name).map_err(anyhow::Error::msg)?,
            rtype,
            args.resolver,
        );
        spec.timeout = args.timeout;
        if let Some(rc) = &args.expect_rcode {
            spec.expect_rcode = rc.parse().map_err(anyhow::Error::msg)?;
        }
        CheckSpec::Dns(spec)
    } else {
        let url =
            meridian_shared::check::parse::parse_url(&args.target).map_err(anyhow::Error::msg)?;
        let mut spec = HttpCheck::get(url);
        spec.method = args.method.to_ascii_uppercase();
        for h in &args.header {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("header {h:?} is not \"Name: value\""))?;
            spec.headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
        if let Some(set) = &args.expect_status {
            spec.expect_status =
                StatusSet::parse_items(set.split(',')).map_err(anyhow::Error::msg)?;
        }
        spec.body = match (&args.body_contains, &args.body_regex) {
            (Some(t), _) => Some(BodyMatch::Contains(t.clone())),
            (None, Some(re)) => Some(BodyMatch::Regex(
                Pattern::new(re).map_err(anyhow::Error::msg)?,
            )),
            (None, None) => None,
        };
        if args.no_follow {
            spec.redirects = RedirectPolicy::None;
        }
        spec.ip_version = if args.ipv4 {
            IpVersion::V4
        } else if args.ipv6 {
            IpVersion::V6
        } else {
            IpVersion::Any
        };
        spec.resolve = args.resolve.clone();
        spec.timeout = args.timeout;
        CheckSpec::Http(spec)
    };
    Ok(Check {
        id: CheckId::parse("check").map_err(anyhow::Error::msg)?,
        interval: meridian_shared::check::DEFAULT_INTERVAL,
        spec,
    })
}

/// Runs the one-shot check; `Ok(passed)`, or `Err` for a usage problem.
async fn one_check(args: CheckArgs) -> anyhow::Result<bool> {
    let check = build_check(&args)?;
    let roots = match &args.cacert {
        Some(p) => tls::load_pem_certs(p).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let runner = Runner {
        probe_id: "cli".to_string(),
        region: "local".to_string(),
        http: HttpEnv {
            policy: if args.allow_private {
                TargetPolicy::allow_all()
            } else {
                TargetPolicy::strict()
            },
            tls: tls::client_config(&roots)?,
            resolver: args.resolver,
            user_agent: USER_AGENT.to_string(),
        },
    };
    let result = runner.run(&check, unix_ms()).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&output::json(&args.target, &result))?
        );
    } else {
        print!("{}", output::table(&args.target, &result));
    }
    Ok(result.passed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command and subcommand below `cmd`, by path, except clap's own `help`.
    fn every_command(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = format!("{path} {}", sub.get_name());
            every_command(sub, &path, out);
            out.push((path, sub.clone()));
        }
    }

    #[test]
    fn every_subcommand_has_examples_in_its_help() {
        let mut commands = Vec::new();
        every_command(&Cli::command(), "probe", &mut commands);
        assert!(commands.len() >= 5, "{} commands", commands.len());
        let missing: Vec<&str> = commands
            .iter()
            .filter(|(_, c)| {
                !c.get_after_help()
                    .is_some_and(|h| h.to_string().contains("Example"))
            })
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(missing.is_empty(), "no Example in --help: {missing:?}");
    }
}
