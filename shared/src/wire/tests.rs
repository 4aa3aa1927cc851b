//! Cross-cutting tests of the wire module: property round trips of every message kind through
//! encode and a chunk-fed [`FrameDecoder`], garbage input, negotiation and clock arithmetic.
//! Framing details and batch validation are tested next to their code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;
use url::Url;

use super::*;
use crate::check::{Check, CheckId, CheckSpec, DnsCheck, HttpCheck, RecordType, ResolverSpec};
use crate::result::{CheckError, CheckResult, DnsDetail, ErrorClass, HttpDetail, Phases};

fn check_id() -> impl Strategy<Value = CheckId> {
    "[a-z0-9._-]{1,64}".prop_map(|s| CheckId::parse(&s).expect("strategy makes valid ids"))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
    ]
}

fn phases() -> impl Strategy<Value = Phases> {
    let p = || proptest::option::of(any::<u64>());
    (p(), p(), p(), p(), p(), any::<u64>()).prop_map(
        |(dns, connect, tls, ttfb, transfer, total)| Phases {
            dns,
            connect,
            tls,
            ttfb,
            transfer,
            total,
        },
    )
}

fn check_result() -> impl Strategy<Value = CheckResult> {
    let http = (
        proptest::option::of(100u16..600),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(status, bytes, truncated)| HttpDetail {
            status,
            bytes,
            truncated,
            http_version: Some("HTTP/2".into()),
            ..HttpDetail::default()
        });
    let dns = prop::collection::vec(".{0,20}", 0..3).prop_map(|answers| DnsDetail {
        rcode: crate::check::Rcode::NxDomain,
        answers,
    });
    let error = (
        prop::sample::select(vec![
            ErrorClass::Dns,
            ErrorClass::Tls,
            ErrorClass::HttpStatus,
        ]),
        ".{0,40}",
    )
        .prop_map(|(class, message)| CheckError { class, message });
    (
        ("[a-z0-9-]{1,20}", "[a-z]{2}-[a-z]{4,8}", check_id()),
        (any::<i64>(), any::<i64>(), phases()),
        (
            proptest::option::of(ip()),
            proptest::option::of(http),
            proptest::option::of(dns),
            proptest::option::of(error),
            prop::collection::vec(".{0,20}", 0..2),
        ),
    )
        .prop_map(
            |(
                (probe_id, region, check_id),
                (scheduled_ms, started_ms, phases),
                (remote_ip, http, dns, error, warnings),
            )| CheckResult {
                probe_id,
                region,
                check_id,
                scheduled_ms,
                started_ms,
                phases,
                remote_ip,
                http,
                dns,
                error,
                warnings,
            },
        )
}

fn check() -> impl Strategy<Value = Check> {
    let http = ("[a-z]{1,12}", "[a-z0-9/]{0,20}").prop_map(|(host, path)| {
        let url = Url::parse(&format!("https://{host}.example/{path}")).expect("a valid URL");
        CheckSpec::Http(HttpCheck::get(url))
    });
    let dns = (
        "[a-z]{1,12}\\.example",
        prop::sample::select(vec![RecordType::A, RecordType::Mx, RecordType::Txt]),
        any::<u16>(),
    )
        .prop_map(|(name, rt, port)| {
            let resolver = ResolverSpec::Udp((Ipv4Addr::LOCALHOST, port).into());
            CheckSpec::Dns(DnsCheck::new(&name, rt, resolver))
        });
    (check_id(), 1u64..86_400, prop_oneof![http, dns]).prop_map(|(id, secs, spec)| Check {
        id,
        interval: Duration::from_secs(secs),
        spec,
    })
}

fn burst() -> impl Strategy<Value = BurstTag> {
    any::<u64>().prop_map(|burst_id| BurstTag { burst_id })
}

