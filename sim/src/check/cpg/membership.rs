//! Delivery only to members: a client gets a group's messages only after its own join
//! configuration change for that group (it is listed in `joined`) and before its own leave
//! change (listed in `left`); a client that went away is told nothing more; the totem
//! configurations a client is told name ever newer rings.
//!
//! This is the "closed" of closed process groups: corosync's CPG delivers a group's messages
//! to the processes that joined it, and a process learns it is in a group from the change
//! that lists it as joined (`cpg_overview(8)`).

use std::collections::{BTreeMap, BTreeSet};

use ::cpg::{CpgEvent, MemberId};
use totem::Instant;

use super::super::{Check, CheckerKind, Observation, Violation};
use super::Groups;

/// The delivery-only-to-members checker.
#[derive(Debug, Default)]
pub struct Membership {
    groups: Groups,
    /// (client, group) pairs between the client's own join and leave changes.
    members: BTreeSet<(MemberId, u32)>,
    /// Clients that disconnected.
    gone: BTreeSet<MemberId>,
    /// The last totem ring seq each client was told.
    last_ring: BTreeMap<MemberId, u64>,
}

impl Check for Membership {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::CpgDisconnect { client } => {
                self.gone.insert(client.member());
            }
            Observation::CpgEvent { client, event, id, .. } => {
                let me = client.member();
                let fail = |detail: String| {
                    Violation::new(CheckerKind::CpgMembership, at, Some(client.node), detail)
                };
                if self.gone.contains(&me) {
                    out.push(fail(format!("{client} was told {event:?} after it disconnected")));
                }
                match event {
                    CpgEvent::Confchg(c) => {
                        let g = self.groups.id(&c.group);
                        if c.joined.iter().any(|ch| ch.member == me) {
                            self.members.insert((me, g));
                        }
                        if c.left.iter().any(|ch| ch.member == me) {
                            self.members.remove(&(me, g));
                        }
                    }
                    CpgEvent::Deliver(m) => {
                        let g = self.groups.id(&m.group);
                        if !self.members.contains(&(me, g)) {
                            let what = id.map_or_else(|| "a message".to_string(), |i| i.to_string());
                            out.push(fail(format!(
                                "{client} got {what} of {} outside its own join and leave of the group",
                                m.group
                            )));
                        }
                    }
                    CpgEvent::Totem(t) => {
                        if let Some(prev) = self.last_ring.insert(me, t.ring_seq).filter(|&p| p >= t.ring_seq)
                        {
                            out.push(fail(format!(
                                "{client} was told ring seq {} after ring seq {prev}",
                                t.ring_seq
                            )));
                        }
                    }
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

    #[test]
    fn messages_between_join_and_leave_pass_and_outside_fail() {
        let (x, y) = (cl(1, 1), cl(2, 2));
        let events = [
            msg("a", x, 1).0, // before its join: fails
            change("a", &[x], &[], &[(x, Reason::Join)]),
            change("a", &[x, y], &[], &[(y, Reason::Join)]), // someone else joining does not matter
            msg("a", x, 2).0,                                // fine
            change("a", &[], &[(x, Reason::Leave)], &[]),
            msg("a", x, 3).0, // after its leave: fails
        ];
        let h: Vec<_> = events
            .iter()
            .map(|e| (0, Observation::CpgEvent { client: x, ring_id: ring(1), event: e, id: None }))
            .collect();
        let v = run_history(&mut Membership::default(), &h);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|v| v.checker == CheckerKind::CpgMembership));
    }

    #[test]
    fn a_totem_ring_that_does_not_grow_fails() {
        let x = cl(1, 1);
        let (t4, t8) = (totem(4), totem(8));
        let ev = |e| Observation::CpgEvent { client: x, ring_id: ring(1), event: e, id: None };
        let h = [(0, ev(&t4)), (1, ev(&t8)), (2, ev(&t8))];
        assert_eq!(run_history(&mut Membership::default(), &h).len(), 1);
    }

    #[test]
    fn an_event_after_disconnecting_fails() {
        let x = cl(1, 1);
        let t = totem(4);
        let h = [
            (0, Observation::CpgDisconnect { client: x }),
            (1, Observation::CpgEvent { client: x, ring_id: ring(1), event: &t, id: None }),
        ];
        assert_eq!(run_history(&mut Membership::default(), &h).len(), 1);
    }
}
