//! Staff accounts of the web UI and API (schema v9): who may log in, with which role, and the
//! sessions they hold.
//!
//! # Decisions
//! - **Passwords** are stored as Argon2id PHC strings; hashing happens in the caller
//!   ([`crate::web::auth`]), never on the store thread, whose time belongs to ingest.
//! - **One table for sessions and API tokens**: both are bearer secrets with an owner and an
//!   expiry. Only the SHA-256 of a secret is stored, so a copy of the database (a backup, a
//!   support bundle) opens no live session. A browser session carries a CSRF token for its
//!   forms; an API token is presented in a header no other site can make a browser send, so
//!   it needs none.
//! - **Roles are checked where a request is served**, from the session row read at that
//!   moment: removing a user or changing their role takes effect at their next request, not
//!   at the next login (their sessions go with the user, `ON DELETE CASCADE`).

use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use super::{Store, StoreError};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sees the map, incidents and messages; changes nothing.
    Viewer,
    /// A viewer who also edits, approves and publishes member messages.
    CommunityManager,
    /// Everything, accounts included.
    SreAdmin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::CommunityManager, Role::SreAdmin];

    /// The role's name in the database, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::CommunityManager => "community-manager",
            Role::SreAdmin => "sre-admin",
        }
    }

    /// The role named `name`, if any.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether it may edit, approve and publish member messages.
    pub fn can_communicate(self) -> bool {
        self >= Role::CommunityManager
    }

    /// Whether it may manage accounts.
    pub fn is_admin(self) -> bool {
        self == Role::SreAdmin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff account, without its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Role or password last changed, Unix ms.
    pub changed_ms: i64,
}

/// What kind of secret a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    /// A browser login (a cookie; forms carry its CSRF token).
    Browser,
    /// An API token (`Authorization: Bearer`).
    Token,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Browser => "browser",
            SessionKind::Token => "token",
        }
    }

    fn parse(s: &str) -> Option<SessionKind> {
        match s {
            "browser" => Some(SessionKind::Browser),
            "token" => Some(SessionKind::Token),
            _ => None,
        }
    }
}

/// A live session, as a request presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its owner.
    pub user: String,
    /// The owner's role now.
    pub role: Role,
    /// Browser or token.
    pub kind: SessionKind,
    /// The token forms must carry (browser sessions).
    pub csrf: String,
    /// When it ends, Unix ms.
    pub expires_ms: i64,
}

/// A session to open ([`Store::create_session`]).
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    /// Its owner.
    pub user: &'a str,
    /// Browser or token.
    pub kind: SessionKind,
    /// What a token is for (shown in listings), if given.
    pub label: Option<&'a str>,
    /// [`secret_hash`] of its secret.
    pub secret_hash: &'a str,
    /// The CSRF token of its forms.
    pub csrf: &'a str,
    /// Now, Unix ms.
    pub now_ms: i64,
    /// When it ends, Unix ms.
    pub expires_ms: i64,
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such user.
    #[error("no user {0:?}")]
    NotFound(String),
    /// The name is taken.
    #[error("user {0:?} exists already")]
    Exists(String),
    /// The name does not follow the rules.
    #[error("user name {0:?}: 1 to 64 characters, lowercase letters, digits, '.', '_', '-' or '@'")]
    BadName(String),
    /// The last administrator cannot be removed or demoted.
    #[error("{0:?} is the last sre-admin; make another one first")]
    LastAdmin(String),
}

/// Whether `name` is a valid login name.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
        })
}