fn probe_message() -> impl Strategy<Value = ProbeMessage> {
    let sequenced = (any::<u64>(), check_result(), proptest::option::of(burst()))
        .prop_map(|(seq, result, burst)| SequencedResult { seq, result, burst });
    prop_oneof![
        (
            any::<u16>(),
            ".{0,16}",
            proptest::option::of(any::<u64>()),
            any::<u64>()
        )
            .prop_map(
                |(version, probe_version, assignment_version, spool_next_seq)| {
                    ProbeMessage::Hello(Hello {
                        version,
                        probe_version,
                        assignment_version,
                        spool_next_seq,
                    })
                }
            ),
        (any::<u64>(), prop::collection::vec(sequenced, 0..4)).prop_map(|(first_seq, results)| {
            ProbeMessage::ResultBatch(ResultBatch { first_seq, results })
        }),
        any::<i64>().prop_map(|sent_ms| ProbeMessage::Heartbeat(Heartbeat { sent_ms })),
        (any::<u64>(), any::<i64>(), any::<i64>()).prop_map(
            |(ping_id, probe_recv_ms, probe_send_ms)| ProbeMessage::Pong(Pong {
                ping_id,
                probe_recv_ms,
                probe_send_ms,
            })
        ),
        (any::<u64>(), proptest::option::of(".{0,30}")).prop_map(|(command_id, error)| {
            ProbeMessage::CommandDone(CommandDone { command_id, error })
        }),
    ]
}

fn coordinator_message() -> impl Strategy<Value = CoordinatorMessage> {
    let reason = prop_oneof![
        prop::collection::vec(any::<u16>(), 0..4)
            .prop_map(|supported| RejectReason::UnsupportedVersion { supported }),
        Just(RejectReason::Revoked),
        Just(RejectReason::Unknown),
        Just(RejectReason::Superseded),
        Just(RejectReason::ProtocolViolation),
    ];
    let kind = prop_oneof![
        (check_id(), any::<u8>(), burst()).prop_map(|(check_id, runs, tag)| CommandKind::Burst {
            check_id,
            runs,
            tag
        }),
        Just(CommandKind::Reload),
        (any::<u64>(), any::<i64>())
            .prop_map(|(ping_id, sent_ms)| CommandKind::Ping { ping_id, sent_ms }),
    ];
    prop_oneof![
        (
            any::<u16>(),
            any::<i64>(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(version, server_time_ms, acked_up_to_seq)| {
                CoordinatorMessage::HelloAck(HelloAck {
                    version,
                    server_time_ms,
                    acked_up_to_seq,
                })
            }),
        (reason, ".{0,40}")
            .prop_map(|(reason, message)| CoordinatorMessage::Reject(Reject { reason, message })),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(check(), 0..4)
        )
            .prop_map(|(version, slot, slots, checks)| {
                CoordinatorMessage::Assignment(Assignment {
                    version,
                    slot,
                    slots,
                    checks,
                })
            }),
        any::<u64>().prop_map(|up_to_seq| CoordinatorMessage::Ack(Ack { up_to_seq })),
        (any::<u64>(), kind).prop_map(|(command_id, kind)| {
            CoordinatorMessage::Command(Command { command_id, kind })
        }),
    ]
}

/// Encodes `msgs` into one stream, feeds it to a decoder in pieces of the given sizes (cycled)
/// and returns what comes out.
fn through_stream<M: WireMessage>(msgs: &[M], chunks: &[usize]) -> Vec<M> {
    let mut stream = Vec::new();
    for m in msgs {
        stream.extend(encode(m).expect("test messages fit in a frame"));
    }
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    let mut rest = &stream[..];
    for &size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        d.push(piece).expect("valid frames never fail the decoder");
        while let Some(m) = d.next_message::<M>().expect("valid frames decode") {
            out.push(m);
        }
    }
    assert_eq!(d.buffered(), 0);
    out
}

