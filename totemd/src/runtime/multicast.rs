//! `transport: udp`: packets for every node go out once, to the multicast group, as corosync's
//! udp transport does; the token and the commit token still go to one node's address.
//!
//! The smallest change that keeps one receive path: the multicast is the same link-layer data
//! frame around the same sealed packet as a unicast ([`crate::links::Links::send_multicast`]), and it is sent
//! from link 0's own socket (bound to this node's `ring0_addr` and `mcastport`). So it arrives
//! from the address every peer already knows as this node's link 0, and the link layer and the
//! crypto open it exactly like a unicast. The receive socket joined to the group is simply one
//! more socket of link 0 in the driver's list; nothing else in the driver changes.
//!
//! Sockets (socket2):
//! - link 0's socket sends with `IP_MULTICAST_IF` (`IPV6_MULTICAST_IF`) on the interface of
//!   `ring0_addr`, `IP_MULTICAST_TTL` (`IPV6_MULTICAST_HOPS`) = `ttl` (default 1), and
//!   `IP_MULTICAST_LOOP` off: the engine must not see its own packets. (A `lo` with the
//!   MULTICAST flag loops them back through the device anyway; such a datagram comes from this
//!   node's own address and is dropped by [`Multicast::is_own`] before the link layer.)
//! - the receive socket binds the group and `mcastport` (only datagrams to the group reach
//!   it), with `SO_REUSEADDR` so several daemons on one host (tests) and a restart can bind it,
//!   and joins the group on that same interface. Unlike the unicast socket this cannot steal
//!   traffic: every socket joined to a group gets its own copy.
//!
//! IPv4 names the interface by its address; IPv6 by its index, read from `/proc/net/if_inet6`
//! (no libc call needed).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;

use super::RuntimeError;
use super::SOCKET_BUFFER_BYTES;
use crate::config::DaemonConfig;
use crate::links::LinkId;

/// Where Linux lists every IPv6 address with its interface index.
const IF_INET6: &str = "/proc/net/if_inet6";

/// The group this node sends to, and its own address (to drop its own looped-back datagrams).
#[derive(Clone, Copy, Debug)]
pub struct Multicast {
    group: SocketAddr,
    own: SocketAddr,
}

impl Multicast {
    /// The group and port every multicast goes to.
    pub fn group(&self) -> SocketAddr {
        self.group
    }

    /// Whether a datagram from `from` is one of this node's own multicasts.
    pub fn is_own(&self, from: SocketAddr) -> bool {
        from == self.own
    }
}

/// With `transport: udp`: sets up link 0's socket (in `sockets`) for sending multicasts and
/// adds a socket joined to the group as one more link 0 socket. `None` for other transports.
pub fn setup(
    config: &DaemonConfig,
    sockets: &mut Vec<(LinkId, UdpSocket)>,
) -> Result<Option<Multicast>, RuntimeError> {
    let Some(m) = config.multicast() else { return Ok(None) };
    let Some((_, send)) = sockets.iter().find(|(link, _)| *link == LinkId(0)) else { return Ok(None) };
    let own = send.local_addr().map_err(|source| RuntimeError::Bind { addr: config.bind, source })?;
    let bind_err = |source| RuntimeError::Bind { addr: m.group, source };
    let index = interface_index(m.interface).map_err(bind_err)?;
    configure_sender(&SockRef::from(send), m.interface, index, m.ttl).map_err(bind_err)?;
    let receive = bind_group(m.group, m.interface, index).map_err(bind_err)?;
    let receive = UdpSocket::from_std(receive).map_err(bind_err)?;
    tracing::info!(
        "transport udp: multicasts to {} (ttl {}) from {own}; joined the group on the interface of {}",
        m.group,
        m.ttl,
        m.interface
    );
    sockets.push((LinkId(0), receive));
    Ok(Some(Multicast { group: m.group, own }))
}

/// The index of the interface holding IPv6 address `ip`; 0 for IPv4 (named by address).
fn interface_index(ip: IpAddr) -> io::Result<u32> {
    let IpAddr::V6(v6) = ip else { return Ok(0) };
    let text = std::fs::read_to_string(IF_INET6)?;
    if_inet6_index(&text, v6).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("no interface of this host has the address {v6}"))
    })
}

/// The interface index of `ip` in the text of `/proc/net/if_inet6`: the address as 32 hex
/// digits, then the index in hex.
fn if_inet6_index(text: &str, ip: Ipv6Addr) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let addr = u128::from_str_radix(fields.next()?, 16).ok()?;
        let index = u32::from_str_radix(fields.next()?, 16).ok()?;
        (Ipv6Addr::from(addr) == ip).then_some(index)
    })
}

fn configure_sender(socket: &SockRef<'_>, interface: IpAddr, index: u32, ttl: u8) -> io::Result<()> {
    match interface {
        IpAddr::V4(v4) => {
            socket.set_multicast_if_v4(&v4)?;
            socket.set_multicast_ttl_v4(u32::from(ttl))?;
            socket.set_multicast_loop_v4(false)
        }
        IpAddr::V6(_) => {
            socket.set_multicast_if_v6(index)?;
            socket.set_multicast_hops_v6(u32::from(ttl))?;
            socket.set_multicast_loop_v6(false)
        }
    }
}

/// A socket bound to `group` and joined to it on the interface of `interface` (`index`).
fn bind_group(group: SocketAddr, interface: IpAddr, index: u32) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(group), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    // Best effort, as for the unicast socket (see `transport::bind`).
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    match (group, interface) {
        (SocketAddr::V4(g), IpAddr::V4(i)) => {
            socket.bind(&group.into())?;
            socket.join_multicast_v4(g.ip(), &i)?;
        }
        (SocketAddr::V6(g), IpAddr::V6(_)) => {
            socket.set_only_v6(true)?;
            // The scope id matters for link-scope groups (ff02::, ff12::), which need one.
            let at = SocketAddrV6::new(*g.ip(), g.port(), 0, index);
            socket.bind(&SocketAddr::V6(at).into())?;
            socket.join_multicast_v6(g.ip(), index)?;
        }
        _ => {
            // The configuration refuses this (`config::multicast`); say so if it ever gets here.
            let msg = format!("group {group} is not of the address family of {interface}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
    }
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_index_of_an_ipv6_address_comes_from_if_inet6() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    fd000000000000000000000000000002 0b 40 00 80     eth0\n";
        assert_eq!(if_inet6_index(text, Ipv6Addr::LOCALHOST), Some(1));
        assert_eq!(if_inet6_index(text, "fd00::2".parse().unwrap()), Some(11));
        assert_eq!(if_inet6_index(text, "fd00::3".parse().unwrap()), None);
        assert_eq!(interface_index("10.0.0.1".parse().unwrap()).unwrap(), 0);
    }

    /// Loopback needs no special host setup for this: a socket bound to the group on 127.0.0.1
    /// and joined there receives what is sent to the group (the kernel may refuse the join when
    /// `lo` lacks the MULTICAST flag; then there is nothing to check here).
    #[test]
    fn the_group_socket_binds_the_group_with_reuse() {
        let group = SocketAddr::from(([239, 192, 77, 1], 0));
        let lo = IpAddr::from([127, 0, 0, 1]);
        match bind_group(group, lo, 0) {
            Ok(socket) => assert_eq!(socket.local_addr().unwrap().ip(), group.ip()),
            Err(e) => eprintln!("join on lo refused here: {e}"),
        }
        let mismatched = bind_group(group, "::1".parse().unwrap(), 1).unwrap_err();
        assert_eq!(mismatched.kind(), io::ErrorKind::InvalidInput);
    }
}
