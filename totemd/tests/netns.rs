//! Three hosts in network namespaces: a partition made by taking a link down, then healed.
//!
//! The test builds its own topology with `ip` (iproute2) only: namespaces `tn1`, `tn2`, `tn3`
//! (one `totemd` each, at 10.213.0.X:5405 on a veth) and `tbr`, which holds bridge `br0` with
//! the other end of every veth. The 10.213.0.0/24 addresses exist only inside these namespaces,
//! so nothing is ever sent outside them. Names carry the test's pid so parallel runs do not
//! collide. A drop guard deletes the namespaces (and any veth still in the root namespace) also
//! when the test fails.
//!
//! It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip netns`: without them it prints
//! `skipped: needs root and ip netns` and passes. We run as root here and in CI.
//!
//! Cutting one of two links while the membership holds is `netns_links.rs`.
//!
//! Like the loopback failover tests, this asserts on the sequence of rings, never on timings.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{new_rings, Daemon, RingLine, TempDir};

/// corosync `token` for every daemon: token loss + consensus (1.2 × token) take about 2.2 s.
const TOKEN_MS: &str = "1000";
/// A bound the daemons never reach: the test stops them with SIGTERM (or drop kills them).
const RUN_FOR: &str = "120";
/// Generous waits for a loaded 2-core machine.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
const SPLIT_TIMEOUT: Duration = Duration::from_secs(20);
const MERGE_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const FULL: &str = "[1, 2, 3]";
const SKIP: &str = "skipped: needs root and ip netns";

/// The wall clock: this test waits for real processes.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// Runs `ip args`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Like [`ip`], panicking on failure (the guard still cleans up).
fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// Whether the effective user is root, from /proc (no libc in this crate's tests).
fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// The namespaces and veths of one test run. Dropping it deletes them all: first the
/// namespaces (which takes the veths inside with them), then any veth still left in the root
/// namespace because setup stopped before moving it. Drop it after the daemons: a namespace
/// only goes away once no process is left in it.
struct Topology {
    /// `tn1`, `tn2`, `tn3` (node namespaces) and `tbr` (the bridge's), with the run's suffix.
    nodes: [String; 3],
    bridge: String,
    /// Node-side veth names (in `nodes[i]`), and bridge-side ones (in `bridge`).
    node_links: [String; 3],
    bridge_links: [String; 3],
    /// What was created so far, so that drop deletes only that.
    added_netns: Vec<String>,
    added_links: Vec<String>,
}

