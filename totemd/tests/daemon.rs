//! The real `totemd` binary on 127.0.0.1: rings form, ring seqs survive restarts, the state
//! directory is exclusive, signals stop it cleanly.

mod common;

use std::time::Duration;

use common::{bind_failed, free_port, new_rings, peer_args, stored_ring_seq, Daemon, Exit, TempDir};

/// Attempts when a port picked for a daemon turns out to be taken.
const BIND_ATTEMPTS: usize = 5;
/// Far more than any daemon here needs to stop by itself.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

fn args(state: &TempDir, node: u32, port: u16, peers: &[(u32, u16)], run_for: &str) -> Vec<String> {
    let peers: Vec<(u32, String)> =
        peers.iter().map(|&(id, port)| (id, format!("127.0.0.1:{port}"))).collect();
    peer_args(state, node, &format!("127.0.0.1:{port}"), &peers, "300", Some(run_for))
}

/// Runs a one-node daemon on `state` until `--run-for` ends, on a free port.
fn run_one_node(state: &TempDir, run_for: &str) -> Exit {
    for _ in 0..BIND_ATTEMPTS {
        let exit = Daemon::spawn(&args(state, 1, free_port(), &[], run_for)).wait(EXIT_TIMEOUT);
        if !bind_failed(&exit.log) {
            return exit;
        }
    }
    panic!("no free port on 127.0.0.1 after {BIND_ATTEMPTS} attempts");
}

/// A lone node installs a one-member ring and stores its ring seq; after a restart its new ring
/// seq is strictly greater (Totem: ring ids only increase, also across restarts of a node).
#[test]
fn one_node_forms_a_ring_and_its_ring_seq_grows_across_restarts() {
    let state = TempDir::new("restart");

    let first = run_one_node(&state, "3");
    assert!(first.status.success(), "first run failed:\n{}", first.log);
    let rings = new_rings(&first.log);
    let ring = rings.last().unwrap_or_else(|| panic!("no new ring in the log:\n{}", first.log));
    assert_eq!(ring.members, "[1]", "log:\n{}", first.log);
    assert_eq!(ring.representative, 1);
    let seq1 = stored_ring_seq(state.path());
    assert!(seq1 >= ring.seq, "stored ring seq {seq1} below the installed ring {}", ring.seq);
    assert!(first.log.contains("stopped (run-for elapsed)"), "no exit summary:\n{}", first.log);
    assert!(!state.path().join("totemd.lock").exists(), "lock left after a clean exit");

    let second = run_one_node(&state, "3");
    assert!(second.status.success(), "second run failed:\n{}", second.log);
    assert!(second.log.contains(&format!("persisted ring seq {seq1}")), "log:\n{}", second.log);
    let second_ring = new_rings(&second.log).last().cloned().expect("a ring in the second run");
    assert_eq!(second_ring.members, "[1]");
    assert!(second_ring.seq > seq1, "ring {} not beyond the stored {seq1}", second_ring.seq);
    let seq2 = stored_ring_seq(state.path());
    assert!(seq2 > seq1, "ring seq did not grow across a restart: {seq1} then {seq2}");
}

/// Two daemons peering each other on loopback merge into one ring with both members, and both
/// install the same ring.
#[test]
fn two_daemons_on_loopback_form_a_two_node_ring() {
    for _ in 0..BIND_ATTEMPTS {
        let (state1, state2) = (TempDir::new("pair-1"), TempDir::new("pair-2"));
        let (port1, port2) = (free_port(), free_port());
        if port1 == port2 {
            continue;
        }
        let d1 = Daemon::spawn(&args(&state1, 1, port1, &[(2, port2)], "4"));
        let d2 = Daemon::spawn(&args(&state2, 2, port2, &[(1, port1)], "4"));
        let (e1, e2) = (d1.wait(EXIT_TIMEOUT), d2.wait(EXIT_TIMEOUT));
        if bind_failed(&e1.log) || bind_failed(&e2.log) {
            continue;
        }
        for (exit, name) in [(&e1, "node 1"), (&e2, "node 2")] {
            assert!(exit.status.success(), "{name} failed:\n{}", exit.log);
            assert!(
                new_rings(&exit.log).iter().any(|r| r.members == "[1, 2]"),
                "{name} never installed a ring with members [1, 2]:\n{}",
                exit.log
            );
        }
        let last1 = new_rings(&e1.log).last().cloned();
        let last2 = new_rings(&e2.log).last().cloned();
        assert_eq!(last1, last2, "the nodes ended in different rings");
        assert_eq!(last1.expect("a ring").representative, 1, "the lowest node id represents the ring");
        return;
    }
    panic!("no free ports on 127.0.0.1 after {BIND_ATTEMPTS} attempts");
}

