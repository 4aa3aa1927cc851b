//! The generator's physics: each fault moves exactly the phases it should, by what it says.

use meridian_shared::check::Rcode;
use meridian_shared::result::{CheckResult, ErrorClass};

use super::super::generate::{DNS_TIMEOUT_MS, TIMEOUT_MS, run_check};
use super::super::world::{DNS_TTL_MS, World, rng_for};
use super::world;

const MIN: i64 = 60_000;

/// Probe `probe` runs `target` at `at_ms` after the start, with the draws of `draw`.
fn run_at(w: &World, probe: &str, target: &str, at_ms: i64, draw: u64) -> CheckResult {
    let p = w.probe_index(probe).unwrap();
    let k = w.target_index(target).unwrap();
    let t = w.start_ms + at_ms;
    run_check(w, p, k, t, t, &mut rng_for(99, &[draw]))
}

fn ms(us: Option<u64>) -> f64 {
    us.unwrap() as f64 / 1000.0
}

/// Phase deltas (connect, tls, ttfb) between a run during the fault (minute 15) and the same
/// draws before it (minute 5).
fn deltas(w: &World, probe: &str, target: &str) -> (f64, f64, f64) {
    let before = run_at(w, probe, target, 5 * MIN, 1);
    let during = run_at(w, probe, target, 15 * MIN, 1);
    assert_eq!(
        before.phases.dns, during.phases.dns,
        "no fault here touches DNS"
    );
    let d = |f: fn(&CheckResult) -> Option<u64>| ms(f(&during)) - ms(f(&before));
    (
        d(|r| r.phases.connect),
        d(|r| r.phases.tls),
        d(|r| r.phases.ttfb),
    )
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() < 0.01
}

#[test]
fn base_rtt_follows_great_circle_distance() {
    let w = world("");
    let connect = |p: &str| ms(run_at(&w, p, "www", 0, 1).phases.connect);
    let (home, europe, gulf) = (
        connect("us-east/1"),
        connect("eu-west/1"),
        connect("me-south/1"),
    );
    assert!((1.0..15.0).contains(&home), "{home}");
    assert!((75.0..110.0).contains(&europe), "{europe}");
    assert!((150.0..220.0).contains(&gulf), "{gulf}");
    // Probes of one region differ by a few ms, not more.
    let mates = ["eu-west/1", "eu-west/2", "eu-west/3"].map(connect);
    let spread = mates.iter().copied().fold(f64::MIN, f64::max)
        - mates.iter().copied().fold(f64::MAX, f64::min);
    assert!(spread > 0.0 && spread < 6.0, "{mates:?}");
}

#[test]
fn a_path_fault_adds_its_rtt_to_every_round_trip() {
    let w = world(
        "[[target]]\nid = \"legacy\"\norigin = \"us-east\"\ntls = \"1.2\"\n\n\
         [[fault]]\nkind = \"path\"\nregions = [\"me-south\"]\nat = \"10m\"\nfor = \"10m\"\nrtt_ms = 180\n",
    );
    let (connect, tls, ttfb) = deltas(&w, "me-south/2", "www");
    assert!(
        close(connect, 180.0) && close(tls, 180.0) && close(ttfb, 180.0),
        "{connect} {tls} {ttfb}"
    );
    // TLS 1.2 takes two round trips, so twice the delay.
    let (_, tls12, _) = deltas(&w, "me-south/2", "legacy");
    assert!(close(tls12, 360.0), "{tls12}");
    assert_eq!(deltas(&w, "eu-west/2", "www"), (0.0, 0.0, 0.0));
    // After the window, back to normal.
    let after = run_at(&w, "me-south/2", "www", 25 * MIN, 1);
    assert_eq!(
        after.phases,
        run_at(&w, "me-south/2", "www", 5 * MIN, 1).phases
    );
}

