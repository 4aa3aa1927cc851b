//! Spool tests: round trips, reopen, cursors and garbage collection, crash and corruption
//! recovery, the size and age bounds, and a model test against a `BTreeMap` reference.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;

const T0: Duration = Duration::from_secs(1_800_000_000);

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + T0 + Duration::from_secs(secs)
}

/// Small segments, so that a few records already rotate.
fn small() -> SpoolConfig {
    SpoolConfig {
        segment_bytes: 200,
        max_bytes: 1 << 20,
        max_record_bytes: 64,
        ..SpoolConfig::default()
    }
}

fn payload(seq: u64) -> Vec<u8> {
    format!("result-{seq:04}").into_bytes()
}

fn open(dir: &Path, config: SpoolConfig) -> Spool {
    Spool::open(dir, &["coord-a", "coord-b"], config).unwrap()
}

fn append_n(spool: &mut Spool, n: u64) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let seq = spool.stats().next_seq;
            spool.append(&payload(seq), at(0)).unwrap()
        })
        .collect()
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn append_read_ack_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), SpoolConfig::default());
    assert_eq!(append_n(&mut spool, 5), vec![1, 2, 3, 4, 5]);
    let got = spool.read_from("coord-a", 100, 1 << 20).unwrap();
    assert_eq!(seqs(&got), vec![1, 2, 3, 4, 5]);
    assert_eq!(got[2].payload, payload(3));
    assert_eq!(spool.stats().unsynced_records, 0, "reading syncs first");

    // Limits: by count, and by bytes (the first record always comes).
    assert_eq!(
        seqs(&spool.read_from("coord-a", 2, 1 << 20).unwrap()),
        vec![1, 2]
    );
    assert_eq!(seqs(&spool.read_from("coord-a", 100, 1).unwrap()), vec![1]);
    assert_eq!(
        seqs(&spool.read_from("coord-a", 100, 22).unwrap()),
        vec![1, 2]
    );

    spool.ack("coord-a", 3).unwrap();
    spool.ack("coord-a", 2).unwrap(); // never backwards
    assert_eq!(
        seqs(&spool.read_from("coord-a", 100, 1 << 20).unwrap()),
        vec![4, 5]
    );
    assert_eq!(seqs(&spool.read_after(4, 100, 1 << 20).unwrap()), vec![5]);
    let stats = spool.stats();
    assert_eq!(
        (stats.records, stats.oldest_seq, stats.newest_seq),
        (5, Some(1), Some(5))
    );
    assert_eq!(stats.cursors[0].lag, 2);
    assert_eq!(stats.cursors[1].lag, 5);

    assert!(matches!(
        spool.read_from("coord-z", 1, 1),
        Err(SpoolError::UnknownCursor(_))
    ));
    assert!(matches!(
        spool.ack("coord-z", 1),
        Err(SpoolError::UnknownCursor(_))
    ));
    assert!(matches!(
        spool.ack("coord-a", 6),
        Err(SpoolError::AckBeyondNewest {
            seq: 6,
            newest: 5,
            ..
        })
    ));
}

#[test]
fn rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    assert!(matches!(
        spool.append(&[0; 65], at(0)),
        Err(SpoolError::RecordTooLarge { len: 65, max: 64 })
    ));
    assert_eq!(spool.append(&[0; 64], at(0)).unwrap(), 1);
    assert!(matches!(
        Spool::open(dir.path(), &["x"], small()),
        Err(SpoolError::Locked { .. })
    ));
    drop(spool);
    let other = tempfile::tempdir().unwrap();
    for bad in ["", "a/b", "a.tmp", &"x".repeat(65)] {
        assert!(matches!(
            Spool::open(other.path(), &[bad], small()),
            Err(SpoolError::InvalidCursorName(_))
        ));
    }
    assert!(matches!(
        Spool::open(other.path(), &["a", "a"], small()),
        Err(SpoolError::DuplicateCursor(_))
    ));
    fs::write(other.path().join("cursor-a"), "not a number\n").unwrap();
    assert!(matches!(
        Spool::open(other.path(), &["a"], small()),
        Err(SpoolError::BadCursorFile { .. })
    ));
    fs::write(other.path().join("cursor-a"), "7\n").unwrap();
    fs::write(other.path().join("cursor-a.tmp"), "8").unwrap(); // a crash mid-ack
    let spool = Spool::open(other.path(), &["a"], small()).unwrap();
    assert_eq!(spool.stats().cursors[0].acked, 7);
    assert_eq!(
        spool.stats().next_seq,
        8,
        "past what any coordinator acknowledged"
    );
    assert!(!other.path().join("cursor-a.tmp").exists());
    drop(spool);
    let config = SpoolConfig {
        segment_bytes: 10,
        ..small()
    };
    assert!(matches!(
        Spool::open(other.path(), &["a"], config),
        Err(SpoolError::InvalidConfig(_))
    ));
}

