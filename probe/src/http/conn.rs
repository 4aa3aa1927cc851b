//! The timed connection: TCP connect and TLS handshake, each measured on its own.
//!
//! This is the "connector of our own" that makes per-phase timing possible: hyper's pooled
//! client hides where time goes, so a check opens its own socket to an already vetted
//! address, times the handshake(s), and only then hands the stream to hyper.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use meridian_shared::result::ErrorClass;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::client::TlsStream;

use super::Failure;

/// A connected stream, plain or TLS.
pub enum Stream {
    /// `http://`
    Plain(TcpStream),
    /// `https://`
    Tls(Box<TlsStream<TcpStream>>),
}

/// What the TLS handshake negotiated.
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: Option<String>,
    /// Whether the server chose HTTP/2 by ALPN.
    pub h2: bool,
    /// Days until the leaf certificate expires.
    pub cert_days_left: Option<i64>,
}

/// Connects to the first of `addrs` that accepts, trying them in order within the deadline.
/// Returns the stream, the address used and the time spent.
pub async fn connect(
    addrs: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> Result<(TcpStream, IpAddr), Failure> {
    let mut last: Option<Failure> = None;
    for &ip in addrs {
        let sa = SocketAddr::new(ip, port);
        match timeout_at(deadline, TcpStream::connect(sa)).await {
            Ok(Ok(stream)) => {
                // Requests are small and latency is what we measure: no Nagle delay.
                let _ = stream.set_nodelay(true);
                return Ok((stream, ip));
            }
            Ok(Err(e)) => last = Some(connect_failure(sa, &e)),
            Err(_) => {
                return Err(Failure::new(
                    ErrorClass::ConnectTimeout,
                    format!("TCP connect to {sa} did not complete before the check's timeout"),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        Failure::new(ErrorClass::Connect, "no address to connect to".to_string())
    }))
}

fn connect_failure(sa: SocketAddr, e: &io::Error) -> Failure {
    let class = match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorClass::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorClass::ConnectTimeout,
        _ => ErrorClass::Connect,
    };
    Failure::new(class, format!("TCP connect to {sa} failed: {e}"))
}

/// Runs the TLS handshake on a connected socket.
pub async fn handshake(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    host: &str,
    now_unix: i64,
    deadline: Instant,
) -> Result<(TlsStream<TcpStream>, TlsInfo), Failure> {
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| {
        Failure::new(
            ErrorClass::Tls,
            format!("{host:?} cannot be a TLS server name: {e}"),
        )
    })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = match timeout_at(deadline, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(Failure::new(
                ErrorClass::Tls,
                format!("TLS handshake with {host} failed: {e}"),
            ));
        }
        Err(_) => {
            return Err(Failure::new(
                ErrorClass::Tls,
                format!("TLS handshake with {host} did not complete before the check's timeout"),
            ));
        }
    };
    let (_, conn) = stream.get_ref();
    let info = TlsInfo {
        version: conn.protocol_version().map(super::tls::version_name),
        h2: conn.alpn_protocol() == Some(b"h2"),
        cert_days_left: conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|leaf| super::tls::cert_days_left(leaf, now_unix)),
    };
    Ok((stream, info))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
