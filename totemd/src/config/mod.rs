//! What the daemon runs with: a [`DaemonConfig`], built from the command line or from a
//! corosync.conf.
//!
//! From a file it goes in two steps:
//! 1. [`FileConfig::load`] / [`FileConfig::read`]: parse (with [`confdb::conf`]) and check
//!    everything that does not depend on the host, collecting every error and warning with its
//!    file and line. This is what `totemd --validate` and `totemctl config check` run.
//! 2. [`FileConfig::daemon_config`]: resolve host names, pick this node (`--nodeid`, or the
//!    one nodelist entry with an address on this host) and build the peer table.
//!
//! Submodules: `check` (the report of `--validate`), `file` (the `totem`, crypto, logging, uidgid and system settings), `nodes`
//! (`nodelist` and `totem.interface`), `multicast` (`transport: udp`'s group), `host` (local
//! addresses, resolution, node choice), `settings` (the plain data types), `values` (typed
//! value reading).

mod check;
mod fencing;
mod file;
mod host;
mod multicast;
mod nodes;
mod settings;
#[cfg(test)]
mod tests;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use confdb::conf::Diagnostic;
use totem::{NodeId, TotemConfig};

use crate::links::{LinkConfig, LinkId};

pub use check::{check_and_print, check_file, check_text, CheckReport};
pub use file::{FileConfig, Invalid, Overrides};
pub use host::{if_inet6_addresses, Host, SystemHost};
pub use multicast::{cluster_group, Multicast};
pub use settings::{
    ClusterSettings, CryptoSettings, DebugLevel, IpVersion, Link, LoggingSettings, NodeEntry, RingAddr,
    Timestamp, Transport, UidGid, LINKS_MAX, MCASTPORT_DEFAULT, TOKEN_COEFFICIENT_DEFAULT,
};

/// Where corosync (and totemd) look for the configuration when none is named.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/corosync/corosync.conf";

/// Everything the daemon needs to start.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// This node's id (`nodelist.node.X.nodeid`).
    pub node_id: NodeId,
    /// The UDP address this node binds and other nodes send to (`nodelist.node.X.ring0_addr`).
    pub bind: SocketAddr,
    /// The other nodes and where to send to them (`transport: udpu`); never contains `node_id`.
    pub peers: PeerTable,
    /// Totem protocol options (`totem` section).
    pub totem: TotemConfig,
    /// Directory holding the lock file and the persisted ring seq.
    pub state_dir: PathBuf,
    /// Stop cleanly after this long (tests and demos); `None` runs until a signal.
    pub run_for: Option<Duration>,
    /// The rest of corosync.conf (cluster name, transport, links, nodes, crypto, logging,
    /// uidgid); defaults when the command line built this config.
    pub cluster: ClusterSettings,
    /// The configuration file and the options replacing parts of it, to reload it (`None` when
    /// the command line built this config).
    pub reload: Option<crate::reload::ReloadSource>,
    /// Every node's address on every link (`ringN_addr` and the link's `mcastport`), this node
    /// included. Empty means one link: link 0 at `bind` and at each peer's address (the
    /// command line); see [`DaemonConfig::link_table`].
    pub links: BTreeMap<NodeId, Vec<(LinkId, SocketAddr)>>,
}

/// Every node's addresses, by link.
pub type LinkTable = BTreeMap<NodeId, Vec<(LinkId, SocketAddr)>>;

