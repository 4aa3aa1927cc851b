//! Storage tests on real SQLite files in temporary directories.

use super::*;
use meridian_shared::check::CheckId;
use meridian_shared::result::Phases;
use meridian_shared::wire::{BurstTag, SequencedResult};
use proptest::prelude::*;

fn result(check: &str, started_ms: i64) -> CheckResult {
    CheckResult {
        probe_id: "claims-to-be-someone-else".into(),
        region: "claims-another-region".into(),
        check_id: CheckId::parse(check).unwrap(),
        scheduled_ms: started_ms,
        started_ms,
        phases: Phases {
            dns: Some(1200),
            connect: Some(96_000),
            tls: Some(190_000),
            ttfb: Some(120_000),
            transfer: Some(300),
            total: 410_000,
        },
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: vec![],
    }
}

#[test]
fn a_new_database_is_migrated_and_reopening_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_schema());
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_schema());
}

#[test]
fn a_database_from_a_newer_coordinator_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("meridian.db")).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = Store::open(dir.path()).err().expect("refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn redelivered_batches_are_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.upsert_probe("p1", "me-south", None, 1_000).unwrap();
    let batch: Vec<(u64, CheckResult)> = (1..=5)
        .map(|s| (s, result("home", 1_000 * s as i64)))
        .collect();
    assert_eq!(
        store.ingest("p1", "me-south", &batch, 10_000).unwrap(),
        Ingested {
            stored: 5,
            duplicates: 0
        }
    );
    // The acknowledgement was lost: the probe sends 3..=7.
    let again: Vec<(u64, CheckResult)> = (3..=7)
        .map(|s| (s, result("home", 1_000 * s as i64)))
        .collect();
    assert_eq!(
        store.ingest("p1", "me-south", &again, 11_000).unwrap(),
        Ingested {
            stored: 2,
            duplicates: 3
        }
    );
    let stored = store.results("p1").unwrap();
    assert_eq!(
        stored.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(store.highest_seq("p1").unwrap(), Some(7));
    assert_eq!(
        store.probe("p1").unwrap().unwrap().last_seen_ms,
        Some(11_000)
    );
}

#[test]
fn identity_and_region_come_from_the_caller_not_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .ingest("p1", "me-south", &[(1, result("home", 5))], 10)
        .unwrap();
    let (_, r) = &store.results("p1").unwrap()[0];
    assert_eq!((r.probe_id.as_str(), r.region.as_str()), ("p1", "me-south"));
    assert!(
        store
            .results("claims-to-be-someone-else")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn stored_results_survive_reopening_with_their_original_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        // A late result: started long before it was received.
        store
            .ingest("p1", "eu-central", &[(1, result("home", 1_000))], 9_000_000)
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let (seq, r) = &store.results("p1").unwrap()[0];
    assert_eq!(
        (*seq, r.started_ms, r.phases.connect),
        (1, 1_000, Some(96_000))
    );
}

#[test]
fn retention_prunes_only_results_older_than_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let day = 86_400_000;
    let batch: Vec<(u64, CheckResult)> = (0..20)
        .map(|d| (d as u64 + 1, result("home", d * day)))
        .collect();
    store.ingest("p1", "eu-central", &batch, 20 * day).unwrap();
    let pruned = store
        .prune_results(20 * day, Duration::from_secs(14 * 86_400))
        .unwrap();
    assert_eq!(pruned, 6, "days 0..=5 are older than 14 days at day 20");
    assert_eq!(
        store.results("p1").unwrap().first().map(|(s, _)| *s),
        Some(7)
    );
}

