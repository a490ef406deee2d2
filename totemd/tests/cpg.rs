//! Closed process groups through real daemons and the `cpg` client crate: every member that
//! stays gets the same messages in the same order (agreed order, virtual synchrony), and
//! membership changes carry corosync's reasons (join, leave, procdown, nodedown).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::Cluster;
use common::cpg::{connect, group, runtime};
use cpg::client::Cpg;
use cpg::{Change, Confchg, CpgEvent, Guarantee, MemberId, Reason};

const TOKEN_MS: u32 = 1000;
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The next event, or a panic naming what was awaited.
async fn next(cpg: &Cpg, what: &str) -> CpgEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, cpg.next_event()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("connection closed while waiting for {what}"),
        Err(_) => panic!("no event within {EVENT_TIMEOUT:?} while waiting for {what}"),
    }
}

/// Skips events until a configuration change of `group` satisfying `pred`; returns it.
async fn confchg_where(cpg: &Cpg, name: &str, pred: impl Fn(&Confchg) -> bool) -> Confchg {
    loop {
        if let CpgEvent::Confchg(c) = next(cpg, name).await {
            if c.group == group(name) && pred(&c) {
                return c;
            }
        }
    }
}

/// Collects `count` deliveries of `name` (other events are skipped), as (sender, data).
async fn deliveries(cpg: &Cpg, name: &str, count: usize) -> Vec<(MemberId, Vec<u8>)> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        if let CpgEvent::Deliver(m) = next(cpg, name).await {
            assert_eq!(m.group, group(name));
            got.push((m.sender, m.data.to_vec()));
        }
    }
    got
}

