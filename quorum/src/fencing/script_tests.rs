//! The stdin we build, fed to contrib/fence_totem_test: the agent reads it as intended.

use std::io::Write;
use std::process::{Command, Stdio};

use totem::NodeId;

use super::agent::run_agent;
use super::{Device, DeviceRef, FenceConfig, Method, NodeFencing, OpId};

fn run_script(stdin: &str) -> i32 {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/fence_totem_test");
    let mut child = Command::new("bash")
        .arg(script)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash runs");
    child.stdin.take().expect("piped").write_all(stdin.as_bytes()).expect("stdin written");
    child.wait().expect("agent exits").code().expect("exit code")
}

fn config(pid: u32) -> FenceConfig {
    let attr = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let mut c = FenceConfig::default();
    c.devices.insert(
        "test".into(),
        Device {
            agent: "fence_totem_test".into(),
            attrs: vec![attr("action", "reboot"), attr("login", "x")],
        },
    );
    let dref = DeviceRef {
        device: "test".into(),
        attrs: vec![attr("pid", &pid.to_string()), attr("action", "status")],
    };
    let method = Method { name: "test".into(), devices: vec![dref] };
    c.nodes.insert(NodeId(1), NodeFencing { name: "n1".into(), methods: vec![method] });
    c
}

#[test]
fn test_agent_reads_our_stdin() {
    // `status` of our own (running) process: the node reference's action overrides the
    // device's, and the pid reaches the agent.
    let run = run_agent(&config(std::process::id()), OpId(1), NodeId(1), 0, 0);
    assert_eq!(run.stdin, format!("action=status\nlogin=x\npid={}\nnodename=n1\n", std::process::id()));
    assert_eq!(run_script(&run.stdin), 0);
    // A pid that cannot exist: status says off.
    let run = run_agent(&config(u32::MAX), OpId(2), NodeId(1), 0, 0);
    assert_eq!(run_script(&run.stdin), 2);
    assert_eq!(run_script("action=frobnicate\n"), 1);
}
