//! One input on a known state, exact outputs compared; and a proptest that nothing is reported
//! fenced without a whole method's success or an ack.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use totem::{Instant, NodeId};

use super::*;

fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub(super) fn dref(device: &str, pairs: &[(&str, &str)]) -> DeviceRef {
    DeviceRef { device: device.into(), attrs: attrs(pairs) }
}

fn device(agent: &str, pairs: &[(&str, &str)]) -> Device {
    Device { agent: agent.into(), attrs: attrs(pairs) }
}

/// Three nodes. n1: ipmi1 (delay 15). n2: ipmi2, then the pdu pair. n3: ipmi3.
pub(super) fn config() -> FenceConfig {
    let mut devices = BTreeMap::new();
    for n in 1..=3 {
        let ip = format!("10.0.0.{n}");
        let mut a = vec![("ipaddr", ip.as_str()), ("login", "admin"), ("passwd", "secret")];
        if n == 1 {
            a.push(("delay", "15"));
        }
        devices.insert(format!("ipmi{n}"), device("fence_ipmilan", &a));
    }
    devices.insert("pdu_a".into(), device("fence_apc", &[("ipaddr", "pdu-a"), ("action", "reboot")]));
    devices.insert("pdu_b".into(), device("fence_apc", &[("ipaddr", "pdu-b")]));
    let ipmi = |n: u32| Method { name: "ipmi".into(), devices: vec![dref(&format!("ipmi{n}"), &[])] };
    let pdu = Method {
        name: "pdu".into(),
        devices: vec![dref("pdu_a", &[("port", "2"), ("action", "off")]), dref("pdu_b", &[("port", "2")])],
    };
    let mut nodes = BTreeMap::new();
    nodes.insert(NodeId(1), NodeFencing { name: "n1".into(), methods: vec![ipmi(1)] });
    nodes.insert(NodeId(2), NodeFencing { name: "n2".into(), methods: vec![ipmi(2), pdu] });
    nodes.insert(NodeId(3), NodeFencing { name: "n3".into(), methods: vec![ipmi(3)] });
    FenceConfig { devices, nodes, ..FenceConfig::default() }
}

