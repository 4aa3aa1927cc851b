//! Assignments on the probe: each coordinator's latest one, on disk and in memory, and what
//! the probe runs and delivers when several coordinators assign it checks.
//!
//! Every coordinator numbers the versions of its own assignments, so the probe keeps the
//! latest assignment *per coordinator*, keyed by the coordinator's `name` in `probe.toml`
//! (stable across address changes, and already the name of its spool cursor): [`Held`] in
//! memory, `<state_dir>/assignment.<name>.msgpack` on disk ([`AssignmentStore`]), so that a
//! probe that restarts while its coordinators are unreachable keeps running what it was last
//! told. Versions only move forward, per coordinator.
//!
//! Files are written atomically (temporary file, fsync, rename, directory fsync): after a crash
//! a file holds the old assignment or the new one, never a torn mix. Synchronous `std::fs`; the
//! agent calls it from `spawn_blocking`.
//!
//! # Merging ([`merge`])
//! The probe runs the union of the held assignments, each check once: coordinators are taken
//! in `probe.toml` order and the first one that assigns a check id wins it, spec and stagger
//! slot `i` of `P` alike (each coordinator numbers its region's probes on its own, so the slots
//! may differ by check). A coordinator is delivered only the results of the checks it assigned
//! *and* that run as it assigned them ([`deliverable`]): when two coordinators give one id two
//! different specs, the loser's check does not run, and the winner's results are not its data.
//!
//! # Migration
//! Earlier builds kept one `assignment.msgpack`, from whichever coordinator sent the highest
//! version. Its version cannot be attributed to one coordinator (with two coordinators it may
//! be the other's numbering, and adopting it would make the rightful owner's next versions look
//! old), so it is only a fallback: [`AssignmentStore::restore`] returns it when no coordinator
//! has a file of its own, the agent runs it until the first per-coordinator assignment
//! arrives, and the first per-coordinator save removes it.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meridian_shared::check::{Check, CheckId};
use meridian_shared::wire::Assignment;

use crate::schedule::Slot;

/// The file the single assignment of earlier builds was kept in, inside the state directory.
pub const LEGACY_FILE: &str = "assignment.msgpack";

/// Why an assignment could not be read or written.
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
    /// The coordinator name cannot name a file (`probe.toml` validation keeps this out).
    #[error("{0:?} is not a coordinator name")]
    Name(String),
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

/// The latest assignment of each configured coordinator, in `probe.toml` order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Held {
    /// Every coordinator by name, in configuration order (the merge's priority), with its
    /// assignment once it sent one.
    entries: Vec<(String, Option<Arc<Assignment>>)>,
}

impl Held {
    /// Nothing held yet from the coordinators `names` (in configuration order).
    pub fn new(names: impl IntoIterator<Item = String>) -> Held {
        Held {
            entries: names.into_iter().map(|n| (n, None)).collect(),
        }
    }

    /// The assignment held from `coordinator`.
    pub fn get(&self, coordinator: &str) -> Option<&Arc<Assignment>> {
        self.entries
            .iter()
            .find(|(n, _)| n == coordinator)
            .and_then(|(_, a)| a.as_ref())
    }

    /// Takes `a` as `coordinator`'s assignment if it is newer than the one held from it;
    /// whether it did (an unknown coordinator's is not taken).
    pub fn offer(&mut self, coordinator: &str, a: Arc<Assignment>) -> bool {
        match self.entries.iter_mut().find(|(n, _)| n == coordinator) {
            Some((_, held)) if is_newer(held.as_ref().map(|h| h.version), &a) => {
                *held = Some(a);
                true
            }
            _ => false,
        }
    }

    /// The held assignments with their coordinators, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Assignment>)> {
        self.entries
            .iter()
            .filter_map(|(n, a)| a.as_ref().map(|a| (n.as_str(), a)))
    }

    /// Whether no coordinator's assignment is held.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// For the log: `c1 v3, c2 v7`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .map(|(n, a)| format!("{n} v{}", a.version))
            .collect();
        parts.join(", ")
    }
}

