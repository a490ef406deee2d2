//! From the wire's events to the CPG nouns of [`crate::types`].

use ipc::{Event, EventKind, Member};

use crate::types::{
    Change, Confchg, CpgEvent, GroupName, Guarantee, MemberId, Message, Reason, TotemConfchg,
};

/// Why an event from the daemon could not be read (it is skipped, with a warning).
pub(crate) type Invalid = &'static str;

/// The CPG event for a wire event; `Ok(None)` for an event kind this build does not know.
pub(crate) fn event(e: Event) -> Result<Option<CpgEvent>, Invalid> {
    Ok(Some(match e.kind {
        Some(EventKind::CpgDeliver(d)) => CpgEvent::Deliver(Message {
            group: group(&d.group)?,
            sender: MemberId { node_id: d.node_id, pid: d.pid },
            guarantee: guarantee(d.guarantee),
            data: d.data,
        }),
        Some(EventKind::CpgConfchg(c)) => CpgEvent::Confchg(Confchg {
            group: group(&c.group)?,
            members: c.members.iter().map(member).collect(),
            left: changes(&c.left)?,
            joined: changes(&c.joined)?,
        }),
        Some(EventKind::TotemConfchg(t)) => CpgEvent::Totem(TotemConfchg {
            ring_representative: t.ring_rep,
            ring_seq: t.ring_seq,
            members: t.members,
        }),
        // Not CPG's (quorum, confdb), or a kind this build does not know.
        _ => return Ok(None),
    }))
}

pub(crate) fn group(name: &[u8]) -> Result<GroupName, Invalid> {
    GroupName::new(name).map_err(|_| "a group name that is empty or too long")
}

pub(crate) fn member(m: &Member) -> MemberId {
    MemberId { node_id: m.node_id, pid: m.pid }
}

fn changes(members: &[Member]) -> Result<Vec<Change>, Invalid> {
    members
        .iter()
        .map(|m| match Reason::from_u32(m.reason) {
            Some(reason) => Ok(Change { member: member(m), reason }),
            None => Err("a member change without a known reason"),
        })
        .collect()
}

/// Unknown numbers read as agreed: the message is delivered, in total order.
fn guarantee(n: i32) -> Guarantee {
    match ipc::Guarantee::try_from(n) {
        Ok(ipc::Guarantee::Safe) => Guarantee::Safe,
        _ => Guarantee::Agreed,
    }
}

pub(crate) fn wire_guarantee(g: Guarantee) -> ipc::Guarantee {
    match g {
        Guarantee::Agreed => ipc::Guarantee::Agreed,
        Guarantee::Safe => ipc::Guarantee::Safe,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ipc::{CpgConfchg, CpgDeliver};

    use super::*;

    fn m(node_id: u32, pid: u32, reason: u32) -> Member {
        Member { node_id, pid, reason }
    }

    #[test]
    fn confchg_keeps_members_and_reasons() {
        let e = Event::new(EventKind::CpgConfchg(CpgConfchg {
            group: Bytes::from_static(b"g"),
            members: vec![m(1, 10, 0), m(2, 20, 0)],
            left: vec![m(3, 30, 3)],
            joined: vec![m(2, 20, 1)],
        }));
        let expected = CpgEvent::Confchg(Confchg {
            group: GroupName::try_from("g").unwrap(),
            members: vec![MemberId { node_id: 1, pid: 10 }, MemberId { node_id: 2, pid: 20 }],
            left: vec![Change { member: MemberId { node_id: 3, pid: 30 }, reason: Reason::NodeDown }],
            joined: vec![Change { member: MemberId { node_id: 2, pid: 20 }, reason: Reason::Join }],
        });
        assert_eq!(event(e), Ok(Some(expected)));
    }

    #[test]
    fn unknown_reason_or_empty_group_is_invalid() {
        let bad_reason = Event::new(EventKind::CpgConfchg(CpgConfchg {
            group: Bytes::from_static(b"g"),
            left: vec![m(3, 30, 0)],
            ..Default::default()
        }));
        assert!(event(bad_reason).is_err());
        let no_group = Event::new(EventKind::CpgDeliver(CpgDeliver::default()));
        assert!(event(no_group).is_err());
    }

    #[test]
    fn unknown_kind_is_skipped() {
        assert_eq!(event(Event { kind: None }), Ok(None));
    }
}
