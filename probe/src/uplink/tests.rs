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
fn only_a_higher_version_from_the_same_coordinator_is_published() {
    let held = crate::assignment::Held::new(["c1".to_string(), "c2".to_string()]);
    let (tx, mut rx) = tokio::sync::watch::channel(held);
    let a = |version| meridian_shared::wire::Assignment {
        version,
        slot: 0,
        slots: 1,
        checks: Vec::new(),
    };
    assert!(super::offer(&tx, "c1", a(3)));
    assert!(rx.has_changed().unwrap());
    rx.borrow_and_update();
    assert!(!super::offer(&tx, "c1", a(3)), "the same version again");
    assert!(!super::offer(&tx, "c1", a(2)), "an older one");
    assert!(
        !super::offer(&tx, "c9", a(7)),
        "a coordinator not configured"
    );
    assert!(!rx.has_changed().unwrap());
    assert!(super::offer(&tx, "c2", a(1)), "c2 numbers its own versions");
    assert!(super::offer(&tx, "c1", a(4)));
    let versions = |c: &str| rx.borrow().get(c).map(|a| a.version);
    assert_eq!((versions("c1"), versions("c2")), (Some(4), Some(1)));
}

#[test]
fn a_coordinator_is_delivered_its_checks_and_until_the_next_change_its_dropped_ones() {
    use crate::assignment::Held;
    use std::sync::Arc;
    let check = |id: &str| meridian_shared::check::Check {
        id: CheckId::parse(id).unwrap(),
        interval: Duration::from_secs(30),
        spec: meridian_shared::check::CheckSpec::Dns(meridian_shared::check::DnsCheck::new(
            "example.test",
            meridian_shared::check::RecordType::A,
            meridian_shared::check::ResolverSpec::System,
        )),
    };
    let a = |version, ids: &[&str]| {
        Arc::new(meridian_shared::wire::Assignment {
            version,
            slot: 0,
            slots: 1,
            checks: ids.iter().map(|id| check(id)).collect(),
        })
    };
    let id = |s: &str| CheckId::parse(s).unwrap();
    let (tx, rx) = tokio::sync::watch::channel(Held::new(["c1".to_string(), "c2".to_string()]));
    let mut d = super::session::Deliver::new(rx, "c1");
    assert!(
        !d.ready(),
        "nothing is sent before c1's assignment is known"
    );
    tx.send_modify(|h| assert!(h.offer("c2", a(1, &["other"]))));
    d.refresh();
    assert!(!d.ready(), "c2's assignment says nothing about c1");
    tx.send_modify(|h| assert!(h.offer("c1", a(1, &["web", "dns"]))));
    d.refresh();
    assert!(d.ready());
    assert!(d.allows(&id("web")) && d.allows(&id("dns")));
    assert!(!d.allows(&id("other")), "c2's check is not c1's data");
    tx.send_modify(|h| assert!(h.offer("c1", a(2, &["api"]))));
    d.refresh();
    assert!(d.allows(&id("api")));
    assert!(
        d.allows(&id("web")),
        "the previous assignment's results still go"
    );
    tx.send_modify(|h| assert!(h.offer("c1", a(3, &["api", "x"]))));
    d.refresh();
    assert!(!d.allows(&id("web")), "two changes back: no longer");
    assert!(!d.allows(&id("other")));
    // A check c1 drops but c2 still runs: c2's from now on, not c1's grace.
    tx.send_modify(|h| assert!(h.offer("c2", a(2, &["other", "x"]))));
    tx.send_modify(|h| assert!(h.offer("c1", a(4, &["api"]))));
    d.refresh();
    assert!(d.allows(&id("api")));
    assert!(!d.allows(&id("x")), "x still runs, for c2 only");
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
