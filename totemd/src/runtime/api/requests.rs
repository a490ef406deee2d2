//! A client's request applied to the node, and the node's client events in wire form.

use bytes::Bytes;
use cpg::service::{ClientId, ServiceError};
use cpg::{Change, CpgEvent, GroupName, MemberId};
use ipc::{
    CpgConfchg, CpgDeliver, ErrorCode, Event, EventKind, GroupInfo, Groups, LinkInfo, LocalNode, Member,
    Members, RequestBody, Response, ResponseResult, StatusReply, TotemConfchg,
};
use std::collections::BTreeMap;

use ipc::{QuorumMember, QuorumReply};
use totem::{Instant, NodeId, SrpState};

use crate::links::LinkStatus;
use crate::node::{Node, QuorumRequestError};

/// What a status request reports besides the node's own state.
pub(in crate::runtime) struct StatusSource<'a> {
    /// Every link to every peer.
    pub(in crate::runtime) links: &'a [LinkStatus],
    /// Bytes queued and not yet written: for a group send, the largest of the sender's and of
    /// the group's local members' (the send gets `TryAgain` when high).
    pub(in crate::runtime) backlog: usize,
    /// The backlog past which sends get `TryAgain`.
    pub(in crate::runtime) backlog_soft: usize,
    /// Node names from the nodelist, for the quorum member table.
    pub(in crate::runtime) names: &'a BTreeMap<NodeId, String>,
}

/// Applies one request of `client` to the node and says what to answer.
pub(in crate::runtime) fn handle_request(
    node: &mut Node,
    now: Instant,
    client: ClientId,
    id: u64,
    body: RequestBody,
    source: &StatusSource<'_>,
) -> Response {
    let result = match body {
        RequestBody::CpgJoin(r) => group(r.group).and_then(|g| service(node.cpg_join(now, client, &g))),
        RequestBody::CpgLeave(r) => group(r.group).and_then(|g| service(node.cpg_leave(now, client, &g))),
        RequestBody::CpgMcast(r) => {
            if source.backlog > source.backlog_soft {
                // Events pile up for the sender or a local member of the group: it must read
                // before more is sent.
                let unread = source.backlog;
                Err((
                    ErrorCode::TryAgain,
                    format!("a local member has {unread} bytes of events unread, try again"),
                ))
            } else {
                let guarantee = match ipc::Guarantee::try_from(r.guarantee) {
                    Ok(ipc::Guarantee::Safe) => cpg::Guarantee::Safe,
                    _ => cpg::Guarantee::Agreed,
                };
                group(r.group).and_then(|g| service(node.cpg_mcast(now, client, &g, guarantee, r.data)))
            }
        }
        RequestBody::CpgMembership(r) => group(r.group)
            .map(|g| ResponseResult::Members(Members { members: wire_members(&node.cpg_membership(&g)) })),
        RequestBody::CpgLocalGet(_) => Ok(ResponseResult::LocalNode(LocalNode { node_id: node.node_id().0 })),
        RequestBody::CpgIterate(r) => {
            let only = r.group.map(group).transpose();
            only.map(|only| {
                let groups = node
                    .cpg()
                    .groups()
                    .filter(|(name, _)| only.as_ref().is_none_or(|o| o == *name))
                    .map(|(name, members)| GroupInfo {
                        name: Bytes::copy_from_slice(name.as_bytes()),
                        members: members.iter().map(|&m| wire_member(m, 0)).collect(),
                    })
                    .collect();
                ResponseResult::Groups(Groups { groups })
            })
        }
        RequestBody::Status(_) => Ok(ResponseResult::Status(status(node, source.links))),
        RequestBody::QuorumStatus(_) => Ok(ResponseResult::Quorum(quorum_reply(node, source.names))),
        RequestBody::QuorumSetExpected(r) => quorum_request(node.quorum_set_expected(now, r.expected)),
        RequestBody::QuorumSetVotes(r) => {
            quorum_request(node.quorum_set_votes(now, NodeId(r.node_id), r.votes))
        }
        // The driver answers reloads itself (it owns the configuration); never routed here.
        RequestBody::Fence(r) => node
            .fence(now, NodeId(r.node_id))
            .map(|()| ResponseResult::Ok(ipc::OkReply {}))
            .map_err(|e| (ErrorCode::InvalidArgument, e)),
        RequestBody::FenceAck(r) => node
            .fence_ack(now, NodeId(r.node_id))
            .map(|()| ResponseResult::Ok(ipc::OkReply {}))
            .map_err(|e| (ErrorCode::InvalidArgument, e)),
        RequestBody::Reload(_)
        | RequestBody::QuorumTrack(_)
        | RequestBody::ConfdbGet(_)
        | RequestBody::ConfdbSet(_)
        | RequestBody::ConfdbDelete(_)
        | RequestBody::ConfdbIter(_)
        | RequestBody::ConfdbTrack(_)
        | RequestBody::ConfdbUntrack(_)
        | RequestBody::Metrics(_)
        | RequestBody::Shutdown(_) => Err((ErrorCode::NotSupported, "handled by the driver".into())),
    };
    match result {
        Ok(result) => Response::new(id, result),
        Err((code, message)) => Response::error(id, code, message),
    }
}