#[test]
fn sequence_numbers_beyond_sqlite_integers_are_refused_without_storing_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let batch = vec![(1, result("home", 1)), (u64::MAX, result("home", 2))];
    assert!(matches!(
        store.ingest("p1", "r", &batch, 3),
        Err(StoreError::SeqOutOfRange(u64::MAX))
    ));
    assert!(
        store.results("p1").unwrap().is_empty(),
        "the transaction rolled back"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// However batches are split, repeated and reordered, what is stored is the set of distinct
    /// sequence numbers sent, each once.
    #[test]
    fn any_redelivery_pattern_stores_each_sequence_once(
        batches in prop::collection::vec(prop::collection::vec(1u64..60, 0..15), 1..12)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut expected = std::collections::BTreeSet::new();
        let mut stored_total = 0;
        for batch in &batches {
            let mut seen = std::collections::BTreeSet::new();
            let items: Vec<(u64, CheckResult)> = batch
                .iter()
                .filter(|s| seen.insert(**s))
                .map(|&s| (s, result("home", s as i64)))
                .collect();
            let before = expected.len();
            expected.extend(items.iter().map(|(s, _)| *s));
            let got = store.ingest("p", "r", &items, 0).unwrap();
            prop_assert_eq!(got.stored, expected.len() - before);
            prop_assert_eq!(got.stored + got.duplicates, items.len());
            stored_total += got.stored;
        }
        let seqs: Vec<u64> = store.results("p").unwrap().into_iter().map(|(s, _)| s).collect();
        prop_assert_eq!(seqs, expected.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(stored_total, expected.len());
    }
}

#[test]
fn a_token_enrols_once_before_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_token("h1", "me-south", 1_000, 5_000).unwrap();
    store
        .create_token("h2", "eu-central", 1_000, 2_000)
        .unwrap();
    assert_eq!(
        store.redeem_token("h1", "p1", 1_500).unwrap(),
        Ok("me-south".to_string())
    );
    assert_eq!(
        store.redeem_token("h1", "p2", 1_600).unwrap(),
        Err(TokenRefusal::Used)
    );
    assert_eq!(
        store.redeem_token("h2", "p3", 2_000).unwrap(),
        Err(TokenRefusal::Expired)
    );
    assert_eq!(
        store.redeem_token("nope", "p4", 1_000).unwrap(),
        Err(TokenRefusal::Unknown)
    );
}

#[test]
fn revocation_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.upsert_probe("p1", "me-south", Some("ab"), 1).unwrap();
    assert!(store.revoke_probe("p1", 10).unwrap());
    assert!(!store.revoke_probe("p1", 11).unwrap(), "already revoked");
    assert!(!store.revoke_probe("ghost", 11).unwrap());
    let probes = store.probes().unwrap();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].revoked_ms, Some(10));
}

#[test]
fn rollups_give_per_minute_quantiles_that_merge_over_ranges_and_ignore_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    // Minute 0: connect times 1..=100 ms; minute 1: 101..=200 ms.
    let batch: Vec<(u64, CheckResult)> = (1..=200u64)
        .map(|i| {
            let mut r = result("home", if i <= 100 { 1_000 } else { 61_000 });
            r.phases.connect = Some(i * 1_000);
            (i, r)
        })
        .collect();
    store.ingest("p1", "me-south", &batch, 0).unwrap();
    // A redelivery of the same batch must not count twice.
    store.ingest("p1", "me-south", &batch, 0).unwrap();
    let minutes = store
        .rollup_minutes("home", "me-south", "connect", 0, 120_000)
        .unwrap();
    assert_eq!(minutes.len(), 2);
    assert_eq!((minutes[0].minute_ms, minutes[0].count), (0, 100));
    let within = |got: f64, want: f64| (got - want).abs() <= want * 0.02;
    assert!(within(minutes[0].p50_us, 50_000.0), "{minutes:?}");
    assert!(within(minutes[1].p90_us, 190_000.0), "{minutes:?}");
    let all = store
        .rollup_range("home", "me-south", "connect", 0, 120_000)
        .unwrap()
        .unwrap();
    assert_eq!(all.count, 200);
    assert!(
        within(all.p50_us, 100_000.0) && within(all.p99_us, 198_000.0),
        "{all:?}"
    );
    // Other regions and phases are separate rows; TLS is rolled up too, and a region with no
    // data has none.
    assert!(
        store
            .rollup_range("home", "eu-central", "connect", 0, 120_000)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .rollup_range("home", "me-south", "tls", 0, 120_000)
            .unwrap()
            .unwrap()
            .count,
        200
    );
    assert_eq!(
        store
            .prune_rollups(120_000, Duration::from_secs(60))
            .unwrap(),
        6,
        "minute 0's six phases"
    );
}

