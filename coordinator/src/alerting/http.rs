//! One HTTP(S) POST of a JSON body, for the sinks: hyper's HTTP/1.1 client connection over
//! TCP, or over rustls (ring provider, Mozilla's roots) for `https`. One connection per
//! request: alerts are rare, and a fresh connection never hits a stale keep-alive.
//!
//! Deliberately absent: proxies, redirects (a sink's URL is configured, not discovered),
//! HTTP/2, and any logging: the URL can be a credential (Slack's), so errors never carry it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// At most this much of a response body is read (the sinks answer with a few bytes).
const MAX_RESPONSE: usize = 64 * 1024;

/// Why a POST did not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The URL is not `http` or `https` with a host.
    #[error("not an http(s) URL with a host")]
    BadUrl,
    /// Connecting (TCP or TLS) failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The TLS server name is not a valid DNS name or address.
    #[error("bad TLS server name")]
    ServerName,
    /// The HTTP exchange failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a header value).
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The whole request took longer than its timeout.
    #[error("timed out")]
    Timeout,
    /// The response body was larger than 64 KiB or broke off.
    #[error("response body unreadable")]
    Body,
}

/// The answer: status and (the start of) the body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when the server gave one.
    pub retry_after: Option<Duration>,
    /// The body, at most 64 KiB.
    pub body: Bytes,
}

fn tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// POSTs `body` as JSON to `url` with the extra `headers`, within `timeout`.
pub async fn post_json(
    url: &url::Url,
    headers: &[(String, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<Response, PostError> {
    tokio::time::timeout(timeout, post(url, headers, body))
        .await
        .map_err(|_| PostError::Timeout)?
}

async fn post(
    url: &url::Url,
    headers: &[(String, String)],
    body: Bytes,
) -> Result<Response, PostError> {
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err(PostError::BadUrl),
    };
    let host = url.host_str().ok_or(PostError::BadUrl)?;
    let port = url.port_or_known_default().ok_or(PostError::BadUrl)?;
    // `host_str` keeps an IPv6 literal's brackets; connecting and SNI want it bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((bare, port))
        .await
        .map_err(PostError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "meridian-coordinator");
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let request = request.body(Full::new(body))?;
    let response = if https {
        let name = rustls_pki_types::ServerName::try_from(bare.to_string())
            .map_err(|_| PostError::ServerName)?;
        let stream = tokio_rustls::TlsConnector::from(tls())
            .connect(name, tcp)
            .await
            .map_err(PostError::Connect)?;
        exchange(TokioIo::new(stream), request).await?
    } else {
        exchange(TokioIo::new(tcp), request).await?
    };
    Ok(response)
}

async fn exchange<I>(io: I, request: hyper::Request<Full<Bytes>>) -> Result<Response, PostError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|_| PostError::Body)?
            .to_bytes();
        Ok(Response {
            status,
            retry_after,
            body,
        })
    }
    .await;
    driver.abort();
    result
}