impl Topology {
    /// Names unique to this process and call.
    fn new() -> Topology {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let run = format!("{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        // Interface names must fit in 15 bytes: "tv" + pid (≤ 7 digits) + "x" + counter + "n1".
        Topology {
            nodes: [1, 2, 3].map(|i| format!("tn{i}-{run}")),
            bridge: format!("tbr-{run}"),
            node_links: [1, 2, 3].map(|i| format!("tv{run}n{i}")),
            bridge_links: [1, 2, 3].map(|i| format!("tv{run}b{i}")),
            added_netns: Vec::new(),
            added_links: Vec::new(),
        }
    }

    /// Creates the namespaces; false (after printing why) when this host does not let us.
    fn add_namespaces(&mut self) -> bool {
        if !is_root() {
            println!("{SKIP} (not running as root)");
            return false;
        }
        let names: Vec<String> = self.nodes.iter().chain([&self.bridge]).cloned().collect();
        for name in names {
            match ip(&["netns", "add", &name]) {
                Ok(()) => self.added_netns.push(name),
                Err(e) if self.added_netns.is_empty() && is_not_permitted(&e) => {
                    println!("{SKIP} ({e})");
                    return false;
                }
                Err(e) => panic!("{e}"),
            }
        }
        true
    }

    /// Veths from each node namespace to `br0` in the bridge namespace; everything up.
    fn wire(&mut self) {
        let br = self.bridge.clone();
        must(&["-n", &br, "link", "set", "lo", "up"]);
        must(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &br, "link", "set", "br0", "up"]);
        for i in 0..3 {
            let (ns, node_link, bridge_link) =
                (self.nodes[i].clone(), self.node_links[i].clone(), self.bridge_links[i].clone());
            must(&["link", "add", &node_link, "type", "veth", "peer", "name", &bridge_link]);
            self.added_links.extend([node_link.clone(), bridge_link.clone()]);
            must(&["link", "set", &node_link, "netns", &ns]);
            must(&["link", "set", &bridge_link, "netns", &br]);
            must(&["-n", &br, "link", "set", &bridge_link, "master", "br0"]);
            must(&["-n", &br, "link", "set", &bridge_link, "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            must(&["-n", &ns, "addr", "add", &format!("{}/24", address(i + 1)), "dev", &node_link]);
            must(&["-n", &ns, "link", "set", &node_link, "up"]);
        }
    }

    /// Sets node `node`'s bridge-side veth up or down: the cable is cut or plugged back.
    fn set_bridge_port(&self, node: usize, state: &str) {
        must(&["-n", &self.bridge, "link", "set", &self.bridge_links[node - 1], state]);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in self.added_netns.iter().rev() {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("cleanup: {e}");
            }
        }
        for link in &self.added_links {
            // Only links setup did not get to move are still here; the rest went with their
            // namespace (a veth pair dies with either end).
            if ip(&["link", "show", "dev", link]).is_ok() {
                if let Err(e) = ip(&["link", "del", link]) {
                    eprintln!("cleanup: {e}");
                }
            }
        }
    }
}

fn is_not_permitted(err: &str) -> bool {
    err.contains("Permission denied")
        || err.contains("Operation not permitted")
        || err.contains("cannot run ip")
}

/// Node `node`'s address, which exists only inside its namespace.
fn address(node: usize) -> String {
    format!("10.213.0.{node}")
}

/// Node `node` at 10.213.0.`node`:5405, peering the other two.
fn args(state: &TempDir, node: usize) -> Vec<String> {
    let mut args = vec![
        "--state-dir".to_string(),
        state.arg(),
        "--nodeid".to_string(),
        node.to_string(),
        "--bind".to_string(),
        format!("{}:5405", address(node)),
        "--token".to_string(),
        TOKEN_MS.to_string(),
        "--run-for".to_string(),
        RUN_FOR.to_string(),
    ];
    for peer in (1..=3).filter(|&p| p != node) {
        args.extend(["--peer".to_string(), format!("{peer}={}:5405", address(peer))]);
    }
    args
}

fn all_logs(daemons: &[Daemon]) -> String {
    let logs: Vec<_> =
        daemons.iter().enumerate().map(|(i, d)| format!("node {}:\n{}", i + 1, d.log())).collect();
    logs.join("\n")
}

/// Every daemon's rings so far, in order.
fn rings_of(daemons: &[Daemon]) -> Vec<Vec<RingLine>> {
    daemons.iter().map(|d| new_rings(&d.log())).collect()
}

/// Waits until `done` holds of every daemon's rings so far; returns them. Panics with every
/// log on timeout or if a daemon exits.
fn wait_for(
    daemons: &mut [Daemon],
    what: &str,
    timeout: Duration,
    done: impl Fn(&[Vec<RingLine>]) -> bool,
) -> Vec<Vec<RingLine>> {
    let deadline = now() + timeout;
    loop {
        let rings = rings_of(daemons);
        if done(&rings) {
            return rings;
        }
        if now() >= deadline || daemons.iter_mut().any(|d| d.exited()) {
            panic!("{what}: not within {timeout:?}; rings: {rings:?}\n{}", all_logs(daemons));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The one ring of [1, 2, 3] every daemon installed last, if they agree, with a seq above `above`.
fn common_full_ring(rings: &[Vec<RingLine>], above: u64) -> Option<RingLine> {
    let first = rings.first()?.last()?;
    let agree = rings.iter().all(|r| r.last() == Some(first));
    (agree && first.members == FULL && first.seq > above).then(|| first.clone())
}

/// SIGTERM every daemon and check each stopped cleanly.
fn stop_all(daemons: Vec<Daemon>) {
    for daemon in &daemons {
        daemon.terminate();
    }
    for (i, daemon) in daemons.into_iter().enumerate() {
        let exit = daemon.wait(EXIT_TIMEOUT);
        assert!(exit.status.success(), "node {} did not stop cleanly:\n{}", i + 1, exit.log);
    }
}

/// Node 3's cable is cut (its bridge port goes down): nodes 1 and 2 lose the token, run
/// consensus and install [1, 2]; node 3, alone, installs [3] (Totem paper §4.1: token loss
/// starts the membership protocol, and each side forms the ring it can reach). Plugged back
/// in, the rings merge into one ring of [1, 2, 3] whose seq is above every ring before it
/// (ring ids only increase).
#[test]
fn partition_by_link_down_then_heal_merges_the_rings() {
    // Declared first so that it drops last, after the daemons have left its namespaces.
    let mut topology = Topology::new();
    if !topology.add_namespaces() {
        return;
    }
    topology.wire();
    let dirs = [1, 2, 3].map(|n| TempDir::new(&format!("netns-{n}")));
    let mut daemons: Vec<Daemon> =
        (1..=3).map(|n| Daemon::spawn_in_netns(&topology.nodes[n - 1], &args(&dirs[n - 1], n))).collect();

    let formed = wait_for(&mut daemons, "form one ring of [1, 2, 3]", FORM_TIMEOUT, |r| {
        common_full_ring(r, 0).is_some()
    });
    let first = common_full_ring(&formed, 0).expect("formed");
    let before: Vec<usize> = formed.iter().map(Vec::len).collect();

    topology.set_bridge_port(3, "down");
    let expected = ["[1, 2]", "[1, 2]", "[3]"];
    let split = wait_for(&mut daemons, "split into [1, 2] and [3]", SPLIT_TIMEOUT, |rings| {
        rings
            .iter()
            .zip(&before)
            .zip(expected)
            .all(|((r, &n), want)| r[n..].iter().any(|x| x.members == want))
    });
    let split_rings: Vec<RingLine> = split
        .iter()
        .zip(&before)
        .zip(expected)
        .map(|((r, &n), want)| r[n..].iter().find(|x| x.members == want).expect("found").clone())
        .collect();
    assert_eq!(split_rings[0], split_rings[1], "nodes 1 and 2 installed different rings");
    for ring in &split_rings {
        assert!(ring.seq > first.seq, "ring {ring:?} not beyond the first ring {first:?}");
    }
    // Keep the cable out a while after the split, so that the sides do not just race back.
    thread::sleep(Duration::from_secs(2));
    for (i, rings) in rings_of(&daemons).iter().enumerate() {
        let stray: Vec<_> = rings[before[i]..].iter().filter(|r| r.members != expected[i]).collect();
        assert!(stray.is_empty(), "node {} installed other rings while cut off: {stray:?}", i + 1);
    }

    topology.set_bridge_port(3, "up");
    let above = split_rings.iter().map(|r| r.seq).max().expect("three rings");
    let merged = wait_for(&mut daemons, "merge into one ring of [1, 2, 3]", MERGE_TIMEOUT, |r| {
        common_full_ring(r, above).is_some()
    });
    let back = common_full_ring(&merged, above).expect("merged");
    for (i, rings) in merged.iter().enumerate() {
        let seqs: Vec<u64> = rings.iter().map(|r| r.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "node {}: ring seqs not increasing: {rings:?}", i + 1);
        eprintln!(
            "netns: node {}: rings {:?}",
            i + 1,
            rings.iter().map(|r| format!("{}.{} {}", r.representative, r.seq, r.members)).collect::<Vec<_>>()
        );
    }
    eprintln!("netns: {first:?} -> {:?} / {:?} -> {back:?}", split_rings[0], split_rings[2]);
    stop_all(daemons);
}
