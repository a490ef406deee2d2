//! One cluster of either system in the namespaces of [`super::net::Net`]: the same
//! corosync.conf for both (token, crypto, nodelist on the veth), daemons, and one driver per
//! group member. The group always has two members: on one node both drivers share it, on two
//! nodes each has its own.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use workload::{to_line, wall_ns, Command, Reply, RunResult, RunSpec};

use super::net::{address, Net};
use super::proc::Proc;
use super::procfs_now;

/// Members of the group: one or two senders among them.
pub const MEMBERS: u32 = 2;

/// How long a cluster may take to form and every driver to see the whole group.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a kill may take to show as a configuration change before it counts as missed.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Log lines of each daemon a failed run reports.
const WARNINGS_MAX: usize = 5;

/// When a run starts, after its command is sent: every driver has it by then.
const START_DELAY: Duration = Duration::from_millis(300);

/// The system under test.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// totemd, driven through the `cpg` crate.
    Totem,
    /// Debian's corosync, driven through libcpg.
    Corosync,
}

impl System {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            System::Totem => "totem",
            System::Corosync => "corosync",
        }
    }
}

/// The binaries a cluster runs.
#[derive(Clone, Debug)]
pub struct Tools {
    /// This executable (totem's driver is its `compare-worker`).
    pub benches: PathBuf,
    /// totemd.
    pub totemd: PathBuf,
    /// totemctl (for `keygen`).
    pub totemctl: PathBuf,
    /// corosync's driver.
    pub corosync_driver: PathBuf,
}

/// A cluster to start.
#[derive(Clone, Copy, Debug)]
pub struct ClusterSpec {
    /// Which system.
    pub system: System,
    /// Nodes (1 or 2).
    pub nodes: u32,
    /// aes256 + sha256 (corosync) or the AEAD (totem) with a fresh key.
    pub crypto: bool,
    /// Token timeout, ms.
    pub token_ms: u64,
}

/// A run's figures: each member's, and the daemons' CPU and memory.
pub struct LoadOut {
    /// Each member's result, member 1 first.
    pub members: Vec<RunResult>,
    /// CPU seconds of all daemons in the window.
    pub cpu_s: f64,
    /// Each daemon's RSS in the middle of the window, KiB.
    pub rss_load_kib: Vec<u64>,
}

