//! The host-specific part of loading a configuration: resolving host names, finding which
//! nodelist entry is this node, and building the [`DaemonConfig`] the runtime runs with.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;

use confdb::conf::Diagnostic;
use totem::NodeId;

use crate::links::LinkId;

use super::file::FileConfig;
use super::settings::{NodeEntry, RingAddr};
use super::{ConfigError, DaemonConfig, PeerTable};

/// What the configuration needs to know about the machine it runs on.
pub trait Host {
    /// Whether `ip` is an address of one of this host's interfaces.
    fn is_local(&self, ip: IpAddr) -> bool;
    /// The addresses of a host name.
    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>>;
}

/// The real host: `/proc/net/if_inet6` and bind probes for local addresses, the system
/// resolver for names. No unsafe code and no C.
#[derive(Copy, Clone, Debug, Default)]
pub struct SystemHost;

/// Where Linux lists the host's IPv6 addresses: 32 hex digits first on each line.
const IF_INET6: &str = "/proc/net/if_inet6";

impl Host for SystemHost {
    fn is_local(&self, ip: IpAddr) -> bool {
        if ip.is_loopback() {
            // All of 127.0.0.0/8 (and ::1) is this host.
            return true;
        }
        if ip.is_unspecified() || ip.is_multicast() {
            return false;
        }
        if let (IpAddr::V6(v6), Ok(text)) = (ip, std::fs::read_to_string(IF_INET6)) {
            return if_inet6_addresses(&text).contains(&v6);
        }
        // Binding succeeds only for an address of this host (port 0: any free port).
        UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
    }

    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        Ok((name, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

/// The addresses listed in the text of `/proc/net/if_inet6`.
pub fn if_inet6_addresses(text: &str) -> Vec<Ipv6Addr> {
    text.lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().next()?;
            if hex.len() != 32 {
                return None;
            }
            u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from)
        })
        .collect()
}

impl FileConfig {
    /// The configuration this daemon runs with: host names resolved, this node chosen (by
    /// `nodeid`, or else as the one node whose address is on this host, as corosync does),
    /// every other node a peer at its `ring0_addr` and link 0's `mcastport`; every node's
    /// address on every link in [`DaemonConfig::links`].
    pub fn daemon_config(
        &self,
        host: &dyn Host,
        nodeid: Option<NodeId>,
        state_dir: PathBuf,
    ) -> Result<DaemonConfig, ConfigError> {
        let file = self.parsed.file.as_str();
        let resolved = self.resolve_all(host)?;
        let me = match nodeid {
            Some(id) => self.chosen_node(host, id, &resolved)?,
            None => self.local_node(host, &resolved)?,
        };
        let port = self.settings.links.get(&0).map_or(super::settings::MCASTPORT_DEFAULT, |l| l.mcastport);
        let bind = SocketAddr::new(resolved[me][0], port);
        let mut peers = PeerTable::default();
        for (i, node) in self.settings.nodes.iter().enumerate().filter(|&(i, _)| i != me) {
            peers.insert(node.nodeid, SocketAddr::new(resolved[i][0], port))?;
        }
        let node = &self.settings.nodes[me];
        let mut config = DaemonConfig::new(node.nodeid, bind, state_dir);
        config.peers = peers;
        config.links = self.link_table(&resolved);
        config.totem = self.totem.clone();
        config.cluster = self.settings.clone();
        config.validate().map_err(|e| match e {
            ConfigError::AddressFamily(..) | ConfigError::DuplicateAddress(..) => {
                ConfigError::File(vec![Diagnostic::new(file, node.ring0_line, e.to_string())])
            }
            other => other,
        })?;
        super::multicast::check_resolved(self, &config, node.ring0_line)?;
        Ok(config)
    }

    /// Every node's `(link, address)` list: `ringN_addr` resolved, with link N's `mcastport`.
    fn link_table(&self, resolved: &[Vec<IpAddr>]) -> super::LinkTable {
        let port = |link: u8| {
            self.settings
                .links
                .get(&link)
                .map_or_else(|| super::settings::Link::new(link).mcastport, |l| l.mcastport)
        };
        let nodes = self.settings.nodes.iter().zip(resolved);
        nodes
            .map(|(node, ips)| {
                let links =
                    node.addrs.keys().zip(ips).map(|(&l, &ip)| (LinkId(l), SocketAddr::new(ip, port(l))));
                (node.nodeid, links.collect())
            })
            .collect()
    }

    /// Every node's addresses by link (index = link order of the node), names resolved.
    fn resolve_all(&self, host: &dyn Host) -> Result<Vec<Vec<IpAddr>>, ConfigError> {
        let mut errors = Vec::new();
        let mut all = Vec::new();
        for node in &self.settings.nodes {
            let mut ips = Vec::new();
            for (link, addr) in &node.addrs {
                match self.resolve(host, addr) {
                    Ok(ip) => ips.push(ip),
                    Err(reason) => {
                        let line = if *link == 0 { node.ring0_line } else { node.line };
                        let msg = format!("node {}: ring{link}_addr {addr}: {reason}", node.nodeid);
                        errors.push(Diagnostic::new(&self.parsed.file, line, msg));
                    }
                }
            }
            all.push(ips);
        }
        if errors.is_empty() {
            Ok(all)
        } else {
            Err(ConfigError::File(errors))
        }
    }

    fn resolve(&self, host: &dyn Host, addr: &RingAddr) -> Result<IpAddr, String> {
        let name = match addr {
            RingAddr::Ip(ip) => return Ok(*ip),
            RingAddr::Name(name) => name,
        };
        let candidates = host.resolve(name).map_err(|e| format!("cannot resolve the host name: {e}"))?;
        self.settings.ip_version.pick(&candidates).ok_or_else(|| {
            format!("the host name has no address of the family ip_version allows ({candidates:?})")
        })
    }

    fn chosen_node(
        &self,
        host: &dyn Host,
        id: NodeId,
        resolved: &[Vec<IpAddr>],
    ) -> Result<usize, ConfigError> {
        let nodes = &self.settings.nodes;
        let Some(i) = nodes.iter().position(|n| n.nodeid == id) else {
            return Err(ConfigError::UnknownNodeId {
                file: self.parsed.file.clone(),
                node: id,
                listed: list_nodes(nodes),
            });
        };
        let ip = resolved[i][0];
        if !host.is_local(ip) {
            return Err(ConfigError::NotLocal {
                file: self.parsed.file.clone(),
                line: nodes[i].ring0_line,
                node: id,
                addr: ip,
            });
        }
        Ok(i)
    }

    fn local_node(&self, host: &dyn Host, resolved: &[Vec<IpAddr>]) -> Result<usize, ConfigError> {
        let nodes = &self.settings.nodes;
        let local: Vec<usize> =
            (0..nodes.len()).filter(|&i| resolved[i].iter().any(|&ip| host.is_local(ip))).collect();
        let file = self.parsed.file.clone();
        match local.as_slice() {
            [i] => Ok(*i),
            [] => Err(ConfigError::NoLocalNode { file, listed: list_nodes(nodes) }),
            many => {
                let which: Vec<String> =
                    many.iter().map(|&i| format!("{} ({})", nodes[i].nodeid, resolved[i][0])).collect();
                Err(ConfigError::AmbiguousLocalNode { file, nodes: which.join(", ") })
            }
        }
    }
}

fn list_nodes(nodes: &[NodeEntry]) -> String {
    let list: Vec<String> = nodes.iter().map(|n| format!("{} at {}", n.nodeid, n.ring0())).collect();
    list.join(", ")
}