/// Why a [`DaemonConfig`] was refused. Nothing was started when it is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Node id 0 is reserved (as in corosync).
    #[error("node id 0 is not valid")]
    ZeroNodeId,
    /// A peer is listed twice with different addresses.
    #[error("peer {0} is listed twice")]
    DuplicatePeer(NodeId),
    /// Two nodes share one address.
    #[error("nodes {0} and {1} share the address {2}")]
    DuplicateAddress(NodeId, NodeId, SocketAddr),
    /// This node's id is listed as a peer with another address than `bind`.
    #[error("node {node} is this node but is listed with {peer}, not the bind address {bind}")]
    SelfMismatch {
        /// This node's id.
        node: NodeId,
        /// The address it was listed with.
        peer: SocketAddr,
        /// The bind address.
        bind: SocketAddr,
    },
    /// A peer's address family differs from the bind address's.
    #[error("peer {0} at {1} is not reachable from a socket bound to {2} (address family)")]
    AddressFamily(NodeId, SocketAddr, SocketAddr),
    /// The Totem options are inconsistent (the engine's own check).
    #[error("totem options: {0}")]
    Totem(String),
    /// The configuration file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// The configuration file has errors; each names its file and line (`FILE:LINE: ...`).
    #[error("{}", fmt_diagnostics(.0))]
    File(Vec<Diagnostic>),
    /// `--nodeid` names a node the nodelist does not have.
    #[error("{file}: --nodeid {node} is not in the nodelist (nodes: {listed})")]
    UnknownNodeId {
        /// The configuration file.
        file: String,
        /// The id given.
        node: NodeId,
        /// The nodes listed, as `ID at ADDRESS`.
        listed: String,
    },
    /// The node chosen with `--nodeid` has an address that is not on this host.
    #[error("{file}:{line}: node {node}'s ring0_addr {addr} is not an address of this host")]
    NotLocal {
        /// The configuration file.
        file: String,
        /// The line of its `ring0_addr`.
        line: u32,
        /// The node.
        node: NodeId,
        /// Its address.
        addr: IpAddr,
    },
    /// No nodelist entry has an address on this host.
    #[error("{file}: no node of the nodelist has an address on this host (nodes: {listed}); is this host in the cluster?")]
    NoLocalNode {
        /// The configuration file.
        file: String,
        /// The nodes listed, as `ID at ADDRESS`.
        listed: String,
    },
    /// Several nodelist entries have addresses on this host (several daemons on one host).
    #[error(
        "{file}: nodes {nodes} all have addresses on this host: choose this daemon's node with --nodeid"
    )]
    AmbiguousLocalNode {
        /// The configuration file.
        file: String,
        /// The candidates, as `ID (ADDRESS)`.
        nodes: String,
    },
}

/// One diagnostic per line.
fn fmt_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl DaemonConfig {
    /// A one-node configuration with corosync's defaults, bound to `bind`.
    pub fn new(node_id: NodeId, bind: SocketAddr, state_dir: PathBuf) -> Self {
        DaemonConfig {
            node_id,
            bind,
            peers: PeerTable::default(),
            totem: TotemConfig::default(),
            state_dir,
            run_for: None,
            cluster: ClusterSettings::default(),
            reload: None,
            links: BTreeMap::new(),
        }
    }

    /// Every node's `(link, address)` list, this node included: [`DaemonConfig::links`], or
    /// link 0 only (`bind` and the peers) when that is empty.
    pub fn link_table(&self) -> LinkTable {
        if !self.links.is_empty() {
            return self.links.clone();
        }
        let own = std::iter::once((self.node_id, self.bind));
        let all = own.chain(self.peers.iter().map(|(&id, &addr)| (id, addr)));
        all.map(|(id, addr)| (id, vec![(LinkId(0), addr)])).collect()
    }

    /// The local API's Unix socket: `TOTEMD_SOCKET` from the environment (`env`), else the
    /// file's `system.ipc_socket`, else `totemd.sock` in the state directory.
    pub fn ipc_socket(&self, env: Option<PathBuf>) -> PathBuf {
        env.filter(|p| !p.as_os_str().is_empty())
            .or_else(|| self.cluster.ipc_socket.clone())
            .unwrap_or_else(|| self.state_dir.join(ipc::SOCKET_FILE))
    }

    /// This node's `(link, address)` list: one UDP socket is bound to each.
    pub fn local_links(&self) -> Vec<(LinkId, SocketAddr)> {
        self.link_table().remove(&self.node_id).unwrap_or_else(|| vec![(LinkId(0), self.bind)])
    }

    /// The heartbeat options: corosync's defaults for `token` (`calc_knet_ping_timers`), with
    /// any `knet_ping_interval`, `knet_ping_timeout`, `knet_pong_count` of the interfaces (the
    /// lowest-numbered link setting one wins: the link layer has one set of timers).
    pub fn link_config(&self) -> LinkConfig {
        let links = self.cluster.links.values();
        let pong_count =
            links.clone().find_map(|l| l.knet_pong_count).unwrap_or(LinkConfig::PONG_COUNT_DEFAULT);
        let mut config = LinkConfig::from_token(self.totem.token, pong_count);
        config.datagram_max = LinkConfig::datagram_max_for(self.totem.netmtu);
        if let Some(interval) = links.clone().find_map(|l| l.knet_ping_interval) {
            config.ping_interval = interval;
        }
        if let Some(timeout) = links.clone().find_map(|l| l.knet_ping_timeout) {
            config.ping_timeout = timeout;
        }
        config
    }

    /// Adds the nodes of a node list. This node may appear in it (a corosync nodelist lists
    /// every node) if its address is the bind address; it is then left out of the peers.
    pub fn add_nodes(
        &mut self,
        nodes: impl IntoIterator<Item = (NodeId, SocketAddr)>,
    ) -> Result<(), ConfigError> {
        for (id, addr) in nodes {
            if id.0 == 0 {
                return Err(ConfigError::ZeroNodeId);
            }
            if id == self.node_id {
                if addr != self.bind {
                    return Err(ConfigError::SelfMismatch { node: id, peer: addr, bind: self.bind });
                }
                continue;
            }
            self.peers.insert(id, addr)?;
        }
        Ok(())
    }

    /// Checks the whole configuration; the daemon refuses to start on the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.0 == 0 {
            return Err(ConfigError::ZeroNodeId);
        }
        for (&id, &addr) in self.peers.iter() {
            if addr == self.bind {
                return Err(ConfigError::DuplicateAddress(self.node_id, id, addr));
            }
            if addr.is_ipv4() != self.bind.is_ipv4() {
                return Err(ConfigError::AddressFamily(id, addr, self.bind));
            }
        }
        self.totem.validate().map_err(ConfigError::Totem)
    }
}

