//! `coordinator`: Meridian's central service. Thin CLI over the library: `run` (the QUIC
//! service, see [`run`]), the region catalog, config validation, enrolment tokens, the probe
//! registry, the stored incidents, `simulate` (scenario files run through the detection
//! engine, see [`sim`]), `demo` (detection live on loopback, see
//! [`demo`](meridian_coordinator::demo)), `migrate` (the schema, as a visible step) and
//! `completions` (shell scripts generated from these definitions). Errors map to exit codes
//! here: 0 success, 1 nothing to do (or, for `simulate` and `demo`, an expectation not met), 2
//! invalid input. Long operations show a [`progress`] bar on stderr when it is a terminal.

mod incident_cmd;
mod maintenance_cmd;
mod message_cmd;
mod progress;
mod run;
mod user_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use meridian_coordinator::config::CoordinatorConfig;
use meridian_coordinator::drafts::{Names, Stage, Templates};
use meridian_coordinator::pki::{self, Ca};
use meridian_coordinator::sim;
use meridian_coordinator::store::probes::ProbeListing;
use meridian_coordinator::store::{Migration, Store};
use meridian_shared::regions::{Catalog, RegionId};

#[derive(Parser)]
#[command(name = "coordinator", version, about = "Meridian coordinator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the region catalog, or check a catalog file (exit 2 when invalid).
    #[command(
        after_help = "Examples:\n  coordinator regions\n  coordinator regions --file /etc/meridian/regions.toml"
    )]
    Regions {
        /// A catalog file; the built-in catalog when omitted.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Run the coordinator: the QUIC service for probes, until SIGINT or SIGTERM. SIGHUP (or
    /// editing the file) reloads the targets.
    #[command(after_help = "Example:\n  coordinator run --config /etc/meridian/coordinator.toml")]
    Run {
        /// The coordinator configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration file and exit (0 valid, 2 invalid, every problem listed).
    #[command(
        after_help = "Example:\n  coordinator validate --config /etc/meridian/coordinator.toml"
    )]
    Validate {
        /// The coordinator configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run scenario files through the detection engine in virtual time and score them (exit 0
    /// when every expectation is met, 1 when one is not, 2 for an unreadable or invalid file).
    #[command(
        after_help = "Examples:\n  coordinator simulate tests/scenarios/*.toml\n  coordinator simulate --json tests/scenarios/red-sea-cut.toml\n\nThe scenario format is described in SCENARIOS.md; build with --release for speed:\n  cargo run -p meridian-coordinator --release -- simulate tests/scenarios/*.toml"
    )]
    Simulate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object per scenario per line instead of the readable report.
        #[arg(long)]
        json: bool,
        /// A region catalog file; the built-in catalog when omitted.
        #[arg(long)]
        regions: Option<PathBuf>,
    },
    /// Watch detection live: a coordinator and 30 simulated probes on 127.0.0.1 in real time, a
    /// scripted fiber cut, the incident detected, explained and resolved (exit 0 when it was,
    /// 1 when not, 2 when the demo could not run). Needs no network and no external service.
    #[command(
        after_help = "Examples:\n  coordinator demo\n  coordinator demo --interval 1s --cut-after 40s --cut-for 30s\n  coordinator demo --data-dir /tmp/demo   # kept: then `coordinator incidents --data-dir /tmp/demo`"
    )]
    Demo {
        /// Check interval: 2s stands for a 60 s world, 30 times faster.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// Live time before the fiber cut.
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        cut_after: Duration,
        /// How long the cut lasts.
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        cut_for: Duration,
        /// Seed of the simulated world's draws.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Data directory (must be empty or absent; kept). Default: a temporary directory,
        /// removed at the end.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Keep the temporary data directory.
        #[arg(long)]
        keep: bool,
        /// Where to serve the map and the other pages (a free port when this one is taken).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: std::net::SocketAddr,
        /// Keep everything running this long after the verdict, to look around. Default:
        /// until Ctrl-C when run from a terminal, not at all otherwise.
        #[arg(long, value_parser = humantime::parse_duration)]
        linger: Option<Duration>,
    },
    /// Enrolment tokens.
    #[command(
        subcommand,
        after_help = "Example:\n  coordinator token create --data-dir /var/lib/meridian --region me-south --expires 24h"
    )]
    Token(TokenCommand),
    /// The probe registry.
    #[command(
        subcommand,
        after_help = "Examples:\n  coordinator probe list --data-dir /var/lib/meridian\n  coordinator probe revoke me-south-1a --data-dir /var/lib/meridian"
    )]
    Probe(ProbeCommand),
    /// Staff accounts of the web UI and API (viewer, community-manager, sre-admin) and their
    /// API tokens.
    #[command(
        subcommand,
        after_help = "Examples:\n  coordinator user add alice --role community-manager --data-dir /var/lib/meridian\n  coordinator user list --data-dir /var/lib/meridian\n  coordinator user token alice --label ci --data-dir /var/lib/meridian"
    )]
    User(user_cmd::UserCommand),
    /// Maintenance windows: planned work during which incidents covered by them page nobody.
    #[command(
        subcommand,
        after_help = "Examples:\n  coordinator maintenance list --data-dir /var/lib/meridian --config /etc/meridian/coordinator.toml\n  coordinator maintenance add db-upgrade --title \"Database upgrade\" --target shop --start \"2026-12-01 02:00\" \\\n    --end \"2026-12-01 04:00\" --timezone Europe/Berlin --config /etc/meridian/coordinator.toml --data-dir /var/lib/meridian\n  coordinator maintenance remove db-upgrade --data-dir /var/lib/meridian"
    )]
    Maintenance(maintenance_cmd::MaintenanceCommand),
    /// List the incidents detection stored, oldest first: a table, or one JSON object per line.
    #[command(
        after_help = "Examples:\n  coordinator incidents --data-dir /var/lib/meridian --open\n  coordinator incidents --data-dir /var/lib/meridian --json"
    )]
    Incidents {
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Print one JSON object per incident per line instead of the table.
        #[arg(long)]
        json: bool,
        /// Only incidents still open (confirmed or paged).
        #[arg(long)]
        open: bool,
    },
    /// One stored incident: its post-mortem.
    #[command(
        subcommand,
        after_help = "Example:\n  coordinator incident export 12 --data-dir /var/lib/meridian --format md --output pm-12.md --chart pm-12.svg"
    )]
    Incident(incident_cmd::IncidentCommand),
    /// Time to detect, resolve and (site incidents) communicate per UTC month and class over
    /// the stored incidents: median, p90 and count.
    #[command(
        after_help = "Examples:\n  coordinator trends --data-dir /var/lib/meridian\n  coordinator trends --data-dir /var/lib/meridian --since 2026-01 --json"
    )]
    Trends {
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Print one JSON object (what `GET /api/v1/trends` returns) instead of the table.
        #[arg(long)]
        json: bool,
        /// First month included, YYYY-MM (UTC, by onset).
        #[arg(long, value_parser = parse_month)]
        since: Option<meridian_coordinator::export::trends::Month>,
    },
    /// Member messages: the drafts the coordinator offered for its incidents, and a person's
    /// edit, approval and publication of them. Nothing is published without approval.
    #[command(
        subcommand,
        after_help = "Examples:\n  coordinator message list --data-dir /var/lib/meridian --incident 12\n  coordinator message approve 31 --data-dir /var/lib/meridian --by dana\n  coordinator message publish 31 --data-dir /var/lib/meridian --by dana"
    )]
    Message(message_cmd::MessageCommand),
    /// Draft the member message of a stored incident, for a community manager to edit and
    /// publish (nothing is published): its class's wording at one stage, scoped with the
    /// regions' member-facing names. Exit 1 when the incident does not exist or is a state of
    /// the monitoring network, which members never hear about.
    #[command(
        after_help = "Examples:\n  coordinator draft 12 --config /etc/meridian/coordinator.toml\n  coordinator draft 12 --config coordinator.toml --stage identified\n  coordinator draft 12 --config coordinator.toml --stage resolved --json\n\nThe wording comes from the built-in templates, or the file `[drafts] templates` names."
    )]
    Draft {
        /// The incident's id, as `coordinator incidents` lists it.
        id: u64,
        /// The coordinator configuration: data directory, target names, templates.
        #[arg(long, short)]
        config: PathBuf,
        /// investigating, identified, monitoring or resolved. Default: investigating while the
        /// incident is open, resolved once it is over.
        #[arg(long, value_parser = parse_stage)]
        stage: Option<Stage>,
        /// Print the draft as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Bring a data directory's database up to this build's schema; print the versions before
    /// and after.
    ///
    /// `coordinator run` migrates at start too; this makes it a step of its own, run by the new
    /// build before the service starts. The directory must exist (a new database is made in an
    /// empty one). An older build refuses the migrated database.
    #[command(
        after_help = "Examples:\n  coordinator migrate --data-dir /var/lib/meridian\n  sudo -u meridian-coordinator coordinator migrate --data-dir /var/lib/meridian-coordinator\n\nPrints \"schema 7 → 10\", or \"already at schema 10\" when there is nothing to do."
    )]
    Migrate {
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell to standard
    /// output.
    #[command(
        after_help = "Examples:\n  coordinator completions bash > /etc/bash_completion.d/coordinator\n  coordinator completions zsh > ~/.zfunc/_coordinator   # with fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc\n  coordinator completions fish > ~/.config/fish/completions/coordinator.fish\n  source <(coordinator completions bash)   # this shell only"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    Stage::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}

