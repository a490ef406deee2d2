//! The multi-link layer: corosync 3's knet-like redundancy, sans-IO.
//!
//! Every node may have up to 8 links (`ring0_addr` .. `ring7_addr`, corosync.conf(5)). Each link
//! to each peer has its own heartbeat (ping/pong) and status; Totem traffic to a peer goes over
//! the lowest-numbered link that is up (corosync's default `link_mode: passive`), so a failed
//! link changes no membership while another link works, and a recovered link is used again as
//! soon as it is up. [`Links::status`] shows every link to tools.
//!
//! The runtime owns one UDP socket per local link; this module owns no socket, no clock and no
//! task.
//!
//! # Call order
//! 1. [`Links::new`] with the local node, the [`LinkConfig`] and every peer's addresses.
//! 2. On every received datagram: [`Links::handle_datagram`] with the link (socket) it came in
//!    on; a `Some` payload goes to the engine.
//! 3. For every engine transmit: [`Links::send`], then send each returned datagram on its
//!    link's socket.
//! 4. When [`Links::poll_timeout`] is reached: [`Links::handle_timeout`] (spurious calls do
//!    nothing).
//! 5. After any input: drain [`Links::poll_transmit`] (pings, pongs) and [`Links::poll_event`]
//!    (link up/down, for logging); re-arm the timer from [`Links::poll_timeout`].
//!
//! # Link status (knet's rules, corosync `exec/totemknet.c`)
//! A link starts down. It comes up after `pong_count` valid pongs in a row (a ping left
//! unanswered when the next one is sent breaks the row). An up link goes down when nothing was
//! heard on it (pong or data) for `ping_timeout`. Data received on a down link is still
//! delivered and recorded, but only pongs bring a link up: a pong proves both directions.

mod frame;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use totem::{Destination, Instant, NodeId};

pub use frame::{
    Datagram, Fragment, Frame, FrameError, Heartbeat, FRAGMENTS_MAX, FRAGMENT_HEADER, HEARTBEAT_LEN,
};

/// A link number, corosync's `linknumber` (0 ..= 7, the `N` of `ringN_addr`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u8);

impl LinkId {
    /// The highest link number (knet's `KNET_MAX_LINK` is 8 links).
    pub const MAX: LinkId = LinkId(7);
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A datagram to send: the link (local socket), the peer's address on that link, the bytes.
pub type LinkTransmit = (LinkId, SocketAddr, Datagram);

/// Heartbeat options, as corosync.conf's `interface { knet_* }` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// `knet_ping_interval`: time between pings on each link to each peer.
    pub ping_interval: Duration,
    /// `knet_ping_timeout`: an up link with nothing heard for this long goes down; a pong whose
    /// round trip is longer does not count.
    pub ping_timeout: Duration,
    /// `knet_pong_count`: valid pongs in a row before a link is up (corosync's default 2).
    pub pong_count: u32,
    /// Bound of the queue drained by [`Links::poll_transmit`]; pings and pongs beyond it are
    /// dropped and counted in [`LinkStats::transmit_dropped`].
    pub transmit_queue_max: usize,
    /// Bound of the queue drained by [`Links::poll_event`]; events beyond it are dropped and
    /// counted in [`LinkStats::events_dropped`].
    pub event_queue_max: usize,
    /// Largest datagram sent, in bytes (the link MTU less IP and UDP headers): a Totem packet
    /// whose frame is longer is cut into fragments of at most this size.
    pub datagram_max: usize,
}

impl LinkConfig {
    /// corosync's `KNET_PONG_COUNT` (`exec/totemconfig.c`).
    pub const PONG_COUNT_DEFAULT: u32 = 2;

    /// The largest datagram on a link of `netmtu` bytes: less the IPv6 and UDP headers (the
    /// larger of the two IP versions).
    pub fn datagram_max_for(netmtu: usize) -> usize {
        netmtu.saturating_sub(48).max(FRAGMENT_HEADER + 1)
    }

