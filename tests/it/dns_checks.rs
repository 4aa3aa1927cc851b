//! DNS checks against the in-process authoritative server: every supported record type comes
//! back as presentation text, response codes are reported and compared with the expected one,
//! answer expectations are enforced, TCP works, and broken servers are told apart (SERVFAIL
//! answered versus no answer at all).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use meridian_shared::check::{AnswerMatch, DnsCheck, Pattern, Rcode, RecordType, ResolverSpec};
use meridian_shared::result::CheckResult;
use meridian_tests::probe::{self, class, show};
use meridian_tests::{RunnerBuilder, ScriptedDns, ZoneServer};

async fn ask(
    resolver: ResolverSpec,
    name: &str,
    rtype: RecordType,
    tweak: impl FnOnce(&mut DnsCheck),
) -> CheckResult {
    let mut spec = DnsCheck::new(name, rtype, resolver);
    tweak(&mut spec);
    let runner = RunnerBuilder::new(resolver).build().expect("runner");
    probe::run(&runner, &probe::dns_check(spec)).await
}

fn answers(r: &CheckResult) -> Vec<String> {
    let d = r
        .dns
        .as_ref()
        .unwrap_or_else(|| panic!("no DNS detail: {}", show(r)));
    let mut a = d.answers.clone();
    a.sort();
    a
}

fn rcode(r: &CheckResult) -> Rcode {
    r.dns
        .as_ref()
        .unwrap_or_else(|| panic!("no DNS detail: {}", show(r)))
        .rcode
}

#[tokio::test]
async fn every_record_type_is_answered_as_presentation_text() {
    let dns = ZoneServer::start().await.expect("dns");
    let cases: [(&str, RecordType, &[&str]); 7] = [
        ("origin.example.test", RecordType::A, &["127.0.0.1"]),
        (
            "mixed.example.test",
            RecordType::A,
            &["127.0.0.1", "127.0.0.2"],
        ),
        ("v6.example.test", RecordType::Aaaa, &["::1"]),
        (
            "www.example.test",
            RecordType::Cname,
            &["origin.example.test."],
        ),
        ("example.test", RecordType::Mx, &["10 mail.example.test."]),
        ("example.test", RecordType::Ns, &["ns1.example.test."]),
        (
            "example.test",
            RecordType::Soa,
            &["ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60"],
        ),
    ];
    for (name, rtype, want) in cases {
        let r = ask(dns.udp(), name, rtype, |_| {}).await;
        assert_eq!(class(&r), "none", "{name} {rtype}: {}", show(&r));
        assert_eq!(rcode(&r), Rcode::NoError);
        assert_eq!(answers(&r), want, "{name} {rtype}: {}", show(&r));
        assert!(r.phases.dns.expect("dns phase") > 0, "{}", show(&r));
        assert_eq!(
            r.remote_ip,
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "the server asked"
        );
    }
}