/// Running daemons and drivers; dropping it kills them all and removes the directory.
pub struct Cluster {
    spec: ClusterSpec,
    // Field order is drop order: drivers first, then daemons, then the directory.
    drivers: Vec<Proc>,
    daemons: Vec<Proc>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes the configuration and key, starts the daemons and drivers, and waits until every
    /// driver sees the whole group.
    pub fn start(tools: &Tools, net: &Net, spec: ClusterSpec) -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("benches-compare-").tempdir()?;
        let key = dir.path().join("authkey");
        if spec.crypto {
            keygen(tools, spec.system, &key)?;
        }
        let conf = dir.path().join("corosync.conf");
        std::fs::write(&conf, corosync_conf(spec.nodes, spec.token_ms, spec.crypto.then_some(&*key)))?;
        let mut cluster = Cluster { spec, drivers: Vec::new(), daemons: Vec::new(), _dir: dir };
        for node in 1..=spec.nodes {
            let state = cluster._dir.path().join(format!("state{node}"));
            let argv = daemon_argv(tools, net, spec.system, node, &conf, &state);
            cluster.daemons.push(Proc::spawn(&format!("{} node {node}", spec.system.name()), &argv, false)?);
        }
        if spec.system == System::Corosync {
            // Drivers enter the daemon's mount namespace: only once it is corosync's own.
            for d in &mut cluster.daemons {
                wait_for_exec(d, "corosync")?;
            }
        }
        for member in 1..=MEMBERS {
            let node = member.min(spec.nodes);
            let state = cluster._dir.path().join(format!("state{node}"));
            let pid = cluster.daemons[node as usize - 1].pid();
            let argv = driver_argv(tools, net, spec.system, node, pid, member, &state);
            let name = format!("{} driver {member}", spec.system.name());
            cluster.drivers.push(Proc::spawn(&name, &argv, true)?);
        }
        for i in 0..cluster.drivers.len() {
            match cluster.drivers[i].reply(READY_TIMEOUT) {
                Ok(Reply::Ready { .. }) => {}
                Ok(other) => bail!("unexpected {other:?}"),
                Err(e) => bail!("{e:#}\n{}", cluster.logs()),
            }
        }
        Ok(cluster)
    }

    /// The daemons' pids, node 1 first.
    pub fn pids(&self) -> Vec<u32> {
        self.daemons.iter().map(Proc::pid).collect()
    }

    /// Every daemon's last output.
    pub fn logs(&self) -> String {
        let logs: Vec<String> =
            self.daemons.iter().map(|d| format!("--- {}:\n{}", d.name, d.log())).collect();
        logs.join("\n")
    }

    /// The daemons' last log lines at warning level or above (both systems' loggers write
    /// the level in capitals), at most [`WARNINGS_MAX`] of them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.daemons {
            let log = d.log();
            let lines: Vec<&str> =
                log.lines().filter(|l| ["WARN", "ERROR", "error"].iter().any(|w| l.contains(w))).collect();
            let skip = lines.len().saturating_sub(WARNINGS_MAX);
            out.extend(lines[skip..].iter().map(|l| format!("{}: {l}", d.name)));
        }
        out
    }

    /// One run: members 1..=senders send `size`-byte messages for `warmup` + `measure`.
    /// With `rate` > 0 each sender sends that many messages per second (see [`RunSpec::rate`]).
    pub fn run(
        &mut self,
        size: usize,
        senders: u32,
        rate: u32,
        warmup: Duration,
        measure: Duration,
    ) -> Result<LoadOut> {
        let start_ns = wall_ns() + START_DELAY.as_nanos() as u64;
        let pids = self.pids();
        for (i, d) in self.drivers.iter_mut().enumerate() {
            let spec = RunSpec {
                size,
                send: (i as u32) < senders,
                start_ns,
                warmup_ms: warmup.as_millis() as u64,
                measure_ms: measure.as_millis() as u64,
                rate,
            };
            d.send(&to_line(&Command::Run(spec)))?;
        }
        let window_ns = start_ns + warmup.as_nanos() as u64;
        sleep_until(window_ns);
        let cpu0 = procfs_now::cpu(&pids);
        sleep_until(window_ns + measure.as_nanos() as u64 / 2);
        let rss_load_kib = procfs_now::rss(&pids);
        sleep_until(window_ns + measure.as_nanos() as u64);
        let cpu1 = procfs_now::cpu(&pids);
        let mut members = Vec::new();
        for d in &mut self.drivers {
            match d.reply(workload::DRAIN_MAX + measure + Duration::from_secs(30))? {
                Reply::Run(r) => members.push(r),
                other => bail!("{}: unexpected {other:?}", d.name),
            }
        }
        Ok(LoadOut { members, cpu_s: (cpu1 - cpu0).as_secs_f64(), rss_load_kib })
    }

    /// Kills node 2's daemon with SIGKILL; milliseconds until member 1 sees the group shrink
    /// (`None` if it did not within [`WATCH_TIMEOUT`]). Ends the cluster's usefulness.
    pub fn kill_test(&mut self) -> Result<Option<f64>> {
        self.failover(|c| {
            c.daemons[1].kill();
            Ok(())
        })
    }

    /// Cuts node 2's veth (its daemon lives on but nothing reaches it, and no ICMP tells
    /// node 1 why): milliseconds until member 1 sees the group shrink. The link is up again
    /// when this returns; the cluster is of no more use.
    pub fn cut_test(&mut self, net: &Net) -> Result<Option<f64>> {
        let result = self.failover(|_| net.set_link(2, false));
        net.set_link(2, true)?;
        result
    }

    /// Member 1 watches; `fault` strikes node 2; milliseconds from the fault to the change.
    fn failover(&mut self, fault: impl FnOnce(&mut Cluster) -> Result<()>) -> Result<Option<f64>> {
        if self.spec.nodes < 2 {
            bail!("a failover needs two nodes");
        }
        let watch = Command::Watch { timeout_ms: WATCH_TIMEOUT.as_millis() as u64 };
        self.drivers[0].send(&to_line(&watch))?;
        thread::sleep(Duration::from_millis(300));
        let fault_ns = wall_ns();
        fault(self)?;
        match self.drivers[0].reply(WATCH_TIMEOUT + Duration::from_secs(10))? {
            Reply::Changed { at_ns } => Ok(at_ns.map(|at| at.saturating_sub(fault_ns) as f64 / 1e6)),
            other => bail!("unexpected {other:?}"),
        }
    }
}

