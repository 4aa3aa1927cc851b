//! The coordinator's assignment on disk: `<state_dir>/assignment.msgpack`, so that a probe that
//! restarts while its coordinators are unreachable keeps running what it was last told.
//!
//! Written atomically (temporary file, fsync, rename, directory fsync): after a crash the file
//! holds the old assignment or the new one, never a torn mix. Versions only move forward:
//! [`AssignmentStore::save_if_newer`] keeps the file as it is when it already holds the same or
//! a higher version. Synchronous `std::fs`; the agent calls it from `spawn_blocking`.
//!
//! Deliberately absent: merging. An assignment is always complete and replaces the last one.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use meridian_shared::wire::Assignment;

/// The file name inside the state directory.
pub const FILE_NAME: &str = "assignment.msgpack";

/// Why the assignment could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssignmentError {
    /// Reading, writing or syncing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold an assignment (written by a newer build, or damaged).
    #[error("{}: not an assignment: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
    /// The assignment could not be encoded.
    #[error("encoding the assignment: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Whether `candidate` replaces an assignment of version `held` (`None`: nothing held yet).
pub fn is_newer(held: Option<u64>, candidate: &Assignment) -> bool {
    held.is_none_or(|h| candidate.version > h)
}

/// What makes an assignment unusable, for the log (the probe keeps its current one).
pub fn problem(a: &Assignment) -> Option<String> {
    if a.slots == 0 || a.slot >= a.slots {
        return Some(format!(
            "slot {} of {} slots is out of range",
            a.slot, a.slots
        ));
    }
    let mut ids: Vec<&str> = a.checks.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Some(format!("check {:?} is assigned twice", w[0]));
    }
    None
}

/// The assignment file of one state directory.
#[derive(Debug, Clone)]
pub struct AssignmentStore {
    /// `<state_dir>/assignment.msgpack`.
    path: PathBuf,
}

impl AssignmentStore {
    /// The store in `state_dir`.
    pub fn in_dir(state_dir: &Path) -> AssignmentStore {
        AssignmentStore {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The persisted assignment; `Ok(None)` when there is none yet.
    pub fn load(&self) -> Result<Option<Assignment>, AssignmentError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(AssignmentError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        rmp_serde::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AssignmentError::Corrupt {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// Persists `a` unless the file already holds the same or a higher version (an unreadable
    /// file is replaced); whether it was written.
    pub fn save_if_newer(&self, a: &Assignment) -> Result<bool, AssignmentError> {
        let held = self.load().ok().flatten().map(|h| h.version);
        if !is_newer(held, a) {
            return Ok(false);
        }
        self.save(a)?;
        Ok(true)
    }

    /// Persists `a` atomically, whatever the file held.
    pub fn save(&self, a: &Assignment) -> Result<(), AssignmentError> {
        let bytes = rmp_serde::to_vec_named(a)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AssignmentError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let tmp = self.path.with_extension("msgpack.tmp");
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_shared::check::{Check, CheckId, CheckSpec, DnsCheck, RecordType, ResolverSpec};
    use std::time::Duration;

    fn assignment(version: u64, slot: u32, ids: &[&str]) -> Assignment {
        Assignment {
            version,
            slot,
            slots: 4,
            checks: ids
                .iter()
                .map(|id| Check {
                    id: CheckId::parse(id).unwrap(),
                    interval: Duration::from_secs(30),
                    spec: CheckSpec::Dns(DnsCheck::new(
                        "example.test",
                        RecordType::A,
                        ResolverSpec::System,
                    )),
                })
                .collect(),
        }
    }

    #[test]
    fn persists_and_restores_the_assignment() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        assert!(store.load().unwrap().is_none(), "nothing before the first");
        let a = assignment(3, 1, &["home", "api"]);
        assert!(store.save_if_newer(&a).unwrap());
        // A new store over the same directory (a restart) reads it back whole.
        let restored = AssignmentStore::in_dir(dir.path()).load().unwrap().unwrap();
        assert_eq!(restored, a);
        assert!(!dir.path().join("assignment.msgpack.tmp").exists());
    }

    #[test]
    fn versions_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        assert!(store.save_if_newer(&assignment(5, 0, &["a"])).unwrap());
        assert!(!store.save_if_newer(&assignment(4, 2, &["b"])).unwrap());
        assert!(!store.save_if_newer(&assignment(5, 2, &["b"])).unwrap());
        assert_eq!(store.load().unwrap().unwrap().version, 5);
        assert_eq!(store.load().unwrap().unwrap().slot, 0);
        assert!(store.save_if_newer(&assignment(6, 3, &["c"])).unwrap());
        assert_eq!(store.load().unwrap().unwrap().checks[0].id.as_str(), "c");
        assert!(is_newer(None, &assignment(0, 0, &[])));
    }

    #[test]
    fn a_damaged_file_is_reported_and_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        std::fs::write(store.path(), b"\xc1garbage").unwrap();
        assert!(matches!(store.load(), Err(AssignmentError::Corrupt { .. })));
        assert!(store.save_if_newer(&assignment(1, 0, &["a"])).unwrap());
        assert_eq!(store.load().unwrap().unwrap().version, 1);
    }

    #[test]
    fn unusable_assignments_are_named() {
        assert!(problem(&assignment(1, 3, &["a", "b"])).is_none());
        assert!(
            problem(&assignment(1, 4, &["a"]))
                .unwrap()
                .contains("out of range")
        );
        assert!(
            problem(&assignment(1, 0, &["a", "a"]))
                .unwrap()
                .contains("twice")
        );
    }
}
