//! Helpers for tests that build their own topology of network namespaces with `ip` (iproute2)
//! only: one namespace per node (one `totemd` each) and one namespace holding a bridge `br{l}`
//! per link `l`, with a veth from every node to every bridge. Names carry the test's pid so
//! parallel runs do not collide; a drop guard deletes everything also when the test fails.
//!
//! They need root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip netns`: without them a test prints
//! [`SKIP`] and passes.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use super::{new_rings, now, Daemon, RingLine};

/// The membership of all three nodes, as the ring lines print it.
pub const FULL: &str = "[1, 2, 3]";
/// What nodes 1, 2 and 3 install once node 3 is cut off.
pub const SPLIT: [&str; 3] = ["[1, 2]", "[1, 2]", "[3]"];
/// What a test prints when this host does not let it build namespaces.
pub const SKIP: &str = "skipped: needs root and ip netns";

/// Runs `ip args`; its stderr on failure.
pub fn ip(args: &[&str]) -> Result<(), String> {
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
pub fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// Whether the effective user is root, from /proc (no libc in this crate's tests).
pub fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

pub fn is_not_permitted(err: &str) -> bool {
    err.contains("Permission denied")
        || err.contains("Operation not permitted")
        || err.contains("cannot run ip")
}

/// The namespaces, bridges and veths of one test run. Dropping it deletes them all: first the
/// namespaces (which takes the veths inside with them), then any veth still left in the root
/// namespace because setup stopped before moving it. Drop it after the daemons: a namespace
/// only goes away once no process is left in it.
pub struct Topology {
    /// Node namespaces `{ns}n1`..`{ns}n3`, with the run's suffix.
    pub nodes: [String; 3],
    /// The namespace of every bridge, `{ns}br` with the run's suffix.
    pub bridge: String,
    /// How many links (bridges) there are.
    links: usize,
    /// `node_links[i][l]`: node i+1's veth on link l (in `nodes[i]`).
    node_links: [Vec<String>; 3],
    /// `bridge_links[i][l]`: its other end, a port of bridge `br{l}` (in `bridge`).
    bridge_links: [Vec<String>; 3],
    /// What was created so far, so that drop deletes only that.
    added_netns: Vec<String>,
    added_links: Vec<String>,
}

impl Topology {
    /// Node `node`'s veth on link `link` (in its namespace).
    pub fn node_link(&self, node: usize, link: usize) -> &str {
        &self.node_links[node - 1][link]
    }

    /// Names unique to this process and call: namespaces start with `ns`, veths with `veth`
    /// (`{veth}{run}n{node}` and `{veth}{run}b{node}`, followed by the link number when there
    /// are several links).
    pub fn new(ns: &str, veth: &str, links: usize) -> Topology {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let run = format!("{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        // Interface names must fit in 15 bytes: prefix (2) + pid (≤ 7 digits) + "x" + counter
        // + "n" + node (+ link).
        let link = |l: usize| if links == 1 { String::new() } else { l.to_string() };
        let veths = |side: &str| {
            [1, 2, 3].map(|i| (0..links).map(|l| format!("{veth}{run}{side}{i}{}", link(l))).collect())
        };
        Topology {
            nodes: [1, 2, 3].map(|i| format!("{ns}n{i}-{run}")),
            bridge: format!("{ns}br-{run}"),
            links,
            node_links: veths("n"),
            bridge_links: veths("b"),
            added_netns: Vec::new(),
            added_links: Vec::new(),
        }
    }

    /// Creates the namespaces; false (after printing why) when this host does not let us.
    pub fn add_namespaces(&mut self) -> bool {
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

    /// Bridges `br0`.. in the bridge namespace, and a veth from every node to each, node
    /// `node`'s end on link `link` at `address(node, link)`/24 (/64 for IPv6); everything up.
    pub fn wire(&mut self, address: impl Fn(usize, usize) -> String) {
        let br = self.bridge.clone();
        must(&["-n", &br, "link", "set", "lo", "up"]);
        for l in 0..self.links {
            let bridge = format!("br{l}");
            must(&["-n", &br, "link", "add", &bridge, "type", "bridge"]);
            must(&["-n", &br, "link", "set", &bridge, "up"]);
        }
        for i in 0..3 {
            let ns = self.nodes[i].clone();
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            for l in 0..self.links {
                let (node_link, bridge_link) =
                    (self.node_links[i][l].clone(), self.bridge_links[i][l].clone());
                must(&["link", "add", &node_link, "type", "veth", "peer", "name", &bridge_link]);
                self.added_links.extend([node_link.clone(), bridge_link.clone()]);
                must(&["link", "set", &node_link, "netns", &ns]);
                must(&["link", "set", &bridge_link, "netns", &br]);
                must(&["-n", &br, "link", "set", &bridge_link, "master", &format!("br{l}")]);
                must(&["-n", &br, "link", "set", &bridge_link, "up"]);
                let addr = address(i + 1, l);
                if addr.contains(':') {
                    // No duplicate address detection: the address is usable at once.
                    let addr = format!("{addr}/64");
                    must(&["-n", &ns, "addr", "add", &addr, "dev", &node_link, "nodad"]);
                } else {
                    must(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", &node_link]);
                }
                must(&["-n", &ns, "link", "set", &node_link, "up"]);
            }
        }
    }

    /// Sets node `node`'s bridge port on link `link` up or down: that cable is cut or plugged.
    pub fn set_bridge_port(&self, node: usize, link: usize, state: &str) {
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

/// Every daemon's log, each under a `node N:` heading.
pub fn all_logs(daemons: &[Daemon]) -> String {
    let logs: Vec<_> =
        daemons.iter().enumerate().map(|(i, d)| format!("node {}:\n{}", i + 1, d.log())).collect();
    logs.join("\n")
}

/// Every daemon's rings so far, in order.
pub fn rings_of(daemons: &[Daemon]) -> Vec<Vec<RingLine>> {
    daemons.iter().map(|d| new_rings(&d.log())).collect()
}

/// Waits until `done` holds of every daemon's rings so far; returns them. Panics with every
/// log on timeout or if a daemon exits.
pub fn wait_for(
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
pub fn common_full_ring(rings: &[Vec<RingLine>], above: u64) -> Option<RingLine> {
    let first = rings.first()?.last()?;
    let agree = rings.iter().all(|r| r.last() == Some(first));
    (agree && first.members == FULL && first.seq > above).then(|| first.clone())
}

/// Waits until node 3 is cut off: every node installed its ring of [`SPLIT`] after the first
/// `before[i]` rings; returns all rings so far.
pub fn wait_for_split(daemons: &mut [Daemon], before: &[usize], timeout: Duration) -> Vec<Vec<RingLine>> {
    wait_for(daemons, "split into [1, 2] and [3]", timeout, |rings| {
        rings.iter().zip(before).zip(SPLIT).all(|((r, &n), want)| r[n..].iter().any(|x| x.members == want))
    })
}
