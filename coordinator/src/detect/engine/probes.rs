//! The probes of the topology in force, as the engine keeps them: a list in id order with a
//! hash index beside it, and each target's per-probe tracks by a slot number.
//!
//! Every result looks its probe up by id, so the lookup is a hash of the id (FxHash: the ids
//! are our own, not attacker-chosen). Everything that walks the probes — silences, clocks,
//! bursts — walks them in id order, as it did when they lived in a `BTreeMap`: findings and
//! burst orders come out in that order, and the same inputs must give the same incidents.
//! Each probe id gets a slot number the first time it is seen, kept for the engine's life, and
//! a target's tracks are a vector by slot.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::{ProbeInfo, Track};

/// One probe's state.
#[derive(Debug)]
pub(super) struct ProbeState {
    pub(super) info: ProbeInfo,
    /// Its place in every target's [`Tracks`], for good: a probe revoked and enrolled again
    /// finds its baselines where it left them.
    pub(super) slot: usize,
    pub(super) last_heartbeat_ms: Option<i64>,
    pub(super) clock_offset_ms: i64,
    pub(super) quarantined: bool,
}

/// Probes by id: a list sorted by id, the index of each id in it, and every id's track slot.
#[derive(Debug, Default)]
pub(super) struct ProbeTable {
    list: Vec<ProbeState>,
    index: FxHashMap<String, usize>,
    /// Track slots of every probe ever known, never reused.
    slots: FxHashMap<String, usize>,
}

impl ProbeTable {
    /// Replaces the probes with these. Probes that stay keep their state (the info is
    /// updated); when an id appears twice the last one wins, with fresh state.
    pub(super) fn replace(&mut self, infos: Vec<ProbeInfo>) {
        let mut old: FxHashMap<String, ProbeState> = std::mem::take(&mut self.list)
            .into_iter()
            .map(|p| (p.info.id.clone(), p))
            .collect();
        let mut probes: BTreeMap<String, ProbeState> = BTreeMap::new();
        for info in infos {
            let state = match old.remove(&info.id) {
                Some(mut s) => {
                    s.info = info;
                    s
                }
                None => {
                    let next = self.slots.len();
                    let slot = *self.slots.entry(info.id.clone()).or_insert(next);
                    ProbeState {
                        info,
                        slot,
                        last_heartbeat_ms: None,
                        clock_offset_ms: 0,
                        quarantined: false,
                    }
                }
            };
            probes.insert(state.info.id.clone(), state);
        }
        self.index.clear();
        for (id, state) in probes {
            self.index.insert(id, self.list.len());
            self.list.push(state);
        }
    }

    /// The probe at a position in id order.
    pub(super) fn at(&self, i: usize) -> &ProbeState {
        &self.list[i]
    }

    pub(super) fn get(&self, id: &str) -> Option<&ProbeState> {
        self.index.get(id).map(|&i| &self.list[i])
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut ProbeState> {
        self.index.get(id).map(|&i| &mut self.list[i])
    }

    /// Every probe, in id order.
    pub(super) fn values(&self) -> std::slice::Iter<'_, ProbeState> {
        self.list.iter()
    }
}

/// One target's tracks, by probe slot: a result reaches its (target, probe) state by index,
/// without comparing ids.
#[derive(Debug, Default)]
pub(super) struct Tracks {
    tracks: Vec<Option<Box<Track>>>,
    /// Per slot, the time and round-trip z-score of the newest scheduled sample (neither burst
    /// nor late) the track keeps: what the drift test reads of every judged probe once per
    /// interval, kept dense so that it does not walk every track's samples.
    newest: Vec<Option<(i64, Option<f64>)>>,
}

impl Tracks {
    pub(super) fn get(&self, slot: usize) -> Option<&Track> {
        self.tracks.get(slot).and_then(|t| t.as_deref())
    }

    /// The track at `slot`, created empty if there is none.
    pub(super) fn get_or_default(&mut self, slot: usize) -> &mut Track {
        if self.tracks.len() <= slot {
            self.tracks.resize_with(slot + 1, || None);
            self.newest.resize(slot + 1, None);
        }
        self.tracks[slot].get_or_insert_default()
    }

    /// Records the newest scheduled sample of the track at `slot` after its samples changed.
    pub(super) fn set_newest_scheduled(&mut self, slot: usize, newest: Option<(i64, Option<f64>)>) {
        if let Some(n) = self.newest.get_mut(slot) {
            *n = newest;
        }
    }

    /// The round-trip z-score of the newest scheduled sample taken in `(since, now]`, if it
    /// has one: `None` when the track has no such sample.
    pub(super) fn fresh_scheduled_z(&self, slot: usize, now: i64, since: i64) -> Option<f64> {
        match self.newest.get(slot).copied().flatten() {
            // Every sample after it is a burst run or late, and as new or newer.
            Some((t, z)) if t <= now => z.filter(|_| t > since),
            // Taken after `now` (a clock stepped back): look further back.
            Some(_) => self.get(slot)?.scheduled_z(now, since),
            None => None,
        }
    }
}
