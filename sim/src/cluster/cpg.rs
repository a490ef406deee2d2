//! CPG clients on the simulated nodes: the verbs tests use, the random client activity, and
//! the routing of every client event to the checkers.

use ::cpg::service::ClientId;
use ::cpg::{CpgEvent, GroupName, Guarantee};
use totem::NodeId;

use super::{Cluster, Ev, Mutation, MutationKind, SimError};
use crate::check::cpg::liveness::GroupTable;
use crate::check::{CheckerKind, ClientRef, Observation, Violation};
use crate::clients::{next_action, CpgAction};
use crate::node::Liveness;
use crate::trace::TraceKind;
use crate::workload::{make_payload, parse_payload, payload_hash, MsgId};

/// Trace words naming a request.
const REQ_CONNECT: u64 = 1;
const REQ_DISCONNECT: u64 = 2;
const REQ_JOIN: u64 = 3;
const REQ_LEAVE: u64 = 4;
const REQ_SEND: u64 = 5;

impl Cluster {
    // ---- verbs ----

    /// Sets the random CPG client activity (operations per node per second; 0 stops it).
    pub fn set_cpg_load(&mut self, ops_per_node: f64) {
        self.cpg_rate = ops_per_node.max(0.0);
        for i in 0..self.nodes.len() {
            if let Some(k) = self.nodes[i].cpg_key.take() {
                self.queue.remove(&k);
            }
            self.schedule_cpg(i);
        }
    }

    /// The name of the `k`-th group the random clients use.
    pub fn cpg_group(&self, k: usize) -> GroupName {
        crate::clients::CpgLoad::group_name(k)
    }

    /// A new client process connects to `node`; its pid is new on that node.
    pub fn cpg_connect(&mut self, node: NodeId) -> Result<ClientId, SimError> {
        let i = self.ready(node)?;
        let (client, pid) = self.nodes[i].clients.connect();
        if let Some(srp) = self.nodes[i].srp.as_mut() {
            srp.client_connect(client, pid);
        }
        let who = ClientRef { node, client, pid };
        self.trace_request(who, REQ_CONNECT, 0, || "connect".into());
        self.observe(&Observation::CpgConnect { client: who });
        self.after_input(i);
        Ok(client)
    }

    /// The client's process exits: it leaves its groups with reason `procdown`.
    pub fn cpg_disconnect(&mut self, node: NodeId, client: ClientId) -> Result<(), SimError> {
        let (i, who) = self.client(node, client)?;
        let local = self.local(i);
        if let Some(srp) = self.nodes[i].srp.as_mut() {
            srp.client_disconnect(local, client);
        }
        if let Some(c) = self.nodes[i].clients.clients.get_mut(&client) {
            c.connected = false;
        }
        self.trace_request(who, REQ_DISCONNECT, 0, || "disconnect".into());
        self.observe(&Observation::CpgDisconnect { client: who });
        self.after_input(i);
        Ok(())
    }

    /// The client joins `group`.
    pub fn cpg_join(&mut self, node: NodeId, client: ClientId, group: &GroupName) -> Result<(), SimError> {
        let (i, who) = self.client(node, client)?;
        let local = self.local(i);
        let result = self.nodes[i].srp.as_mut().map_or(Ok(()), |s| s.cpg_join(local, client, group));
        if result.is_ok() {
            self.trace_request(who, REQ_JOIN, group_word(group), || format!("join {group}"));
            self.observe(&Observation::CpgJoin { client: who, group });
            let k = self.groups.iter().position(|g| g == group);
            if let (Some(k), Some(c)) = (k, self.nodes[i].clients.clients.get_mut(&client)) {
                c.joined.insert(k);
            }
        }
        self.after_input(i);
        Ok(result?)
    }

    /// The client leaves `group`.
    pub fn cpg_leave(&mut self, node: NodeId, client: ClientId, group: &GroupName) -> Result<(), SimError> {
        let (i, who) = self.client(node, client)?;
        let local = self.local(i);
        let result = self.nodes[i].srp.as_mut().map_or(Ok(()), |s| s.cpg_leave(local, client, group));
        if result.is_ok() {
            self.trace_request(who, REQ_LEAVE, group_word(group), || format!("leave {group}"));
            self.observe(&Observation::CpgLeave { client: who, group });
            let k = self.groups.iter().position(|g| g == group);
            if let (Some(k), Some(c)) = (k, self.nodes[i].clients.clients.get_mut(&client)) {
                c.joined.remove(&k);
                c.left.insert(k);
            }
        }
        self.after_input(i);
        Ok(result?)
    }

