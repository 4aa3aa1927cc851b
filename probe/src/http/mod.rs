//! HTTP(S) checks with every phase timed on its own.
//!
//! One run: resolve (hickory, or a `resolve` override, or an IP literal) → vet every address
//! against the [`TargetPolicy`] → TCP connect to a vetted address → TLS handshake → hyper
//! HTTP/1.1 or HTTP/2 (by ALPN) on that very connection → first response byte → body, read up
//! to the cap. Redirects repeat the sequence on a new connection, re-vetting the new target,
//! and their phases add up (as blackbox_exporter does). All phases share one deadline: the
//! check's timeout. Timing uses tokio's monotonic clock.
//!
//! Deliberately absent: connection pooling, cookies, decompression, HTTP/3. A probe measures
//! a cold visit, the one a member's first page load pays.

mod conn;
pub mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, LOCATION, USER_AGENT};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meridian_shared::check::{BodyMatch, HttpCheck, RedirectPolicy, ResolverSpec};
use meridian_shared::result::{CheckError, EDGE_HEADERS, ErrorClass, HttpDetail, Phases};
use tokio::time::{Instant, timeout_at};
use url::{Host, Url};

use crate::resolve::{self, LookupFailure};
use crate::safety::TargetPolicy;
use conn::Stream;

/// What a failed step reports: becomes the result's [`CheckError`].
#[derive(Debug)]
pub struct Failure {
    class: ErrorClass,
    message: String,
}

impl Failure {
    fn new(class: ErrorClass, message: String) -> Failure {
        Failure { class, message }
    }
}

/// Everything an HTTP check needs besides its spec; shared by all runs of a probe.
#[derive(Clone)]
pub struct HttpEnv {
    /// Which addresses may be contacted.
    pub policy: TargetPolicy,
    /// TLS client configuration (roots, ALPN).
    pub tls: Arc<rustls::ClientConfig>,
    /// Resolver for host names.
    pub resolver: ResolverSpec,
    /// `User-Agent` sent unless the check sets its own.
    pub user_agent: String,
}

/// What an HTTP check produced, before the probe wraps it into a result record.
#[derive(Debug, Default)]
pub struct HttpOutcome {
    /// Per-phase durations, summed over redirects.
    pub phases: Phases,
    /// Address of the last connection.
    pub remote_ip: Option<IpAddr>,
    /// Response details, when a connection was made.
    pub detail: Option<HttpDetail>,
    /// Why it failed, if it did.
    pub error: Option<CheckError>,
    /// Non-fatal findings.
    pub warnings: Vec<String>,
}

/// Per-phase accumulator over redirect hops.
#[derive(Default)]
struct Acc {
    dns: Option<Duration>,
    connect: Option<Duration>,
    tls: Option<Duration>,
    ttfb: Option<Duration>,
    transfer: Option<Duration>,
}

fn add(slot: &mut Option<Duration>, d: Duration) {
    *slot = Some(slot.unwrap_or_default() + d);
}

