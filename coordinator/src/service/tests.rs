//! End-to-end tests of the link and enrolment over real QUIC on 127.0.0.1: the coordinator's
//! service against the probe's `enroll` and `uplink`, plus raw clients for what a well-behaved
//! probe never does (no certificate, garbage, oversized frames). Every wait is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_probe::enroll::{self, EnrollError, Enrollment};
use meridian_probe::spool::{Spool, SpoolConfig};
use meridian_probe::uplink::{Target, Uplink, UplinkConfig};
use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckResult, Phases};
use meridian_shared::wire::{
    self, CoordinatorMessage, FrameDecoder, Heartbeat, Hello, ProbeMessage, RejectReason,
    ResultBatch, SequencedResult,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::*;
use crate::pki;

mod detection;
mod network;
mod push;
mod reconnect;

const WAIT: Duration = Duration::from_secs(15);

/// One target with one check, `web`, for every region.
const WEB: &str = r#"
data_dir = "data"
[listen]
quic = "127.0.0.1:0"
[[target]]
id = "site"
[[target.http]]
id = "web"
url = "http://127.0.0.1:9/"
"#;

/// A configuration from text (its targets are what matters to the service).
fn targets(text: &str) -> Arc<CoordinatorConfig> {
    let src = meridian_shared::config::SourceFile::new("coordinator.toml", text);
    Arc::new(CoordinatorConfig::from_source(&src, Path::new("/nonexistent")).unwrap())
}

/// A running service on 127.0.0.1 and the means to stop it.
struct Running {
    handle: ServiceHandle,
    task: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    fingerprint: String,
}

impl Running {
    fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Graceful stop.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }

    /// Abrupt stop: the serving task is aborted mid-whatever.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn config() -> ServiceConfig {
    ServiceConfig {
        server_names: vec!["localhost".into()],
        hello_timeout: Duration::from_secs(5),
        targets: Some(targets(WEB)),
        ..ServiceConfig::default()
    }
}

async fn start_on(data: &Path, bind: SocketAddr) -> Running {
    start_with(data, bind, config()).await
}

