//! An origin whose answer the test switches while probes run: every request gets the current
//! status (200 until told otherwise) and a one-line body, over plain HTTP/1.1 on 127.0.0.1.
//! For outages that hit every request at once, whatever its URL: the demo origin
//! ([`crate::origin`]) chooses its behaviour per request from the URL, which is fixed in the
//! coordinator's assignment.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Pause after a failed `accept`, so that a persistent error cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A running switchable origin; stops (and drops its connections) when dropped.
pub struct StatusOrigin {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    requests: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl StatusOrigin {
    /// Listens on 127.0.0.1 on a free port, answering 200.
    pub async fn start() -> anyhow::Result<StatusOrigin> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let status = Arc::new(AtomicU16::new(200));
        let requests = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, status.clone(), requests.clone()));
        Ok(StatusOrigin {
            addr,
            status,
            requests,
            _tasks: tasks,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Every request from now on is answered with `status` (an invalid code answers 500).
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: TcpListener, status: Arc<AtomicU16>, requests: Arc<AtomicU64>) {
    // Connection tasks live in this set, so they end when the accept loop is aborted.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        let (status, requests) = (status.clone(), requests.clone());
        conns.spawn(async move {
            let service =
                hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    requests.fetch_add(1, Ordering::SeqCst);
                    let code = StatusCode::from_u16(status.load(Ordering::SeqCst))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let mut response = Response::new(Full::new(Bytes::from(format!("{code}\n"))));
                    *response.status_mut() = code;
                    async move { Ok::<_, Infallible>(response) }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}
