//! A tiny authoritative DNS responder for the built-in demo: every A question under the demo
//! zone is answered with one fixed address; anything else gets NXDOMAIN (in the zone) or
//! REFUSED (outside it). It exists so the demo can show a real DNS phase without touching the
//! machine's resolver. Tests use real servers (hickory-server, knot) instead.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType, rdata};
use tokio::net::UdpSocket;

/// Answers `*.<zone>` A/AAAA questions with `addr` until the task is dropped.
pub async fn serve(socket: UdpSocket, zone: Name, addr: IpAddr) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = answer(&buf[..n], &zone, addr) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

fn answer(packet: &[u8], zone: &Name, addr: IpAddr) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let q = query.queries.first()?.clone();
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.add_query(q.clone());
    if !zone.zone_of(q.name()) {
        reply.metadata.response_code = ResponseCode::Refused;
    } else {
        let rdata = match (q.query_type(), addr) {
            (RecordType::A, IpAddr::V4(v4)) => Some(RData::A(rdata::A(v4))),
            (RecordType::AAAA, IpAddr::V6(v6)) => Some(RData::AAAA(rdata::AAAA(v6))),
            _ => None,
        };
        match rdata {
            Some(data) => {
                reply.add_answer(Record::from_rdata(q.name().clone(), 60, data));
            }
            None if q.name() == zone || q.name().num_labels() == zone.num_labels() + 1 => {}
            None => reply.metadata.response_code = ResponseCode::NXDomain,
        }
    }
    reply.to_vec().ok()
}

/// Binds a UDP socket and serves the demo zone; returns the address it listens on.
pub async fn start(
    zone: &str,
    addr: IpAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let local = socket.local_addr()?;
    let zone = Name::from_ascii(zone).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((local, tokio::spawn(serve(socket, zone, addr))))
}
