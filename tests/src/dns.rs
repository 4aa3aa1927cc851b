//! DNS servers the tests start on loopback: a real authoritative server for [`ZONE`]
//! (hickory-server, UDP and TCP on one port, counting the queries it gets) and
//! [`ScriptedDns`], a hand-written responder that misbehaves on purpose (never answers, or
//! answers every question with one response code) for failure tests.
//!
//! Deliberately absent: recursion and forwarding. A query for a name outside `example.test.`
//! gets REFUSED; nothing here ever sends a packet anywhere but back to the asker.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use meridian_shared::check::ResolverSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

/// The zone every test resolves in. Every address in it is loopback (the tests may contact
/// only loopback), and `blocked`/`mixed` point at 127.0.0.2, which the tests' target policy
/// refuses: it exists so a test can prove a refused address is never connected. `big` has ten
/// 200-byte TXT records, more than fits in one UDP response, to exercise the TCP fallback.
pub const ZONE: &str = r#"$ORIGIN example.test.
$TTL 60
@       IN SOA   ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
@       IN NS    ns1.example.test.
@       IN MX    10 mail.example.test.
@       IN TXT   "v=spf1 -all"
ns1     IN A     127.0.0.1
mail    IN A     127.0.0.1
origin  IN A     127.0.0.1
www     IN CNAME origin.example.test.
v6      IN AAAA  ::1
dual    IN A     127.0.0.1
dual    IN AAAA  ::1
blocked IN A     127.0.0.2
mixed   IN A     127.0.0.2
mixed   IN A     127.0.0.1
txt     IN TXT   "hello probe"
big     IN TXT   "00-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "01-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "02-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "04-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "05-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "06-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "07-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "08-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big     IN TXT   "09-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
"#;

/// The origin of [`ZONE`], fully qualified.
pub const ZONE_ORIGIN: &str = "example.test.";

/// Queries a server received, by transport.
#[derive(Debug, Default)]
pub struct QueryCounts {
    udp: AtomicU64,
    tcp: AtomicU64,
}

impl QueryCounts {
    /// Queries received over UDP.
    pub fn udp(&self) -> u64 {
        self.udp.load(Ordering::SeqCst)
    }

    /// Queries received over TCP.
    pub fn tcp(&self) -> u64 {
        self.tcp.load(Ordering::SeqCst)
    }

    /// Queries received over either transport.
    pub fn total(&self) -> u64 {
        self.udp() + self.tcp()
    }

    fn count(&self, tcp: bool) {
        let slot = if tcp { &self.tcp } else { &self.udp };
        slot.fetch_add(1, Ordering::SeqCst);
    }
}

/// The catalog, wrapped so that every query is counted before it is answered.
struct CountingCatalog {
    catalog: Catalog,
    counts: Arc<QueryCounts>,
}

type BoxedResponse<'a> = Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'a>>;

// `RequestHandler` is an `#[async_trait]` trait; this is the signature the macro generates,
// written out so that the harness needs no extra proc-macro crate.
impl RequestHandler for CountingCatalog {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> BoxedResponse<'async_trait>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.counts
            .count(matches!(request.protocol(), Protocol::Tcp));
        self.catalog
            .handle_request::<R, T>(request, response_handle)
    }
}

/// Binds a UDP socket and a TCP listener on the same loopback port.
async fn bind_pair() -> anyhow::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    // A port free for UDP may be taken for TCP; a few tries always find a pair in practice.
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow::anyhow!(
        "no loopback port free for both UDP and TCP: {last:?}"
    ))
}

/// An authoritative server for one zone on 127.0.0.1, UDP and TCP on one port; stops when
/// dropped.
pub struct ZoneServer {
    addr: SocketAddr,
    counts: Arc<QueryCounts>,
    _server: hickory_server::Server<CountingCatalog>,
}

impl ZoneServer {
    /// Serves [`ZONE`].
    pub async fn start() -> anyhow::Result<ZoneServer> {
        ZoneServer::serve(ZONE, ZONE_ORIGIN).await
    }

