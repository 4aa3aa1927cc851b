//! `coordinator message ...`: member messages in the store, from draft to published (the same
//! steps as the web UI's; safe beside a running coordinator, whose pages see the change at
//! their next read).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::{now_ms, open_data_dir, utc};

#[derive(Subcommand)]
pub enum MessageCommand {
    /// List member messages, oldest first: id, incident, stage, state, title.
    #[command(
        after_help = "Examples:\n  coordinator message list --data-dir /var/lib/meridian\n  coordinator message list --data-dir /var/lib/meridian --incident 12 --json"
    )]
    List {
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Only this incident's messages.
        #[arg(long)]
        incident: Option<u64>,
        /// One JSON object per message per line.
        #[arg(long)]
        json: bool,
    },
    /// Print one message whole: its words and who did what when.
    #[command(after_help = "Example:\n  coordinator message show 31 --data-dir /var/lib/meridian")]
    Show {
        /// The message's id.
        id: u64,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Reword a message (title, text or both). An approved message needs approving again; a
    /// published one is never changed.
    #[command(
        after_help = "Examples:\n  coordinator message edit 31 --data-dir /var/lib/meridian --by dana --title \"Slow pages in the Gulf\"\n  $EDITOR msg.txt && coordinator message edit 31 --data-dir /var/lib/meridian --by dana --body-file msg.txt"
    )]
    Edit {
        /// The message's id.
        id: u64,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Who is editing (recorded).
        #[arg(long)]
        by: String,
        /// The new title.
        #[arg(long)]
        title: Option<String>,
        /// A file holding the new text (`-` for standard input).
        #[arg(long)]
        body_file: Option<PathBuf>,
    },
    /// Approve a draft as it reads now.
    #[command(
        after_help = "Example:\n  coordinator message approve 31 --data-dir /var/lib/meridian --by dana"
    )]
    Approve {
        /// The message's id.
        id: u64,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Who approves (recorded).
        #[arg(long)]
        by: String,
    },
    /// Publish an approved message: from now on it is public, and the incident's first
    /// publication is its time to communicate.
    #[command(
        after_help = "Example:\n  coordinator message publish 31 --data-dir /var/lib/meridian --by dana"
    )]
    Publish {
        /// The message's id.
        id: u64,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Who publishes (recorded).
        #[arg(long)]
        by: String,
    },
}

/// `coordinator message ...`: exit 1 when the message does not exist or its state refuses the
/// step, 2 for empty words or no name.
pub fn message(command: MessageCommand) -> anyhow::Result<ExitCode> {
    use meridian_coordinator::store::messages::{MessageError, MessageRecord};
    use std::fmt::Write as _;
    let at = utc;
    let whole = |m: &MessageRecord| {
        let mut out = format!(
            "message {} (incident {}, {}, {})\n{}\n\n{}\n\n",
            m.id,
            m.incident,
            m.stage,
            m.state.as_str(),
            m.title,
            m.body
        );
        let _ = writeln!(out, "regions    {}", m.regions.join(", "));
        let _ = writeln!(out, "drafted    {}", at(Some(m.drafted_ms)));
        for (what, when, by) in [
            ("edited", m.edited_ms, &m.edited_by),
            ("approved", m.approved_ms, &m.approved_by),
            ("published", m.published_ms, &m.published_by),
        ] {
            if when.is_some() {
                let by = by.as_deref().unwrap_or("?");
                let _ = writeln!(out, "{what:<10} {} by {by}", at(when));
            }
        }
        out
    };
    let done = |r: Result<MessageRecord, MessageError>| match r {
        Ok(m) => {
            print!("{}", whole(&m));
            Ok(ExitCode::SUCCESS)
        }
        Err(MessageError::Store(e)) => Err(e.into()),
        Err(e @ MessageError::Invalid(_)) => {
            eprintln!("coordinator: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("coordinator: {e}");
            Ok(ExitCode::from(1))
        }
    };
    match command {
        MessageCommand::List {
            data_dir,
            incident,
            json,
        } => {
            let messages = open_data_dir(&data_dir)?.messages(incident)?;
            let mut out = String::new();
            if json {
                for m in &messages {
                    let _ = writeln!(out, "{}", serde_json::to_string(m)?);
                }
            } else {
                let _ = writeln!(
                    out,
                    "{:<6} {:<9} {:<14} {:<10} title",
                    "id", "incident", "stage", "state"
                );
                for m in &messages {
                    let _ = writeln!(
                        out,
                        "{:<6} {:<9} {:<14} {:<10} {}",
                        m.id,
                        m.incident,
                        m.stage.as_str(),
                        m.state.as_str(),
                        m.title
                    );
                }
                let _ = writeln!(out, "{} messages", messages.len());
            }
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        MessageCommand::Show { id, data_dir } => match open_data_dir(&data_dir)?.message(id)? {
            Some(m) => {
                print!("{}", whole(&m));
                Ok(ExitCode::SUCCESS)
            }
            None => done(Err(MessageError::NotFound(id))),
        },
        MessageCommand::Edit {
            id,
            data_dir,
            by,
            title,
            body_file,
        } => {
            if title.is_none() && body_file.is_none() {
                eprintln!("coordinator: nothing to change: give --title, --body-file or both");
                return Ok(ExitCode::from(2));
            }
            let body = match body_file {
                Some(path) if path.as_os_str() == "-" => {
                    Some(std::io::read_to_string(std::io::stdin()).context("reading stdin")?)
                }
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                ),
                None => None,
            };
            let store = open_data_dir(&data_dir)?;
            done(store.edit_message(id, title.as_deref(), body.as_deref(), &by, now_ms()))
        }
        MessageCommand::Approve { id, data_dir, by } => {
            done(open_data_dir(&data_dir)?.approve_message(id, &by, now_ms()))
        }
        MessageCommand::Publish { id, data_dir, by } => {
            done(open_data_dir(&data_dir)?.publish_message(id, &by, now_ms()))
        }
    }
}
