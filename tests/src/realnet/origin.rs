//! The probe's scriptable origin ([`meridian_probe::demo::origin`]) served inside a namespace of
//! a run: plain or HTTPS (TLS 1.2 and/or 1.3), with a fresh CA whose certificate names the
//! host's address, and that CA in a PEM file for `probe check --cacert`.
//!
//! The listener is bound inside the host's namespace; the origin is served by the test's
//! runtime. [`NsOrigin`]'s behaviour per request comes from the query string (`status`,
//! `delay_ms`, `size`, …) as with [`crate::OriginBuilder`]. [`ScriptedOrigin`] is for the
//! live system, whose URLs are fixed in the coordinator's configuration: every request follows
//! a [`Script`] the test changes at run time (a status for everything, a server delay, a delay
//! for some source networks only).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ipnet::Ipv4Net;
use meridian_probe::demo::origin::{Origin, TestPki, TlsVersions};
use tempfile::NamedTempFile;
use tokio::task::JoinSet;

use super::{Host, RealNet};

/// A running origin in a namespace; stops when dropped.
pub struct NsOrigin {
    origin: Origin,
    /// The CA in PEM, for `--cacert` (TLS origins only).
    ca: Option<NamedTempFile>,
    host: Host,
}

impl NsOrigin {
    /// Serves on `host`'s address and a free port, with TLS offering `tls` when given. Must be
    /// called inside a tokio runtime.
    pub fn start(net: &RealNet, host: &Host, tls: Option<TlsVersions>) -> anyhow::Result<NsOrigin> {
        let listener = net.tcp_listener(host, 0)?;
        let (config, ca) = match tls {
            None => (None, None),
            Some(versions) => {
                let ip = host.addr.to_string();
                let pki = TestPki::generate(&[ip.as_str()], 90).context("making the test CA")?;
                let mut ca = NamedTempFile::new().context("creating the CA file")?;
                ca.write_all(pki.ca_pem.as_bytes())?;
                (Some(pki.server_config(versions)?), Some(ca))
            }
        };
        let origin = Origin::start(listener, config, &host.name)?;
        Ok(NsOrigin {
            origin,
            ca,
            host: host.clone(),
        })
    }

    /// The URL of `path_and_query` (starting with `/`) by IP literal.
    pub fn url(&self, path_and_query: &str) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path_and_query}", self.origin.addr)
    }

    /// The PEM file of the CA that signed the certificate (TLS origins).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_ref().map(NamedTempFile::path)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.origin.requests()
    }

    /// The host it runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }
}

/// What a [`ScriptedOrigin`] does to every request, changed while probes run: the faults the
/// coordinator's fixed URLs cannot ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Answer every request with this status (`None`: 200).
    pub status: Option<u16>,
    /// Wait this long before the response headers, for every request (server time).
    pub delay: Duration,
    /// Wait this much longer for requests whose source address is in a network listed here
    /// (the first match): one region's clients served slowly.
    pub delay_from: Vec<(Ipv4Net, Duration)>,
    /// Wait this long after a connection is accepted before answering its TLS handshake (the
    /// ClientHello waits in the socket): a slow handshake, with connect and server time as
    /// they were.
    pub tls_delay: Duration,
}

impl Script {
    /// The extra wait for a request from `source`.
    fn delay_for(&self, source: IpAddr) -> Duration {
        let from = match source {
            IpAddr::V4(v4) => self
                .delay_from
                .iter()
                .find(|(net, _)| net.contains(&v4))
                .map_or(Duration::ZERO, |(_, d)| *d),
            IpAddr::V6(_) => Duration::ZERO,
        };
        self.delay + from
    }
}

/// An HTTPS origin (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN) in a namespace, answering
/// every request by the current [`Script`], whatever its URL; stops when dropped.
pub struct ScriptedOrigin {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    requests: Arc<AtomicU64>,
    ca: NamedTempFile,
    _tasks: JoinSet<()>,
}

impl ScriptedOrigin {
    /// Serves on `host`'s address and `port` (0: any), with a fresh CA whose certificate names
    /// the address and [`super::dns::ORIGIN_NAME`] (checks reach it by either). Must be called
    /// inside a tokio runtime.
    pub fn start(net: &RealNet, host: &Host, port: u16) -> anyhow::Result<ScriptedOrigin> {
        let listener = net.tcp_listener(host, port)?;
        let addr = listener.local_addr()?;
        let ip = host.addr.to_string();
        let pki = TestPki::generate(&[ip.as_str(), super::dns::ORIGIN_NAME], 90)
            .context("making the test CA")?;
        let mut ca = NamedTempFile::new().context("creating the CA file")?;
        ca.write_all(pki.ca_pem.as_bytes())?;
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config(TlsVersions::Both)?);
        let script = Arc::new(Mutex::new(Script::default()));
        let requests = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        tasks.spawn(serve(listener, acceptor, script.clone(), requests.clone()));
        Ok(ScriptedOrigin {
            addr,
            script,
            requests,
            ca,
            _tasks: tasks,
        })
    }

    /// Replaces the script; requests whose handler starts from now on follow it.
    pub fn set(&self, script: Script) {
        *self.script.lock().unwrap_or_else(PoisonError::into_inner) = script;
    }

    /// The script in force.
    pub fn script(&self) -> Script {
        self.script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` (starting with `/`) by IP literal.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The PEM file of the CA that signed its certificate (`ca_file` in `probe.toml`).
    pub fn ca_file(&self) -> &Path {
        self.ca.path()
    }

    /// Requests whose handler started so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Pause after a failed `accept`, so that a persistent error cannot spin a core.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    script: Arc<Mutex<Script>>,
    requests: Arc<AtomicU64>,
) {
    // Connection tasks live in this set, so they end when the accept loop is aborted.
    let mut conns = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_PAUSE).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, script, requests) = (acceptor.clone(), script.clone(), requests.clone());
        conns.spawn(async move {
            let tls_delay = script
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .tls_delay;
            if !tls_delay.is_zero() {
                sleep_precisely(tls_delay).await;
            }
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                requests.fetch_add(1, Ordering::Relaxed);
                let now = script
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                respond(now, peer.ip())
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

/// Sleeps `delay` on a blocking-pool thread: tokio's timer rounds up to the next millisecond.
async fn sleep_precisely(delay: Duration) {
    let slept = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
    if slept.is_err() {
        tokio::time::sleep(delay).await;
    }
}

async fn respond(script: Script, source: IpAddr) -> Result<Response<Full<Bytes>>, Infallible> {
    let delay = script.delay_for(source);
    if !delay.is_zero() {
        sleep_precisely(delay).await;
    }
    let status = script
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Full::new(Bytes::from(format!("{status}\n"))));
    *response.status_mut() = status;
    Ok(response)
}