fn micros(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The final response of one hop.
struct Response {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// Runs one HTTP check. `now_unix` is the wall-clock time in seconds, for certificate expiry.
pub async fn run(check: &HttpCheck, env: &HttpEnv, now_unix: i64) -> HttpOutcome {
    let start = Instant::now();
    let deadline = start + check.timeout;
    let mut acc = Acc::default();
    let mut detail = HttpDetail::default();
    let mut remote_ip = None;
    let mut connected = false;
    let mut url = check.url.clone();
    let mut method = check.method.clone();
    let hop = Hop {
        check,
        env,
        now_unix,
        deadline,
    };

    let result = loop {
        let resp = match hop
            .fetch(
                &url,
                &method,
                &mut acc,
                &mut detail,
                &mut remote_ip,
                &mut connected,
            )
            .await
        {
            Ok(r) => r,
            Err(f) => break Err(f),
        };
        let follow = match check.redirects {
            RedirectPolicy::Follow { max } => Some(max),
            RedirectPolicy::None => None,
        };
        match (follow, (300..400).contains(&resp.status), &resp.location) {
            (Some(max), true, Some(location)) => {
                if detail.redirects >= max {
                    break Err(Failure::new(
                        ErrorClass::TooManyRedirects,
                        format!("more than {max} redirects (last to {location})"),
                    ));
                }
                match next_url(&url, location) {
                    Ok(next) => url = next,
                    Err(f) => break Err(f),
                }
                detail.redirects += 1;
                if resp.status == 303 || (matches!(resp.status, 301 | 302) && method == "POST") {
                    method = "GET".to_string();
                }
            }
            _ => break Ok(resp),
        }
    };

    let mut outcome = HttpOutcome {
        remote_ip,
        ..HttpOutcome::default()
    };
    let verdict = result.and_then(|resp| evaluate(check, &resp));
    if let Err(f) = verdict {
        outcome.error = Some(CheckError {
            class: f.class,
            message: f.message,
        });
    }
    if let Some(days) = detail.cert_days_left
        && days < i64::from(check.cert_expiry_warn_days)
    {
        outcome.warnings.push(format!(
            "the server certificate expires in {days} days (warning threshold {} days)",
            check.cert_expiry_warn_days
        ));
    }
    outcome.phases = Phases {
        dns: micros(acc.dns),
        connect: micros(acc.connect),
        tls: micros(acc.tls),
        ttfb: micros(acc.ttfb),
        transfer: micros(acc.transfer),
        total: micros(Some(start.elapsed())).unwrap_or_default(),
    };
    if connected {
        outcome.detail = Some(detail);
    }
    outcome
}

fn next_url(current: &Url, location: &str) -> Result<Url, Failure> {
    let next = current.join(location).map_err(|e| {
        Failure::new(
            ErrorClass::BadRedirect,
            format!("redirect to an invalid location {location:?}: {e}"),
        )
    })?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(Failure::new(
            ErrorClass::BadRedirect,
            format!("redirect to unsupported scheme: {next}"),
        ));
    }
    Ok(next)
}

fn evaluate(check: &HttpCheck, resp: &Response) -> Result<(), Failure> {
    if !check.expect_status.contains(resp.status) {
        return Err(Failure::new(
            ErrorClass::HttpStatus,
            format!(
                "status {} is not in the expected set {}",
                resp.status, check.expect_status
            ),
        ));
    }
    match &check.body {
        None => Ok(()),
        Some(BodyMatch::Contains(text)) => {
            let body = String::from_utf8_lossy(&resp.body);
            if body.contains(text.as_str()) {
                Ok(())
            } else {
                Err(Failure::new(
                    ErrorClass::ContentMismatch,
                    format!(
                        "the body ({} bytes read) does not contain {text:?}",
                        resp.body.len()
                    ),
                ))
            }
        }
        Some(BodyMatch::Regex(p)) => {
            let body = String::from_utf8_lossy(&resp.body);
            if p.compile().is_match(&body) {
                Ok(())
            } else {
                Err(Failure::new(
                    ErrorClass::ContentMismatch,
                    format!(
                        "the body ({} bytes read) does not match /{}/",
                        resp.body.len(),
                        p.as_str()
                    ),
                ))
            }
        }
    }
}

/// Aborts the spawned connection driver when the hop ends, whatever the outcome.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request/response exchange on a fresh connection.
struct Hop<'a> {
    check: &'a HttpCheck,
    env: &'a HttpEnv,
    now_unix: i64,
    deadline: Instant,
}