#[test]
fn an_origin_server_delay_raises_the_first_byte_only() {
    let w = world("[[fault]]\nkind = \"origin\"\nat = \"10m\"\nfor = \"10m\"\nserver_ms = 800\n");
    for probe in ["us-east/1", "me-south/3"] {
        let (connect, tls, ttfb) = deltas(&w, probe, "www");
        assert!(
            close(connect, 0.0) && close(tls, 0.0) && close(ttfb, 800.0),
            "{probe}: {connect} {tls} {ttfb}"
        );
    }
    let w = world(
        "[[fault]]\nkind = \"origin\"\nregions = [\"me-south\"]\nat = \"10m\"\nfor = \"10m\"\ntls_ms = 500\n",
    );
    let (connect, tls, ttfb) = deltas(&w, "me-south/1", "www");
    assert!(
        close(connect, 0.0) && close(tls, 500.0) && close(ttfb, 0.0),
        "{connect} {tls} {ttfb}"
    );
    assert_eq!(
        deltas(&w, "eu-west/1", "www"),
        (0.0, 0.0, 0.0),
        "server-side, for me-south only"
    );
}

#[test]
fn origin_errors_are_statuses_after_a_normal_connection() {
    let w = world("[[fault]]\nkind = \"origin\"\nat = \"10m\"\nerror_rate = 1.0\nstatus = 503\n");
    let r = run_at(&w, "eu-west/1", "www", 15 * MIN, 1);
    assert_eq!(r.error.as_ref().unwrap().class, ErrorClass::HttpStatus);
    assert_eq!(r.http.as_ref().unwrap().status, Some(503));
    assert!(r.phases.connect.is_some() && r.phases.ttfb.is_some());
    let ok = run_at(&w, "eu-west/1", "www", 5 * MIN, 1);
    assert!(ok.passed(), "{ok:?}");
    assert_eq!(ok.http.as_ref().unwrap().status, Some(200));
    let p = ok.phases;
    let parts = [p.dns, p.connect, p.tls, p.ttfb, p.transfer].map(Option::unwrap);
    // Each phase on its own; the total adds 0.2 ms of gaps (and rounding).
    assert!(
        p.total.abs_diff(parts.iter().sum::<u64>() + 200) <= 3,
        "{p:?}"
    );
}

#[test]
fn edges_answer_nearby_carry_their_name_and_fail_alone() {
    let w = world(
        "[[target]]\nid = \"cdn\"\norigin = \"us-east\"\nedges = { edge-a = [\"us-east\", \"eu-west\"], edge-b = [\"me-south\"] }\n\n\
         [[fault]]\nkind = \"edge\"\nedge = \"edge-b\"\nat = \"10m\"\nerror_rate = 1.0\n",
    );
    let gulf = run_at(&w, "me-south/1", "cdn", 5 * MIN, 1);
    let http = gulf.http.as_ref().unwrap();
    assert_eq!(
        http.edge.get("x-served-by").map(String::as_str),
        Some("edge-b")
    );
    assert!(
        ms(gulf.phases.connect) < 10.0,
        "the PoP is in the region: {gulf:?}"
    );
    // The edge→origin round trip lands in server time.
    assert!(ms(gulf.phases.ttfb) > 150.0, "{gulf:?}");
    let failing = run_at(&w, "me-south/1", "cdn", 15 * MIN, 1);
    assert_eq!(failing.http.as_ref().unwrap().status, Some(502));
    assert!(run_at(&w, "eu-west/1", "cdn", 15 * MIN, 1).passed());
    assert!(
        run_at(&w, "me-south/1", "www", 15 * MIN, 1).passed(),
        "the direct target is fine"
    );
}