#[test]
fn two_nodes_every_member_gets_the_same_messages_in_the_same_order() {
    const PER_SENDER: usize = 2000;
    let cluster = Cluster::start("cpg-order", 2, TOKEN_MS, FORM_TIMEOUT);
    let rt = runtime();
    let (one, two) = rt.block_on(async {
        let a = std::sync::Arc::new(connect(&cluster.socket(1)).await);
        let b = std::sync::Arc::new(connect(&cluster.socket(2)).await);
        assert_eq!(a.local_node_id().await.unwrap(), 1);
        assert_eq!(b.local_node_id().await.unwrap(), 2);
        a.join(&group("orders")).await.unwrap();
        b.join(&group("orders")).await.unwrap();
        for c in [&a, &b] {
            confchg_where(c, "orders", |c| c.members.len() == 2).await;
        }
        // Both send at once, readers draining concurrently (the handles are shared).
        let readers: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|c| tokio::spawn(async move { deliveries(&c, "orders", 2 * PER_SENDER).await }))
            .collect();
        let senders: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|c| {
                tokio::spawn(async move {
                    for i in 0..PER_SENDER {
                        let guarantee = if i % 10 == 0 { Guarantee::Safe } else { Guarantee::Agreed };
                        c.mcast(&group("orders"), guarantee, format!("{i}")).await.unwrap();
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.unwrap();
        }
        let mut got = Vec::new();
        for r in readers {
            got.push(r.await.unwrap());
        }
        // The largest message the daemon takes crosses the ring in fragments and arrives whole.
        let max = a.message_max() as usize;
        assert!(max >= 1 << 20, "message_max {max} below 1 MiB");
        let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
        a.mcast(&group("orders"), Guarantee::Agreed, big.clone()).await.unwrap();
        for c in [&a, &b] {
            let got = deliveries(c, "orders", 1).await;
            assert!(got[0].1 == big, "the {max}-byte message arrived changed");
        }
        (got.remove(0), got.remove(0))
    });
    assert_eq!(one.len(), 2 * PER_SENDER);
    assert!(one == two, "the two members saw different orders");
    // Each sender's messages in the order it sent them (FIFO within the total order).
    let mut per_sender: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (sender, data) in &one {
        per_sender
            .entry(sender.node_id)
            .or_default()
            .push(std::str::from_utf8(data).unwrap().parse().unwrap());
    }
    for (node, seqs) in per_sender {
        assert_eq!(
            seqs,
            (0..PER_SENDER).collect::<Vec<_>>(),
            "node {node}'s messages out of order or missing"
        );
    }
    cluster.stop(EXIT_TIMEOUT);
}

#[test]
fn three_nodes_leave_procdown_and_nodedown_are_reported_to_the_survivors() {
    let mut cluster = Cluster::start("cpg-reasons", 3, TOKEN_MS, FORM_TIMEOUT);
    let rt = runtime();
    let pid = std::process::id();
    let m = |node_id| MemberId { node_id, pid };
    let change = |node_id, reason| Change { member: m(node_id), reason };
    rt.block_on(async {
        let c1 = connect(&cluster.socket(1)).await;
        let c2 = connect(&cluster.socket(2)).await;
        c1.join(&group("g")).await.unwrap();
        c2.join(&group("g")).await.unwrap();
        {
            // A client that leaves, then one whose connection just closes.
            let c3 = connect(&cluster.socket(3)).await;
            c3.join(&group("g")).await.unwrap();
            for c in [&c1, &c2] {
                confchg_where(c, "g", |c| c.members.len() == 3).await;
            }
            c3.leave(&group("g")).await.unwrap();
            let own = confchg_where(&c3, "g", |c| !c.left.is_empty()).await;
            assert_eq!(own.left, vec![change(3, Reason::Leave)]);
            for c in [&c1, &c2] {
                let seen = confchg_where(c, "g", |c| !c.left.is_empty()).await;
                assert_eq!(seen.left, vec![change(3, Reason::Leave)]);
                assert_eq!(seen.members, vec![m(1), m(2)]);
            }
            c3.join(&group("g")).await.unwrap();
            for c in [&c1, &c2] {
                let seen = confchg_where(c, "g", |c| !c.joined.is_empty()).await;
                assert_eq!(seen.joined, vec![change(3, Reason::Join)]);
            }
        } // c3 dropped: its connection closes without a leave.
        for c in [&c1, &c2] {
            let seen = confchg_where(c, "g", |c| !c.left.is_empty()).await;
            assert_eq!(seen.left, vec![change(3, Reason::ProcDown)]);
        }
        let c3 = connect(&cluster.socket(3)).await;
        // Node 3 may not have applied the procdown yet: the same pid must wait for it.
        loop {
            match c3.join(&group("g")).await {
                Err(cpg::client::CpgError::TryAgain) => tokio::time::sleep(Duration::from_millis(20)).await,
                other => break other.unwrap(),
            }
        }
        for c in [&c1, &c2] {
            confchg_where(c, "g", |c| c.members.len() == 3).await;
        }
        c1.mcast(&group("g"), Guarantee::Agreed, "before").await.unwrap();
        for c in [&c1, &c2, &c3] {
            assert_eq!(deliveries(c, "g", 1).await[0].1, b"before");
        }
        cluster.kill(3);
        for c in [&c1, &c2] {
            let seen = confchg_where(c, "g", |c| !c.left.is_empty()).await;
            assert_eq!(seen.left, vec![change(3, Reason::NodeDown)]);
            assert_eq!(seen.members, vec![m(1), m(2)]);
        }
        c2.mcast(&group("g"), Guarantee::Safe, "after").await.unwrap();
        for c in [&c1, &c2] {
            assert_eq!(deliveries(c, "g", 1).await[0].1, b"after");
        }
        let groups = c1.groups().await.unwrap();
        assert_eq!(groups, vec![(group("g"), vec![m(1), m(2)])]);
    });
    cluster.wait_for_ring(&[1, 2], FORM_TIMEOUT);
    cluster.stop(EXIT_TIMEOUT);
}

#[test]
fn a_member_that_only_sends_is_never_stalled_by_its_own_messages_coming_back() {
    // More than the handle's event queue: the answers to its sends come behind its own
    // messages, which it does not read until the end.
    const COUNT: usize = 5000;
    let cluster = Cluster::start("cpg-sender", 1, TOKEN_MS, FORM_TIMEOUT);
    let socket = cluster.socket(1);
    let received = std::thread::spawn(move || {
        let cpg = cpg::client::blocking::Cpg::connect(&socket).expect("connect");
        cpg.join(&group("firehose")).unwrap();
        for i in 0..COUNT {
            cpg.mcast(&group("firehose"), Guarantee::Agreed, format!("{i}")).unwrap();
        }
        let mut n = 0;
        while n < COUNT {
            match cpg.next_event_timeout(EVENT_TIMEOUT) {
                Ok(CpgEvent::Deliver(m)) => {
                    assert_eq!(m.data, format!("{n}").as_bytes());
                    n += 1;
                }
                Ok(_) => {}
                Err(e) => panic!("after {n} deliveries: {e}"),
            }
        }
        n
    })
    .join()
    .expect("sender thread");
    assert_eq!(received, COUNT);
    cluster.stop(EXIT_TIMEOUT);
}

/// A member that reads, but slower than another sends, is not dropped: the sender waits for
/// it (try-again while 8 MiB wait for the slow reader), and it gets every message. The slow
/// member is `totemctl cpg listen` whose output the test reads slowly. (A member that stops
/// reading altogether is dropped: ipc_abuse.rs.)
#[test]
fn a_slow_reader_slows_the_sender_and_is_not_dropped() {
    use std::io::BufRead;
    const COUNT: usize = 800;
    const SIZE: usize = 64 << 10; // 50 MiB in all: more than the 32 MiB a member may leave unread
    let cluster = Cluster::start("cpg-slow", 1, TOKEN_MS, FORM_TIMEOUT);
    let rt = runtime();
    let fast = rt.block_on(connect(&cluster.socket(1)));
    rt.block_on(fast.join(&group("slow"))).unwrap();
    let mut listener = std::process::Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["cpg", "listen", "slow", "--socket"])
        .arg(cluster.socket(1))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start totemctl cpg listen");
    let stdout = listener.stdout.take().expect("listener stdout");
    let reader = std::thread::spawn(move || {
        let mut n = 0;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("\"event\":\"deliver\"") {
                n += 1;
                // About 30 MB/s: slower than the sender on its own.
                std::thread::sleep(Duration::from_millis(2));
                if n == COUNT {
                    break;
                }
            }
        }
        n
    });
    rt.block_on(confchg_where(&fast, "slow", |c| c.members.len() == 2));
    rt.block_on(async {
        for _ in 0..COUNT {
            fast.mcast(&group("slow"), Guarantee::Agreed, vec![b'x'; SIZE]).await.unwrap();
        }
    });
    let got = reader.join().expect("reader thread");
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(got, COUNT, "the slow member missed messages");
    assert!(!cluster.logs().contains("not reading its events"), "the slow reader was dropped");
    cluster.stop(EXIT_TIMEOUT);
}
