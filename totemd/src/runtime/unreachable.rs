//! A peer whose daemon is gone, told by its host: ICMP port unreachable.
//!
//! When a daemon crashes or is killed on a running host, that host answers our next datagram
//! to its port with ICMP port unreachable. Totem alone notices only when the token is lost and
//! the consensus timeout ends (about 2.2 s at `token: 1000`); the kernel tells us within a
//! round trip. With `IP_RECVERR` / `IPV6_RECVERR` on a link socket (ip(7)), the ICMP error is
//! queued on the socket with the address of the datagram that caused it, and the next send or
//! receive fails once with `ECONNREFUSED`; the runtime then drains the queue here and reports
//! each refused peer to the engine ([`crate::node::Node::handle_peer_unreachable`]).
//!
//! A host that is down or cut off sends nothing, so those failures still take the token and
//! consensus timeouts, as in corosync.

use std::io;
use std::io::IoSliceMut;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};
use tokio::net::UdpSocket;

/// The most error-queue entries read per drain; the rest wait for the next failure.
const DRAIN_MAX: usize = 64;

/// Asks the kernel to queue ICMP errors on `socket` (unconnected UDP sockets ignore them
/// otherwise).
pub fn enable(socket: &UdpSocket) -> io::Result<()> {
    let ipv6 = socket.local_addr()?.is_ipv6();
    let result = if ipv6 {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true)
    };
    result.map_err(io::Error::from)
}

/// Reads `socket`'s error queue: the destinations that answered "port unreachable", in order.
/// Other errors (host unreachable, message too long, ...) are read and dropped: they say
/// nothing certain about the peer's daemon.
pub fn drain(socket: &UdpSocket) -> Vec<SocketAddr> {
    let mut refused = Vec::new();
    let mut data = [0u8; 64];
    let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    for _ in 0..DRAIN_MAX {
        let mut iov = [IoSliceMut::new(&mut data)];
        let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
        let Ok(msg) = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) else {
            break;
        };
        let port_unreachable = msg.cmsgs().into_iter().flatten().any(|c| match c {
            ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => {
                is_port_unreachable(e.ee_origin, e.ee_errno)
            }
            _ => false,
        });
        if let Some(addr) = msg.address.as_ref().and_then(socket_addr).filter(|_| port_unreachable) {
            refused.push(addr);
        }
    }
    refused
}

/// ICMP (v4 or v6) port unreachable, which Linux reports as `ECONNREFUSED`.
fn is_port_unreachable(origin: u8, errno: u32) -> bool {
    let icmp = origin == nix::libc::SO_EE_ORIGIN_ICMP || origin == nix::libc::SO_EE_ORIGIN_ICMP6;
    icmp && i32::try_from(errno) == Ok(nix::libc::ECONNREFUSED)
}

pub(super) fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())));
    }
    let v6 = addr.as_sockaddr_in6()?;
    Some(SocketAddr::V6(SocketAddrV6::new(v6.ip(), v6.port(), v6.flowinfo(), v6.scope_id())))
}

/// Whether a send or receive error means the error queue has news.
pub fn is_refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionRefused
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram to a closed port on loopback comes back as one refused address.
    #[tokio::test]
    async fn a_closed_port_is_reported_with_its_address() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(socket) = UdpSocket::bind(local).await else { continue }; // no IPv6 here
            enable(&socket).unwrap();
            let closed = {
                let s =
                    std::net::UdpSocket::bind(SocketAddr::new(socket.local_addr().unwrap().ip(), 0)).unwrap();
                s.local_addr().unwrap()
            };
            socket.send_to(b"x", closed).await.unwrap();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut refused = Vec::new();
            while refused.is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                refused = drain(&socket);
            }
            assert_eq!(refused, vec![closed], "{local}");
            // The pending error is reported once, then the socket works again.
            let e = socket.send_to(b"y", closed).await;
            assert!(e.is_ok() || e.as_ref().is_err_and(is_refused), "{e:?}");
        }
    }
}