fn parse_month(s: &str) -> Result<meridian_coordinator::export::trends::Month, String> {
    meridian_coordinator::export::trends::Month::parse(s)
        .ok_or_else(|| "expected a month as YYYY-MM".to_string())
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a one-time enrolment token for a region, and the CA fingerprint to pin.
    #[command(
        after_help = "Example:\n  coordinator token create --data-dir /var/lib/meridian --region me-south --expires 24h"
    )]
    Create {
        /// The coordinator's data directory (database and CA).
        #[arg(long)]
        data_dir: PathBuf,
        /// The region the enrolled probe will belong to.
        #[arg(long)]
        region: String,
        /// How long the token stays usable.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        expires: Duration,
        /// A region catalog file; the built-in catalog when omitted.
        #[arg(long)]
        regions: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProbeCommand {
    /// List enrolled probes.
    #[command(after_help = "Example:\n  coordinator probe list --data-dir /var/lib/meridian")]
    List {
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Revoke a probe: its certificate is refused from now on.
    #[command(
        after_help = "Example:\n  coordinator probe revoke me-south-1a --data-dir /var/lib/meridian"
    )]
    Revoke {
        /// The probe's id.
        id: String,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `coordinator probe list`'s table. Last seen is as of the running service's last flush
/// (every 15 s); the clock offset is how far the probe's clock is ahead of the coordinator's.
fn listing(probes: &[ProbeListing], now_ms: i64) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<24} {:<14} {:<8} {:<11} {:<24} {:>12}  {}\n",
        "probe", "region", "state", "assignment", "last seen", "clock offset", "network"
    );
    let mut far = 0;
    for p in probes {
        let state = if p.revoked_ms.is_some() {
            "revoked"
        } else {
            "active"
        };
        let seen = p.last_seen_ms.map_or("never".to_string(), |t| {
            let ago = Duration::from_secs(u64::try_from((now_ms - t) / 1000).unwrap_or(0));
            format!("{t} ({} ago)", humantime::format_duration(ago))
        });
        let version = p
            .assignment_version
            .map_or("-".to_string(), |v| format!("v{v}"));
        let offset = p
            .clock_offset_ms
            .map_or("-".to_string(), |o| format!("{o:+.0} ms"));
        let network = p.network.as_ref().map_or("-".to_string(), |n| {
            let mut s = match n.network.asn {
                Some(asn) => format!("AS{asn}"),
                None => "AS?".to_string(),
            };
            if let Some(org) = &n.network.as_org {
                let _ = write!(s, " ({org})");
            }
            let _ = write!(s, " {}", n.network.country.as_deref().unwrap_or("??"));
            if let Some(address) = n.address {
                let _ = write!(s, " from {address}");
            }
            if let Some(km) = n.far_km {
                far += 1;
                let _ = write!(s, "  FAR: {km:.0} km from its region");
            }
            s
        });
        let _ = writeln!(
            out,
            "{:<24} {:<14} {:<8} {:<11} {:<24} {:>12}  {}",
            p.probe_id, p.region, state, version, seen, offset, network
        );
    }
    let _ = write!(out, "{} probes", probes.len());
    if far > 0 {
        let _ = write!(
            out,
            ", {far} geolocated far from their region (check the enrolment or the GeoIP data)"
        );
    }
    out.push('\n');
    out
}