/// One check of the merged plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The check, as its winning coordinator assigned it.
    pub check: Check,
    /// That coordinator's stagger slot for this probe.
    pub slot: Slot,
    /// That coordinator's name.
    pub coordinator: String,
}

/// Two coordinators giving one check id different specs: the first one's runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The check id.
    pub check: CheckId,
    /// The coordinator whose check runs.
    pub winner: String,
    /// The coordinator whose check does not run (and is not delivered its results).
    pub loser: String,
}

/// The union of the held assignments (see the module's decisions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    /// Each check once: the first coordinator's checks in its order, then the next one's new
    /// ones, and so on.
    pub checks: Vec<Planned>,
    /// Ids assigned with different specs; the same spec twice is not a conflict.
    pub conflicts: Vec<Conflict>,
}

fn slot_of(a: &Assignment) -> Slot {
    Slot {
        index: a.slot,
        count: a.slots,
    }
}

/// Merges the held assignments: each check id once, the first coordinator in configuration
/// order winning spec and slot.
pub fn merge(held: &Held) -> Merged {
    let mut merged = Merged::default();
    for (name, a) in held.iter() {
        for check in &a.checks {
            match merged.checks.iter().find(|p| p.check.id == check.id) {
                None => merged.checks.push(Planned {
                    check: check.clone(),
                    slot: slot_of(a),
                    coordinator: name.to_owned(),
                }),
                Some(p) if p.check != *check => merged.conflicts.push(Conflict {
                    check: check.id.clone(),
                    winner: p.coordinator.clone(),
                    loser: name.to_owned(),
                }),
                Some(_) => {}
            }
        }
    }
    merged
}

/// The checks whose results go to `coordinator`: those it assigned that run as it assigned
/// them (the winner of their id has the same spec). `None` while no assignment is held from
/// it: nothing it would accept is known yet.
pub fn deliverable(held: &Held, coordinator: &str) -> Option<BTreeSet<CheckId>> {
    let own = held.get(coordinator)?;
    let winner = |id: &CheckId| {
        held.iter()
            .find_map(|(_, a)| a.checks.iter().find(|c| c.id == *id))
    };
    Some(
        own.checks
            .iter()
            .filter(|c| winner(&c.id) == Some(*c))
            .map(|c| c.id.clone())
            .collect(),
    )
}

/// What a probe starts with, read by [`AssignmentStore::restore`].
#[derive(Debug, Default)]
pub struct Restored {
    /// Each configured coordinator's persisted, usable assignment.
    pub held: Held,
    /// The single assignment of an earlier build, when no coordinator has a file of its own.
    pub legacy: Option<Assignment>,
    /// Files that could not be read or hold an unusable assignment, for the log.
    pub problems: Vec<String>,
}

/// The assignment files of one state directory.
#[derive(Debug, Clone)]
pub struct AssignmentStore {
    /// The state directory.
    dir: PathBuf,
}

impl AssignmentStore {
    /// The store in `state_dir`.
    pub fn in_dir(state_dir: &Path) -> AssignmentStore {
        AssignmentStore {
            dir: state_dir.to_path_buf(),
        }
    }

    /// `<state_dir>/assignment.<coordinator>.msgpack`.
    pub fn path(&self, coordinator: &str) -> Result<PathBuf, AssignmentError> {
        // A cursor name is letters, digits, '-' and '_': never a path separator or a dot.
        if !crate::spool::valid_cursor_name(coordinator) {
            return Err(AssignmentError::Name(coordinator.to_owned()));
        }
        Ok(self.dir.join(format!("assignment.{coordinator}.msgpack")))
    }

    /// `<state_dir>/assignment.msgpack`, the file of earlier builds.
    pub fn legacy_path(&self) -> PathBuf {
        self.dir.join(LEGACY_FILE)
    }

    /// `coordinator`'s persisted assignment; `Ok(None)` when there is none yet.
    pub fn load(&self, coordinator: &str) -> Result<Option<Assignment>, AssignmentError> {
        read(&self.path(coordinator)?)
    }

