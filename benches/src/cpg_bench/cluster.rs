//! Real `totemd` daemons on 127.0.0.1, .2, ..., each with a temporary state directory (and so
//! its own local API socket), peering each other over UDP.
//!
//! Every daemon is stopped (SIGTERM, then SIGKILL) and every directory removed when the
//! [`Cluster`] is dropped, so an error or a panic cleans up too. Each daemon also gets
//! `--run-for`, so it stops by itself should this process be killed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::clock;

/// Log lines kept per daemon (the newest): enough to find the last ring and explain a failure.
const LOG_LINES_MAX: usize = 2000;

/// Attempts when a port picked for a daemon turns out to be taken.
const BIND_ATTEMPTS: usize = 5;

/// How long a daemon may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The `totemd` binary.
    pub binary: PathBuf,
    /// Nodes 1..=nodes.
    pub nodes: u32,
    /// `--token` in milliseconds.
    pub token_ms: u64,
    /// `--run-for`: the daemons stop by themselves after this long.
    pub run_for: Duration,
    /// How long the ring may take to form.
    pub form_timeout: Duration,
}

/// One running daemon with its output collected.
struct Daemon {
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Daemon {
    fn spawn(binary: &Path, args: &[String]) -> Result<Daemon> {
        let mut child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        collect(child.stdout.take().expect("piped stdout"), log.clone());
        collect(child.stderr.take().expect("piped stderr"), log.clone());
        Ok(Daemon { child, log })
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").iter().cloned().collect()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; the exit status, `None` if it had to be
    /// killed.
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        let deadline = clock() + STOP_TIMEOUT;
        while clock() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

fn collect(stream: impl Read + Send + 'static, log: Arc<Mutex<VecDeque<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut log = log.lock().expect("log lock");
            if log.len() == LOG_LINES_MAX {
                log.pop_front();
            }
            log.push_back(line);
        }
    });
}

/// Daemons 1..=n, node `i + 1` at index `i`.
pub struct Cluster {
    daemons: Vec<Daemon>,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts the daemons and waits until every one has installed one ring of all of them.
    pub fn start(spec: &ClusterSpec) -> Result<Cluster> {
        for _ in 0..BIND_ATTEMPTS {
            let mut cluster = Cluster::spawn(spec)?;
            thread::sleep(Duration::from_millis(300));
            let bind_failed = cluster
                .daemons
                .iter_mut()
                .any(|d| d.exited() && d.log().iter().any(|l| l.contains("cannot bind UDP")));
            if bind_failed {
                continue; // dropped: stopped and removed; try other ports
            }
            cluster.wait_for_ring(spec.form_timeout)?;
            return Ok(cluster);
        }
        bail!("no free UDP ports for {} daemons after {BIND_ATTEMPTS} attempts", spec.nodes)
    }

    fn spawn(spec: &ClusterSpec) -> Result<Cluster> {
        let mut cluster = Cluster { daemons: Vec::new(), dirs: Vec::new() };
        let mut ports = Vec::new();
        for id in 1..=spec.nodes {
            let dir = tempfile::Builder::new().prefix(&format!("totemd-bench-{id}-")).tempdir()?;
            cluster.dirs.push(dir);
            ports.push(free_port_on(id)?);
        }
        for id in 1..=spec.nodes {
            let args = daemon_args(spec, id, cluster.dirs[id as usize - 1].path(), &ports);
            cluster.daemons.push(Daemon::spawn(&spec.binary, &args)?);
        }
        Ok(cluster)
    }