#[test]
fn group_commit_stores_each_probe_seq_once_and_rolls_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    for p in ["p1", "p2"] {
        store.upsert_probe(p, "me-south", None, 0).unwrap();
    }
    let batch = |seqs: std::ops::RangeInclusive<u64>| -> Vec<(u64, CheckResult)> {
        seqs.map(|i| (i, result("home", 1_000))).collect()
    };
    let (a, b, c) = (batch(1..=10), batch(6..=15), batch(1..=10));
    // p1's two overlapping batches and p2's in one transaction: seqs 6..=10 of p1 twice.
    let each = store
        .ingest_many(
            &[
                ("p1", "me-south", &a),
                ("p1", "me-south", &b),
                ("p2", "me-south", &c),
            ],
            5,
        )
        .unwrap();
    let ok = |stored, duplicates| Ingested { stored, duplicates };
    assert_eq!(each, vec![ok(10, 0), ok(5, 5), ok(10, 0)]);
    // The whole group again, plus a new batch: only the new one is stored.
    let d = batch(16..=20);
    let each = store
        .ingest_many(
            &[
                ("p1", "me-south", &a),
                ("p2", "me-south", &c),
                ("p1", "me-south", &d),
            ],
            6,
        )
        .unwrap();
    assert_eq!(each, vec![ok(0, 10), ok(0, 10), ok(5, 0)]);
    let p1 = store.results("p1").unwrap();
    assert_eq!(
        p1.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert!(
        p1.iter()
            .all(|(_, r)| r.probe_id == "p1" && r.region == "me-south")
    );
    assert_eq!(store.results("p2").unwrap().len(), 10);
    // Rolled up once each: 20 from p1, 10 from p2, in one (check, region, phase, minute).
    let total = store
        .rollup_range("home", "me-south", "total", 0, 60_000)
        .unwrap()
        .unwrap();
    assert_eq!(total.count, 30);
    assert_eq!(store.probe("p1").unwrap().unwrap().last_seen_ms, Some(6));
}

fn sequenced(seq: u64, started_ms: i64, burst: Option<u64>) -> SequencedResult {
    SequencedResult {
        seq,
        result: result("home", started_ms),
        burst: burst.map(|burst_id| BurstTag { burst_id }),
    }
}

#[test]
fn a_v4_database_gains_burst_columns_and_keeps_its_results_as_scheduled_runs() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A database as a v4 coordinator left it, holding one result.
        let mut conn = Connection::open(dir.path().join("meridian.db")).unwrap();
        for (i, sql) in migrations::MIGRATIONS[..4].iter().enumerate() {
            let tx = conn.transaction().unwrap();
            tx.execute_batch(sql).unwrap();
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .unwrap();
            tx.commit().unwrap();
        }
        let mut old = result("home", 1_000);
        "p1".clone_into(&mut old.probe_id);
        "me-south".clone_into(&mut old.region);
        let record = rmp_serde::to_vec_named(&old).unwrap();
        conn.execute(
            "INSERT INTO results (probe_id, seq, check_id, region, scheduled_ms, started_ms,
               received_ms, ok, total_us, record)
             VALUES ('p1', 1, 'home', 'me-south', 1000, 1000, 2000, 1, 410000, ?1)",
            [record],
        )
        .unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_schema());
    let columns: Vec<String> = store
        .conn
        .prepare("SELECT name FROM pragma_table_info('results')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(columns.iter().any(|c| c == "burst_id"), "{columns:?}");
    // The v4 row reads back as a scheduled run; new rows carry their tags next to it.
    store
        .ingest(
            "p1",
            "me-south",
            &[sequenced(2, 2_000, Some(9)), sequenced(3, 3_000, None)],
            4_000,
        )
        .unwrap();
    let got: Vec<(u64, Option<u64>)> = store
        .sequenced_results("p1")
        .unwrap()
        .iter()
        .map(|r| (r.seq, r.burst.map(|b| b.burst_id)))
        .collect();
    assert_eq!(got, [(1, None), (2, Some(9)), (3, None)]);
    drop(store);
    // Reopening does not migrate again.
    assert_eq!(
        Store::open(dir.path()).unwrap().schema_version().unwrap(),
        latest_schema()
    );
}

