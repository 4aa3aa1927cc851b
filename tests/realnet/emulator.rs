//! The real-network harness itself (`meridian_tests::realnet`): namespaces joined by the TUN
//! WAN emulator. Validates the emulator against the bar (50 ms one way gives a TCP
//! connect median of 100 ± 2 ms), shows loss, blackholes, jitter, per-host rules and rule
//! changes on live connections taking effect, the real `probe check` attributing an injected round trip to
//! connect, TLS and first byte, and a teardown (also after a panic) that leaves no namespace,
//! route or process behind.
//!
//! Root only: as any other user each test prints the harness's one SKIP line and passes.
//! The tests run one at a time ([`SERIAL`]): the validation measures sub-millisecond timing on
//! a 2-core machine, and the teardown test checks the shared route's holders.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use meridian_probe::demo::origin::TlsVersions;
use meridian_tests::cli::probe_bin;
use meridian_tests::realnet::origin::NsOrigin;
use meridian_tests::realnet::{Host, RealNet, Rule, TEST_RANGE, route_status};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REGION: &str = "eu-central";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q`-quantile of `samples` in milliseconds (nearest rank).
fn quantile(samples: &[Duration], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

/// Accepts and closes connections forever (until the runtime ends).
fn sink(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
}

/// Echoes every byte back, per connection.
fn echo(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// `n` sequential TCP connects from inside `host` to `target`, each timed on a blocking thread
/// in the namespace (no runtime between the syscall and the clock).
async fn connect_times(
    net: &RealNet,
    host: &Host,
    target: SocketAddr,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    net.run_in_background(host, move || {
        (0..n)
            .map(|_| {
                let t0 = Instant::now();
                let stream = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
                let took = t0.elapsed();
                drop(stream);
                Ok(took)
            })
            .collect::<std::io::Result<Vec<_>>>()
    })
    .await?
    .map_err(Into::into)
}

/// A TCP connection from inside `host` to `target`, driven by the test's runtime.
fn connect_from(net: &RealNet, host: &Host, target: SocketAddr) -> anyhow::Result<TcpStream> {
    let std = net.run_in(host, move || {
        std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2))
    })??;
    std.set_nodelay(true)?;
    std.set_nonblocking(true)?;
    Ok(TcpStream::from_std(std)?)
}

/// One byte there and back; its round trip, or `None` if it took over `budget`.
async fn ping(stream: &mut TcpStream, budget: Duration) -> std::io::Result<Option<Duration>> {
    let t0 = Instant::now();
    stream.write_all(b"x").await?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(budget, stream.read_exact(&mut byte)).await {
        Ok(read) => read.map(|_| Some(t0.elapsed())),
        Err(_) => Ok(None),
    }
}

async fn pings(stream: &mut TcpStream, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            ping(stream, Duration::from_secs(2))
                .await?
                .context("no echo within 2 s")?,
        );
    }
    Ok(out)
}

#[tokio::test]
async fn fifty_ms_one_way_gives_a_connect_median_of_100_ms() {
    let _serial = SERIAL.lock().await;
    let Some(net) = RealNet::builder()
        .regions(&[REGION])
        .probes_per_region(1)
        .build_or_skip()
        .unwrap()
    else {
        return;
    };
    let listener = net.tcp_listener(net.origin(), 0).unwrap();
    let target = listener.local_addr().unwrap();
    sink(listener);
    let probe = net.probe(REGION, 0).unwrap();

    let direct = connect_times(&net, probe, target, 30).await.unwrap();
    let injected = net
        .wan()
        .set_path(REGION, "origin", Rule::delay(Duration::from_millis(50)))
        .unwrap();
    let delayed = connect_times(&net, probe, target, 40).await.unwrap();
    let stats = net.wan().stats();
    eprintln!(
        "realnet validation: no rule: median {:.3} ms, p95 {:.3} ms; 50 ms one way: median \
         {:.3} ms, p95 {:.3} ms, min {:.3} ms, max {:.3} ms; {stats:?}",
        quantile(&direct, 0.5),
        quantile(&direct, 0.95),
        quantile(&delayed, 0.5),
        quantile(&delayed, 0.95),
        quantile(&delayed, 0.0),
        quantile(&delayed, 1.0),
    );

    assert!(quantile(&direct, 0.5) < 2.0, "{direct:?}");
    let median = quantile(&delayed, 0.5);
    assert!((98.0..=102.0).contains(&median), "median {median} ms");
    // A packet is never delivered before its due time.
    assert!(quantile(&delayed, 0.0) >= 100.0, "{delayed:?}");
    // Every handshake went through the emulator: SYN and ACK out, SYN-ACK back, per connect.
    assert!(
        stats.link(REGION, "origin").forwarded >= 2 * 70,
        "{stats:?}"
    );
    assert!(stats.link("origin", REGION).forwarded >= 70, "{stats:?}");
    assert_eq!(
        (stats.total.lost, stats.total.blackholed, stats.unroutable),
        (0, 0, 0)
    );
    assert_eq!(net.wan().injections(), [injected]);
    net.teardown().unwrap();
}

#[tokio::test]
async fn total_loss_blackholes_the_path_in_the_direction_it_is_set() {
    let _serial = SERIAL.lock().await;
    let Some(net) = RealNet::builder()
        .regions(&[REGION])
        .probes_per_region(1)
        .build_or_skip()
        .unwrap()
    else {
        return;
    };
    let listener = net.tcp_listener(net.origin(), 0).unwrap();
    let target = listener.local_addr().unwrap();
    sink(listener);
    let probe = net.probe(REGION, 0).unwrap();
    let attempt = |net: &RealNet| {
        net.run_in(probe, move || {
            std::net::TcpStream::connect_timeout(&target, Duration::from_millis(400))
        })
        .unwrap()
    };

    net.wan()
        .set_link(REGION, "origin", Rule::loss(1.0))
        .unwrap();
    let err = attempt(&net).expect_err("every SYN is lost");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let stats = net.wan().stats();
    assert!(stats.link(REGION, "origin").lost >= 1, "{stats:?}");
    assert_eq!(stats.link(REGION, "origin").forwarded, 0, "{stats:?}");

    // Only the way back: the SYN arrives, every SYN-ACK is lost.
    net.wan()
        .set_link(REGION, "origin", Rule::default())
        .unwrap();
    net.wan()
        .set_link("origin", REGION, Rule::loss(1.0))
        .unwrap();
    let err = attempt(&net).expect_err("every SYN-ACK is lost");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let stats = net.wan().stats();
    assert!(stats.link(REGION, "origin").forwarded >= 1, "{stats:?}");
    assert!(stats.link("origin", REGION).lost >= 1, "{stats:?}");

    net.wan().clear();
    attempt(&net).expect("the path is back");
    net.teardown().unwrap();
}

#[tokio::test]
async fn rule_changes_take_effect_on_live_connections_and_host_rules_hit_one_probe() {
    let _serial = SERIAL.lock().await;
    let Some(net) = RealNet::builder()
        .regions(&[REGION])
        .probes_per_region(2)
        .build_or_skip()
        .unwrap()
    else {
        return;
    };
    let listener = net.tcp_listener(net.origin(), 0).unwrap();
    let target = listener.local_addr().unwrap();
    echo(listener);
    let (p0, p1) = (net.probe(REGION, 0).unwrap(), net.probe(REGION, 1).unwrap());
    assert_ne!(p0.asn, p1.asn, "a region's probes span two networks");
    let mut s0 = connect_from(&net, p0, target).unwrap();
    let mut s1 = connect_from(&net, p1, target).unwrap();

    let before = pings(&mut s0, 5).await.unwrap();
    assert!(quantile(&before, 1.0) < 5.0, "{before:?}");

    let wan = net.wan();
    wan.set_path(REGION, "origin", Rule::delay(Duration::from_millis(20)))
        .unwrap();
    let region = pings(&mut s0, 5).await.unwrap();
    assert!((39.0..50.0).contains(&quantile(&region, 0.5)), "{region:?}");

    wan.set_host(p0.addr, Rule::delay(Duration::from_millis(30)))
        .unwrap();
    let (slow, other) = (
        pings(&mut s0, 5).await.unwrap(),
        pings(&mut s1, 5).await.unwrap(),
    );
    assert!((99.0..110.0).contains(&quantile(&slow, 0.5)), "{slow:?}");
    assert!((39.0..50.0).contains(&quantile(&other, 0.5)), "{other:?}");

    // Jitter: each way 20 ms ± 10 ms, so round trips spread over 20..60 ms.
    let jittery = Rule::delay(Duration::from_millis(20)).with_jitter(Duration::from_millis(10));
    wan.set_path(REGION, "origin", jittery).unwrap();
    let spread = pings(&mut s1, 12).await.unwrap();
    let (low, high) = (quantile(&spread, 0.0), quantile(&spread, 1.0));
    assert!(low >= 20.0 && high < 65.0 && high - low > 3.0, "{spread:?}");

    wan.set_path(REGION, "origin", Rule::blackhole()).unwrap();
    assert_eq!(
        ping(&mut s1, Duration::from_millis(300)).await.unwrap(),
        None
    );
    assert!(wan.stats().link(REGION, "origin").blackholed >= 1);

    // Restored: TCP retransmits the byte (its timer backs off from 200 ms), then all is fast.
    wan.clear();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), s1.read_exact(&mut byte))
        .await
        .expect("the retransmission gets through once the path is back")
        .unwrap();
    let after = pings(&mut s1, 5).await.unwrap();
    assert!(quantile(&after, 1.0) < 5.0, "{after:?}");

    let injections = wan.injections();
    assert_eq!(injections.len(), 5, "{injections:?}");
    assert!(injections.windows(2).all(|w| w[0].instant <= w[1].instant));
    assert!(injections[1].change.contains(&p0.addr.to_string()));
    net.teardown().unwrap();
}

/// Runs `probe check --json` inside `host` against `url`; the parsed output.
async fn probe_check(
    net: &RealNet,
    host: &Host,
    origin: &NsOrigin,
    url: &str,
) -> anyhow::Result<Value> {
    let ca = origin.ca_file().context("a TLS origin")?;
    let ca = ca.to_str().context("a UTF-8 temporary path")?;
    let args = ["check", "--json", "--allow-private", "--cacert", ca, url];
    let out = net.exec_in(host, probe_bin()?, &args).await?;
    anyhow::ensure!(out.code == Some(0), "probe check failed: {out:?}");
    out.json()
}

fn phase(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Each phase's median over `runs` (a single check on a busy 2-core machine can be a few
/// milliseconds off in any phase).
fn medians(runs: &[Value], keys: &[&str]) -> Vec<f64> {
    keys.iter()
        .map(|key| {
            let mut values: Vec<f64> = runs.iter().map(|v| phase(v, key)).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        })
        .collect()
}

#[tokio::test]
async fn probe_check_attributes_an_injected_round_trip_to_connect_tls_and_first_byte() {
    let _serial = SERIAL.lock().await;
    let Some(net) = RealNet::builder()
        .regions(&[REGION])
        .probes_per_region(1)
        .build_or_skip()
        .unwrap()
    else {
        return;
    };
    let probe = net.probe(REGION, 0).unwrap();
    let keys = ["connect_ms", "tls_ms", "ttfb_ms"];
    for (versions, tls_round_trips) in [(TlsVersions::Tls13, 1.0), (TlsVersions::Tls12, 2.0)] {
        let origin = NsOrigin::start(&net, net.origin(), Some(versions)).unwrap();
        let url = origin.url("/?size=100");
        let mut runs = [Vec::new(), Vec::new()];
        for (i, rule) in [Rule::default(), Rule::delay(Duration::from_millis(50))]
            .into_iter()
            .enumerate()
        {
            net.wan().set_path(REGION, "origin", rule).unwrap();
            for _ in 0..3 {
                runs[i].push(probe_check(&net, probe, &origin, &url).await.unwrap());
            }
        }
        let (base, slow) = (medians(&runs[0], &keys), medians(&runs[1], &keys));
        eprintln!(
            "realnet probe check {versions:?} (connect, tls, ttfb medians of 3): direct \
             {base:?} ms, 50 ms one way {slow:?} ms"
        );
        for (k, round_trips) in [1.0, tls_round_trips, 1.0].into_iter().enumerate() {
            let added = slow[k] - base[k];
            let expected = 100.0 * round_trips;
            assert!(
                (added - expected).abs() <= 5.0,
                "{versions:?} {}: +{added:.2} ms, expected +{expected} ms\n{runs:?}",
                keys[k]
            );
        }
        assert_eq!(runs[1][0]["remote_ip"], net.origin().addr.to_string());
        assert_eq!(origin.requests(), 6);
    }
    net.teardown().unwrap();
}

#[tokio::test]
async fn teardown_leaves_no_namespace_route_or_process_even_after_a_panic() {
    let _serial = SERIAL.lock().await;
    let Some(net) = RealNet::builder()
        .regions(&[REGION, "us-east"])
        .probes_per_region(3)
        .build_or_skip()
        .unwrap()
    else {
        return;
    };
    let namespaces = net.namespaces();
    assert_eq!(namespaces.len(), 2 * 3 + 3);
    let listed = namespace_list().unwrap();
    assert!(namespaces.iter().all(|n| listed.contains(n)), "{listed:?}");
    assert!(route_status().unwrap().present);
    // The root namespace has no path into the range: `ip route get` (which sends nothing)
    // finds the blackhole and refuses.
    let addr = net.origin().addr.to_string();
    let get = std::process::Command::new("ip")
        .args(["route", "get", &addr])
        .output()
        .unwrap();
    assert!(!get.status.success(), "{get:?}");

    // A process left running in a namespace (a shell's background child, not ours to reap).
    let host = net.probe("us-east", 2).unwrap();
    let out = net
        .exec_in(host, "sh", &["-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
        .await
        .unwrap();
    let orphan: u32 = out.stdout.trim().parse().unwrap();
    assert!(running(orphan));
    net.teardown().unwrap();
    assert_gone(&namespaces).unwrap();
    assert!(!running(orphan));

    // A panicking test: the drop on unwind tears everything down.
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let net = RealNet::builder().regions(&[REGION]).build().unwrap();
        tx.send(net.namespaces()).unwrap();
        panic!("a test failing with the network up");
    })
    .join();
    assert!(panicked.is_err());
    assert_gone(&rx.recv().unwrap()).unwrap();
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for its parent).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
            != Some("Z")
    })
}

fn namespace_list() -> anyhow::Result<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()?;
    Ok(String::from_utf8(out.stdout)?)
}

/// None of `namespaces` exists, this process holds no share of the route, and the route is
/// gone unless someone else still holds it (or an operator added it).
fn assert_gone(namespaces: &[String]) -> anyhow::Result<()> {
    let listed = namespace_list()?;
    anyhow::ensure!(
        namespaces.iter().all(|n| !listed.contains(n)),
        "left: {listed:?}"
    );
    let status = route_status()?;
    let me = format!("{}-", std::process::id());
    anyhow::ensure!(
        !status.holders.iter().any(|h| h.starts_with(&me)),
        "still holding the route: {status:?}"
    );
    if status.holders.is_empty() {
        anyhow::ensure!(!(status.present && status.added_by_harness), "{status:?}");
        let routes = std::process::Command::new("ip")
            .args(["route", "show", "exact", &TEST_RANGE.to_string()])
            .output()?;
        let shown = !String::from_utf8(routes.stdout)?.trim().is_empty();
        anyhow::ensure!(
            shown == status.present,
            "`ip route` disagrees with {status:?}"
        );
    }
    Ok(())
}
