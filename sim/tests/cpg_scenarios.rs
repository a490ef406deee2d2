//! CPG scenario tests: each reads like a rule of closed process groups (corosync's
//! `cpg_overview(8)`). Every step also runs all the checkers (group total order, delivery only
//! to members, group virtual synchrony, confchg consistency, and Totem's own), and each test
//! ends with the liveness check, which waits for the groups to settle.

mod common;

use common::assert_clean;
use std::time::Duration;

use cpg::service::ClientId;
use cpg::{Confchg, CpgEvent, GroupName, Guarantee, MemberId, Reason};
use sim::{Cluster, CpgLoad, SimConfig};
use totem::NodeId;

const FORM: Duration = Duration::from_secs(20);

/// A cluster with no raw load that keeps every client's events.
fn cluster(seed: u64, n: usize, cpg: CpgLoad) -> Cluster {
    let mut cfg = SimConfig::default();
    cfg.load.rate_per_node = 0.0;
    cfg.cpg = CpgLoad { record_events: true, ..cpg };
    let mut c = Cluster::new(seed, n, cfg).expect("valid config");
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c
}

/// Faults stop; the ring, the raw probes and the groups must settle.
#[track_caller]
fn settle(c: &mut Cluster) {
    c.stop_faults(false);
    c.check_liveness();
    assert_clean(c);
}

/// One client on each of `nodes`, joined to `group`, each with every join seen.
fn members(c: &mut Cluster, nodes: &[u32], group: &GroupName) -> Vec<(NodeId, ClientId)> {
    let clients: Vec<(NodeId, ClientId)> = nodes
        .iter()
        .map(|&n| {
            let node = NodeId(n);
            let client = c.cpg_connect(node).expect("node up");
            c.cpg_join(node, client, group).expect("join accepted");
            (node, client)
        })
        .collect();
    c.run_for(Duration::from_secs(1));
    clients
}

fn confchgs(c: &Cluster, (node, client): (NodeId, ClientId)) -> Vec<Confchg> {
    c.cpg_events(node, client)
        .iter()
        .filter_map(|e| match e {
            CpgEvent::Confchg(cc) => Some(cc.clone()),
            _ => None,
        })
        .collect()
}

/// `(member node, reason)` of each change's left and joined lists.
fn reasons(list: &[cpg::Change]) -> Vec<(u32, Reason)> {
    list.iter().map(|ch| (ch.member.node_id, ch.reason)).collect()
}

fn member_nodes(m: &[MemberId]) -> Vec<u32> {
    m.iter().map(|m| m.node_id).collect()
}

/// A partition takes a node's members out of the group with reason `nodedown` on the other
/// side (and the other side's out on its side); after the heal the sync round brings them
/// back with reason `nodeup`, and every node holds the same group table.
#[test]
fn cpg_partition_2_1_heal_members_agree_and_see_nodedown_then_nodeup() {
    let mut c = cluster(11, 3, CpgLoad::default());
    let g = c.cpg_group(0);
    let clients = members(&mut c, &[1, 2, 3], &g);
    c.partition(&[NodeId(1), NodeId(2)], &[NodeId(3)]);
    c.run_for(Duration::from_secs(10));
    // Both sides keep talking in their own component.
    for &(node, client) in &clients {
        c.cpg_mcast(node, client, &g, 2000, Guarantee::Safe).expect("accepted");
    }
    c.run_for(Duration::from_secs(2));
    c.heal();
    settle(&mut c);

    for (k, &who) in clients.iter().enumerate() {
        let changes = confchgs(&c, who);
        let tail: Vec<_> = changes
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(|cc| (member_nodes(&cc.members), reasons(&cc.left), reasons(&cc.joined)))
            .collect();
        let expected = if k < 2 {
            vec![
                (vec![1, 2], vec![(3, Reason::NodeDown)], vec![]),
                (vec![1, 2, 3], vec![], vec![(3, Reason::NodeUp)]),
            ]
        } else {
            vec![
                (vec![3], vec![(1, Reason::NodeDown), (2, Reason::NodeDown)], vec![]),
                (vec![1, 2, 3], vec![], vec![(1, Reason::NodeUp), (2, Reason::NodeUp)]),
            ]
        };
        assert_eq!(tail, expected, "client on n{}: {changes:?}", who.0);
    }
    let tables = c.cpg_tables();
    assert_eq!(tables.len(), 3);
    assert!(tables.iter().all(|(_, t)| t == &tables[0].1), "{tables:?}");
    assert_eq!(tables[0].1[&g].len(), 3);
}

