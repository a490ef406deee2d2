//! Group total order: any two clients' deliveries of one group, restricted to the messages
//! both got, are in the same order; no client gets a message twice; every delivered message
//! was sent to that group by the member it names as sender (no phantom).
//!
//! CPG delivers group messages in Totem's agreed order (corosync `cpg_mcast_joined`: "all
//! messages are delivered in the same order to all members"). Checked pairwise and
//! incrementally: for each pair of clients and group we keep the position, in each client's
//! stream, of the latest message both got. A message that becomes common (its second client
//! delivers it) is the latest of that client's stream, so it must also come after the previous
//! common one in the other client's stream.

use std::collections::BTreeMap;

use ::cpg::{CpgEvent, MemberId};
use totem::Instant;

use super::super::{Check, CheckerKind, ClientRef, Observation, Violation};
use super::Groups;
use crate::workload::MsgId;

/// The latest common message of two clients (the smaller member first) and its positions.
#[derive(Copy, Clone, Debug)]
struct Common {
    id: MsgId,
    pos_low: u64,
    pos_high: u64,
}

/// The group total-order checker.
#[derive(Debug, Default)]
pub struct GroupOrder {
    groups: Groups,
    /// Every message sent: its group and sender.
    sent: BTreeMap<MsgId, (u32, MemberId)>,
    /// Who delivered each message, at which position of their stream of its group.
    delivered_by: BTreeMap<MsgId, Vec<(MemberId, u64)>>,
    /// Messages of each group each client delivered so far.
    count: BTreeMap<(MemberId, u32), u64>,
    /// Per group and pair of clients (smaller first): their latest common message.
    common: BTreeMap<(u32, MemberId, MemberId), Common>,
}

impl GroupOrder {
    fn deliver(
        &mut self,
        at: Instant,
        client: ClientRef,
        event: &CpgEvent,
        id: Option<MsgId>,
        out: &mut Vec<Violation>,
    ) {
        let CpgEvent::Deliver(m) = event else { return };
        let me = client.member();
        let fail = |detail: String| Violation::new(CheckerKind::CpgOrder, at, Some(client.node), detail);
        let g = self.groups.id(&m.group);
        let Some(id) = id else {
            return out.push(fail(format!(
                "{client} got a {}-byte message in {} from {} that no client sent (no id)",
                m.data.len(),
                m.group,
                m.sender
            )));
        };
        match self.sent.get(&id) {
            None => return out.push(fail(format!("{client} got {id} in {}, which no client sent", m.group))),
            Some(&(sg, sender)) if sg != g || sender != m.sender => {
                return out.push(fail(format!(
                    "{client} got {id} in {} from {}, but it was sent by {sender} to another group or by another member",
                    m.group, m.sender
                )))
            }
            Some(_) => {}
        }
        let others = self.delivered_by.entry(id).or_default();
        if others.iter().any(|&(c, _)| c == me) {
            return out.push(fail(format!("{client} got {id} in {} twice", m.group)));
        }
        let count = self.count.entry((me, g)).or_default();
        let pos = *count;
        *count += 1;
        for &(other, other_pos) in others.iter() {
            let (key, mine_low) = if me < other { ((g, me, other), true) } else { ((g, other, me), false) };
            let (pos_low, pos_high) = if mine_low { (pos, other_pos) } else { (other_pos, pos) };
            let entry = self.common.entry(key).or_insert(Common { id, pos_low, pos_high });
            let other_prev = if mine_low { entry.pos_high } else { entry.pos_low };
            if other_prev > other_pos {
                out.push(fail(format!(
                    "{client} got {id} after {} in {}, but {other} got {id} before {}",
                    entry.id, m.group, entry.id
                )));
            }
            if other_prev <= other_pos {
                *entry = Common { id, pos_low, pos_high };
            }
        }
        others.push((me, pos));
    }
}

impl Check for GroupOrder {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::CpgSend { client, group, id } => {
                let g = self.groups.id(group);
                self.sent.insert(id, (g, client.member()));
            }
            Observation::CpgEvent { client, event, id, .. } => self.deliver(at, client, event, id, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::check::run_history;

    fn send(c: ClientRef, id: MsgId) -> Observation<'static> {
        static A: std::sync::OnceLock<::cpg::GroupName> = std::sync::OnceLock::new();
        Observation::CpgSend { client: c, group: A.get_or_init(|| g("a")), id }
    }

    fn got<'a>(c: ClientRef, e: &'a (CpgEvent, MsgId)) -> Observation<'a> {
        Observation::CpgEvent { client: c, ring_id: ring(1), event: &e.0, id: Some(e.1) }
    }

    #[test]
    fn one_order_with_gaps_passes() {
        let (x, y, z) = (cl(1, 1), cl(2, 2), cl(3, 3));
        let m: Vec<_> = (1..=4).map(|k| msg("a", x, k)).collect();
        let mut h: Vec<_> = m.iter().map(|e| (0, send(x, e.1))).collect();
        // y misses m2, z misses m1 and m4: the common parts still agree.
        for c in [x, y, z] {
            for (k, e) in m.iter().enumerate() {
                if (c == y && k == 1) || (c == z && (k == 0 || k == 3)) {
                    continue;
                }
                h.push((1, got(c, e)));
            }
        }
        assert!(run_history(&mut GroupOrder::default(), &h).is_empty());
    }

    #[test]
    fn two_clients_in_opposite_orders_fail() {
        let (x, y) = (cl(1, 1), cl(2, 2));
        let (a, b, c) = (msg("a", x, 1), msg("a", x, 2), msg("a", x, 3));
        let h = [
            (0, send(x, a.1)),
            (0, send(x, b.1)),
            (0, send(x, c.1)),
            (1, got(x, &a)),
            (1, got(x, &b)),
            (1, got(x, &c)),
            (2, got(y, &c)),
            (2, got(y, &a)),
        ];
        let v = run_history(&mut GroupOrder::default(), &h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].checker, CheckerKind::CpgOrder);
        assert!(v[0].detail.contains("after"), "{}", v[0]);
    }

    #[test]
    fn a_duplicate_or_a_phantom_fails() {
        let x = cl(1, 1);
        let (a, b) = (msg("a", x, 1), msg("a", x, 2));
        let h = [(0, send(x, a.1)), (1, got(x, &a)), (2, got(x, &a)), (3, got(x, &b))];
        let v = run_history(&mut GroupOrder::default(), &h);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].detail.contains("twice"));
        assert!(v[1].detail.contains("no client sent"));
    }

    #[test]
    fn a_message_delivered_in_another_group_is_a_phantom() {
        let x = cl(1, 1);
        let a = msg("b", x, 1);
        let v = run_history(&mut GroupOrder::default(), &[(0, send(x, a.1)), (1, got(x, &a))]);
        assert_eq!(v.len(), 1, "{v:?}");
    }
}