/// A Unix-ms time as RFC 3339 UTC to the second, `-` when absent.
fn utc(ms: Option<i64>) -> String {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map_or("-".to_string(), |ms| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        })
}

/// `coordinator incidents`: the stored incidents as a table (times in UTC, time to detect in
/// seconds) or, with `json`, one `store::incidents::IncidentRecord` per line.
fn incidents(data_dir: &Path, json: bool, open: bool) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let store = open_data_dir(data_dir)?;
    let records = store.incidents(open)?;
    let mut out = String::new();
    if json {
        for r in &records {
            let _ = writeln!(out, "{}", serde_json::to_string(r)?);
        }
        return Ok(out);
    }
    let at = utc;
    let _ = writeln!(
        out,
        "{:<6} {:<18} {:<12} {:<24} {:<20} {:>7} {:<20} {:<20} {:>7} explanation",
        "id", "class", "state", "regions", "detected", "ttd", "paged", "resolved", "ttc"
    );
    for r in &records {
        // Time to communicate: onset to the first published member message.
        let ttc = store
            .time_to_communicate(r.id)?
            .map_or("-".to_string(), |ms| format!("{:.0}s", ms as f64 / 1000.0));
        let _ = writeln!(
            out,
            "{:<6} {:<18} {:<12} {:<24} {:<20} {:>7} {:<20} {:<20} {:>7} {}",
            r.id,
            r.class,
            r.state.as_str(),
            r.regions.join(","),
            at(Some(r.detected_ms)),
            format!("{:.1}s", r.ttd_ms as f64 / 1000.0),
            at(r.paged_ms),
            at(r.resolved_ms),
            ttc,
            r.explanation
        );
    }
    let _ = writeln!(out, "{} incidents", records.len());
    Ok(out)
}