#[test]
fn numbering_and_cursors_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    append_n(&mut spool, 20);
    spool.ack("coord-a", 20).unwrap();
    spool.ack("coord-b", 20).unwrap();
    assert_eq!(
        spool.stats().segments,
        1,
        "everything acknowledged is collected"
    );
    drop(spool);

    let mut spool = open(dir.path(), small());
    assert_eq!(spool.stats().cursors[0].acked, 20);
    assert!(spool.read_from("coord-a", 100, 1 << 20).unwrap().is_empty());
    assert_eq!(
        spool.append(b"x", at(0)).unwrap(),
        21,
        "numbers are never reused"
    );
    drop(spool);
    let mut spool = open(dir.path(), small());
    assert_eq!(
        seqs(&spool.read_from("coord-b", 100, 1 << 20).unwrap()),
        vec![21]
    );
}

#[test]
fn cursors_progress_independently_and_gc_waits_for_the_slowest() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    append_n(&mut spool, 30);
    let segments = spool.stats().segments;
    assert!(segments > 3, "small segments rotate: {segments}");

    spool.ack("coord-a", 30).unwrap();
    assert_eq!(
        spool.stats().segments,
        segments,
        "coord-b has acknowledged nothing"
    );
    assert_eq!(spool.read_from("coord-b", 100, 1 << 20).unwrap().len(), 30);
    assert!(spool.read_from("coord-a", 100, 1 << 20).unwrap().is_empty());

    spool.ack("coord-b", 12).unwrap();
    let stats = spool.stats();
    assert!(stats.segments < segments);
    assert!(
        stats.oldest_seq.unwrap() <= 13,
        "record 13 is kept: {stats:?}"
    );
    assert_eq!(stats.dropped_records, 0);
    assert_eq!(stats.cursors[1].lag, 18);
    assert_eq!(
        seqs(&spool.read_from("coord-b", 1, 1 << 20).unwrap()),
        vec![13]
    );
    assert_eq!(segment_files(dir.path()).len(), stats.segments);
}

fn cursor_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with("cursor-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_removed_cursor_stops_holding_back_collection_and_an_added_one_starts_at_the_oldest_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    append_n(&mut spool, 30);
    spool.ack("coord-a", 30).unwrap();
    spool.ack("coord-b", 5).unwrap();
    let segments = spool.stats().segments;
    assert!(segments > 3, "coord-b holds them back: {segments}");

    // coord-b leaves the configuration: its file goes, and so do the segments it held back.
    let changes = spool.set_cursors(&["coord-a"]).unwrap();
    assert_eq!(
        changes,
        CursorChanges {
            added: vec![],
            removed: vec!["coord-b".into()]
        }
    );
    assert_eq!(cursor_files(dir.path()), ["cursor-coord-a"]);
    assert_eq!(spool.stats().segments, 1, "everything coord-a acknowledged");
    assert!(matches!(
        spool.ack("coord-b", 6),
        Err(SpoolError::UnknownCursor(_))
    ));

    // coord-c joins: it is sent everything still retained, nothing is collected before it
    // acknowledges, and its position survives a reopen with the new names.
    append_n(&mut spool, 5);
    let changes = spool.set_cursors(&["coord-a", "coord-c"]).unwrap();
    assert_eq!(changes.added, ["coord-c"]);
    assert!(changes.removed.is_empty());
    let stats = spool.stats();
    let unsent = seqs(&spool.read_from("coord-c", 100, 1 << 20).unwrap());
    assert_eq!(unsent.first().copied(), stats.oldest_seq);
    assert_eq!(unsent.last(), Some(&35));
    spool.ack("coord-c", 33).unwrap();
    drop(spool);
    let spool = Spool::open(dir.path(), &["coord-a", "coord-c"], small()).unwrap();
    let acked: Vec<(String, u64)> = spool
        .stats()
        .cursors
        .into_iter()
        .map(|c| (c.name, c.acked))
        .collect();
    assert_eq!(acked, [("coord-a".into(), 30), ("coord-c".into(), 33)]);
}