/// Waits until `proc` runs `program` (it got there through `exec`, after its set-up).
fn wait_for_exec(proc: &mut Proc, program: &str) -> Result<()> {
    let deadline = wall_ns() + READY_TIMEOUT.as_nanos() as u64;
    while std::fs::read_to_string(format!("/proc/{}/comm", proc.pid())).map_or(true, |c| c.trim() != program)
    {
        if proc.exited() || wall_ns() > deadline {
            bail!("{} did not start:\n{}", proc.name, proc.log());
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn sleep_until(ns: u64) {
    let now = wall_ns();
    if now < ns {
        thread::sleep(Duration::from_nanos(ns - now));
    }
}

/// A fresh authkey with the system's own tool.
fn keygen(tools: &Tools, system: System, path: &Path) -> Result<()> {
    let (program, args): (PathBuf, Vec<String>) = match system {
        System::Totem => (tools.totemctl.clone(), vec!["keygen".into(), path.display().to_string()]),
        System::Corosync => ("corosync-keygen".into(), vec!["-k".into(), path.display().to_string()]),
    };
    let out = std::process::Command::new(&program)
        .args(&args)
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", program.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The one corosync.conf both systems read: knet (corosync 3's default) on the veth, the
/// token timeout, crypto or none, logging to stderr only.
pub fn corosync_conf(nodes: u32, token_ms: u64, key: Option<&Path>) -> String {
    let crypto = match key {
        Some(k) => format!("\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: {}\n", k.display()),
        None => "\tcrypto_cipher: none\n\tcrypto_hash: none\n".into(),
    };
    let mut nodelist = String::new();
    for n in 1..=nodes {
        nodelist +=
            &format!("\tnode {{\n\t\tname: n{n}\n\t\tnodeid: {n}\n\t\tring0_addr: {}\n\t}}\n", address(n));
    }
    format!(
        "totem {{\n\tversion: 2\n\tcluster_name: compare\n\ttransport: knet\n\ttoken: {token_ms}\n{crypto}}}\n\
         nodelist {{\n{nodelist}}}\n\
         logging {{\n\tto_stderr: yes\n\tto_logfile: no\n\tto_syslog: no\n\ttimestamp: on\n}}\n"
    )
}

/// Node `node`'s daemon inside its namespace. corosync also gets a mount namespace of its
/// own with a private /run (it locks /run/corosync.pid), /var/lib/corosync (ring ids) and
/// /dev/shm (libqb's IPC buffers), so two instances on one host do not meet.
fn daemon_argv(
    tools: &Tools,
    net: &Net,
    system: System,
    node: u32,
    conf: &Path,
    state: &Path,
) -> Vec<String> {
    let mut argv: Vec<String> = ["ip", "netns", "exec", net.ns(node)].map(String::from).to_vec();
    match system {
        System::Totem => argv.extend([
            tools.totemd.display().to_string(),
            "--config".into(),
            conf.display().to_string(),
            "--state-dir".into(),
            state.display().to_string(),
            "--nodeid".into(),
            node.to_string(),
            "--run-for".into(),
            "7200".into(),
        ]),
        System::Corosync => {
            let script = format!(
                "mount -t tmpfs tmpfs /run && mkdir -p /var/lib/corosync && \
                 mount -t tmpfs tmpfs /var/lib/corosync && mount -t tmpfs tmpfs /dev/shm && \
                 exec corosync -f -c {}",
                conf.display()
            );
            argv.extend(["unshare", "-m", "--propagation", "private", "sh", "-c", &script].map(String::from));
        }
    }
    argv
}

/// The driver of member `member` on node `node`: totem's in the node's network namespace;
/// corosync's in the daemon's network and mount namespaces (`nsenter`), where libqb finds it.
fn driver_argv(
    tools: &Tools,
    net: &Net,
    system: System,
    node: u32,
    daemon_pid: u32,
    member: u32,
    state: &Path,
) -> Vec<String> {
    let common = ["--id".into(), member.to_string(), "--members".into(), MEMBERS.to_string()];
    match system {
        System::Totem => {
            let mut argv: Vec<String> = ["ip", "netns", "exec", net.ns(node)].map(String::from).to_vec();
            argv.extend([tools.benches.display().to_string(), "compare-worker".into(), "--socket".into()]);
            argv.push(state.join("totemd.sock").display().to_string());
            argv.extend(common);
            argv
        }
        System::Corosync => {
            let mut argv: Vec<String> =
                ["nsenter", "-t", &daemon_pid.to_string(), "-m", "-n", "--"].map(String::from).to_vec();
            argv.push(tools.corosync_driver.display().to_string());
            argv.extend(common);
            argv
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_systems_read_one_config() {
        let plain = corosync_conf(2, 1000, None);
        assert!(plain.contains("\ttoken: 1000\n") && plain.contains("crypto_cipher: none"));
        assert!(plain.contains(&format!("ring0_addr: {}", address(2))));
        let sealed = corosync_conf(1, 1000, Some(Path::new("/k")));
        assert!(sealed.contains("crypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: /k\n"));
        assert!(!sealed.contains("nodeid: 2"));
    }
}
