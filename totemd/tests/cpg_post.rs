//! Pipelined multicast (`Cpg::post`, `try_post`, `flush`) through real daemons.
//!
//! The rules checked (commit e15c21f): posted messages are delivered to every member in the
//! order they were posted, and none is lost; a queued message the daemon cannot take yet (a
//! local member has more than `CLIENT_BACKLOG_SOFT` unread) is held, not answered `TryAgain`,
//! so the poster's window fills and it waits; nothing its client sent after a held message is
//! served before it; an error the daemon answers to a posted message (`NotExist`) comes back
//! from the next post or the flush.
//!
//! A slow member is `totemctl cpg listen` (another process: a group member is a node id and a
//! pid) stopped with SIGSTOP and resumed with SIGCONT well within `CLIENT_STALL` (5 s), so the
//! daemon must wait for it, not drop it.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::cluster::Cluster;
use common::cpg::{connect, group, runtime};
use common::now;
use cpg::client::{Cpg, CpgError};
use cpg::{Confchg, CpgEvent, Guarantee, MemberId};

const TOKEN_MS: u32 = 1000;
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a held message must stay held for the test to call it held.
const HELD_FOR: Duration = Duration::from_millis(300);

/// `cpg.post`, failing the test if it waits longer than [`EVENT_TIMEOUT`] (a window that never
/// opens again).
async fn post(cpg: &Cpg, name: &str, data: impl Into<bytes::Bytes>) -> Result<(), CpgError> {
    within(EVENT_TIMEOUT, "post", cpg.post(&group(name), Guarantee::Agreed, data)).await
}

/// `future`, or a panic naming `what` after `timeout`.
async fn within<T>(timeout: Duration, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(timeout, future).await.unwrap_or_else(|_| panic!("{what}: not within {timeout:?}"))
}

async fn next(cpg: &Cpg, what: &str) -> CpgEvent {
    match within(EVENT_TIMEOUT, what, cpg.next_event()).await {
        Some(event) => event,
        None => panic!("connection closed while waiting for {what}"),
    }
}

async fn confchg_where(cpg: &Cpg, name: &str, pred: impl Fn(&Confchg) -> bool) -> Confchg {
    loop {
        if let CpgEvent::Confchg(c) = next(cpg, name).await {
            if c.group == group(name) && pred(&c) {
                return c;
            }
        }
    }
}

/// Message `seq` of `size` bytes (at least 64): `SSSSSSSS:LLLLLLLL:` then letters that depend
/// on both, so a message cut, merged or mixed up with another is seen. ASCII, so `totemctl cpg
/// listen` prints it as text.
fn payload(seq: u32, size: usize) -> Vec<u8> {
    let mut data = format!("{seq:08}:{size:08}:").into_bytes();
    let start = data.len();
    data.extend((start..size).map(|j| b'a' + ((seq as usize + j) % 26) as u8));
    data
}

/// The seq of a [`payload`], after checking the rest of it.
fn seq_of(data: &[u8]) -> u32 {
    let text = std::str::from_utf8(data).expect("payload is ASCII");
    let header = text.get(..18).unwrap_or_else(|| panic!("payload too short: {text:?}"));
    let seq: u32 = header[..8].parse().unwrap_or_else(|_| panic!("bad header {header:?}"));
    let size: usize = header[9..17].parse().unwrap_or_else(|_| panic!("bad header {header:?}"));
    assert_eq!(data.len(), size, "message {seq} arrived with another length");
    assert!(data == payload(seq, size).as_slice(), "message {seq} arrived changed");
    seq
}

/// Sizes from 64 B to 200 KiB: mostly small, some large (fragmented on the ring).
fn mixed_size(seq: u32) -> usize {
    match seq % 16 {
        0 => 200 << 10,
        1 | 2 => 64 << 10,
        3..=6 => 8 << 10,
        _ => 64 + (seq as usize * 997) % 2000,
    }
}

/// Takes `cpg`'s events until `count` deliveries of `name`, checking they are seq 0, 1, ... in
/// that order, all from `sender`.
async fn in_post_order(cpg: &Cpg, name: &str, sender: MemberId, count: u32) {
    let mut want = 0;
    while want < count {
        if let CpgEvent::Deliver(m) = next(cpg, &format!("delivery {want} of {count}")).await {
            assert_eq!(m.group, group(name));
            assert_eq!(m.sender, sender);
            let seq = seq_of(&m.data);
            assert_eq!(seq, want, "delivered out of post order (or one was lost)");
            want += 1;
        }
    }
}

