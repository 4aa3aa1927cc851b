//! `meridian-demo`: Meridian's main job on an embedded default, with no external service. It
//! starts the built-in demo origin and DNS zone on loopback and runs the real scheduler and
//! runner against them (see `meridian_probe::demo`).
//!
//! A binary of its own rather than a `probe` subcommand: the demo's HTTPS server and
//! certificate authority would otherwise ship in, and be resident in, every probe agent.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "meridian-demo",
    version,
    about = "Run Meridian's probe against a built-in local origin and DNS zone for a few rounds",
    after_help = "Examples:\n  meridian-demo --rounds 5 --interval 1s\n  cargo run -p meridian-probe --bin meridian-demo -- --rounds 5"
)]
struct Cli {
    /// How many rounds of checks to run.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Time between rounds.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian-demo: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(meridian_probe::demo::run(cli.rounds, cli.interval)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meridian-demo: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent_and_has_examples() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        assert!(
            cmd.get_after_help()
                .is_some_and(|h| h.to_string().contains("Example")),
            "no Example in --help"
        );
        // No subcommands: nothing else to list examples for.
        assert_eq!(cmd.get_subcommands().count(), 0);
    }
}
