//! A loopback UDP relay between one client (a probe) and a server (a coordinator's QUIC
//! address), that a test can cut at run time, both directions at once, and restore: a network
//! partition with the coordinator still up.
//!
//! [`Relay::start`] binds `127.0.0.1:0` for the client and a second socket, connected to the
//! server, for the other side; the client is whoever sent the latest datagram (a probe binds a
//! new local port for every QUIC connection, so replies follow its newest one, as a NAT's
//! would). While cut, every datagram is counted and dropped. Nothing here contacts anything
//! but 127.0.0.1; dropping the relay stops it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context as _;
use tokio::net::UdpSocket;

/// Larger than any UDP datagram, so none is truncated.
const DATAGRAM: usize = 65_536;

/// What the relay task and its handle share.
#[derive(Debug, Default)]
struct Shared {
    /// Whether datagrams are dropped.
    cut: AtomicBool,
    /// Datagrams passed on, both directions.
    forwarded: AtomicU64,
    /// Datagrams dropped while cut, both directions.
    dropped: AtomicU64,
}

/// A running relay; stopped when dropped.
pub struct Relay {
    /// Where the client sends.
    addr: SocketAddr,
    /// Switches and counters.
    shared: Arc<Shared>,
    /// The forwarding task.
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts forwarding between a client and `server` (a loopback address).
    pub async fn start(server: SocketAddr) -> anyhow::Result<Relay> {
        anyhow::ensure!(
            server.ip().is_loopback(),
            "the relay only forwards to loopback, not {server}"
        );
        let front = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the relay's client side")?;
        let back = UdpSocket::bind(SocketAddr::new(server.ip(), 0))
            .await
            .context("binding the relay's server side")?;
        back.connect(server)
            .await
            .context("connecting the relay to the server")?;
        let addr = front.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(forward(front, back, shared.clone()));
        Ok(Relay { addr, shared, task })
    }

    /// The address the client should send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, drops every datagram in both directions.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
    }

    /// From now on, forwards again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Whether it is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// Datagrams forwarded so far, both directions.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }

    /// Datagrams dropped so far, both directions.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(front: UdpSocket, back: UdpSocket, shared: Arc<Shared>) {
    let (mut up, mut down) = (vec![0u8; DATAGRAM], vec![0u8; DATAGRAM]);
    let mut client: Option<SocketAddr> = None;
    loop {
        // Receive errors (an ICMP "port unreachable" reported on the connected socket while
        // the server is down) end nothing: the relay carries on like a network would.
        tokio::select! {
            r = front.recv_from(&mut up) => {
                let Ok((n, from)) = r else { continue };
                client = Some(from);
                if pass(&shared) {
                    let _ = back.send(up.get(..n).unwrap_or_default()).await;
                }
            }
            r = back.recv(&mut down) => {
                let Ok(n) = r else { continue };
                if let Some(to) = client
                    && pass(&shared)
                {
                    let _ = front.send_to(down.get(..n).unwrap_or_default(), to).await;
                }
            }
        }
    }
}

/// Counts one datagram; whether to pass it on.
fn pass(shared: &Shared) -> bool {
    if shared.cut.load(Ordering::SeqCst) {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
        false
    } else {
        shared.forwarded.fetch_add(1, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn recv(socket: &UdpSocket) -> Option<Vec<u8>> {
        let mut buf = [0u8; 64];
        let (n, _) = tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf[..n].to_vec())
    }

    #[tokio::test]
    async fn forwards_both_ways_and_drops_everything_while_cut() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay::start(server.local_addr().unwrap()).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"ping", relay.addr()).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, via) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        server.send_to(b"pong", via).await.unwrap();
        assert_eq!(recv(&client).await.as_deref(), Some(&b"pong"[..]));

        relay.cut();
        assert!(relay.is_cut());
        client.send_to(b"lost", relay.addr()).await.unwrap();
        server.send_to(b"lost too", via).await.unwrap();
        assert_eq!(recv(&server).await, None);
        assert_eq!(recv(&client).await, None);
        assert_eq!(relay.dropped(), 2);

        // Restored: a new client port (a new connection) gets the replies.
        relay.restore();
        let client2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client2.send_to(b"again", relay.addr()).await.unwrap();
        assert_eq!(recv(&server).await.as_deref(), Some(&b"again"[..]));
        server.send_to(b"back", via).await.unwrap();
        assert_eq!(recv(&client2).await.as_deref(), Some(&b"back"[..]));
        assert_eq!(relay.forwarded(), 4);
    }
}
