//! Tests of the quorum and classification rules, including properties: the order probes are
//! listed in never changes a verdict, and every region failing is never "regional".

use proptest::prelude::*;

use super::*;

fn judged(verdict: Verdict) -> Judged {
    // Bad streaks start at 1 000; fine samples were taken after that, at 2 000.
    Judged {
        t: if verdict.is_bad() { 1_000 } else { 2_000 },
        verdict,
        retransmit: false,
        burst: false,
        late: false,
        base: [Some(100.0), Some(100.0), Some(60.0), Some(3.0)],
        delta: [Some(0.0); 4],
        z: [Some(0.0); 4],
        error: None,
    }
}

fn view<'a>(id: &'a str, asn: u32, v: Verdict, j: &'a Judged) -> ProbeView<'a> {
    ProbeView {
        id,
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
