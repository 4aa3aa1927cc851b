//! Starting the probe's scriptable origin ([`meridian_probe::demo::origin`]) for a test: plain
//! or TLS (with a chosen version set and certificate lifetime), on a loopback address, with
//! helpers that build URLs to it by IP literal or by a name of the test zone.
//!
//! The origin's behaviour is chosen per request by query parameters (`status`, `delay_ms`,
//! `size`, `body_delay_ms`, `location`); see the origin's module docs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use meridian_probe::demo::origin::{Origin, TestPki, TlsVersions};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use url::Url;

/// The names every test certificate is valid for: `origin.example.test` is the zone's name for
/// 127.0.0.1; the others let a test reach the origin by `localhost` or IP literal.
pub const CERT_NAMES: [&str; 5] = [
    "localhost",
    "127.0.0.1",
    "::1",
    "origin.test",
    "origin.example.test",
];

/// How to start an origin; `start` binds a loopback port and serves on it.
#[derive(Debug, Clone)]
pub struct OriginBuilder {
    tls: Option<TlsVersions>,
    valid_days: i64,
    name: String,
    ip: IpAddr,
    port: u16,
}

impl OriginBuilder {
    /// Plain HTTP/1.1 on 127.0.0.1.
    pub fn plain() -> OriginBuilder {
        OriginBuilder {
            tls: None,
            valid_days: 90,
            name: "test-origin".to_string(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }

    /// HTTPS (h2 and http/1.1 by ALPN) offering `versions`, with a fresh CA and a certificate
    /// for [`CERT_NAMES`] valid 90 days.
    pub fn tls(versions: TlsVersions) -> OriginBuilder {
        OriginBuilder {
            tls: Some(versions),
            ..OriginBuilder::plain()
        }
    }

    /// Makes the certificate expire `days` days from now (plus the half day of slack
    /// [`TestPki::generate`] adds, so `cert_days_left` reads exactly `days`).
    pub fn valid_days(mut self, days: i64) -> OriginBuilder {
        self.valid_days = days;
        self
    }

    /// The `x-served-by` name the origin reports.
    pub fn name(mut self, name: &str) -> OriginBuilder {
        self.name = name.to_string();
        self
    }

    /// Listens on this loopback address instead of 127.0.0.1 (e.g. `::1`).
    pub fn ip(mut self, ip: IpAddr) -> OriginBuilder {
        self.ip = ip;
        self
    }

    /// Listens on this port instead of a free one.
    pub fn port(mut self, port: u16) -> OriginBuilder {
        self.port = port;
        self
    }

    /// Binds and starts serving. Must be called inside a tokio runtime.
    pub async fn start(self) -> anyhow::Result<TestOrigin> {
        anyhow::ensure!(self.ip.is_loopback(), "tests listen on loopback only");
        let listener = TcpListener::bind((self.ip, self.port))
            .await
            .with_context(|| format!("binding the origin on {}:{}", self.ip, self.port))?;
        let (pki, config) = match self.tls {
            None => (None, None),
            Some(versions) => {
                let pki = TestPki::generate(&CERT_NAMES, self.valid_days)
                    .context("making the test CA")?;
                let config = pki.server_config(versions)?;
                (Some(pki), Some(config))
            }
        };
        let origin = Origin::start(listener, config, &self.name)?;
        Ok(TestOrigin { origin, pki })
    }
}

/// A running origin; stops when dropped.
pub struct TestOrigin {
    origin: Origin,
    pki: Option<TestPki>,
}

impl TestOrigin {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.origin.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.origin.addr.port()
    }

    /// Requests it has answered (a request counts when its handler starts).
    pub fn requests(&self) -> u64 {
        self.origin.requests()
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.pki.is_some() { "https" } else { "http" }
    }

    /// The URL of `path_and_query` (starting with `/`) by IP literal, e.g.
    /// `http://127.0.0.1:PORT/?delay_ms=200`.
    pub fn url(&self, path_and_query: &str) -> Url {
        let host = match self.origin.addr.ip() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        self.url_via(&host, path_and_query)
    }

    /// The URL of `path_and_query` with `host` (a name, e.g. `origin.example.test`) instead
    /// of the address.
    pub fn url_via(&self, host: &str, path_and_query: &str) -> Url {
        let text = format!("{}://{host}:{}{path_and_query}", self.scheme(), self.port());
        Url::parse(&text).expect("tests build URLs from a host, a port and a path")
    }

    /// The CA that signed the certificate, for TLS origins.
    pub fn ca_der(&self) -> Option<CertificateDer<'static>> {
        self.pki.as_ref().map(|p| p.ca_der.clone())
    }

    /// The CA in PEM, for `--cacert` files.
    pub fn ca_pem(&self) -> Option<&str> {
        self.pki.as_ref().map(|p| p.ca_pem.as_str())
    }
}

/// A loopback port that nothing listens on: bound, then released. Another process could take
/// it in between, but on a test machine a just-released ephemeral port stays free.
pub async fn closed_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    Ok(listener.local_addr()?.port())
}

/// The URL that redirects `hops` times (302, relative `Location`s on the same origin) before
/// reaching `last`, a path and query such as `/final?status=200`.
pub fn redirect_chain(hops: usize, last: &str) -> String {
    let mut target = last.to_string();
    for _ in 0..hops {
        let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        target = format!("/hop?status=302&location={encoded}");
    }
    target
}