    /// Serves the zone file text `zone` whose origin is `origin` (e.g. `example.test.`).
    pub async fn serve(zone: &str, origin: &str) -> anyhow::Result<ZoneServer> {
        let origin = Name::from_ascii(origin).context("zone origin")?;
        let (origin, records) = Parser::new(zone, None, Some(origin))
            .parse()
            .context("parsing the test zone")?;
        let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
            origin.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .map_err(anyhow::Error::msg)?;
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::from(&origin),
            vec![Arc::new(handler) as Arc<dyn ZoneHandler>],
        );
        let counts = Arc::new(QueryCounts::default());
        let mut server = hickory_server::Server::new(CountingCatalog {
            catalog,
            counts: counts.clone(),
        });
        let (udp, tcp) = bind_pair().await?;
        let addr = udp.local_addr()?;
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(ZoneServer {
            addr,
            counts,
            _server: server,
        })
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This server over UDP (with TCP fallback), as a check's resolver.
    pub fn udp(&self) -> ResolverSpec {
        ResolverSpec::Udp(self.addr)
    }

    /// This server over TCP only, as a check's resolver.
    pub fn tcp(&self) -> ResolverSpec {
        ResolverSpec::Tcp(self.addr)
    }

    /// `udp://127.0.0.1:PORT`, for `--resolver` and config files.
    pub fn udp_uri(&self) -> String {
        format!("udp://{}", self.addr)
    }

    /// Queries received so far.
    pub fn queries(&self) -> &QueryCounts {
        &self.counts
    }
}

/// Pause after a failed `recv`/`accept`, so that a persistent socket error cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// How a [`ScriptedDns`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Reads every query and never answers (TCP connections are held open, silent).
    Silent,
    /// Answers every query with this response code and no records.
    Rcode(ResponseCode),
}

/// A deliberately broken DNS server on 127.0.0.1 (UDP and TCP on one port) that counts the
/// queries it receives; stops when dropped.
pub struct ScriptedDns {
    addr: SocketAddr,
    counts: Arc<QueryCounts>,
    _tasks: JoinSet<()>,
}

impl ScriptedDns {
    /// A server that never answers.
    pub async fn silent() -> anyhow::Result<ScriptedDns> {
        ScriptedDns::start(Script::Silent).await
    }

    /// A server that answers SERVFAIL to everything.
    pub async fn servfail() -> anyhow::Result<ScriptedDns> {
        ScriptedDns::start(Script::Rcode(ResponseCode::ServFail)).await
    }

    /// A server following `script`.
    pub async fn start(script: Script) -> anyhow::Result<ScriptedDns> {
        let (udp, tcp) = bind_pair().await?;
        let addr = udp.local_addr()?;
        let counts = Arc::new(QueryCounts::default());
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(udp, script, counts.clone()));
        tasks.spawn(serve_tcp(tcp, script, counts.clone()));
        Ok(ScriptedDns {
            addr,
            counts,
            _tasks: tasks,
        })
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This server over UDP, as a check's resolver.
    pub fn udp(&self) -> ResolverSpec {
        ResolverSpec::Udp(self.addr)
    }

    /// This server over TCP, as a check's resolver.
    pub fn tcp(&self) -> ResolverSpec {
        ResolverSpec::Tcp(self.addr)
    }

    /// Queries received so far.
    pub fn queries(&self) -> &QueryCounts {
        &self.counts
    }
}

/// The scripted reply to `packet`, if the script answers at all.
fn reply(packet: &[u8], script: Script) -> Option<Vec<u8>> {
    let Script::Rcode(code) = script else {
        return None;
    };
    let query = Message::from_vec(packet).ok()?;
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.response_code = code;
    if let Some(q) = query.queries.first() {
        reply.add_query(q.clone());
    }
    reply.to_vec().ok()
}

async fn serve_udp(socket: UdpSocket, script: Script, counts: Arc<QueryCounts>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        counts.count(false);
        if let Some(answer) = reply(&buf[..n], script) {
            let _ = socket.send_to(&answer, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, script: Script, counts: Arc<QueryCounts>) {
    // Connection tasks live in this set, so they end when the accept loop is aborted.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        conns.spawn(serve_tcp_conn(stream, script, counts.clone()));
        while conns.try_join_next().is_some() {}
    }
}

/// DNS over TCP: each message is preceded by its length as two bytes (RFC 1035 4.2.2).
async fn serve_tcp_conn(mut stream: TcpStream, script: Script, counts: Arc<QueryCounts>) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut msg = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut msg).await.is_err() {
            return;
        }
        counts.count(true);
        if let Some(answer) = reply(&msg, script) {
            let Ok(len) = u16::try_from(answer.len()) else {
                return;
            };
            if stream.write_u16(len).await.is_err() || stream.write_all(&answer).await.is_err() {
                return;
            }
        }
    }
}
