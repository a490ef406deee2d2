//! Quorum tables (testdata/*.txt), in the manner of raft-rs's src/quorum/testdata.
//!
//! Each line: `config | steps | expectations`. Steps, separated by `;`:
//! `ring 1,2,3 4,5` installs each group as a ring (nodes not named are frozen),
//! `wait MS` advances time and fires timeouts, `restart NODE` gives a node a new service with
//! no state (in no ring until the next `ring`), `expected N@AT` / `votes NODE=N@AT` make a
//! run-time change at node AT (`expected?` / `votes?`: the change must be refused),
//! `cancel_wfa@AT` sets quorum.cancel_wait_for_all at node AT.
//! Expectations: `NODE:quorate/quorum/expected_votes`, e.g. `1:yes/2/3 4:no/3/5`.

mod common;

use common::{parse_config, Cluster};

fn run_step(cluster: &mut Cluster, step: &str) {
    let (verb, rest) = step.split_once(' ').unwrap_or((step, ""));
    let at = |s: &str| {
        let (v, at) = s.split_once('@').expect("change needs @node");
        (v.to_string(), at.parse::<u32>().unwrap())
    };
    match verb {
        "ring" => {
            let groups = rest.split_whitespace().map(|g| g.split(',').map(|n| n.parse().unwrap()).collect());
            cluster.rings(&groups.collect::<Vec<_>>());
        }
        "wait" => cluster.wait(rest.parse().unwrap()),
        "restart" => cluster.restart(rest.parse().unwrap()),
        "expected" | "expected?" => {
            let (v, node) = at(rest);
            let r = cluster.set_expected(node, v.parse().unwrap());
            assert_eq!(r.is_ok(), verb == "expected", "{step}: {r:?}");
        }
        "votes" | "votes?" => {
            let (v, node) = at(rest);
            let (target, votes) = v.split_once('=').unwrap();
            let r = cluster.set_votes(node, target.parse().unwrap(), votes.parse().unwrap());
            assert_eq!(r.is_ok(), verb == "votes", "{step}: {r:?}");
        }
        _ if verb.starts_with("cancel_wfa@") => cluster.cancel_wait_for_all(verb[11..].parse().unwrap()),
        _ => panic!("unknown step {step:?}"),
    }
}

fn check_file(name: &str) {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        cases += 1;
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(parts.len(), 3, "{path}:{}: config | steps | expectations", n + 1);
        let (ids, config) = parse_config(parts[0]);
        let mut cluster = Cluster::new(&config, &ids);
        for step in parts[1].split(';').map(str::trim) {
            run_step(&mut cluster, step);
        }
        let actual: Vec<String> = parts[2]
            .split_whitespace()
            .map(|e| {
                let id: u32 = e.split_once(':').unwrap().0.parse().unwrap();
                format!("{id}:{}", cluster.summary(id))
            })
            .collect();
        let actual = actual.join(" ");
        let wanted = parts[2].split_whitespace().collect::<Vec<_>>().join(" ");
        if actual != wanted {
            failures.push(format!("{path}:{}:\n  want {wanted}\n  got  {actual}", n + 1));
        }
    }
    assert!(cases > 0, "{path} has no cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn basic() {
    check_file("basic.txt");
}

#[test]
fn two_node() {
    check_file("two_node.txt");
}

#[test]
fn wait_for_all() {
    check_file("wait_for_all.txt");
}

#[test]
fn last_man_standing() {
    check_file("last_man_standing.txt");
}

#[test]
fn auto_tie_breaker() {
    check_file("auto_tie_breaker.txt");
}

#[test]
fn runtime_changes() {
    check_file("runtime.txt");
}
