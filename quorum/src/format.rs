//! `corosync-quorumtool -s` text for a [`Status`] (tools/corosync-quorumtool.c), so
//! `totemctl quorum` prints what operators already read.

use std::collections::BTreeMap;
use std::fmt::Write;

use totem::NodeId;

use crate::votequorum::{Status, StatusFlags};

/// The provider name quorumtool prints.
pub const PROVIDER: &str = "corosync_votequorum";

/// The status as `corosync-quorumtool -s` prints it. `names` gives the Name column (the node
/// id when missing); `date` is the `Date:` line's text, left out when `None` (the core reads no
/// The names of the flags in force, in corosync-quorumtool's order (`2Node`, `Quorate`,
/// `WaitForAll`, `LastManStanding`, `AutoTieBreaker`).
pub fn flag_names(f: &StatusFlags) -> Vec<&'static str> {
    let flags = [
        (f.two_node, "2Node"),
        (f.quorate, "Quorate"),
        (f.wait_for_all, "WaitForAll"),
        (f.last_man_standing, "LastManStanding"),
        (f.auto_tie_breaker, "AutoTieBreaker"),
    ];
    flags.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect()
}

/// clock). The ring id is `representative.seq` in hex, as corosync prints it.
pub fn quorumtool_status(status: &Status, names: &BTreeMap<NodeId, String>, date: Option<&str>) -> String {
    let mut out = String::new();
    let ring = status.ring_id.map_or((0, 0), |r| (r.representative.0, r.seq));
    let yes_no = |b: bool| if b { "Yes" } else { "No" };
    out.push_str("Quorum information\n------------------\n");
    if let Some(date) = date {
        let _ = writeln!(out, "Date:             {date}");
    }
    let _ = writeln!(out, "Quorum provider:  {PROVIDER}");
    let _ = writeln!(out, "Nodes:            {}", status.members.len());
    let _ = writeln!(out, "Node ID:          {}", status.node_id);
    let _ = writeln!(out, "Ring ID:          {:x}.{:x}", ring.0, ring.1);
    let _ = writeln!(out, "Quorate:          {}", yes_no(status.quorate));
    out.push_str("\nVotequorum information\n----------------------\n");
    let _ = writeln!(out, "Expected votes:   {}", status.expected_votes);
    let _ = writeln!(out, "Highest expected: {}", status.highest_expected);
    let _ = writeln!(out, "Total votes:      {}", status.total_votes);
    let blocked = if status.quorate { " " } else { "Activity blocked" };
    let _ = writeln!(out, "Quorum:           {} {blocked}", status.quorum);
    out.push_str("Flags:            ");
    for name in flag_names(&status.flags) {
        let _ = write!(out, "{name} ");
    }
    out.push_str("\n\nMembership information\n----------------------\n");
    let _ = writeln!(out, "{:>10} {:>10} Name", "Nodeid", "Votes");
    for m in &status.members {
        let name = names.get(&m.node_id).cloned().unwrap_or_else(|| m.node_id.to_string());
        let local = if m.node_id == status.node_id { " (local)" } else { "" };
        let _ = writeln!(out, "{:>10} {:>10} {name}{local}", m.node_id.0, m.votes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::votequorum::{MemberStatus, StatusFlags};
    use totem::RingId;

    fn member(id: u32, votes: u32) -> MemberStatus {
        MemberStatus { node_id: NodeId(id), votes, expected_votes: 3 }
    }

    #[test]
    fn prints_like_corosync_quorumtool_s() {
        let status = Status {
            node_id: NodeId(1),
            ring_id: Some(RingId { seq: 26, representative: NodeId(1) }),
            quorate: true,
            expected_votes: 3,
            highest_expected: 3,
            total_votes: 3,
            quorum: 2,
            flags: StatusFlags { quorate: true, wait_for_all: true, ..StatusFlags::default() },
            members: vec![member(1, 1), member(2, 1), member(3, 1)],
        };
        let names = BTreeMap::from([(NodeId(1), "node1".to_string()), (NodeId(2), "node2".to_string())]);
        let expected = "\
Quorum information
------------------
Date:             Thu Dec  3 09:24:08 2026
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          1
Ring ID:          1.1a
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate WaitForAll 

Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
         3          1 3
";
        assert_eq!(quorumtool_status(&status, &names, Some("Thu Dec  3 09:24:08 2026")), expected);
    }

    #[test]
    fn blocked_two_node_without_date() {
        let status = Status {
            node_id: NodeId(2),
            ring_id: None,
            quorate: false,
            expected_votes: 2,
            highest_expected: 2,
            total_votes: 1,
            quorum: 1,
            flags: StatusFlags { two_node: true, wait_for_all: true, ..StatusFlags::default() },
            members: vec![member(2, 1)],
        };
        let text = quorumtool_status(&status, &BTreeMap::new(), None);
        assert!(text.starts_with("Quorum information\n------------------\nQuorum provider:"));
        assert!(text.contains("Ring ID:          0.0\nQuorate:          No\n"));
        assert!(text.contains("Quorum:           1 Activity blocked\nFlags:            2Node WaitForAll \n"));
        assert!(text.ends_with("         2          1 2 (local)\n"));
    }
}