impl Hop<'_> {
    async fn addresses(&self, url: &Url, port: u16, acc: &mut Acc) -> Result<Vec<IpAddr>, Failure> {
        let name = match url.host() {
            Some(Host::Ipv4(ip)) => {
                add(&mut acc.dns, Duration::ZERO);
                return Ok(vec![IpAddr::V4(ip)]);
            }
            Some(Host::Ipv6(ip)) => {
                add(&mut acc.dns, Duration::ZERO);
                return Ok(vec![IpAddr::V6(ip)]);
            }
            Some(Host::Domain(name)) => name.to_ascii_lowercase(),
            None => return Err(Failure::new(ErrorClass::Dns, format!("{url} has no host"))),
        };
        if let Some(o) = self
            .check
            .resolve
            .iter()
            .find(|o| o.host == name && o.port == port)
        {
            add(&mut acc.dns, Duration::ZERO);
            return Ok(vec![o.addr]);
        }
        let budget = self.deadline.saturating_duration_since(Instant::now());
        let resolver = resolve::build(self.env.resolver, budget)
            .map_err(|m| Failure::new(ErrorClass::Dns, m))?;
        let t = Instant::now();
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = timeout_at(self.deadline, resolver.lookup_ip(fqdn.as_str())).await;
        add(&mut acc.dns, t.elapsed());
        match lookup {
            Err(_) => Err(Failure::new(
                ErrorClass::DnsTimeout,
                format!("resolving {name} timed out"),
            )),
            Ok(Ok(ips)) => Ok(ips.iter().collect()),
            Ok(Err(e)) => Err(match resolve::classify(&e) {
                LookupFailure::Timeout => Failure::new(
                    ErrorClass::DnsTimeout,
                    format!("resolving {name} timed out"),
                ),
                LookupFailure::Rcode(rc) => Failure::new(
                    ErrorClass::Dns,
                    format!("resolving {name}: {rc}, no address"),
                ),
                LookupFailure::Other(m) => {
                    Failure::new(ErrorClass::Dns, format!("resolving {name}: {m}"))
                }
            }),
        }
    }

    async fn fetch(
        &self,
        url: &Url,
        method: &str,
        acc: &mut Acc,
        detail: &mut HttpDetail,
        remote_ip: &mut Option<IpAddr>,
        connected: &mut bool,
    ) -> Result<Response, Failure> {
        let https = url.scheme() == "https";
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });

        let resolved = self.addresses(url, port, acc).await?;
        let family: Vec<IpAddr> = resolved
            .iter()
            .copied()
            .filter(|ip| self.check.ip_version.allows(*ip))
            .collect();
        if family.is_empty() {
            return Err(Failure::new(
                ErrorClass::Dns,
                format!(
                    "{host} has no address of the requested family ({:?})",
                    self.check.ip_version
                ),
            ));
        }
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for ip in family {
            match self.env.policy.check(ip) {
                Ok(()) => allowed.push(ip),
                Err(why) => refused.push(format!("{ip} ({why})")),
            }
        }
        if allowed.is_empty() {
            return Err(Failure::new(
                ErrorClass::BlockedTarget,
                format!(
                    "{host} resolves only to addresses probes may not contact: {}; allow them explicitly for lab use",
                    refused.join(", ")
                ),
            ));
        }
        allowed.sort_by_key(|ip| ip.is_ipv6()); // stable: IPv4 first, resolver order kept

        let t = Instant::now();
        let (tcp, ip) = conn::connect(&allowed, port, self.deadline)
            .await
            .inspect_err(|_| add(&mut acc.connect, t.elapsed()))?;
        add(&mut acc.connect, t.elapsed());
        *remote_ip = Some(ip);
        *connected = true;

        let (stream, h2) = if https {
            let t = Instant::now();
            let r = conn::handshake(
                tcp,
                self.env.tls.clone(),
                &host,
                self.now_unix,
                self.deadline,
            )
            .await;
            add(&mut acc.tls, t.elapsed());
            let (tls, info) = r?;
            detail.tls_version = info.version;
            detail.cert_days_left = info.cert_days_left;
            (Stream::Tls(Box::new(tls)), info.h2)
        } else {
            add(&mut acc.tls, Duration::ZERO);
            // The final connection is what the result describes: a plain hop after an https
            // one has no TLS version or certificate.
            detail.tls_version = None;
            detail.cert_days_left = None;
            (Stream::Plain(tcp), false)
        };

        let protocol = |e: hyper::Error| {
            Failure::new(
                ErrorClass::HttpProtocol,
                format!("HTTP exchange with {host} failed: {e}"),
            )
        };
        let io = TokioIo::new(stream);
        let (mut sender, _driver) = if h2 {
            let (s, c) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
                TokioExecutor::new(),
                io,
            )
            .await
            .map_err(protocol)?;
            let driver = AbortOnDrop(tokio::spawn(async move {
                let _ = c.await;
            }));
            (Sender::H2(s), driver)
        } else {
            let (s, c) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
                .await
                .map_err(protocol)?;
            let driver = AbortOnDrop(tokio::spawn(async move {
                let _ = c.await;
            }));
            (Sender::H1(s), driver)
        };

        let request = self.request(url, method, h2)?;
        let t = Instant::now();
        let response = timeout_at(self.deadline, sender.send(request)).await;
        add(&mut acc.ttfb, t.elapsed());
        let response = match response {
            Err(_) => {
                return Err(Failure::new(
                    ErrorClass::HttpTimeout,
                    format!("no response from {host} before the check's timeout"),
                ));
            }
            Ok(r) => r.map_err(protocol)?,
        };

        let status = response.status().as_u16();
        detail.status = Some(status);
        detail.http_version = Some(match response.version() {
            http::Version::HTTP_2 => "HTTP/2".to_string(),
            http::Version::HTTP_10 => "HTTP/1.0".to_string(),
            _ => "HTTP/1.1".to_string(),
        });
        detail.edge = EDGE_HEADERS
            .iter()
            .filter_map(|name| {
                let values: Vec<&str> = response
                    .headers()
                    .get_all(*name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (!values.is_empty()).then(|| (name.to_string(), values.join(", ")))
            })
            .collect();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);

        let t = Instant::now();
        let cap = usize::try_from(self.check.max_body_bytes).unwrap_or(usize::MAX);
        let mut body = response.into_body();
        // The body is only kept when something will look at it: the final response's
        // content match. Otherwise bytes are counted and dropped as they arrive.
        let keep = self.check.body.is_some();
        let mut kept = Vec::new();
        let mut read_bytes = 0usize;
        detail.truncated = false;
        let read = loop {
            match timeout_at(self.deadline, body.frame()).await {
                Err(_) => {
                    break Err(Failure::new(
                        ErrorClass::HttpTimeout,
                        format!(
                            "the body from {host} was still arriving at the check's timeout ({read_bytes} bytes read)"
                        ),
                    ));
                }
                Ok(None) => break Ok(()),
                Ok(Some(Err(e))) => break Err(protocol(e)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let take = data.len().min(cap - read_bytes);
                        if keep {
                            kept.extend_from_slice(&data[..take]);
                        }
                        read_bytes += take;
                        if take < data.len() {
                            detail.truncated = true;
                            break Ok(());
                        }
                    }
                }
            }
        };
        add(&mut acc.transfer, t.elapsed());
        detail.bytes = read_bytes as u64;
        read?;
        Ok(Response {
            status,
            location,
            body: kept,
        })
    }

    fn request(
        &self,
        url: &Url,
        method: &str,
        h2: bool,
    ) -> Result<http::Request<Empty<Bytes>>, Failure> {
        let bad = |e: http::Error| {
            Failure::new(
                ErrorClass::HttpProtocol,
                format!("cannot build the request: {e}"),
            )
        };
        let mut b = http::Request::builder().method(method);
        if h2 {
            b = b.uri(url.as_str());
        } else {
            let mut target = url.path().to_string();
            if let Some(q) = url.query() {
                target.push('?');
                target.push_str(q);
            }
            let authority = match url.port() {
                Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_string(),
            };
            b = b.uri(target).header(HOST, authority);
        }
        let mut has_agent = false;
        for (k, v) in &self.check.headers {
            has_agent |= k.eq_ignore_ascii_case("user-agent");
            b = b.header(k.as_str(), v.as_str());
        }
        if !has_agent {
            b = b.header(USER_AGENT, self.env.user_agent.as_str());
        }
        b.body(Empty::new()).map_err(bad)
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    async fn send(
        &mut self,
        req: http::Request<Empty<Bytes>>,
    ) -> hyper::Result<http::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
        }
    }
}