#[test]
fn set_cursors_checks_every_name_before_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    append_n(&mut spool, 3);
    spool.ack("coord-b", 2).unwrap();
    assert!(matches!(
        spool.set_cursors(&["coord-a", "new", "new"]),
        Err(SpoolError::DuplicateCursor(n)) if n == "new"
    ));
    assert!(matches!(
        spool.set_cursors(&["coord-a", "no/slash"]),
        Err(SpoolError::InvalidCursorName(_))
    ));
    let names: Vec<String> = spool.stats().cursors.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["coord-a", "coord-b"]);
    assert_eq!(cursor_files(dir.path()), ["cursor-coord-b"]);
    // Declaring the same names again changes nothing.
    assert_eq!(
        spool.set_cursors(&["coord-b", "coord-a"]).unwrap(),
        CursorChanges::default()
    );
}

#[test]
fn opening_forgets_the_cursors_of_coordinators_no_longer_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    append_n(&mut spool, 10);
    spool.ack("coord-a", 10).unwrap();
    spool.ack("coord-b", 4).unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path(), &["coord-a"], small()).unwrap();
    assert_eq!(cursor_files(dir.path()), ["cursor-coord-a"]);
    // Only coord-a counts now: its next ack collects what coord-b held back.
    append_n(&mut spool, 1);
    spool.ack("coord-a", 11).unwrap();
    assert_eq!(spool.stats().segments, 1);
    assert_eq!(spool.stats().next_seq, 12);
}

#[test]
fn new_bounds_apply_from_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    for i in 0..20 {
        spool.append(&payload(i), at(0)).unwrap();
    }
    let bad = SpoolConfig {
        segment_bytes: 2 << 20,
        ..small()
    };
    assert!(matches!(
        spool.set_config(bad),
        Err(SpoolError::InvalidConfig(_))
    ));
    assert_eq!(
        spool.config(),
        &small(),
        "a refused configuration changes nothing"
    );
    spool.expire(at(61)).unwrap();
    assert_eq!(
        spool.stats().dropped_records,
        0,
        "a minute is nothing to 7 days"
    );
    let shorter = SpoolConfig {
        max_age: Duration::from_secs(60),
        ..small()
    };
    spool.set_config(shorter.clone()).unwrap();
    assert_eq!(spool.config(), &shorter);
    spool.expire(at(61)).unwrap();
    let stats = spool.stats();
    assert!(
        stats.dropped_records > 0 && stats.oldest_seq > Some(1),
        "the sealed segments are past the new age bound: {stats:?}"
    );
}

/// Byte offsets where each record of a fresh single-segment spool ends.
fn record_ends(n: u64) -> Vec<u64> {
    let mut end = 0;
    (1..=n)
        .map(|seq| {
            end += FRAME_HEADER + payload(seq).len() as u64;
            end
        })
        .collect()
}

/// Writes `n` records into one segment, cuts it to `len` bytes, reopens, and checks that every
/// whole record before the cut is back and numbering continues right after it.
fn check_truncated(n: u64, len: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), SpoolConfig::default());
    append_n(&mut spool, n);
    spool.sync().unwrap();
    drop(spool);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(len)
        .unwrap();

    let whole = record_ends(n).iter().filter(|&&end| end <= len).count() as u64;
    let mut spool = open(dir.path(), SpoolConfig::default());
    let got = spool.read_from("coord-a", 1000, 1 << 20).unwrap();
    assert_eq!(seqs(&got), (1..=whole).collect::<Vec<_>>(), "cut at {len}");
    let stats = spool.stats();
    let cut_at = record_ends(n)[..whole as usize]
        .last()
        .copied()
        .unwrap_or(0);
    assert_eq!(stats.truncated_bytes, len - cut_at);
    assert_eq!(spool.append(b"after", at(0)).unwrap(), whole + 1);
    drop(spool);
    let mut spool = open(dir.path(), SpoolConfig::default());
    let got = spool.read_from("coord-a", 1000, 1 << 20).unwrap();
    assert_eq!(got.len() as u64, whole + 1);
    assert_eq!(got.last().unwrap().payload, b"after");
    assert_eq!(spool.stats().truncated_bytes, 0);
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let ends = record_ends(5);
    for len in ends[3]..ends[4] {
        check_truncated(5, len);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn torn_tail_anywhere(n in 1u64..12, cut in 0.0f64..1.0) {
        let total = record_ends(n)[n as usize - 1];
        check_truncated(n, (total as f64 * cut) as u64);
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn flipped_byte_in_a_sealed_segment_is_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    append_n(&mut spool, 20);
    drop(spool);
    let files = segment_files(dir.path());
    let second_first: u64 =
        segment::parse_name(files[1].file_name().unwrap().to_str().unwrap()).unwrap();
    assert!(second_first > 3);
    // Inside record 2's payload.
    flip_byte(&files[0], record_ends(1)[0] + FRAME_HEADER + 3);

    let mut spool = open(dir.path(), small());
    let stats = spool.stats();
    assert_eq!(
        stats.corrupt_records,
        second_first - 2,
        "records 2.. of segment 1"
    );
    let got = seqs(&spool.read_from("coord-a", 1000, 1 << 20).unwrap());
    let want: Vec<u64> = [1].into_iter().chain(second_first..=20).collect();
    assert_eq!(got, want);
    assert_eq!(spool.append(b"x", at(0)).unwrap(), 21);
}

#[test]
fn flipped_byte_found_by_a_read_is_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), small());
    append_n(&mut spool, 20);
    let files = segment_files(dir.path());
    flip_byte(&files[1], 10); // the crc of the second segment's first record
    let got = seqs(&spool.read_from("coord-a", 1000, 1 << 20).unwrap());
    let stats = spool.stats();
    assert!(stats.corrupt_records > 0);
    assert_eq!(got.len() as u64 + stats.corrupt_records, 20);
    // The loss is remembered: a second read neither errs nor loops.
    assert_eq!(
        seqs(&spool.read_from("coord-a", 1000, 1 << 20).unwrap()),
        got
    );
}