/// Panics if a daemon dropped a client.
fn assert_nobody_dropped(cluster: &Cluster) {
    let logs = cluster.logs();
    for bad in ["IPC client dropped", "not reading its events"] {
        assert!(!logs.contains(bad), "a client was dropped ({bad}):\n{logs}");
    }
}

#[test]
fn posted_messages_of_mixed_sizes_reach_every_member_in_post_order() {
    const COUNT: u32 = 3000;
    let cluster = Cluster::start("post-order", 2, TOKEN_MS, FORM_TIMEOUT);
    let rt = runtime();
    rt.block_on(async {
        let sender = Arc::new(connect(&cluster.socket(1)).await);
        let other = Arc::new(connect(&cluster.socket(2)).await);
        sender.join(&group("posts")).await.unwrap();
        other.join(&group("posts")).await.unwrap();
        for c in [&sender, &other] {
            confchg_where(c, "posts", |c| c.members.len() == 2).await;
        }
        let from = MemberId { node_id: 1, pid: std::process::id() };
        let readers: Vec<_> = [sender.clone(), other.clone()]
            .into_iter()
            .map(|c| tokio::spawn(async move { in_post_order(&c, "posts", from, COUNT).await }))
            .collect();
        let started = now();
        for seq in 0..COUNT {
            // A TryAgain here (or any error) is the daemon refusing a message it must hold.
            if let Err(e) = post(&sender, "posts", payload(seq, mixed_size(seq))).await {
                panic!("post {seq}: {e}");
            }
        }
        within(EVENT_TIMEOUT, "flush", sender.flush()).await.expect("every posted message taken");
        for r in readers {
            within(EVENT_TIMEOUT, "every delivery", r).await.unwrap();
        }
        eprintln!("{COUNT} posted messages delivered to both members in {:?}", started.elapsed());
        assert!(!sender.is_closed() && !other.is_closed());
    });
    assert_nobody_dropped(&cluster);
    cluster.stop(EXIT_TIMEOUT);
}

#[test]
fn posting_to_a_group_not_joined_is_not_exist_at_the_flush_or_the_next_post() {
    let cluster = Cluster::start("post-notexist", 1, TOKEN_MS, FORM_TIMEOUT);
    let rt = runtime();
    rt.block_on(async {
        let cpg = connect(&cluster.socket(1)).await;
        cpg.join(&group("joined")).await.unwrap();
        confchg_where(&cpg, "joined", |c| c.members.len() == 1).await;
        // The post itself succeeds: only the daemon knows.
        post(&cpg, "elsewhere", "a").await.unwrap();
        let r = within(EVENT_TIMEOUT, "flush", cpg.flush()).await;
        assert!(matches!(r, Err(CpgError::NotExist)), "{r:?}");
        // Reported once.
        within(EVENT_TIMEOUT, "flush", cpg.flush()).await.unwrap();

        post(&cpg, "elsewhere", "b").await.unwrap();
        // Answered after the post (the daemon serves a client's requests in order): the post's
        // error answer has been read by now.
        within(EVENT_TIMEOUT, "membership", cpg.membership(&group("joined"))).await.unwrap();
        let r = post(&cpg, "joined", payload(0, 64)).await;
        assert!(matches!(r, Err(CpgError::NotExist)), "{r:?}");
        // That post sent nothing: the next delivery is the one after it.
        post(&cpg, "joined", payload(1, 64)).await.unwrap();
        within(EVENT_TIMEOUT, "flush", cpg.flush()).await.unwrap();
        loop {
            if let CpgEvent::Deliver(m) = next(&cpg, "the message posted after the error").await {
                assert_eq!(seq_of(&m.data), 1, "the post that returned the error sent its message");
                break;
            }
        }
    });
    cluster.stop(EXIT_TIMEOUT);
}