    /// corosync's defaults for a (effective) `token` timeout, `exec/totemconfig.c`
    /// `calc_knet_ping_timers`: `ping_timeout = token / pong_count` and
    /// `ping_interval = token / (pong_count * 2)`.
    pub fn from_token(token: Duration, pong_count: u32) -> LinkConfig {
        let pong_count = pong_count.max(1);
        LinkConfig {
            ping_interval: token / (pong_count * 2),
            ping_timeout: token / pong_count,
            pong_count,
            // 8 links to each of corosync's 384 nodes (PROCESSOR_COUNT_MAX), with room for pongs.
            transmit_queue_max: 8 * 384 * 2,
            event_queue_max: 1024,
            datagram_max: Self::datagram_max_for(1500),
        }
    }
}

impl Default for LinkConfig {
    /// corosync's defaults for the default `token` of 3000 ms: ping every 750 ms, timeout
    /// 1500 ms, 2 pongs.
    fn default() -> Self {
        LinkConfig::from_token(Duration::from_millis(3000), Self::PONG_COUNT_DEFAULT)
    }
}

/// Why [`Links::new`] refused its input. Nothing was built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinksError {
    /// A link number above [`LinkId::MAX`].
    #[error("node {node}: link {link} out of range 0..=7")]
    LinkOutOfRange {
        /// The node.
        node: NodeId,
        /// The link number given.
        link: LinkId,
    },
    /// A node lists the same link twice.
    #[error("node {node}: link {link} given twice")]
    DuplicateLink {
        /// The node.
        node: NodeId,
        /// The repeated link.
        link: LinkId,
    },
    /// Two nodes share an address on one link, so datagrams could not be told apart.
    #[error("link {link}: address {addr} belongs to nodes {first} and {second}")]
    DuplicateAddress {
        /// The link.
        link: LinkId,
        /// The shared address.
        addr: SocketAddr,
        /// The node it was first given to.
        first: NodeId,
        /// The node it was given to again.
        second: NodeId,
    },
    /// A peer has no link at all.
    #[error("node {0}: no link")]
    NoLink(NodeId),
    /// `pong_count` is 0 (knet: "value should be > 0").
    #[error("pong_count must be at least 1")]
    ZeroPongCount,
    /// `ping_interval` or `ping_timeout` is zero.
    #[error("ping_interval and ping_timeout must be above zero")]
    ZeroDuration,
}

/// A link changed state; for logging (corosync logs "link: host: N link: L is down").
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The link got `pong_count` pongs in a row.
    Up {
        /// The peer.
        node: NodeId,
        /// The link.
        link: LinkId,
    },
    /// Nothing was heard on the link for `ping_timeout`.
    Down {
        /// The peer.
        node: NodeId,
        /// The link.
        link: LinkId,
    },
}

/// One link to one peer, as shown to tools (`corosync-cfgtool -s` style).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// The peer.
    pub node: NodeId,
    /// The link.
    pub link: LinkId,
    /// The peer's address on this link.
    pub addr: SocketAddr,
    /// Whether the link is up.
    pub up: bool,
    /// When the last valid pong arrived.
    pub last_pong: Option<Instant>,
    /// When anything valid (pong or data) last arrived.
    pub last_heard: Option<Instant>,
    /// Round trip of the last valid pong.
    pub rtt: Option<Duration>,
    /// Pings sent.
    pub pings_sent: u64,
    /// Valid pongs received.
    pub pongs_received: u64,
    /// Data frames sent.
    pub data_sent: u64,
    /// Data frames received.
    pub data_received: u64,
    /// Times the link went down.
    pub down_count: u64,
}

/// Counters of dropped input and output, for tools and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams that are not a frame ([`FrameError`]).
    pub malformed: u64,
    /// Datagrams from an address that is no peer's on that link.
    pub unknown_source: u64,
    /// Pings or pongs whose link or sender does not match the link and address they came from.
    pub mismatched: u64,
    /// Pongs not answering our outstanding ping, or later than `ping_timeout`.
    pub stale_pongs: u64,
    /// Destinations of [`Links::send`] that are no peer (including the local node).
    pub no_route: u64,
    /// Pings and pongs dropped because the transmit queue was full.
    pub transmit_dropped: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Packets sent cut into fragments.
    pub packets_cut: u64,
    /// Packets joined from the fragments received.
    pub packets_joined: u64,
    /// Packets some of whose fragments arrived but never all (a fragment was lost, or came
    /// with a different count): dropped, Totem asks for the packet again.
    pub packets_incomplete: u64,
}

