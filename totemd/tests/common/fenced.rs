//! Clusters with fencing by the project's test agent (contrib/fence_totem_test): each daemon's
//! pid goes to `pids/nN.pid`, where the agent finds its victim, and the agent logs one line per
//! action to `fence.log`.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{now, Daemon, TempDir};

/// The test fence agent.
pub const AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/fence_totem_test");

/// How long the helpers wait for an agent's action.
const WAIT: Duration = Duration::from_secs(30);

/// A UDP port that was free a moment ago on 127.0.0.1 ..= 127.0.0.`nodes`.
pub fn port_free_on_loopbacks(nodes: u32) -> u16 {
    loop {
        let first = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = first.local_addr().expect("local address").port();
        if (2..=nodes).all(|n| UdpSocket::bind((format!("127.0.0.{n}").as_str(), port)).is_ok()) {
            return port;
        }
    }
}

/// Two nodes on 127.0.0.1 and .2 at `port`, `two_node` votequorum, and fencing of each node
/// (`port: nN`) by the test agent, which logs to `dir/fence.log` and finds pids in
/// `dir/pids`; `system` goes before the fencing section.
pub fn two_node_conf(cluster_name: &str, port: u16, dir: &Path, system: &str) -> String {
    format!(
        "totem {{\n version: 2\n cluster_name: {cluster_name}\n transport: udpu\n token: 1000\n \
         interface {{\n  linknumber: 0\n  mcastport: {port}\n }}\n}}\n\
         nodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  nodeid: 1\n  name: n1\n }}\n \
         node {{\n  ring0_addr: 127.0.0.2\n  nodeid: 2\n  name: n2\n }}\n}}\n\
         quorum {{\n provider: corosync_votequorum\n two_node: 1\n}}\n\
         logging {{\n to_stderr: yes\n to_syslog: no\n}}\n{system}\
         fencing {{\n post_join_delay: 60\n device {{\n  name: power\n  agent: {AGENT}\n  logfile: {log}\n  pidfile_dir: {pids}\n }}\n \
         node {{\n  name: n1\n  method {{\n   name: power\n   device {{\n    name: power\n    port: n1\n   }}\n  }}\n }}\n \
         node {{\n  name: n2\n  method {{\n   name: power\n   device {{\n    name: power\n    port: n2\n   }}\n  }}\n }}\n}}\n",
        log = dir.join("fence.log").display(),
        pids = dir.join("pids").display(),
    )
}

/// A directory with a config file, the agent's log and the daemons' pid files.
pub struct FencedCluster {
    dir: TempDir,
    file: String,
}

impl FencedCluster {
    /// Writes the config `conf(dir)` returns; it may use [`AGENT`], `dir/fence.log` and
    /// `dir/pids`.
    pub fn new(name: &str, conf: impl FnOnce(&Path) -> String) -> FencedCluster {
        let dir = TempDir::new(name);
        std::fs::create_dir_all(dir.path().join("pids")).unwrap();
        let file = dir.path().join("corosync.conf");
        std::fs::write(&file, conf(dir.path())).unwrap();
        FencedCluster { file: file.display().to_string(), dir }
    }

    /// Starts node `node` (for two minutes at most) and records its pid for the agent.
    pub fn start(&self, node: u32) -> Daemon {
        let state = self.dir.path().join(format!("state{node}"));
        let daemon = Daemon::spawn(&[
            "--config".into(),
            self.file.clone(),
            "--nodeid".into(),
            node.to_string(),
            "--state-dir".into(),
            state.display().to_string(),
            "--run-for".into(),
            "120".into(),
        ]);
        std::fs::write(self.dir.path().join("pids").join(format!("n{node}.pid")), daemon.pid().to_string())
            .unwrap();
        daemon
    }

    /// Node `node`'s API socket.
    pub fn socket(&self, node: u32) -> PathBuf {
        self.dir.path().join(format!("state{node}/totemd.sock"))
    }

    /// Everything the agent logged.
    pub fn fence_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fence.log")).unwrap_or_default()
    }

    /// Agent log lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.fence_log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until the agent logged `needle` `n` times.
    pub fn wait_for(&self, needle: &str, n: usize) {
        let deadline = now() + WAIT;
        while self.count(needle) < n {
            assert!(now() < deadline, "{needle:?} not logged {n} time(s); agent log:\n{}", self.fence_log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
