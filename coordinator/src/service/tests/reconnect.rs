//! A coordinator that crashed (`kill -9`: no CONNECTION_CLOSE reaches the probe) and restarted
//! on the same data directory and port resets the probe's stale connection at the probe's next
//! packet, so the probe reconnects within its keep-alive interval rather than at its idle
//! timeout. The crash is simulated with a [`Relay`] between probe and service: cut first, so
//! the aborted service's close frames never arrive, restored once the new service listens.
//! Every wait is bounded.

use meridian_tests::relay::Relay;

use super::*;

/// The probe's idle timeout in this test: long, so that reconnecting by waiting it out cannot
/// pass for the reset.
const IDLE: Duration = Duration::from_secs(120);
/// How long after the restart the probe may take to reconnect: its next packet (keep-alive
/// 5 s, heartbeat 10 s), the reset, one backoff step, a handshake. Far below [`IDLE`].
const RECONNECT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restarted_after_a_crash_resets_the_stale_connection() {
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path()).await;
    let addr = service.addr();
    let state = tempfile::tempdir().unwrap();
    let e = enroll_probe(&service, "eu-west", state.path()).await;
    let relay = Relay::start(addr).await.unwrap();
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = spool(spool_dir.path(), 50, "eu-west");
    // The uplink's defaults (keep-alive, heartbeat, backoff), but a long idle timeout.
    let mut config = UplinkConfig::new(
        vec![Target {
            name: "c1".into(),
            addr: relay.addr(),
            server_name: "localhost".into(),
        }],
        e.files.cert.clone(),
        e.files.key.clone(),
        e.files.ca.clone(),
    );
    config.idle_timeout = IDLE;
    let uplink = Uplink::start(config, spool.clone()).unwrap();
    wait_until("every result acked", || acked(&spool) == 50).await;
    let status = uplink.status("c1").unwrap();
    assert_eq!(status.sessions.load(Ordering::Relaxed), 1);

    relay.cut();
    service.kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let service = start_on(data.path(), addr).await;
    relay.restore();
    let restarted = tokio::time::Instant::now();
    while status.sessions.load(Ordering::Relaxed) < 2 {
        assert!(
            restarted.elapsed() < RECONNECT,
            "no reconnect within {RECONNECT:?} of the restart (idle timeout {IDLE:?}): the \
             stale connection was not reset"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        status.failures.load(Ordering::Relaxed),
        1,
        "one session ended (the reset one), and the first reconnect succeeded"
    );
    assert_eq!(
        service.handle.counters().sessions.load(Ordering::Relaxed),
        1
    );
    uplink.shutdown(Duration::from_secs(5)).await;
    service.stop().await;
}