#[test]
fn dns_failures_stop_http_checks_in_the_dns_phase() {
    let w = world(
        "[[fault]]\nkind = \"dns\"\nrcode = \"SERVFAIL\"\nscope = \"resolver\"\nregions = [\"me-south\"]\nat = \"10m\"\nfor = \"10m\"\n\n\
         [[fault]]\nkind = \"dns\"\nrcode = \"TIMEOUT\"\nscope = \"resolver\"\nregions = [\"eu-west\"]\nat = \"10m\"\nfor = \"10m\"\n",
    );
    let r = run_at(&w, "me-south/1", "www", 15 * MIN, 1);
    assert_eq!(r.error.as_ref().unwrap().class, ErrorClass::Dns);
    assert!(r.phases.dns.is_some() && r.phases.connect.is_none() && r.http.is_none());
    let r = run_at(&w, "eu-west/1", "www", 15 * MIN, 1);
    assert_eq!(r.error.as_ref().unwrap().class, ErrorClass::DnsTimeout);
    assert_eq!(ms(r.phases.dns), DNS_TIMEOUT_MS);
    assert!(run_at(&w, "us-east/1", "www", 15 * MIN, 1).passed());
}

#[test]
fn dns_targets_look_like_the_probes_dns_checks() {
    let w = world(
        "[[target]]\nid = \"zone\"\nkind = \"dns\"\norigin = \"us-east\"\n\n\
         [[fault]]\nkind = \"dns\"\nrcode = \"SERVFAIL\"\nscope = \"authoritative\"\nat = \"10m\"\nfor = \"10m\"\n",
    );
    let ok = run_at(&w, "me-south/1", "zone", 5 * MIN, 1);
    assert!(ok.passed(), "{ok:?}");
    let p = ok.phases;
    assert_eq!(
        (p.connect, p.tls, p.ttfb, p.transfer),
        (Some(0), Some(0), Some(0), Some(0))
    );
    assert!(ms(p.dns) > 0.5 && ms(p.dns) < 10.0, "{p:?}");
    let detail = ok.dns.as_ref().unwrap();
    assert_eq!((detail.rcode, detail.answers.len()), (Rcode::NoError, 1));
    // An authoritative failure reaches every resolver within one TTL.
    let late = 10 * MIN + DNS_TTL_MS;
    for probe in ["us-east/1", "eu-west/2", "me-south/3"] {
        let r = run_at(&w, probe, "zone", late, 1);
        assert_eq!(
            r.error.as_ref().unwrap().class,
            ErrorClass::DnsRcode,
            "{probe}"
        );
        assert_eq!(r.dns.as_ref().unwrap().rcode, Rcode::ServFail);
        let r = run_at(&w, probe, "www", late, 1);
        assert_eq!(r.error.as_ref().unwrap().class, ErrorClass::Dns, "{probe}");
    }
}

#[test]
fn total_loss_times_out_the_connect_and_partial_loss_costs_retransmissions() {
    let w =
        world("[[fault]]\nkind = \"path\"\nregions = [\"me-south\"]\nat = \"10m\"\nloss = 1.0\n");
    let r = run_at(&w, "me-south/1", "www", 15 * MIN, 1);
    assert_eq!(r.error.as_ref().unwrap().class, ErrorClass::ConnectTimeout);
    assert_eq!(ms(r.phases.connect), TIMEOUT_MS);
    assert_eq!((r.phases.tls, r.phases.ttfb), (None, None));

    // Appendix B: with 5 % per-packet loss about 1 - 0.95² = 9.75 % of connects wait out a
    // retransmission timer.
    let w =
        world("[[fault]]\nkind = \"path\"\nregions = [\"eu-west\"]\nat = \"0s\"\nloss = 0.05\n");
    let n = 4000;
    let slow = (0..n)
        .filter(|&i| ms(run_at(&w, "eu-west/1", "www", MIN, i).phases.connect) > 900.0)
        .count();
    let rate = slow as f64 / n as f64;
    assert!((0.08..0.115).contains(&rate), "{rate}");
}

#[test]
fn a_probe_fault_touches_that_probe_only_and_its_dns_too() {
    let w = world(
        "[[fault]]\nkind = \"probe\"\nprobe = \"me-south/3\"\nat = \"10m\"\nfor = \"10m\"\nrtt_ms = 400\n",
    );
    let before = run_at(&w, "me-south/3", "www", 5 * MIN, 1);
    let during = run_at(&w, "me-south/3", "www", 15 * MIN, 1);
    assert!(close(
        ms(during.phases.connect) - ms(before.phases.connect),
        400.0
    ));
    assert!(close(ms(during.phases.dns) - ms(before.phases.dns), 400.0));
    let mate = |t| run_at(&w, "me-south/2", "www", t, 1).phases;
    assert_eq!(mate(5 * MIN), mate(15 * MIN));
}

