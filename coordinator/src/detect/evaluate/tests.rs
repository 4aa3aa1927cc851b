//! Tests of the quorum and classification rules, including properties: the order probes are
//! listed in never changes a verdict, and every region failing is never "regional".

use proptest::prelude::*;

use super::*;

fn judged(verdict: Verdict) -> Judged {
    // Bad streaks start at 1 000; fine samples were taken after that, at 2 000. A path verdict
    // is a 150 ms step.
    let step = if verdict == Verdict::Path { 150.0 } else { 0.0 };
    Judged {
        t: if verdict.is_bad() { 1_000 } else { 2_000 },
        verdict,
        retransmit: false,
        burst: false,
        late: false,
        base: [Some(100.0), Some(100.0), Some(60.0), Some(3.0)],
        delta: [Some(step), Some(step), Some(0.0), Some(0.0)],
        z: [Some(0.0); 4],
        error: None,
    }
}

fn view<'a>(id: &'a str, asn: u32, v: Verdict, j: &'a Judged) -> ProbeView<'a> {
    ProbeView {
        id,
        slot: 0,
        streak_samples: usize::from(v.is_bad()),
        asn: Some(asn),
        verdict: Some(v),
        streak_start: v.is_bad().then_some(1_000),
        latest: Some(j),
        connects: 10,
        retransmits: 0,
        first_retransmit: None,
        loss_rate: 0.002,
        edge: None,
    }
}

const IDS: [&str; 5] = ["p1", "p2", "p3", "p4", "p5"];

fn region(verdicts: &[Verdict], asns: &[u32]) -> RegionEval {
    let js: Vec<Judged> = verdicts.iter().map(|v| judged(*v)).collect();
    let views: Vec<ProbeView<'_>> = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| view(IDS[i], asns[i], *v, &js[i]))
        .collect();
    evaluate_region("r", &views)
}

#[test]
fn quorum_is_max_two_and_sixty_percent() {
    assert_eq!(quorum(1), 2);
    assert_eq!(quorum(2), 2);
    assert_eq!(quorum(3), 2);
    assert_eq!(quorum(4), 3);
    assert_eq!(quorum(5), 3);
    assert_eq!(quorum(10), 6);
}

#[test]
fn three_of_five_on_two_networks_confirm_the_path() {
    use Verdict::*;
    let e = region(&[Path, Path, Path, Ok, Ok], &[1, 1, 2, 2, 2]);
    let c = e.confirmed.expect("confirmed");
    assert_eq!(c.family, Family::Net);
    assert!(!c.hard);
    assert_eq!(c.onset_ms, 1_000);
}

#[test]
fn one_network_alone_is_not_a_regional_quorum() {
    use Verdict::*;
    // Three probes agree, but all on one ASN while the region has two: one witness.
    let e = region(&[Ok, Ok, Path, Path, Path], &[1, 1, 2, 2, 2]);
    assert_eq!(e.confirmed, None);
}

#[test]
fn two_probes_of_five_do_not_confirm() {
    use Verdict::*;
    let e = region(&[Path, Unreachable, Ok, Ok, Ok], &[1, 2, 1, 2, 1]);
    assert_eq!(e.confirmed, None);
    assert_eq!(e.bad.len(), 2);
}

#[test]
fn isp_needs_its_probes_bad_and_the_others_fine() {
    use Verdict::*;
    let mut evals = BTreeMap::new();
    evals.insert(
        "eu-west".to_string(),
        region(&[Path, Path, Ok, Ok, Ok], &[1, 1, 2, 2, 2]),
    );
    evals.insert(
        "eu-central".to_string(),
        region(&[Path, Path, Ok, Ok, Ok], &[1, 1, 2, 2, 2]),
    );
    evals.insert(
        "us-east".to_string(),
        region(&[Ok, Ok, Ok, Ok, Ok], &[1, 1, 2, 2, 2]),
    );
    let f = classify("www", &evals, &BTreeSet::new(), i64::MAX);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].class, Class::Isp);
    assert_eq!(f[0].asns.iter().collect::<Vec<_>>(), [&1]);
    assert_eq!(f[0].regions.len(), 2);
}

