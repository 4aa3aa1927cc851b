//! A scriptable HTTP(S) origin: the built-in demo target, and the origin the tests and
//! benchmarks measure against.
//!
//! Behaviour is chosen per request by query parameters, so one server covers every case:
//!
//! | parameter        | effect                                                            |
//! |------------------|-------------------------------------------------------------------|
//! | `status=N`       | respond with status N (default 200)                               |
//! | `delay_ms=N`     | wait N ms before sending the response headers (server time)       |
//! | `size=N`         | send an N-byte body (default: a one-line greeting)                |
//! | `body_delay_ms=N`| send the first body byte, wait N ms, then send the rest           |
//! | `location=URL`   | add a `Location` header (use with a 3xx status)                   |
//!
//! Every response carries `server: meridian-demo` and `x-served-by: <name>` so edge-identity
//! capture can be seen working. TLS (1.2, 1.3 or both; HTTP/2 and HTTP/1.1 by ALPN) uses a
//! throw-away CA made by [`TestPki`]. Plain-text listeners speak HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A throw-away certificate authority and one server certificate it signed.
pub struct TestPki {
    /// The CA certificate, to add to a client's roots.
    pub ca_der: CertificateDer<'static>,
    /// The same CA certificate in PEM, for `--cacert` files and curl.
    pub ca_pem: String,
    /// The server certificate (the CA is not included: clients already trust it).
    pub cert_der: CertificateDer<'static>,
    /// The server's private key, PKCS#8.
    key_der: Vec<u8>,
}

impl TestPki {
    /// Makes a CA and a server certificate for `names` (DNS names or IP literals) valid from
    /// yesterday until `valid_days` from now.
    pub fn generate(names: &[&str], valid_days: i64) -> Result<TestPki, rcgen::Error> {
        let now = time::OffsetDateTime::now_utc();
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Meridian demo CA");
        ca_params.not_before = now - time::Duration::days(1);
        ca_params.not_after = now + time::Duration::days(3650);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("origin"),
        );
        params.not_before = now - time::Duration::days(1);
        // Half a day of slack so "days left" reads as the whole number asked for.
        params.not_after = now + time::Duration::days(valid_days) + time::Duration::hours(12);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        Ok(TestPki {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }

    /// A rustls server configuration presenting the server certificate, offering the given
    /// protocol versions and ALPN `h2`, `http/1.1`.
    pub fn server_config(&self, versions: TlsVersions) -> Result<Arc<ServerConfig>, rustls::Error> {
        let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
            TlsVersions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersions::Tls12 => &[&rustls::version::TLS12],
            TlsVersions::Tls13 => &[&rustls::version::TLS13],
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)?
                .with_no_client_auth()
                .with_single_cert(vec![self.cert_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Which TLS versions the origin offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3.
    Both,
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// A running origin; stops when dropped.
pub struct Origin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests answered so far.
    requests: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
}

impl Origin {
    /// Serves on an already bound listener (tests bind port 0), with TLS when `tls` is given.
    pub fn start(
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        name: &str,
    ) -> std::io::Result<Origin> {
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = watch::channel(false);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let counter = requests.clone();
        let name: Arc<str> = Arc::from(name);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "origin accept failed");
                            continue;
                        }
                    },
                    _ = stopped.changed() => return,
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        respond(req, name.clone())
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder
                                .http1_only()
                                .serve_connection(TokioIo::new(tcp), service)
                                .await;
                        }
                    }
                });
            }
        });
        Ok(Origin {
            addr,
            requests,
            stop,
        })
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn respond(
    req: Request<hyper::body::Incoming>,
    name: Arc<str>,
) -> Result<Response<Body>, Infallible> {
    let mut status = 200u16;
    let mut delay = Duration::ZERO;
    let mut body_delay = Duration::ZERO;
    let mut size: Option<usize> = None;
    let mut location = None;
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "status" => status = v.parse().unwrap_or(200),
            "delay_ms" => delay = Duration::from_millis(v.parse().unwrap_or(0)),
            "body_delay_ms" => body_delay = Duration::from_millis(v.parse().unwrap_or(0)),
            "size" => size = v.parse().ok(),
            "location" => location = Some(v.into_owned()),
            _ => {}
        }
    }
    if !delay.is_zero() {
        precise_sleep(delay).await;
    }
    let content = match size {
        Some(n) => Bytes::from(vec![b'x'; n.min(64 << 20)]),
        None => Bytes::from_static(b"hello from the Meridian demo origin\n"),
    };
    let body: Body = if body_delay.is_zero() || content.len() < 2 {
        Full::new(content).boxed()
    } else {
        let (mut tx, channel) = Channel::<Bytes, Infallible>::new(2);
        tokio::spawn(async move {
            if tx.send_data(content.slice(..1)).await.is_ok() {
                precise_sleep(body_delay).await;
                let _ = tx.send_data(content.slice(1..)).await;
            }
        });
        channel.boxed()
    };
    let mut resp = Response::builder()
        .status(status)
        .header("server", "meridian-demo")
        .header("x-served-by", name.as_ref())
        .header("content-type", "text/plain");
    if let Some(l) = location {
        resp = resp.header("location", l);
    }
    Ok(resp.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"bad status\n")).boxed());
        *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
        r
    }))
}

/// Sleeps for `d` to within a few tens of microseconds. tokio's timer has millisecond
/// granularity and rounds up (a 50 ms delay became ~51.4 ms), which would blur the very server
/// delays the accuracy benchmark and the timing tests inject; a blocking-pool thread's
/// `nanosleep` does not.
async fn precise_sleep(d: Duration) {
    if tokio::task::spawn_blocking(move || std::thread::sleep(d))
        .await
        .is_err()
    {
        tokio::time::sleep(d).await;
    }
}
