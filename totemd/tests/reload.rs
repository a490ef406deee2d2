//! Reloading corosync.conf while running (SIGHUP and `totemctl reload`): timing options and
//! log levels change at once, other changes are reported as needing a restart, a broken file
//! changes nothing, and the daemon keeps its ring throughout.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{free_port, new_rings, Daemon, TempDir};

const WAIT: Duration = Duration::from_secs(30);

fn conf(port: u16, token: u32, debug: &str, cluster_name: &str) -> String {
    format!(
        "totem {{\n version: 2\n cluster_name: {cluster_name}\n transport: udpu\n token: {token}\n \
         interface {{\n  linknumber: 0\n  mcastport: {port}\n }}\n}}\n\
         nodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  nodeid: 1\n }}\n}}\n\
         logging {{\n to_stderr: yes\n to_syslog: no\n debug: {debug}\n}}\n"
    )
}

fn totemctl_reload(socket: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["reload", "--socket"])
        .arg(socket)
        .output()
        .expect("run totemctl")
}

#[test]
fn reload_applies_timing_and_log_levels_reports_the_rest_and_survives_a_broken_file() {
    let dir = TempDir::new("reload");
    std::fs::create_dir_all(dir.path()).unwrap();
    let port = free_port();
    let file = dir.path().join("corosync.conf");
    let state = dir.path().join("state");
    std::fs::write(&file, conf(port, 1000, "off", "before")).unwrap();
    let mut daemon = Daemon::spawn_without_rust_log(&common::config_args(&file, &state));
    assert!(daemon.wait_for_line(WAIT, |l| l.contains("new ring")), "no ring:\n{}", daemon.log());
    let socket = state.join("totemd.sock");

    // totemctl reload: the token applies, the cluster name waits for a restart.
    std::fs::write(&file, conf(port, 1500, "off", "after")).unwrap();
    let out = totemctl_reload(&socket);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("applied: totem.token: 1000 -> 1500"), "{stdout}");
    assert!(stdout.contains("not applied (restart needed): totem.cluster_name: before -> after"), "{stdout}");

    // SIGHUP: debug logging on at once.
    std::fs::write(&file, conf(port, 1500, "on", "after")).unwrap();
    let hup = Command::new("kill").args(["-HUP", &daemon.pid().to_string()]).status().unwrap();
    assert!(hup.success());
    assert!(
        daemon.wait_for_line(WAIT, |l| l.contains("reload: applied logging.debug: off -> on")),
        "{}",
        daemon.log()
    );
    // A client connecting is logged at debug level only.
    let status =
        Command::new(env!("CARGO_BIN_EXE_totemctl")).args(["status", "--socket"]).arg(&socket).output();
    assert!(status.expect("run totemctl").status.success());
    assert!(
        daemon.wait_for_line(WAIT, |l| l.contains("DEBUG") && l.contains("IPC client")),
        "no debug line after the reload:\n{}",
        daemon.log()
    );

    // A broken file: a clear error at its line, nothing changes, the daemon runs on.
    std::fs::write(&file, conf(port, 1500, "on", "after").replace("token: 1500", "token: soon")).unwrap();
    let out = totemctl_reload(&socket);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("corosync.conf:5") && stderr.contains("totem.token"), "{stderr}");
    assert!(!daemon.exited(), "the daemon must survive a broken file");
    assert_eq!(new_rings(&daemon.log()).len(), 1, "the ring never changed:\n{}", daemon.log());

    daemon.terminate();
    let exit = daemon.wait(WAIT);
    assert!(exit.status.success(), "{}", exit.log);
}
