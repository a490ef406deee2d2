//! Safety: two disjoint partitions of one cluster are never both quorate (votequorum(5)),
//! whatever the votes and options, except `two_node` (documented: fencing decides) and
//! run-time changes by the administrator, which this does not make. With last_man_standing
//! too, whatever the rings do after expected votes were lowered (stricter than corosync).

mod common;

use std::collections::BTreeMap;

use common::Cluster;
use proptest::prelude::*;
use quorum::{QuorumConfig, TieBreaker};
use totem::NodeId;

/// One step: the ring (0..3) of every node, whether the last_man_standing window passes
/// after, whether the rings change again after only that many node infos, and a node (index
/// modulo the count) that restarts with no state first.
type Step = (Vec<u8>, bool, Option<u8>, Option<u8>);

#[derive(Clone, Debug)]
struct Scenario {
    votes: Vec<u32>,
    wait_for_all: Option<bool>,
    last_man_standing: bool,
    tie_breaker: Option<TieBreaker>,
    steps: Vec<Step>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..=7).prop_flat_map(|n| {
        let tb = prop_oneof![
            Just(None),
            Just(Some(TieBreaker::Lowest)),
            Just(Some(TieBreaker::Highest)),
            proptest::collection::vec(1u32..=8, 1..4)
                .prop_map(|ids| Some(TieBreaker::List(ids.into_iter().map(NodeId).collect()))),
        ];
        (
            prop_oneof![Just(vec![1; n]), proptest::collection::vec(1u32..=3, n)],
            prop_oneof![Just(None), any::<bool>().prop_map(Some)],
            any::<bool>(),
            tb,
            proptest::collection::vec(
                (
                    proptest::collection::vec(0u8..3, n),
                    any::<bool>(),
                    proptest::option::of(0u8..6),
                    proptest::option::weighted(0.2, 0u8..8),
                ),
                1..5,
            ),
        )
            .prop_map(|(votes, wait_for_all, last_man_standing, tie_breaker, steps)| Scenario {
                votes,
                wait_for_all,
                last_man_standing,
                tie_breaker,
                steps,
            })
    })
}

fn check(cluster: &Cluster, groups: &[Vec<u32>]) -> Result<(), TestCaseError> {
    let quorate: Vec<&Vec<u32>> =
        groups.iter().filter(|g| g.iter().any(|&id| cluster.node(id).is_quorate())).collect();
    prop_assert!(quorate.len() <= 1, "quorate rings {:?} of {:?}", quorate, groups);
    Ok(())
}

fn config(s: &Scenario) -> QuorumConfig {
    QuorumConfig {
        nodelist: s.votes.iter().enumerate().map(|(i, &v)| (NodeId(i as u32 + 1), v)).collect(),
        wait_for_all: s.wait_for_all,
        last_man_standing: s.last_man_standing,
        auto_tie_breaker: s.tie_breaker.is_some(),
        auto_tie_breaker_node: s.tie_breaker.clone(),
        ..QuorumConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn disjoint_partitions_are_never_both_quorate(s in scenario()) {
        let mut config = config(&s);
        if config.resolve(NodeId(1)).is_err() {
            // auto_tie_breaker with last_man_standing in an odd cluster needs wait_for_all.
            config.wait_for_all = Some(true);
        }
        let ids: Vec<u32> = (1..=s.votes.len() as u32).collect();
        let mut cluster = Cluster::new(&config, &ids);
        cluster.rings(std::slice::from_ref(&ids));
        for (assignment, wait, cut, restart) in &s.steps {
            if let Some(r) = restart {
                cluster.restart(u32::from(*r) % ids.len() as u32 + 1);
            }
            let mut groups: BTreeMap<u8, Vec<u32>> = BTreeMap::new();
            for (i, g) in assignment.iter().enumerate() {
                groups.entry(*g).or_default().push(i as u32 + 1);
            }
            let groups: Vec<Vec<u32>> = groups.into_values().collect();
            if let Some(cut) = cut {
                cluster.rings_cut(&groups, usize::from(*cut));
                check(&cluster, &groups)?;
            }
            cluster.rings(&groups);
            if *wait {
                cluster.wait(config.last_man_standing_window.as_millis() as u64);
            }
            check(&cluster, &groups)?;
        }
    }
}

proptest! {
    /// Input from a peer never panics the service, whatever the values and order.
    #[test]
    fn arbitrary_peer_messages_never_panic(
        msgs in proptest::collection::vec((1u32..=4, any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()), 0..40),
    ) {
        let mut config = QuorumConfig::with_nodes([1, 2, 3, 4]);
        config.last_man_standing = true;
        config.auto_tie_breaker = true;
        config.wait_for_all = Some(true);
        let mut vq = quorum::Votequorum::new(NodeId(1), &config).unwrap();
        let members: Vec<NodeId> = (1..=4).map(NodeId).collect();
        vq.handle_ring(totem::Instant::ZERO, totem::RingId { seq: 1, representative: NodeId(1) }, &members);
        for (from, a, b, c, d) in msgs {
            let body = if a % 3 == 0 {
                quorum::wire::Body::Reconfigure(quorum::wire::Reconfigure { param: b % 4, node_id: c % 6, value: d })
            } else {
                quorum::wire::Body::NodeInfo(quorum::wire::NodeInfo { node_id: from, votes: b, expected_votes: c, flags: d, lms: None })
            };
            vq.handle_message(NodeId(from), &quorum::wire::QuorumMessage::new(body).to_bytes());
            let _ = vq.status();
        }
    }
}