/// Where to send to each other node. Ordered by node id so that a multicast to every node
/// goes out in a deterministic order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerTable {
    peers: BTreeMap<NodeId, SocketAddr>,
}

impl PeerTable {
    /// Adds a peer; the same id twice, or two ids with one address, is refused.
    pub fn insert(&mut self, id: NodeId, addr: SocketAddr) -> Result<(), ConfigError> {
        if id.0 == 0 {
            return Err(ConfigError::ZeroNodeId);
        }
        if let Some(&old) = self.peers.get(&id) {
            return if old == addr { Ok(()) } else { Err(ConfigError::DuplicatePeer(id)) };
        }
        if let Some((&other, _)) = self.peers.iter().find(|(_, &a)| a == addr) {
            return Err(ConfigError::DuplicateAddress(other, id, addr));
        }
        self.peers.insert(id, addr);
        Ok(())
    }

    /// The address of one peer.
    pub fn get(&self, id: NodeId) -> Option<SocketAddr> {
        self.peers.get(&id).copied()
    }

    /// Every peer, by node id.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &SocketAddr)> {
        self.peers.iter()
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether there are no peers (a one-node cluster).
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

impl fmt::Display for PeerTable {
    /// `[2=127.0.0.1:5406, 3=127.0.0.1:5407]`, or `[]` for a one-node cluster.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (id, addr)) in self.peers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{id}={addr}")?;
        }
        f.write_str("]")
    }
}

/// Formats members as `[1, 2]` (node ids, not their `Debug` form).
pub fn fmt_members(members: &[NodeId]) -> String {
    let ids: Vec<u32> = members.iter().map(|m| m.0).collect();
    format!("{ids:?}")
}

#[cfg(test)]
mod daemon_config_tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn self_in_nodelist_is_skipped_when_its_address_is_the_bind_address() {
        let mut c = DaemonConfig::new(NodeId(1), addr(5405), PathBuf::from("x"));
        c.add_nodes([(NodeId(1), addr(5405)), (NodeId(2), addr(5406))]).unwrap();
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers.get(NodeId(2)), Some(addr(5406)));
        c.validate().unwrap();
        assert_eq!(c.peers.to_string(), "[2=127.0.0.1:5406]");
    }

    #[test]
    fn inconsistent_node_lists_are_refused() {
        let mut c = DaemonConfig::new(NodeId(1), addr(5405), PathBuf::from("x"));
        assert_eq!(
            c.add_nodes([(NodeId(1), addr(5409))]),
            Err(ConfigError::SelfMismatch { node: NodeId(1), peer: addr(5409), bind: addr(5405) })
        );
        assert_eq!(c.add_nodes([(NodeId(0), addr(5406))]), Err(ConfigError::ZeroNodeId));
        c.add_nodes([(NodeId(2), addr(5406))]).unwrap();
        assert_eq!(c.add_nodes([(NodeId(2), addr(5407))]), Err(ConfigError::DuplicatePeer(NodeId(2))));
        assert_eq!(
            c.add_nodes([(NodeId(3), addr(5406))]),
            Err(ConfigError::DuplicateAddress(NodeId(2), NodeId(3), addr(5406)))
        );
        c.add_nodes([(NodeId(4), "[::1]:5405".parse().unwrap())]).unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::AddressFamily(NodeId(4), _, _))));
    }

    #[test]
    fn members_format_as_plain_ids() {
        assert_eq!(fmt_members(&[NodeId(1), NodeId(2)]), "[1, 2]");
    }
}