    /// The client sends a message of `padding` extra bytes to `group`; its id is returned.
    pub fn cpg_mcast(
        &mut self,
        node: NodeId,
        client: ClientId,
        group: &GroupName,
        padding: usize,
        guarantee: Guarantee,
    ) -> Result<MsgId, SimError> {
        let (i, who) = self.client(node, client)?;
        let id = MsgId { sender: node, counter: self.nodes[i].next_counter };
        self.nodes[i].next_counter += 1;
        let data = make_payload(id, padding);
        let (len, hash) = (data.len() as u64, payload_hash(&data));
        let local = self.local(i);
        let result =
            self.nodes[i].srp.as_mut().map_or(Ok(()), |s| s.cpg_mcast(local, client, group, guarantee, data));
        if result.is_ok() {
            self.trace_request(who, REQ_SEND, id.counter ^ len << 40 ^ hash, || {
                format!("send {id} to {group} {guarantee:?} ({len} B)")
            });
            self.stats.cpg_sent += 1;
            self.observe(&Observation::CpgSend { client: who, group, id });
        }
        self.after_input(i);
        result?;
        Ok(id)
    }

    // ---- inspection ----

    /// Everything `client` of `node` was told, in order (kept only with
    /// [`crate::CpgLoad::record_events`]).
    pub fn cpg_events(&self, node: NodeId, client: ClientId) -> &[CpgEvent] {
        self.cpg_log.get(&(node, client)).map_or(&[], Vec::as_slice)
    }

    /// Connected clients of `node`, in id order.
    pub fn cpg_clients(&self, node: NodeId) -> Vec<ClientId> {
        self.node(node).clients.connected().map(|(c, _)| c).collect()
    }

