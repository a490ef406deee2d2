//! The real binaries with configuration files: `totemd --validate`, three daemons on
//! 127.0.0.1/2/3 started from corosync.conf files, `totemctl config check` and `import`.

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{bind_failed, new_rings, Daemon, TempDir};

/// Attempts when a port picked for the daemons turns out to be taken.
const BIND_ATTEMPTS: usize = 5;
/// Far more than any daemon here needs to stop by itself.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory (created) holding `name` with `text`; returns the directory and the file path.
fn write_file(dir_name: &str, name: &str, text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(dir_name);
    std::fs::create_dir_all(dir.path()).expect("create temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write file");
    (dir, path)
}

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary).args(args).output().unwrap_or_else(|e| panic!("run {binary}: {e}"))
}

fn totemd(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_totemd"), args)
}

fn totemctl(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_totemctl"), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A corosync.conf for nodes 1..=3 at 127.0.0.N, udpu, all on `port`.
fn three_node_conf(port: u16) -> String {
    format!(
        "# Three nodes on one host: each daemon picks its entry with --nodeid.
totem {{
    version: 2
    cluster_name: loopback
    transport: udpu
    token: 300
    token_coefficient: 0
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
    node {{
        ring0_addr: 127.0.0.3
        nodeid: 3
    }}
}}

quorum {{
    provider: corosync_votequorum
}}

logging {{
    to_stderr: yes
    to_syslog: no
}}
"
    )
}

/// A UDP port that was free a moment ago on 127.0.0.1, .2 and .3.
fn port_free_on_three_addresses() -> u16 {
    loop {
        let first = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = first.local_addr().expect("local address").port();
        let others =
            [2u8, 3].map(|n| UdpSocket::bind(std::net::SocketAddr::from(([127, 0, 0, n], port))).is_ok());
        if others.iter().all(|&ok| ok) {
            return port;
        }
    }
}

#[test]
fn validate_accepts_a_good_file_with_status_0() {
    let (_dir, path) = write_file("validate-good", "corosync.conf", &three_node_conf(5405));
    let out = totemd(&["--validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("valid: cluster loopback, 3 nodes, transport udpu, token 300 ms"), "{stdout}");
}

/// Every error is printed as FILE:LINE with the key; warnings too; nothing starts.
#[test]
fn validate_refuses_a_bad_file_with_status_2_and_every_error_at_its_line() {
    let bad = "\
totem {
    version: 2
    token: 3 seconds
    tokne: 1000
    transport: tcp
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
    }
    node {
        ring0_addr: 127.0.0.300
        nodeid: 2
    }
}
";
    let (dir, path) = write_file("validate-bad", "corosync.conf", bad);
    let file = path.to_str().unwrap();
    let out = totemd(&["--validate", file, "--state-dir", dir.path().join("state").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    for (line, what) in [
        (3, "error: totem.token: expects a time in milliseconds"),
        (4, "warning: unknown key 'tokne' in totem (did you mean 'token'?)"),
        (5, "error: totem.transport: expects knet, udpu or udp, found \"tcp\""),
        (8, "error: nodelist.node.0.nodeid: missing"),
        (
            12,
            "error: nodelist.node.1.ring0_addr: expects an IP address or a host name, found \"127.0.0.300\"",
        ),
    ] {
        let expected = format!("{file}:{line}: {what}");
        assert!(stderr.contains(&expected), "no {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains(&format!("{file}: 4 errors, 1 warning")), "{stderr}");
    assert!(!dir.path().join("state").exists(), "--validate started something");
}

/// Three daemons, each with its own copy of corosync.conf, its own --state-dir and --nodeid
/// (all of 127.0.0.0/8 is local, so every entry matches this host), form one ring of [1, 2, 3],
/// the same ring on every node.
#[test]
fn three_daemons_from_corosync_conf_files_form_one_ring() {
    for _ in 0..BIND_ATTEMPTS {
        let port = port_free_on_three_addresses();
        let nodes: Vec<(TempDir, PathBuf)> = (1..=3)
            .map(|n| write_file(&format!("ring3-{n}"), "corosync.conf", &three_node_conf(port)))
            .collect();
        let daemons: Vec<Daemon> = nodes
            .iter()
            .enumerate()
            .map(|(i, (dir, conf))| {
                Daemon::spawn(&[
                    "--config".to_string(),
                    conf.display().to_string(),
                    "--nodeid".to_string(),
                    (i + 1).to_string(),
                    "--state-dir".to_string(),
                    dir.path().join("state").display().to_string(),
                    "--run-for".to_string(),
                    "4".to_string(),
                ])
            })
            .collect();
        let exits: Vec<_> = daemons.into_iter().map(|d| d.wait(EXIT_TIMEOUT)).collect();
        if exits.iter().any(|e| bind_failed(&e.log)) {
            continue;
        }
        for (i, exit) in exits.iter().enumerate() {
            let node = i + 1;
            assert!(exit.status.success(), "node {node} failed:\n{}", exit.log);
            assert!(
                exit.log.contains(&format!("node id {node}, bind 127.0.0.{node}:{port}")),
                "{}",
                exit.log
            );
            assert!(
                new_rings(&exit.log).iter().any(|r| r.members == "[1, 2, 3]"),
                "node {node} never installed a ring with members [1, 2, 3]:\n{}",
                exit.log
            );
        }
        // Compare each node's last ring of [1, 2, 3], not its last ring: the first daemon to stop
        // leaves cleanly, so the others may install a ring without it just before they stop.
        let full: Vec<_> = exits
            .iter()
            .map(|e| new_rings(&e.log).into_iter().rev().find(|r| r.members == "[1, 2, 3]"))
            .collect();
        assert!(
            full.windows(2).all(|w| w[0] == w[1]),
            "the nodes installed different rings of [1, 2, 3]: {full:?}"
        );
        return;
    }
    panic!("no port free on 127.0.0.1-3 after {BIND_ATTEMPTS} attempts");
}

/// Without --nodeid, three local entries are ambiguous: a clear error, status 2.
#[test]
fn an_ambiguous_local_node_is_a_clear_error() {
    let (dir, path) = write_file("ambiguous", "corosync.conf", &three_node_conf(5405));
    let state = dir.path().join("state");
    let out = totemd(&[
        "--config",
        path.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--run-for",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "nodes 1 (127.0.0.1), 2 (127.0.0.2), 3 (127.0.0.3) all have addresses on this host: \
                         choose this daemon's node with --nodeid"
        ),
        "{stderr}"
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../confdb/tests/fixtures").join(name)
}

/// `config import` writes the golden conversion of the how-to's cluster.conf (mode 0600),
/// refuses to overwrite without --force, and `config check` accepts the result.
#[test]
fn totemctl_imports_cluster_conf_and_checks_the_result() {
    use std::os::unix::fs::PermissionsExt;

    let dir = TempDir::new("import");
    std::fs::create_dir_all(dir.path()).unwrap();
    let out_path = dir.path().join("corosync.conf");
    let out_arg = out_path.to_str().unwrap();
    let input = fixture("howto-ipmi.cluster.conf");
    let input_arg = input.to_str().unwrap();

    let stdout_run = totemctl(&["config", "import", input_arg]);
    assert!(stdout_run.status.success(), "{}", text(&stdout_run.stderr));
    let golden = std::fs::read_to_string(fixture("howto-ipmi.corosync.conf")).unwrap();
    assert_eq!(text(&stdout_run.stdout), golden);

    let written = totemctl(&["config", "import", input_arg, "-o", out_arg]);
    assert!(written.status.success(), "{}", text(&written.stderr));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), golden);
    let mode = std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "fence passwords must not be world-readable");

    let again = totemctl(&["config", "import", input_arg, "-o", out_arg]);
    assert_eq!(again.status.code(), Some(1), "overwrote without --force");
    assert!(totemctl(&["config", "import", input_arg, "-o", out_arg, "--force"]).status.success());

    let check = totemctl(&["config", "check", out_arg]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("valid: cluster an-cluster, 2 nodes"));
}

#[test]
fn totemctl_check_and_import_refuse_bad_input_with_status_2() {
    let (_dir, conf) = write_file("check-bad", "corosync.conf", "totem {\n    version: 1\n}\n");
    let out = totemctl(&["config", "check", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{}:2: error: totem.version", conf.display())), "{stderr}");

    let (_dir2, xml) = write_file("import-bad", "cluster.conf", "<cluster name=\"c\">\n  <clusternodes>\n");
    let out = totemctl(&["config", "import", xml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not well-formed XML"), "{}", text(&out.stderr));
}
