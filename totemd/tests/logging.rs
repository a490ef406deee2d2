//! The real daemon's log outputs and its systemd notifications: corosync.conf's `logging`
//! section sends the log to a file at the configured level, and `NOTIFY_SOCKET` receives
//! `READY=1` once the first ring is installed and `STOPPING=1` at exit.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use common::{bind_failed, free_port, new_rings, TempDir};

/// Attempts when a port picked for the daemon turns out to be taken.
const BIND_ATTEMPTS: usize = 5;
/// Far more than any daemon here needs to stop by itself.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A daemon whose stdout and stderr go to files in `dir`; killed on drop if still running.
struct Run {
    child: Child,
}

impl Run {
    /// Starts totemd with `args` and `env`, without `RUST_LOG` (the file sets the level).
    fn spawn(dir: &Path, args: &[String], env: &[(&str, &Path)]) -> Run {
        let out = std::fs::File::create(dir.join("output")).expect("create output file");
        let err = out.try_clone().expect("clone output file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_totemd"));
        command.args(args).env_remove("RUST_LOG").env_remove("NOTIFY_SOCKET");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start totemd");
        Run { child }
    }

    /// Waits for the daemon to stop by itself; its status and what it printed.
    fn wait(mut self, dir: &Path) -> (ExitStatus, String) {
        for _ in 0..EXIT_TIMEOUT.as_millis() / 20 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, std::fs::read_to_string(dir.join("output")).unwrap_or_default());
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("totemd did not exit within {EXIT_TIMEOUT:?}");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A one-node corosync.conf on 127.0.0.1:`port` with `logging` as given.
fn one_node_conf(port: u16, logging: &str) -> String {
    format!(
        "totem {{\n version: 2\n cluster_name: logs\n transport: udpu\n token: 300\n token_coefficient: 0\n \
         interface {{\n  linknumber: 0\n  mcastport: {port}\n }}\n}}\n\
         logging {{\n{logging}}}\n\
         nodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  nodeid: 1\n }}\n}}\n"
    )
}

/// Runs one daemon to its end, picking another port when the one chosen was taken.
fn run_until_exit(
    dir: &TempDir,
    make_args: impl Fn(u16) -> Vec<String>,
    env: &[(&str, &Path)],
) -> (ExitStatus, String) {
    for _ in 0..BIND_ATTEMPTS {
        let (status, output) = Run::spawn(dir.path(), &make_args(free_port()), env).wait(dir.path());
        if !bind_failed(&output) {
            return (status, output);
        }
    }
    panic!("no free port on 127.0.0.1 after {BIND_ATTEMPTS} attempts");
}

/// `to_logfile: yes` with `debug: on` (corosync's logging options): the lines go to the file,
/// appended to what it held, at debug level; `to_stderr: no` keeps them off stderr.
#[test]
fn the_logging_section_sends_debug_lines_to_the_logfile() {
    let dir = TempDir::new("logfile");
    std::fs::create_dir_all(dir.path()).expect("create temp dir");
    let logfile = dir.path().join("totemd.log");
    std::fs::write(&logfile, "an earlier line\n").expect("seed log file");
    let conf = dir.path().join("corosync.conf");
    let logging = format!(
        " to_stderr: no\n to_logfile: yes\n logfile: {}\n to_syslog: no\n debug: on\n timestamp: on\n",
        logfile.display()
    );
    let state = dir.path().join("state");
    let args = |port| {
        std::fs::write(&conf, one_node_conf(port, &logging)).expect("write corosync.conf");
        [
            "--config",
            &conf.display().to_string(),
            "--state-dir",
            &state.display().to_string(),
            "--run-for",
            "2",
        ]
        .map(String::from)
        .to_vec()
    };
    let (status, output) = run_until_exit(&dir, args, &[]);
    let log = std::fs::read_to_string(&logfile).expect("read log file");
    assert!(status.success(), "totemd failed:\n{output}\nlog file:\n{log}");
    assert!(log.starts_with("an earlier line\n"), "the log file was not appended to:\n{log}");
    let rings = new_rings(&log);
    assert_eq!(rings.last().map(|r| r.members.as_str()), Some("[1]"), "no new ring in the log file:\n{log}");
    assert!(
        log.lines().any(|l| l.contains("DEBUG") && l.contains("stored ring seq")),
        "no debug line:\n{log}"
    );
    assert!(new_rings(&output).is_empty(), "to_stderr: no, yet the ring was printed:\n{output}");
}

/// A log file that cannot be opened stops the daemon with a clear error naming it.
#[test]
fn an_unopenable_logfile_is_a_startup_error() {
    let dir = TempDir::new("badlog");
    std::fs::create_dir_all(dir.path()).expect("create temp dir");
    let conf = dir.path().join("corosync.conf");
    let logfile = dir.path().join("missing-dir").join("totemd.log");
    let logging = format!(" to_logfile: yes\n logfile: {}\n to_syslog: no\n", logfile.display());
    std::fs::write(&conf, one_node_conf(free_port(), &logging)).expect("write corosync.conf");
    let args = ["--config", &conf.display().to_string(), "--state-dir", &dir.arg(), "--run-for", "2"]
        .map(String::from)
        .to_vec();
    let (status, output) = Run::spawn(dir.path(), &args, &[]).wait(dir.path());
    assert!(!status.success(), "totemd ran without its log file:\n{output}");
    let expected = format!("cannot open log file {}: ", logfile.display());
    assert!(output.contains(&expected), "no clear error:\n{output}");
}

/// systemd `Type=notify` (sd_notify(3)): `READY=1` with the ring as `STATUS=` once the first
/// regular configuration is installed, and `STOPPING=1` when the daemon stops.
#[test]
fn notify_socket_receives_ready_after_the_ring_forms_and_stopping_at_exit() {
    let dir = TempDir::new("notify");
    std::fs::create_dir_all(dir.path()).expect("create temp dir");
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("read timeout");
    let state = dir.path().join("state");
    let args = |port: u16| {
        ["--state-dir", &state.display().to_string(), "--nodeid", "1", "--bind", &format!("127.0.0.1:{port}")]
            .into_iter()
            .chain(["--token", "300", "--run-for", "2"])
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (status, output) = run_until_exit(&dir, args, &[("NOTIFY_SOCKET", &socket_path)]);
    assert!(status.success(), "totemd failed:\n{output}");

    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = socket.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    let ring = new_rings(&output).into_iter().next().unwrap_or_else(|| panic!("no ring:\n{output}"));
    let ready = format!("READY=1\nSTATUS=ring {}.{} members [1]", ring.representative, ring.seq);
    assert_eq!(messages.first(), Some(&ready), "messages {messages:?}; log:\n{output}");
    assert_eq!(messages.last().map(String::as_str), Some("STOPPING=1"), "messages {messages:?}");
    assert_eq!(messages.iter().filter(|m| m.starts_with("READY=1")).count(), 1, "messages {messages:?}");
}
