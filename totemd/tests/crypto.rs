//! The real daemon with packet crypto (`crypto_cipher: aes256`, `crypto_hash: sha256`) from
//! corosync.conf files: nodes sharing the authkey form a ring, a node with another key never
//! gets a packet through, and the boot epoch stored in the state directory grows across starts.

mod common;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bind_failed, new_rings, Daemon, Exit, TempDir};

/// Attempts when a port picked for the daemons turns out to be taken.
const BIND_ATTEMPTS: usize = 5;
/// Far more than any daemon here needs to stop by itself.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A corosync.conf for nodes 1 and 2 at 127.0.0.1 and .2 on `port`, with crypto and `keyfile`.
fn two_node_conf(port: u16, keyfile: &Path) -> String {
    format!(
        "totem {{
    version: 2
    cluster_name: sealed
    transport: udpu
    token: 300
    token_coefficient: 0
    crypto_cipher: aes256
    crypto_hash: sha256
    keyfile: {}
    interface {{
        linknumber: 0
        mcastport: {port}
    }}
}}

nodelist {{
    node {{
        ring0_addr: 127.0.0.1
        nodeid: 1
    }}
    node {{
        ring0_addr: 127.0.0.2
        nodeid: 2
    }}
}}
",
        keyfile.display()
    )
}

/// A 256-byte key derived from `seed` (distinct seeds, distinct keys), written with `mode`.
fn write_key(path: &Path, seed: u8, mode: u32) {
    let key: Vec<u8> = (0..256u32).map(|i| (i.wrapping_mul(151) as u8) ^ seed.wrapping_mul(73)).collect();
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).expect("create key");
    file.write_all(&key).expect("write key");
    // The umask may have narrowed `mode`; the test wants it exact.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod key");
}

/// One node's directory: its corosync.conf, its key and its state directory.
struct NodeDir {
    dir: TempDir,
    conf: PathBuf,
    key: PathBuf,
}

impl NodeDir {
    /// A directory for node `node` whose key comes from `key_seed`.
    fn new(name: &str, key_seed: u8) -> NodeDir {
        let dir = TempDir::new(name);
        std::fs::create_dir_all(dir.path()).expect("create temp dir");
        let key = dir.path().join("authkey");
        write_key(&key, key_seed, 0o400);
        NodeDir { conf: dir.path().join("corosync.conf"), key, dir }
    }

