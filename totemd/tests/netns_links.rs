//! Three hosts with two links each (corosync's knet redundancy): one link fails and the
//! membership holds; both fail and the cluster splits; they recover and it merges.
//!
//! The test builds its own topology with `ip` (iproute2) only: namespaces for nodes 1..3 (one
//! `totemd` each) and one namespace holding two bridges, `br0` for link 0 (10.213.1.0/24) and
//! `br1` for link 1 (10.213.2.0/24). Each node has one veth to each bridge. These addresses
//! exist only inside the test's namespaces, so nothing is ever sent outside them. Names carry
//! the test's pid so parallel runs do not collide; a drop guard deletes everything also when
//! the test fails.
//!
//! The daemons start from a corosync.conf the test writes (`transport: knet`, two interfaces,
//! `ring0_addr` and `ring1_addr`, `token: 1000`), each with `--nodeid` and `--state-dir`.
//!
//! It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip netns`: without them it prints
//! `skipped: needs root and ip netns` and passes.
//!
//! Like the other process tests, it asserts on the sequence of rings and on log lines, never
//! on timings.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{new_rings, Daemon, RingLine, TempDir};

/// A bound the daemons never reach: the test stops them with SIGTERM (or drop kills them).
const RUN_FOR: &str = "120";
/// Generous waits for a loaded 2-core machine.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
const SPLIT_TIMEOUT: Duration = Duration::from_secs(20);
const MERGE_TIMEOUT: Duration = Duration::from_secs(20);
const LINK_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one link stays cut: well beyond token (1000 ms) + consensus (1200 ms), so a
/// membership change caused by it would have happened.
const ONE_LINK_CUT: Duration = Duration::from_secs(5);
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

fn is_not_permitted(err: &str) -> bool {
    err.contains("Permission denied")
        || err.contains("Operation not permitted")
        || err.contains("cannot run ip")
}

/// Number of links every node has.
const LINKS: usize = 2;

/// The namespaces and veths of one test run; dropping it deletes them all (namespaces first,
/// which takes their veths along, then any veth setup left in the root namespace). Drop it
/// after the daemons: a namespace only goes away once no process is left in it.
struct Topology {
    /// Node namespaces, with the run's suffix.
    nodes: [String; 3],
    /// The namespace of both bridges.
    bridge: String,
    /// `node_links[i][l]`: node i+1's veth on link l (in `nodes[i]`).
    node_links: [[String; LINKS]; 3],
    /// `bridge_links[i][l]`: its other end, a port of bridge `br{l}`.
    bridge_links: [[String; LINKS]; 3],
    added_netns: Vec<String>,
    added_links: Vec<String>,
}

