//! A recording HTTP receiver on 127.0.0.1, standing in for whatever the coordinator's alert
//! sinks post to (a webhook receiver, Slack, PagerDuty, Alertmanager's own webhook): every
//! request is kept with its path, headers and raw body (a webhook's signature is over the
//! exact bytes), and answered 200, or 503 for the first `fail_first` requests so that
//! retries can be observed.
//!
//! Deliberately absent: TLS and any parsing of the bodies; the tests judge what arrived.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Pause after a failed `accept`, so that a persistent error cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// How often [`Receiver::accepted`] looks again.
const POLL: Duration = Duration::from_millis(20);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request's path.
    pub path: String,
    /// Its headers.
    pub headers: hyper::HeaderMap,
    /// The body, as sent.
    pub body: Bytes,
    /// The status it was answered with.
    pub status: u16,
}

/// A running receiver; stops (and drops its connections) when dropped.
pub struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    _tasks: JoinSet<()>,
}

impl Receiver {
    /// Listens on 127.0.0.1 on a free port; the first `fail_first` requests are answered 503,
    /// every later one 200.
    pub async fn start(fail_first: usize) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, got.clone(), fail_first));
        Ok(Receiver {
            addr,
            got,
            _tasks: tasks,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr))
            .expect("http://127.0.0.1:PORT followed by a path is a URL")
    }

    /// Every request so far, in arrival order.
    pub fn got(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The requests answered 200, once there are at least `n`; an error (listing what did
    /// arrive) if there are not within `within`.
    pub async fn accepted(&self, n: usize, within: Duration) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ok: Vec<Received> = self.got().into_iter().filter(|r| r.status == 200).collect();
            if ok.len() >= n {
                return Ok(ok);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} deliveries accepted within {within:?}: {:?}",
                ok.len(),
                self.got()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn accept_loop(listener: TcpListener, got: Arc<Mutex<Vec<Received>>>, fail_first: usize) {
    // Connection tasks live in this set, so they end when the accept loop is aborted.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        let got = got.clone();
        conns.spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let got = got.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let headers = req.headers().clone();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let status = {
                            let mut got = got.lock().unwrap_or_else(PoisonError::into_inner);
                            let status = if got.len() < fail_first { 503 } else { 200 };
                            got.push(Received {
                                path,
                                headers,
                                body,
                                status,
                            });
                            status
                        };
                        let mut answer = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                        *answer.status_mut() =
                            hyper::StatusCode::from_u16(status).unwrap_or_default();
                        Ok::<_, Infallible>(answer)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

/// A paged site incident as the detection thread stores it (onset `t0_ms`, detected a minute
/// later, paged 30 s after that), for feeding the alert dispatcher directly.
pub fn paged_incident(
    id: u64,
    class: &str,
    severity: &str,
    t0_ms: i64,
) -> meridian_coordinator::store::incidents::IncidentRecord {
    meridian_coordinator::store::incidents::IncidentRecord {
        id,
        class: class.into(),
        state: meridian_coordinator::store::incidents::StoredState::Paged,
        severity: severity.into(),
        regions: vec!["eu-central".into(), "us-east".into()],
        targets: vec!["shop-home".into()],
        asns: vec![],
        probe: None,
        edge: None,
        onset_ms: t0_ms,
        detected_ms: t0_ms + 60_000,
        ttd_ms: 60_000,
        paged_ms: Some(t0_ms + 90_000),
        resolved_ms: None,
        explanation: "shop-home fails from 2 of 2 regions".into(),
        evidence: vec![],
        timeline: vec![],
        updated_ms: t0_ms + 90_000,
        maintenance: Default::default(),
    }
}