#[test]
fn path_faults_can_target_one_network_and_ramp() {
    let w = world(
        "[[fault]]\nkind = \"path\"\nregions = [\"eu-west\"]\nasn = 64500\nat = \"10m\"\nfor = \"30m\"\nramp_ms_per_min = 2\nrtt_ms = 15\n",
    );
    let connect = |p: &str, t: i64| ms(run_at(&w, p, "www", t, 1).phases.connect);
    // eu-west/1 and /3 are on AS64500 (round-robin), /2 on AS64501.
    let base = connect("eu-west/1", 5 * MIN);
    assert!(
        close(connect("eu-west/1", 15 * MIN) - base, 10.0),
        "5 min in: +10 ms"
    );
    assert!(
        close(connect("eu-west/1", 35 * MIN) - base, 15.0),
        "capped at rtt_ms"
    );
    assert_eq!(
        connect("eu-west/2", 5 * MIN),
        connect("eu-west/2", 15 * MIN)
    );
}

#[test]
fn a_skewed_clock_moves_the_stamps_not_the_timings() {
    let w = world("[[fault]]\nkind = \"clock\"\nprobe = \"eu-west/2\"\noffset = \"90s\"\n");
    let plain = world("");
    let skewed = run_at(&w, "eu-west/2", "www", 5 * MIN, 1);
    let right = run_at(&plain, "eu-west/2", "www", 5 * MIN, 1);
    assert_eq!(skewed.started_ms - right.started_ms, 90_000);
    assert_eq!(skewed.scheduled_ms - right.scheduled_ms, 90_000);
    assert_eq!(skewed.phases, right.phases);
}

#[test]
fn a_silence_with_path_makes_the_target_unreachable_from_the_region() {
    let w = world(
        "[[fault]]\nkind = \"silence\"\nregions = [\"me-south\"]\nat = \"10m\"\nfor = \"10m\"\npath = true\n",
    );
    let r = run_at(&w, "me-south/1", "www", 15 * MIN, 1);
    assert_eq!(r.error.as_ref().unwrap().class, ErrorClass::ConnectTimeout);
    assert!(run_at(&w, "eu-west/1", "www", 15 * MIN, 1).passed());
}

#[test]
fn the_diurnal_swing_peaks_in_the_local_evening() {
    let mut s = world("").scenario;
    s.noise.diurnal = 0.3;
    let w = World::new(s, &meridian_shared::regions::Catalog::builtin());
    let p = w.probe_index("eu-west/1").unwrap();
    let lon = w.probes[p].lon;
    let at_local = |h: f64| w.start_ms + ((h - lon / 15.0) * 3_600_000.0) as i64;
    assert!((w.diurnal(p, at_local(20.0)) - 1.3).abs() < 1e-6);
    assert!((w.diurnal(p, at_local(8.0)) - 0.7).abs() < 1e-6);
    assert!((w.diurnal(p, at_local(14.0)) - 1.0).abs() < 1e-6);
}

#[test]
fn jitter_and_spikes_spread_samples_around_the_base() {
    let mut s = world("").scenario;
    s.noise.jitter = 0.05;
    s.noise.spike_rate = 0.01;
    let w = World::new(s, &meridian_shared::regions::Catalog::builtin());
    let mut connects: Vec<f64> = (0..2000)
        .map(|i| ms(run_at(&w, "eu-west/1", "www", MIN, i).phases.connect))
        .collect();
    connects.sort_by(f64::total_cmp);
    let (p50, p90, max) = (connects[1000], connects[1800], connects[1999]);
    assert!(p90 / p50 > 1.03 && p90 / p50 < 1.2, "{p50} {p90}");
    assert!(max > p50 + 20.0, "spikes of +20..300 ms: {max}");
}