#[test]
fn flipped_byte_in_the_last_segment_truncates_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), SpoolConfig::default());
    append_n(&mut spool, 5);
    drop(spool);
    let file = &segment_files(dir.path())[0];
    flip_byte(file, record_ends(2)[1] + FRAME_HEADER); // record 3's payload
    let mut spool = open(dir.path(), SpoolConfig::default());
    assert_eq!(
        seqs(&spool.read_from("coord-a", 100, 1 << 20).unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        spool.stats().truncated_bytes,
        record_ends(5)[4] - record_ends(2)[1]
    );
    assert_eq!(spool.append(b"x", at(0)).unwrap(), 3);
}

#[test]
fn garbage_segment_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(segment::path(dir.path(), 1), [0xffu8; 100]).unwrap();
    fs::write(segment::path(dir.path(), 7), [0u8; 100]).unwrap();
    let mut spool = open(dir.path(), small());
    assert_eq!(spool.stats().corrupt_records, 6);
    assert!(spool.read_from("coord-a", 100, 1 << 20).unwrap().is_empty());
    assert_eq!(spool.append(b"x", at(0)).unwrap(), 7);
}

#[test]
fn size_bound_drops_oldest_segments_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        max_bytes: 1000,
        ..small()
    };
    let mut spool = open(dir.path(), config.clone());
    append_n(&mut spool, 200);
    let stats = spool.stats();
    assert!(stats.bytes <= 1000, "{stats:?}");
    assert_eq!(stats.newest_seq, Some(200));
    let oldest = stats.oldest_seq.unwrap();
    assert_eq!(stats.dropped_records, oldest - 1);
    assert_eq!(stats.records, 201 - oldest);
    let got = seqs(&spool.read_from("coord-a", 1000, 1 << 20).unwrap());
    assert_eq!(got, (oldest..=200).collect::<Vec<_>>());
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(on_disk, stats.bytes);

    // Acknowledged records do not count as dropped.
    spool.ack("coord-a", 200).unwrap();
    spool.ack("coord-b", 200).unwrap();
    append_n(&mut spool, 100);
    assert_eq!(
        spool.stats().dropped_records,
        stats.dropped_records + 100 - spool.stats().records
    );
}

#[test]
fn age_bound_drops_old_segments_with_now_passed_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        max_age: Duration::from_secs(3600),
        ..small()
    };
    let mut spool = open(dir.path(), config.clone());
    for i in 0..20 {
        spool.append(&payload(i), at(0)).unwrap();
    }
    spool.append(b"new", at(1800)).unwrap();
    assert_eq!(spool.stats().dropped_records, 0);
    spool.append(b"newer", at(3601)).unwrap();
    let stats = spool.stats();
    assert_eq!(
        stats.dropped_records, 20,
        "every record of time 0: {stats:?}"
    );
    assert_eq!(
        seqs(&spool.read_from("coord-a", 100, 1 << 20).unwrap()),
        vec![21, 22]
    );

    // Idle: `expire` seals and drops an active segment that is all too old.
    drop(spool);
    let mut spool = open(dir.path(), config);
    spool.expire(at(3600 + 3602)).unwrap();
    let stats = spool.stats();
    assert_eq!((stats.records, stats.dropped_records), (0, 2));
    assert_eq!(spool.append(b"x", at(10_000)).unwrap(), 23);
}