/// The state of one link to one peer.
#[derive(Clone, Debug)]
struct PeerLink {
    addr: SocketAddr,
    up: bool,
    /// Valid pongs in a row since the last unanswered ping.
    pong_streak: u32,
    /// A ping was sent and not answered yet.
    awaiting_pong: bool,
    last_pong: Option<Instant>,
    last_heard: Option<Instant>,
    rtt: Option<Duration>,
    pings_sent: u64,
    pongs_received: u64,
    data_sent: u64,
    data_received: u64,
    down_count: u64,
}

impl PeerLink {
    fn new(addr: SocketAddr) -> Self {
        PeerLink {
            addr,
            up: false,
            pong_streak: 0,
            awaiting_pong: false,
            last_pong: None,
            last_heard: None,
            rtt: None,
            pings_sent: 0,
            pongs_received: 0,
            data_sent: 0,
            data_received: 0,
            down_count: 0,
        }
    }
}

/// The links of the local node to every peer. See the module doc for the call order.
#[derive(Debug)]
pub struct Links {
    local: NodeId,
    config: LinkConfig,
    peers: BTreeMap<NodeId, BTreeMap<LinkId, PeerLink>>,
    by_addr: BTreeMap<(LinkId, SocketAddr), NodeId>,
    /// When the next round of pings is due; `ZERO` at start so the first call pings at once.
    next_ping: Instant,
    transmits: VecDeque<LinkTransmit>,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
    /// Number of the next packet cut into fragments.
    next_packet: u32,
    /// Packets being joined, per sender, oldest first.
    joining: BTreeMap<NodeId, VecDeque<Joining>>,
}

/// Packets joined at once from one sender; an older one still incomplete is dropped.
const JOINING_MAX: usize = 4;

/// Largest packet joined from fragments: a Totem packet is at most
/// [`totem::config::PACKET_MAX_LIMIT`] plus framing and crypto.
const JOINED_MAX: usize = totem::config::PACKET_MAX_LIMIT + 4096;

/// A packet whose fragments are arriving.
#[derive(Debug)]
struct Joining {
    packet: u32,
    parts: Vec<Option<Bytes>>,
    have: usize,
    bytes: usize,
}

impl Links {
    /// Links from `local` to every peer, all down. The `local` entry of `peers`, if any, is
    /// ignored (the runtime may pass the whole nodelist).
    pub fn new(
        local: NodeId,
        config: LinkConfig,
        peers: BTreeMap<NodeId, Vec<(LinkId, SocketAddr)>>,
    ) -> Result<Links, LinksError> {
        if config.pong_count == 0 {
            return Err(LinksError::ZeroPongCount);
        }
        if config.ping_interval.is_zero() || config.ping_timeout.is_zero() {
            return Err(LinksError::ZeroDuration);
        }
        let mut table = BTreeMap::new();
        let mut by_addr = BTreeMap::new();
        for (node, links) in peers.into_iter().filter(|&(node, _)| node != local) {
            if links.is_empty() {
                return Err(LinksError::NoLink(node));
            }
            let mut own: BTreeMap<LinkId, PeerLink> = BTreeMap::new();
            for (link, addr) in links {
                if link > LinkId::MAX {
                    return Err(LinksError::LinkOutOfRange { node, link });
                }
                if own.insert(link, PeerLink::new(addr)).is_some() {
                    return Err(LinksError::DuplicateLink { node, link });
                }
                if let Some(first) = by_addr.insert((link, addr), node) {
                    return Err(LinksError::DuplicateAddress { link, addr, first, second: node });
                }
            }
            table.insert(node, own);
        }
        Ok(Links {
            local,
            config,
            peers: table,
            by_addr,
            next_ping: Instant::ZERO,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: LinkStats::default(),
            next_packet: 0,
            joining: BTreeMap::new(),
        })
    }

