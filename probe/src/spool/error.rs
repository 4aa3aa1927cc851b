//! The spool's error type: one variant per cause, each naming the file it concerns. Corruption
//! found on disk is not an error (it is counted and logged, and the spool carries on); these are
//! the faults the caller has to act on.

use std::io;
use std::path::PathBuf;

/// What went wrong in a spool operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// An operation on a spool file or on the spool directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "write", "fdatasync", "rename", ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// `append` was given a payload larger than `SpoolConfig::max_record_bytes`.
    #[error("record of {len} bytes exceeds the spool's {max}-byte maximum")]
    RecordTooLarge {
        /// The payload's length in bytes.
        len: usize,
        /// The configured maximum.
        max: u32,
    },
    /// A cursor name that was not declared when the spool was opened.
    #[error("unknown spool cursor {0:?}")]
    UnknownCursor(String),
    /// A declared cursor name that cannot be a file name part: 1–64 characters of `A-Z a-z 0-9 _ -`.
    #[error("invalid spool cursor name {0:?}: use 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    InvalidCursorName(String),
    /// The same cursor name was declared twice.
    #[error("spool cursor {0:?} declared twice")]
    DuplicateCursor(String),
    /// `ack` named a sequence number the spool has not assigned yet.
    #[error(
        "spool cursor {cursor:?}: cannot acknowledge {seq}, the newest sequence assigned is {newest}"
    )]
    AckBeyondNewest {
        /// The cursor being advanced.
        cursor: String,
        /// The sequence number it was asked to acknowledge.
        seq: u64,
        /// The newest sequence number assigned so far (0: none yet).
        newest: u64,
    },
    /// A cursor file whose content is not a sequence number.
    #[error("{}: not a spool cursor file (expected one decimal sequence number)", path.display())]
    BadCursorFile {
        /// The cursor file.
        path: PathBuf,
    },
    /// The configuration cannot bound the spool (see `SpoolConfig`'s field docs).
    #[error("invalid spool configuration: {0}")]
    InvalidConfig(&'static str),
    /// Another process (or another `Spool` in this one) holds the spool directory's lock.
    #[error("{}: spool directory is in use by another process", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

/// Builds a `map_err` adapter that wraps an `io::Error` with what was done and to which path.
pub(super) fn io_err(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |source| SpoolError::Io { op, path, source }
}