/// `coordinator migrate`: the store opened with a bar over the migrations it lacks. A missing
/// directory is an error (exit 2), not a new one: a mistyped path must not pass for a fresh
/// install.
fn migrate(data_dir: &Path) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        data_dir.is_dir(),
        "no data directory {}: give the one the coordinator's configuration names",
        data_dir.display()
    );
    // The bar names the version being migrated to, the step under way.
    let mut bar: Option<(progress::Bar, u32)> = None;
    let (_, migrated) = Store::open_migrating(data_dir, |m| match m {
        Migration::Planned { from, to } if to > from => {
            let b = progress::Bar::new("migrating", u64::from(to - from));
            b.step(&format!("schema {}", from + 1));
            bar = Some((b, to));
        }
        Migration::Applied { version } => {
            if let Some((bar, to)) = &bar {
                bar.inc();
                if version < *to {
                    bar.step(&format!("schema {}", version + 1));
                }
            }
        }
        _ => {}
    })
    .with_context(|| format!("migrating the database in {}", data_dir.display()))?;
    drop(bar);
    if migrated.from == migrated.to {
        println!("already at schema {}", migrated.to);
    } else {
        println!("schema {} → {}", migrated.from, migrated.to);
    }
    Ok(ExitCode::SUCCESS)
}

/// `coordinator completions`: the script is generated into memory first, so a closed pipe is
/// an error message, not a panic inside the generator.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "coordinator", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .context("writing the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// `coordinator trends`: a table, or one JSON object.
fn trends(
    data_dir: &Path,
    json: bool,
    since: Option<meridian_coordinator::export::trends::Month>,
) -> anyhow::Result<String> {
    let store = open_data_dir(data_dir)?;
    let t = meridian_coordinator::export::gather_trends(&store, since)?;
    Ok(if json {
        format!("{}\n", serde_json::to_string(&t)?)
    } else {
        meridian_coordinator::export::trends::text(&t)
    })
}

