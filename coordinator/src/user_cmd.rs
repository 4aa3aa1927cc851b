//! `coordinator user ...`: staff accounts of the web UI and API, written straight into the
//! store (safe beside a running coordinator: SQLite's WAL and busy timeout serialize the
//! writes). Roles: viewer, community-manager, sre-admin.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use meridian_coordinator::store::users::{NewSession, Role, SessionKind, UserError, secret_hash};
use meridian_coordinator::web::{hash_password, new_secret};

/// The shortest password accepted (as the API's).
const MIN_PASSWORD: usize = 12;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user. Without --password-stdin a password is generated and printed once.
    #[command(
        after_help = "Examples:\n  coordinator user add alice --role community-manager --data-dir /var/lib/meridian\n  printf '%s' \"$PASSWORD\" | coordinator user add bob --role sre-admin --password-stdin --data-dir /var/lib/meridian"
    )]
    Add {
        /// Login name: lowercase letters, digits, '.', '_', '-', '@'.
        name: String,
        /// viewer, community-manager or sre-admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input (at least 12 characters).
        #[arg(long)]
        password_stdin: bool,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// List users and their roles.
    #[command(after_help = "Example:\n  coordinator user list --data-dir /var/lib/meridian")]
    List {
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Remove a user; their sessions and tokens end at once.
    #[command(
        after_help = "Example:\n  coordinator user remove alice --data-dir /var/lib/meridian"
    )]
    Remove {
        /// Login name.
        name: String,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Change a user's role (effective at their next request).
    #[command(
        after_help = "Example:\n  coordinator user role alice sre-admin --data-dir /var/lib/meridian"
    )]
    Role {
        /// Login name.
        name: String,
        /// viewer, community-manager or sre-admin.
        #[arg(value_parser = parse_role)]
        role: Role,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Set a new password (generated and printed without --password-stdin); their sessions
    /// end.
    #[command(
        after_help = "Examples:\n  coordinator user passwd alice --data-dir /var/lib/meridian\n  printf '%s' \"$PASSWORD\" | coordinator user passwd alice --password-stdin --data-dir /var/lib/meridian"
    )]
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Issue an API token for a user (sent as `Authorization: Bearer TOKEN`), printed once.
    #[command(
        after_help = "Examples:\n  coordinator user token alice --label ci --data-dir /var/lib/meridian\n  coordinator user token alice --label grafana --expires 30d --data-dir /var/lib/meridian"
    )]
    Token {
        /// Login name.
        name: String,
        /// What it is for, shown in logs.
        #[arg(long)]
        label: Option<String>,
        /// How long it stays valid.
        #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
        expires: Duration,
        /// The coordinator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "expected viewer, community-manager or sre-admin".to_string())
}

/// A password from standard input, or a generated one (returned to print).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(
            text.chars().count() >= MIN_PASSWORD,
            "a password needs at least {MIN_PASSWORD} characters"
        );
        return Ok((text, false));
    }
    // 20 characters of a 56-letter alphabet without look-alikes: about 116 bits.
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let secret = new_secret()?;
    let generated = secret
        .as_bytes()
        .chunks(2)
        .take(20)
        .map(|pair| {
            let v = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("0"), 16).unwrap_or(0);
            ALPHABET[usize::from(v) % ALPHABET.len()] as char
        })
        .collect();
    Ok((generated, true))
}

/// Runs a `user` command: exit 1 when the user does not exist or the change is refused, 2 for
/// invalid input.
pub fn user(command: UserCommand, now_ms: i64) -> anyhow::Result<ExitCode> {
    let refused = |e: UserError| -> anyhow::Result<ExitCode> {
        match e {
            UserError::Store(e) => Err(e.into()),
            e @ UserError::BadName(_) => {
                eprintln!("coordinator: {e}");
                Ok(ExitCode::from(2))
            }
            e => {
                eprintln!("coordinator: {e}");
                Ok(ExitCode::from(1))
            }
        }
    };
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            data_dir,
        } => {
            let store = super::open_data_dir(&data_dir)?;
            let (password, generated) = password(password_stdin)?;
            if let Err(e) = store.add_user(&name, role, &hash_password(&password)?, now_ms) {
                return refused(e);
            }
            println!("added {name} ({role})");
            if generated {
                println!("password: {password}");
                println!("(shown once; only its Argon2id hash is stored)");
            }
        }
        UserCommand::List { data_dir } => {
            let store = super::open_data_dir(&data_dir)?;
            let users = store.users()?;
            println!("{:<24} {:<18} created", "name", "role");
            for u in &users {
                println!(
                    "{:<24} {:<18} {}",
                    u.name,
                    u.role.as_str(),
                    super::utc(Some(u.created_ms))
                );
            }
            println!("{} users", users.len());
        }
        UserCommand::Remove { name, data_dir } => {
            let store = super::open_data_dir(&data_dir)?;
            if let Err(e) = store.remove_user(&name) {
                return refused(e);
            }
            println!("removed {name}");
        }
        UserCommand::Role {
            name,
            role,
            data_dir,
        } => {
            let store = super::open_data_dir(&data_dir)?;
            if let Err(e) = store.set_role(&name, role, now_ms) {
                return refused(e);
            }
            println!("{name} is now {role}");
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            data_dir,
        } => {
            let store = super::open_data_dir(&data_dir)?;
            let (password, generated) = password(password_stdin)?;
            if let Err(e) = store.set_password(&name, &hash_password(&password)?, now_ms) {
                return refused(e);
            }
            println!("password of {name} changed; their sessions ended");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Token {
            name,
            label,
            expires,
            data_dir,
        } => {
            let store = super::open_data_dir(&data_dir)?;
            let (secret, csrf) = (new_secret()?, new_secret()?);
            let expires_ms =
                now_ms.saturating_add(i64::try_from(expires.as_millis()).unwrap_or(i64::MAX));
            let hash = secret_hash(&secret);
            let session = NewSession {
                user: &name,
                kind: SessionKind::Token,
                label: label.as_deref(),
                secret_hash: &hash,
                csrf: &csrf,
                now_ms,
                expires_ms,
            };
            if let Err(e) = store.create_session(&session) {
                return refused(e);
            }
            println!("token:    {secret}");
            println!("user:     {name}");
            println!("expires:  {}", super::utc(Some(expires_ms)));
            println!("(shown once; send it as `Authorization: Bearer TOKEN`)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
