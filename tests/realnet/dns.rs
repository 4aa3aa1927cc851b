//! The real DNS servers of the harness (`meridian_tests::realnet::dns`): NSD and one Unbound
//! resolver per region, asked by the real probe's DNS check from inside the regions. Shows the
//! fault scenario 8 injects: a resolver cut off from the authoritative answers SERVFAIL (the
//! rcode itself, not a timeout) while the other regions' resolvers answer, and answers again
//! after the repair.
//!
//! Root only: as any other user it prints the harness's one SKIP line and passes.

use std::time::Duration;

use meridian_tests::realnet::dns::{Answer, DnsServers};
use meridian_tests::realnet::{DNS, Host, RealNet, Rule};
use tokio::time::Instant;

use crate::emulator::SERIAL;

/// Asks `region`'s resolver from `probe` until `done` accepts the answer (at most `budget`);
/// every answer seen, oldest first.
async fn until(
    net: &RealNet,
    dns: &DnsServers,
    probe: &Host,
    region: &str,
    budget: Duration,
    done: impl Fn(&Answer) -> bool,
) -> Vec<Answer> {
    let deadline = Instant::now() + budget;
    let mut seen = Vec::new();
    loop {
        let r = dns
            .query(net, probe, region)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let ok = done(&r);
        seen.push(r);
        if ok {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{region}: not within {budget:?}: {:?}\n{}",
            seen.iter().map(Answer::to_string).collect::<Vec<_>>(),
            dns.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_resolver_cut_off_from_the_authoritative_answers_servfail_and_recovers() {
    let _serial = SERIAL.lock().await;
    let Some(net) = RealNet::builder()
        .regions(&["eu-central", "ap-south"])
        .probes_per_region(1)
        .resolvers()
        .build_or_skip()
        .unwrap()
    else {
        return;
    };
    for region in ["eu-central", "ap-south"] {
        let base = Rule::delay(Duration::from_millis(20));
        net.wan().set_link(region, "*", base).unwrap();
        net.wan().set_link("*", region, base).unwrap();
    }
    let origin = net.origin().addr;
    let dir = tempfile::tempdir().unwrap();
    let dns = DnsServers::start(&net, origin, dir.path()).await.unwrap();
    let (cut, fine) = (
        net.probe("ap-south", 0).unwrap(),
        net.probe("eu-central", 0).unwrap(),
    );
    let answered = |r: &Answer| r.is("NOERROR");

    let healthy = until(
        &net,
        &dns,
        cut,
        "ap-south",
        Duration::from_secs(5),
        answered,
    )
    .await;
    let last = healthy.last().unwrap();
    assert_eq!(last.answers, Some(vec![origin.to_string()]), "{last}");
    // Inside the region the resolver is a LAN away: the region's base delay is not paid.
    let local = until(&net, &dns, cut, "ap-south", Duration::from_secs(5), |r| {
        answered(r) && r.dns_ms.is_some_and(|ms| ms < 15.0)
    })
    .await;
    eprintln!(
        "realnet dns: healthy answer: {} (a cache hit; a miss adds the 40 ms round trip)",
        local.last().unwrap()
    );

    let injected = Instant::now();
    net.wan()
        .set_path("ap-south", DNS, Rule::blackhole())
        .unwrap();
    let servfail = |r: &Answer| r.is("SERVFAIL");
    let failing = until(
        &net,
        &dns,
        cut,
        "ap-south",
        Duration::from_secs(10),
        servfail,
    )
    .await;
    let onset = injected.elapsed();
    let still = dns.query(&net, fine, "eu-central").await.unwrap();
    assert!(
        answered(&still),
        "the other region's resolver answers: {still}"
    );
    let failing_after = until(
        &net,
        &dns,
        cut,
        "ap-south",
        Duration::from_secs(2),
        servfail,
    )
    .await;
    assert_eq!(
        failing_after.len(),
        1,
        "SERVFAIL again at once, not a timeout"
    );

    let repaired = Instant::now();
    net.wan()
        .set_path("ap-south", DNS, Rule::default())
        .unwrap();
    let back = until(
        &net,
        &dns,
        cut,
        "ap-south",
        Duration::from_secs(15),
        answered,
    )
    .await;
    eprintln!(
        "realnet dns: SERVFAIL {:.1} s after the cut (answers until then: {:?}), answers {:.1} s \
         after the repair ({} tries)",
        onset.as_secs_f64(),
        failing.iter().map(Answer::to_string).collect::<Vec<_>>(),
        repaired.elapsed().as_secs_f64(),
        back.len(),
    );
    dns.stop().await.unwrap();
    net.teardown().unwrap();
}