    /// The single assignment an earlier build left, if any.
    pub fn load_legacy(&self) -> Result<Option<Assignment>, AssignmentError> {
        read(&self.legacy_path())
    }

    /// Reads what the coordinators `names` (configuration order) last assigned; files of
    /// coordinators no longer configured are ignored. Unreadable files and unusable
    /// assignments are left out and named in `problems`.
    pub fn restore(&self, names: &[String]) -> Restored {
        let mut restored = Restored {
            held: Held::new(names.iter().cloned()),
            ..Restored::default()
        };
        let mut usable = |loaded: Result<Option<Assignment>, AssignmentError>| match loaded {
            Ok(Some(a)) => match problem(&a) {
                None => Some(a),
                Some(p) => {
                    restored
                        .problems
                        .push(format!("version {}: {p}", a.version));
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                restored.problems.push(e.to_string());
                None
            }
        };
        let mut found = Vec::new();
        for name in names {
            if let Some(a) = usable(self.load(name)) {
                found.push((name, a));
            }
        }
        // A legacy file next to per-coordinator ones is stale (a crash right after the first
        // per-coordinator save): it is never read then.
        let legacy = if found.is_empty() {
            usable(self.load_legacy())
        } else {
            None
        };
        for (name, a) in found {
            restored.held.offer(name, Arc::new(a));
        }
        restored.legacy = legacy;
        restored
    }

    /// Persists `a` as `coordinator`'s unless its file already holds the same or a higher
    /// version (an unreadable file is replaced); whether it was written.
    pub fn save_if_newer(
        &self,
        coordinator: &str,
        a: &Assignment,
    ) -> Result<bool, AssignmentError> {
        let held = self.load(coordinator).ok().flatten().map(|h| h.version);
        if !is_newer(held, a) {
            return Ok(false);
        }
        self.save(coordinator, a)?;
        Ok(true)
    }

    /// Persists `a` atomically as `coordinator`'s, whatever its file held, and removes the
    /// legacy file (superseded by the first per-coordinator assignment).
    pub fn save(&self, coordinator: &str, a: &Assignment) -> Result<(), AssignmentError> {
        let path = self.path(coordinator)?;
        let bytes = rmp_serde::to_vec_named(a)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AssignmentError::Io { path, source }
        };
        let dir = self.dir.as_path();
        fs::create_dir_all(dir).map_err(io(dir))?;
        let tmp = path.with_extension("msgpack.tmp");
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        let legacy = self.legacy_path();
        match fs::remove_file(&legacy) {
            Ok(()) => {
                tracing::info!(path = %legacy.display(), "single-assignment file of an earlier build removed")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&legacy)(e)),
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(())
    }
}

