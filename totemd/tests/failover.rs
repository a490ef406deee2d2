//! Failures of one of three daemons on 127.0.0.1, .2 and .3 with `--token 1000`. A frozen node
//! (SIGSTOP) is learnt of only by token loss: the survivors install a ring without it after
//! token timeout + consensus (Totem paper §4.1: token loss starts the membership protocol). A
//! killed one (SIGKILL) is learnt of sooner: its host answers the next datagram with ICMP port
//! unreachable, and the survivors fail it at once. Either way the node must be merged back in
//! when it returns.
//!
//! These tests assert on the sequence of rings, never on exact timings: they run on loaded
//! machines. The kill-to-new-ring time is printed for the record.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{bind_failed, new_rings, peer_args, stop_all, Daemon, RingLine, TempDir};

/// Attempts when a port picked for a daemon turns out to be taken.
const BIND_ATTEMPTS: usize = 5;
/// Far more than any daemon here needs to stop after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// corosync `token` for every daemon: token loss + consensus (1.2 × token) take about 2.2 s.
const TOKEN_MS: &str = "1000";
/// A bound the daemons never reach: the tests stop them with SIGTERM (or drop kills them).
const RUN_FOR: &str = "120";
/// Generous waits for a loaded 2-core machine.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);
const MERGE_TIMEOUT: Duration = Duration::from_secs(15);
const FULL: &str = "[1, 2, 3]";

/// The wall clock: these tests wait for real processes.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// Seconds since midnight UTC now, comparable with the daemons' log timestamps.
#[allow(clippy::disallowed_methods)]
fn utc_seconds_of_day() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64() % 86_400.0
}

/// Seconds since midnight UTC of a log line starting with tracing's RFC 3339 timestamp
/// (`2026-11-25T15:58:40.454427Z ...`).
fn line_seconds_of_day(line: &str) -> Option<f64> {
    let time = line.split_whitespace().next()?.split_once('T')?.1.strip_suffix('Z')?;
    let mut parts = time.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// `later - earlier` in seconds of day, across a midnight between them.
fn seconds_between(earlier: f64, later: f64) -> f64 {
    let d = later - earlier;
    if d < -43_200.0 {
        d + 86_400.0
    } else {
        d
    }
}

/// A UDP port that was free a moment ago on 127.0.0.`n`.
fn free_port_on(n: u8) -> u16 {
    let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, n], 0))).expect("bind 127.0.0.n");
    socket.local_addr().expect("local address").port()
}

/// Node `node` at 127.0.0.`node`:`ports[node - 1]`, peering the other two.
fn args(state: &TempDir, node: u32, ports: &[u16; 3]) -> Vec<String> {
    let addr = |n: u32| format!("127.0.0.{n}:{}", ports[n as usize - 1]);
    let peers: Vec<(u32, String)> = (1..=3).filter(|&p| p != node).map(|p| (p, addr(p))).collect();
    peer_args(state, node, &addr(node), &peers, TOKEN_MS, Some(RUN_FOR))
}

/// Every `new ring` line of `log` with its ring and its timestamp (seconds of day, if parsed).
fn ring_lines(log: &str) -> Vec<(RingLine, Option<f64>)> {
    log.lines()
        .filter_map(|line| {
            let ring = new_rings(line).pop()?;
            Some((ring, line_seconds_of_day(line)))
        })
        .collect()
}

