//! The probe's durable result spool: every result is appended here first and uploaded later, to
//! one or more coordinators, each with its own cursor over the same records. Nothing is lost to
//! a crash or a cut link, and the spool is bounded by size and age.
//!
//! This module is one cohesive state machine (segments, cursors, bounds, recovery), so it stays
//! in one file; the on-disk formats are in [`segment`] (record framing) and [`cursor`] (cursor
//! files). Payloads are opaque bytes: the agent stores `rmp_serde::to_vec_named(&CheckResult)`.
//!
//! # Blocking
//! The spool does plain `std::fs` I/O and fsyncs; it is not async. The agent calls it from
//! `tokio::task::spawn_blocking` (behind a mutex: every method takes `&mut self`).
//!
//! # Layout
//! A directory holding append-only segment files `00000000000000000001.seg` (named by their
//! first sequence number, zero-padded so they sort), one `cursor-NAME` file per coordinator and
//! a `LOCK` file that keeps a second process out. Sequence numbers start at 1, are per probe and
//! increase by one per record; records in a segment run without a gap from its first number.
//!
//! # Cost
//! 24 bytes of framing per record (length, CRC32, sequence, timestamp — see [`segment`]); a
//! `CheckResult` as named MessagePack is a few hundred bytes, so framing is ~5–10 % and a million
//! results take roughly 300–500 MB. One `write` syscall per append, one `fdatasync` per batch.
//! So the defaults bind by size first on a busy probe: at 1,000 checks a minute the 256 MiB
//! bound holds about ten hours of results, and the 7-day age bound matters only below ~20 a
//! minute. Size `max_bytes` to the outage a probe must ride out.
//! The timestamp is 8 bytes more than a bare `len|crc|seq` frame; it buys an exact age bound
//! that survives restarts with no clock read (segment mtimes would need one, and lie after a
//! copy or a restore).
//!
//! # Durability, exactly
//! - After [`Spool::append`] returns, the record is in the OS page cache: it survives a crash of
//!   the probe process, not a power loss or kernel crash.
//! - After [`Spool::sync`] returns, every record appended before it is on disk (`fdatasync` of
//!   the active segment). A segment is also synced when it is sealed by rotation, and a new
//!   segment's directory entry is fsynced when it is created. With `sync_every = N`, `append`
//!   syncs itself every N records, so at most N−1 records are exposed to a power loss.
//! - [`Spool::read_after`] and [`Spool::read_from`] sync before reading: a record is handed to a
//!   coordinator only once it is durable. This matters because after a power loss a torn tail's
//!   sequence numbers are assigned again; had a coordinator seen the lost record, its
//!   idempotent ingest on (probe, seq) would discard the new one as a duplicate.
//! - After [`Spool::ack`] returns, the cursor's new position is on disk (temp file + rename +
//!   directory fsync).
//! - Deleting segments is not fsynced: a deleted segment that comes back after a power loss is
//!   simply read again, and its records are filtered out by the cursors or dropped by bounds.
//!
//! # Bounds and garbage collection
//! Only whole segments go, oldest first, and never the active one (so the newest sequence number
//! is always on disk: numbering never restarts, even when everything older was deleted).
//! - Size: before each append, the oldest segments are dropped until the new record fits under
//!   `max_bytes`. Since `segment_bytes <= max_bytes`, the files never total more than `max_bytes`.
//! - Age: a segment is dropped once its newest record's time (the `now` given to `append`) is
//!   older than `now - max_age`, checked on every append and by [`Spool::expire`] (call it on a
//!   timer when idle); an all-expired active segment is sealed first so that it can go too.
//! - Records dropped by a bound that some cursor had not acknowledged are counted in
//!   `dropped_records` and logged at WARN with their sequence range. A cursor behind the oldest
//!   retained record simply resumes at it.
//! - Garbage collection: after an ack, sealed segments that every *declared* cursor has
//!   acknowledged entirely are deleted. With no cursor declared nothing is collected; the bounds
//!   still hold.
//!
//! # Which cursors exist
//! Exactly the declared ones: the names given to [`Spool::open`], or later to
//! [`Spool::set_cursors`] (a reload of `probe.toml` that adds or removes coordinators). A name
//! no longer declared is forgotten and its file deleted, at open as at a reload, so a removed
//! coordinator never holds back garbage collection, and a coordinator added later under the
//! same name starts from the oldest retained record instead of inheriting a stranger's
//! position. That costs nothing when it is the same coordinator: its `HelloAck` says what it
//! already stores, and the uplink moves the new cursor there before sending anything.
//!
//! # Recovery
//! On open every segment is scanned and every record's checksum checked (a full 256 MiB spool is
//! read once at start-up). A bad record in the last segment is what a crash mid-write leaves: the
//! file is truncated just before it, with a WARN line, and appends go on from there. A bad record
//! in a sealed segment (which was synced before the next one was created) is media corruption:
//! the rest of that segment is not read, the records lost are counted exactly in
//! `corrupt_records` (sequence numbers have no gaps, so the next segment's name tells how many),
//! and the file is left as it is for inspection. Corruption found later by a read is handled the
//! same way. Nothing panics and every loop advances by a whole record or a whole segment.
//!
//! Not here: what a record means (the agent), uploading and retries (the uplink), and clock
//! reads (every time is an argument).

