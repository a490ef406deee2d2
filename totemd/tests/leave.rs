//! SIGTERM is a clean leave: the other members fail the node at once and install a new ring
//! without waiting for a token timeout.

mod common;

use std::time::Duration;

use common::{bind_failed, free_port, new_rings, peer_args, Daemon, TempDir};

const BIND_ATTEMPTS: usize = 5;
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// A token timeout far longer than the survivors run after the leave: a new ring in that time
/// can only come from the leave notice, not from token loss (which would also need consensus).
const TOKEN_MS: &str = "20000";

fn args(state: &TempDir, node: u32, ports: &[u16; 3], run_for: Option<&str>) -> Vec<String> {
    let addr = |n: u32| format!("127.0.0.1:{}", ports[n as usize - 1]);
    let peers: Vec<(u32, String)> = (1..=3).filter(|&p| p != node).map(|p| (p, addr(p))).collect();
    peer_args(state, node, &addr(node), &peers, TOKEN_MS, run_for)
}

/// Three daemons form [1, 2, 3]; node 3 gets SIGTERM; nodes 1 and 2 log its clean leave and
/// install [1, 2] long before a token timeout could have fired.
#[test]
fn sigterm_is_a_clean_leave_and_the_others_form_a_new_ring_at_once() {
    for _ in 0..BIND_ATTEMPTS {
        let dirs = [TempDir::new("leave-1"), TempDir::new("leave-2"), TempDir::new("leave-3")];
        let ports = [free_port(), free_port(), free_port()];
        if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
            continue;
        }
        let d1 = Daemon::spawn(&args(&dirs[0], 1, &ports, Some("8")));
        let d2 = Daemon::spawn(&args(&dirs[1], 2, &ports, Some("8")));
        let mut d3 = Daemon::spawn(&args(&dirs[2], 3, &ports, None));
        let formed = d3.wait_for_line(Duration::from_secs(6), |l| l.contains("members [1, 2, 3]"));
        if bind_failed(&d3.log()) || bind_failed(&d1.log()) || bind_failed(&d2.log()) {
            continue;
        }
        assert!(formed, "no ring of [1, 2, 3]:\n{}", d3.log());
        d3.terminate();
        let e3 = d3.wait(EXIT_TIMEOUT);
        assert!(e3.status.success(), "node 3 did not stop cleanly:\n{}", e3.log);
        assert!(e3.log.contains("leaving the ring"), "{}", e3.log);
        for (daemon, name) in [(d1, "node 1"), (d2, "node 2")] {
            let exit = daemon.wait(EXIT_TIMEOUT);
            assert!(exit.status.success(), "{name} failed:\n{}", exit.log);
            assert!(exit.log.contains("member left the ring cleanly"), "{name}:\n{}", exit.log);
            let rings = new_rings(&exit.log);
            let full = rings.iter().position(|r| r.members == "[1, 2, 3]").expect("joined [1, 2, 3]");
            assert!(
                rings[full..].iter().any(|r| r.members == "[1, 2]"),
                "{name} never installed [1, 2] after the leave:\n{}",
                exit.log
            );
        }
        return;
    }
    panic!("no free ports on 127.0.0.1 after {BIND_ATTEMPTS} attempts");
}