#[test]
fn server_signature_in_most_regions_is_the_origin_and_in_one_is_regional_server() {
    use Verdict::*;
    let bad = || region(&[Slow, Slow, Slow, Ok, Ok], &[1, 1, 2, 2, 2]);
    let ok = || region(&[Ok; 5], &[1, 1, 2, 2, 2]);
    let mut evals = BTreeMap::new();
    evals.insert("a".to_string(), bad());
    evals.insert("b".to_string(), bad());
    evals.insert("c".to_string(), ok());
    assert_eq!(
        classify("www", &evals, &BTreeSet::new(), i64::MAX)[0].class,
        Class::OriginSlow
    );
    evals.insert("b".to_string(), ok());
    evals.insert("d".to_string(), ok());
    assert_eq!(
        classify("www", &evals, &BTreeSet::new(), i64::MAX)[0].class,
        Class::RegionalServer
    );
}

#[test]
fn a_subset_is_not_called_before_the_others_were_checked_since_it_began() {
    use Verdict::*;
    let js: Vec<Judged> = (0..5)
        .map(|_| Judged {
            t: 500,
            ..judged(Ok)
        })
        .collect();
    let bad: Vec<Judged> = (0..5).map(|_| judged(Slow)).collect();
    let stale_ok = |js: &[Judged]| {
        let views: Vec<ProbeView<'_>> = (0..5)
            .map(|i| view(IDS[i], 1 + (i as u32 % 2), Ok, &js[i]))
            .collect();
        evaluate_region("r", &views)
    };
    let slow: Vec<ProbeView<'_>> = (0..5)
        .map(|i| view(IDS[i], 1 + (i as u32 % 2), Slow, &bad[i]))
        .collect();
    let mut evals = BTreeMap::new();
    evals.insert("a".to_string(), evaluate_region("a", &slow));
    evals.insert("b".to_string(), stale_ok(&js));
    evals.insert("c".to_string(), stale_ok(&js));
    evals.insert("d".to_string(), stale_ok(&js));
    assert!(
        classify("www", &evals, &BTreeSet::new(), i64::MAX).is_empty(),
        "others last checked before the onset"
    );
    evals.insert("b".to_string(), region(&[Ok; 5], &[1, 1, 2, 2, 2]));
    evals.insert("c".to_string(), region(&[Ok; 5], &[1, 1, 2, 2, 2]));
    assert_eq!(
        classify("www", &evals, &BTreeSet::new(), i64::MAX)[0].class,
        Class::RegionalServer
    );
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop::sample::select(vec![
        Verdict::Ok,
        Verdict::Loss,
        Verdict::Slow,
        Verdict::Path,
        Verdict::Error,
        Verdict::Unreachable,
        Verdict::DnsFail,
    ])
}

proptest! {
    #[test]
    fn probe_order_never_changes_the_verdict(
        vs in prop::collection::vec(verdict(), 5),
        asns in prop::collection::vec(1u32..3, 5),
        rot in 0usize..5,
    ) {
        let a = region(&vs, &asns);
        let mut vs2 = vs.clone();
        let mut asns2 = asns.clone();
        vs2.rotate_left(rot);
        asns2.rotate_left(rot);
        let js: Vec<Judged> = vs2.iter().map(|v| judged(*v)).collect();
        let ids: Vec<&str> = (0..5).map(|i| IDS[(i + rot) % 5]).collect();
        let views: Vec<ProbeView<'_>> = (0..5).map(|i| view(ids[i], asns2[i], vs2[i], &js[i])).collect();
        let b = evaluate_region("r", &views);
        prop_assert_eq!(a.confirmed.as_ref().map(|c| (c.family, c.hard)), b.confirmed.as_ref().map(|c| (c.family, c.hard)));
        let mut wa = a.confirmed.map(|c| c.witnesses).unwrap_or_default();
        let mut wb = b.confirmed.map(|c| c.witnesses).unwrap_or_default();
        wa.sort();
        wb.sort();
        prop_assert_eq!(wa, wb);
    }

    #[test]
    fn every_region_failing_is_never_regional(
        v in prop::sample::select(vec![Verdict::Path, Verdict::Unreachable, Verdict::Error, Verdict::Slow, Verdict::DnsFail]),
        regions in 3usize..8,
    ) {
        let mut evals = BTreeMap::new();
        for r in 0..regions {
            evals.insert(format!("r{r}"), region(&[v; 5], &[1, 1, 2, 2, 2]));
        }
        let f = classify("www", &evals, &BTreeSet::new(), i64::MAX);
        prop_assert_eq!(f.len(), 1);
        prop_assert!(
            !matches!(f[0].class, Class::RegionalNetwork | Class::RegionalServer | Class::DnsResolver | Class::Isp),
            "{:?}", f[0].class
        );
        prop_assert_eq!(f[0].regions.len(), regions);
    }
}