fn status(node: &Node, links: &[LinkStatus]) -> StatusReply {
    let ring = node.ring_id();
    StatusReply {
        node_id: node.node_id().0,
        ring_rep: ring.representative.0,
        ring_seq: ring.seq,
        members: node.members().iter().map(|n| n.0).collect(),
        state: match node.state() {
            SrpState::Operational => "operational",
            SrpState::Gather => "gather",
            SrpState::Commit => "commit",
            SrpState::Recovery => "recovery",
        }
        .to_string(),
        links: links
            .iter()
            .map(|l| LinkInfo { node_id: l.node.0, link: u32::from(l.link.0), up: l.up })
            .collect(),
    }
}

type Answer = Result<ResponseResult, (ErrorCode, String)>;

fn quorum_request(result: Result<(), QuorumRequestError>) -> Answer {
    result.map(|()| ResponseResult::Ok(ipc::OkReply {})).map_err(|e| {
        let code = match e {
            QuorumRequestError::NoProvider => ErrorCode::NotSupported,
            QuorumRequestError::Refused(quorum::RequestError::Busy) => ErrorCode::TryAgain,
            QuorumRequestError::Refused(_) => ErrorCode::InvalidArgument,
        };
        (code, e.to_string())
    })
}

/// The quorum state; without a provider, this node's ring and `quorate` (nothing blocks).
fn quorum_reply(node: &Node, names: &BTreeMap<NodeId, String>) -> QuorumReply {
    let ring = node.ring_id();
    let Some(q) = node.quorum() else {
        return QuorumReply {
            node_id: node.node_id().0,
            ring_rep: ring.representative.0,
            ring_seq: ring.seq,
            quorate: true,
            text: "Quorum provider: none (no quorum section with provider: corosync_votequorum)\n".into(),
            ..QuorumReply::default()
        };
    };
    let s = q.status();
    QuorumReply {
        provider: quorum::format::PROVIDER.into(),
        node_id: s.node_id.0,
        ring_rep: s.ring_id.map_or(0, |r| r.representative.0),
        ring_seq: s.ring_id.map_or(0, |r| r.seq),
        quorate: s.quorate,
        expected_votes: s.expected_votes,
        highest_expected: s.highest_expected,
        total_votes: s.total_votes,
        quorum: s.quorum,
        flags: quorum::format::flag_names(&s.flags).into_iter().map(String::from).collect(),
        members: s
            .members
            .iter()
            .map(|m| QuorumMember {
                node_id: m.node_id.0,
                votes: m.votes,
                name: names.get(&m.node_id).cloned().unwrap_or_else(|| m.node_id.to_string()),
            })
            .collect(),
        text: quorum::format::quorumtool_status(&s, names, None) + &fencing_text(node),
        fence_pending: node.fence_pending().iter().map(|n| n.0).collect(),
        fencing_held: node.fencing_held(),
    }
}

