//! A raw TCP server for protocol-failure tests: it accepts on loopback, reads what the client
//! sends first, then either answers with fixed bytes and closes, or holds the connection open
//! in silence. It speaks neither HTTP nor TLS on purpose.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Pause after a failed `accept`, so that a persistent error cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// What the server does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Reads the first bytes, writes these bytes (maybe none) and closes the connection.
    Bytes(&'static [u8]),
    /// Reads whatever comes and never writes; the connection stays open until the client
    /// closes it or the server is dropped.
    Hold,
}

/// A running raw server; stops (and drops its connections) when dropped.
pub struct RawServer {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl RawServer {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start(reply: Reply) -> anyhow::Result<RawServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, reply, accepted.clone()));
        Ok(RawServer {
            addr,
            accepted,
            _tasks: tasks,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: TcpListener, reply: Reply, accepted: Arc<AtomicU64>) {
    // Connection tasks live in this set, so they end when the accept loop is aborted.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        conns.spawn(serve(stream, reply));
        while conns.try_join_next().is_some() {}
    }
}

async fn serve(mut stream: TcpStream, reply: Reply) {
    let mut buf = vec![0u8; 16 * 1024];
    match reply {
        Reply::Bytes(bytes) => {
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hold => {
            // Bounded by the peer: read returns 0 when it closes.
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
    }
}
