//! A CDN in front of an origin: edge PoPs, each a TLS reverse proxy in a namespace of its own,
//! all answering on one anycast address ([`EDGE_ANYCAST`]) that the WAN emulator delivers to
//! the PoP serving the sender's region. A PoP terminates TLS (rustls, ring) with the CDN's
//! certificate, forwards the request to the origin over the emulated WAN (one HTTP/2
//! connection per PoP, over TLS, reopened when it breaks), and answers with the origin's
//! status and body plus the edge headers a CDN adds and the probe records: `x-served-by` (the
//! PoP, which is the edge identity detection groups by), `x-cache`, `via`.
//!
//! Each PoP follows its own [`EdgeScript`], changed while probes run: answer an error status
//! itself without asking the origin, wait before answering, or reset every new connection. The
//! origin stays fine meanwhile: that is the CDN-edge fault.
//!
//! Deliberately absent: caching (every request goes to the origin, `x-cache: MISS`, so that
//! server time stays the edge's and the origin's), and any address outside the run.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meridian_probe::demo::origin::{TestPki, TlsVersions};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tempfile::NamedTempFile;
use tokio::task::JoinSet;

use super::origin::ScriptedOrigin;
use super::plan::EdgeSpec;
use super::{EDGE_ANYCAST, RealNet, ns};

/// How long a PoP may take to open its connection to the origin (TCP, TLS, HTTP/2).
const UPSTREAM_CONNECT: Duration = Duration::from_secs(3);
/// How long a PoP waits for the origin's answer before answering 504 itself.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept`, so that a persistent error cannot spin a core.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// What one PoP does to the requests it receives; the default forwards them untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeScript {
    /// Answer every request with this status from the edge itself, the origin not asked.
    pub status: Option<u16>,
    /// Wait this long before handling each request (the edge's own slowness).
    pub delay: Duration,
    /// Reset every new connection (TCP RST right after the accept).
    pub reset: bool,
}

/// The running CDN: every PoP of the run's plan; stops when dropped.
pub struct Cdn {
    addr: SocketAddr,
    ca: NamedTempFile,
    pops: Vec<Pop>,
}

/// One PoP as the handle sees it.
struct Pop {
    spec: EdgeSpec,
    script: Arc<Mutex<EdgeScript>>,
    requests: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl Cdn {
    /// Starts a PoP on every edge host of `net`'s plan, on [`EDGE_ANYCAST`]`:port`, forwarding
    /// to `origin`. Must be called inside a tokio runtime.
    pub fn start(net: &RealNet, port: u16, origin: &ScriptedOrigin) -> anyhow::Result<Cdn> {
        anyhow::ensure!(!net.plan().edges.is_empty(), "the plan has no edge PoP");
        let ip = EDGE_ANYCAST.to_string();
        let pki = TestPki::generate(&[ip.as_str()], 90).context("making the CDN's CA")?;
        let mut ca = NamedTempFile::new().context("creating the CDN's CA file")?;
        ca.write_all(pki.ca_pem.as_bytes())?;
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config(TlsVersions::Both)?);
        let upstream_tls = upstream_tls(origin.ca_file())?;
        let addr = SocketAddr::from((EDGE_ANYCAST, port));
        let mut pops = Vec::new();
        for spec in &net.plan().edges {
            let host = net.host(&spec.name)?;
            let listener = net
                .run_in(host, move || std::net::TcpListener::bind(addr))?
                .with_context(|| format!("binding {addr} in {}", host.ns))?;
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let upstream = Arc::new(Upstream {
                ns: host.ns.clone(),
                addr: origin.addr(),
                tls: upstream_tls.clone(),
                conn: tokio::sync::Mutex::new(None),
            });
            let edge = Arc::new(EdgeState {
                name: spec.name.clone(),
                script: Arc::new(Mutex::new(EdgeScript::default())),
                requests: Arc::new(AtomicU64::new(0)),
                upstream,
            });
            let mut tasks = JoinSet::new();
            tasks.spawn(serve(listener, acceptor.clone(), edge.clone()));
            pops.push(Pop {
                spec: spec.clone(),
                script: edge.script.clone(),
                requests: edge.requests.clone(),
                _tasks: tasks,
            });
        }
        Ok(Cdn { addr, ca, pops })
    }

    /// The URL of `path` (starting with `/`) on the anycast address.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The PEM file of the CA that signed the edges' certificate.
    pub fn ca_file(&self) -> &Path {
        self.ca.path()
    }

    /// The PoPs, in plan order.
    pub fn pops(&self) -> Vec<&EdgeSpec> {
        self.pops.iter().map(|p| &p.spec).collect()
    }

    /// Replaces the script of PoP `name`; requests (and connections) from now on follow it.
    pub fn set(&self, name: &str, script: EdgeScript) -> anyhow::Result<()> {
        let pop = self.pop(name)?;
        *pop.script.lock().unwrap_or_else(PoisonError::into_inner) = script;
        Ok(())
    }

    /// Every PoP back to forwarding untouched.
    pub fn heal(&self) {
        for pop in &self.pops {
            *pop.script.lock().unwrap_or_else(PoisonError::into_inner) = EdgeScript::default();
        }
    }

    /// Requests PoP `name` has received so far.
    pub fn requests(&self, name: &str) -> anyhow::Result<u64> {
        Ok(self.pop(name)?.requests.load(Ordering::Relaxed))
    }

