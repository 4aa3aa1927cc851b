//! Probes' networks over real QUIC on 127.0.0.1: a GeoIP database (built by
//! `meridian_tests::mmdb`) places loopback in an AS in Tokyo, so a probe connecting from it
//! gets that ASN in detection's topology and a WARN for being far from its region; an
//! operator's pin, put in force by a reload, wins at the next connection. Every wait is bounded.

use std::io::Write;

use meridian_tests::mmdb::{MmdbBuilder, asn_record, city_record};

use super::*;
use crate::geoip::GeoIp;

/// Where the database puts 127.0.0.0/8: Tokyo, 9,600 km from `eu-west` (Ireland).
const TOKYO: (f64, f64) = (35.68, 139.69);

/// City and ASN databases mapping loopback to AS64500 in Japan.
fn loopback_geoip(dir: &Path) -> Arc<GeoIp> {
    let (city, asn) = (dir.join("city.mmdb"), dir.join("asn.mmdb"));
    MmdbBuilder::new("GeoLite2-City")
        .insert("127.0.0.0/8", &city_record("JP", TOKYO.0, TOKYO.1))
        .write(&city)
        .unwrap();
    MmdbBuilder::new("GeoLite2-ASN")
        .insert("127.0.0.0/8", &asn_record(64500, "Loopback Transit"))
        .write(&asn)
        .unwrap();
    Arc::new(GeoIp::open(&city, Some(&asn)).unwrap())
}

/// Log lines, captured for the current thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self, containing: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(containing))
            .map(str::to_owned)
            .collect()
    }
}

/// The ASN detection's installed topology gives the probe (`None` inside: unknown).
fn installed_asn(service: &Running, probe_id: &str) -> Option<Option<u32>> {
    service
        .handle
        .installed_topology()
        .into_iter()
        .find(|p| p.id == probe_id)
        .map(|p| p.asn)
}

// Current-thread runtime: the connection tasks run on this thread, so its log subscriber
// sees their events.
#[tokio::test]
async fn geoip_gives_the_topology_its_asn_warns_when_far_a_pin_overrides_it_and_it_is_kept() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );
    let data = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = ServiceConfig {
        geoip: Some(loopback_geoip(data.path())),
        ..config()
    };
    let service = start_with(data.path(), "127.0.0.1:0".parse().unwrap(), config).await;
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    assert_eq!(
        service.handle.probe_network(&e.probe_id),
        None,
        "not connected yet"
    );

    let cert = Some((e.files.cert.as_path(), e.files.key.as_path()));
    let (_first, _streams, hello) = raw_session(service.addr(), &e.files.ca, cert).await;
    assert!(
        matches!(hello, Ok(CoordinatorMessage::HelloAck(_))),
        "{hello:?}"
    );
    let net = service.handle.probe_network(&e.probe_id).unwrap();
    assert_eq!(net.asn, Some(64500));
    assert_eq!(net.as_org.as_deref(), Some("Loopback Transit"));
    assert_eq!(net.country.as_deref(), Some("JP"));
    wait_until("the topology carries the GeoIP ASN", || {
        installed_asn(&service, &e.probe_id) == Some(Some(64500))
    })
    .await;
    let warned = logs.lines("far from its region");
    assert_eq!(warned.len(), 1, "once per connection: {warned:?}");
    for field in [
        "WARN",
        &format!("probe_id={}", e.probe_id),
        "region=eu-west",
        "km=9",
        "country=JP",
    ] {
        assert!(warned[0].contains(field), "{field} in {}", warned[0]);
    }

    // The operator pins another AS; the next connection learns it, the topology follows.
    let pinned = format!(
        "{WEB}\n[probes.\"{}\"]\nasn = 64999\nas_org = \"Pinned Networks\"\n",
        e.probe_id
    );
    service.handle.reload(targets(&pinned)).await.unwrap();
    let (_second, _streams, hello) = raw_session(service.addr(), &e.files.ca, cert).await;
    assert!(
        matches!(hello, Ok(CoordinatorMessage::HelloAck(_))),
        "{hello:?}"
    );
    let net = service.handle.probe_network(&e.probe_id).unwrap();
    assert_eq!(net.asn, Some(64999));
    assert_eq!(net.as_org.as_deref(), Some("Pinned Networks"));
    assert_eq!(
        net.country.as_deref(),
        Some("JP"),
        "the pin leaves the country"
    );
    wait_until("the topology carries the pinned ASN", || {
        installed_asn(&service, &e.probe_id) == Some(Some(64999))
    })
    .await;
    assert_eq!(logs.lines("far from its region").len(), 2);
    service.stop().await;

    // Stored: `coordinator probe list` shows it, flag included...
    let listed = Store::open(data.path())
        .unwrap()
        .probe_listing()
        .unwrap()
        .into_iter()
        .find(|p| p.probe_id == e.probe_id)
        .and_then(|p| p.network)
        .expect("the network is stored");
    assert_eq!(listed.network, net);
    assert_eq!(listed.address, Some("127.0.0.1".parse().unwrap()));
    let km = listed.far_km.expect("flagged far from eu-west");
    assert!((9_000.0..10_500.0).contains(&km), "{km} km");
    // ...and a restarted service counts it in quorums before the probe reconnects.
    let service = start_with(data.path(), "127.0.0.1:0".parse().unwrap(), super::config()).await;
    wait_until("the restored topology carries the stored ASN", || {
        installed_asn(&service, &e.probe_id) == Some(Some(64999))
    })
    .await;
    service.stop().await;
}