/// The hex SHA-256 of a session secret: what the table keys sessions by.
pub fn secret_hash(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Store {
    /// Adds a user with an already hashed password (a PHC string).
    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        password_phc: &str,
        now_ms: i64,
    ) -> Result<(), UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName(name.to_owned()));
        }
        let inserted = self
            .conn
            .execute(
                "INSERT INTO users (name, role, password, created_ms, changed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO NOTHING",
                params![name, role.as_str(), password_phc, now_ms],
            )
            .map_err(|e| self.sqlite(e))?;
        if inserted == 0 {
            return Err(UserError::Exists(name.to_owned()));
        }
        Ok(())
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, role, created_ms, changed_ms FROM users ORDER BY name")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, role, created_ms, changed_ms) = row.map_err(|e| self.sqlite(e))?;
            // A role this build does not know (written by a newer one) grants nothing.
            let role = Role::parse(&role).unwrap_or(Role::Viewer);
            out.push(User {
                name,
                role,
                created_ms,
                changed_ms,
            });
        }
        Ok(out)
    }

    /// A user's role and password hash, for logging in.
    pub fn credentials(&self, name: &str) -> Result<Option<(Role, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT role, password FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(|e| self.sqlite(e))
            .map(|row| row.and_then(|(role, phc)| Some((Role::parse(&role)?, phc))))
    }

    /// Replaces a user's password hash and ends their sessions (a changed password is often a
    /// compromised one).
    pub fn set_password(
        &self,
        name: &str,
        password_phc: &str,
        now_ms: i64,
    ) -> Result<(), UserError> {
        let changed = self
            .conn
            .execute(
                "UPDATE users SET password = ?2, changed_ms = ?3 WHERE name = ?1",
                params![name, password_phc, now_ms],
            )
            .map_err(|e| self.sqlite(e))?;
        if changed == 0 {
            return Err(UserError::NotFound(name.to_owned()));
        }
        self.conn
            .execute("DELETE FROM sessions WHERE user_name = ?1", [name])
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// Changes a user's role; the last administrator keeps theirs.
    pub fn set_role(&self, name: &str, role: Role, now_ms: i64) -> Result<(), UserError> {
        if role != Role::SreAdmin && self.is_last_admin(name)? {
            return Err(UserError::LastAdmin(name.to_owned()));
        }
        let changed = self
            .conn
            .execute(
                "UPDATE users SET role = ?2, changed_ms = ?3 WHERE name = ?1",
                params![name, role.as_str(), now_ms],
            )
            .map_err(|e| self.sqlite(e))?;
        if changed == 0 {
            return Err(UserError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Removes a user and their sessions; the last administrator stays.
    pub fn remove_user(&self, name: &str) -> Result<(), UserError> {
        if self.is_last_admin(name)? {
            return Err(UserError::LastAdmin(name.to_owned()));
        }
        let removed = self
            .conn
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(|e| self.sqlite(e))?;
        if removed == 0 {
            return Err(UserError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    fn is_last_admin(&self, name: &str) -> Result<bool, StoreError> {
        let admins: Vec<String> = self
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::SreAdmin)
            .map(|u| u.name)
            .collect();
        Ok(admins.len() == 1 && admins[0] == name)
    }

    /// Opens a session (the caller made the secret, hands it to the user and gives only its
    /// hash here).
    pub fn create_session(&self, new: &NewSession<'_>) -> Result<(), UserError> {
        if self.credentials(new.user)?.is_none() {
            return Err(UserError::NotFound(new.user.to_owned()));
        }
        self.conn
            .execute(
                "INSERT INTO sessions (secret_hash, user_name, kind, label, csrf, created_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    new.secret_hash,
                    new.user,
                    new.kind.as_str(),
                    new.label,
                    new.csrf,
                    new.now_ms,
                    new.expires_ms
                ],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// The live session whose secret hashes to `secret_hash`, with its owner's current role;
    /// `None` when unknown or expired.
    pub fn session(&self, secret_hash: &str, now_ms: i64) -> Result<Option<Session>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.user_name, u.role, s.kind, s.csrf, s.expires_ms
                 FROM sessions s JOIN users u ON u.name = s.user_name
                 WHERE s.secret_hash = ?1 AND s.expires_ms > ?2",
            )
            .map_err(|e| self.sqlite(e))?;
        let row = stmt
            .query_row(params![secret_hash, now_ms], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(|e| self.sqlite(e))?;
        Ok(row.and_then(|(user, role, kind, csrf, expires_ms)| {
            Some(Session {
                user,
                role: Role::parse(&role)?,
                kind: SessionKind::parse(&kind)?,
                csrf,
                expires_ms,
            })
        }))
    }

    /// Ends the session whose secret hashes to `secret_hash` (logout); whether there was one.
    pub fn end_session(&self, secret_hash: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM sessions WHERE secret_hash = ?1", [secret_hash])
            .map(|n| n > 0)
            .map_err(|e| self.sqlite(e))
    }

    /// Deletes expired sessions; returns how many.
    pub fn prune_sessions(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM sessions WHERE expires_ms <= ?1", [now_ms])
            .map_err(|e| self.sqlite(e))
    }
}