/// A region whose probes saw `verdicts`, their latest samples `step_ms` over a 20 ms
/// round-trip baseline, each probe with `retransmits[i]` of 20 connects retransmitted.
fn region_with(
    verdicts: &[Verdict],
    asns: &[u32],
    step_ms: f64,
    retransmits: &[u64],
) -> RegionEval {
    let js: Vec<Judged> = verdicts
        .iter()
        .map(|v| Judged {
            base: [Some(20.0), Some(20.0), Some(60.0), Some(3.0)],
            delta: [Some(step_ms), Some(step_ms), Some(0.0), Some(0.0)],
            ..judged(*v)
        })
        .collect();
    let views: Vec<ProbeView<'_>> = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| ProbeView {
            connects: 20,
            retransmits: retransmits[i],
            first_retransmit: (retransmits[i] > 0).then_some(1_500),
            ..view(IDS[i], asns[i], *v, &js[i])
        })
        .collect();
    evaluate_region("r", &views)
}

#[test]
fn a_round_trip_step_pages_only_when_large() {
    use Verdict::*;
    for (step, severity) in [(18.0, Severity::Ticket), (45.0, Severity::Page)] {
        let mut evals = BTreeMap::new();
        let cut = region_with(&[Path, Path, Path, Ok, Ok], &[1, 1, 2, 2, 2], step, &[0; 5]);
        evals.insert("a".to_string(), cut);
        evals.insert("b".to_string(), region(&[Ok; 5], &[1, 1, 2, 2, 2]));
        evals.insert("c".to_string(), region(&[Ok; 5], &[1, 1, 2, 2, 2]));
        let f = classify("www", &evals, &BTreeSet::new(), i64::MAX);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            (f[0].class, f[0].severity),
            (Class::RegionalNetwork, severity),
            "+{step} ms over 20 ms"
        );
    }
}

#[test]
fn slow_samples_in_a_region_losing_packets_are_the_paths() {
    use Verdict::*;
    let slow = [Slow, Slow, Slow, Ok, Ok];
    let asns = [1, 1, 2, 2, 2];
    let e = region_with(&slow, &asns, 0.0, &[0; 5]);
    assert_eq!(e.confirmed.map(|c| c.family), Some(Family::Server));
    let e = region_with(&slow, &asns, 0.0, &[3, 2, 2, 3, 2]);
    let c = e.confirmed.expect("confirmed by the loss test");
    assert_eq!(c.family, Family::Net);
    assert_eq!(c.loss, Some((12, 100)));
}

#[test]
fn loss_that_one_probe_of_the_other_networks_sees_is_not_the_regions() {
    use Verdict::*;
    let asns = [1, 1, 1, 2, 2];
    assert_eq!(
        region_with(&[Ok; 5], &asns, 0.0, &[4, 4, 4, 3, 0]).confirmed,
        None
    );
    let e = region_with(&[Ok; 5], &asns, 0.0, &[4, 4, 4, 2, 1]);
    assert!(e.confirmed.is_some_and(|c| c.loss.is_some()));
}

#[test]
fn isp_needs_a_step_clear_of_the_gate_and_a_settled_streak() {
    use Verdict::*;
    let isp = |step: f64, samples: usize, settled_before: i64| {
        let mut evals = BTreeMap::new();
        for r in ["eu-west", "eu-central"] {
            let mut e = region_with(&[Path, Path, Ok, Ok, Ok], &[1, 1, 2, 2, 2], step, &[0; 5]);
            for b in &mut e.bad {
                b.streak_samples = samples;
            }
            evals.insert(r.to_string(), e);
        }
        classify("www", &evals, &BTreeSet::new(), settled_before)
            .iter()
            .filter(|f| f.class == Class::Isp)
            .count()
    };
    assert_eq!(isp(150.0, 1, i64::MAX), 1, "bad for a burst cooldown");
    assert_eq!(isp(150.0, 3, i64::MIN), 1, "bad in every run of a burst");
    assert_eq!(isp(150.0, 1, i64::MIN), 0, "not settled yet");
    assert_eq!(
        isp(18.0, 3, i64::MAX),
        0,
        "a step at the gate flags probes by chance"
    );
}
