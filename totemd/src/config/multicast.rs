//! `transport: udp`: the multicast group of link 0 (`interface { mcastaddr mcastport ttl }`).
//!
//! corosync's rules (corosync.conf(5), `exec/totemconfig.c`): `mcastaddr` must be a multicast
//! address of the family the nodes use; without it the group derives from `cluster_name`
//! ([`cluster_group`]), and with neither there is no group (corosync: "No multicast address
//! specified"). `ttl` defaults to 1 so multicasts stay on the local network. `udp` has one link.
//!
//! The file-level checks ([`check`]) see only literal addresses; once host names are resolved,
//! [`check_resolved`] compares the group with this node's bind address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use confdb::conf::Diagnostic;

use super::file::FileConfig;
use super::settings::{ClusterSettings, Link, RingAddr, Transport};
use super::values::Reader;
use super::{ConfigError, DaemonConfig};

/// Where a `transport: udp` node sends its multicasts and joins to receive them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Multicast {
    /// The group and `mcastport`.
    pub group: SocketAddr,
    /// This node's `ring0_addr`: multicasts leave and are received on its interface.
    pub interface: IpAddr,
    /// `ttl`: hops a multicast may cross (1: the local network only).
    pub ttl: u8,
}

/// corosync's group for `cluster_name` on link `linknumber` (`get_cluster_mcast_addr`): a
/// 16-bit id from the name (`generate_cluster_id`: shift left one bit, add the next byte, as a
/// C `int` of signed `char`s, keep the low 16 bits) plus the link number; then
/// `239.192.(id >> 8).(id % 255)` for IPv4 (the `% 255` is corosync's, kept so both pick the
/// same group) or `ff15::id` for IPv6.
pub fn cluster_group(cluster_name: &str, linknumber: u8, ipv6: bool) -> IpAddr {
    let value = cluster_name.bytes().fold(0i32, |v, b| v.wrapping_shl(1).wrapping_add(i32::from(b as i8)));
    let id = ((value & 0xFFFF) as u16).wrapping_add(u16::from(linknumber));
    if ipv6 {
        IpAddr::V6(Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0, id))
    } else {
        IpAddr::V4(Ipv4Addr::new(239, 192, (id >> 8) as u8, (id % 0xFF) as u8))
    }
}

impl DaemonConfig {
    /// The multicast group and interface with `transport: udp`; `None` with any other
    /// transport (every packet is unicast) or when no group can be found (the file checks
    /// refuse that case).
    pub fn multicast(&self) -> Option<Multicast> {
        let cluster = &self.cluster;
        if cluster.transport != Transport::Udp {
            return None;
        }
        let link = cluster.links.get(&0).cloned().unwrap_or_else(|| Link::new(0));
        let ipv6 = self.bind.is_ipv6();
        let group = link
            .mcastaddr
            .or_else(|| cluster.cluster_name.as_deref().map(|name| cluster_group(name, 0, ipv6)))?;
        Some(Multicast {
            group: SocketAddr::new(group, link.mcastport),
            interface: self.bind.ip(),
            ttl: link.ttl,
        })
    }
}

/// The file-level checks of `transport: udp` (after the nodelist, links and `cluster_name`
/// are read): a group must exist, and `mcastaddr` must be of the family of `bindnetaddr` and
/// of the literal `ring0_addr`s.
pub(super) fn check(r: &mut Reader<'_>, settings: &ClusterSettings) {
    if settings.transport != Transport::Udp {
        return;
    }
    let path = "totem.interface.0";
    let Some(link) = settings.links.get(&0) else { return };
    if link.broadcast {
        if let Some(e) = r.get(&format!("{path}.broadcast")) {
            let line = e.line;
            r.warn(
                line,
                format!(
                    "{path}.broadcast is accepted but has no effect: totemd sends to the multicast group"
                ),
            );
        }
    }
    let Some(group) = link.mcastaddr else {
        if settings.cluster_name.is_none() {
            let line = r.get("totem.transport").map_or_else(|| r.section_line("totem"), |e| e.line);
            r.error(
                line,
                "totem.transport: udp needs a multicast group: set interface { mcastaddr } or \
                 totem.cluster_name (the group then derives from it, as in corosync)",
            );
        }
        return;
    };
    let Some(entry) = r.get(&format!("{path}.mcastaddr")) else { return };
    let line = entry.line;
    if !group.is_multicast() {
        return; // Reported where it is read (`nodes::interfaces`).
    }
    if let Some(bindnet) = link.bindnetaddr.filter(|b| b.is_ipv4() != group.is_ipv4()) {
        r.error(
            line,
            format!("{path}.mcastaddr: {group} is not of the address family of bindnetaddr {bindnet}"),
        );
        return;
    }
    let ring0 = settings.nodes.iter().find_map(|n| match n.ring0() {
        RingAddr::Ip(ip) => Some((n, *ip)),
        RingAddr::Name(_) => None,
    });
    if let Some((node, ip)) = ring0.filter(|(_, ip)| ip.is_ipv4() != group.is_ipv4()) {
        let msg = format!(
            "{path}.mcastaddr: {group} is not of the address family of ring0_addr {ip} (node {}, line {})",
            node.nodeid, node.ring0_line
        );
        r.error(line, msg);
    }
}

/// After host names are resolved: the group must be of the family of this node's bind
/// address. The error names the `mcastaddr` line (or `ring0_addr`'s when the group derives
/// from `cluster_name`).
pub(super) fn check_resolved(
    file: &FileConfig,
    config: &DaemonConfig,
    ring0_line: u32,
) -> Result<(), ConfigError> {
    let Some(m) = config.multicast() else { return Ok(()) };
    if m.group.is_ipv4() == config.bind.is_ipv4() {
        return Ok(());
    }
    let line = file.parsed.get("totem.interface.0.mcastaddr").map_or(ring0_line, |e| e.line);
    let msg = format!(
        "totem.interface.0.mcastaddr: {} is not of the address family of this node's ring0_addr {}",
        m.group.ip(),
        config.bind.ip()
    );
    Err(ConfigError::File(vec![Diagnostic::new(&file.parsed.file, line, msg)]))
}
