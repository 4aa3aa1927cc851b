//! Framing and codec: `len: u32 big-endian | payload`, the payload one MessagePack message.
//!
//! [`encode`] turns a message into one frame and refuses to make a frame over [`MAX_FRAME`].
//! [`FrameDecoder`] takes bytes as they arrive, in any chunking, and hands out whole payloads;
//! [`decode`] turns one payload into a message. The two decoding steps are split on purpose:
//! a frame too large for the limit breaks framing for good (the decoder refuses everything
//! after it and the caller closes the stream), while a payload that does not decode is one
//! bad frame, skipped and counted, with the frames after it still readable.
//!
//! Deliberately absent: streams and sockets. Callers read from QUIC, [`FrameDecoder::push`] what
//! they read and pop frames until none is complete.

use std::io::Cursor;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::MAX_FRAME;
use super::message::{CoordinatorMessage, ProbeMessage};

/// Bytes of the length prefix.
const HEADER: usize = 4;

/// Why bytes could not become a message or a message could not become bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A frame's length is over the limit. Raised from the 4-byte header alone, before any
    /// buffer of that size exists; on decoding it ends the stream.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Length announced (decoding) or produced (encoding), in bytes.
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// A payload is not a valid message of the expected direction (garbage, unknown variant,
    /// missing field). Only that frame is lost.
    #[error("cannot decode message: {0}")]
    Decode(String),
    /// A payload holds a valid message followed by extra bytes, a sign of a corrupt or
    /// mis-framed sender. Only that frame is lost.
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes {
        /// Bytes left over after the message.
        extra: u64,
    },
    /// A message could not be serialized (a value serde cannot represent in MessagePack).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

mod sealed {
    /// Keeps [`super::WireMessage`] implemented by the protocol's two enums only.
    pub trait Sealed {}
    impl Sealed for super::ProbeMessage {}
    impl Sealed for super::CoordinatorMessage {}
}

/// A top-level protocol message: [`ProbeMessage`] or [`CoordinatorMessage`]. Sealed, so only
/// those two ever become frames.
pub trait WireMessage: Serialize + DeserializeOwned + sealed::Sealed {}
impl WireMessage for ProbeMessage {}
impl WireMessage for CoordinatorMessage {}

