//! What corosync.conf says beyond the Totem options, as plain data: the cluster's nodes and
//! links, crypto, logging and uidgid settings. The daemon uses the nodes, the links and the crypto
//! settings today; the rest is carried for the features that will use it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use totem::NodeId;

use crate::crypto::{CryptoCipher, CryptoHash};
use crate::keyfile::{self, AuthKey};

/// corosync's default `mcastport`; link N defaults to this + N.
pub const MCASTPORT_DEFAULT: u16 = 5405;
/// corosync's default `token_coefficient`.
pub const TOKEN_COEFFICIENT_DEFAULT: Duration = Duration::from_millis(650);
/// Links a node may have: `ring0_addr` to `ring7_addr`.
pub const LINKS_MAX: u8 = 8;

/// Everything corosync.conf says that is not a Totem option.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Where it came from: the configuration file, or `None` for the command line.
    pub source: Option<PathBuf>,
    /// `totem.cluster_name`.
    pub cluster_name: Option<String>,
    /// `totem.config_version` (default 0).
    pub config_version: u64,
    /// `totem.transport`.
    pub transport: Transport,
    /// `totem.ip_version`: which address family a host name resolves to.
    pub ip_version: IpVersion,
    /// `totem.token_coefficient`, already added to the token timeout for 3+ nodes.
    pub token_coefficient: Duration,
    /// Every link that some node has an address on, by link number.
    pub links: BTreeMap<u8, Link>,
    /// `nodelist`, in file order.
    pub nodes: Vec<NodeEntry>,
    /// Crypto options.
    pub crypto: CryptoSettings,
    /// `logging`.
    pub logging: LoggingSettings,
    /// `uidgid`: who besides root may use the local API.
    pub uidgid: Vec<UidGid>,
    /// `system.ipc_socket`: the local API's socket, if set.
    pub ipc_socket: Option<PathBuf>,
    /// `system.metrics_listen`: where totemd serves `GET /metrics` over HTTP (off unless set;
    /// a bare port means 127.0.0.1).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The `quorum` section, when `provider: corosync_votequorum` is set.
    pub quorum: Option<quorum::QuorumConfig>,
    /// The `fencing` section, if any.
    pub fencing: Option<quorum::fencing::FenceConfig>,
}

impl Default for ClusterSettings {
    /// What the command line (no configuration file) stands for: udpu, one link on the default
    /// port, no crypto, logging to stderr.
    fn default() -> Self {
        ClusterSettings {
            source: None,
            cluster_name: None,
            config_version: 0,
            transport: Transport::Udpu,
            ip_version: IpVersion::Ipv6Then4,
            token_coefficient: TOKEN_COEFFICIENT_DEFAULT,
            links: BTreeMap::from([(0, Link::new(0))]),
            nodes: Vec::new(),
            crypto: CryptoSettings::default(),
            logging: LoggingSettings::default(),
            uidgid: Vec::new(),
            ipc_socket: None,
            metrics_listen: None,
            quorum: None,
            fencing: None,
        }
    }
}

/// `totem.transport`: how packets for every node go out (one multicast with `udp`, one unicast
/// to each node otherwise) and the defaults that depend on it (`ip_version`, how many links).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `knet`: corosync 3's default; up to 8 links.
    Knet,
    /// `udpu`: unicast UDP, one link.
    Udpu,
    /// `udp`: multicast UDP to `mcastaddr` (see [`super::Multicast`]), one link.
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Knet => "knet",
            Transport::Udpu => "udpu",
            Transport::Udp => "udp",
        })
    }
}

/// `totem.ip_version`: the family a host name in the nodelist resolves to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IpVersion {
    /// `ipv4`: IPv4 only (the default for `udp`).
    Ipv4,
    /// `ipv6`: IPv6 only.
    Ipv6,
    /// `ipv4-6`: IPv4 if there is one, else IPv6.
    Ipv4Then6,
    /// `ipv6-4`: IPv6 if there is one, else IPv4 (the default for `knet` and `udpu`).
    Ipv6Then4,
}

impl IpVersion {
    /// The address of `candidates` this setting picks, if any.
    pub fn pick(self, candidates: &[IpAddr]) -> Option<IpAddr> {
        let v4 = candidates.iter().copied().find(IpAddr::is_ipv4);
        let v6 = candidates.iter().copied().find(IpAddr::is_ipv6);
        match self {
            IpVersion::Ipv4 => v4,
            IpVersion::Ipv6 => v6,
            IpVersion::Ipv4Then6 => v4.or(v6),
            IpVersion::Ipv6Then4 => v6.or(v4),
        }
    }
}