async fn start_with(data: &Path, bind: SocketAddr, config: ServiceConfig) -> Running {
    // A restarted service takes over the old port, freed once the old endpoint drained.
    let mut socket = None;
    for _ in 0..100 {
        match std::net::UdpSocket::bind(bind) {
            Ok(s) => {
                socket = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let socket = socket.expect("the port frees up within 5 s");
    let ca = Ca::load_or_create(data).unwrap();
    let fingerprint = ca.fingerprint();
    let store = Store::open(data).unwrap();
    let service = Service::bind(socket, ca, store, config).unwrap();
    let handle = service.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(service.run(async {
        let _ = rx.await;
    }));
    Running {
        handle,
        task,
        stop: Some(stop),
        fingerprint,
    }
}

async fn start(data: &Path) -> Running {
    start_on(data, "127.0.0.1:0".parse().unwrap()).await
}

async fn token(service: &Running, region: &str) -> String {
    let (token, hash) = pki::new_token().unwrap();
    let region = region.to_owned();
    service
        .handle
        .with_store(move |s| {
            let now = now_ms();
            s.create_token(&hash, &region, now, now + 3_600_000)
        })
        .await
        .unwrap()
        .unwrap();
    token
}

/// Enrols a probe and waits for its first assignment (computed just after enrolment).
async fn enroll_probe(service: &Running, region: &str, state: &Path) -> Enrollment {
    let token = token(service, region).await;
    let e = enroll::enroll(
        service.addr(),
        "localhost",
        &token,
        &service.fingerprint,
        state,
    )
    .await
    .unwrap();
    let handle = service.handle.clone();
    wait_until("the first assignment", || {
        handle.assignment(&e.probe_id).is_some()
    })
    .await;
    e
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn result(seq: u64, probe_id: &str, region: &str) -> CheckResult {
    CheckResult {
        probe_id: probe_id.into(),
        region: region.into(),
        check_id: CheckId::parse("web").unwrap(),
        scheduled_ms: 1_700_000_000_000 + i64::try_from(seq).unwrap(),
        started_ms: 1_700_000_000_000 + i64::try_from(seq).unwrap(),
        phases: Phases {
            total: seq,
            ..Phases::default()
        },
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: Vec::new(),
    }
}

/// A spool with `n` results (claiming `claimed_region`), and one cursor `c1`.
fn spool(dir: &Path, n: u64, claimed_region: &str) -> Arc<Mutex<Spool>> {
    let mut spool = Spool::open(dir, &["c1"], SpoolConfig::default()).unwrap();
    for i in 1..=n {
        let payload = rmp_serde::to_vec_named(&result(i, "liar", claimed_region)).unwrap();
        spool
            .append(&payload, std::time::SystemTime::now())
            .unwrap();
    }
    spool.sync().unwrap();
    Arc::new(Mutex::new(spool))
}

fn uplink_config(addr: SocketAddr, e: &Enrollment) -> UplinkConfig {
    let target = Target {
        name: "c1".into(),
        addr,
        server_name: "localhost".into(),
    };
    let mut c = UplinkConfig::new(
        vec![target],
        e.files.cert.clone(),
        e.files.key.clone(),
        e.files.ca.clone(),
    );
    c.batch_records = 20;
    c.max_in_flight = 2;
    c.poll = Duration::from_millis(20);
    c.heartbeat = Duration::from_millis(200);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(400);
    c.connect_timeout = Duration::from_secs(5);
    c
}

fn acked(spool: &Arc<Mutex<Spool>>) -> u64 {
    let s = spool.lock().unwrap();
    s.stats().cursors[0].acked
}

fn stored(data: &Path, probe_id: &str) -> Vec<(u64, CheckResult)> {
    Store::open(data).unwrap().results(probe_id).unwrap()
}

/// A QUIC client with ALPN `meridian/1`, trusting the service's CA, with or without a
/// client certificate.
fn raw_client(ca: &Path, cert: Option<(&Path, &Path)>) -> (quinn::Endpoint, quinn::ClientConfig) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut tls = match cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let client = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
    ));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    (endpoint, client)
}

/// Reads the next coordinator message, or the error that ended the stream.
async fn next_msg(
    rx: &mut quinn::RecvStream,
    dec: &mut FrameDecoder,
) -> Result<CoordinatorMessage, String> {
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(m) = dec
                .next_message::<CoordinatorMessage>()
                .map_err(|e| e.to_string())?
            {
                return Ok(m);
            }
            match rx.read(&mut buf).await.map_err(|e| e.to_string())? {
                Some(n) => dec.push(&buf[..n]).map_err(|e| e.to_string())?,
                None => return Err("stream finished".to_string()),
            }
        }
    })
    .await
    .map_err(|_| "timed out".to_string())?
}

fn hello() -> ProbeMessage {
    ProbeMessage::Hello(Hello {
        version: wire::PROTOCOL_VERSION,
        probe_version: "test".into(),
        assignment_version: None,
        spool_next_seq: 1,
    })
}

/// Describes how the connection was closed, when it was (code and reason), else `error`.
fn closed(conn: &quinn::Connection, error: String) -> String {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(c)) => {
            format!(
                "closed {}: {}",
                c.error_code,
                String::from_utf8_lossy(&c.reason)
            )
        }
        Some(other) => other.to_string(),
        None => error,
    }
}

