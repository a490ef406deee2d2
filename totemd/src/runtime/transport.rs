//! The UDP transport: one unicast socket per local link (udpu, knet); `transport: udp` adds a
//! multicast group on link 0 (see `super::multicast`).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Requested socket buffer size. At the defaults one token rotation carries at most
/// `window_size` × `netmtu` = 600 kB of multicasts; this holds several rotations so a busy moment
/// does not drop packets (that the token's `rtr` would then have to recover). The kernel caps
/// it at `net.core.rmem_max` / `wmem_max`.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Largest datagram received; larger than any UDP payload, so nothing is ever truncated.
pub const RECV_BUFFER_BYTES: usize = 65_536;

/// The bound socket and the buffer sizes the kernel granted.
#[derive(Debug)]
pub struct Bound {
    /// The socket, non-blocking, ready for tokio.
    pub socket: std::net::UdpSocket,
    /// `SO_RCVBUF` as granted.
    pub recv_buffer: usize,
    /// `SO_SNDBUF` as granted.
    pub send_buffer: usize,
}

/// Binds the node's UDP socket.
///
/// `SO_REUSEADDR` is deliberately not set: on Linux it lets a second UDP socket bind the same
/// address and port, after which the newest socket receives every unicast datagram. A second
/// daemon started by mistake with the same address would then silently steal the first one's
/// traffic; without it, it fails with "address in use".
pub fn bind(addr: SocketAddr) -> io::Result<Bound> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: root may pass rmem_max/wmem_max (SO_RCVBUFFORCE, as knet does); others get
    // what those allow.
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER_BYTES).is_err() {
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    }
    if setsockopt(&socket, sockopt::SndBufForce, &SOCKET_BUFFER_BYTES).is_err() {
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let recv_buffer = socket.recv_buffer_size()?;
    let send_buffer = socket.send_buffer_size()?;
    Ok(Bound { socket: socket.into(), recv_buffer, send_buffer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_bind_of_the_same_address_fails() {
        let first = bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = first.socket.local_addr().unwrap();
        let err = bind(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(first.recv_buffer > 0 && first.send_buffer > 0);
    }
}