mod cursor;
mod error;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::SpoolError;
use error::io_err;
use segment::{FRAME_HEADER, Next};

/// Whether `name` may name a cursor: 1 to 64 ASCII letters, digits, `_` or `-` (it becomes
/// part of a file name). `probe.toml` checks coordinator names with it.
pub fn valid_cursor_name(name: &str) -> bool {
    cursor::valid_name(name)
}

/// How big segments get, and how the spool is bounded and synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// A new segment is started when the next record would take the active one past this many
    /// bytes (default 8 MiB). Must be at least `max_record_bytes` + 24 and at most `max_bytes`.
    pub segment_bytes: u64,
    /// The most bytes all segment files may take together (default 256 MiB).
    pub max_bytes: u64,
    /// Records older than this, by the time they were appended with, are dropped (default 7 days).
    pub max_age: Duration,
    /// The largest payload accepted by `append`, and believed when reading (default 1 MiB): a
    /// corrupt length field never makes the spool allocate more. Lowering it makes larger records
    /// already spooled read as corrupt.
    pub max_record_bytes: u32,
    /// `append` calls `sync` itself after this many unsynced records; 0 leaves syncing to the
    /// caller (default 0: the agent syncs once per batch of results).
    pub sync_every: usize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            segment_bytes: 8 << 20,
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_record_bytes: 1 << 20,
            sync_every: 0,
        }
    }
}

impl SpoolConfig {
    fn validate(&self) -> Result<(), SpoolError> {
        if self.max_record_bytes == 0 {
            return Err(SpoolError::InvalidConfig(
                "max_record_bytes must be positive",
            ));
        }
        if self.segment_bytes < FRAME_HEADER + u64::from(self.max_record_bytes) {
            return Err(SpoolError::InvalidConfig(
                "segment_bytes must hold the largest record (max_record_bytes + 24)",
            ));
        }
        if self.segment_bytes > self.max_bytes {
            return Err(SpoolError::InvalidConfig(
                "segment_bytes must not exceed max_bytes",
            ));
        }
        Ok(())
    }
}

/// One record handed back for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its per-probe sequence number.
    pub seq: u64,
    /// The bytes given to `append`.
    pub payload: Vec<u8>,
}

/// A snapshot of the spool's state, for metrics and `probe status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records retained (readable) on disk.
    pub records: u64,
    /// Bytes of all segment files.
    pub bytes: u64,
    /// Segment files, the active one included.
    pub segments: usize,
    /// The oldest retained record's sequence number.
    pub oldest_seq: Option<u64>,
    /// The newest retained record's sequence number.
    pub newest_seq: Option<u64>,
    /// The number the next `append` will assign.
    pub next_seq: u64,
    /// Records dropped by the size or age bound before every cursor acknowledged them, since open.
    pub dropped_records: u64,
    /// Records lost to corruption in sealed segments, since open.
    pub corrupt_records: u64,
    /// Bytes cut off torn or corrupt segment tails at open.
    pub truncated_bytes: u64,
    /// Records appended since the last sync.
    pub unsynced_records: usize,
    /// Each declared cursor, in name order.
    pub cursors: Vec<CursorStats>,
}

/// Where one coordinator's cursor stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorStats {
    /// The cursor's name (the coordinator's).
    pub name: String,
    /// The highest sequence number it acknowledged (0: none).
    pub acked: u64,
    /// Retained records it has not acknowledged yet.
    pub lag: u64,
}

