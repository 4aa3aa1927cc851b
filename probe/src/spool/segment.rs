//! Segment files and record framing: how one record is laid out on disk, how a segment file is
//! named, and how a segment is read back and checked. Policy (when to rotate, sync, drop or
//! collect a segment) lives in the parent module; nothing here keeps state.
//!
//! A record on disk is a 24-byte header and the payload, integers little-endian:
//!
//! ```text
//! len: u32 | crc32: u32 | seq: u64 | time_ms: u64 | payload (len bytes)
//! ```
//!
//! `crc32` (IEEE, `crc32fast`) covers `seq`, `time_ms` and the payload, so a flipped bit in any
//! of them, or a record whose header is intact but whose payload was never written, is caught.
//! `len` is checked against the maximum record size before anything is allocated.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes of framing per record: length, checksum, sequence number, timestamp.
pub(super) const FRAME_HEADER: u64 = 24;

/// File name suffix of a segment; the stem is the first sequence number, zero-padded to 20 digits
/// (every `u64`) so that names sort in sequence order.
const SUFFIX: &str = ".seg";

/// The path of the segment whose first record is `first_seq`.
pub(super) fn path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SUFFIX}"))
}

/// The first sequence number named by a segment file name, or `None` for any other file.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().filter(|&seq| seq <= MAX_SEQ)
}

/// The highest sequence number a file name or cursor may hold: far beyond any real spool (a
/// million records a second for 290,000 years), low enough that arithmetic on it cannot overflow
/// whatever a damaged or hand-edited file says.
pub(super) const MAX_SEQ: u64 = 1 << 63;

/// Writes one framed record into `buf` (cleared first). `payload.len()` must fit `len`: the
/// caller checked it against the maximum record size.
pub(super) fn encode(buf: &mut Vec<u8>, len: u32, seq: u64, time_ms: u64, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&time_ms.to_le_bytes());
    crc.update(payload);
    buf.clear();
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&time_ms.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// One record read back from a segment.
pub(super) struct Frame {
    /// Its sequence number.
    pub seq: u64,
    /// The time the caller appended it with, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The caller's bytes.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Its size on disk, framing included.
    pub fn disk_len(&self) -> u64 {
        FRAME_HEADER + self.payload.len() as u64
    }
}

/// What reading the next frame found.
pub(super) enum Next {
    /// A whole record with a good checksum.
    Record(Frame),
    /// The clean end of the file.
    End,
    /// Something that is not a good record: a header or payload cut short by the end of the
    /// file (`torn`), an impossible length, or a checksum mismatch.
    Bad(&'static str),
}

/// Reads the next frame. Never reads more than `FRAME_HEADER + max_payload` bytes and never
/// allocates more than `max_payload`, whatever the file holds.
pub(super) fn read_frame(r: &mut impl Read, max_payload: u32) -> io::Result<Next> {
    let mut header = [0u8; FRAME_HEADER as usize];
    match read_full(r, &mut header)? {
        0 => return Ok(Next::End),
        n if n < header.len() => return Ok(Next::Bad("torn record header")),
        _ => {}
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3, rest @ ..] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > max_payload {
        return Ok(Next::Bad("record length over the maximum"));
    }
    let mut payload = vec![0u8; len as usize];
    if read_full(r, &mut payload)? < payload.len() {
        return Ok(Next::Bad("torn record payload"));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rest);
    hasher.update(&payload);
    if hasher.finalize() != crc {
        return Ok(Next::Bad("checksum mismatch"));
    }
    let (seq, time) = rest.split_at(8);
    let seq = u64::from_le_bytes(seq.try_into().unwrap_or_default());
    let time_ms = u64::from_le_bytes(time.try_into().unwrap_or_default());
    Ok(Next::Record(Frame {
        seq,
        time_ms,
        payload,
    }))
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Opens a segment for reading, positioned at `offset`, buffered.
pub(super) fn reader(path: &Path, offset: u64) -> io::Result<BufReader<File>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(BufReader::with_capacity(64 * 1024, file))
}

/// What a full scan of one segment found.
pub(super) struct Scan {
    /// Good records, all in sequence from the segment's first sequence number.
    pub records: u64,
    /// One past the last good record's sequence number (the first one if there is none).
    pub next_seq: u64,
    /// Bytes of the good prefix.
    pub valid_len: u64,
    /// Bytes in the file.
    pub file_len: u64,
    /// The newest good record's time, milliseconds since the epoch (0 if none).
    pub newest_ms: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub bad: Option<&'static str>,
}

/// Reads a whole segment, checking every record's checksum and that sequence numbers run on
/// from `first_seq` without a gap. Stops at the first bad or out-of-sequence record.
pub(super) fn scan(path: &Path, first_seq: u64, max_payload: u32) -> io::Result<Scan> {
    let mut r = reader(path, 0)?;
    let file_len = r.get_ref().metadata()?.len();
    let mut scan = Scan {
        records: 0,
        next_seq: first_seq,
        valid_len: 0,
        file_len,
        newest_ms: 0,
        bad: None,
    };
    loop {
        match read_frame(&mut r, max_payload)? {
            Next::End => return Ok(scan),
            Next::Bad(why) => {
                scan.bad = Some(why);
                return Ok(scan);
            }
            Next::Record(f) if f.seq != scan.next_seq => {
                scan.bad = Some("record out of sequence");
                return Ok(scan);
            }
            Next::Record(f) => {
                scan.records += 1;
                scan.next_seq += 1;
                scan.valid_len += f.disk_len();
                scan.newest_ms = scan.newest_ms.max(f.time_ms);
            }
        }
    }
}
