//! Unit tests of the uplink's pure parts: the reconnect delays and turning spool records into
//! a batch. The link itself is tested end to end against the real coordinator service in
//! `meridian-coordinator` (`service::tests`), which may dev-depend on this crate.

use std::time::Duration;

use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckResult, Phases};

use super::session::to_results;
use super::{Backoff, SpooledResult, UplinkConfig, UplinkError};
use crate::spool::Record;

#[test]
fn reconnect_delays_grow_to_the_cap_with_full_jitter_between_the_bounds() {
    let (min, max) = (Duration::from_millis(50), Duration::from_millis(800));
    let mut b = Backoff::new(min, max);
    let delays: Vec<Duration> = (0..200).map(|_| b.next_delay()).collect();
    assert!(delays.iter().all(|d| *d >= min && *d <= max), "{delays:?}");
    // Full jitter: once the ceiling is at the cap, delays spread over most of the range.
    let late = &delays[10..];
    assert!(
        late.iter().any(|d| *d < Duration::from_millis(300)),
        "{late:?}"
    );
    assert!(
        late.iter().any(|d| *d > Duration::from_millis(500)),
        "{late:?}"
    );
    // The first attempt's ceiling is the minimum itself.
    let mut fresh = Backoff::new(min, max);
    assert_eq!(fresh.next_delay(), min);
}

fn record(seq: u64) -> Record {
    let result = CheckResult {
        probe_id: "p".into(),
        region: "eu-west".into(),
        check_id: CheckId::parse("web").unwrap(),
        scheduled_ms: 1,
        started_ms: 1,
        phases: Phases::default(),
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: Vec::new(),
    };
    Record {
        seq,
        payload: rmp_serde::to_vec_named(&result).unwrap(),
    }
}

#[test]
fn undecodable_records_are_left_out_of_the_batch() {
    let records = vec![
        record(4),
        Record {
            seq: 5,
            payload: vec![0xc1, 0xc1],
        },
        record(6),
    ];
    let seqs: Vec<u64> = to_results(records).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [4, 6]);
}

#[test]
fn burst_tags_travel_from_the_spool_record_to_the_batch() {
    let bare = record(1);
    let result: CheckResult = rmp_serde::from_slice(&bare.payload).unwrap();
    let tag = meridian_shared::wire::BurstTag { burst_id: 9 };
    let tagged = SpooledResult {
        result: result.clone(),
        burst: Some(tag),
    };
    let records = vec![
        bare,
        Record {
            seq: 2,
            payload: tagged.encode().unwrap(),
        },
    ];
    let batch = to_results(records);
    assert_eq!(
        batch[0].burst, None,
        "a bare CheckResult is a scheduled run"
    );
    assert_eq!(batch[1].burst, Some(tag));
    assert_eq!(batch[1].result, result);
}

#[test]
fn only_a_higher_assignment_version_is_published() {
    let (tx, mut rx) = tokio::sync::watch::channel(None);
    let a = |version| meridian_shared::wire::Assignment {
        version,
        slot: 0,
        slots: 1,
        checks: Vec::new(),
    };
    assert!(super::offer(&tx, a(3)));
    assert!(rx.has_changed().unwrap());
    rx.borrow_and_update();
    assert!(!super::offer(&tx, a(3)), "the same version again");
    assert!(!super::offer(&tx, a(2)), "an older one");
    assert!(!rx.has_changed().unwrap());
    assert!(super::offer(&tx, a(4)));
    assert_eq!(rx.borrow().as_ref().map(|a| a.version), Some(4));
}

#[tokio::test]
async fn missing_certificate_files_fail_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spool =
        crate::spool::Spool::open(dir.path().join("spool"), &["c1"], Default::default()).unwrap();
    let missing = dir.path().join("probe.pem");
    let config = UplinkConfig::new(
        Vec::new(),
        missing.clone(),
        dir.path().join("probe.key"),
        dir.path().join("ca.pem"),
    );
    let spool = std::sync::Arc::new(std::sync::Mutex::new(spool));
    match super::Uplink::start(config, spool) {
        Err(UplinkError::File { path, .. }) => assert_eq!(path, missing),
        Err(other) => panic!("expected a file error, got {other}"),
        Ok(_) => panic!("expected a file error"),
    }
}