/// What [`Spool::set_cursors`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CursorChanges {
    /// Cursors declared now that were not before.
    pub added: Vec<String>,
    /// Cursors forgotten, their files deleted.
    pub removed: Vec<String>,
}

/// One segment file, as far as the spool knows it.
#[derive(Debug)]
struct Segment {
    /// Sequence number of its first record; also its file name.
    first_seq: u64,
    /// One past its last readable record; `first_seq` when it holds none.
    next_seq: u64,
    /// Bytes of the file (for the size bound), garbage after a corrupt record included.
    bytes: u64,
    /// Newest record time, ms since the epoch (0: no records), for the age bound.
    newest_ms: u64,
    /// Its path.
    path: PathBuf,
}

impl Segment {
    fn records(&self) -> u64 {
        self.next_seq - self.first_seq
    }
}

/// A declared cursor.
#[derive(Debug)]
struct Cursor {
    /// Highest acknowledged sequence number (0: none).
    acked: u64,
    /// Its file.
    path: PathBuf,
}

/// How many "where did the last read stop" positions are remembered, so that the next read
/// from there seeks instead of scanning its segment from the start.
const READ_HINTS: usize = 16;

/// The spool: see the module docs.
#[derive(Debug)]
pub struct Spool {
    /// The spool directory.
    dir: PathBuf,
    /// Bounds and policy.
    config: SpoolConfig,
    /// Segments, oldest first; never empty; the last one is the active segment.
    segments: VecDeque<Segment>,
    /// The active segment, opened for appending.
    active: File,
    /// Set when a failed write could not be undone: the next append starts a new segment rather
    /// than write after garbage.
    must_roll: bool,
    /// The number the next record gets.
    next_seq: u64,
    /// Records appended since the last sync.
    unsynced: usize,
    /// Declared cursors by name.
    cursors: BTreeMap<String, Cursor>,
    /// Sum of `segments[..].bytes`.
    total_bytes: u64,
    /// See `SpoolStats`.
    dropped_records: u64,
    /// See `SpoolStats`.
    corrupt_records: u64,
    /// See `SpoolStats`.
    truncated_bytes: u64,
    /// Next sequence number to read → (segment's first sequence number, byte offset).
    read_hints: BTreeMap<u64, (u64, u64)>,
    /// Reused frame buffer, so an append allocates nothing.
    frame: Vec<u8>,
    /// Holds the directory's lock for as long as the spool is open.
    _lock: File,
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after it).
fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` with the coordinators' cursor names,
    /// recovering from whatever a crash left (see the module docs).
    pub fn open<S: AsRef<str>>(
        dir: impl AsRef<Path>,
        cursor_names: &[S],
        config: SpoolConfig,
    ) -> Result<Spool, SpoolError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let lock = lock(&dir)?;

        let mut cursors = BTreeMap::new();
        for name in cursor_names {
            let name = name.as_ref();
            if !cursor::valid_name(name) {
                return Err(SpoolError::InvalidCursorName(name.to_owned()));
            }
            let path = cursor::path(&dir, name);
            let acked = cursor::load(&path)?.unwrap_or(0);
            if cursors
                .insert(name.to_owned(), Cursor { acked, path })
                .is_some()
            {
                return Err(SpoolError::DuplicateCursor(name.to_owned()));
            }
        }

        let mut firsts = Vec::new();
        // Undeclared cursors are deleted (see "Which cursors exist"), but what they had
        // acknowledged still counts for numbering (below).
        let mut forgotten_acked = 0;
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(first) = segment::parse_name(name) {
                firsts.push(first);
            } else if cursor::is_leftover_tmp(name) {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            } else if let Some(cursor_name) = cursor::parse_name(name)
                && !cursors.contains_key(cursor_name)
            {
                let path = entry.path();
                forgotten_acked =
                    forgotten_acked.max(cursor::load(&path).ok().flatten().unwrap_or(0));
                cursor::remove(&dir, &path)?;
                tracing::info!(
                    cursor = cursor_name,
                    "spool: cursor of a coordinator no longer configured deleted"
                );
            }
        }
        firsts.sort_unstable();

        let mut segments = VecDeque::with_capacity(firsts.len() + 1);
        let (mut corrupt_records, mut truncated_bytes) = (0, 0);
        for (i, &first_seq) in firsts.iter().enumerate() {
            let path = segment::path(&dir, first_seq);
            let scan = segment::scan(&path, first_seq, config.max_record_bytes)
                .map_err(io_err("read", &path))?;
            let mut bytes = scan.file_len;
            if let Some(why) = scan.bad {
                if let Some(&next_first) = firsts.get(i + 1) {
                    let lost = next_first.saturating_sub(scan.next_seq);
                    corrupt_records += lost;
                    tracing::warn!(
                        segment = %path.display(), offset = scan.valid_len, lost,
                        first_lost = scan.next_seq, reason = why,
                        "spool: corrupt record in a sealed segment; the rest of it is lost"
                    );
                } else {
                    let cut = scan.file_len - scan.valid_len;
                    truncated_bytes += cut;
                    tracing::warn!(
                        segment = %path.display(), offset = scan.valid_len, bytes = cut,
                        reason = why, "spool: truncating a torn tail (a crash mid-write)"
                    );
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err("open", &path))?;
                    file.set_len(scan.valid_len)
                        .map_err(io_err("truncate", &path))?;
                    file.sync_all().map_err(io_err("fsync", &path))?;
                    bytes = scan.valid_len;
                }
            }
            segments.push_back(Segment {
                first_seq,
                next_seq: scan.next_seq,
                bytes,
                newest_ms: scan.newest_ms,
                path,
            });
        }

        // Never reuse a number a coordinator may have seen: a cursor that acknowledged beyond
        // what is on disk (only possible if the disk lost synced data) pushes numbering past it.
        let max_acked = cursors
            .values()
            .map(|c| c.acked)
            .max()
            .unwrap_or(0)
            .max(forgotten_acked);
        let next_seq = segments
            .back()
            .map_or(1, |s| s.next_seq)
            .max(max_acked.saturating_add(1));
        let active = if let Some(last) = segments.back().filter(|s| s.next_seq == next_seq) {
            let path = &last.path;
            let file = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io_err("open", path))?;
            // What the last run appended may still be only in the page cache.
            file.sync_data().map_err(io_err("fdatasync", path))?;
            file
        } else {
            let (seg, file) = create_segment(&dir, next_seq)?;
            segments.push_back(seg);
            file
        };
        let total_bytes = segments.iter().map(|s| s.bytes).sum();
        let spool = Spool {
            dir,
            config,
            segments,
            active,
            must_roll: false,
            next_seq,
            unsynced: 0,
            cursors,
            total_bytes,
            dropped_records: 0,
            corrupt_records,
            truncated_bytes,
            read_hints: BTreeMap::new(),
            frame: Vec::new(),
            _lock: lock,
        };
        tracing::debug!(dir = %spool.dir.display(), next_seq, segments = spool.segments.len(),
            "spool opened");
        Ok(spool)
    }

    /// Appends one record with the time it is appended at (normally now; it drives the age
    /// bound) and returns its sequence number. First applies the age and size bounds, which may
    /// drop the oldest segments. Durable only after a sync (see the module docs).
    pub fn append(&mut self, payload: &[u8], now: SystemTime) -> Result<u64, SpoolError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l <= self.config.max_record_bytes)
            .ok_or(SpoolError::RecordTooLarge {
                len: payload.len(),
                max: self.config.max_record_bytes,
            })?;
        let now_ms = millis(now);
        self.expire_ms(now_ms)?;
        let frame_len = FRAME_HEADER + u64::from(len);
        if self.must_roll
            || (self.active_segment().bytes > 0
                && self.active_segment().bytes + frame_len > self.config.segment_bytes)
        {
            self.roll()?;
        }
        while self.total_bytes + frame_len > self.config.max_bytes && self.segments.len() > 1 {
            self.drop_oldest("size bound")?;
        }

        let seq = self.next_seq;
        segment::encode(&mut self.frame, len, seq, now_ms, payload);
        if let Err(e) = self.active.write_all(&self.frame) {
            // Undo a partial write so that the next record does not follow garbage.
            let before = self.active_segment().bytes;
            if self.active.set_len(before).is_err() {
                self.must_roll = true;
            }
            return Err(io_err("write", &self.active_segment().path)(e));
        }
        self.next_seq += 1;
        self.total_bytes += frame_len;
        let seg = self.active_segment_mut();
        seg.next_seq = seq + 1;
        seg.bytes += frame_len;
        seg.newest_ms = seg.newest_ms.max(now_ms);
        self.unsynced += 1;
        if self.config.sync_every > 0 && self.unsynced >= self.config.sync_every {
            self.sync()?;
        }
        Ok(seq)
    }

    /// Makes every record appended so far durable (`fdatasync` of the active segment; sealed
    /// segments were synced when sealed). Does nothing when nothing is pending.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.unsynced > 0 {
            self.active
                .sync_data()
                .map_err(io_err("fdatasync", &self.segments_back_path()))?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Applies the age bound as of `now` without appending: drops every segment whose newest
    /// record is older than `now - max_age`, sealing the active segment first if all of it is.
    pub fn expire(&mut self, now: SystemTime) -> Result<(), SpoolError> {
        self.expire_ms(millis(now))
    }

    /// Up to `max_records` records after the cursor's acknowledged position, oldest first,
    /// within `max_bytes` of payload (the first record always comes, so a large one cannot stall
    /// the upload). Records the bounds dropped are skipped. Syncs first (see the module docs).
    pub fn read_from(
        &mut self,
        cursor: &str,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, SpoolError> {
        let after = self.cursor(cursor)?.acked;
        self.read_after(after, max_records, max_bytes)
    }

    /// Like [`Spool::read_from`], but from any position: the records with a sequence number
    /// greater than `after`. Lets an uploader keep several batches in flight before acks.
    pub fn read_after(
        &mut self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, SpoolError> {
        self.sync()?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut i = 0;
        while i < self.segments.len() && out.len() < max_records {
            let seg = &self.segments[i];
            i += 1;
            if seg.next_seq <= after.saturating_add(1) || seg.records() == 0 {
                continue;
            }
            let (first_seq, end, path) = (seg.first_seq, seg.next_seq, seg.path.clone());
            let want = after.saturating_add(1).max(first_seq);
            let (mut expect, mut offset) = match self.read_hints.remove(&want) {
                Some((hint_first, off)) if hint_first == first_seq => (want, off),
                _ => (first_seq, 0),
            };
            let mut r = segment::reader(&path, offset).map_err(io_err("read", &path))?;
            while expect < end {
                if out.len() >= max_records {
                    self.remember(expect, first_seq, offset);
                    return Ok(out);
                }
                let frame = match segment::read_frame(&mut r, self.config.max_record_bytes)
                    .map_err(io_err("read", &path))?
                {
                    Next::Record(f) if f.seq == expect => f,
                    Next::Record(_) => {
                        self.corrupt_at(i - 1, expect, offset, "record out of sequence")?;
                        break;
                    }
                    Next::Bad(why) => {
                        self.corrupt_at(i - 1, expect, offset, why)?;
                        break;
                    }
                    Next::End => {
                        self.corrupt_at(i - 1, expect, offset, "segment shorter than indexed")?;
                        break;
                    }
                };
                if frame.seq > after {
                    if !out.is_empty() && bytes + frame.payload.len() > max_bytes {
                        self.remember(expect, first_seq, offset);
                        return Ok(out);
                    }
                    bytes += frame.payload.len();
                }
                offset += frame.disk_len();
                expect += 1;
                if frame.seq > after {
                    out.push(Record {
                        seq: frame.seq,
                        payload: frame.payload,
                    });
                }
            }
            if expect == end {
                self.remember(expect, first_seq, offset);
            }
        }
        Ok(out)
    }

    /// Advances the cursor to `up_to` (never backwards: a lower value is ignored), durably, then
    /// deletes the sealed segments every declared cursor has now acknowledged.
    pub fn ack(&mut self, cursor: &str, up_to: u64) -> Result<(), SpoolError> {
        let newest = self.next_seq - 1;
        let dir = self.dir.clone();
        let c = self.cursor_mut(cursor)?;
        if up_to > newest {
            return Err(SpoolError::AckBeyondNewest {
                cursor: cursor.to_owned(),
                seq: up_to,
                newest,
            });
        }
        if up_to <= c.acked {
            return Ok(());
        }
        cursor::store(&dir, &c.path, up_to)?;
        c.acked = up_to;
        self.collect_garbage()
    }

    /// Declares exactly `names` as the cursors, as [`Spool::open`] would (a reload of
    /// `probe.toml`): a new name starts from its cursor file if it has one, else with nothing
    /// acknowledged; a name no longer declared is forgotten and its file deleted, and the
    /// segments only it held back are collected at once. Names are checked before anything
    /// changes; on an I/O error the cursors added so far stay declared, and so do the removed
    /// ones not yet deleted.
    pub fn set_cursors<S: AsRef<str>>(&mut self, names: &[S]) -> Result<CursorChanges, SpoolError> {
        let mut wanted: Vec<&str> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            if !cursor::valid_name(name) {
                return Err(SpoolError::InvalidCursorName(name.to_owned()));
            }
            if wanted.contains(&name) {
                return Err(SpoolError::DuplicateCursor(name.to_owned()));
            }
            wanted.push(name);
        }
        let mut changes = CursorChanges::default();
        for name in &wanted {
            if !self.cursors.contains_key(*name) {
                let path = cursor::path(&self.dir, name);
                let acked = cursor::load(&path)?.unwrap_or(0).min(self.next_seq - 1);
                self.cursors
                    .insert((*name).to_owned(), Cursor { acked, path });
                changes.added.push((*name).to_owned());
            }
        }
        let gone: Vec<String> = self
            .cursors
            .keys()
            .filter(|n| !wanted.contains(&n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(c) = self.cursors.get(&name) {
                cursor::remove(&self.dir, &c.path)?;
            }
            self.cursors.remove(&name);
            changes.removed.push(name);
        }
        if !changes.removed.is_empty() {
            self.collect_garbage()?;
        }
        Ok(changes)
    }

    /// Replaces the bounds and policy (a reload of `probe.toml`), checked as at open. They
    /// apply from the next `append` or `expire`: segments already written keep their size, and
    /// a smaller `max_bytes` drops the oldest segments at the next append.
    pub fn set_config(&mut self, config: SpoolConfig) -> Result<(), SpoolError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The bounds and policy in force.
    pub fn config(&self) -> &SpoolConfig {
        &self.config
    }

    /// A snapshot of counts and positions.
    pub fn stats(&self) -> SpoolStats {
        let with_records = || self.segments.iter().filter(|s| s.records() > 0);
        let lag = |acked: u64| -> u64 {
            self.segments
                .iter()
                .map(|s| {
                    s.next_seq
                        .saturating_sub(s.first_seq.max(acked.saturating_add(1)))
                })
                .sum()
        };
        SpoolStats {
            records: self.segments.iter().map(Segment::records).sum(),
            bytes: self.total_bytes,
            segments: self.segments.len(),
            oldest_seq: with_records().next().map(|s| s.first_seq),
            newest_seq: with_records().next_back().map(|s| s.next_seq - 1),
            next_seq: self.next_seq,
            dropped_records: self.dropped_records,
            corrupt_records: self.corrupt_records,
            truncated_bytes: self.truncated_bytes,
            unsynced_records: self.unsynced,
            cursors: self
                .cursors
                .iter()
                .map(|(name, c)| CursorStats {
                    name: name.clone(),
                    acked: c.acked,
                    lag: lag(c.acked),
                })
                .collect(),
        }
    }

    fn cursor(&self, name: &str) -> Result<&Cursor, SpoolError> {
        self.cursors
            .get(name)
            .ok_or_else(|| SpoolError::UnknownCursor(name.to_owned()))
    }

    fn cursor_mut(&mut self, name: &str) -> Result<&mut Cursor, SpoolError> {
        self.cursors
            .get_mut(name)
            .ok_or_else(|| SpoolError::UnknownCursor(name.to_owned()))
    }

    fn active_segment(&self) -> &Segment {
        self.segments
            .back()
            .expect("the spool always has an active segment")
    }

    fn active_segment_mut(&mut self) -> &mut Segment {
        self.segments
            .back_mut()
            .expect("the spool always has an active segment")
    }

    fn segments_back_path(&self) -> PathBuf {
        self.active_segment().path.clone()
    }

    /// Remembers that sequence `seq` starts at `offset` of the segment starting at `first_seq`.
    fn remember(&mut self, seq: u64, first_seq: u64, offset: u64) {
        self.read_hints.insert(seq, (first_seq, offset));
        while self.read_hints.len() > READ_HINTS {
            self.read_hints.pop_first();
        }
    }

    /// A read found segment `index` bad from sequence `seq` (at `offset`) on: what follows in it
    /// is lost. Counts and logs it; an active segment is sealed so appends go to a clean file.
    fn corrupt_at(
        &mut self,
        index: usize,
        seq: u64,
        offset: u64,
        why: &'static str,
    ) -> Result<(), SpoolError> {
        let is_active = index + 1 == self.segments.len();
        let Some(seg) = self.segments.get_mut(index) else {
            return Ok(());
        };
        let lost = seg.next_seq - seq;
        self.corrupt_records += lost;
        tracing::warn!(
            segment = %seg.path.display(), offset, lost, first_lost = seq, reason = why,
            "spool: corrupt record found while reading; the rest of the segment is lost"
        );
        seg.next_seq = seq;
        if is_active {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment (synced) and starts a new one at the next sequence number.
    fn roll(&mut self) -> Result<(), SpoolError> {
        let path = self.segments_back_path();
        self.active
            .sync_data()
            .map_err(io_err("fdatasync", &path))?;
        self.unsynced = 0;
        if self.must_roll {
            // A failed write left an unknown tail: account for the file as it is.
            let len = self.active.metadata().map_err(io_err("stat", &path))?.len();
            let seg = self.active_segment_mut();
            let grown = len.saturating_sub(seg.bytes);
            seg.bytes += grown;
            self.total_bytes += grown;
        }
        let (seg, file) = create_segment(&self.dir, self.next_seq)?;
        self.segments.push_back(seg);
        self.active = file;
        self.must_roll = false;
        Ok(())
    }

    /// Drops the oldest (sealed) segment because of a bound, counting and logging the records
    /// some cursor had not acknowledged.
    fn drop_oldest(&mut self, reason: &'static str) -> Result<(), SpoolError> {
        let Some(seg) = self.segments.front().filter(|_| self.segments.len() > 1) else {
            return Ok(());
        };
        fs::remove_file(&seg.path).map_err(io_err("remove", &seg.path))?;
        let min_acked = self.cursors.values().map(|c| c.acked).min().unwrap_or(0);
        let from = seg.first_seq.max(min_acked.saturating_add(1));
        let lost = seg.next_seq.saturating_sub(from);
        if lost > 0 {
            self.dropped_records += lost;
            tracing::warn!(
                reason,
                records = lost,
                first_seq = from,
                last_seq = seg.next_seq - 1,
                "spool bound hit: dropped unacknowledged records, oldest first"
            );
        }
        self.total_bytes -= seg.bytes;
        self.segments.pop_front();
        Ok(())
    }

    fn expire_ms(&mut self, now_ms: u64) -> Result<(), SpoolError> {
        let max_age = u64::try_from(self.config.max_age.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms.saturating_sub(max_age);
        let active = self.active_segment();
        if self.segments.len() == 1 && active.records() > 0 && active.newest_ms < cutoff {
            self.roll()?;
        }
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.newest_ms < cutoff)
        {
            self.drop_oldest("age bound")?;
        }
        Ok(())
    }

    /// Deletes sealed segments every declared cursor acknowledged entirely.
    fn collect_garbage(&mut self) -> Result<(), SpoolError> {
        let Some(min_acked) = self.cursors.values().map(|c| c.acked).min() else {
            return Ok(());
        };
        while self.segments.len() > 1 {
            let Some(seg) = self
                .segments
                .front()
                .filter(|s| s.next_seq <= min_acked.saturating_add(1))
            else {
                break;
            };
            fs::remove_file(&seg.path).map_err(io_err("remove", &seg.path))?;
            tracing::debug!(
                first_seq = seg.first_seq,
                last_seq = seg.next_seq.saturating_sub(1),
                "spool: collected an acknowledged segment"
            );
            self.total_bytes -= seg.bytes;
            self.segments.pop_front();
        }
        Ok(())
    }
}

/// Creates the empty segment that starts at `first_seq` and makes its directory entry durable.
fn create_segment(dir: &Path, first_seq: u64) -> Result<(Segment, File), SpoolError> {
    let path = segment::path(dir, first_seq);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("create", &path))?;
    cursor::sync_dir(dir)?;
    let seg = Segment {
        first_seq,
        next_seq: first_seq,
        bytes: 0,
        newest_ms: 0,
        path,
    };
    Ok((seg, file))
}

/// Takes the directory's `LOCK` file, so that two processes never append to one spool.
fn lock(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SpoolError::Locked { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err("lock", &path)(e)),
    }
}
