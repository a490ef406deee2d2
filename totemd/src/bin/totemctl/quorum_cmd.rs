//! `totemctl quorum ...`: the quorum state as `corosync-quorumtool -s` prints it, and the
//! run-time changes of `corosync-quorumtool -e` / `-v`.

use std::process::ExitCode;

use clap::Subcommand;
use ipc::{QuorumReply, QuorumSetExpected, QuorumSetVotes, QuorumStatusRequest, RequestBody, ResponseResult};
use serde_json::{json, Value};

use crate::cpg_cmd::SocketArg;

#[derive(Debug, Subcommand)]
pub enum QuorumCommand {
    /// Set the cluster's expected votes (corosync-quorumtool -e); refused if it would make the
    /// cluster lose quorum.
    Expected {
        /// The new expected votes.
        votes: u32,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Set a node's votes (corosync-quorumtool -v NODE -n VOTES).
    Votes {
        /// The node id.
        node: u32,
        /// Its new votes.
        votes: u32,
        #[command(flatten)]
        socket: SocketArg,
    },
}

/// `totemctl quorum [--json]` with no subcommand prints the state; errors are one line on
/// stderr and exit status 1.
pub fn run(command: Option<QuorumCommand>, json_output: bool, socket: &SocketArg) -> ExitCode {
    let (name, socket, body) = match command {
        None => ("quorum", socket, RequestBody::QuorumStatus(QuorumStatusRequest {})),
        Some(QuorumCommand::Expected { votes, ref socket }) => {
            ("quorum expected", socket, RequestBody::QuorumSetExpected(QuorumSetExpected { expected: votes }))
        }
        Some(QuorumCommand::Votes { node, votes, ref socket }) => {
            ("quorum votes", socket, RequestBody::QuorumSetVotes(QuorumSetVotes { node_id: node, votes }))
        }
    };
    let path = socket.path();
    let result = crate::daemon_cmd::request_blocking(&path, body);
    match result {
        Ok(ResponseResult::Quorum(q)) if json_output => println!("{}", quorum_json(&q)),
        Ok(ResponseResult::Quorum(q)) => print!("{}", q.text),
        Ok(ResponseResult::Ok(_)) if json_output => println!("{}", json!({"ok": true})),
        Ok(ResponseResult::Ok(_)) => println!("done"),
        Ok(other) => {
            eprintln!("totemctl: {name}: unexpected answer from totemd: {other:?}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("totemctl: {name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// What `totemctl fence` does.
#[derive(Debug, Subcommand)]
pub enum FenceCommand {
    /// Confirm by hand that NODE is down when no fence device works (fence_ack_manual): its
    /// pending fence completes and service resumes. Only after checking the node really is off.
    Ack {
        /// The node id.
        node: u32,
        #[command(flatten)]
        socket: SocketArg,
    },
}

/// `totemctl fence NODE` (fence_node) or `totemctl fence ack NODE`; `--json` prints
/// {"requested":"fence"|"fence ack","node_id":N}.
pub fn fence(
    command: Option<FenceCommand>,
    node: Option<u32>,
    json_output: bool,
    socket: &SocketArg,
) -> ExitCode {
    let pair = (command, node);
    let (name, socket, body) = match &pair {
        (Some(FenceCommand::Ack { node, socket }), _) => {
            ("fence ack", socket, RequestBody::FenceAck(ipc::FenceNode { node_id: *node }))
        }
        (None, Some(node)) => ("fence", socket, RequestBody::Fence(ipc::FenceNode { node_id: *node })),
        (None, None) => {
            eprintln!("totemctl: fence: name a node id (totemctl fence NODE) or use `fence ack NODE`");
            return ExitCode::FAILURE;
        }
    };
    let path = socket.path();
    let result = crate::daemon_cmd::request_blocking(&path, body);
    match result {
        Ok(_) => {
            let node_id = match &pair {
                (Some(FenceCommand::Ack { node, .. }), _) | (None, Some(node)) => *node,
                (None, None) => 0,
            };
            if json_output {
                println!("{}", json!({"requested": name, "node_id": node_id}));
            } else {
                println!("{name}: requested");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("totemctl: {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One JSON object with the fields of `corosync-quorumtool -s`.
pub fn quorum_json(q: &QuorumReply) -> Value {
    let members: Vec<Value> =
        q.members.iter().map(|m| json!({"node_id": m.node_id, "votes": m.votes, "name": m.name})).collect();
    json!({
        "provider": if q.provider.is_empty() { Value::Null } else { json!(q.provider) },
        "node_id": q.node_id,
        "ring_id": format!("{}.{}", q.ring_rep, q.ring_seq),
        "quorate": q.quorate,
        "expected_votes": q.expected_votes,
        "highest_expected": q.highest_expected,
        "total_votes": q.total_votes,
        "quorum": q.quorum,
        "flags": q.flags,
        "members": members,
        "fence_pending": q.fence_pending,
        "fencing_held": q.fencing_held,
    })
}

#[cfg(test)]
mod tests {
    use ipc::QuorumMember;

    use super::*;

    #[test]
    fn json_names_every_quorumtool_field() {
        let q = QuorumReply {
            provider: "corosync_votequorum".into(),
            node_id: 1,
            ring_rep: 1,
            ring_seq: 8,
            quorate: true,
            expected_votes: 3,
            highest_expected: 3,
            total_votes: 2,
            quorum: 2,
            flags: vec!["Quorate".into()],
            members: vec![QuorumMember { node_id: 1, votes: 1, name: "a".into() }],
            text: String::new(),
            fence_pending: vec![2],
            fencing_held: true,
        };
        assert_eq!(
            quorum_json(&q).to_string(),
            r#"{"provider":"corosync_votequorum","node_id":1,"ring_id":"1.8","quorate":true,"expected_votes":3,"highest_expected":3,"total_votes":2,"quorum":2,"flags":["Quorate"],"members":[{"node_id":1,"votes":1,"name":"a"}],"fence_pending":[2],"fencing_held":true}"#
        );
    }
}
