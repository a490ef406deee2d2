//! CPG liveness, checked once faults stop and the ring is stable: every node has the same group
//! table; it holds exactly the connected clients that asked to join and not to leave; each of
//! them was last told a member list equal to the table; every message a connected client sent
//! was delivered back to it.
//!
//! corosync's CPG promises that after a configuration change settles, `cpg_membership_get`
//! agrees with the last `cpg_confchg_fn_t` each member received and that a member's own
//! messages come back to it (`cpg_mcast_joined(3)`: "messages are delivered to all members,
//! including the sender").

use std::collections::{BTreeMap, BTreeSet};

use ::cpg::{CpgEvent, GroupName, MemberId};
use totem::{Instant, NodeId};

use super::super::{Check, CheckerKind, Observation, Violation};
use crate::workload::MsgId;

/// A node's group table: every group with its members.
pub type GroupTable = BTreeMap<GroupName, BTreeSet<MemberId>>;

/// What every client asked for and was told, for the liveness phase.
#[derive(Debug, Default)]
pub struct CpgLiveness {
    /// Connected clients and the groups each asked to join and has not asked to leave.
    requested: BTreeMap<MemberId, BTreeSet<GroupName>>,
    /// The member list each client was last told for each group it is in.
    views: BTreeMap<(MemberId, GroupName), Vec<MemberId>>,
    /// Messages each connected client sent and has not got back.
    outstanding: BTreeMap<MemberId, BTreeSet<MsgId>>,
}

impl CpgLiveness {
    /// Own messages not yet delivered back, over every connected client.
    pub fn outstanding(&self) -> usize {
        self.outstanding.values().map(BTreeSet::len).sum()
    }

    /// Whatever is not settled, given each live node's table; empty when all is well.
    pub fn evaluate(&self, at: Instant, tables: &[(NodeId, GroupTable)]) -> Vec<Violation> {
        let mut out = Vec::new();
        let fail =
            |node: Option<NodeId>, detail: String| Violation::new(CheckerKind::CpgLiveness, at, node, detail);
        let Some((first_node, table)) = tables.first() else { return out };
        for (node, t) in &tables[1..] {
            if t != table {
                out.push(fail(
                    Some(*node),
                    format!("group table {} differs from n{first_node}'s {}", show(t), show(table)),
                ));
            }
        }
        let mut expected = GroupTable::new();
        for (&m, groups) in &self.requested {
            for g in groups {
                expected.entry(g.clone()).or_default().insert(m);
            }
        }
        if &expected != table {
            out.push(fail(
                Some(*first_node),
                format!("group table {} but connected clients asked for {}", show(table), show(&expected)),
            ));
        }
        for ((m, g), view) in &self.views {
            let want: Vec<MemberId> = table.get(g).map(|s| s.iter().copied().collect()).unwrap_or_default();
            if *view != want {
                out.push(fail(
                    Some(NodeId(m.node_id)),
                    format!("client {m} was last told {g} has {view:?}, the table says {want:?}"),
                ));
            }
        }
        for (m, groups) in &self.requested {
            for g in groups.iter().filter(|g| !self.views.contains_key(&(*m, (*g).clone()))) {
                out.push(fail(
                    Some(NodeId(m.node_id)),
                    format!("client {m} asked to join {g} but was never told it joined"),
                ));
            }
        }
        for (m, ids) in self.outstanding.iter().filter(|(_, s)| !s.is_empty()) {
            let first: Vec<String> = ids.iter().take(5).map(|i| i.to_string()).collect();
            out.push(fail(
                Some(NodeId(m.node_id)),
                format!(
                    "client {m} never got {} of its own messages back, e.g. {}",
                    ids.len(),
                    first.join(" ")
                ),
            ));
        }
        out
    }

    fn forget(&mut self, keep: impl Fn(&MemberId) -> bool) {
        self.requested.retain(|m, _| keep(m));
        self.views.retain(|(m, _), _| keep(m));
        self.outstanding.retain(|m, _| keep(m));
    }
}

