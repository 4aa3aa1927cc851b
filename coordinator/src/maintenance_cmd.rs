//! `coordinator maintenance ...`: maintenance windows kept in the store (those of
//! `coordinator.toml` are listed, never written). Safe beside a running coordinator, which
//! re-reads the stored windows every couple of seconds (with its revocation sweep).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use meridian_coordinator::config::CoordinatorConfig;
use meridian_coordinator::maintenance::{Known, RawWindow, Source, WhenText, Window};

#[derive(Subcommand)]
pub enum MaintenanceCommand {
    /// List the windows: the configuration's (with --config) and the stored ones, with
    /// whether each is open now and its next occurrence.
    #[command(
        after_help = "Examples:\n  coordinator maintenance list --data-dir /var/lib/meridian --config /etc/meridian/coordinator.toml\n  coordinator maintenance list --data-dir /var/lib/meridian --json"
    )]
    List {
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Also list the windows of this configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Schedule a window: one-off (--start, --end) or recurring (--every, --at, --duration).
    /// Checked against the configuration's targets and regions.
    #[command(
        after_help = "Examples:\n  coordinator maintenance add db-upgrade --title \"Database upgrade\" --target shop \\\n    --start \"2026-12-01 02:00\" --end \"2026-12-01 04:00\" --timezone Europe/Berlin \\\n    --config /etc/meridian/coordinator.toml --data-dir /var/lib/meridian\n  coordinator maintenance add sunday-backup --title \"Weekly backup\" --every week --days sun \\\n    --at 02:00 --duration 90m --timezone Europe/Berlin --region eu-central \\\n    --config /etc/meridian/coordinator.toml --data-dir /var/lib/meridian\n\nA running coordinator holds pages back for incidents whose whole scope is inside open\nwindows within seconds; public windows show on the status page."
    )]
    Add(Box<AddWindow>),
    /// Remove a stored window; a page it held back goes out if the incident is still open.
    #[command(
        after_help = "Example:\n  coordinator maintenance remove db-upgrade --data-dir /var/lib/meridian"
    )]
    Remove {
        /// The window's id.
        id: String,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// `coordinator maintenance add`'s arguments.
#[derive(clap::Args)]
pub struct AddWindow {
    /// Unique id: letters, digits, '-', '_', '.'.
    id: String,
    /// What is being done, in words members may read.
    #[arg(long)]
    title: String,
    /// A target id (repeat); every target when absent.
    #[arg(long = "target")]
    targets: Vec<String>,
    /// A region id (repeat); every region when absent.
    #[arg(long = "region")]
    regions: Vec<String>,
    /// One-off: the start (RFC 3339, or "YYYY-MM-DD HH:MM" in --timezone).
    #[arg(long)]
    start: Option<String>,
    /// One-off: the end.
    #[arg(long)]
    end: Option<String>,
    /// Recurring: day, week or month.
    #[arg(long)]
    every: Option<String>,
    /// Weekly: the days, comma-separated (mon,tue,...).
    #[arg(long, value_delimiter = ',')]
    days: Vec<String>,
    /// Monthly: the day of the month.
    #[arg(long)]
    day: Option<i64>,
    /// Recurring: local start time, HH:MM.
    #[arg(long)]
    at: Option<String>,
    /// Recurring: how long each occurrence lasts (2h, 90m).
    #[arg(long)]
    duration: Option<String>,
    /// IANA time zone of local times (default UTC).
    #[arg(long)]
    timezone: Option<String>,
    /// Recurring: first local date (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Recurring: last local date (YYYY-MM-DD).
    #[arg(long)]
    until: Option<String>,
    /// Keep it off the public status page.
    #[arg(long)]
    private: bool,
    /// Who schedules it (recorded).
    #[arg(long, default_value = "cli")]
    by: String,
    /// The coordinator's configuration (targets and regions are checked against it).
    #[arg(long)]
    config: PathBuf,
    /// The coordinator's data directory.
    #[arg(long)]
    data_dir: PathBuf,
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn load_config(path: &Path) -> anyhow::Result<CoordinatorConfig> {
    CoordinatorConfig::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs one `coordinator maintenance` command. Exit 0 done, 1 refused (an id taken, none to
/// remove), 2 an invalid window.
pub fn maintenance(command: MaintenanceCommand, now_ms: i64) -> anyhow::Result<ExitCode> {
    match command {
        MaintenanceCommand::List {
            data_dir,
            config,
            json,
        } => {
            let store = super::open_data_dir(&data_dir)?;
            let stored = store.maintenance_windows()?;
            let config = config.as_deref().map(load_config).transpose()?;
            let mut windows: Vec<(Window, Option<String>)> = config
                .as_ref()
                .map(|c| c.maintenance.iter().map(|w| (w.clone(), None)).collect())
                .unwrap_or_default();
            let (targets, regions) = config.as_ref().map_or_else(
                || {
                    (
                        Vec::new(),
                        meridian_coordinator::config::region_ids(
                            &meridian_shared::regions::Catalog::builtin(),
                        ),
                    )
                },
                CoordinatorConfig::maintenance_scope,
            );
            for s in &stored {
                // Without the configuration the targets cannot be checked: take them as
                // written.
                let mut known_targets = targets.clone();
                if config.is_none() {
                    known_targets.extend(s.raw.targets.iter().cloned());
                }
                let known = Known {
                    targets: &known_targets,
                    regions: &regions,
                };
                match s.raw.validate(Source::Api, &known) {
                    Ok(w) => windows.push((w, Some(s.created_by.clone()))),
                    Err(problems) => {
                        let p: Vec<String> = problems.iter().map(ToString::to_string).collect();
                        eprintln!(
                            "coordinator: stored window {:?} is not in force: {}",
                            s.raw.id,
                            p.join("; ")
                        );
                    }
                }
            }
            if json {
                for (w, by) in &windows {
                    let line = serde_json::json!({
                        "id": w.id,
                        "title": w.title,
                        "source": w.source,
                        "targets": w.targets,
                        "regions": w.regions,
                        "public": w.public,
                        "schedule": w.describe(),
                        "active": w.active_at(now_ms),
                        "next": w.next_after(now_ms),
                        "created_by": by,
                        "spec": w.raw,
                    });
                    println!("{line}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            if windows.is_empty() {
                println!("no maintenance windows");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<20} {:<7} {:<6} {:<28} {:<26} schedule",
                "id", "source", "public", "now", "scope"
            );
            for (w, _) in &windows {
                let now = match w.active_at(now_ms) {
                    Some(o) => format!("open until {}", time(o.end_ms)),
                    None => w.next_after(now_ms).map_or_else(
                        || "over".to_string(),
                        |o| format!("next {}", time(o.start_ms)),
                    ),
                };
                let scope = format!(
                    "{} / {}",
                    if w.targets.is_empty() {
                        "all targets".to_string()
                    } else {
                        w.targets.join(",")
                    },
                    if w.regions.is_empty() {
                        "all regions".to_string()
                    } else {
                        w.regions.join(",")
                    }
                );
                println!(
                    "{:<20} {:<7} {:<6} {:<28} {:<26} {}",
                    w.id,
                    match w.source {
                        Source::Config => "config",
                        Source::Api => "stored",
                    },
                    if w.public { "yes" } else { "no" },
                    now,
                    scope,
                    w.describe()
                );
            }
        }
        MaintenanceCommand::Add(add) => {
            let add = *add;
            let config = load_config(&add.config)?;
            let raw = RawWindow {
                id: add.id,
                title: add.title,
                targets: add.targets,
                regions: add.regions,
                public: add.private.then_some(false),
                start: add.start.map(WhenText::Text),
                end: add.end.map(WhenText::Text),
                every: add.every,
                days: add.days,
                day: add.day,
                at: add.at,
                duration: add.duration,
                timezone: add.timezone,
                from: add.from,
                until: add.until,
            };
            let (known_targets, known_regions) = config.maintenance_scope();
            let window = match raw.validate(
                Source::Api,
                &Known {
                    targets: &known_targets,
                    regions: &known_regions,
                },
            ) {
                Ok(w) => w,
                Err(problems) => {
                    for p in problems {
                        eprintln!("coordinator: maintenance window: {p}");
                    }
                    return Ok(ExitCode::from(2));
                }
            };
            if config.maintenance.iter().any(|w| w.id == window.id) {
                eprintln!(
                    "coordinator: maintenance window {:?} is defined in the configuration file",
                    window.id
                );
                return Ok(ExitCode::from(1));
            }
            let store = super::open_data_dir(&add.data_dir)?;
            if !store.add_maintenance(&raw, &add.by, now_ms)? {
                eprintln!("coordinator: a maintenance window {:?} exists", window.id);
                return Ok(ExitCode::from(1));
            }
            println!("added {}: {}", window.id, window.describe());
            if let Some(o) = window.active_at(now_ms) {
                println!("open now, until {}", time(o.end_ms));
            } else if let Some(o) = window.next_after(now_ms) {
                println!("next: {} to {}", time(o.start_ms), time(o.end_ms));
            } else {
                println!("note: it never opens after now");
            }
        }
        MaintenanceCommand::Remove { id, data_dir } => {
            let store = super::open_data_dir(&data_dir)?;
            if !store.remove_maintenance(&id)? {
                eprintln!("coordinator: no stored maintenance window {id:?}");
                return Ok(ExitCode::from(1));
            }
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
