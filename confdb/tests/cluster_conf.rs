//! cluster.conf conversion against golden files: `FIXTURE.cluster.conf` must convert to
//! exactly `FIXTURE.corosync.conf`. Run with `UPDATE_GOLDEN=1` to rewrite the golden files
//! after an intended change, and review the diff.

use std::path::{Path, PathBuf};

use confdb::{cluster_conf, conf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn check_golden(name: &str) -> String {
    let xml = std::fs::read_to_string(fixtures().join(format!("{name}.cluster.conf"))).expect("read fixture");
    let text = cluster_conf::to_corosync_conf(&xml).unwrap_or_else(|e| panic!("{name}: {e}"));
    let golden = fixtures().join(format!("{name}.corosync.conf"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).expect("write golden file");
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        text,
        expected,
        "{name}: output differs from {} (UPDATE_GOLDEN=1 rewrites it)",
        golden.display()
    );
    text
}

/// The output reads back as corosync.conf, and every key in it is one corosync (or our
/// fencing section) knows, except those the notes and comments explain.
fn assert_reads_back(name: &str, text: &str) -> conf::Parsed {
    let parsed =
        conf::parse(text, name).unwrap_or_else(|e| panic!("{name}: converted text does not parse: {e:?}"));
    assert!(parsed.warnings.is_empty(), "{name}: {:?}", parsed.warnings);
    parsed
}

/// The how-to's IPMI example: two nodes, one method each, one device per node.
#[test]
fn howto_ipmi_cluster_conf_converts_to_the_golden_file() {
    let text = check_golden("howto-ipmi");
    let parsed = assert_reads_back("howto-ipmi", &text);
    assert_eq!(parsed.value("totem.cluster_name"), Some("an-cluster"));
    assert_eq!(parsed.value("nodelist.node.1.ring0_addr"), Some("an-node02.alteeve.com"));
    assert_eq!(parsed.value("nodelist.node.1.nodeid"), Some("2"));
    assert_eq!(parsed.value("fencing.device.1.agent"), Some("fence_ipmilan"));
    assert_eq!(parsed.value("fencing.device.1.ipaddr"), Some("192.168.1.172"));
    assert_eq!(parsed.value("fencing.node.1.method.0.name"), Some("ipmi"));
    assert_eq!(parsed.value("fencing.node.1.method.0.device.0.name"), Some("fence_an02"));
    assert_eq!(parsed.value("fencing.node.1.method.0.device.0.action"), Some("reboot"));
}

/// The how-to's Node Assassin snippet: device attributes in file order, a port kept as "02".
#[test]
fn howto_node_assassin_snippet_converts_to_the_golden_file() {
    let text = check_golden("howto-node-assassin");
    let parsed = assert_reads_back("howto-node-assassin", &text);
    let device: Vec<(&str, &str)> = parsed
        .under("fencing.device.0")
        .map(|e| (&e.key["fencing.device.0.".len()..], e.value.as_str()))
        .collect();
    assert_eq!(
        device,
        vec![
            ("name", "motoko"),
            ("agent", "fence_na"),
            ("quiet", "true"),
            ("ipaddr", "motoko.alteeve.com"),
            ("login", "motoko"),
            ("passwd", "secret"),
        ]
    );
    assert_eq!(parsed.value("fencing.node.0.method.0.device.0.port"), Some("02"));
}

/// A cman two-node cluster: two_node quorum, totem tuning, two ordered methods with two
/// devices each, unfencing, and parts that have no corosync equivalent listed as notes.
#[test]
fn cman_two_node_cluster_converts_to_the_golden_file() {
    let text = check_golden("two-node-cman");
    let parsed = assert_reads_back("two-node-cman", &text);
    assert_eq!(parsed.value("quorum.two_node"), Some("1"));
    assert_eq!(parsed.value("quorum.expected_votes"), Some("1"));
    assert_eq!(parsed.value("totem.token"), Some("10000"));
    // cman's udpu with a redundant ring: only knet has several links in corosync 3.
    assert_eq!(parsed.value("totem.transport"), Some("knet"));
    assert_eq!(parsed.value("totem.interface.0.mcastport"), Some("5405"));
    assert_eq!(parsed.value("nodelist.node.0.ring1_addr"), Some("web1-storage.example.com"));
    assert_eq!(parsed.value("nodelist.node.0.quorum_votes"), Some("1"));
    assert_eq!(parsed.value("logging.logfile"), Some("/var/log/cluster/corosync.log"));
    assert_eq!(parsed.value("fencing.device.0.passwd"), Some("p&ss word"));
    assert_eq!(parsed.value("fencing.node.0.method.1.name"), Some("pdu"));
    assert_eq!(parsed.value("fencing.node.0.method.1.device.1.name"), Some("pdu_b"));
    assert_eq!(parsed.value("fencing.node.1.method.1.device.0.port"), Some("4"));
    assert_eq!(parsed.value("fencing.node.1.unfence.device.0.action"), Some("on"));

    let xml = std::fs::read_to_string(fixtures().join("two-node-cman.cluster.conf")).unwrap();
    let notes = cluster_conf::import(&xml).unwrap().notes;
    assert_eq!(
        notes,
        vec![
            "line 5: <cman transport=\"udpu\"> with <altname> (a redundant ring) becomes knet: corosync 3 \
             has several links only with knet",
            "line 8: <fence_daemon> (fenced timing) is not converted",
            "line 48: <rm> (rgmanager resources and services) is not converted",
        ]
    );
}