fn show(t: &GroupTable) -> String {
    let parts: Vec<String> = t
        .iter()
        .map(|(g, m)| format!("{g}: [{}]", m.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" ")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

impl Check for CpgLiveness {
    fn observe(&mut self, _at: Instant, obs: &Observation<'_>, _out: &mut Vec<Violation>) {
        match *obs {
            Observation::CpgConnect { client } => {
                self.requested.insert(client.member(), BTreeSet::new());
            }
            Observation::CpgDisconnect { client } => {
                let me = client.member();
                self.forget(|m| *m != me);
            }
            Observation::Crash { node, .. } => self.forget(|m| m.node_id != node.0),
            Observation::CpgJoin { client, group } => {
                self.requested.entry(client.member()).or_default().insert(group.clone());
            }
            Observation::CpgLeave { client, group } => {
                if let Some(s) = self.requested.get_mut(&client.member()) {
                    s.remove(group);
                }
            }
            Observation::CpgSend { client, id, .. } => {
                self.outstanding.entry(client.member()).or_default().insert(id);
            }
            Observation::CpgEvent { client, event, id, .. } => {
                let me = client.member();
                match event {
                    CpgEvent::Deliver(m) if m.sender == me => {
                        if let (Some(id), Some(s)) = (id, self.outstanding.get_mut(&me)) {
                            s.remove(&id);
                        }
                    }
                    CpgEvent::Confchg(c) => {
                        let key = (me, c.group.clone());
                        if c.left.iter().any(|ch| ch.member == me) {
                            self.views.remove(&key);
                        } else {
                            self.views.insert(key, c.members.clone());
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use ::cpg::Reason;

    use super::super::testkit::*;
    use super::*;
    use crate::check::run_history;

    fn table(entries: &[(&str, &[MemberId])]) -> GroupTable {
        entries.iter().map(|(n, m)| (g(n), m.iter().copied().collect())).collect()
    }

    #[test]
    fn settled_groups_pass_and_each_kind_of_unsettled_fails() {
        let (x, y) = (cl(1, 1), cl(2, 2));
        let a = g("a");
        let joined = change("a", &[x, y], &[], &[(y, Reason::Join)]);
        let (m1, id1) = msg("a", x, 1);
        let ev = |c, e| Observation::CpgEvent { client: c, ring_id: ring(1), event: e, id: None };
        let mut h = vec![
            (0, Observation::CpgConnect { client: x }),
            (0, Observation::CpgConnect { client: y }),
            (0, Observation::CpgJoin { client: x, group: &a }),
            (0, Observation::CpgJoin { client: y, group: &a }),
            (1, ev(x, &joined)),
            (1, ev(y, &joined)),
            (2, Observation::CpgSend { client: x, group: &a, id: id1 }),
        ];
        let mut c = CpgLiveness::default();
        run_history(&mut c, &h);
        let good = table(&[("a", &[mem(x), mem(y)])]);
        let t = Instant::ZERO;
        // x's message never came back.
        assert_eq!(c.evaluate(t, &[(NodeId(1), good.clone()), (NodeId(2), good.clone())]).len(), 1);
        h.push((3, Observation::CpgEvent { client: x, ring_id: ring(1), event: &m1, id: Some(id1) }));
        let mut c = CpgLiveness::default();
        run_history(&mut c, &h);
        assert!(c.evaluate(t, &[(NodeId(1), good.clone()), (NodeId(2), good.clone())]).is_empty());
        // Nodes disagree; and the table is not what the clients asked for.
        let short = table(&[("a", &[mem(x)])]);
        let v = c.evaluate(t, &[(NodeId(1), good.clone()), (NodeId(2), short.clone())]);
        assert_eq!(v.len(), 1, "{v:?}");
        let v = c.evaluate(t, &[(NodeId(1), short.clone()), (NodeId(2), short)]);
        assert!(v.len() >= 2, "table and the views both differ: {v:?}");
        assert!(v.iter().all(|v| v.checker == CheckerKind::CpgLiveness));
    }
}