#[test]
fn burst_tags_round_trip_and_burst_runs_stay_out_of_the_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    // Scheduled runs at seq 1 and 4; a burst's three runs between them, and a burst id beyond
    // i64::MAX (SQLite's integers are signed).
    let batch = vec![
        sequenced(1, 1_000, None),
        sequenced(2, 2_000, Some(42)),
        sequenced(3, 3_000, Some(42)),
        sequenced(4, 4_000, None),
        sequenced(5, 5_000, Some(u64::MAX)),
    ];
    assert_eq!(
        store.ingest("p1", "me-south", &batch, 10_000).unwrap(),
        Ingested {
            stored: 5,
            duplicates: 0
        }
    );
    // A redelivery, even one that lost its tag on the way, keeps what was stored first.
    let again = vec![sequenced(2, 2_000, None), sequenced(6, 6_000, Some(42))];
    let each = store
        .ingest_many(&[("p1", "me-south", again.as_slice())], 11_000)
        .unwrap();
    assert_eq!(
        each,
        [Ingested {
            stored: 1,
            duplicates: 1
        }]
    );

    let stored = store.sequenced_results("p1").unwrap();
    let tags: Vec<(u64, Option<u64>)> = stored
        .iter()
        .map(|r| (r.seq, r.burst.map(|b| b.burst_id)))
        .collect();
    assert_eq!(
        tags,
        [
            (1, None),
            (2, Some(42)),
            (3, Some(42)),
            (4, None),
            (5, Some(u64::MAX)),
            (6, Some(42)),
        ]
    );
    assert!(
        stored
            .iter()
            .all(|r| r.result.probe_id == "p1" && r.result.region == "me-south")
    );
    // The pair view is the same records without tags.
    let pairs = store.results("p1").unwrap();
    assert_eq!(
        pairs,
        stored
            .iter()
            .map(|r| (r.seq, r.result.clone()))
            .collect::<Vec<_>>()
    );
    // The burst's rows are found by its id through the partial index.
    let burst_rows: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM results WHERE burst_id = ?1",
            [42],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(burst_rows, 3);
    // Only the two scheduled runs are rolled up.
    let total = store
        .rollup_range("home", "me-south", "total", 0, 60_000)
        .unwrap()
        .unwrap();
    assert_eq!(total.count, 2);
}

#[test]
fn ingest_says_which_results_were_newly_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.upsert_probe("p1", "me-south", None, 1_000).unwrap();
    store.upsert_probe("p2", "me-south", None, 1_000).unwrap();
    store
        .ingest("p1", "me-south", &[sequenced(1, 1_000, None)], 2_000)
        .unwrap();
    // p1's seq 1 again (a lost ack), its seq 2 new, p2's seq 1 new and then repeated.
    let p1 = [sequenced(1, 1_000, None), sequenced(2, 2_000, Some(5))];
    let p2 = [sequenced(1, 1_500, None), sequenced(1, 1_500, None)];
    let (each, fresh) = store
        .ingest_many_fresh(
            &[("p1", "me-south", &p1[..]), ("p2", "me-south", &p2[..])],
            3_000,
        )
        .unwrap();
    assert_eq!(
        each,
        [
            Ingested {
                stored: 1,
                duplicates: 1
            },
            Ingested {
                stored: 1,
                duplicates: 1
            }
        ]
    );
    assert_eq!(fresh, [vec![false, true], vec![true, false]]);
}

