//! What `totemctl metrics` and `/metrics` show: every counter and gauge of the node, the
//! driver and the links, written with [`Exposition`]. Read-only; called per scrape, never
//! per packet.

use std::time::Duration;

use totem::SrpState;

use super::metrics::Exposition;
use crate::links::{LinkStats, LinkStatus};
use crate::node::Node;
use crate::runtime::DriverStats;

/// No labels.
const NONE: &[(&str, &str)] = &[];

/// The whole document.
pub(in crate::runtime) fn metrics(
    node: &Node,
    driver: &DriverStats,
    links: &[LinkStatus],
    link_stats: &LinkStats,
    ipc_clients: usize,
    uptime: Duration,
) -> String {
    let mut m = Exposition::new();
    traffic(&mut m, node.stats(), driver);
    ring(&mut m, node);
    link_metrics(&mut m, links);
    fragments(&mut m, link_stats);
    services(&mut m, node, ipc_clients);
    m.gauge("uptime_seconds", "Seconds since the daemon started.", [(NONE, uptime.as_secs())]);
    m.finish()
}

/// Packets, bytes, messages, tokens, retransmits, rings, drops by reason, send errors.
fn traffic(m: &mut Exposition, e: &totem::Stats, d: &DriverStats) {
    let counters: [(&str, &str, u64); 13] = [
        ("packets_sent", "Totem packets handed to the network.", e.packets_sent),
        ("packets_received", "Totem packets received.", e.packets_received),
        ("datagrams_sent", "UDP datagrams sent, all links and peers.", d.datagrams_sent),
        ("bytes_sent", "UDP payload bytes sent.", d.bytes_sent),
        ("bytes_received", "UDP payload bytes received.", d.bytes_received),
        ("messages_delivered", "Application messages delivered in order.", e.messages_delivered),
        ("token_rotations", "Tokens accepted by this node.", e.token_rotations),
        ("retransmits", "Packets re-sent for a retransmit request.", e.retransmits),
        ("token_retransmits", "Tokens re-sent for lack of a sign of them.", e.token_retransmits),
        ("membership_changes", "Regular configurations (rings) installed.", e.configurations),
        ("send_errors", "Datagrams the kernel refused to send.", d.send_errors),
        ("recv_errors", "Receive calls that failed.", d.recv_errors),
        ("unroutable", "Transmits with no address or socket to send them.", d.unroutable),
    ];
    for (name, help, value) in counters {
        m.counter(name, help, [(NONE, value)]);
    }
    let reasons = [
        ("checksum", e.dropped_checksum),
        ("malformed", e.dropped_malformed),
        ("stale", e.dropped_stale),
        ("auth", d.open_auth_failed),
        ("replay", d.open_replay),
        ("bad_version", d.open_bad_version),
        ("too_short", d.open_too_short),
        ("too_many_senders", d.open_too_many_senders),
    ]
    .map(|(r, n)| (r.to_string(), n));
    m.counter_by("packets_dropped", "Received packets dropped, by reason.", "reason", &reasons);
}

/// This node, its ring and the ring's members.
fn ring(m: &mut Exposition, node: &Node) {
    let ring = node.ring_id();
    m.gauge("node_id", "This node's id.", [(NONE, u64::from(node.node_id().0))]);
    m.gauge("ring_seq", "Seq of the ring installed last.", [(NONE, ring.seq)]);
    let rep = u64::from(ring.representative.0);
    m.gauge("ring_representative", "Representative of the ring installed last.", [(NONE, rep)]);
    m.gauge("ring_members", "Members of the ring installed last.", [(NONE, node.members().len() as u64)]);
    let operational = u64::from(node.state() == SrpState::Operational);
    m.gauge("operational", "1 while the engine is in operational state.", [(NONE, operational)]);
    let members: Vec<(String, u64)> = node.members().iter().map(|n| (n.0.to_string(), 1)).collect();
    m.gauge_by("member", "1 for each member of the current ring.", "node", &members);
}

/// Packets longer than a datagram: cut into fragments, joined, lost with a fragment.
fn fragments(m: &mut Exposition, s: &LinkStats) {
    let counters = [
        ("packets_fragmented", "Totem packets sent as fragments (longer than a datagram).", s.packets_cut),
        ("packets_joined", "Totem packets joined from the fragments received.", s.packets_joined),
        (
            "packets_incomplete",
            "Packets dropped with fragments missing (asked for again).",
            s.packets_incomplete,
        ),
    ];
    for (name, help, value) in counters {
        m.counter(name, help, [(NONE, value)]);
    }
}

