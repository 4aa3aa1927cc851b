//! `coordinator`: Meridian's central service. Ingest, storage, detection and the web map come
//! with later issues; today it owns the region catalog: `coordinator regions` lists and
//! validates `regions.toml`, the file both sides agree on.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meridian_shared::regions::Catalog;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Regions { file } => {
            let catalog = match &file {
                Some(path) => match Catalog::load(path) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(2);
                    }
                },
                None => Catalog::builtin(),
            };
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
            ExitCode::SUCCESS
        }
    }
}