    fn pop(&self, name: &str) -> anyhow::Result<&Pop> {
        self.pops
            .iter()
            .find(|p| p.spec.name == name)
            .with_context(|| format!("no edge PoP {name:?}"))
    }
}

/// What a PoP's connection tasks share.
struct EdgeState {
    name: String,
    script: Arc<Mutex<EdgeScript>>,
    requests: Arc<AtomicU64>,
    upstream: Arc<Upstream>,
}

impl EdgeState {
    fn script(&self) -> EdgeScript {
        self.script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A PoP's connection to the origin: opened from inside the PoP's namespace (so that it
/// crosses the emulated WAN), kept while it works.
struct Upstream {
    ns: String,
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    conn: tokio::sync::Mutex<Option<http2::SendRequest<Full<Bytes>>>>,
}

impl Upstream {
    /// The open connection, or a new one.
    async fn sender(&self) -> anyhow::Result<http2::SendRequest<Full<Bytes>>> {
        let mut conn = self.conn.lock().await;
        if let Some(sender) = conn.as_ref()
            && !sender.is_closed()
        {
            return Ok(sender.clone());
        }
        *conn = None;
        let sender = tokio::time::timeout(UPSTREAM_CONNECT, self.connect())
            .await
            .context("connecting to the origin timed out")??;
        *conn = Some(sender.clone());
        Ok(sender)
    }

    async fn connect(&self) -> anyhow::Result<http2::SendRequest<Full<Bytes>>> {
        let addr = self.addr;
        let tcp = ns::spawn_thread(&self.ns, move || {
            std::net::TcpStream::connect_timeout(&addr, UPSTREAM_CONNECT)
        })?
        .await
        .context("the connecting thread ended")???;
        tcp.set_nonblocking(true)?;
        let tcp = tokio::net::TcpStream::from_std(tcp)?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = self.tls.connect(name, tcp).await?;
        let (sender, connection) =
            http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        // Ends when the origin closes it or when every sender is dropped (the PoP stopped).
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// A rustls (ring) client trusting the CAs in `ca_file`, offering HTTP/2.
fn upstream_tls(ca_file: &Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).context("reading the origin's CA")? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    edge: Arc<EdgeState>,
) {
    // Connection tasks live in this set, so they end when the accept loop is aborted.
    let mut conns = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_PAUSE).await;
            continue;
        };
        if edge.script().reset {
            // SO_LINGER 0: the close sends a RST, as a crashed or overloaded edge does.
            let _ = tcp.set_zero_linger();
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let (acceptor, edge) = (acceptor.clone(), edge.clone());
        conns.spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                edge.requests.fetch_add(1, Ordering::Relaxed);
                let edge = edge.clone();
                async move { Ok::<_, Infallible>(handle(&edge, req, peer.ip()).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

/// One request through the PoP: the script first, then the origin.
async fn handle(edge: &EdgeState, req: Request<Incoming>, client: IpAddr) -> Response<Full<Bytes>> {
    let script = edge.script();
    if !script.delay.is_zero() {
        // A blocking-pool thread's sleep: tokio's timer rounds up to the next millisecond.
        let delay = script.delay;
        if tokio::task::spawn_blocking(move || std::thread::sleep(delay))
            .await
            .is_err()
        {
            tokio::time::sleep(delay).await;
        }
    }
    if let Some(status) = script.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        return edge_answer(edge, status);
    }
    match tokio::time::timeout(UPSTREAM_TIMEOUT, forward(edge, req, client)).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => edge_answer(edge, StatusCode::BAD_GATEWAY),
        Err(_) => edge_answer(edge, StatusCode::GATEWAY_TIMEOUT),
    }
}

/// The request to the origin and its answer, with the edge's headers added.
async fn forward(
    edge: &EdgeState,
    req: Request<Incoming>,
    client: IpAddr,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = Request::builder()
        .method(parts.method)
        .uri(format!("https://{}{path}", edge.upstream.addr));
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str()) && name != http::header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = upstream
        .header("x-forwarded-for", client.to_string())
        .header(http::header::VIA, format!("1.1 {}", edge.name))
        .body(Full::new(body))?;
    let mut sender = edge.upstream.sender().await?;
    let response = sender.send_request(upstream).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut out = Response::new(Full::new(body));
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str()) {
            out.headers_mut().append(name, value.clone());
        }
    }
    edge_headers(edge, out.headers_mut(), true);
    Ok(out)
}

/// An answer of the edge's own (the origin not reached or not asked).
fn edge_answer(edge: &EdgeState, status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!(
        "{status} from edge {}\n",
        edge.name
    ))));
    *response.status_mut() = status;
    edge_headers(edge, response.headers_mut(), false);
    response
}

/// The headers a CDN edge adds: who served it, whether the origin was asked.
fn edge_headers(edge: &EdgeState, headers: &mut http::HeaderMap, from_origin: bool) {
    let value =
        |s: &str| http::HeaderValue::from_str(s).unwrap_or(http::HeaderValue::from_static("edge"));
    headers.insert("x-served-by", value(&edge.name));
    if from_origin {
        headers.insert("x-cache", http::HeaderValue::from_static("MISS"));
    }
    headers.append(http::header::VIA, value(&format!("1.1 {}", edge.name)));
}

/// Connection-level headers a proxy never forwards (RFC 9110 §7.6.1), and HTTP/2's
/// pseudo-header stand-ins.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "content-length"
    )
}