/// Waits until `daemon` logs, after its first `after` rings, a ring satisfying `pred`; returns
/// that ring and its timestamp, or panics with the log.
fn wait_for_ring(
    daemon: &mut Daemon,
    name: &str,
    after: usize,
    timeout: Duration,
    pred: impl Fn(&RingLine) -> bool,
) -> (RingLine, Option<f64>) {
    let deadline = now() + timeout;
    loop {
        let found = ring_lines(&daemon.log()).into_iter().skip(after).find(|(r, _)| pred(r));
        if let Some(found) = found {
            return found;
        }
        if now() >= deadline || daemon.exited() {
            panic!("{name}: no such ring after its first {after} within {timeout:?}; log:\n{}", daemon.log());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every daemon's last ring is the same ring of [1, 2, 3] with a seq above
/// `above`; returns it.
fn wait_for_one_full_ring(daemons: &mut [Daemon], above: u64, timeout: Duration) -> RingLine {
    let deadline = now() + timeout;
    loop {
        let last: Vec<_> = daemons.iter().map(|d| new_rings(&d.log()).pop()).collect();
        if let Some(Some(first)) = last.first() {
            if first.members == FULL && first.seq > above && last.iter().all(|r| r.as_ref() == Some(first)) {
                return first.clone();
            }
        }
        if now() >= deadline || daemons.iter_mut().any(|d| d.exited()) {
            let logs: Vec<_> =
                daemons.iter().enumerate().map(|(i, d)| format!("node {}:\n{}", i + 1, d.log())).collect();
            panic!(
                "no common ring of {FULL} above seq {above} within {timeout:?}: {last:?}\n{}",
                logs.join("\n")
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Three running daemons that share a ring of [1, 2, 3].
struct Three {
    /// Declared before `dirs` so that the daemons die before their directories go (callers
    /// that take the fields apart bind `dirs` first, for the same reason).
    daemons: Vec<Daemon>,
    dirs: [TempDir; 3],
    ports: [u16; 3],
    /// The first common ring of [1, 2, 3].
    ring: RingLine,
}

/// Starts nodes 1, 2, 3 and waits until all of them installed the same ring of [1, 2, 3].
/// None when a port turned out to be taken (the caller retries with new ports).
fn start_three(name: &str) -> Option<Three> {
    let dirs = [1, 2, 3].map(|n| TempDir::new(&format!("{name}-{n}")));
    let ports = [free_port_on(1), free_port_on(2), free_port_on(3)];
    let mut daemons: Vec<Daemon> =
        (1..=3).map(|n| Daemon::spawn(&args(&dirs[n as usize - 1], n, &ports))).collect();
    let deadline = now() + FORM_TIMEOUT;
    loop {
        if daemons.iter().any(|d| bind_failed(&d.log())) {
            return None;
        }
        let last: Vec<_> = daemons.iter().map(|d| new_rings(&d.log()).pop()).collect();
        if let Some(Some(first)) = last.first() {
            if first.members == FULL && last.iter().all(|r| r.as_ref() == Some(first)) {
                let ring = first.clone();
                return Some(Three { daemons, dirs, ports, ring });
            }
        }
        if now() >= deadline || daemons.iter_mut().any(|d| d.exited()) {
            let logs: Vec<_> =
                daemons.iter().enumerate().map(|(i, d)| format!("node {}:\n{}", i + 1, d.log())).collect();
            panic!("the three daemons formed no common ring of {FULL}: {last:?}\n{}", logs.join("\n"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn signal(daemon: &Daemon, sig: &str) {
    let status = Command::new("kill").args([sig, &daemon.pid().to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {sig} {} failed", daemon.pid());
}

/// Node 3 dies without a word (SIGKILL): its host answers port unreachable, so nodes 1 and 2
/// fail it without waiting for the token loss, and install [1, 2]. Node 3 restarted on the same state directory is merged back into a ring of
/// [1, 2, 3] with a ring seq above every ring before (ring ids only increase).
#[test]
fn kill_9_one_of_three_then_the_others_form_a_new_ring_and_it_rejoins() {
    for _ in 0..BIND_ATTEMPTS {
        let Some(Three { dirs, ports, mut daemons, ring: first }) = start_three("kill9") else { continue };
        let before: Vec<usize> = daemons.iter().map(|d| new_rings(&d.log()).len()).collect();

        let d3 = daemons.pop().expect("node 3");
        let killed_at = utc_seconds_of_day();
        let killed_instant = now();
        signal(&d3, "-9");
        let e3 = d3.wait(EXIT_TIMEOUT);
        assert!(!e3.status.success(), "node 3 was not killed:\n{}", e3.log);

        let mut survivor_rings = Vec::new();
        for (i, daemon) in daemons.iter_mut().enumerate() {
            let name = format!("node {}", i + 1);
            let ring = wait_for_ring(daemon, &name, before[i], FAILOVER_TIMEOUT, |r| r.members == "[1, 2]");
            survivor_rings.push(ring);
        }
        let wall = killed_instant.elapsed().as_secs_f64();
        assert_eq!(survivor_rings[0].0, survivor_rings[1].0, "the survivors installed different rings");
        let failed = &survivor_rings[0].0;
        assert!(failed.seq > first.seq, "ring {failed:?} not beyond the first ring {first:?}");
        let logged: Vec<_> =
            survivor_rings.iter().filter_map(|(_, at)| at.map(|at| seconds_between(killed_at, at))).collect();
        eprintln!(
            "failover: token {TOKEN_MS} ms: kill -9 of node 3 to new ring [1, 2]: by log timestamps {} \
             (nodes 1, 2); by wall clock at most {wall:.3} s",
            logged.iter().map(|s| format!("{s:.3} s")).collect::<Vec<_>>().join(", ")
        );
        assert!(logged.iter().all(|&s| s < 10.0), "the survivors took too long: {logged:?}");
        assert!(
            daemons.iter().any(|d| d.log().contains("node 3 answered port unreachable")),
            "no survivor heard node 3's host report its port closed:\n{}",
            daemons[0].log()
        );

        let d3 = Daemon::spawn(&args(&dirs[2], 3, &ports));
        daemons.push(d3);
        let back = wait_for_one_full_ring(&mut daemons, failed.seq, MERGE_TIMEOUT);
        assert!(back.seq > first.seq, "rejoined ring {back:?} not beyond {first:?}");
        eprintln!("failover: rings {first:?} -> {failed:?} -> {back:?}");
        stop_all(EXIT_TIMEOUT, daemons);
        return;
    }
    panic!("no free ports on 127.0.0.1-3 after {BIND_ATTEMPTS} attempts");
}

/// Node 2 frozen (SIGSTOP) longer than token + consensus is failed by nodes 1 and 3, which
/// install [1, 3]; thawed (SIGCONT), it finds itself out of the ring and the three merge into
/// one ring of [1, 2, 3] again.
#[test]
fn sigstop_then_sigcont_one_node() {
    for _ in 0..BIND_ATTEMPTS {
        let Some(Three { dirs: _dirs, mut daemons, ring: first, .. }) = start_three("sigstop") else {
            continue;
        };
        let before: Vec<usize> = daemons.iter().map(|d| new_rings(&d.log()).len()).collect();

        let stopped_at = now();
        signal(&daemons[1], "-STOP");
        let mut split = Vec::new();
        for i in [0, 2] {
            let name = format!("node {}", i + 1);
            let (ring, _) =
                wait_for_ring(&mut daemons[i], &name, before[i], FAILOVER_TIMEOUT, |r| r.members == "[1, 3]");
            split.push(ring);
        }
        let split_after = stopped_at.elapsed();
        assert_eq!(split[0], split[1], "nodes 1 and 3 installed different rings");
        assert!(split[0].seq > first.seq, "ring {:?} not beyond {first:?}", split[0]);
        // Keep node 2 frozen at least 4 s in all, well past token + consensus.
        if let Some(rest) = Duration::from_secs(4).checked_sub(stopped_at.elapsed()) {
            thread::sleep(rest);
        }
        signal(&daemons[1], "-CONT");

        let back = wait_for_one_full_ring(&mut daemons, split[0].seq, MERGE_TIMEOUT);
        eprintln!(
            "failover: token {TOKEN_MS} ms: SIGSTOP of node 2 to new ring [1, 3] within {:.3} s; rings \
             {first:?} -> {:?} -> {back:?}",
            split_after.as_secs_f64(),
            split[0]
        );
        stop_all(EXIT_TIMEOUT, daemons);
        return;
    }
    panic!("no free ports on 127.0.0.1-3 after {BIND_ATTEMPTS} attempts");
}