/// `coordinator draft`: the stored incident's member message at `stage`, as text (title,
/// blank line, message) or one JSON object.
fn draft(config: &Path, id: u64, stage: Option<Stage>, json: bool) -> anyhow::Result<ExitCode> {
    let config = match CoordinatorConfig::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let templates = match Templates::load(config.drafts.templates.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = Store::open_reader(&config.data_dir)?;
    let Some(incident) = store.incident(id)? else {
        eprintln!(
            "coordinator: no incident {id} in {}",
            config.data_dir.display()
        );
        return Ok(ExitCode::from(1));
    };
    let networks = store.probe_networks()?.into_values().filter_map(|p| {
        let network = p.network;
        Some((network.asn?, network.as_org?))
    });
    let names = Names::new(&config.catalog, &config.targets).with_networks(networks);
    let stage = stage.unwrap_or(Stage::suggested(incident.state));
    match templates.draft(&incident, &names, stage, now_ms(), config.drafts.cadence) {
        Ok(Some(d)) if json => println!("{}", serde_json::to_string(&d)?),
        Ok(Some(d)) => println!("{}\n\n{}", d.title, d.body),
        Ok(None) => {
            eprintln!(
                "coordinator: incident {id} is {}, a state of the monitoring network: members get no message about it",
                incident.class
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => {
            eprintln!("coordinator: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `coordinator simulate`: every file is validated before anything runs, so a typo in the
/// last file does not cost the minutes the first ones take.
fn simulate(files: &[PathBuf], json: bool, regions: Option<&Path>) -> anyhow::Result<ExitCode> {
    let catalog = match regions.map(Catalog::load).transpose() {
        Ok(catalog) => catalog.unwrap_or_else(Catalog::builtin),
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut scenarios = Vec::new();
    let mut invalid = false;
    for file in files {
        match sim::parse::load(file, &catalog) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                eprintln!("{e}");
                invalid = true;
            }
        }
    }
    if invalid {
        return Ok(ExitCode::from(2));
    }
    let mut all_passed = true;
    let bar = progress::Bar::new("simulating", scenarios.len() as u64);
    for scenario in scenarios {
        bar.step(&scenario.name);
        let elapsed = stopwatch();
        let outcome = sim::simulate(scenario, &catalog);
        let wall_ms = elapsed();
        all_passed &= outcome.card.passed;
        if json {
            let line = serde_json::to_string(&sim::report::ScenarioReport::new(&outcome, wall_ms))?;
            bar.println(&line);
        } else {
            bar.println(&sim::report::text(&outcome, wall_ms));
        }
        bar.inc();
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Real time spent, in ms, for the report's `wall_ms`: the one clock read of a simulation,
/// never seen by the engine or the world.
#[expect(
    clippy::disallowed_types,
    reason = "wall_ms is the real cost of a run; virtual time never reads this clock"
)]
fn stopwatch() -> impl FnOnce() -> u64 {
    let start = std::time::Instant::now();
    move || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn catalog(file: Option<&Path>) -> anyhow::Result<Catalog> {
    Ok(match file {
        Some(path) => Catalog::load(path)?,
        None => Catalog::builtin(),
    })
}

fn open_data_dir(dir: &Path) -> anyhow::Result<Store> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(Store::open(dir)?)
}

/// Logs to stderr at `level`, or as `RUST_LOG` says (`target=level` syntax).
fn init_logging(level: tracing::Level) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(level));
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .finish()
        .with(filter)
        .try_init();
}

/// `coordinator demo` on its own multi-threaded runtime: logs at WARN unless `RUST_LOG` says
/// otherwise (the demo's own lines go to stdout), exit 0 when the coordinator's verdict passed.
fn demo(options: &meridian_coordinator::demo::Options) -> anyhow::Result<ExitCode> {
    init_logging(tracing::Level::WARN);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let verdict = runtime.block_on(meridian_coordinator::demo::run(
        options,
        &mut std::io::stdout(),
    ))?;
    Ok(if verdict.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `coordinator run` on its own multi-threaded runtime.
fn serve(config: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run::run(config, std::future::pending()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coordinator: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Simulate {
            files,
            json,
            regions,
        } => return simulate(&files, json, regions.as_deref()),
        Command::Run { config } => {
            init_logging(tracing::Level::INFO);
            serve(&config)?;
        }
        Command::Demo {
            interval,
            cut_after,
            cut_for,
            seed,
            data_dir,
            keep,
            http,
            linger,
        } => {
            use std::io::IsTerminal as _;
            let linger = match linger {
                Some(d) => Some(d),
                None if std::io::stdin().is_terminal() => None,
                None => Some(Duration::ZERO),
            };
            let options = meridian_coordinator::demo::Options {
                interval,
                cut_after,
                cut_for,
                seed,
                data_dir,
                keep,
                http,
                linger,
            };
            return demo(&options);
        }
        Command::Regions { file } => {
            let catalog = catalog(file.as_deref())?;
            for r in catalog.regions() {
                println!(
                    "{:<14} {:<16} {:>8.2} {:>8.2}  {:<28} {}",
                    r.id.as_str(),
                    r.continent.as_str(),
                    r.lat,
                    r.lon,
                    r.name,
                    r.corridors.join(",")
                );
            }
            println!(
                "{} regions, {} corridors",
                catalog.len(),
                catalog.corridors().len()
            );
        }
        Command::Validate { config } => match CoordinatorConfig::load(&config) {
            Ok(c) => {
                // The databases are opened as `coordinator run` would: a bad one fails here too.
                let geoip = match c.geoip.as_ref().map(|g| g.open()).transpose() {
                    Ok(geoip) => geoip,
                    Err(e) => {
                        eprintln!("{}: geoip: {e}", config.display());
                        return Ok(ExitCode::from(2));
                    }
                };
                // Every template is rendered once: a typo in the operator's wording fails here.
                if let Err(e) = Templates::load(c.drafts.templates.as_deref()) {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(2));
                }
                let checks: usize = c.targets.iter().map(|t| t.checks.len()).sum();
                println!(
                    "{}: valid ({} targets, {checks} checks, {} regions, data in {})",
                    config.display(),
                    c.targets.len(),
                    c.catalog.len(),
                    c.data_dir.display()
                );
                if let Some(geoip) = geoip {
                    println!("geoip: {}", geoip.summary());
                }
            }
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        Command::Token(TokenCommand::Create {
            data_dir,
            region,
            expires,
            regions,
        }) => {
            let id = RegionId::parse(&region)?;
            anyhow::ensure!(
                catalog(regions.as_deref())?.get(&id).is_some(),
                "unknown region {region:?}: `coordinator regions` lists the catalog"
            );
            let store = open_data_dir(&data_dir)?;
            let ca = Ca::load_or_create(&data_dir)?;
            let (token, hash) = pki::new_token()?;
            let now = now_ms();
            let until = now + i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
            store.create_token(&hash, id.as_str(), now, until)?;
            println!("token:           {token}");
            println!("region:          {id}");
            println!(
                "expires:         in {}",
                humantime::format_duration(expires)
            );
            println!("ca-fingerprint:  {}", ca.fingerprint());
            println!("(shown once; only its hash is stored)");
        }
        Command::Message(command) => return message_cmd::message(command),
        Command::User(command) => return user_cmd::user(command, now_ms()),
        Command::Maintenance(command) => {
            return maintenance_cmd::maintenance(command, now_ms());
        }
        Command::Probe(ProbeCommand::List { data_dir }) => {
            let store = open_data_dir(&data_dir)?;
            let probes = store.probe_listing()?;
            print!("{}", listing(&probes, now_ms()));
        }
        Command::Incidents {
            data_dir,
            json,
            open,
        } => print!("{}", incidents(&data_dir, json, open)?),
        Command::Draft {
            id,
            config,
            stage,
            json,
        } => return draft(&config, id, stage, json),
        Command::Incident(command) => return incident_cmd::incident(command),
        Command::Trends {
            data_dir,
            json,
            since,
        } => print!("{}", trends(&data_dir, json, since)?),
        Command::Migrate { data_dir } => return migrate(&data_dir),
        Command::Completions { shell } => return completions(shell),
        Command::Probe(ProbeCommand::Revoke { id, data_dir }) => {
            let store = open_data_dir(&data_dir)?;
            if store.revoke_probe(&id, now_ms())? {
                println!("revoked {id}");
            } else {
                eprintln!("coordinator: no active probe {id:?}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use meridian_coordinator::geoip::Network;
    use meridian_coordinator::store::probes::ProbeNetwork;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command and subcommand, as its path from the root ("coordinator user add"), but
    /// not clap's own `help`.
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
        every_command(&Cli::command(), "coordinator", &mut commands);
        assert!(commands.len() > 20, "{} commands", commands.len());
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

    fn probe(id: &str, network: Option<ProbeNetwork>) -> ProbeListing {
        ProbeListing {
            probe_id: id.into(),
            region: "eu-west".into(),
            revoked_ms: None,
            last_seen_ms: Some(1_000),
            clock_offset_ms: Some(12.4),
            assignment_version: Some(3),
            network,
        }
    }

    #[test]
    fn the_probe_list_shows_each_network_and_flags_a_far_one() {
        let far = ProbeNetwork {
            address: Some("192.0.2.7".parse().unwrap()),
            network: Network {
                asn: Some(64500),
                as_org: Some("Example Transit".into()),
                country: Some("JP".into()),
                location: Some((35.7, 139.7)),
            },
            far_km: Some(9_612.4),
            learnt_ms: 900,
        };
        let text = listing(&[probe("a", Some(far)), probe("b", None)], 61_000);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("network"), "{text}");
        assert!(
            lines[1].ends_with(
                "AS64500 (Example Transit) JP from 192.0.2.7  FAR: 9612 km from its region"
            ),
            "{text}"
        );
        assert!(lines[1].contains("+12 ms"), "{text}");
        assert!(lines[2].ends_with(" -"), "{text}");
        assert_eq!(
            lines[3],
            "2 probes, 1 geolocated far from their region (check the enrolment or the GeoIP data)"
        );
    }
}