fn incident_record(id: u64, state: incidents::StoredState) -> incidents::IncidentRecord {
    incidents::IncidentRecord {
        id,
        class: "origin-down".into(),
        state,
        severity: "page".into(),
        regions: vec!["eu-central".into(), "us-east".into()],
        targets: vec!["home".into()],
        asns: vec![64500],
        probe: None,
        edge: None,
        onset_ms: 10_000,
        detected_ms: 12_500,
        ttd_ms: 2_500,
        paged_ms: Some(12_500),
        resolved_ms: None,
        explanation: "4 of 4 probes fail (http-status)".into(),
        evidence: vec![incidents::EvidenceRecord {
            region: "eu-central".into(),
            probes: 2,
            affected: 2,
            connect_base_ms: Some(0.4),
            connect_delta_ms: None,
            tls_base_ms: None,
            tls_delta_ms: None,
            server_base_ms: Some(1.5),
            server_delta_ms: Some(f64::NAN),
            failures: 2,
            failure_class: Some("http-status".into()),
        }],
        timeline: vec![incidents::TimelineRecord {
            at_ms: 10_000,
            what: "first anomalous sample".into(),
        }],
        updated_ms: 12_500,
        maintenance: Default::default(),
    }
}

#[test]
fn incidents_are_upserted_listed_and_interrupted_by_the_next_run() {
    use incidents::StoredState;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.begin_detection(1_000).unwrap(), (0, 0));
    let mut first = incident_record(1, StoredState::Confirmed);
    store.upsert_incident(&first).unwrap();
    let mut second = incident_record(2, StoredState::Paged);
    second.class = "regional-network".into();
    store.upsert_incident(&second).unwrap();
    // A later transition replaces the row.
    first.state = StoredState::Resolved;
    first.resolved_ms = Some(30_000);
    first.updated_ms = 30_000;
    store.upsert_incident(&first).unwrap();

    let all = store.incidents(false).unwrap();
    assert_eq!(all.len(), 2);
    // A NaN has no JSON form: it reads back as "not measured".
    let mut expected = first.clone();
    expected.evidence[0].server_delta_ms = None;
    assert_eq!(all[0], expected);
    assert_eq!(all[1].class, "regional-network");
    let open: Vec<u64> = store
        .incidents(true)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(open, [2]);

    // The next run: what was open is interrupted, and its ids continue after the highest.
    drop(store);
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.begin_detection(40_000).unwrap(), (2, 1));
    let two = store.incident(2).unwrap().unwrap();
    assert_eq!(
        (two.state, two.updated_ms),
        (StoredState::Interrupted, 40_000)
    );
    assert_eq!(two.resolved_ms, None, "nobody saw it end");
    assert!(store.incidents(true).unwrap().is_empty());
    assert_eq!(store.incident(3).unwrap(), None);
}

#[test]
fn an_unreadable_incident_column_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .upsert_incident(&incident_record(7, incidents::StoredState::Confirmed))
        .unwrap();
    store
        .conn
        .execute(
            "UPDATE incidents SET timeline = 'not json' WHERE id = 7",
            [],
        )
        .unwrap();
    let err = store.incidents(false).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::BadIncident {
                id: 7,
                column: "timeline",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn old_closed_incidents_are_pruned_but_ids_are_never_reused() {
    use incidents::StoredState;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let day = 86_400_000;
    let rows = [
        (1, StoredState::Resolved, 0),
        (2, StoredState::Interrupted, 0),
        (3, StoredState::Paged, 0),
        (4, StoredState::Resolved, 50 * day),
        (5, StoredState::Resolved, 0),
    ];
    for (id, state, updated) in rows {
        let mut r = incident_record(id, state);
        r.updated_ms = updated;
        store.upsert_incident(&r).unwrap();
    }
    let retention = Duration::from_secs(30 * 86_400);
    assert_eq!(store.prune_incidents(60 * day, retention).unwrap(), 2);
    let left: Vec<u64> = store
        .incidents(false)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    // 3 is open, 4 is recent, 5 is old but the highest id.
    assert_eq!(left, [3, 4, 5]);
    let (base, _) = store.begin_detection(60 * day).unwrap();
    assert_eq!(base, 5);
}
