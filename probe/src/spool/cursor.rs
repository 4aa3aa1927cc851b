//! Cursor files: one small file per coordinator, `cursor-NAME`, holding the highest sequence
//! number that coordinator acknowledged, as one decimal line (readable with `cat` on a VM).
//! Written atomically: a temporary file, fsync, rename over the old one, fsync of the directory,
//! so a crash leaves either the old value or the new one, never a torn file. Which cursors exist,
//! and what an acknowledgement means, is the parent module's business.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::{SpoolError, io_err};

/// File name prefix of a cursor file.
const PREFIX: &str = "cursor-";
/// Suffix of the temporary file a cursor is written to before the rename.
pub(super) const TMP_SUFFIX: &str = ".tmp";

/// Whether `name` may name a cursor: it becomes part of a file name, so no separators, no dots.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The cursor name of a directory entry that is a cursor file (`cursor-NAME`).
pub(super) fn parse_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_prefix(PREFIX)
        .filter(|name| valid_name(name))
}

/// Whether a directory entry is a temporary cursor file left by a crash mid-write.
pub(super) fn is_leftover_tmp(file_name: &str) -> bool {
    file_name.starts_with(PREFIX) && file_name.ends_with(TMP_SUFFIX)
}

/// The cursor file of `name` in `dir`.
pub(super) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{PREFIX}{name}"))
}

/// Reads a cursor file: `None` if it does not exist (a new coordinator: nothing acknowledged).
pub(super) fn load(path: &Path) -> Result<Option<u64>, SpoolError> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|&seq| seq <= super::segment::MAX_SEQ)
            .map(Some)
            .ok_or_else(|| SpoolError::BadCursorFile {
                path: path.to_path_buf(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Replaces the cursor file at `path` (in `dir`) with `acked`, durably and atomically.
pub(super) fn store(dir: &Path, path: &Path, acked: u64) -> Result<(), SpoolError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(format!("{acked}\n").as_bytes())
        .map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))?;
    sync_dir(dir)
}

/// Deletes the cursor file at `path` (in `dir`), durably; a missing file is already deleted.
pub(super) fn remove(dir: &Path, path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Makes the directory's entries (creations, renames) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}