/// What `totemctl quorum` adds after corosync-quorumtool's text when fencing is configured.
fn fencing_text(node: &Node) -> String {
    let Some(f) = node.fencer() else { return String::new() };
    let pending = f.pending();
    let mut text = String::from("\nFencing\n-------\n");
    if pending.is_empty() {
        text.push_str("Pending:          none\n");
    } else {
        let list: Vec<String> = pending.iter().map(|n| n.to_string()).collect();
        text.push_str(&format!("Pending:          {}\n", list.join(" ")));
    }
    if f.is_unfencing() {
        text.push_str("Unfencing:        in progress\n");
    }
    let held = if f.is_blocking() { "held (fencing in progress)" } else { "running" };
    text.push_str(&format!("Service:          {held}\n"));
    text
}

/// The flags in force, named as corosync-quorumtool prints them.
fn group(name: Bytes) -> Result<GroupName, (ErrorCode, String)> {
    GroupName::new(name.to_vec()).map_err(|e| (ErrorCode::InvalidArgument, e.to_string()))
}

fn service(result: Result<(), ServiceError>) -> Answer {
    result.map(|()| ResponseResult::Ok(ipc::OkReply {})).map_err(|e| {
        let code = match e {
            ServiceError::UnknownClient => ErrorCode::Unknown,
            ServiceError::Exist => ErrorCode::Exist,
            ServiceError::NotExist => ErrorCode::NotExist,
            ServiceError::TryAgain => ErrorCode::TryAgain,
            ServiceError::FencingInProgress => ErrorCode::FencingInProgress,
            ServiceError::TooLarge { .. } => ErrorCode::TooLarge,
        };
        (code, e.to_string())
    })
}

fn wire_member(m: MemberId, reason: u32) -> Member {
    Member { node_id: m.node_id, pid: m.pid, reason }
}

fn wire_members(members: &[MemberId]) -> Vec<Member> {
    members.iter().map(|&m| wire_member(m, 0)).collect()
}

fn wire_changes(changes: &[Change]) -> Vec<Member> {
    changes.iter().map(|c| wire_member(c.member, c.reason.as_u32())).collect()
}

/// A quorum event as the wire carries it, with the node's fencing state.
pub(in crate::runtime) fn quorum_to_wire(
    quorate: bool,
    ring: totem::RingId,
    members: &[NodeId],
    node: &Node,
) -> Event {
    Event::new(EventKind::Quorum(ipc::QuorumNotify {
        quorate,
        ring_rep: ring.representative.0,
        ring_seq: ring.seq,
        members: members.iter().map(|n| n.0).collect(),
        fence_pending: node.fence_pending().iter().map(|n| n.0).collect(),
        fencing_held: node.fencing_held(),
    }))
}

/// A client event as the wire carries it.
pub(in crate::runtime) fn event_to_wire(event: CpgEvent) -> Event {
    Event::new(match event {
        CpgEvent::Deliver(m) => EventKind::CpgDeliver(CpgDeliver {
            group: Bytes::copy_from_slice(m.group.as_bytes()),
            node_id: m.sender.node_id,
            pid: m.sender.pid,
            guarantee: match m.guarantee {
                cpg::Guarantee::Agreed => ipc::Guarantee::Agreed,
                cpg::Guarantee::Safe => ipc::Guarantee::Safe,
            } as i32,
            data: m.data,
        }),
        CpgEvent::Confchg(c) => EventKind::CpgConfchg(CpgConfchg {
            group: Bytes::copy_from_slice(c.group.as_bytes()),
            members: wire_members(&c.members),
            left: wire_changes(&c.left),
            joined: wire_changes(&c.joined),
        }),
        CpgEvent::Totem(t) => EventKind::TotemConfchg(TotemConfchg {
            ring_rep: t.ring_representative,
            ring_seq: t.ring_seq,
            members: t.members,
        }),
    })
}