/// Feeds arbitrary bytes to a decoder and decodes whatever frames come out; only checks that
/// nothing panics and that a failed decoder stays failed.
fn swallow(bytes: &[u8], chunk: usize) {
    let mut d = FrameDecoder::new();
    for piece in bytes.chunks(chunk.max(1)) {
        if d.push(piece).is_err() {
            assert!(d.is_failed());
            assert!(d.next_frame().is_err());
            return;
        }
        loop {
            match d.next_frame() {
                Ok(Some(payload)) => {
                    let _ = decode::<ProbeMessage>(&payload);
                    let _ = decode::<CoordinatorMessage>(&payload);
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(d.is_failed());
                    break;
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn probe_messages_survive_the_stream(
        msgs in prop::collection::vec(probe_message(), 1..6),
        chunks in prop::collection::vec(1usize..200, 1..8),
    ) {
        prop_assert_eq!(through_stream(&msgs, &chunks), msgs);
    }

    #[test]
    fn coordinator_messages_survive_the_stream(
        msgs in prop::collection::vec(coordinator_message(), 1..6),
        chunks in prop::collection::vec(1usize..200, 1..8),
    ) {
        prop_assert_eq!(through_stream(&msgs, &chunks), msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        chunk in 1usize..64,
    ) {
        swallow(&bytes, chunk);
        let _ = decode::<ProbeMessage>(&bytes);
        let _ = decode::<CoordinatorMessage>(&bytes);
    }

    #[test]
    fn well_framed_garbage_never_panics(payload in prop::collection::vec(any::<u8>(), 0..1024)) {
        // A correct length prefix, so the bytes reach the MessagePack decoder.
        let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
        bytes.extend(&payload);
        swallow(&bytes, bytes.len());
    }

    #[test]
    fn corrupted_frames_never_panic(
        msgs in prop::collection::vec(probe_message(), 1..3),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        chunk in 1usize..64,
    ) {
        let mut bytes = Vec::new();
        for m in &msgs {
            bytes.extend(encode(m).expect("test messages fit in a frame"));
        }
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        swallow(&bytes, chunk);
    }
}

#[test]
fn version_one_is_negotiated_and_others_get_the_supported_list() {
    assert_eq!(negotiate(1), Ok(1));
    for v in [0, 2, u16::MAX] {
        assert_eq!(
            negotiate(v),
            Err(RejectReason::UnsupportedVersion { supported: vec![1] }),
            "version {v}"
        );
    }
    assert_eq!(PROTOCOL_VERSION, 1);
    assert_eq!(ALPN, b"meridian/1");
}

#[test]
fn clock_offset_is_exact_with_symmetric_delays() {
    // Probe 500 ms ahead, 20 ms each way, 5 ms spent on the probe.
    let t1 = 1_000;
    let (t2, t3) = (t1 + 20 + 500, t1 + 20 + 500 + 5);
    let t4 = t1 + 20 + 5 + 20;
    assert_eq!(clock_offset(t1, t2, t3, t4), (500, 40));
}

#[test]
fn clock_offset_errs_by_at_most_half_the_delay_when_paths_differ() {
    // Probe 200 ms behind, 10 ms out, 50 ms back: the estimate is off by (10 - 50) / 2.
    let t1 = 1_000;
    let (t2, t3) = (t1 + 10 - 200, t1 + 10 - 200 + 5);
    let t4 = t1 + 10 + 5 + 50;
    let (offset, delay) = clock_offset(t1, t2, t3, t4);
    assert_eq!((offset, delay), (-220, 60));
    assert!((offset - -200).abs() <= delay / 2);
}

#[test]
fn clock_offset_saturates_on_absurd_timestamps() {
    let (offset, delay) = clock_offset(i64::MIN, i64::MAX, i64::MAX, i64::MIN);
    assert_eq!(offset, i64::MAX);
    assert_eq!(delay, 0);
    let (_, delay) = clock_offset(0, i64::MAX, i64::MIN, 0);
    assert_eq!(delay, i64::MAX);
}