/// Encodes `msg` as one frame, length prefix included.
///
/// Fails with [`WireError::FrameTooLarge`] when the payload would exceed [`MAX_FRAME`]; the
/// sender splits what it was sending (a smaller [`super::ResultBatch`]) and tries again.
pub fn encode<M: WireMessage>(msg: &M) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; HEADER];
    rmp_serde::encode::write_named(&mut out, msg).map_err(|e| WireError::Encode(e.to_string()))?;
    let len = out.len() - HEADER;
    let too_large = || WireError::FrameTooLarge {
        len: len as u64,
        max: MAX_FRAME,
    };
    let len = u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(too_large)?;
    out[..HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Decodes one frame's payload (without its length prefix) as a message of type `M`.
///
/// Never panics and never allocates more than the payload's own size implies: strings and
/// arrays are read against the bytes actually present, not their announced lengths.
pub fn decode<M: WireMessage>(payload: &[u8]) -> Result<M, WireError> {
    if payload.len() > MAX_FRAME as usize {
        return Err(WireError::FrameTooLarge {
            len: payload.len() as u64,
            max: MAX_FRAME,
        });
    }
    // A `Read`-based deserializer: it reads strings with `take(len).read_to_end`, so a forged
    // length costs no allocation, and it reports how far it read (for trailing bytes).
    let mut de = rmp_serde::Deserializer::new(Cursor::new(payload));
    let msg = M::deserialize(&mut de).map_err(|e| WireError::Decode(e.to_string()))?;
    let extra = (payload.len() as u64).saturating_sub(de.position());
    if extra > 0 {
        return Err(WireError::TrailingBytes { extra });
    }
    Ok(msg)
}

/// Reassembles frames from bytes that arrive in arbitrary pieces.
///
/// Memory is bounded by what the caller pushes and has not popped: a length prefix is checked
/// against the limit as soon as its 4 bytes are in, and no buffer is ever sized from it.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Received bytes; `buf[start..]` is not yet handed out.
    buf: Vec<u8>,
    /// Start of the unconsumed bytes (consumed ones are dropped lazily, on the next push).
    start: usize,
    /// Largest payload accepted.
    max: u32,
    /// Set once a header announced an oversized frame: the length announced. From then on
    /// every call fails with the same error.
    failed: Option<u64>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder enforcing [`MAX_FRAME`].
    pub fn new() -> FrameDecoder {
        FrameDecoder::with_max(MAX_FRAME)
    }

    /// A decoder enforcing a lower limit than [`MAX_FRAME`] (a larger `max` is capped to it).
    pub fn with_max(max: u32) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max: max.min(MAX_FRAME),
            failed: None,
        }
    }

    /// Appends received bytes. Fails once the decoder has seen an oversized frame.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.check_failed()?;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The next complete payload, `Ok(None)` while more bytes are needed.
    ///
    /// A header announcing more than the limit yields [`WireError::FrameTooLarge`], drops the
    /// buffered bytes and makes every later call fail the same way: close the stream.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        self.check_failed()?;
        let pending = &self.buf[self.start..];
        let Some(header) = pending.first_chunk::<HEADER>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len > self.max {
            self.failed = Some(u64::from(len));
            self.buf = Vec::new();
            self.start = 0;
            return self.check_failed().map(|()| None);
        }
        let end = HEADER + len as usize;
        let Some(payload) = pending.get(HEADER..end) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.start += end;
        Ok(Some(payload))
    }

    /// The next complete frame decoded as `M`, `Ok(None)` while more bytes are needed.
    ///
    /// A [`WireError::Decode`] or [`WireError::TrailingBytes`] concerns that frame only (it is
    /// consumed; call again for the next); [`WireError::FrameTooLarge`] ends the stream.
    pub fn next_message<M: WireMessage>(&mut self) -> Result<Option<M>, WireError> {
        match self.next_frame()? {
            Some(payload) => decode(&payload).map(Some),
            None => Ok(None),
        }
    }

    /// Bytes received and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether an oversized frame has ended this stream.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    fn check_failed(&self) -> Result<(), WireError> {
        match self.failed {
            Some(len) => Err(WireError::FrameTooLarge { len, max: self.max }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ack, Heartbeat, Hello};

    fn hello() -> ProbeMessage {
        ProbeMessage::Hello(Hello {
            version: 1,
            probe_version: "0.1.0".into(),
            assignment_version: Some(7),
            spool_next_seq: 42,
        })
    }

    fn beat(ms: i64) -> ProbeMessage {
        ProbeMessage::Heartbeat(Heartbeat { sent_ms: ms })
    }

    #[test]
    fn frame_is_big_endian_length_then_named_msgpack() {
        let frame = encode(&beat(5)).unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        // Named encoding: the field name travels, so renaming a field is a protocol change.
        assert!(frame.windows(7).any(|w| w == b"sent_ms"));
        assert_eq!(decode::<ProbeMessage>(&frame[4..]).unwrap(), beat(5));
    }

    #[test]
    fn truncated_frames_wait_for_more_input() {
        let frame = encode(&hello()).unwrap();
        let mut d = FrameDecoder::new();
        for (i, b) in frame.iter().enumerate() {
            assert_eq!(d.next_frame().unwrap(), None, "complete after {i} bytes");
            d.push(&[*b]).unwrap();
        }
        assert_eq!(d.next_message::<ProbeMessage>().unwrap(), Some(hello()));
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn several_frames_in_one_buffer_come_out_in_order() {
        let msgs = [hello(), beat(1), beat(2), beat(3)];
        let mut bytes = Vec::new();
        for m in &msgs {
            bytes.extend(encode(m).unwrap());
        }
        let last = encode(&beat(4)).unwrap();
        bytes.extend(&last[..3]); // and the start of one more
        let mut d = FrameDecoder::new();
        d.push(&bytes).unwrap();
        let mut got = Vec::new();
        while let Some(m) = d.next_message::<ProbeMessage>().unwrap() {
            got.push(m);
        }
        assert_eq!(got, msgs);
        assert_eq!(d.buffered(), 3);
        d.push(&last[3..]).unwrap();
        assert_eq!(d.next_message::<ProbeMessage>().unwrap(), Some(beat(4)));
    }

    #[test]
    fn oversized_header_is_refused_before_allocating_and_ends_the_stream() {
        let mut d = FrameDecoder::new();
        d.push(&u32::MAX.to_be_bytes()).unwrap(); // a 4 GiB frame, header only
        let err = d.next_frame().unwrap_err();
        assert_eq!(
            err,
            WireError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: MAX_FRAME
            }
        );
        assert!(d.buf.capacity() < 1024, "nothing sized from the header");
        assert!(d.is_failed());
        // The decoder refuses anything more, even a valid frame.
        assert!(d.push(&encode(&beat(1)).unwrap()).is_err());
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn a_lower_limit_is_enforced_at_its_boundary() {
        let frame = encode(&hello()).unwrap();
        let len = (frame.len() - 4) as u32;
        let mut exact = FrameDecoder::with_max(len);
        exact.push(&frame).unwrap();
        assert!(exact.next_frame().unwrap().is_some());
        let mut below = FrameDecoder::with_max(len - 1);
        below.push(&frame[..4]).unwrap();
        assert!(matches!(
            below.next_frame(),
            Err(WireError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn encode_refuses_an_oversized_frame() {
        let big = ProbeMessage::Hello(Hello {
            version: 1,
            probe_version: "x".repeat(MAX_FRAME as usize),
            assignment_version: None,
            spool_next_seq: 0,
        });
        assert!(matches!(
            encode(&big),
            Err(WireError::FrameTooLarge { max: MAX_FRAME, .. })
        ));
    }

    #[test]
    fn a_bad_payload_costs_one_frame_only() {
        let mut bytes = encode(&beat(1)).unwrap();
        bytes.extend([0, 0, 0, 2, 0xc1, 0xc1]); // 0xc1 is never valid MessagePack
        let mut trailing = encode(&beat(2)).unwrap();
        trailing.push(0x00);
        trailing[3] += 1;
        bytes.extend(trailing);
        bytes.extend(encode(&beat(3)).unwrap());
        let mut d = FrameDecoder::new();
        d.push(&bytes).unwrap();
        assert_eq!(d.next_message::<ProbeMessage>(), Ok(Some(beat(1))));
        assert!(matches!(
            d.next_message::<ProbeMessage>(),
            Err(WireError::Decode(_))
        ));
        assert_eq!(
            d.next_message::<ProbeMessage>(),
            Err(WireError::TrailingBytes { extra: 1 })
        );
        assert_eq!(d.next_message::<ProbeMessage>(), Ok(Some(beat(3))));
    }

    #[test]
    fn a_message_of_the_other_direction_does_not_decode() {
        let frame = encode(&CoordinatorMessage::Ack(Ack { up_to_seq: 9 })).unwrap();
        assert!(matches!(
            decode::<ProbeMessage>(&frame[4..]),
            Err(WireError::Decode(_))
        ));
    }
}