    fn write_conf(&self, port: u16) {
        std::fs::write(&self.conf, two_node_conf(port, &self.key)).expect("write corosync.conf");
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn spawn(&self, node: u32, run_for: &str) -> Daemon {
        Daemon::spawn(&[
            "--config".to_string(),
            self.conf.display().to_string(),
            "--nodeid".to_string(),
            node.to_string(),
            "--state-dir".to_string(),
            self.state().display().to_string(),
            "--run-for".to_string(),
            run_for.to_string(),
        ])
    }
}

/// A UDP port that was free a moment ago on 127.0.0.1 and 127.0.0.2.
fn port_free_on_two_addresses() -> u16 {
    loop {
        let first = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = first.local_addr().expect("local address").port();
        if UdpSocket::bind(SocketAddr::from(([127, 0, 0, 2], port))).is_ok() {
            return port;
        }
    }
}

/// Runs nodes 1 and 2 from `nodes` for `run_for` seconds on a fresh port, retrying when a port
/// is taken; returns both exits.
fn run_pair(nodes: &[NodeDir; 2], run_for: &str) -> Vec<Exit> {
    for _ in 0..BIND_ATTEMPTS {
        let port = port_free_on_two_addresses();
        nodes.iter().for_each(|n| n.write_conf(port));
        let daemons: Vec<Daemon> = nodes.iter().zip(1..).map(|(n, id)| n.spawn(id, run_for)).collect();
        let exits: Vec<Exit> = daemons.into_iter().map(|d| d.wait(EXIT_TIMEOUT)).collect();
        if exits.iter().any(|e| bind_failed(&e.log)) {
            continue;
        }
        return exits;
    }
    panic!("no port free on 127.0.0.1-2 after {BIND_ATTEMPTS} attempts");
}

/// The count after `label` in the exit summary line, e.g. `auth failed 12`.
fn summary_count(log: &str, label: &str) -> u64 {
    let line =
        log.lines().find(|l| l.starts_with("totemd: node ")).unwrap_or_else(|| panic!("no summary:\n{log}"));
    let (_, rest) = line.split_once(label).unwrap_or_else(|| panic!("no {label:?} in {line}"));
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no count after {label:?} in {line}"))
}

/// Two nodes holding the same authkey authenticate each other's packets and form one ring.
#[test]
fn two_daemons_with_the_same_key_form_a_ring() {
    let nodes = [NodeDir::new("crypto-same-1", 7), NodeDir::new("crypto-same-2", 7)];
    let exits = run_pair(&nodes, "4");
    for (exit, node) in exits.iter().zip(1..) {
        assert!(exit.status.success(), "node {node} failed:\n{}", exit.log);
        assert!(exit.log.contains("crypto on: aes-256-gcm"), "node {node}:\n{}", exit.log);
        assert!(!exit.log.contains("not applied"), "node {node}:\n{}", exit.log);
        assert!(
            new_rings(&exit.log).iter().any(|r| r.members == "[1, 2]"),
            "node {node} never installed a ring with members [1, 2]:\n{}",
            exit.log
        );
        assert_eq!(summary_count(&exit.log, "auth failed"), 0, "node {node}:\n{}", exit.log);
        assert_eq!(summary_count(&exit.log, "bad version"), 0, "node {node}:\n{}", exit.log);
    }
}

/// A node with another key gets no packet past the other's crypto (and the other way round):
/// neither ever sees a ring of both, and each counts the other's packets as auth failures.
#[test]
fn a_node_with_another_key_never_joins() {
    let nodes = [NodeDir::new("crypto-other-1", 7), NodeDir::new("crypto-other-2", 8)];
    let exits = run_pair(&nodes, "3");
    for (exit, node) in exits.iter().zip(1..) {
        assert!(exit.status.success(), "node {node} failed:\n{}", exit.log);
        assert!(
            new_rings(&exit.log).iter().all(|r| r.members != "[1, 2]"),
            "node {node} installed a ring with a node holding another key:\n{}",
            exit.log
        );
        assert!(
            summary_count(&exit.log, "auth failed") > 0,
            "node {node} counted no auth failure:\n{}",
            exit.log
        );
        assert!(
            exit.log.contains("failed authentication (different authkey?)"),
            "node {node}:\n{}",
            exit.log
        );
    }
}

/// Each start stores a boot epoch above the last one in the same state directory (so AEAD
/// nonces never repeat across restarts; see the `crypto` module doc), and at least the clock.
#[test]
fn the_boot_epoch_grows_across_starts() {
    let node = NodeDir::new("crypto-epoch", 7);
    let epoch_file = node.state().join("boot_epoch");
    let read_epoch = || -> u32 {
        let text = std::fs::read_to_string(&epoch_file).expect("read boot_epoch");
        text.trim_end().parse().unwrap_or_else(|_| panic!("boot_epoch holds {text:?}"))
    };
    let mut epochs = Vec::new();
    for _ in 0..BIND_ATTEMPTS {
        node.write_conf(port_free_on_two_addresses());
        let exit = node.spawn(1, "0.5").wait(EXIT_TIMEOUT);
        if bind_failed(&exit.log) {
            continue;
        }
        assert!(exit.status.success(), "{}", exit.log);
        epochs.push(read_epoch());
        if epochs.len() == 2 {
            break;
        }
    }
    assert_eq!(epochs.len(), 2, "no free port");
    let unix_now = std::time::UNIX_EPOCH.elapsed().expect("clock after 1970").as_secs();
    assert!(u64::from(epochs[0]) + 3600 > unix_now, "first epoch {} is not near the clock", epochs[0]);
    assert!(epochs[1] > epochs[0], "boot epoch did not grow: {epochs:?}");

    // A stored epoch ahead of the clock (the clock stepped back) is still exceeded.
    let ahead = epochs[1] + 1_000_000;
    std::fs::write(&epoch_file, format!("{ahead}\n")).expect("write boot_epoch");
    for _ in 0..BIND_ATTEMPTS {
        node.write_conf(port_free_on_two_addresses());
        let exit = node.spawn(1, "0.5").wait(EXIT_TIMEOUT);
        if bind_failed(&exit.log) {
            continue;
        }
        assert!(exit.status.success(), "{}", exit.log);
        assert_eq!(read_epoch(), ahead + 1);
        return;
    }
    panic!("no free port");
}

/// A missing key file stops the daemon at start with status 2 and a clear message; a key
/// others may read starts it with a warning.
#[test]
fn a_missing_key_is_a_startup_error_and_an_open_one_a_warning() {
    let node = NodeDir::new("crypto-missing", 7);
    std::fs::remove_file(&node.key).expect("remove key");
    node.write_conf(port_free_on_two_addresses());
    let exit = node.spawn(1, "0.5").wait(EXIT_TIMEOUT);
    assert_eq!(exit.status.code(), Some(2), "{}", exit.log);
    assert!(
        exit.log.contains(&format!("its key cannot be loaded: no key file at {}", node.key.display())),
        "{}",
        exit.log
    );
    assert!(!node.state().join("boot_epoch").exists(), "an epoch was stored without a key");

    write_key(&node.key, 7, 0o644);
    for _ in 0..BIND_ATTEMPTS {
        node.write_conf(port_free_on_two_addresses());
        let exit = node.spawn(1, "0.5").wait(EXIT_TIMEOUT);
        if bind_failed(&exit.log) {
            continue;
        }
        assert!(exit.status.success(), "{}", exit.log);
        assert!(exit.log.contains("key file mode is 0644"), "{}", exit.log);
        return;
    }
    panic!("no free port");
}