/// Each link to each peer, labelled `node` and `link`.
fn link_metrics(m: &mut Exposition, links: &[LinkStatus]) {
    let ids: Vec<(String, String)> =
        links.iter().map(|l| (l.node.0.to_string(), l.link.0.to_string())).collect();
    let labels: Vec<[(&str, &str); 2]> =
        ids.iter().map(|(n, l)| [("node", n.as_str()), ("link", l.as_str())]).collect();
    let per_link = |f: fn(&LinkStatus) -> u64| labels.iter().zip(links).map(move |(l, s)| (&l[..], f(s)));
    m.gauge("link_up", "1 while the link to the peer is up.", per_link(|s| u64::from(s.up)));
    let rtt = |s: &LinkStatus| s.rtt.map_or(0, |r| u64::try_from(r.as_micros()).unwrap_or(u64::MAX));
    m.gauge("link_rtt_microseconds", "Round trip of the link's last heartbeat.", per_link(rtt));
    m.counter("link_pings_sent", "Heartbeats sent on the link.", per_link(|s| s.pings_sent));
    m.counter(
        "link_pongs_received",
        "Heartbeat answers received on the link.",
        per_link(|s| s.pongs_received),
    );
    m.counter("link_data_sent", "Data frames sent on the link.", per_link(|s| s.data_sent));
    m.counter("link_data_received", "Data frames received on the link.", per_link(|s| s.data_received));
    m.counter("link_downs", "Times the link went down.", per_link(|s| s.down_count));
}

/// Local clients, process groups, votequorum and fencing (the last two when configured).
fn services(m: &mut Exposition, node: &Node, ipc_clients: usize) {
    m.gauge("ipc_clients", "Local API connections.", [(NONE, ipc_clients as u64)]);
    let groups: Vec<(String, u64)> =
        node.cpg().groups().map(|(name, members)| (name.to_string(), members.len() as u64)).collect();
    m.gauge("cpg_groups", "Closed process groups with members.", [(NONE, groups.len() as u64)]);
    m.gauge_by("cpg_group_members", "Processes in each group, all nodes.", "group", &groups);
    if let Some(q) = node.quorum() {
        let s = q.status();
        m.gauge("quorate", "1 while this partition is quorate.", [(NONE, u64::from(s.quorate))]);
        m.gauge("quorum_expected_votes", "Expected votes.", [(NONE, u64::from(s.expected_votes))]);
        m.gauge("quorum_total_votes", "Votes of the members.", [(NONE, u64::from(s.total_votes))]);
        m.gauge("quorum_votes_needed", "Votes needed for quorum.", [(NONE, u64::from(s.quorum))]);
        let votes: Vec<(String, u64)> =
            s.members.iter().map(|n| (n.node_id.0.to_string(), u64::from(n.votes))).collect();
        m.gauge_by("quorum_node_votes", "Votes of each member.", "node", &votes);
    }
    if let Some(f) = node.fencer() {
        m.gauge("fence_pending", "Nodes waiting to be fenced.", [(NONE, f.pending().len() as u64)]);
        let blocking = u64::from(f.is_blocking());
        m.gauge("fencing_blocking", "1 while service is held for fencing.", [(NONE, blocking)]);
        let done = f.history().count() as u64;
        m.gauge("fence_history_entries", "Fences completed, as kept in the history.", [(NONE, done)]);
    }
}

#[cfg(test)]
mod tests {
    use totem::{Instant, NodeId, PersistedState, TotemConfig};

    use super::*;
    use crate::runtime::api::metrics::parse;

    #[test]
    fn a_fresh_node_has_every_family_and_valid_text() {
        let node = Node::new(
            NodeId(3),
            TotemConfig::default(),
            PersistedState::default(),
            1,
            Instant::from_nanos(0),
        )
        .expect("node");
        let driver = DriverStats { bytes_sent: 10, open_auth_failed: 2, ..DriverStats::default() };
        let link_stats = LinkStats { packets_cut: 4, ..LinkStats::default() };
        let text = metrics(&node, &driver, &[], &link_stats, 1, Duration::from_secs(5));
        let samples = parse(&text).expect("valid text");
        let value = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|s| {
                    s.name == name
                        && s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).eq(labels.iter().copied())
                })
                .map(|s| s.value)
        };
        assert_eq!(value("totem_node_id", &[]), Some(3.0));
        assert_eq!(value("totem_bytes_sent_total", &[]), Some(10.0));
        assert_eq!(value("totem_packets_dropped_total", &[("reason", "auth")]), Some(2.0));
        assert_eq!(value("totem_packets_dropped_total", &[("reason", "checksum")]), Some(0.0));
        assert_eq!(value("totem_ipc_clients", &[]), Some(1.0));
        assert_eq!(value("totem_packets_fragmented_total", &[]), Some(4.0));
        assert_eq!(value("totem_packets_incomplete_total", &[]), Some(0.0));
        assert_eq!(value("totem_uptime_seconds", &[]), Some(5.0));
        assert!(text.contains("# TYPE totem_link_up gauge\n"), "{text}");
        assert!(!text.contains("totem_quorate"), "no quorum provider, no quorum metrics");
        assert!(samples.iter().all(|s| s.name.starts_with("totem_")));
    }
}