    /// The group table of every live node.
    pub fn cpg_tables(&self) -> Vec<(NodeId, GroupTable)> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let srp = n.srp.as_ref()?;
                Some((n.id, srp.cpg().groups().map(|(g, m)| (g.clone(), m.clone())).collect()))
            })
            .collect()
    }

    /// Whether the groups have settled: every node synced, the same table everywhere, every
    /// member told it, every client's own messages back (see [`crate::check::cpg::liveness`]).
    pub fn cpg_settled(&self) -> bool {
        if self.checkers.cpg.liveness.outstanding() > 0
            || self.nodes.iter().filter_map(|n| n.srp.as_ref()).any(|s| s.cpg().syncing())
        {
            return false;
        }
        self.checkers.cpg.liveness.evaluate(self.now(), &self.cpg_tables()).is_empty()
    }

    // ---- internals ----

    fn ready(&mut self, node: NodeId) -> Result<usize, SimError> {
        let i = self.index(node);
        self.current = Some(node);
        match self.nodes[i].liveness {
            Liveness::Down => Err(SimError::NodeDown(node)),
            Liveness::Paused { .. } => Err(SimError::NodePaused(node)),
            Liveness::Up => Ok(i),
        }
    }

    fn client(&mut self, node: NodeId, client: ClientId) -> Result<(usize, ClientRef), SimError> {
        let i = self.ready(node)?;
        match self.nodes[i].clients.clients.get(&client) {
            Some(c) if c.connected => Ok((i, ClientRef { node, client, pid: c.pid })),
            _ => Err(SimError::UnknownClient(node, client)),
        }
    }

    fn trace_request(&mut self, who: ClientRef, what: u64, word: u64, line: impl FnOnce() -> String) {
        self.trace.record(
            self.now,
            who.node.0,
            TraceKind::CpgRequest,
            &[who.client.0, u64::from(who.pid), what, word],
            || format!("cpg client {}/{} (c{}): {}", who.node, who.pid, who.client.0, line()),
        );
    }

    pub(super) fn schedule_cpg(&mut self, i: usize) {
        if self.cpg_rate <= 0.0 {
            return;
        }
        let gap = self.rng.exponential(1e9 / self.cpg_rate, 20.0) as u64;
        let key = self.push(self.now.saturating_add(gap.max(1)), Ev::Cpg(i));
        self.nodes[i].cpg_key = Some(key);
    }

    /// One random client operation on node index `i`; refusals are fine (a full queue says
    /// try again) and change nothing.
    pub(super) fn cpg_tick(&mut self, i: usize) {
        let Some(action) = next_action(&self.cfg.cpg, &self.nodes[i].clients, &mut self.rng) else { return };
        let node = self.nodes[i].id;
        match action {
            CpgAction::Connect => {
                let _ = self.cpg_connect(node);
            }
            CpgAction::Disconnect(c) => {
                let _ = self.cpg_disconnect(node, c);
            }
            CpgAction::Join(c, g) => {
                let group = self.groups[g].clone();
                let _ = self.cpg_join(node, c, &group);
            }
            CpgAction::Leave(c, g) => {
                let group = self.groups[g].clone();
                let _ = self.cpg_leave(node, c, &group);
            }
            CpgAction::Mcast { client, group, padding, guarantee } => {
                let group = self.groups[group].clone();
                let _ = self.cpg_mcast(node, client, &group, padding, guarantee);
            }
        }
    }

    /// Hands every event the node has for its clients to the checkers (and the log).
    pub(super) fn drain_client_events(&mut self, i: usize) {
        loop {
            let Some(srp) = self.nodes[i].srp.as_mut() else { return };
            let Some((client, event)) = srp.poll_client_event() else { return };
            match self.cfg.mutation {
                Some(m) if m.node == self.nodes[i].id => self.mutate_client_event(i, m, client, event),
                _ => self.client_event(i, client, event),
            }
        }
    }

    /// Distorts one group message to a client of node `i` as a buggy service would.
    fn mutate_client_event(&mut self, i: usize, m: Mutation, client: ClientId, event: CpgEvent) {
        if !matches!(event, CpgEvent::Deliver(_)) {
            // A swap stays within one view: a change before the client's next message releases
            // the held one, and the client's next message is held instead.
            if let Some((c, held)) = self.nodes[i].cpg_held.take_if(|(c, _)| *c == client) {
                self.client_event(i, c, held);
                self.nodes[i].cpg_deliveries = m.nth - 1;
            }
            return self.client_event(i, client, event);
        }
        self.nodes[i].cpg_deliveries += 1;
        if self.nodes[i].cpg_deliveries == m.nth {
            match m.kind {
                MutationKind::CpgDropDelivery => {}
                MutationKind::CpgDuplicateDelivery => {
                    self.client_event(i, client, event.clone());
                    self.client_event(i, client, event);
                }
                MutationKind::CpgSwapDeliveries => self.nodes[i].cpg_held = Some((client, event)),
                _ => self.client_event(i, client, event),
            }
            return;
        }
        let held = self.nodes[i].cpg_held.take_if(|(c, _)| *c == client);
        self.client_event(i, client, event);
        if let Some((c, e)) = held {
            self.client_event(i, c, e);
        }
    }

    /// Hands one client event to the checkers (and the log).
    fn client_event(&mut self, i: usize, client: ClientId, event: CpgEvent) {
        let node = self.nodes[i].id;
        let Some(srp) = self.nodes[i].srp.as_ref() else { return };
        let ring_id = srp.ring_id();
        let Some(pid) = self.nodes[i].clients.pid(client) else {
            let v = Violation::new(
                CheckerKind::CpgMembership,
                self.now(),
                Some(node),
                format!("an event for client c{} that never connected: {event:?}", client.0),
            );
            self.report(vec![v]);
            return;
        };
        let who = ClientRef { node, client, pid };
        let id = match &event {
            CpgEvent::Deliver(m) => {
                self.stats.cpg_deliveries += 1;
                parse_payload(&m.data)
            }
            CpgEvent::Confchg(_) => {
                self.stats.cpg_confchgs += 1;
                None
            }
            CpgEvent::Totem(_) => None,
        };
        self.trace_event(who, &event, id);
        self.observe(&Observation::CpgEvent { client: who, ring_id, event: &event, id });
        if self.cfg.cpg.record_events {
            self.cpg_log.entry((node, client)).or_default().push(event);
        }
    }

    fn trace_event(&mut self, who: ClientRef, event: &CpgEvent, id: Option<MsgId>) {
        let mut words = [who.client.0, 0, 0, 0];
        match event {
            CpgEvent::Deliver(m) => {
                words[1] = 1;
                words[2] = id.map_or(0, |id| u64::from(id.sender.0) << 40 ^ id.counter);
                words[3] = group_word(&m.group);
            }
            CpgEvent::Confchg(c) => {
                words[1] = 2;
                words[2] = c.members.iter().fold(c.left.len() as u64, |h, m| {
                    (h ^ (u64::from(m.node_id) << 32 | u64::from(m.pid))).wrapping_mul(0x100_0000_01b3)
                });
                words[3] = group_word(&c.group) ^ (c.joined.len() as u64) << 32;
            }
            CpgEvent::Totem(t) => {
                words[1] = 3;
                words[2] = t.ring_seq;
                words[3] = u64::from(t.ring_representative);
            }
        }
        self.trace.record(self.now, who.node.0, TraceKind::CpgEvent, &words, || {
            let what = match event {
                CpgEvent::Deliver(m) => format!(
                    "deliver {} in {} from {} {:?} ({} B)",
                    id.map_or_else(|| "<no id>".to_string(), |i| i.to_string()),
                    m.group,
                    m.sender,
                    m.guarantee,
                    m.data.len()
                ),
                CpgEvent::Confchg(c) => {
                    let l = |v: &[::cpg::Change]| {
                        v.iter().map(|c| format!("{} {}", c.member, c.reason)).collect::<Vec<_>>().join(", ")
                    };
                    let members: Vec<String> = c.members.iter().map(|m| m.to_string()).collect();
                    format!(
                        "confchg {} members [{}] left [{}] joined [{}]",
                        c.group,
                        members.join(" "),
                        l(&c.left),
                        l(&c.joined)
                    )
                }
                CpgEvent::Totem(t) => {
                    format!("totem ring {}.{} members {:?}", t.ring_representative, t.ring_seq, t.members)
                }
            };
            format!("cpg client {}/{} (c{}): {what}", who.node, who.pid, who.client.0)
        });
    }

    /// The CPG part of the liveness phase (after the ring is stable and the raw messages
    /// drained): wait for the groups to settle, then report whatever did not.
    pub(super) fn check_cpg_liveness(&mut self, rounds_max: u32) {
        let bound = self.cfg.liveness_bound();
        for _ in 0..rounds_max {
            let before = self.checkers.cpg.liveness.outstanding();
            let steps = self.stats.steps;
            if self.run_until_pred(bound, Cluster::cpg_settled) || self.halted {
                break;
            }
            if self.checkers.cpg.liveness.outstanding() >= before || self.stats.steps == steps {
                break;
            }
        }
        if self.halted {
            return;
        }
        let at = self.now();
        let out = self.checkers.cpg.liveness.evaluate(at, &self.cpg_tables());
        self.report(out);
    }
}

/// A word for the trace hash naming a group.
fn group_word(g: &GroupName) -> u64 {
    payload_hash(g.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpgLoad, SimConfig};
    use std::time::Duration;

    #[test]
    fn a_client_joins_sends_and_gets_its_message_back() {
        let cfg =
            SimConfig { cpg: CpgLoad { record_events: true, ..CpgLoad::default() }, ..SimConfig::default() };
        let mut c = Cluster::new(5, 2, cfg).unwrap();
        assert!(c.run_until_stable(Duration::from_secs(20)));
        let a = c.cpg_group(0);
        let x = c.cpg_connect(NodeId(1)).unwrap();
        c.cpg_join(NodeId(1), x, &a).unwrap();
        let id = c.cpg_mcast(NodeId(1), x, &a, 3000, Guarantee::Safe).unwrap();
        c.run_for(Duration::from_secs(2));
        let got: Vec<_> = c
            .cpg_events(NodeId(1), x)
            .iter()
            .filter_map(|e| match e {
                CpgEvent::Deliver(m) => parse_payload(&m.data),
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![id]);
        assert!(c.cpg_settled());
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }
}