/// One link's options (`totem.interface` with its `linknumber`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// `linknumber`: 0..=7.
    pub linknumber: u8,
    /// `mcastport`: the UDP port on this link (default 5405 + linknumber).
    pub mcastport: u16,
    /// `bindnetaddr` (udp only in corosync).
    pub bindnetaddr: Option<IpAddr>,
    /// `mcastaddr` (udp only): the multicast group; default from `cluster_name`.
    pub mcastaddr: Option<IpAddr>,
    /// `broadcast` (udp only).
    pub broadcast: bool,
    /// `ttl` (udp only; default 1).
    pub ttl: u8,
    /// `knet_ping_interval` (ms in the file): time between heartbeats; default from `token`.
    pub knet_ping_interval: Option<Duration>,
    /// `knet_ping_timeout` (ms in the file): silence before the link is down; default from `token`.
    pub knet_ping_timeout: Option<Duration>,
    /// `knet_pong_count`: pongs in a row before the link is up; default 2.
    pub knet_pong_count: Option<u32>,
}

impl Link {
    /// A link with corosync's defaults.
    pub fn new(linknumber: u8) -> Self {
        Link {
            linknumber,
            mcastport: MCASTPORT_DEFAULT.saturating_add(u16::from(linknumber)),
            bindnetaddr: None,
            mcastaddr: None,
            broadcast: false,
            ttl: 1,
            knet_ping_interval: None,
            knet_ping_timeout: None,
            knet_pong_count: None,
        }
    }
}

/// A `ringN_addr`: an IP address, or a host name resolved when the daemon starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingAddr {
    /// A literal address.
    Ip(IpAddr),
    /// A host name (resolved with `ip_version`).
    Name(String),
}

impl fmt::Display for RingAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingAddr::Ip(ip) => ip.fmt(f),
            RingAddr::Name(name) => f.write_str(name),
        }
    }
}

/// One `nodelist.node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// `nodeid`.
    pub nodeid: NodeId,
    /// `name`.
    pub name: Option<String>,
    /// `ring0_addr`..`ring7_addr` by link number; always has link 0.
    pub addrs: BTreeMap<u8, RingAddr>,
    /// `quorum_votes` (default 1).
    pub quorum_votes: u32,
    /// The line of its `node {`.
    pub line: u32,
    /// The line of its `ring0_addr`.
    pub ring0_line: u32,
}

impl NodeEntry {
    /// Its address on link 0.
    pub fn ring0(&self) -> &RingAddr {
        self.addrs.get(&0).expect("a node always has ring0_addr (checked when loaded)")
    }
}

/// `totem.crypto_cipher`, `crypto_hash`, `keyfile`, `key` (corosync 3.1 defaults: none, none,
/// /etc/corosync/authkey). `secauth: on` means aes256 + sha256 unless those are set.
#[derive(Clone, Debug)]
pub struct CryptoSettings {
    /// `crypto_cipher`.
    pub cipher: CryptoCipher,
    /// `crypto_hash`.
    pub hash: CryptoHash,
    /// `keyfile`.
    pub keyfile: PathBuf,
    /// `key`: an inline key, used only when `keyfile` is not set (as in corosync).
    pub key: Option<AuthKey>,
}

impl Default for CryptoSettings {
    fn default() -> Self {
        CryptoSettings {
            cipher: CryptoCipher::None,
            hash: CryptoHash::None,
            keyfile: PathBuf::from(keyfile::DEFAULT_PATH),
            key: None,
        }
    }
}

impl CryptoSettings {
    /// Whether packets are protected.
    pub fn enabled(&self) -> bool {
        self.cipher != CryptoCipher::None || self.hash != CryptoHash::None
    }
}

/// `logging.debug`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DebugLevel {
    /// `off` (default).
    Off,
    /// `on`.
    On,
    /// `trace`.
    Trace,
}

/// `logging.timestamp`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Timestamp {
    /// `off`.
    Off,
    /// `on`: seconds.
    On,
    /// `hires`: milliseconds (default).
    Hires,
}

/// The top-level `logging` options (`logger_subsys` sections stay in the raw entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggingSettings {
    /// `to_stderr` (default yes).
    pub to_stderr: bool,
    /// `to_logfile` (default no).
    pub to_logfile: bool,
    /// `logfile`.
    pub logfile: Option<PathBuf>,
    /// `to_syslog` (default yes).
    pub to_syslog: bool,
    /// `debug`.
    pub debug: DebugLevel,
    /// `timestamp`.
    pub timestamp: Timestamp,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            to_stderr: true,
            to_logfile: false,
            logfile: None,
            to_syslog: true,
            debug: DebugLevel::Off,
            timestamp: Timestamp::Hires,
        }
    }
}

/// One `uidgid` line: a user or group allowed to use the local API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UidGid {
    /// `uid: NAME` (a name or number, resolved by the daemon).
    Uid(String),
    /// `gid: NAME`.
    Gid(String),
}