/// While a daemon runs, a second one on the same state directory refuses to start and names
/// the first one's pid; SIGTERM then stops the first cleanly and releases the lock.
#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let state = TempDir::new("exclusive");
    let mut first = None;
    for _ in 0..BIND_ATTEMPTS {
        let mut d = Daemon::spawn(&args(&state, 1, free_port(), &[], "20"));
        if d.wait_for_line(Duration::from_secs(10), |l| l.contains("new ring ") && l.contains("members [1]"))
        {
            first = Some(d);
            break;
        }
        let exit = d.wait(EXIT_TIMEOUT);
        assert!(bind_failed(&exit.log), "first daemon formed no ring:\n{}", exit.log);
    }
    let first = first.expect("a free port for the first daemon");

    let second = Daemon::spawn(&args(&state, 1, free_port(), &[], "20")).wait(EXIT_TIMEOUT);
    assert_eq!(second.status.code(), Some(1), "second daemon was not refused:\n{}", second.log);
    let expected = format!("is in use by another totemd (pid {}", first.pid());
    assert!(second.log.contains(&expected), "unclear error:\n{}", second.log);
    assert!(state.path().join("totemd.lock").exists(), "the refused daemon removed the lock");

    first.terminate();
    let exit = first.wait(EXIT_TIMEOUT);
    assert!(exit.status.success(), "SIGTERM is a clean stop:\n{}", exit.log);
    assert!(exit.log.contains("stopping: SIGTERM"), "log:\n{}", exit.log);
    assert!(exit.log.contains("stopped (SIGTERM)"), "no exit summary:\n{}", exit.log);
    assert!(!state.path().join("totemd.lock").exists(), "lock left after SIGTERM");
}

/// A lock whose pid no longer runs (a daemon that was killed) is taken over.
#[test]
fn a_stale_lock_of_a_dead_process_is_taken_over() {
    let state = TempDir::new("stale");
    let mut dead = std::process::Command::new("true").spawn().expect("run true");
    let dead_pid = dead.id();
    dead.wait().expect("wait for true");
    std::fs::create_dir_all(state.path()).expect("create state dir");
    std::fs::write(state.path().join("totemd.lock"), format!("{dead_pid}\n")).expect("write lock");

    let exit = run_one_node(&state, "0.5");
    assert!(exit.status.success(), "stale lock not taken over:\n{}", exit.log);
    assert!(exit.log.contains(&format!("stale lock left by pid {dead_pid}")), "log:\n{}", exit.log);
    assert!(!state.path().join("totemd.lock").exists());
}

/// A ring seq file that holds no ring seq stops the daemon with status 2 before it sends
/// anything: guessing could reuse a ring id.
#[test]
fn a_corrupt_ring_seq_file_is_refused_with_status_2() {
    let state = TempDir::new("corrupt");
    std::fs::create_dir_all(state.path()).expect("create state dir");
    std::fs::write(state.path().join("ring_seq"), "twelve\n").expect("write ring_seq");

    let exit = run_one_node(&state, "0.5");
    assert_eq!(exit.status.code(), Some(2), "log:\n{}", exit.log);
    assert!(exit.log.contains("ring_seq is corrupt"), "unclear error:\n{}", exit.log);
    assert_eq!(std::fs::read_to_string(state.path().join("ring_seq")).unwrap(), "twelve\n", "file changed");
    assert!(!state.path().join("totemd.lock").exists(), "lock left after a refused start");
}