    /// Waits until the last `new ring` line of every daemon names the same ring of all nodes.
    fn wait_for_ring(&mut self, timeout: Duration) -> Result<()> {
        let want = format!("{:?}", (1..=self.daemons.len() as u32).collect::<Vec<_>>());
        let deadline = clock() + timeout;
        loop {
            let last: Vec<Option<(String, String)>> =
                self.daemons.iter().map(|d| last_ring(&d.log())).collect();
            if let Some(Some(first)) = last.first() {
                if first.1 == want && last.iter().all(|r| r.as_ref() == Some(first)) {
                    return Ok(());
                }
            }
            if let Some(i) = self.daemons.iter_mut().position(Daemon::exited) {
                bail!("node {} exited before the ring formed:\n{}", i + 1, self.logs());
            }
            if clock() >= deadline {
                bail!("no common ring {want} within {timeout:?}: {last:?}\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `id`'s local API socket.
    pub fn socket(&self, id: u32) -> PathBuf {
        self.dirs[id as usize - 1].path().join("totemd.sock")
    }

    /// The daemons' pids, node 1 first.
    pub fn pids(&self) -> Vec<u32> {
        self.daemons.iter().map(|d| d.child.id()).collect()
    }

    /// Every daemon's collected log, for error messages.
    pub fn logs(&self) -> String {
        let logs: Vec<String> = self
            .daemons
            .iter()
            .enumerate()
            .map(|(i, d)| format!("--- node {}:\n{}", i + 1, d.log().join("\n")))
            .collect();
        logs.join("\n")
    }

    /// Log lines at WARN or ERROR level, for the report of odd things.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, d) in self.daemons.iter().enumerate() {
            for line in d.log().iter().filter(|l| l.contains("WARN") || l.contains("ERROR")) {
                out.push(format!("node {}: {line}", i + 1));
            }
        }
        out
    }

    /// Stops every daemon; an error names those that did not stop cleanly.
    pub fn stop(mut self) -> Result<()> {
        let mut unclean = Vec::new();
        for (i, d) in self.daemons.iter_mut().enumerate() {
            match d.stop() {
                Some(s) if s.success() => {}
                Some(s) => unclean.push(format!("node {} exited with {s}", i + 1)),
                None => unclean.push(format!("node {} had to be killed", i + 1)),
            }
        }
        if unclean.is_empty() {
            Ok(())
        } else {
            bail!("{}\n{}", unclean.join(", "), self.logs())
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            d.stop();
        }
        // The directories are removed by their own drop, after the daemons are gone.
    }
}

/// The command line of node `id`.
fn daemon_args(spec: &ClusterSpec, id: u32, dir: &Path, ports: &[u16]) -> Vec<String> {
    let mut args = vec![
        "--state-dir".into(),
        dir.display().to_string(),
        "--nodeid".into(),
        id.to_string(),
        "--bind".into(),
        format!("127.0.0.{id}:{}", ports[id as usize - 1]),
        "--token".into(),
        spec.token_ms.to_string(),
        "--run-for".into(),
        spec.run_for.as_secs().max(1).to_string(),
    ];
    for (j, port) in ports.iter().enumerate() {
        let peer = j + 1;
        if peer != id as usize {
            args.extend(["--peer".into(), format!("{peer}=127.0.0.{peer}:{port}")]);
        }
    }
    args
}

/// A UDP port that was free a moment ago on 127.0.0.`n`.
fn free_port_on(n: u32) -> Result<u16> {
    let ip = [127, 0, 0, u8::try_from(n).context("node id over 255")?];
    let socket = UdpSocket::bind(SocketAddr::from((ip, 0))).context("bind 127.0.0.n")?;
    Ok(socket.local_addr()?.port())
}

/// The (ring id, members) of the last `new ring R members [..]` line of a daemon's log.
pub fn last_ring(log: &[String]) -> Option<(String, String)> {
    log.iter().rev().find_map(|line| {
        let (_, rest) = line.split_once("new ring ")?;
        let (ring, members) = rest.split_once(" members ")?;
        Some((ring.trim().to_string(), members.trim().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_ring_line_wins() {
        let log: Vec<String> = [
            "2024 INFO totemd: new ring 1.4 members [1]",
            "2024 INFO totemd: new ring 1.8 members [1, 2]",
            "2024 INFO totemd: client 3 connected",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(last_ring(&log), Some(("1.8".into(), "[1, 2]".into())));
        assert_eq!(last_ring(&[]), None);
    }
}