#[test]
fn sync_every_syncs_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        sync_every: 3,
        ..SpoolConfig::default()
    };
    let mut spool = open(dir.path(), config);
    append_n(&mut spool, 2);
    assert_eq!(spool.stats().unsynced_records, 2);
    append_n(&mut spool, 1);
    assert_eq!(spool.stats().unsynced_records, 0);
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Ack(usize, u16),
    Read(usize, usize, usize),
    Sync,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..8).prop_map(Op::Append),
        2 => (0usize..2, any::<u16>()).prop_map(|(c, s)| Op::Ack(c, s)),
        3 => (0usize..2, 1usize..20, 1usize..200).prop_map(|(c, n, b)| Op::Read(c, n, b)),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The spool agrees with a map of records plus cursor positions on what every read returns.
    #[test]
    fn agrees_with_a_reference_model(ops in proptest::collection::vec(op(), 1..60)) {
        const NAMES: [&str; 2] = ["coord-a", "coord-b"];
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Some(open(dir.path(), small()));
        let mut records: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut acked = [0u64; 2];
        for op in ops {
            let s = spool.as_mut().unwrap();
            match op {
                Op::Append(n) => for _ in 0..n {
                    let seq = records.len() as u64 + 1;
                    prop_assert_eq!(s.append(&payload(seq), at(seq)).unwrap(), seq);
                    records.insert(seq, payload(seq));
                },
                Op::Ack(c, raw) => {
                    let newest = records.len() as u64;
                    let up_to = u64::from(raw) % (newest + 2);
                    let result = s.ack(NAMES[c], up_to);
                    if up_to > newest {
                        prop_assert!(result.is_err());
                    } else {
                        result.unwrap();
                        acked[c] = acked[c].max(up_to);
                    }
                }
                Op::Read(c, n, max_bytes) => {
                    let got = s.read_from(NAMES[c], n, max_bytes).unwrap();
                    let mut want = Vec::new();
                    let mut bytes = 0;
                    for (&seq, p) in records.range(acked[c] + 1..).take(n) {
                        if !want.is_empty() && bytes + p.len() > max_bytes {
                            break;
                        }
                        bytes += p.len();
                        want.push(Record { seq, payload: p.clone() });
                    }
                    prop_assert_eq!(got, want);
                }
                Op::Sync => s.sync().unwrap(),
                Op::Reopen => {
                    drop(spool.take());
                    spool = Some(open(dir.path(), small()));
                }
            }
            let stats = spool.as_ref().unwrap().stats();
            prop_assert_eq!(stats.next_seq, records.len() as u64 + 1);
            prop_assert_eq!((stats.dropped_records, stats.corrupt_records), (0, 0));
            for (c, cursor) in stats.cursors.iter().enumerate() {
                prop_assert_eq!(cursor.acked, acked[c]);
                prop_assert_eq!(cursor.lag, records.len() as u64 - acked[c]);
            }
        }
    }
}

#[test]
fn corruption_found_in_the_active_segment_seals_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = open(dir.path(), SpoolConfig::default());
    append_n(&mut spool, 5);
    flip_byte(
        &segment_files(dir.path())[0],
        record_ends(2)[1] + FRAME_HEADER,
    );
    assert_eq!(
        seqs(&spool.read_from("coord-a", 100, 1 << 20).unwrap()),
        vec![1, 2]
    );
    assert_eq!(spool.stats().corrupt_records, 3);
    assert_eq!(spool.append(b"x", at(0)).unwrap(), 6);
    assert_eq!(
        spool.stats().segments,
        2,
        "new records go to a clean segment"
    );
    let got = seqs(&spool.read_from("coord-a", 100, 1 << 20).unwrap());
    assert_eq!(got, vec![1, 2, 6]);
    drop(spool);
    let mut spool = open(dir.path(), SpoolConfig::default());
    let got = seqs(&spool.read_from("coord-a", 100, 1 << 20).unwrap());
    assert_eq!(got, vec![1, 2, 6]);
    assert_eq!(
        spool.stats().corrupt_records,
        3,
        "counted again after a restart"
    );
}