pub(super) fn t(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

const ALL: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

/// Started, all three members, quorate, startup delay over; outputs drained.
fn running_cluster() -> Fencer {
    let mut f = Fencer::new(config()).unwrap();
    f.handle_membership(t(0), &ALL, true, &[]);
    f.start(t(0));
    f.handle_timeout(t(6));
    drain(&mut f);
    f
}

fn drain(f: &mut Fencer) -> (Vec<RunAgent>, Vec<FenceEvent>) {
    (std::iter::from_fn(|| f.poll_action()).collect(), std::iter::from_fn(|| f.poll_event()).collect())
}

fn ipmi2_run(op: u64) -> RunAgent {
    RunAgent {
        op: OpId(op),
        node: NodeId(2),
        method: "ipmi".into(),
        device: "ipmi2".into(),
        agent: "fence_ipmilan".into(),
        stdin: "ipaddr=10.0.0.2\nlogin=admin\npasswd=secret\nnodename=n2\naction=reboot\n".into(),
        timeout: Duration::from_secs(60),
        delay: Duration::ZERO,
    }
}

fn pdu_run(op: u64, which: &str) -> RunAgent {
    let stdin = match which {
        "pdu_a" => "ipaddr=pdu-a\naction=off\nport=2\nnodename=n2\n",
        _ => "ipaddr=pdu-b\nport=2\nnodename=n2\naction=reboot\n",
    };
    RunAgent {
        method: "pdu".into(),
        device: which.into(),
        agent: "fence_apc".into(),
        stdin: stdin.into(),
        ..ipmi2_run(op)
    }
}

/// Node 2 lost by the quorate {1,3}: its first agent is running as op 1.
fn fencing_n2() -> Fencer {
    let mut f = running_cluster();
    f.handle_membership(t(10), &[NodeId(1), NodeId(3)], true, &[]);
    drain(&mut f);
    f
}

fn failed(method: &str, device: &str, detail: &str) -> FenceEvent {
    FenceEvent::AttemptFailed {
        node: NodeId(2),
        method: method.into(),
        device: device.into(),
        detail: detail.into(),
    }
}

#[test]
fn unclean_loss_in_quorate_ring_runs_first_method() {
    let mut f = running_cluster();
    f.handle_membership(t(10), &[NodeId(1), NodeId(3)], true, &[]);
    assert_eq!(
        drain(&mut f),
        (vec![ipmi2_run(1)], vec![FenceEvent::Pending { node: NodeId(2) }, FenceEvent::Blocked])
    );
    assert_eq!(f.pending(), vec![NodeId(2)]);
    assert!(f.is_blocking());
    // The agent's deadline: no delay, 60 s timeout.
    assert_eq!(f.poll_timeout(), Some(t(70)));
}

#[test]
fn clean_leave_needs_no_fencing() {
    let mut f = running_cluster();
    f.handle_membership(t(10), &[NodeId(1), NodeId(3)], true, &[NodeId(2)]);
    assert_eq!(drain(&mut f), (vec![], vec![]));
    assert!(!f.is_blocking());
}

#[test]
fn non_quorate_partition_never_fences_and_blocks_until_quorum() {
    let mut f = running_cluster();
    // {1} alone: 2 and 3 lost, no quorum (fenced(8): postponed until quorum is restored).
    f.handle_membership(t(10), &[NodeId(1)], false, &[]);
    let pending = |n| FenceEvent::Pending { node: NodeId(n) };
    assert_eq!(drain(&mut f), (vec![], vec![pending(2), pending(3), FenceEvent::Blocked]));
    assert_eq!(f.poll_timeout(), None);
    // Quorum comes back without them (expected votes lowered): now they are fenced.
    f.handle_membership(t(20), &[NodeId(1)], true, &[]);
    let (runs, events) = drain(&mut f);
    assert_eq!(
        runs.iter().map(|r| (r.op, r.node)).collect::<Vec<_>>(),
        vec![(OpId(1), NodeId(2)), (OpId(2), NodeId(3))]
    );
    assert_eq!(events, vec![]);
}

#[test]
fn lost_without_quorum_and_rejoined_before_any_run_is_cancelled() {
    let mut f = running_cluster();
    f.handle_membership(t(10), &[NodeId(1)], false, &[]);
    drain(&mut f);
    // The partitions merge: nobody knew which side was cut off.
    f.handle_membership(t(11), &ALL, true, &[]);
    let cancelled = |n| FenceEvent::Cancelled { node: NodeId(n) };
    assert_eq!(drain(&mut f), (vec![], vec![cancelled(2), cancelled(3), FenceEvent::Unblocked]));
}

#[test]
fn failed_method_falls_to_next_and_all_devices_must_succeed() {
    let mut f = fencing_n2();
    f.handle_agent_result(t(11), OpId(1), false, "connection refused".into());
    assert_eq!(
        drain(&mut f),
        (vec![pdu_run(2, "pdu_a")], vec![failed("ipmi", "ipmi2", "connection refused")])
    );
    f.handle_agent_result(t(12), OpId(2), true, String::new());
    assert_eq!(drain(&mut f), (vec![pdu_run(3, "pdu_b")], vec![]));
    f.handle_agent_result(t(13), OpId(3), true, String::new());
    let fenced = FenceEvent::Fenced { node: NodeId(2), by: "pdu".into() };
    assert_eq!(drain(&mut f), (vec![], vec![fenced, FenceEvent::Unblocked]));
    let entry = HistoryEntry { node: NodeId(2), at: t(13), by: "pdu".into(), failed_attempts: 1 };
    assert_eq!(f.history().collect::<Vec<_>>(), vec![&entry]);
    assert!(f.pending().is_empty());
}

#[test]
fn after_last_method_waits_retry_delay_then_starts_over() {
    let mut f = fencing_n2();
    f.handle_agent_result(t(11), OpId(1), false, "a".into());
    f.handle_agent_result(t(12), OpId(2), true, String::new());
    drain(&mut f);
    f.handle_agent_result(t(13), OpId(3), false, "b".into());
    assert_eq!(drain(&mut f), (vec![], vec![failed("pdu", "pdu_b", "b")]));
    assert_eq!(f.poll_timeout(), Some(t(18)));
    f.handle_timeout(t(17));
    assert_eq!(drain(&mut f), (vec![], vec![]));
    f.handle_timeout(t(18));
    assert_eq!(drain(&mut f), (vec![ipmi2_run(4)], vec![]));
}

#[test]
fn agent_timeout_counts_as_failure_and_late_result_is_ignored() {
    let mut f = fencing_n2();
    f.handle_timeout(t(70));
    assert_eq!(
        drain(&mut f),
        (vec![pdu_run(2, "pdu_a")], vec![failed("ipmi", "ipmi2", "timed out after 60 s")])
    );
    f.handle_agent_result(t(71), OpId(1), true, String::new());
    assert_eq!(drain(&mut f), (vec![], vec![]));
    assert_eq!(f.pending(), vec![NodeId(2)]);
}

#[test]
fn ack_stops_retries_and_counts_as_fenced() {
    let mut f = fencing_n2();
    f.ack(t(20), NodeId(2)).unwrap();
    let fenced = FenceEvent::Fenced { node: NodeId(2), by: ACKNOWLEDGED.into() };
    assert_eq!(drain(&mut f), (vec![], vec![fenced, FenceEvent::Unblocked]));
    assert_eq!(f.poll_timeout(), None);
    f.handle_agent_result(t(21), OpId(1), false, "late".into());
    assert_eq!(drain(&mut f), (vec![], vec![]));
    assert_eq!(f.ack(t(22), NodeId(2)), Err(AckError::NotPending(NodeId(2))));
}

#[test]
fn startup_fences_nodes_not_joined_within_post_join_delay() {
    let mut f = Fencer::new(config()).unwrap();
    f.handle_membership(t(0), &[NodeId(1)], true, &[]);
    f.start(t(0));
    // Quorate start: the delay runs, service is held while 2 and 3 are unseen.
    assert_eq!(drain(&mut f), (vec![], vec![FenceEvent::Blocked]));
    assert_eq!(f.poll_timeout(), Some(t(6)));
    f.handle_membership(t(3), &[NodeId(1), NodeId(2)], true, &[]);
    assert_eq!(drain(&mut f), (vec![], vec![]));
    f.handle_timeout(t(6));
    let (runs, events) = drain(&mut f);
    assert_eq!(runs.iter().map(|r| (r.op, r.node)).collect::<Vec<_>>(), vec![(OpId(1), NodeId(3))]);
    assert_eq!(events, vec![FenceEvent::Pending { node: NodeId(3) }]);
}

#[test]
fn startup_delay_begins_at_first_quorate_ring() {
    let mut f = Fencer::new(config()).unwrap();
    f.start(t(0));
    f.handle_membership(t(1), &[NodeId(1)], false, &[]);
    assert_eq!(f.poll_timeout(), None);
    f.handle_membership(t(4), &[NodeId(1), NodeId(2)], true, &[]);
    assert_eq!(f.poll_timeout(), Some(t(10)));
    f.handle_membership(t(9), &ALL, true, &[]);
    f.handle_timeout(t(10));
    assert_eq!(drain(&mut f), (vec![], vec![FenceEvent::Blocked, FenceEvent::Unblocked]));
}

#[test]
fn victim_lost_by_quorate_ring_is_fenced_even_if_it_rejoins() {
    let mut f = fencing_n2();
    f.handle_membership(t(12), &ALL, true, &[]);
    assert_eq!(drain(&mut f), (vec![], vec![]));
    f.handle_agent_result(t(13), OpId(1), true, String::new());
    let fenced = FenceEvent::Fenced { node: NodeId(2), by: "ipmi".into() };
    assert_eq!(drain(&mut f), (vec![], vec![fenced, FenceEvent::Unblocked]));
    // It was rebooted: its loss now is expected and makes no new victim.
    f.handle_membership(t(14), &[NodeId(1), NodeId(3)], true, &[]);
    assert_eq!(drain(&mut f), (vec![], vec![]));
}

#[test]
fn expected_loss_after_a_fence_expires_after_agent_timeout() {
    let mut f = running_cluster();
    f.fence(t(10), NodeId(2)).unwrap();
    f.handle_agent_result(t(11), OpId(1), true, String::new());
    drain(&mut f);
    // Still a member 60 s after its fence: it survived or came back; its loss counts again.
    f.handle_membership(t(72), &[NodeId(1), NodeId(3)], true, &[]);
    let (runs, events) = drain(&mut f);
    assert_eq!(runs, vec![ipmi2_run(2)]);
    assert_eq!(events, vec![FenceEvent::Pending { node: NodeId(2) }, FenceEvent::Blocked]);
}

#[test]
fn manual_fence_runs_without_quorum_and_refuses_misuse() {
    let mut f = running_cluster();
    f.handle_membership(t(10), &ALL, false, &[]);
    f.fence(t(11), NodeId(2)).unwrap();
    assert_eq!(
        drain(&mut f),
        (vec![ipmi2_run(1)], vec![FenceEvent::Pending { node: NodeId(2) }, FenceEvent::Blocked])
    );
    assert_eq!(f.fence(t(11), NodeId(2)), Err(FenceError::AlreadyPending(NodeId(2))));
    assert_eq!(f.fence(t(11), NodeId(9)), Err(FenceError::NotConfigured(NodeId(9))));
}

#[test]
fn two_node_delay_is_carried_and_passed_on_stdin() {
    let mut f = running_cluster();
    f.handle_membership(t(10), &[NodeId(2), NodeId(3)], true, &[]);
    let (runs, _) = drain(&mut f);
    assert_eq!(runs[0].delay, Duration::from_secs(15));
    assert_eq!(
        runs[0].stdin,
        "ipaddr=10.0.0.1\nlogin=admin\npasswd=secret\ndelay=15\nnodename=n1\naction=reboot\n"
    );
    // The daemon waits 15 s, the agent may wait 15 s more, then 60 s of timeout.
    assert_eq!(f.poll_timeout(), Some(t(100)));
}

#[test]
fn unconfigured_node_stays_pending_until_acked() {
    let mut f = Fencer::new(config()).unwrap();
    let four = [NodeId(1), NodeId(2), NodeId(3), NodeId(4)];
    f.handle_membership(t(0), &four, true, &[]);
    f.start(t(0));
    f.handle_timeout(t(6));
    drain(&mut f);
    f.handle_membership(t(10), &ALL, true, &[]);
    let events = vec![
        FenceEvent::Pending { node: NodeId(4) },
        FenceEvent::Unfenceable { node: NodeId(4) },
        FenceEvent::Blocked,
    ];
    assert_eq!(drain(&mut f), (vec![], events));
    f.ack(t(11), NodeId(4)).unwrap();
    assert!(!f.is_blocking());
}

#[test]
fn never_policy_does_not_block() {
    let mut f = Fencer::new(FenceConfig { policy: BlockPolicy::Never, ..config() }).unwrap();
    f.handle_membership(t(0), &ALL, true, &[]);
    f.start(t(0));
    f.handle_membership(t(1), &[NodeId(1)], true, &[]);
    assert!(!f.is_blocking());
    assert_eq!(f.pending(), vec![NodeId(2), NodeId(3)]);
}

#[test]
fn quorum_lost_between_devices_postpones_and_restarts_the_method() {
    let mut f = fencing_n2();
    f.handle_agent_result(t(11), OpId(1), false, "x".into());
    drain(&mut f);
    f.handle_membership(t(12), &[NodeId(1)], false, &[]);
    drain(&mut f);
    // pdu_a succeeds while this partition has no quorum: pdu_b waits for quorum.
    f.handle_agent_result(t(13), OpId(2), true, String::new());
    assert_eq!(drain(&mut f), (vec![], vec![]));
    f.handle_membership(t(14), &[NodeId(1)], true, &[]);
    // The method restarts from its first device; node 3 (lost without quorum) is fenced too.
    let (runs, _) = drain(&mut f);
    assert_eq!(runs[0], pdu_run(3, "pdu_a"));
    assert_eq!(runs[1].node, NodeId(3));
}

#[test]
fn peer_report_completes_a_victim() {
    let mut f = fencing_n2();
    f.handle_peer_fenced(t(12), NodeId(2), "ipmi".into());
    let fenced = FenceEvent::Fenced { node: NodeId(2), by: "ipmi".into() };
    assert_eq!(drain(&mut f), (vec![], vec![fenced, FenceEvent::Unblocked]));
    f.handle_agent_result(t(13), OpId(1), true, String::new());
    assert_eq!(drain(&mut f), (vec![], vec![]));
}

#[test]
fn loss_before_start_is_not_a_victim_and_startup_counts_from_start() {
    let mut f = Fencer::new(config()).unwrap();
    f.handle_membership(t(0), &ALL, true, &[]);
    f.handle_membership(t(1), &[NodeId(1), NodeId(2)], true, &[]);
    f.start(t(2));
    f.handle_timeout(t(8));
    let (runs, events) = drain(&mut f);
    assert_eq!(runs.iter().map(|r| r.node).collect::<Vec<_>>(), vec![NodeId(3)]);
    assert_eq!(events, vec![FenceEvent::Blocked, FenceEvent::Pending { node: NodeId(3) }]);
}

#[test]
fn validate_reports_typed_errors() {
    let with = |edit: &dyn Fn(&mut FenceConfig)| {
        let mut c = config();
        edit(&mut c);
        c.validate()
    };
    let n2 = |c: &mut FenceConfig| c.nodes.get_mut(&NodeId(2)).unwrap().methods.clone();
    assert_eq!(config().validate(), Ok(()));
    assert_eq!(
        with(&|c| c.nodes.get_mut(&NodeId(3)).unwrap().methods[0].devices[0].device = "nope".into()),
        Err(ConfigError::UnknownDevice { node: NodeId(3), method: "ipmi".into(), device: "nope".into() })
    );
    assert_eq!(
        with(&|c| c.nodes.get_mut(&NodeId(3)).unwrap().methods.clear()),
        Err(ConfigError::NoMethods { node: NodeId(3) })
    );
    assert_eq!(
        with(&|c| c.nodes.get_mut(&NodeId(3)).unwrap().methods[0].devices.clear()),
        Err(ConfigError::EmptyMethod { node: NodeId(3), method: "ipmi".into() })
    );
    assert_eq!(
        with(&|c| {
            let m = n2(c)[0].clone();
            c.nodes.get_mut(&NodeId(2)).unwrap().methods.push(m);
        }),
        Err(ConfigError::DuplicateMethod { node: NodeId(2), method: "ipmi".into() })
    );
    assert_eq!(
        with(&|c| c.devices.get_mut("pdu_b").unwrap().attrs.push(("x".into(), "a\nb".into()))),
        Err(ConfigError::BadAttribute { owner: "device \"pdu_b\"".into(), key: "x".into() })
    );
    assert_eq!(
        with(&|c| c.nodes.get_mut(&NodeId(3)).unwrap().methods[0].devices[0]
            .attrs
            .push(("delay".into(), "soon".into()))),
        Err(ConfigError::BadDelay { owner: "node 3 device \"ipmi3\"".into(), value: "soon".into() })
    );
    assert_eq!(
        with(&|c| c.devices.get_mut("pdu_b").unwrap().agent.clear()),
        Err(ConfigError::NoAgent { device: "pdu_b".into() })
    );
    assert_eq!(with(&|c| c.agent_timeout = Duration::ZERO), Err(ConfigError::ZeroAgentTimeout));
}

#[derive(Clone, Debug)]
enum Input {
    Membership { members: u8, quorate: bool, clean: u8 },
    Result { pick: usize, success: bool },
    Timeout { advance: u64 },
    Fence { node: u32 },
    Ack { node: u32 },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0u8..8, any::<bool>(), 0u8..8).prop_map(|(members, quorate, clean)| Input::Membership {
            members,
            quorate,
            clean
        }),
        (0usize..4, any::<bool>()).prop_map(|(pick, success)| Input::Result { pick, success }),
        (0u64..30).prop_map(|advance| Input::Timeout { advance }),
        (1u32..4).prop_map(|node| Input::Fence { node }),
        (1u32..4).prop_map(|node| Input::Ack { node }),
    ]
}

