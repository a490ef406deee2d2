//! Two network namespaces joined by one veth pair, made and removed by `benches compare`, and
//! the clean-up that also runs on Ctrl-C or SIGTERM.

use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

/// Node `n`'s address inside its namespace (a subnet of our own namespaces only).
pub fn address(node: u32) -> String {
    format!("10.214.7.{node}")
}

/// What the signal handler must undo: namespaces to delete and processes to kill.
static LIVE: Mutex<Live> = Mutex::new(Live { netns: Vec::new(), pids: Vec::new() });

struct Live {
    netns: Vec<String>,
    pids: Vec<u32>,
}

/// Registers a process the signal handler kills.
pub fn track_pid(pid: u32) {
    LIVE.lock().expect("live lock").pids.push(pid);
}

/// Forgets a process that was stopped.
pub fn untrack_pid(pid: u32) {
    LIVE.lock().expect("live lock").pids.retain(|&p| p != pid);
}

/// On SIGINT or SIGTERM: kills every tracked process, deletes every namespace, exits 130.
pub fn install_signal_cleanup() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        eprintln!("interrupted: cleaning up");
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        for pid in &live.pids {
            kill9(*pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        for ns in &live.netns {
            let _ = ip(&["netns", "del", ns]);
        }
        std::process::exit(130);
    });
}

/// `kill -9 pid`, errors ignored (it may be gone).
pub fn kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
}

/// Runs `ip args`; its stderr on failure.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().context("cannot run ip")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Namespaces `tbc{pid}n1` and `tbc{pid}n2`, each with `lo` and one end of a veth at
/// [`address`]. Dropping it deletes both (the veth goes with them).
pub struct Net {
    /// Node 1's and node 2's namespace.
    pub ns: [String; 2],
    /// The veth's end in each.
    dev: [String; 2],
}

impl Net {
    /// Creates both namespaces and the veth between them.
    pub fn new() -> Result<Net> {
        let run = std::process::id();
        let ns = [1, 2].map(|i| format!("tbc{run}n{i}"));
        let (a, b) = (format!("tbc{run}a"), format!("tbc{run}b"));
        let mut net = Net { ns: [String::new(), String::new()], dev: [a.clone(), b.clone()] };
        for (i, name) in ns.iter().enumerate() {
            ip(&["netns", "add", name]).context("benches compare needs root and `ip netns`")?;
            net.ns[i] = name.clone();
            LIVE.lock().expect("live lock").netns.push(name.clone());
        }
        ip(&["link", "add", &a, "netns", &ns[0], "type", "veth", "peer", "name", &b, "netns", &ns[1]])?;
        for (i, (name, dev)) in ns.iter().zip([&a, &b]).enumerate() {
            ip(&["-n", name, "link", "set", "lo", "up"])?;
            ip(&["-n", name, "addr", "add", &format!("{}/24", address(i as u32 + 1)), "dev", dev])?;
            ip(&["-n", name, "link", "set", dev, "up"])?;
        }
        Ok(net)
    }

    /// Takes node `node`'s end of the veth down (`up` false) or up again: a cut cable, as
    /// far as both nodes can tell (no ICMP, no carrier).
    pub fn set_link(&self, node: u32, up: bool) -> Result<()> {
        let i = node as usize - 1;
        ip(&["-n", &self.ns[i], "link", "set", &self.dev[i], if up { "up" } else { "down" }])
    }

    /// Node `n`'s namespace.
    pub fn ns(&self, node: u32) -> &str {
        &self.ns[node as usize - 1]
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        for name in self.ns.iter().filter(|n| !n.is_empty()) {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("cleanup: {e:#}");
            }
            live.netns.retain(|n| n != name);
        }
    }
}
