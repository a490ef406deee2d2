//! Closed process group checkers: they watch every simulated client's ordered event stream
//! (`Deliver`, `Confchg`, `Totem`) and the requests the service accepted.
//!
//! | module | rule |
//! | --- | --- |
//! | [`order`] | any two members deliver a group's common messages in one order; no duplicate; no phantom |
//! | [`membership`] | a member gets a group's messages only between its own join and leave changes |
//! | [`synchrony`] | members that see the same change and then the same next change got the same messages in between |
//! | [`confchg`] | each change's member list is the previous one minus `left` plus `joined` |
//! | [`liveness`] | once faults stop: every node has the same group table, every member's last change lists it, every member got its own messages |
//!
//! These are the guarantees of corosync's CPG (virtual synchrony for groups, as in the
//! `cpg_overview(8)` man page): the service applies joins, leaves and messages in Totem's
//! agreed order and turns configuration changes into group changes.

pub mod confchg;
pub mod liveness;
pub mod membership;
pub mod order;
pub mod synchrony;

use std::collections::BTreeMap;

use ::cpg::GroupName;
use totem::Instant;

use super::{Check, Observation, Violation};

/// Small numbers for group names, so per-message state holds no name.
#[derive(Debug, Default)]
pub(crate) struct Groups(BTreeMap<GroupName, u32>);

impl Groups {
    /// The number of `group`, assigned on first sight.
    pub fn id(&mut self, group: &GroupName) -> u32 {
        if let Some(&i) = self.0.get(group) {
            return i;
        }
        let i = self.0.len() as u32;
        self.0.insert(group.clone(), i);
        i
    }
}

/// Every CPG checker, fed in one call.
#[derive(Debug, Default)]
pub struct CpgCheckers {
    /// Per-group total order, duplicates and phantoms.
    pub order: order::GroupOrder,
    /// Delivery only to members.
    pub membership: membership::Membership,
    /// Group virtual synchrony.
    pub synchrony: synchrony::Synchrony,
    /// Configuration change consistency.
    pub confchg: confchg::ConfchgConsistency,
    /// What every client asked for and was told, for the liveness phase.
    pub liveness: liveness::CpgLiveness,
}

impl Check for CpgCheckers {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        self.order.observe(at, obs, out);
        self.membership.observe(at, obs, out);
        self.synchrony.observe(at, obs, out);
        self.confchg.observe(at, obs, out);
        self.liveness.observe(at, obs, out);
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Builders for synthetic client histories.
    use ::cpg::service::ClientId;
    use ::cpg::{Change, Confchg, CpgEvent, GroupName, Guarantee, MemberId, Message, Reason, TotemConfchg};
    use totem::{NodeId, RingId};

    use crate::check::ClientRef;
    use crate::workload::{make_payload, MsgId};

    pub fn g(name: &str) -> GroupName {
        GroupName::try_from(name).unwrap()
    }

    /// Client `pid` on node `node` (connection id = pid).
    pub fn cl(node: u32, pid: u32) -> ClientRef {
        ClientRef { node: NodeId(node), client: ClientId(u64::from(pid)), pid }
    }

    pub fn mem(c: ClientRef) -> MemberId {
        c.member()
    }

    pub fn ring(seq: u64) -> RingId {
        RingId { seq, representative: NodeId(1) }
    }

    /// A group message from `sender` with id `(sender node, counter)`.
    pub fn msg(group: &str, sender: ClientRef, counter: u64) -> (CpgEvent, MsgId) {
        let id = MsgId { sender: sender.node, counter };
        let m = Message {
            group: g(group),
            sender: sender.member(),
            guarantee: Guarantee::Agreed,
            data: make_payload(id, 4),
        };
        (CpgEvent::Deliver(m), id)
    }

    pub fn change(
        group: &str,
        members: &[ClientRef],
        left: &[(ClientRef, Reason)],
        joined: &[(ClientRef, Reason)],
    ) -> CpgEvent {
        let ch = |v: &[(ClientRef, Reason)]| {
            v.iter().map(|&(c, reason)| Change { member: c.member(), reason }).collect()
        };
        let mut members: Vec<MemberId> = members.iter().map(|c| c.member()).collect();
        members.sort();
        CpgEvent::Confchg(Confchg { group: g(group), members, left: ch(left), joined: ch(joined) })
    }

    pub fn totem(seq: u64) -> CpgEvent {
        CpgEvent::Totem(TotemConfchg { ring_representative: 1, ring_seq: seq, members: vec![1] })
    }
}