    /// The local node.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// Frames an engine packet and appends its datagrams for each destination node to `out`,
    /// on the lowest-numbered link that is up, or the lowest configured link when none is up
    /// (so a cluster can form before any heartbeat completes). A packet longer than
    /// `datagram_max` goes as fragments, each destination's in a row. Unknown destinations
    /// are counted in [`LinkStats::no_route`].
    pub fn send(&mut self, dest: Destination, payload: Bytes, out: &mut Vec<LinkTransmit>) {
        let datagrams = self.frames(payload);
        match dest {
            Destination::All => {
                for links in self.peers.values_mut() {
                    route(links, &datagrams, out);
                }
            }
            Destination::Node(node) => match self.peers.get_mut(&node) {
                Some(links) => route(links, &datagrams, out),
                None => self.stats.no_route += 1,
            },
        }
    }

    /// Frames an engine packet for every peer at once as datagrams to `group` on link 0
    /// (`transport: udp`, which has link 0 only): the same frames [`Links::send`] makes, so
    /// receivers open them the same way. They are sent from link 0's socket, so they arrive
    /// from this node's link 0 address, which every peer knows. Counted as sent on each peer's
    /// link 0.
    pub fn send_multicast(&mut self, group: SocketAddr, payload: Bytes, out: &mut Vec<LinkTransmit>) {
        for peer in self.peers.values_mut().filter_map(|links| links.get_mut(&LinkId(0))) {
            peer.data_sent += 1;
        }
        out.extend(self.frames(payload).into_iter().map(|d| (LinkId(0), group, d)));
    }

    /// The datagrams carrying `payload`: one data frame (kind byte and payload), or fragments
    /// when that is longer than `datagram_max`.
    fn frames(&mut self, payload: Bytes) -> Vec<Datagram> {
        if payload.len() < self.config.datagram_max {
            return vec![frame::encode_data(payload)];
        }
        let part_max = self.config.datagram_max - FRAGMENT_HEADER;
        let count = payload.len().div_ceil(part_max);
        let Some(count16) = u16::try_from(count).ok().filter(|&c| c <= FRAGMENTS_MAX) else {
            // Not from the engine (its packets are far shorter): sent whole, the kernel cuts it.
            return vec![frame::encode_data(payload)];
        };
        let packet = self.next_packet;
        self.next_packet = self.next_packet.wrapping_add(1);
        self.stats.packets_cut += 1;
        (0..count)
            .map(|i| {
                let part = payload.slice(i * part_max..payload.len().min((i + 1) * part_max));
                frame::encode_fragment(packet, i as u16, count16, part)
            })
            .collect()
    }

    /// Files a fragment from `node`; the joined payload once its last one arrived.
    fn join(&mut self, node: NodeId, f: Fragment) -> Option<Bytes> {
        let joining = self.joining.entry(node).or_default();
        let count = usize::from(f.count);
        if let Some(at) = joining.iter().position(|j| j.packet == f.packet && j.parts.len() != count) {
            // The same number with another count: a restarted sender. Start over.
            joining.remove(at);
            self.stats.packets_incomplete += 1;
        }
        let at = match joining.iter().position(|j| j.packet == f.packet) {
            Some(at) => at,
            None => {
                if joining.len() >= JOINING_MAX {
                    joining.pop_front();
                    self.stats.packets_incomplete += 1;
                }
                joining.push_back(Joining { packet: f.packet, parts: vec![None; count], have: 0, bytes: 0 });
                joining.len() - 1
            }
        };
        let j = &mut joining[at];
        let slot = &mut j.parts[usize::from(f.index)];
        if slot.is_some() {
            return None; // A duplicate.
        }
        j.bytes += f.part.len();
        if j.bytes > JOINED_MAX {
            joining.remove(at);
            self.stats.packets_incomplete += 1;
            self.stats.malformed += 1;
            return None;
        }
        *slot = Some(f.part);
        j.have += 1;
        if j.have < j.parts.len() {
            return None;
        }
        let j = joining.remove(at).expect("found above");
        let mut payload = bytes::BytesMut::with_capacity(j.bytes);
        for part in j.parts.into_iter().flatten() {
            payload.extend_from_slice(&part);
        }
        self.stats.packets_joined += 1;
        Some(payload.freeze())
    }