fn nodes_of(mask: u8) -> Vec<NodeId> {
    (1..=3).filter(|n| mask & (1 << (n - 1)) != 0).map(NodeId).collect()
}

proptest! {
    /// Safety: `Fenced { by: method }` only after every device of that method succeeded for
    /// that node since its last fence; `Fenced { by: acknowledged }` only right after an ack;
    /// without quorum, agents run only for manual fences (fenced(8): postponed until quorum).
    #[test]
    fn never_fenced_without_a_whole_method_or_an_ack(inputs in proptest::collection::vec(input(), 1..80)) {
        let cfg = config();
        let mut f = Fencer::new(cfg.clone()).unwrap();
        let mut now = t(0);
        f.handle_membership(now, &ALL, true, &[]);
        f.start(now);
        // Agent runs not yet reported, and whether they belong to the victim's current episode.
        let mut running: Vec<(RunAgent, bool)> = Vec::new();
        // Per node: (method, device) pairs that succeeded in the current episode.
        let mut succeeded: BTreeMap<NodeId, BTreeSet<(String, String)>> = BTreeMap::new();
        let mut quorate = true;
        let mut manual: BTreeSet<NodeId> = BTreeSet::new();
        for input in inputs {
            let mut acked = None;
            match input {
                Input::Membership { members, quorate: q, clean } => {
                    now = now + Duration::from_secs(1);
                    quorate = q;
                    f.handle_membership(now, &nodes_of(members), q, &nodes_of(clean));
                }
                Input::Result { pick, success } => {
                    if running.is_empty() {
                        continue;
                    }
                    let (run, live) = running.remove(pick % running.len());
                    now = now + Duration::from_secs(1);
                    if success && live {
                        succeeded.entry(run.node).or_default().insert((run.method.clone(), run.device.clone()));
                    }
                    f.handle_agent_result(now, run.op, success, String::new());
                }
                Input::Timeout { advance } => {
                    now = now + Duration::from_secs(advance);
                    f.handle_timeout(now);
                }
                Input::Fence { node } => {
                    if f.fence(now, NodeId(node)).is_ok() {
                        manual.insert(NodeId(node));
                    }
                }
                Input::Ack { node } => {
                    if f.ack(now, NodeId(node)).is_ok() {
                        acked = Some(NodeId(node));
                    }
                }
            }
            while let Some(event) = f.poll_event() {
                match event {
                    FenceEvent::Pending { node } => {
                        // A new episode: earlier runs for this node no longer count.
                        succeeded.remove(&node);
                        running.iter_mut().filter(|(r, _)| r.node == node).for_each(|(_, live)| *live = false);
                    }
                    FenceEvent::Fenced { node, by } => {
                        let done = succeeded.remove(&node).unwrap_or_default();
                        manual.remove(&node);
                        running.iter_mut().filter(|(r, _)| r.node == node).for_each(|(_, live)| *live = false);
                        if by == ACKNOWLEDGED {
                            prop_assert_eq!(acked, Some(node));
                            continue;
                        }
                        let method = cfg.nodes[&node].methods.iter().find(|m| m.name == by).unwrap();
                        for d in &method.devices {
                            let ok = done.contains(&(by.clone(), d.device.clone()));
                            prop_assert!(ok, "{} fenced by {} without {}", node, by, d.device);
                        }
                    }
                    _ => {}
                }
            }
            while let Some(run) = f.poll_action() {
                prop_assert!(quorate || manual.contains(&run.node), "agent for {} without quorum", run.node);
                running.push((run, true));
            }
            // BlockWhilePending: a pending fence always holds service.
            prop_assert!(f.pending().is_empty() || f.is_blocking());
        }
    }
}