/// The assignment in `path`; `Ok(None)` when the file does not exist.
fn read(path: &Path) -> Result<Option<Assignment>, AssignmentError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AssignmentError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    rmp_serde::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AssignmentError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::dns_check;
    use std::time::Duration;

    fn assignment(version: u64, slot: u32, ids: &[&str]) -> Assignment {
        Assignment {
            version,
            slot,
            slots: 4,
            checks: ids.iter().map(|id| dns_check(id, 30)).collect(),
        }
    }

    fn held(entries: &[(&str, Option<Assignment>)]) -> Held {
        let mut h = Held::new(entries.iter().map(|(n, _)| n.to_string()));
        for (n, a) in entries {
            if let Some(a) = a {
                assert!(h.offer(n, Arc::new(a.clone())));
            }
        }
        h
    }

    fn ids(checks: &BTreeSet<CheckId>) -> Vec<&str> {
        checks.iter().map(CheckId::as_str).collect()
    }

    #[test]
    fn persists_and_restores_each_coordinators_assignment() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        assert!(
            store.load("c1").unwrap().is_none(),
            "nothing before the first"
        );
        let (a, b) = (
            assignment(3, 1, &["home", "api"]),
            assignment(9, 0, &["dns"]),
        );
        assert!(store.save_if_newer("c1", &a).unwrap());
        assert!(store.save_if_newer("c2", &b).unwrap());
        assert!(dir.path().join("assignment.c1.msgpack").is_file());
        assert!(!dir.path().join("assignment.c1.msgpack.tmp").exists());
        // A new store over the same directory (a restart) reads both back, in config order,
        // and ignores the file of a coordinator no longer configured.
        let names = ["c2".to_string(), "c1".to_string()];
        let restored = AssignmentStore::in_dir(dir.path()).restore(&names);
        assert!(restored.problems.is_empty(), "{:?}", restored.problems);
        assert!(restored.legacy.is_none());
        let got: Vec<(&str, u64)> = restored.held.iter().map(|(n, a)| (n, a.version)).collect();
        assert_eq!(got, [("c2", 9), ("c1", 3)]);
        assert_eq!(**restored.held.get("c1").unwrap(), a);
        let only = AssignmentStore::in_dir(dir.path()).restore(&["c1".to_string()]);
        assert_eq!(only.held.describe(), "c1 v3");
    }

    #[test]
    fn versions_only_move_forward_per_coordinator() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        assert!(
            store
                .save_if_newer("c1", &assignment(5, 0, &["a"]))
                .unwrap()
        );
        assert!(
            !store
                .save_if_newer("c1", &assignment(4, 2, &["b"]))
                .unwrap()
        );
        assert!(
            !store
                .save_if_newer("c1", &assignment(5, 2, &["b"]))
                .unwrap()
        );
        // Another coordinator's numbering is its own: a lower version is still its first.
        assert!(
            store
                .save_if_newer("c2", &assignment(1, 2, &["b"]))
                .unwrap()
        );
        assert_eq!(store.load("c1").unwrap().unwrap().slot, 0);
        assert!(
            store
                .save_if_newer("c1", &assignment(6, 3, &["c"]))
                .unwrap()
        );
        assert_eq!(
            store.load("c1").unwrap().unwrap().checks[0].id.as_str(),
            "c"
        );
        assert!(is_newer(None, &assignment(0, 0, &[])));

        let mut h = Held::new(["c1".to_string(), "c2".to_string()]);
        assert!(h.is_empty());
        assert!(h.offer("c2", Arc::new(assignment(7, 0, &[]))));
        assert!(
            h.offer("c1", Arc::new(assignment(2, 0, &[]))),
            "c2's v7 is not c1's"
        );
        assert!(!h.offer("c1", Arc::new(assignment(2, 1, &[]))));
        assert!(
            !h.offer("c3", Arc::new(assignment(1, 0, &[]))),
            "not configured"
        );
        assert_eq!(h.describe(), "c1 v2, c2 v7");
    }

    #[test]
    fn a_damaged_file_is_reported_and_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        std::fs::write(store.path("c1").unwrap(), b"\xc1garbage").unwrap();
        assert!(matches!(
            store.load("c1"),
            Err(AssignmentError::Corrupt { .. })
        ));
        let restored = store.restore(&["c1".to_string()]);
        assert!(restored.held.is_empty());
        assert!(
            restored.problems[0].contains("not an assignment"),
            "{:?}",
            restored.problems
        );
        assert!(
            store
                .save_if_newer("c1", &assignment(1, 0, &["a"]))
                .unwrap()
        );
        assert_eq!(store.load("c1").unwrap().unwrap().version, 1);
        assert!(matches!(store.path("../x"), Err(AssignmentError::Name(_))));
    }

    #[test]
    fn an_earlier_builds_single_file_is_a_fallback_until_the_first_per_coordinator_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        let old = assignment(12, 1, &["home"]);
        std::fs::write(store.legacy_path(), rmp_serde::to_vec_named(&old).unwrap()).unwrap();
        let names = ["c1".to_string(), "c2".to_string()];
        let restored = store.restore(&names);
        assert!(
            restored.held.is_empty(),
            "its version is nobody's in particular"
        );
        assert_eq!(restored.legacy, Some(old));
        // The first coordinator's own assignment, at a version below the legacy one, is taken
        // and replaces the legacy file.
        assert!(
            store
                .save_if_newer("c2", &assignment(1, 0, &["api"]))
                .unwrap()
        );
        assert!(!store.legacy_path().exists());
        let restored = store.restore(&names);
        assert!(restored.legacy.is_none());
        assert_eq!(restored.held.describe(), "c2 v1");

        // A legacy file left next to per-coordinator ones (a crash mid-migration) is ignored.
        std::fs::write(
            store.legacy_path(),
            rmp_serde::to_vec_named(&assignment(99, 0, &["x"])).unwrap(),
        )
        .unwrap();
        assert!(store.restore(&names).legacy.is_none());
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
        let dir = tempfile::tempdir().unwrap();
        let store = AssignmentStore::in_dir(dir.path());
        store.save("c1", &assignment(1, 0, &["a", "a"])).unwrap();
        let restored = store.restore(&["c1".to_string()]);
        assert!(restored.held.is_empty());
        assert!(restored.problems[0].contains("twice"));
    }

    #[test]
    fn the_merge_is_the_union_with_the_first_coordinator_winning_spec_and_slot() {
        let mut a = assignment(3, 1, &["home", "shared", "clash"]);
        a.slots = 2;
        let mut b = assignment(8, 2, &["api", "shared", "clash"]);
        b.slots = 3;
        // Same id, different interval: a different check.
        b.checks[2].interval = Duration::from_secs(10);
        let h = held(&[("a", Some(a.clone())), ("b", Some(b.clone()))]);
        let m = merge(&h);
        let got: Vec<(&str, u32, u32, &str)> = m
            .checks
            .iter()
            .map(|p| {
                (
                    p.check.id.as_str(),
                    p.slot.index,
                    p.slot.count,
                    p.coordinator.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("home", 1, 2, "a"),
                ("shared", 1, 2, "a"),
                ("clash", 1, 2, "a"),
                ("api", 2, 3, "b"),
            ]
        );
        assert_eq!(
            m.checks[2].check, a.checks[2],
            "the first coordinator's spec runs"
        );
        assert_eq!(
            m.conflicts,
            [Conflict {
                check: CheckId::parse("clash").unwrap(),
                winner: "a".into(),
                loser: "b".into(),
            }]
        );
        // Configuration order decides, not versions or arrival.
        let flipped = merge(&held(&[("b", Some(b.clone())), ("a", Some(a.clone()))]));
        assert_eq!(flipped.checks[0].check.id.as_str(), "api");
        let clash = flipped
            .checks
            .iter()
            .find(|p| p.check.id.as_str() == "clash")
            .unwrap();
        assert_eq!((clash.coordinator.as_str(), clash.slot.index), ("b", 2));
        // A coordinator without an assignment takes no part; nothing held merges to nothing.
        let partial = merge(&held(&[("a", None), ("b", Some(b.clone()))]));
        assert_eq!(partial.checks.len(), 3);
        assert!(partial.checks.iter().all(|p| p.coordinator == "b"));
        assert_eq!(merge(&held(&[("a", None)])), Merged::default());
    }

    #[test]
    fn each_coordinator_is_delivered_what_it_assigned_and_runs_as_assigned() {
        let a = assignment(3, 1, &["home", "shared", "clash"]);
        let mut b = assignment(8, 2, &["api", "shared", "clash"]);
        b.checks[2].interval = Duration::from_secs(10);
        let h = held(&[("a", Some(a)), ("b", Some(b)), ("c", None)]);
        assert_eq!(
            ids(&deliverable(&h, "a").unwrap()),
            ["clash", "home", "shared"]
        );
        // b's "clash" lost to a different spec: its results are not b's data.
        assert_eq!(ids(&deliverable(&h, "b").unwrap()), ["api", "shared"]);
        assert_eq!(deliverable(&h, "c"), None, "nothing known to deliver yet");
        assert_eq!(deliverable(&h, "nobody"), None);
    }
}