/// A client that exits without leaving (its connection closes) leaves every group it was in
/// with reason `procdown`, as every other member sees, on every node.
#[test]
fn cpg_client_exit_is_procdown_everywhere() {
    let mut c = cluster(12, 3, CpgLoad::default());
    let (a, b) = (c.cpg_group(0), c.cpg_group(1));
    let in_a = members(&mut c, &[1, 2, 3], &a);
    let (n2, exiting) = in_a[1];
    c.cpg_join(n2, exiting, &b).unwrap();
    let other_b = c.cpg_connect(NodeId(3)).unwrap();
    c.cpg_join(NodeId(3), other_b, &b).unwrap();
    c.run_for(Duration::from_secs(1));
    c.cpg_disconnect(n2, exiting).unwrap();
    c.run_for(Duration::from_secs(1));

    let gone = |cc: &Confchg| reasons(&cc.left) == vec![(2, Reason::ProcDown)];
    for who in [in_a[0], in_a[2]] {
        let last = confchgs(&c, who).pop().expect("changes");
        assert_eq!(last.group, a);
        assert!(gone(&last), "{last:?}");
        assert_eq!(member_nodes(&last.members), vec![1, 3]);
    }
    let last_b = confchgs(&c, (NodeId(3), other_b)).pop().expect("changes");
    assert_eq!(last_b.group, b);
    assert!(gone(&last_b), "{last_b:?}");
    assert_eq!(member_nodes(&last_b.members), vec![3]);
    // The exiting client is told nothing after it went.
    let told = c.cpg_events(n2, exiting).len();
    c.run_for(Duration::from_secs(1));
    assert_eq!(c.cpg_events(n2, exiting).len(), told);
    settle(&mut c);
}

/// With 10 % of datagrams lost, busy clients on four nodes (joining, leaving, exiting, agreed
/// and safe messages, some larger than the MTU) still see every group's messages in one order;
/// the checkers compare every pair of clients, and after the heal every client got its own
/// messages back.
#[test]
fn cpg_loss_10_percent_group_messages_in_one_order() {
    let load = CpgLoad { ops_per_node: 25.0, clients_max: 3, groups: 2, ..CpgLoad::default() };
    let mut c = cluster(13, 4, load);
    c.set_loss(0.10);
    c.run_for(Duration::from_secs(15));
    let s = c.stats().clone();
    assert!(s.cpg_sent > 500 && s.cpg_deliveries > 1000, "{s:?}");
    settle(&mut c);
    assert!(c.checkers().cpg.synchrony.compared() > 50);
    // Spot check beside the checkers: two clients that are members of g0 from start to end
    // got the same sequence.
    let g = c.cpg_group(0);
    let late = members(&mut c, &[1, 4], &g);
    for &(node, client) in &late {
        c.cpg_mcast(node, client, &g, 3000, Guarantee::Agreed).unwrap();
    }
    c.run_for(Duration::from_secs(2));
    let seq = |who: (NodeId, ClientId)| -> Vec<_> {
        c.cpg_events(who.0, who.1)
            .iter()
            .filter_map(|e| match e {
                CpgEvent::Deliver(m) => Some(m.data.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(seq(late[0]).len(), 2);
    assert_eq!(seq(late[0]), seq(late[1]));
    assert_clean(&c);
}