/// `totemctl cpg listen GROUP` on a node, its output lines read on a thread.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Listener {
    fn start(socket: &Path, name: &str) -> Listener {
        let mut child = Command::new(env!("CARGO_BIN_EXE_totemctl"))
            .args(["cpg", "listen", name, "--socket"])
            .arg(socket)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start totemctl cpg listen");
        let stdout = child.stdout.take().expect("listener stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Listener { child, lines }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {}", self.pid());
    }

    /// Stops the process: it reads nothing more from the daemon.
    fn pause(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }

    /// The next event it printed.
    fn next(&self, what: &str) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(EVENT_TIMEOUT)
            .unwrap_or_else(|e| panic!("totemctl cpg listen printed no {what}: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Skips events until a confchg of `members` members.
    fn confchg_of(&self, members: usize) -> serde_json::Value {
        loop {
            let event = self.next("confchg");
            if event["event"] == "confchg" && event["members"].as_array().map(Vec::len) == Some(members) {
                return event;
            }
        }
    }

    /// Checks that the next `count` deliveries are seq 0, 1, ... from `sender`.
    fn in_post_order(&self, sender: MemberId, count: u32) {
        for want in 0..count {
            let event = loop {
                let event = self.next(&format!("delivery {want} of {count}"));
                if event["event"] == "deliver" {
                    break event;
                }
            };
            assert_eq!((event["nodeid"].as_u64(), event["pid"].as_u64()), (Some(1), Some(sender.pid.into())));
            let data = event["data"].as_str().expect("text data");
            assert_eq!(seq_of(data.as_bytes()), want, "delivered out of post order (or one was lost)");
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Size of the messages posted while a member is stopped: 8 MiB unread is 256 of them, and
/// the default window fills with far fewer.
const HELD_SIZE: usize = 32 << 10;

/// A one-node cluster, a poster joined to `name` with a task checking its own deliveries, and a
/// second member stopped once it has seen the poster's join.
struct Stalled {
    cluster: Cluster,
    rt: tokio::runtime::Runtime,
    poster: Arc<Cpg>,
    slow: Listener,
    me: MemberId,
}

impl Stalled {
    fn start(name: &str) -> Stalled {
        let cluster = Cluster::start(name, 1, TOKEN_MS, FORM_TIMEOUT);
        let rt = runtime();
        let poster = Arc::new(rt.block_on(connect(&cluster.socket(1))));
        rt.block_on(poster.join(&group(name))).unwrap();
        let slow = Listener::start(&cluster.socket(1), name);
        rt.block_on(confchg_where(&poster, name, |c| c.members.len() == 2));
        slow.confchg_of(2);
        slow.pause();
        Stalled { cluster, rt, poster, slow, me: MemberId { node_id: 1, pid: std::process::id() } }
    }

    /// The poster and the slow member, sorted as `membership` lists them.
    fn both(&self) -> Vec<MemberId> {
        let mut both = vec![self.me, MemberId { node_id: 1, pid: self.slow.pid() }];
        both.sort();
        both
    }

    /// A task taking the poster's events, checking its own deliveries come in post order.
    fn own_deliveries(&self, name: &'static str) -> Deliveries {
        let poster = self.poster.clone();
        let me = self.me;
        let seen = Arc::new(AtomicU32::new(0));
        let task = self.rt.spawn({
            let seen = seen.clone();
            async move {
                while let Some(event) = poster.next_event().await {
                    if let CpgEvent::Deliver(m) = event {
                        assert_eq!((m.group, m.sender), (group(name), me));
                        let want = seen.load(Ordering::Relaxed);
                        assert_eq!(seq_of(&m.data), want, "delivered out of post order (or one was lost)");
                        seen.store(want + 1, Ordering::Relaxed);
                    }
                }
            }
        });
        Deliveries { seen, task }
    }

    /// Posts with `try_post` until the window stays full for [`HELD_FOR`]: the daemon holds a
    /// message and answers nothing after it. Returns how many were posted (seq 0..n).
    fn fill_window(&self, name: &str) -> u32 {
        let deadline = now() + Duration::from_secs(4);
        let mut posted = 0;
        let mut full_since = None;
        loop {
            match self.poster.try_post(&group(name), Guarantee::Agreed, payload(posted, HELD_SIZE)) {
                Ok(()) => {
                    posted += 1;
                    full_since = None;
                }
                Err(CpgError::TryAgain) => {
                    if full_since.get_or_insert_with(now).elapsed() >= HELD_FOR {
                        return posted;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("try_post {posted}: {e}"),
            }
            assert!(
                now() < deadline,
                "the window never stayed full: {posted} posted while a member reads nothing"
            );
        }
    }
}

/// The poster's own deliveries, counted by a task that panics at one out of order.
struct Deliveries {
    seen: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Deliveries {
    fn seen(&self) -> u32 {
        self.seen.load(Ordering::Relaxed)
    }
}

#[test]
fn a_held_post_fills_the_window_and_every_message_arrives_once_the_slow_member_reads() {
    const NAME: &str = "post-held";
    const MORE: u32 = 200;
    let s = Stalled::start(NAME);
    let own = s.own_deliveries(NAME);
    let held = s.fill_window(NAME);
    // More than 8 MiB must be unread before the daemon holds, then the window fills.
    assert!(held as usize * HELD_SIZE > 8 << 20, "only {held} posted before the window stayed full");
    // A blocking post waits too.
    let blocked = {
        let poster = s.poster.clone();
        s.rt.spawn(
            async move { poster.post(&group(NAME), Guarantee::Agreed, payload(held, HELD_SIZE)).await },
        )
    };
    std::thread::sleep(HELD_FOR);
    assert!(!blocked.is_finished(), "post did not wait while the daemon held a message");
    assert_nobody_dropped(&s.cluster);

    s.slow.resume();
    s.rt.block_on(within(EVENT_TIMEOUT, "the blocked post", blocked)).unwrap().unwrap();
    let total = held + 1 + MORE;
    s.rt.block_on(async {
        for seq in held + 1..total {
            post(&s.poster, NAME, payload(seq, HELD_SIZE)).await.unwrap();
        }
        within(EVENT_TIMEOUT, "flush", s.poster.flush()).await.unwrap();
    });
    s.slow.in_post_order(s.me, total);
    // The poster's own copies: every one, in order too.
    let deadline = now() + EVENT_TIMEOUT;
    while own.seen() < total && !own.task.is_finished() && now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(own.seen(), total, "the poster's own deliveries stopped short");
    assert!(!s.poster.is_closed());
    let members =
        s.rt.block_on(within(EVENT_TIMEOUT, "membership", s.poster.membership(&group(NAME)))).unwrap();
    assert_eq!(members, s.both(), "a member left or was dropped");
    assert_nobody_dropped(&s.cluster);
    own.task.abort();
    let Stalled { cluster, slow, .. } = s;
    drop(slow);
    cluster.stop(EXIT_TIMEOUT);
}

#[test]
fn a_request_behind_a_held_post_is_served_after_it() {
    const NAME: &str = "post-order-held";
    let s = Stalled::start(NAME);
    let held = s.fill_window(NAME);
    // The leave goes out behind the held messages: it must not be applied before them (they
    // would then fail NotExist and be lost).
    let leave = {
        let poster = s.poster.clone();
        s.rt.spawn(async move { poster.leave(&group(NAME)).await })
    };
    std::thread::sleep(HELD_FOR);
    assert!(!leave.is_finished(), "a request behind a held message was answered first");
    // Another client is served meanwhile, and sees the poster still a member.
    let observer = s.rt.block_on(connect(&s.cluster.socket(1)));
    let members =
        s.rt.block_on(within(EVENT_TIMEOUT, "membership", observer.membership(&group(NAME)))).unwrap();
    assert_eq!(members, s.both(), "the leave was applied while the messages before it were held");

    s.slow.resume();
    s.rt.block_on(within(EVENT_TIMEOUT, "the leave", leave)).unwrap().unwrap();
    // Every held message was taken while the poster was still a member.
    s.rt.block_on(within(EVENT_TIMEOUT, "flush", s.poster.flush())).unwrap();
    s.slow.in_post_order(s.me, held);
    let left = s.slow.confchg_of(1);
    let want = serde_json::json!([{"nodeid": 1, "pid": s.me.pid, "reason": "leave"}]);
    assert_eq!(left["left"], want, "{left}");
    assert_nobody_dropped(&s.cluster);
    let Stalled { cluster, slow, .. } = s;
    drop(slow);
    cluster.stop(EXIT_TIMEOUT);
}