    /// One datagram that arrived on `link` from `from`. Returns the Totem packet inside a data
    /// frame; answers pings (queued pong) and records pongs. Anything else is dropped and
    /// counted in [`Links::stats`].
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        link: LinkId,
        from: SocketAddr,
        bytes: Bytes,
    ) -> Option<Bytes> {
        let Some(&node) = self.by_addr.get(&(link, from)) else {
            self.stats.unknown_source += 1;
            tracing::trace!(%link, %from, "datagram from unknown source dropped");
            return None;
        };
        let frame = match Frame::decode(bytes) {
            Ok(frame) => frame,
            Err(err) => {
                self.stats.malformed += 1;
                tracing::trace!(%link, %from, %err, "malformed datagram dropped");
                return None;
            }
        };
        match frame {
            Frame::Data(payload) => {
                let peer = self.peer_link_mut(node, link);
                peer.data_received += 1;
                peer.last_heard = Some(now);
                Some(payload)
            }
            Frame::Fragment(fragment) => {
                self.peer_link_mut(node, link).last_heard = Some(now);
                let payload = self.join(node, fragment)?;
                self.peer_link_mut(node, link).data_received += 1;
                Some(payload)
            }
            Frame::Ping(hb) => {
                if self.heartbeat_matches(&hb, node, link) {
                    let pong = Heartbeat { link, sender: self.local, timestamp: hb.timestamp };
                    self.queue_transmit((link, from, Frame::Pong(pong).encode().into()));
                }
                None
            }
            Frame::Pong(hb) => {
                if self.heartbeat_matches(&hb, node, link) {
                    self.on_pong(now, node, link, hb.timestamp);
                }
                None
            }
        }
    }

    /// The earliest deadline: the next round of pings or the first up link to time out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiries = self.peers.values().flat_map(BTreeMap::values).filter_map(|l| self.expiry(l));
        Some(expiries.fold(self.next_ping, Instant::min))
    }

    /// Marks down the up links silent for `ping_timeout`, then sends a round of pings on every
    /// link to every peer if one is due. Before any deadline it does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.ping_timeout;
        let mut downs = Vec::new();
        for (&node, links) in &mut self.peers {
            for (&link, peer) in links.iter_mut() {
                if peer.up && peer.last_heard.is_some_and(|t| t + timeout <= now) {
                    peer.up = false;
                    peer.pong_streak = 0;
                    peer.down_count += 1;
                    downs.push(LinkEvent::Down { node, link });
                }
            }
        }
        for event in downs {
            tracing::info!(?event, "link down");
            self.queue_event(event);
        }
        if now >= self.next_ping {
            self.ping_all(now);
            self.next_ping = now + self.config.ping_interval;
        }
    }

    /// The next ping or pong to send.
    pub fn poll_transmit(&mut self) -> Option<LinkTransmit> {
        self.transmits.pop_front()
    }

    /// The next link state change.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// The peer with address `addr` on `link`, if any.
    pub fn peer_at(&self, link: LinkId, addr: SocketAddr) -> Option<NodeId> {
        self.by_addr.get(&(link, addr)).copied()
    }

    /// Every link to every peer, by node then link.
    pub fn status(&self) -> Vec<LinkStatus> {
        let rows = self.peers.iter().flat_map(|(&node, links)| links.iter().map(move |(&l, p)| (node, l, p)));
        rows.map(|(node, link, p)| LinkStatus {
            node,
            link,
            addr: p.addr,
            up: p.up,
            last_pong: p.last_pong,
            last_heard: p.last_heard,
            rtt: p.rtt,
            pings_sent: p.pings_sent,
            pongs_received: p.pongs_received,
            data_sent: p.data_sent,
            data_received: p.data_received,
            down_count: p.down_count,
        })
        .collect()
    }

    /// Whether any link to `node` is up.
    pub fn is_reachable(&self, node: NodeId) -> bool {
        self.peers.get(&node).is_some_and(|links| links.values().any(|l| l.up))
    }

    /// The drop counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The options in use.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    fn expiry(&self, peer: &PeerLink) -> Option<Instant> {
        peer.last_heard.filter(|_| peer.up).map(|t| t + self.config.ping_timeout)
    }

    fn ping_all(&mut self, now: Instant) {
        let mut pings = Vec::new();
        for links in self.peers.values_mut() {
            for (&link, peer) in links.iter_mut() {
                if peer.awaiting_pong {
                    // The previous ping went unanswered: the row of pongs is broken.
                    peer.pong_streak = 0;
                }
                peer.awaiting_pong = true;
                peer.pings_sent += 1;
                let ping = Heartbeat { link, sender: self.local, timestamp: now.as_nanos() };
                pings.push((link, peer.addr, Frame::Ping(ping).encode().into()));
            }
        }
        for ping in pings {
            self.queue_transmit(ping);
        }
    }

    fn on_pong(&mut self, now: Instant, node: NodeId, link: LinkId, timestamp: u64) {
        let (pong_count, timeout) = (self.config.pong_count, self.config.ping_timeout);
        let sent = Instant::from_nanos(timestamp);
        let peer = self.peer_link_mut(node, link);
        if !peer.awaiting_pong || sent > now || now - sent > timeout {
            self.stats.stale_pongs += 1;
            return;
        }
        peer.awaiting_pong = false;
        peer.pong_streak = peer.pong_streak.saturating_add(1);
        peer.pongs_received += 1;
        peer.last_pong = Some(now);
        peer.last_heard = Some(now);
        peer.rtt = Some(now - sent);
        if !peer.up && peer.pong_streak >= pong_count {
            peer.up = true;
            let event = LinkEvent::Up { node, link };
            tracing::info!(?event, "link up");
            self.queue_event(event);
        }
    }

    /// A heartbeat must name the link it came in on and the node that owns its source address.
    fn heartbeat_matches(&mut self, hb: &Heartbeat, node: NodeId, link: LinkId) -> bool {
        let ok = hb.link == link && hb.sender == node;
        if !ok {
            self.stats.mismatched += 1;
        }
        ok
    }

    fn peer_link_mut(&mut self, node: NodeId, link: LinkId) -> &mut PeerLink {
        // `by_addr` only holds (node, link) pairs present in `peers`.
        self.peers.get_mut(&node).and_then(|links| links.get_mut(&link)).expect("by_addr and peers agree")
    }

    fn queue_transmit(&mut self, transmit: LinkTransmit) {
        if self.transmits.len() >= self.config.transmit_queue_max {
            self.stats.transmit_dropped += 1;
        } else {
            self.transmits.push_back(transmit);
        }
    }

    fn queue_event(&mut self, event: LinkEvent) {
        if self.events.len() >= self.config.event_queue_max {
            self.stats.events_dropped += 1;
        } else {
            self.events.push_back(event);
        }
    }
}

/// Appends the datagrams carrying one packet to one peer: on its lowest up link, else on its
/// lowest link.
fn route(links: &mut BTreeMap<LinkId, PeerLink>, datagrams: &[Datagram], out: &mut Vec<LinkTransmit>) {
    let chosen = links.iter().find(|(_, l)| l.up).or_else(|| links.iter().next()).map(|(&id, _)| id);
    let link = chosen.expect("every peer has at least one link (checked in Links::new)");
    let peer = links.get_mut(&link).expect("chosen from this map");
    peer.data_sent += 1;
    out.extend(datagrams.iter().map(|d| (link, peer.addr, d.clone())));
}
