//! `coordinator incident ...`: one stored incident's post-mortem, and people's notes on it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use meridian_coordinator::store::Store;
use meridian_shared::regions::Catalog;

use super::{now_ms, open_data_dir, progress};

/// The post-mortem's formats.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// Markdown, linking the chart.
    Md,
    /// One JSON object, the chart's series included.
    Json,
}

#[derive(Subcommand)]
pub enum IncidentCommand {
    /// Write a stored incident's post-mortem: key moments and the timeline (detection's
    /// history, the member messages' drafting, approval and publication), time to detect,
    /// communicate and resolve, the affected regions by their member-facing names, the
    /// evidence, the explanation and a chart of the round trip per minute (exit 1 when there
    /// is no such incident, 2 for a usage error).
    #[command(
        after_help = "Examples:\n  coordinator incident export 12 --data-dir /var/lib/meridian --format md --output pm-12.md --chart pm-12.svg\n  coordinator incident export 12 --data-dir /var/lib/meridian --format json\n\nRegion names come from the built-in catalog, or the file --regions names (the one the\ncoordinator ran with). The chart spans 30 min before onset to 30 min after resolution (or\nnow): the affected regions and the three healthy ones with the most data."
    )]
    Export {
        /// The incident's id, as `coordinator incidents` lists it.
        id: u64,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// md or json.
        #[arg(long, value_enum, default_value = "md")]
        format: ExportFormat,
        /// Write the post-mortem here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write the latency chart here (SVG); the Markdown links it.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// A region catalog file; the built-in catalog when omitted.
        #[arg(long)]
        regions: Option<PathBuf>,
    },
    /// Add a note to an incident's timeline and post-mortem ("rolled back the 14:02 deploy").
    /// Notes are only ever added: a correction is another note.
    #[command(
        after_help = "Examples:\n  coordinator incident note 12 --data-dir /var/lib/meridian --by dana --text \"Rolled back the 14:02 deploy\"\n  coordinator incident note 12 --data-dir /var/lib/meridian --by dana --at 2026-11-28T14:02:00Z --text \"Deploy 881 started\""
    )]
    Note {
        /// The incident's id.
        id: u64,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Who writes it.
        #[arg(long)]
        by: String,
        /// The words (at most 2,000 characters).
        #[arg(long)]
        text: String,
        /// The moment it is about (RFC 3339); now when omitted.
        #[arg(long)]
        at: Option<String>,
    },
}

/// `coordinator incident export`: exit 1 when there is no incident `id`.
fn export(
    id: u64,
    data_dir: &Path,
    format: ExportFormat,
    output: Option<&Path>,
    chart: Option<&Path>,
    regions: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    use meridian_coordinator::export::PostMortem;
    let catalog = match regions.map(Catalog::load).transpose() {
        Ok(c) => c.unwrap_or_else(Catalog::builtin),
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    // Read-only: a mistyped directory is "no such incident", not a new empty database.
    if !data_dir.join("meridian.db").exists() {
        eprintln!(
            "coordinator: no incident {id}: no database in {}",
            data_dir.display()
        );
        return Ok(ExitCode::from(1));
    }
    let store = Store::open_reader(data_dir)?;
    // Steps: every region's rollups (the long part), then rendering and writing.
    let bar = progress::Bar::new("exporting", catalog.len() as u64 + 2);
    bar.step("reading the incident");
    let gathered = PostMortem::gather_observed(&store, id, &catalog, now_ms(), |r| {
        bar.set(r.done as u64, r.total as u64 + 2);
        bar.step(r.region);
    })?;
    let Some(pm) = gathered else {
        drop(bar);
        eprintln!("coordinator: no incident {id} in {}", data_dir.display());
        return Ok(ExitCode::from(1));
    };
    bar.step("rendering");
    if let Some(path) = chart {
        std::fs::write(path, pm.svg()).with_context(|| format!("writing {}", path.display()))?;
    }
    let text = match format {
        ExportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&pm)?),
        ExportFormat::Md => {
            // The link is relative when the chart sits next to the Markdown file.
            let link = chart.map(|c| {
                let beside = output.and_then(Path::parent) == c.parent()
                    || output.is_none() && c.parent() == Some(Path::new(""));
                match c.file_name() {
                    Some(name) if beside => name.to_string_lossy().into_owned(),
                    _ => c.display().to_string(),
                }
            });
            pm.markdown(link.as_deref())
        }
    };
    bar.inc();
    bar.step("writing");
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            drop(bar);
            print!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one `coordinator incident` command.
pub fn incident(command: IncidentCommand) -> anyhow::Result<ExitCode> {
    match command {
        IncidentCommand::Note {
            id,
            data_dir,
            by,
            text,
            at,
        } => {
            let now = now_ms();
            let at_ms = match at.as_deref() {
                None => now,
                Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
                    Ok(t) => t.timestamp_millis(),
                    Err(_) => {
                        eprintln!(
                            "coordinator: --at {t:?} is not a time such as 2026-11-28T14:02:00Z"
                        );
                        return Ok(ExitCode::from(2));
                    }
                },
            };
            let store = open_data_dir(&data_dir)?;
            match store.add_note(id, at_ms, &by, &text, now) {
                Ok(note) => println!("note {note} added to incident {id}"),
                Err(meridian_coordinator::store::notes::NoteError::Store(e)) => {
                    return Err(e.into());
                }
                Err(e @ meridian_coordinator::store::notes::NoteError::NoIncident(_)) => {
                    eprintln!("coordinator: {e}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => {
                    eprintln!("coordinator: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        IncidentCommand::Export {
            id,
            data_dir,
            format,
            output,
            chart,
            regions,
        } => {
            return export(
                id,
                &data_dir,
                format,
                output.as_deref(),
                chart.as_deref(),
                regions.as_deref(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
