//! The driver's operator requests and the state they read: the metrics text (for `totemctl
//! metrics` and the HTTP listener), a clean shutdown, the live confdb keys, and the `uidgid`
//! grants a reload changes.
//!
//! These are methods of the driver because they read all of it (node, links, counters, clients);
//! they make no protocol decision.

use cpg::service::ClientId;
use ipc::{MetricsReply, RequestBody, Response, ResponseResult};
use totem::SrpState;

use super::metrics::Exposition;
use super::{live, Access};
use crate::config::UidGid;
use crate::runtime::{unix_seconds, Driver};

impl Driver<'_> {
    /// Answers `Metrics` and `Shutdown`; `false` when `body` is neither.
    pub(in crate::runtime) fn admin_request(
        &mut self,
        id: ClientId,
        request_id: u64,
        body: &RequestBody,
    ) -> bool {
        let response = match body {
            RequestBody::Metrics(_) => {
                Response::new(request_id, ResponseResult::Metrics(MetricsReply { text: self.metrics_text() }))
            }
            RequestBody::Shutdown(_) => {
                let pid = self.ipc.clients.get(&id).map_or(0, |c| c.pid);
                tracing::info!(client = id.0, pid, "shutdown requested over the local API");
                self.shutdown_requested = true;
                Response::ok(request_id)
            }
            _ => return false,
        };
        if let Some(client) = self.ipc.clients.get_mut(&id) {
            client.session.send_response(response);
        }
        true
    }

    /// Before a confdb read: the counters and the live keys brought up to date.
    pub(in crate::runtime) fn refresh_confdb(&mut self) {
        self.confdb.refresh_counters(self.node.stats(), &self.stats);
        self.sync_live();
    }

    /// After a flush: the live keys, if something they show may have changed.
    pub(in crate::runtime) fn refresh_live_if_dirty(&mut self) {
        if self.confdb.live_dirty() {
            self.sync_live();
        }
    }

    fn sync_live(&mut self) {
        let keys = live::live_keys(&self.node, self.clock.now(), u64::from(unix_seconds()));
        self.confdb.sync_live(keys);
    }

    /// A reload changed the `uidgid` section: new grants for new connections and confdb writes.
    pub(in crate::runtime) fn apply_uidgid(&mut self, entries: &[UidGid]) {
        let access = Access::from_config(entries);
        tracing::info!(
            "uidgid: granted users {:?}, groups {:?} (new connections)",
            access.uids(),
            access.gids()
        );
        self.confdb.set_access(access.uids(), access.gids());
        self.ipc.set_access(access);
    }

    /// Every counter and gauge in the Prometheus text format.
    pub(in crate::runtime) fn metrics_text(&self) -> String {
        let mut m = Exposition::new();
        let e = self.node.stats();
        let d = &self.stats;
        let none: &[(&str, &str)] = &[];
        m.counter("packets_sent", "Totem packets handed to the network.", [(none, e.packets_sent)]);
        m.counter("packets_received", "Totem packets received.", [(none, e.packets_received)]);
        m.counter("datagrams_sent", "UDP datagrams sent, all links and peers.", [(none, d.datagrams_sent)]);
        m.counter("bytes_sent", "UDP payload bytes sent.", [(none, d.bytes_sent)]);
        m.counter("bytes_received", "UDP payload bytes received.", [(none, d.bytes_received)]);
        m.counter(
            "messages_delivered",
            "Application messages delivered in order.",
            [(none, e.messages_delivered)],
        );
        m.counter("token_rotations", "Tokens accepted by this node.", [(none, e.token_rotations)]);
        m.counter("retransmits", "Packets re-sent for a retransmit request.", [(none, e.retransmits)]);
        m.counter(
            "token_retransmits",
            "Tokens re-sent for lack of a sign of them.",
            [(none, e.token_retransmits)],
        );
        m.counter(
            "membership_changes",
            "Regular configurations (rings) installed.",
            [(none, e.configurations)],
        );
        let reasons: [(&str, u64); 8] = [
            ("checksum", e.dropped_checksum),
            ("malformed", e.dropped_malformed),
            ("stale", e.dropped_stale),
            ("auth", d.open_auth_failed),
            ("replay", d.open_replay),
            ("bad_version", d.open_bad_version),
            ("too_short", d.open_too_short),
            ("too_many_senders", d.open_too_many_senders),
        ];
        let dropped: Vec<[(&str, &str); 1]> = reasons.iter().map(|(r, _)| [("reason", *r)]).collect();
        m.counter(
            "packets_dropped",
            "Received packets dropped, by reason.",
            dropped.iter().zip(reasons).map(|(l, (_, n))| (&l[..], n)),
        );
        m.counter("send_errors", "Datagrams the kernel refused to send.", [(none, d.send_errors)]);
        m.counter("recv_errors", "Receive calls that failed.", [(none, d.recv_errors)]);
        m.counter("unroutable", "Transmits with no address or socket to send them.", [(none, d.unroutable)]);

        let ring = self.node.ring_id();
        m.gauge("node_id", "This node's id.", [(none, u64::from(self.node.node_id().0))]);
        m.gauge("ring_seq", "Seq of the ring installed last.", [(none, ring.seq)]);
        m.gauge(
            "ring_representative",
            "Representative of the ring installed last.",
            [(none, u64::from(ring.representative.0))],
        );
        m.gauge(
            "ring_members",
            "Members of the ring installed last.",
            [(none, self.node.members().len() as u64)],
        );
        let operational = u64::from(self.node.state() == SrpState::Operational);
        m.gauge("operational", "1 while the engine is in operational state.", [(none, operational)]);
        let members: Vec<String> = self.node.members().iter().map(|n| n.0.to_string()).collect();
        let member_labels: Vec<[(&str, &str); 1]> = members.iter().map(|n| [("node", n.as_str())]).collect();
        m.gauge(
            "member",
            "1 for each member of the current ring.",
            member_labels.iter().map(|l| (&l[..], 1)),
        );

        let links = self.links.status();
        let ids: Vec<(String, String)> =
            links.iter().map(|l| (l.node.0.to_string(), l.link.0.to_string())).collect();
        let labels: Vec<[(&str, &str); 2]> =
            ids.iter().map(|(n, l)| [("node", n.as_str()), ("link", l.as_str())]).collect();
        let per_link = |f: fn(&crate::links::LinkStatus) -> u64| {
            labels.iter().zip(&links).map(move |(l, s)| (&l[..], f(s)))
        };
        m.gauge("link_up", "1 while the link to the peer is up.", per_link(|s| u64::from(s.up)));
        m.gauge(
            "link_rtt_microseconds",
            "Round trip of the link's last heartbeat.",
            per_link(|s| s.rtt.map_or(0, |r| u64::try_from(r.as_micros()).unwrap_or(u64::MAX))),
        );
        m.counter("link_pings_sent", "Heartbeats sent on the link.", per_link(|s| s.pings_sent));
        m.counter(
            "link_pongs_received",
            "Heartbeat answers received on the link.",
            per_link(|s| s.pongs_received),
        );
        m.counter("link_data_sent", "Data frames sent on the link.", per_link(|s| s.data_sent));
        m.counter("link_data_received", "Data frames received on the link.", per_link(|s| s.data_received));
        m.counter("link_downs", "Times the link went down.", per_link(|s| s.down_count));

        m.gauge("ipc_clients", "Local API connections.", [(none, self.ipc.clients.len() as u64)]);
        let groups: Vec<(String, u64)> = self
            .node
            .cpg()
            .groups()
            .map(|(name, members)| (name.to_string(), members.len() as u64))
            .collect();
        m.gauge("cpg_groups", "Closed process groups with members.", [(none, groups.len() as u64)]);
        let group_labels: Vec<[(&str, &str); 1]> =
            groups.iter().map(|(g, _)| [("group", g.as_str())]).collect();
        m.gauge(
            "cpg_group_members",
            "Processes in each group, all nodes.",
            group_labels.iter().zip(&groups).map(|(l, (_, n))| (&l[..], *n)),
        );

        if let Some(q) = self.node.quorum() {
            let s = q.status();
            m.gauge("quorate", "1 while this partition is quorate.", [(none, u64::from(s.quorate))]);
            m.gauge("quorum_expected_votes", "Expected votes.", [(none, u64::from(s.expected_votes))]);
            m.gauge("quorum_total_votes", "Votes of the members.", [(none, u64::from(s.total_votes))]);
            m.gauge("quorum_votes_needed", "Votes needed for quorum.", [(none, u64::from(s.quorum))]);
            let nodes: Vec<(String, u64)> =
                s.members.iter().map(|n| (n.node_id.0.to_string(), u64::from(n.votes))).collect();
            let node_labels: Vec<[(&str, &str); 1]> =
                nodes.iter().map(|(n, _)| [("node", n.as_str())]).collect();
            m.gauge(
                "quorum_node_votes",
                "Votes of each member.",
                node_labels.iter().zip(&nodes).map(|(l, (_, v))| (&l[..], *v)),
            );
        }
        if let Some(f) = self.node.fencer() {
            m.gauge("fence_pending", "Nodes waiting to be fenced.", [(none, f.pending().len() as u64)]);
            m.gauge(
                "fencing_blocking",
                "1 while service is held for fencing.",
                [(none, u64::from(f.is_blocking()))],
            );
            m.gauge(
                "fence_history_entries",
                "Fences completed, as kept in the history.",
                [(none, f.history().count() as u64)],
            );
        }
        m.gauge(
            "uptime_seconds",
            "Seconds since the daemon started.",
            [(none, self.clock.elapsed().as_secs())],
        );
        m.finish()
    }
}