impl Topology {
    fn new() -> Topology {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let run = format!("{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        // Interface names fit in 15 bytes: "tl" + pid (≤ 7 digits) + "x" + counter + "n" + node + link.
        Topology {
            nodes: [1, 2, 3].map(|i| format!("tln{i}-{run}")),
            bridge: format!("tlbr-{run}"),
            node_links: [1, 2, 3].map(|i| [0, 1].map(|l| format!("tl{run}n{i}{l}"))),
            bridge_links: [1, 2, 3].map(|i| [0, 1].map(|l| format!("tl{run}b{i}{l}"))),
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

    /// Bridges `br0` and `br1`, and a veth from every node to each; everything up.
    fn wire(&mut self) {
        let br = self.bridge.clone();
        must(&["-n", &br, "link", "set", "lo", "up"]);
        for l in 0..LINKS {
            let bridge = format!("br{l}");
            must(&["-n", &br, "link", "add", &bridge, "type", "bridge"]);
            must(&["-n", &br, "link", "set", &bridge, "up"]);
        }
        for i in 0..3 {
            let ns = self.nodes[i].clone();
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            for l in 0..LINKS {
                let (node_link, bridge_link) =
                    (self.node_links[i][l].clone(), self.bridge_links[i][l].clone());
                must(&["link", "add", &node_link, "type", "veth", "peer", "name", &bridge_link]);
                self.added_links.extend([node_link.clone(), bridge_link.clone()]);
                must(&["link", "set", &node_link, "netns", &ns]);
                must(&["link", "set", &bridge_link, "netns", &br]);
                must(&["-n", &br, "link", "set", &bridge_link, "master", &format!("br{l}")]);
                must(&["-n", &br, "link", "set", &bridge_link, "up"]);
                must(&["-n", &ns, "addr", "add", &format!("{}/24", address(i + 1, l)), "dev", &node_link]);
                must(&["-n", &ns, "link", "set", &node_link, "up"]);
            }
        }
    }

    /// Sets node `node`'s bridge port on link `link` up or down: that cable is cut or plugged.
    fn set_bridge_port(&self, node: usize, link: usize, state: &str) {
        must(&["-n", &self.bridge, "link", "set", &self.bridge_links[node - 1][link], state]);
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
            if ip(&["link", "show", "dev", link]).is_ok() {
                if let Err(e) = ip(&["link", "del", link]) {
                    eprintln!("cleanup: {e}");
                }
            }
        }
    }
}

/// Node `node`'s address on link `link`, which exists only inside its namespace.
fn address(node: usize, link: usize) -> String {
    format!("10.213.{}.{node}", link + 1)
}

/// The cluster's corosync.conf: knet, links 0 and 1, token 1000 ms.
fn conf() -> String {
    let nodes: String = (1..=3)
        .map(|n| {
            format!(
                "    node {{\n        name: node{n}\n        nodeid: {n}\n        ring0_addr: {}\n        \
                 ring1_addr: {}\n    }}\n",
                address(n, 0),
                address(n, 1)
            )
        })
        .collect();
    format!(
        "totem {{\n    version: 2\n    cluster_name: links\n    transport: knet\n    token: 1000\n    \
         token_coefficient: 0\n    interface {{\n        linknumber: 0\n    }}\n    interface {{\n        \
         linknumber: 1\n    }}\n}}\n\nnodelist {{\n{nodes}}}\n"
    )
}

fn args(conf: &std::path::Path, state: &TempDir, node: usize) -> Vec<String> {
    [
        "--config",
        &conf.display().to_string(),
        "--nodeid",
        &node.to_string(),
        "--state-dir",
        &state.arg(),
        "--run-for",
        RUN_FOR,
    ]
    .map(str::to_string)
    .to_vec()
}

fn all_logs(daemons: &[Daemon]) -> String {
    let logs: Vec<_> =
        daemons.iter().enumerate().map(|(i, d)| format!("node {}:\n{}", i + 1, d.log())).collect();
    logs.join("\n")
}

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

/// Lines of `log` containing `text`.
fn count(log: &str, text: &str) -> usize {
    log.lines().filter(|l| l.contains(text)).count()
}

/// Waits until node `node`'s log has more than `above` lines containing `text`.
fn wait_for_log(daemons: &mut [Daemon], node: usize, text: &str, above: usize) {
    let deadline = now() + LINK_TIMEOUT;
    while count(&daemons[node - 1].log(), text) <= above {
        if now() >= deadline || daemons[node - 1].exited() {
            panic!("node {node}: no new {text:?} within {LINK_TIMEOUT:?}\n{}", all_logs(daemons));
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

/// corosync's knet `link_mode: passive`: with link 0 of node 3 cut, the link layer marks it
/// down and carries Totem over link 1, so no token is lost and no node installs a new ring;
/// plugged back, link 0 comes up again. With both links cut, node 3 is partitioned (Totem
/// paper §4.1: [1, 2] and [3]); with both back, the rings merge into one of [1, 2, 3].
#[test]
fn one_link_down_keeps_the_ring_and_both_down_partitions() {
    // Declared first so that it drops last, after the daemons have left its namespaces.
    let mut topology = Topology::new();
    if !topology.add_namespaces() {
        return;
    }
    topology.wire();
    let conf_dir = TempDir::new("netns-links-conf");
    std::fs::create_dir_all(conf_dir.path()).expect("create conf dir");
    let conf_path: PathBuf = conf_dir.path().join("corosync.conf");
    std::fs::write(&conf_path, conf()).expect("write corosync.conf");
    let dirs = [1, 2, 3].map(|n| TempDir::new(&format!("netns-links-{n}")));
    let mut daemons: Vec<Daemon> = (1..=3)
        .map(|n| Daemon::spawn_in_netns(&topology.nodes[n - 1], &args(&conf_path, &dirs[n - 1], n)))
        .collect();

    let formed = wait_for(&mut daemons, "form one ring of [1, 2, 3]", FORM_TIMEOUT, |r| {
        common_full_ring(r, 0).is_some()
    });
    let first = common_full_ring(&formed, 0).expect("formed");
    // Both links of node 3 to node 1 are up before one is cut.
    for link in 0..LINKS {
        wait_for_log(&mut daemons, 3, &format!("link {link} to node 1 up"), 0);
    }
    let before: Vec<usize> = rings_of(&daemons).iter().map(Vec::len).collect();

    // One link cut: the link goes down, the membership holds.
    let downs = count(&daemons[2].log(), "link 0 to node 1 down");
    let ups = count(&daemons[2].log(), "link 0 to node 1 up");
    topology.set_bridge_port(3, 0, "down");
    wait_for_log(&mut daemons, 3, "link 0 to node 1 down", downs);
    thread::sleep(ONE_LINK_CUT);
    for (i, rings) in rings_of(&daemons).iter().enumerate() {
        assert_eq!(
            rings.len(),
            before[i],
            "node {} installed a ring while only link 0 was cut: {rings:?}\n{}",
            i + 1,
            all_logs(&daemons)
        );
    }
    topology.set_bridge_port(3, 0, "up");
    wait_for_log(&mut daemons, 3, "link 0 to node 1 up", ups);

    // Both links cut: node 3 is partitioned.
    topology.set_bridge_port(3, 0, "down");
    topology.set_bridge_port(3, 1, "down");
    let expected = ["[1, 2]", "[1, 2]", "[3]"];
    let split = wait_for(&mut daemons, "split into [1, 2] and [3]", SPLIT_TIMEOUT, |rings| {
        rings
            .iter()
            .zip(&before)
            .zip(expected)
            .all(|((r, &n), want)| r[n..].iter().any(|x| x.members == want))
    });
    let above = split.iter().filter_map(|r| r.last()).map(|r| r.seq).max().expect("rings");
    assert!(above > first.seq);

    topology.set_bridge_port(3, 0, "up");
    topology.set_bridge_port(3, 1, "up");
    let merged = wait_for(&mut daemons, "merge into one ring of [1, 2, 3]", MERGE_TIMEOUT, |r| {
        common_full_ring(r, above).is_some()
    });
    for (i, rings) in merged.iter().enumerate() {
        let seqs: Vec<u64> = rings.iter().map(|r| r.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "node {}: ring seqs not increasing: {rings:?}", i + 1);
    }

    for daemon in &daemons {
        daemon.terminate();
    }
    for (i, daemon) in daemons.into_iter().enumerate() {
        let exit = daemon.wait(EXIT_TIMEOUT);
        assert!(exit.status.success(), "node {} did not stop cleanly:\n{}", i + 1, exit.log);
        assert!(
            exit.log.contains("; links node "),
            "node {}: no link status in the summary:\n{}",
            i + 1,
            exit.log
        );
        if i == 2 {
            eprintln!("netns_links: node 3 summary: {}", exit.log.lines().last().unwrap_or(""));
        }
    }
}