/// Connects a raw client and sends Hello; returns the streams and the first answer.
async fn raw_session(
    addr: SocketAddr,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
) -> (
    quinn::Endpoint,
    Option<(quinn::SendStream, quinn::RecvStream, FrameDecoder)>,
    Result<CoordinatorMessage, String>,
) {
    let (endpoint, client) = raw_client(ca, cert);
    let conn = match endpoint
        .connect_with(client, addr, "localhost")
        .unwrap()
        .await
    {
        Ok(c) => c,
        Err(e) => return (endpoint, None, Err(e.to_string())),
    };
    let (mut tx, mut rx) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return (endpoint, None, Err(closed(&conn, e.to_string()))),
    };
    if let Err(e) = tx.write_all(&wire::encode(&hello()).unwrap()).await {
        return (endpoint, None, Err(closed(&conn, e.to_string())));
    }
    let mut dec = FrameDecoder::new();
    let first = next_msg(&mut rx, &mut dec)
        .await
        .map_err(|e| closed(&conn, e));
    (endpoint, Some((tx, rx, dec)), first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_issues_a_certificate_once_per_token_and_pins_the_ca() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let token = token(&service, "eu-west").await;

    // A wrong fingerprint: the probe refuses the server before it sends the token.
    let state = tempfile::tempdir().unwrap();
    let wrong = "00".repeat(32);
    let err = enroll::enroll(service.addr(), "localhost", &token, &wrong, state.path())
        .await
        .unwrap_err();
    assert!(matches!(err, EnrollError::UntrustedServer), "{err}");
    assert!(!state.path().join("probe.key").exists());

    // The right one: enrolled with the token's region, key kept private.
    let e = enroll::enroll(
        service.addr(),
        "localhost",
        &token,
        &service.fingerprint,
        state.path(),
    )
    .await
    .unwrap();
    assert_eq!(e.region, "eu-west");
    let der = CertificateDer::from_pem_file(&e.files.cert).unwrap();
    let identity = crate::pki::identity_from_cert(der.as_ref()).unwrap();
    assert_eq!(identity.probe_id, e.probe_id);
    assert_eq!(identity.region.as_str(), "eu-west");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&e.files.key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let id = e.probe_id.clone();
    let record = service
        .handle
        .with_store(move |s| s.probe(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.map(|r| r.region), Some("eu-west".to_string()));

    // The same token again: refused, generically.
    let again = tempfile::tempdir().unwrap();
    let err = enroll::enroll(
        service.addr(),
        "localhost",
        &token,
        &service.fingerprint,
        again.path(),
    )
    .await
    .unwrap_err();
    match err {
        EnrollError::Refused(m) => assert_eq!(m, "invalid token"),
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(
        service.handle.counters().enrolled.load(Ordering::Relaxed),
        1
    );
    assert_eq!(
        service
            .handle
            .counters()
            .enroll_refused
            .load(Ordering::Relaxed),
        1
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_uploads_exactly_once_under_the_certificate_region() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let spool_dir = tempfile::tempdir().unwrap();
    const N: u64 = 250;
    let spool = spool(spool_dir.path(), N, "ap-evil");
    let uplink = Uplink::start(uplink_config(service.addr(), &e), spool.clone()).unwrap();
    wait_until("every result acked", || acked(&spool) == N).await;
    let status = uplink.status("c1").unwrap();
    assert!(status.connected.load(Ordering::Relaxed));
    // Heartbeats flow while idle.
    let counters = service.handle.counters();
    wait_until("a heartbeat", || {
        counters.heartbeats.load(Ordering::Relaxed) > 0
    })
    .await;
    uplink.shutdown(Duration::from_secs(5)).await;

    let rows = stored(data.path(), &e.probe_id);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>()
    );
    for (_, r) in &rows {
        assert_eq!(
            r.region, "eu-west",
            "the certificate's region, not the payload's"
        );
        assert_eq!(r.probe_id, e.probe_id);
    }
    assert_eq!(counters.results_stored.load(Ordering::Relaxed), N);
    assert_eq!(counters.results_rejected.load(Ordering::Relaxed), 0);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_upload_ends_with_every_result_stored_once() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let addr = service.addr();
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let spool_dir = tempfile::tempdir().unwrap();
    const N: u64 = 2_000;
    let spool = spool(spool_dir.path(), N, "eu-west");
    let uplink = Uplink::start(uplink_config(addr, &e), spool.clone()).unwrap();
    let counters = service.handle.counters();
    wait_until("some results stored", || {
        counters.results_stored.load(Ordering::Relaxed) >= 100
    })
    .await;
    service.kill().await;
    let before = stored(data.path(), &e.probe_id).len() as u64;
    assert!(
        before < N,
        "the kill came before the end ({before} of {N} stored)"
    );

    let service = start_on(data.path(), addr).await;
    wait_until("every result acked after the restart", || {
        acked(&spool) == N
    })
    .await;
    let status = uplink.status("c1").unwrap();
    assert!(
        status.sessions.load(Ordering::Relaxed) >= 2,
        "the probe reconnected"
    );
    uplink.shutdown(Duration::from_secs(5)).await;
    let rows = stored(data.path(), &e.probe_id);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>()
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_probe_is_disconnected_at_once_and_refused_after() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = spool(spool_dir.path(), 5, "eu-west");
    let uplink = Uplink::start(uplink_config(service.addr(), &e), spool.clone()).unwrap();
    let handle = service.handle.clone();
    wait_until("connected", || handle.live_connections(&e.probe_id) == 1).await;

    assert!(handle.revoke(&e.probe_id).await.unwrap());
    assert_eq!(handle.live_connections(&e.probe_id), 0);
    let status = uplink.status("c1").unwrap();
    wait_until("the uplink stopped", || status.stopped().is_some()).await;
    assert_eq!(status.stopped(), Some(RejectReason::Revoked));

    // A fresh connection with the same certificate is refused with a Reject.
    let (_ep, _streams, first) = raw_session(
        service.addr(),
        &e.files.ca,
        Some((&e.files.cert, &e.files.key)),
    )
    .await;
    match first {
        Ok(CoordinatorMessage::Reject(r)) => assert_eq!(r.reason, RejectReason::Revoked),
        other => panic!("expected a Reject, got {other:?}"),
    }
    wait_until("the refused connection closed", || {
        handle.live_connections(&e.probe_id) == 0
    })
    .await;
    uplink.shutdown(Duration::from_secs(5)).await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_refuses_clients_without_a_certificate_or_from_another_ca() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let ca = data.path().join("ca.pem");

    let (_ep, _streams, first) = raw_session(service.addr(), &ca, None).await;
    let err = first.unwrap_err();
    let want = format!(
        "closed {}: client certificate required",
        close::NO_CERTIFICATE
    );
    assert_eq!(err, want);

    let other_data = tempfile::tempdir().unwrap();
    let other = start(other_data.path()).await;
    let state = tempfile::tempdir().unwrap();
    let stranger = enroll_probe(&other, "eu-west", state.path()).await;
    let (_ep, _streams, first) = raw_session(
        service.addr(),
        &ca,
        Some((&stranger.files.cert, &stranger.files.key)),
    )
    .await;
    assert!(
        first.is_err(),
        "a certificate from another CA must not open a session: {first:?}"
    );
    let counters = service.handle.counters();
    wait_until("the handshake failure counted", || {
        counters.handshake_failures.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert_eq!(counters.sessions.load(Ordering::Relaxed), 0);
    other.stop().await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_are_counted_and_an_oversized_one_closes_only_that_link() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let cert = Some((e.files.cert.as_path(), e.files.key.as_path()));
    let (_ep, streams, first) = raw_session(service.addr(), &e.files.ca, cert).await;
    assert!(
        matches!(first, Ok(CoordinatorMessage::HelloAck(_))),
        "{first:?}"
    );
    let (mut tx, mut rx, mut dec) = streams.unwrap();
    assert!(matches!(
        next_msg(&mut rx, &mut dec).await,
        Ok(CoordinatorMessage::Assignment(_))
    ));

    // Garbage MessagePack, then a good batch: the batch is stored and acknowledged.
    tx.write_all(&[0, 0, 0, 2, 0xc1, 0xc1]).await.unwrap();
    let beat = ProbeMessage::Heartbeat(Heartbeat { sent_ms: 1 });
    tx.write_all(&wire::encode(&beat).unwrap()).await.unwrap();
    let batch = ProbeMessage::ResultBatch(ResultBatch {
        first_seq: 1,
        results: vec![SequencedResult {
            seq: 1,
            result: result(1, "x", "eu-west"),
            burst: None,
        }],
    });
    tx.write_all(&wire::encode(&batch).unwrap()).await.unwrap();
    match next_msg(&mut rx, &mut dec).await {
        Ok(CoordinatorMessage::Ack(a)) => assert_eq!(a.up_to_seq, 1),
        other => panic!("expected an Ack, got {other:?}"),
    }
    // A burst run keeps its tag all the way into the store.
    let batch = ProbeMessage::ResultBatch(ResultBatch {
        first_seq: 2,
        results: vec![SequencedResult {
            seq: 2,
            result: result(2, "x", "eu-west"),
            burst: Some(meridian_shared::wire::BurstTag { burst_id: 9 }),
        }],
    });
    tx.write_all(&wire::encode(&batch).unwrap()).await.unwrap();
    match next_msg(&mut rx, &mut dec).await {
        Ok(CoordinatorMessage::Ack(a)) => assert_eq!(a.up_to_seq, 2),
        other => panic!("expected an Ack, got {other:?}"),
    }
    let tags: Vec<Option<u64>> = Store::open(data.path())
        .unwrap()
        .sequenced_results(&e.probe_id)
        .unwrap()
        .iter()
        .map(|r| r.burst.map(|t| t.burst_id))
        .collect();
    assert_eq!(tags, [None, Some(9)]);
    let counters = service.handle.counters();
    assert_eq!(counters.garbage_frames.load(Ordering::Relaxed), 1);
    assert_eq!(counters.heartbeats.load(Ordering::Relaxed), 1);

    // An oversized header ends this link with a Reject.
    tx.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    match next_msg(&mut rx, &mut dec).await {
        Ok(CoordinatorMessage::Reject(r)) => {
            assert_eq!(r.reason, RejectReason::ProtocolViolation);
        }
        other => panic!("expected a Reject, got {other:?}"),
    }
    assert_eq!(counters.oversized_frames.load(Ordering::Relaxed), 1);

    // The service carries on.
    let (_ep2, _streams, first) = raw_session(service.addr(), &e.files.ca, cert).await;
    match first {
        Ok(CoordinatorMessage::HelloAck(a)) => assert_eq!(a.acked_up_to_seq, Some(2)),
        other => panic!("expected a HelloAck, got {other:?}"),
    }
    assert_eq!(stored(data.path(), &e.probe_id).len(), 2);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_each_get_every_result_on_their_own_cursor() {
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(data_a.path()).await;
    // The second coordinator shares the first one's CA (copied), as a second instance would.
    for f in ["ca.pem", "ca.key"] {
        std::fs::copy(data_a.path().join(f), data_b.path().join(f)).unwrap();
    }
    let b = start(data_b.path()).await;
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&a, "eu-west", state.path()).await;
    let (id, region) = (e.probe_id.clone(), e.region.clone());
    b.handle
        .with_store(move |s| s.upsert_probe(&id, &region, None, now_ms()))
        .await
        .unwrap()
        .unwrap();
    // Registered behind the service's back: a reload computes its assignment.
    b.handle.reload(targets(WEB)).await.unwrap();

    let spool_dir = tempfile::tempdir().unwrap();
    let mut sp = Spool::open(spool_dir.path(), &["a", "b"], SpoolConfig::default()).unwrap();
    const N: u64 = 60;
    for i in 1..=N {
        let payload = rmp_serde::to_vec_named(&result(i, "p", "eu-west")).unwrap();
        sp.append(&payload, std::time::SystemTime::now()).unwrap();
    }
    let spool = Arc::new(Mutex::new(sp));
    let mut config = uplink_config(a.addr(), &e);
    config.targets = vec![
        Target {
            name: "a".into(),
            addr: a.addr(),
            server_name: "localhost".into(),
        },
        Target {
            name: "b".into(),
            addr: b.addr(),
            server_name: "localhost".into(),
        },
    ];
    let uplink = Uplink::start(config, spool.clone()).unwrap();
    let both = || {
        let s = spool.lock().unwrap();
        s.stats().cursors.iter().all(|c| c.acked == N)
    };
    wait_until("both cursors acked", both).await;
    uplink.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stored(data_a.path(), &e.probe_id).len() as u64, N);
    assert_eq!(stored(data_b.path(), &e.probe_id).len() as u64, N);
    a.stop().await;
    b.stop().await;
}