#[tokio::test]
async fn txt_answers_are_quoted_presentation_text() {
    // shared/src/check/mod.rs (AnswerMatch) documents answers as presentation text, TXT
    // quoted: `"v=spf1 -all"`, which is also what an operator copies from `dig`. Fails today:
    // probe/src/dns.rs renders answers with hickory's `Display`, which drops the quotes (and
    // joins a record's strings with nothing between them).
    let dns = ZoneServer::start().await.expect("dns");
    let r = ask(dns.udp(), "example.test", RecordType::Txt, |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(answers(&r), ["\"v=spf1 -all\""], "{}", show(&r));
    let r = ask(dns.udp(), "txt.example.test", RecordType::Txt, |c| {
        c.expect_answers = Some(AnswerMatch::Exact(BTreeSet::from([
            "\"hello probe\"".to_string()
        ])));
    })
    .await;
    assert_eq!(
        class(&r),
        "none",
        "the documented form matches: {}",
        show(&r)
    );
}

#[tokio::test]
async fn cname_answer_is_the_alias_target_only() {
    let dns = ZoneServer::start().await.expect("dns");
    // Asking A for an alias returns the address at the end of the chain, not the CNAME.
    let r = ask(dns.udp(), "www.example.test", RecordType::A, |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(answers(&r), ["127.0.0.1"], "{}", show(&r));
}

#[tokio::test]
async fn nxdomain_fails_unless_expected() {
    let dns = ZoneServer::start().await.expect("dns");
    let r = ask(dns.udp(), "nope.example.test", RecordType::A, |_| {}).await;
    assert_eq!(class(&r), "dns-rcode", "{}", show(&r));
    assert_eq!(rcode(&r), Rcode::NxDomain, "{}", show(&r));
    assert!(answers(&r).is_empty());
    assert!(
        r.error
            .as_ref()
            .expect("error")
            .message
            .contains("NXDOMAIN"),
        "{}",
        show(&r)
    );

    let r = ask(dns.udp(), "nope.example.test", RecordType::A, |c| {
        c.expect_rcode = Rcode::NxDomain
    })
    .await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(rcode(&r), Rcode::NxDomain, "{}", show(&r));
}

#[tokio::test]
async fn name_without_records_of_the_type_is_noerror_with_no_answers() {
    let dns = ZoneServer::start().await.expect("dns");
    let r = ask(dns.udp(), "txt.example.test", RecordType::A, |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(rcode(&r), Rcode::NoError, "{}", show(&r));
    assert!(answers(&r).is_empty(), "{}", show(&r));
}

#[tokio::test]
async fn name_outside_the_zone_is_refused() {
    let dns = ZoneServer::start().await.expect("dns");
    let r = ask(dns.udp(), "elsewhere.test", RecordType::A, |_| {}).await;
    assert_eq!(class(&r), "dns-rcode", "{}", show(&r));
    assert_eq!(rcode(&r), Rcode::Refused, "{}", show(&r));
}

#[tokio::test]
async fn expected_answers_are_compared_as_a_set() {
    let dns = ZoneServer::start().await.expect("dns");
    let exact = |items: &[&str]| {
        Some(AnswerMatch::Exact(
            items.iter().map(|s| s.to_string()).collect(),
        ))
    };
    let r = ask(dns.udp(), "mixed.example.test", RecordType::A, |c| {
        c.expect_answers = exact(&["127.0.0.2", "127.0.0.1"]);
    })
    .await;
    assert_eq!(class(&r), "none", "order does not matter: {}", show(&r));

    let r = ask(dns.udp(), "mixed.example.test", RecordType::A, |c| {
        c.expect_answers = exact(&["127.0.0.1"]);
    })
    .await;
    assert_eq!(
        class(&r),
        "dns-answer",
        "a missing answer fails: {}",
        show(&r)
    );
    assert_eq!(
        answers(&r),
        ["127.0.0.1", "127.0.0.2"],
        "the answers are still reported"
    );

    let r = ask(dns.udp(), "example.test", RecordType::Mx, |c| {
        c.expect_answers = exact(&["10 MAIL.example.test"]);
    })
    .await;
    assert_eq!(
        class(&r),
        "none",
        "names ignore case and the final dot: {}",
        show(&r)
    );
}

#[tokio::test]
async fn expected_answers_by_regex() {
    let dns = ZoneServer::start().await.expect("dns");
    let re = |p: &str| Some(AnswerMatch::Regex(Pattern::new(p).expect("regex")));
    let r = ask(dns.udp(), "mixed.example.test", RecordType::A, |c| {
        c.expect_answers = re(r"^127\.0\.0\.\d$")
    })
    .await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let r = ask(dns.udp(), "mixed.example.test", RecordType::A, |c| {
        c.expect_answers = re(r"^127\.0\.0\.1$")
    })
    .await;
    assert_eq!(
        class(&r),
        "dns-answer",
        "every answer must match: {}",
        show(&r)
    );
}

#[tokio::test]
async fn queries_over_tcp_use_tcp() {
    let dns = ZoneServer::start().await.expect("dns");
    let r = ask(dns.tcp(), "example.test", RecordType::Mx, |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(answers(&r), ["10 mail.example.test."]);
    assert!(dns.queries().tcp() >= 1, "asked over TCP");
    assert_eq!(dns.queries().udp(), 0, "never over UDP");
}

#[tokio::test]
async fn queries_over_udp_use_udp() {
    let dns = ZoneServer::start().await.expect("dns");
    let r = ask(dns.udp(), "origin.example.test", RecordType::A, |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(dns.queries().udp(), 1, "one question, one datagram");
    assert_eq!(dns.queries().tcp(), 0);
}

#[tokio::test]
async fn servfail_is_reported_as_an_rcode() {
    let dns = ScriptedDns::servfail().await.expect("dns");
    let r = ask(dns.udp(), "origin.example.test", RecordType::A, |c| {
        c.timeout = Duration::from_secs(2)
    })
    .await;
    assert_eq!(class(&r), "dns-rcode", "{}", show(&r));
    assert_eq!(rcode(&r), Rcode::ServFail, "{}", show(&r));
    assert!(dns.queries().total() >= 1);
}

#[tokio::test]
async fn servfail_can_be_the_expected_rcode() {
    let dns = ScriptedDns::servfail().await.expect("dns");
    let r = ask(dns.udp(), "origin.example.test", RecordType::A, |c| {
        c.timeout = Duration::from_secs(2);
        c.expect_rcode = Rcode::ServFail;
    })
    .await;
    assert_eq!(class(&r), "none", "{}", show(&r));
}

#[tokio::test]
async fn silent_server_is_a_dns_timeout_within_the_check_timeout() {
    let dns = ScriptedDns::silent().await.expect("dns");
    let r = ask(dns.udp(), "origin.example.test", RecordType::A, |c| {
        c.timeout = Duration::from_millis(600)
    })
    .await;
    assert_eq!(class(&r), "dns-timeout", "{}", show(&r));
    assert_eq!(r.dns, None, "no response, no detail: {}", show(&r));
    assert!(r.phases.total >= 500_000, "{}", show(&r));
    assert!(
        r.phases.total < 3_000_000,
        "bounded by the timeout: {}",
        show(&r)
    );
    assert!(dns.queries().total() >= 1);
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let dns = ZoneServer::start().await.expect("dns");
    let r = ask(dns.udp(), "big.example.test", RecordType::Txt, |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(
        answers(&r).len(),
        10,
        "every record, not a truncated subset: {}",
        show(&r)
    );
    assert!(dns.queries().udp() >= 1, "asked over UDP first");
    assert!(dns.queries().tcp() >= 1, "then over TCP after truncation");
}
