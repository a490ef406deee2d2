//! Several daemons on 127.0.0.1, .2, .3 ..., each with its own state directory (and so its own
//! local API socket), peering each other.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use super::{bind_failed, new_rings, now, Daemon, TempDir};

/// Attempts when a port picked for a daemon turns out to be taken.
const BIND_ATTEMPTS: usize = 5;

/// A UDP port that was free a moment ago on 127.0.0.`n`.
fn free_port_on(n: u32) -> u16 {
    let ip = [127, 0, 0, u8::try_from(n).expect("node id fits 127.0.0.n")];
    let socket = UdpSocket::bind(SocketAddr::from((ip, 0))).expect("bind 127.0.0.n");
    socket.local_addr().expect("local address").port()
}

/// Daemons 1..=n on 127.0.0.`id`, with `--token token_ms` and `extra` arguments.
pub struct Cluster {
    /// The daemons, node `i + 1` at index `i`; `None` once stopped or killed by a test.
    pub daemons: Vec<Option<Daemon>>,
    /// Their state directories.
    pub states: Vec<TempDir>,
    ports: Vec<u16>,
    token_ms: u32,
}

impl Cluster {
    /// Starts `n` daemons and waits until all of them share one ring of all `n`.
    pub fn start(name: &str, n: u32, token_ms: u32, timeout: Duration) -> Cluster {
        for _ in 0..BIND_ATTEMPTS {
            let mut cluster = Cluster {
                daemons: Vec::new(),
                states: (1..=n).map(|i| TempDir::new(&format!("{name}-{i}"))).collect(),
                ports: (1..=n).map(free_port_on).collect(),
                token_ms,
            };
            for id in 1..=n {
                let daemon = Daemon::spawn(&cluster.args(id));
                cluster.daemons.push(Some(daemon));
            }
            thread::sleep(Duration::from_millis(300));
            if cluster.daemons.iter_mut().flatten().any(|d| d.exited() && bind_failed(&d.log())) {
                continue;
            }
            let all: Vec<u32> = (1..=n).collect();
            cluster.wait_for_ring(&all, timeout);
            return cluster;
        }
        panic!("no free ports for {n} daemons after {BIND_ATTEMPTS} attempts");
    }

    /// The command line of node `id`.
    pub fn args(&self, id: u32) -> Vec<String> {
        let i = id as usize - 1;
        let mut args = vec![
            "--state-dir".to_string(),
            self.states[i].arg(),
            "--nodeid".to_string(),
            id.to_string(),
            "--bind".to_string(),
            format!("127.0.0.{id}:{}", self.ports[i]),
            "--token".to_string(),
            self.token_ms.to_string(),
            "--run-for".to_string(),
            "300".to_string(),
        ];
        for (j, port) in self.ports.iter().enumerate() {
            let peer = j as u32 + 1;
            if peer != id {
                args.extend(["--peer".to_string(), format!("{peer}=127.0.0.{peer}:{port}")]);
            }
        }
        args
    }

    /// Node `id`'s local API socket.
    pub fn socket(&self, id: u32) -> PathBuf {
        self.states[id as usize - 1].path().join("totemd.sock")
    }

    /// Node `id`'s daemon.
    pub fn daemon(&mut self, id: u32) -> &mut Daemon {
        self.daemons[id as usize - 1].as_mut().expect("daemon running")
    }

    /// Waits until every running daemon among `members` last logged one same ring of exactly
    /// `members`; panics with the logs otherwise.
    pub fn wait_for_ring(&mut self, members: &[u32], timeout: Duration) {
        let want = format!("{members:?}");
        let deadline = now() + timeout;
        loop {
            let last: Vec<_> = members
                .iter()
                .map(|&id| self.daemons[id as usize - 1].as_ref().and_then(|d| new_rings(&d.log()).pop()))
                .collect();
            if let Some(Some(first)) = last.first() {
                if first.members == want && last.iter().all(|r| r.as_ref() == Some(first)) {
                    return;
                }
            }
            if now() >= deadline {
                panic!("no common ring {want} within {timeout:?}: {last:?}\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every daemon's log, for failure messages.
    pub fn logs(&self) -> String {
        let logs: Vec<String> = self
            .daemons
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().map(|d| format!("node {}:\n{}", i + 1, d.log())))
            .collect();
        logs.join("\n")
    }

    /// Kills node `id` with SIGKILL.
    pub fn kill(&mut self, id: u32) {
        if let Some(mut daemon) = self.daemons[id as usize - 1].take() {
            let _ = std::process::Command::new("kill").args(["-KILL", &daemon.pid().to_string()]).status();
            while !daemon.exited() {
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Stops every running daemon with SIGTERM and checks each stopped cleanly.
    pub fn stop(mut self, timeout: Duration) {
        let daemons: Vec<Daemon> = self.daemons.iter_mut().filter_map(Option::take).collect();
        super::stop_all(timeout, daemons);
    }
}
