//! corosync.conf to [`FileConfig`] to [`DaemonConfig`]: defaults, corosync's derived values,
//! every error with its line, and the choice of this host's node (with a fake host).

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use totem::NodeId;

use super::*;
use crate::crypto::{CryptoCipher, CryptoHash};

fn load(text: &str) -> FileConfig {
    FileConfig::load(text, "c.conf", &Overrides::default())
        .unwrap_or_else(|e| panic!("refused: {:#?}", e.errors))
}

fn errors(text: &str) -> Vec<String> {
    let invalid = FileConfig::load(text, "c.conf", &Overrides::default()).expect_err("should be refused");
    invalid.errors.iter().map(ToString::to_string).collect()
}

fn warnings(text: &str) -> Vec<String> {
    load(text).warnings.iter().map(ToString::to_string).collect()
}

/// A valid file with `totem` options `totem` and nodes 1..=n at 10.0.0.N.
fn cluster(totem: &str, n: u32) -> String {
    let mut text = format!("totem {{\n version: 2\n{totem}}}\nnodelist {{\n");
    for i in 1..=n {
        text.push_str(&format!(" node {{\n  ring0_addr: 10.0.0.{i}\n  nodeid: {i}\n }}\n"));
    }
    text.push_str("}\n");
    text
}

#[test]
fn corosync_defaults_apply_when_the_file_says_little() {
    let c = load(&cluster("", 2));
    let d = TotemConfig::default();
    assert_eq!(c.totem, d, "two nodes: no token_coefficient, consensus 1.2 × 3000 ms");
    assert_eq!(c.settings.transport, Transport::Knet);
    assert_eq!(c.settings.ip_version, IpVersion::Ipv6Then4);
    assert_eq!(c.settings.links.keys().copied().collect::<Vec<_>>(), vec![0]);
    assert_eq!(c.settings.links[&0].mcastport, 5405);
    assert_eq!(c.settings.crypto.cipher, CryptoCipher::None);
    assert_eq!(c.settings.crypto.hash, CryptoHash::None);
    assert_eq!(c.settings.crypto.keyfile, PathBuf::from("/etc/corosync/authkey"));
    assert_eq!(c.settings.logging, LoggingSettings::default());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// corosync.conf(5), token_coefficient: token + (nodes - 2) × token_coefficient for 3+ nodes,
/// and consensus defaults to 1.2 × that real token.
#[test]
fn token_coefficient_grows_the_token_with_the_node_count() {
    let c = load(&cluster(" token: 1000\n", 5));
    assert_eq!(c.totem.token, Duration::from_millis(1000 + 3 * 650));
    assert_eq!(c.totem.consensus, Duration::from_millis(3540));
    let c = load(&cluster(" token: 1000\n token_coefficient: 0\n", 5));
    assert_eq!(c.totem.token, Duration::from_millis(1000));
    let c = load(&cluster(" token: 1000\n token_coefficient: 100\n consensus: 5000\n", 3));
    assert_eq!(
        (c.totem.token, c.totem.consensus),
        (Duration::from_millis(1100), Duration::from_millis(5000))
    );
    // --token replaces the file's token; the coefficient still applies.
    let over = Overrides { token: Some(Duration::from_millis(300)) };
    let c = FileConfig::load(&cluster(" token: 1000\n", 3), "c.conf", &over).unwrap();
    assert_eq!(c.totem.token, Duration::from_millis(950));
}

#[test]
fn every_totem_option_maps_to_its_field() {
    let c = load(&cluster(
        " transport: udpu\n cluster_name: c1\n config_version: 7\n token_retransmits_before_loss_const: 6\n \
         hold: 100\n join: 60\n consensus: 4000\n merge: 300\n downcheck: 2000\n fail_recv_const: 100\n \
         seqno_unchanged_const: 20\n miss_count_const: 6\n window_size: 60\n max_messages: 20\n send_join: 10\n \
         netmtu: 1400\n max_network_delay: 50\n",
        2,
    ));
    let t = &c.totem;
    assert_eq!(t.token_retransmits_before_loss_const, 6);
    assert_eq!(
        (t.hold, t.join, t.consensus),
        (Duration::from_millis(100), Duration::from_millis(60), Duration::from_millis(4000))
    );
    assert_eq!(
        (t.merge, t.downcheck, t.send_join),
        (Duration::from_millis(300), Duration::from_millis(2000), Duration::from_millis(10))
    );
    assert_eq!((t.fail_recv_const, t.seqno_unchanged_const, t.miss_count_const), (100, 20, 6));
    assert_eq!((t.window_size, t.max_messages, t.netmtu), (60, 20, 1400));
    assert_eq!(c.settings.cluster_name.as_deref(), Some("c1"));
    assert_eq!(c.settings.config_version, 7);
    assert_eq!(c.settings.transport, Transport::Udpu);
}

#[test]
fn a_window_below_the_default_max_messages_lowers_it() {
    let parsed = |totem: &str| {
        let t = load(&cluster(totem, 2)).totem;
        (t.window_size, t.max_messages)
    };
    assert_eq!(parsed(""), (400, 128));
    assert_eq!(parsed(" window_size: 50\n"), (50, 50));
    assert_eq!(parsed(" window_size: 50\n max_messages: 17\n"), (50, 17));
    assert_eq!(parsed(" max_messages: 300\n"), (400, 300));
}

#[test]
fn bad_values_and_missing_keys_are_errors_naming_line_key_and_form() {
    let text = "\
totem {
 transport: tcp
 token: 20
 max_messages: 500
 netmtu: 100
}
nodelist {
 node {
  ring0_addr: 10.0.0.1
 }
 node {
  nodeid: 0
  ring0_addr: 10.0.0.2
 }
 node {
  nodeid: 3
 }
}
";
    assert_eq!(
        errors(text),
        vec![
            "c.conf:1: totem.version: missing: corosync.conf needs 'version: 2' in the totem section",
            "c.conf:2: totem.transport: expects knet, udpu or udp, found \"tcp\"",
            "c.conf:3: totem.token: expects a time in milliseconds from 30 to 4294967295, found \"20\"",
            "c.conf:4: totem.max_messages: 500 exceeds window_size (400)",
            "c.conf:5: totem.netmtu: expects a packet size in bytes from 416 to 65535, found \"100\"",
            "c.conf:8: nodelist.node.0.nodeid: missing: totemd needs every node's nodeid (as corosync does with knet)",
            "c.conf:12: nodelist.node.1.nodeid: expects a node id from 1 to 4294967295, found \"0\"",
            "c.conf:15: nodelist.node.2.ring0_addr: missing: every node needs ring0_addr, its address on link 0",
        ]
    );
    assert_eq!(
        errors("totem {\n version: 2\n}\n"),
        vec!["c.conf:3: nodelist: no node: list every node of the cluster, each with a nodeid and a ring0_addr"]
    );
}

#[test]
fn consensus_below_token_is_refused_at_its_line() {
    assert_eq!(
        errors(&cluster(" token: 1000\n consensus: 900\n", 2)),
        vec![
            "c.conf:4: totem.consensus: 900 ms is less than the token timeout of 1000 ms (token_coefficient \
             included); totemd needs consensus >= token"
        ]
    );
}

#[test]
fn duplicate_ids_and_addresses_are_refused() {
    let text = "totem {\n version: 2\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n  nodeid: 1\n }\n \
                node {\n  ring0_addr: 10.0.0.1\n  nodeid: 1\n }\n}\n";
    assert_eq!(
        errors(text),
        vec![
            "c.conf:10: nodelist.node.1.ring0_addr: 10.0.0.1 is also the address of the node at line 5",
            "c.conf:11: nodelist.node.1.nodeid: 1 is also the nodeid of the node at line 5",
        ]
    );
}

#[test]
fn links_follow_corosync_rules() {
    let two_links =
        "totem {\n version: 2\n transport: udpu\n interface {\n  linknumber: 1\n  mcastport: 6000\n }\n}\n\
                     nodelist {\n node {\n  ring0_addr: 10.0.0.1\n  ring1_addr: 10.1.0.1\n  nodeid: 1\n }\n \
                     node {\n  ring0_addr: 10.0.0.2\n  nodeid: 2\n }\n}\n";
    assert_eq!(
        errors(two_links),
        vec![
            "c.conf:3: totem.transport: udpu has link 0 only, but links 0, 1 are configured (ringN_addr or \
             interface linknumber): use transport: knet for several links",
            "c.conf:10: nodelist.node (node 1): name: missing: with several links every node needs a name",
            "c.conf:15: nodelist.node (node 2): has addresses on links 0 but node 1 (line 10) on links 0, 1: \
             every node needs an address on every link",
            "c.conf:15: nodelist.node (node 2): name: missing: with several links every node needs a name",
        ]
    );
    let knet = "totem {\n version: 2\n interface {\n  linknumber: 1\n  mcastport: 6000\n  knet_ping_interval: 20\n }\n}\n\
                nodelist {\n node {\n  ring0_addr: 10.0.0.1\n  ring1_addr: fd00::1\n  nodeid: 1\n  name: a\n }\n \
                node {\n  ring0_addr: 10.0.0.2\n  ring1_addr: fd00::2\n  nodeid: 2\n  name: b\n }\n}\n";
    let c = load(knet);
    assert_eq!(c.settings.links[&0].mcastport, 5405);
    assert_eq!(c.settings.links[&1].mcastport, 6000);
    assert_eq!(c.settings.nodes[1].addrs[&1], RingAddr::Ip("fd00::2".parse().unwrap()));
    // The heartbeat options are used by the link layer: no warning.
    assert_eq!(warnings(knet), Vec::<String>::new());
    assert_eq!(c.settings.links[&1].knet_ping_interval, Some(std::time::Duration::from_millis(20)));
    let mixed = cluster(" transport: udpu\n", 1)
        .replace("}\n}\n", "}\n node {\n  ring0_addr: fd00::2\n  nodeid: 2\n }\n}\n");
    assert_eq!(
        errors(&mixed),
        vec![
            "c.conf:10: nodelist.node (node 2): ring0_addr fd00::2 is not of the address family of node 1 on link 0 \
             (10.0.0.1): one family per link"
        ]
    );
}

#[test]
fn crypto_logging_uidgid_and_system_settings_are_read() {
    let text = cluster(" secauth: on\n keyfile: /etc/totem/key\n", 2)
        + "logging {\n to_logfile: yes\n logfile: /var/log/totemd.log\n to_syslog: no\n debug: trace\n timestamp: on\n}\n\
           uidgid {\n uid: hacluster\n gid: haclient\n}\nsystem {\n state_dir: /var/lib/totemd\n}\n";
    let c = load(&text);
    assert_eq!(
        (c.settings.crypto.cipher, c.settings.crypto.hash),
        (CryptoCipher::Aes256, CryptoHash::Sha256)
    );
    assert_eq!(c.settings.crypto.keyfile, PathBuf::from("/etc/totem/key"));
    let l = &c.settings.logging;
    assert!(l.to_logfile && !l.to_syslog && l.to_stderr);
    assert_eq!(l.logfile, Some(PathBuf::from("/var/log/totemd.log")));
    assert_eq!((l.debug, l.timestamp), (DebugLevel::Trace, Timestamp::On));
    assert_eq!(c.settings.uidgid, vec![UidGid::Uid("hacluster".into()), UidGid::Gid("haclient".into())]);
    assert_eq!(c.state_dir, Some(PathBuf::from("/var/lib/totemd")));

    assert_eq!(
        errors(&cluster(" crypto_cipher: aes256\n crypto_hash: none\n key: short\n", 2)),
        vec![
            "c.conf:3: totem.crypto_cipher: crypto_cipher aes256 requires crypto_hash with value other than none",
            "c.conf:5: totem.key: expects a key of 128 to 4096 bytes, found 5 bytes",
        ]
    );
    assert_eq!(
        errors(
            &(cluster("", 1) + "logging {\n to_logfile: yes\n debug: loud\n}\nquorum {\n two_node: 2\n}\n")
        ),
        vec![
            "c.conf:11: logging.to_logfile: yes needs logging.logfile: PATH",
            "c.conf:12: logging.debug: expects off, on or trace, found \"loud\"",
            "c.conf:15: quorum.two_node: expects 0 or 1, found \"2\"",
        ]
    );
}

#[test]
fn knet_tuning_and_unknown_keys_are_warnings() {
    assert_eq!(
        warnings(&cluster(" knet_compression_model: zlib\n link_mode: passive\n tokem: 1\n", 2)),
        vec![
            "c.conf:3: totem.knet_compression_model is accepted but has no effect: totemd has no knet link layer to tune",
            "c.conf:4: totem.link_mode is accepted but has no effect: totemd has no knet link layer to tune",
            "c.conf:5: unknown key 'tokem' in totem (did you mean 'token'?); it has no effect",
        ]
    );
}

/// A host that owns `local` and resolves `name.test` to 10.0.0.N.
struct FakeHost {
    local: BTreeSet<IpAddr>,
}

impl Host for FakeHost {
    fn is_local(&self, ip: IpAddr) -> bool {
        self.local.contains(&ip)
    }

    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        let n: u8 = name
            .strip_prefix("node")
            .and_then(|s| s.strip_suffix(".test"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown host"))?;
        Ok(vec![IpAddr::from([10, 0, 0, n])])
    }
}

fn host(local: &[&str]) -> FakeHost {
    FakeHost { local: local.iter().map(|s| s.parse().unwrap()).collect() }
}

#[test]
fn the_node_with_a_local_address_is_this_node_and_the_others_are_peers() {
    let c = load(&cluster(" interface {\n  mcastport: 6000\n }\n", 3));
    let d = c.daemon_config(&host(&["10.0.0.2"]), None, PathBuf::from("s")).unwrap();
    assert_eq!(d.node_id, NodeId(2));
    assert_eq!(d.bind, "10.0.0.2:6000".parse::<SocketAddr>().unwrap());
    assert_eq!(d.peers.to_string(), "[1=10.0.0.1:6000, 3=10.0.0.3:6000]");
    assert_eq!(d.totem, c.totem);
    assert_eq!(d.cluster.nodes.len(), 3);
}

#[test]
fn node_choice_errors_are_clear() {
    let c = load(&cluster("", 3));
    let err = |h: &FakeHost, id: Option<u32>| {
        c.daemon_config(h, id.map(NodeId), PathBuf::from("s")).unwrap_err().to_string()
    };
    assert_eq!(
        err(&host(&[]), None),
        "c.conf: no node of the nodelist has an address on this host (nodes: 1 at 10.0.0.1, 2 at 10.0.0.2, \
         3 at 10.0.0.3); is this host in the cluster?"
    );
    assert_eq!(
        err(&host(&["10.0.0.1", "10.0.0.3"]), None),
        "c.conf: nodes 1 (10.0.0.1), 3 (10.0.0.3) all have addresses on this host: choose this daemon's node with --nodeid"
    );
    assert_eq!(
        err(&host(&["10.0.0.1"]), Some(9)),
        "c.conf: --nodeid 9 is not in the nodelist (nodes: 1 at 10.0.0.1, 2 at 10.0.0.2, 3 at 10.0.0.3)"
    );
    assert_eq!(
        err(&host(&["10.0.0.1"]), Some(2)),
        "c.conf:10: node 2's ring0_addr 10.0.0.2 is not an address of this host"
    );
    let d = c.daemon_config(&host(&["10.0.0.1", "10.0.0.3"]), Some(NodeId(3)), PathBuf::from("s")).unwrap();
    assert_eq!(d.node_id, NodeId(3));
}

#[test]
fn host_names_are_resolved_when_the_daemon_config_is_built() {
    let text = cluster("", 2).replace("10.0.0.1", "node1.test").replace("10.0.0.2", "node2.test");
    let c = load(&text);
    assert_eq!(c.settings.nodes[0].addrs[&0], RingAddr::Name("node1.test".into()));
    let d = c.daemon_config(&host(&["10.0.0.1"]), None, PathBuf::from("s")).unwrap();
    assert_eq!(d.peers.to_string(), "[2=10.0.0.2:5405]");
    let bad = load(&cluster("", 2).replace("10.0.0.2", "nowhere.test"));
    assert_eq!(
        bad.daemon_config(&host(&["10.0.0.1"]), None, PathBuf::from("s")).unwrap_err().to_string(),
        "c.conf:10: node 2: ring0_addr nowhere.test: cannot resolve the host name: unknown host"
    );
}

#[test]
fn the_system_host_knows_loopback_and_reads_if_inet6() {
    assert!(SystemHost.is_local("127.0.0.3".parse().unwrap()));
    assert!(SystemHost.is_local("::1".parse().unwrap()));
    assert!(!SystemHost.is_local("192.0.2.77".parse().unwrap()), "TEST-NET-1 is on no host");
    let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                fe800000000000000a0027fffe4e2f4a 02 40 20 80     eth0\n";
    assert_eq!(
        if_inet6_addresses(text),
        vec!["::1".parse::<std::net::Ipv6Addr>().unwrap(), "fe80::a00:27ff:fe4e:2f4a".parse().unwrap()]
    );
}

#[test]
fn check_reports_list_errors_and_warnings_in_line_order() {
    let report = check_text("totem {\n version: 2\n tokne: 1\n token: x\n}\n", "c.conf");
    assert!(!report.valid);
    assert_eq!(
        report.problems,
        vec![
            "c.conf:3: warning: unknown key 'tokne' in totem (did you mean 'token'?); it has no effect",
            "c.conf:4: error: totem.token: expects a time in milliseconds from 30 to 4294967295, found \"x\"",
            "c.conf:5: error: nodelist: no node: list every node of the cluster, each with a nodeid and a ring0_addr",
        ]
    );
    assert_eq!(report.summary, "c.conf: 2 errors, 1 warning");
    let ok = check_text(&cluster(" cluster_name: x\n", 1), "c.conf");
    assert_eq!(
        (ok.valid, ok.summary.as_str()),
        (true, "c.conf: valid: cluster x, 1 node, transport knet, token 3000 ms, consensus 3600 ms")
    );
}

/// A corosync 3 file as distributions ship and pcs writes it (tabs, logger_subsys, votequorum
/// quorum, names and ids) is accepted as it is; only the knet tuning key gets a warning.
#[test]
fn a_typical_corosync_3_file_is_accepted_unchanged() {
    let text = "\
# Please read the corosync.conf.5 manual page
totem {
\tversion: 2
\tcluster_name: hacluster
\ttransport: knet
\tcrypto_cipher: aes256
\tcrypto_hash: sha256
\ttoken: 3000
\tinterface {
\t\tlinknumber: 0
\t\tknet_transport: udp
\t}
}

logging {
\tfileline: off
\tto_stderr: yes
\tto_logfile: yes
\tlogfile: /var/log/corosync/corosync.log
\tto_syslog: yes
\tdebug: off
\ttimestamp: on
\tlogger_subsys {
\t\tsubsys: QUORUM
\t\tdebug: off
\t}
}

quorum {
\tprovider: corosync_votequorum
\ttwo_node: 1
}

nodelist {
\tnode {
\t\tname: alpha
\t\tnodeid: 1
\t\tring0_addr: 192.168.122.11
\t}
\tnode {
\t\tname: beta
\t\tnodeid: 2
\t\tring0_addr: 192.168.122.12
\t}
}
";
    let c = load(text);
    assert_eq!(
        c.settings.nodes.iter().map(|n| n.name.as_deref()).collect::<Vec<_>>(),
        vec![Some("alpha"), Some("beta")]
    );
    assert_eq!(c.settings.crypto.cipher, CryptoCipher::Aes256);
    assert_eq!(c.parsed.value("quorum.two_node"), Some("1"));
    assert_eq!(c.parsed.value("logging.logger_subsys.QUORUM.debug"), Some("off"));
    let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        vec![
            "c.conf:11: totem.interface.0.knet_transport is accepted but has no effect: totemd has no knet link \
             layer to tune"
        ]
    );
}

/// corosync.conf(5): link N is `ringN_addr` at the `mcastport` of the interface with
/// `linknumber` N (default 5405 + N); the knet heartbeat options tune the link layer, and
/// without them its timers derive from `token` (corosync's `calc_knet_ping_timers`).
#[test]
fn every_node_has_an_address_on_every_link_and_knet_heartbeats_are_used() {
    let text = "totem {\n version: 2\n transport: knet\n token: 1000\n token_coefficient: 0\n \
                interface {\n  linknumber: 1\n  knet_ping_interval: 100\n  knet_ping_timeout: 400\n  \
                knet_pong_count: 3\n }\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n  ring1_addr: 10.1.0.1\n  \
                nodeid: 1\n  name: a\n }\n node {\n  ring0_addr: 10.0.0.2\n  ring1_addr: 10.1.0.2\n  nodeid: 2\n  \
                name: b\n }\n}\n";
    let d = load(text).daemon_config(&host(&["10.0.0.2"]), None, PathBuf::from("s")).unwrap();
    let at = |s: &str| s.parse::<SocketAddr>().unwrap();
    let table = d.link_table();
    assert_eq!(table[&NodeId(1)], vec![(LinkId(0), at("10.0.0.1:5405")), (LinkId(1), at("10.1.0.1:5406"))]);
    assert_eq!(d.local_links(), vec![(LinkId(0), at("10.0.0.2:5405")), (LinkId(1), at("10.1.0.2:5406"))]);
    let lc = d.link_config();
    assert_eq!(
        (lc.ping_interval, lc.ping_timeout, lc.pong_count),
        (Duration::from_millis(100), Duration::from_millis(400), 3)
    );
    assert!(warnings(text).is_empty(), "{:?}", warnings(text));

    // The command line: one link, link 0; timers from token (1000 / 2 and 1000 / 4).
    let mut one = DaemonConfig::new(NodeId(1), at("127.0.0.1:5405"), PathBuf::from("s"));
    one.totem = TotemConfig::with_token(Duration::from_millis(1000));
    one.add_nodes([(NodeId(2), at("127.0.0.1:5406"))]).unwrap();
    assert_eq!(one.local_links(), vec![(LinkId(0), at("127.0.0.1:5405"))]);
    assert_eq!(one.link_table()[&NodeId(2)], vec![(LinkId(0), at("127.0.0.1:5406"))]);
    let lc = one.link_config();
    assert_eq!((lc.ping_interval, lc.ping_timeout), (Duration::from_millis(250), Duration::from_millis(500)));
}

/// corosync's `get_cluster_mcast_addr` (exec/totemconfig.c): the group derives from a 16-bit
/// hash of `cluster_name` plus the link number; IPv4 `239.192.(id >> 8).(id % 255)`, IPv6
/// `ff15::id`. Values computed independently with C's signed-char arithmetic.
#[test]
fn the_default_group_derives_from_the_cluster_name_as_in_corosync() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(cluster_group("mycluster", 0, false), ip("239.192.221.146"));
    assert_eq!(cluster_group("mycluster", 0, true), ip("ff15::ddb4"));
    assert_eq!(cluster_group("hacluster", 0, false), ip("239.192.204.129"));
    assert_eq!(cluster_group("hacluster", 1, true), ip("ff15::ccb5"));
    // A long name shifts the early bytes out; bytes above 127 count as negative (signed char).
    assert_eq!(cluster_group(&"x".repeat(40), 0, false), cluster_group(&"x".repeat(40), 0, false));
    assert!(cluster_group("é-cluster", 0, false).is_multicast());
}

/// `transport: udp` multicasts to `mcastaddr:mcastport` with `ttl` from this node's ring0
/// address; the other transports have no group (every packet is unicast).
#[test]
fn udp_multicasts_to_mcastaddr_on_the_ring0_interface() {
    let text = cluster(
        " transport: udp\n interface {\n  mcastaddr: 239.1.2.3\n  mcastport: 6000\n  ttl: 2\n }\n",
        3,
    );
    let d = load(&text).daemon_config(&host(&["10.0.0.2"]), None, PathBuf::from("s")).unwrap();
    let want = Multicast {
        group: "239.1.2.3:6000".parse().unwrap(),
        interface: "10.0.0.2".parse().unwrap(),
        ttl: 2,
    };
    assert_eq!(d.multicast(), Some(want));
    assert_eq!(d.bind, "10.0.0.2:6000".parse::<SocketAddr>().unwrap(), "unicast stays on ring0_addr");

    let named = cluster(" transport: udp\n cluster_name: mycluster\n", 2);
    let d = load(&named).daemon_config(&host(&["10.0.0.1"]), None, PathBuf::from("s")).unwrap();
    let m = d.multicast().unwrap();
    assert_eq!((m.group, m.ttl), ("239.192.221.146:5405".parse().unwrap(), 1));

    let v6 = "totem {\n version: 2\n transport: udp\n cluster_name: mycluster\n}\nnodelist {\n node {\n  \
              ring0_addr: fd00::1\n  nodeid: 1\n }\n node {\n  ring0_addr: fd00::2\n  nodeid: 2\n }\n}\n";
    let d = load(v6).daemon_config(&host(&["fd00::1"]), None, PathBuf::from("s")).unwrap();
    assert_eq!(d.multicast().unwrap().group, "[ff15::ddb4]:5405".parse().unwrap());

    for other in ["udpu", "knet"] {
        let text = cluster(&format!(" transport: {other}\n cluster_name: mycluster\n"), 2);
        let d = load(&text).daemon_config(&host(&["10.0.0.1"]), None, PathBuf::from("s")).unwrap();
        assert_eq!(d.multicast(), None, "{other}");
    }
}

#[test]
fn a_udp_group_must_be_multicast_of_the_nodes_family_and_exist() {
    let with = |iface: &str| cluster(&format!(" transport: udp\n interface {{\n{iface} }}\n"), 2);
    assert_eq!(
        errors(&with("  mcastaddr: 10.0.0.9\n")),
        vec!["c.conf:5: totem.interface.0.mcastaddr: expects a multicast address, found \"10.0.0.9\""]
    );
    assert_eq!(
        errors(&with("  mcastaddr: ff15::1\n")),
        vec![
            "c.conf:5: totem.interface.0.mcastaddr: ff15::1 is not of the address family of ring0_addr \
             10.0.0.1 (node 1, line 10)"
        ]
    );
    assert_eq!(
        errors(&with("  bindnetaddr: fd00::\n  mcastaddr: 239.1.1.1\n")),
        vec!["c.conf:6: totem.interface.0.mcastaddr: 239.1.1.1 is not of the address family of bindnetaddr fd00::"]
    );
    assert_eq!(
        errors(&cluster(" transport: udp\n", 2)),
        vec![
            "c.conf:3: totem.transport: udp needs a multicast group: set interface { mcastaddr } or \
             totem.cluster_name (the group then derives from it, as in corosync)"
        ]
    );
    assert_eq!(
        warnings(&with("  mcastaddr: 239.1.1.1\n  broadcast: yes\n")),
        vec![
            "c.conf:6: totem.interface.0.broadcast is accepted but has no effect: totemd sends to the \
             multicast group"
        ]
    );
    // Host names are only checked once resolved (this host resolves nodeN.test to 10.0.0.N).
    let names =
        with("  mcastaddr: ff15::1\n").replace("10.0.0.", "node").replace("\n  nodeid", ".test\n  nodeid");
    let err = load(&names).daemon_config(&host(&["10.0.0.1"]), None, PathBuf::from("s")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "c.conf:5: totem.interface.0.mcastaddr: ff15::1 is not of the address family of this node's \
         ring0_addr 10.0.0.1"
    );
}

#[test]
fn the_quorum_section_maps_to_votequorum_and_its_errors_name_their_line() {
    let base = cluster(" cluster_name: c\n", 2);
    assert!(load(&base).settings.quorum.is_none(), "no provider, no votequorum");
    let two = format!("{base}quorum {{\n provider: corosync_votequorum\n two_node: 1\n}}\n");
    let q = load(&two).settings.quorum.expect("votequorum");
    assert!(q.two_node);
    assert_eq!(q.nodelist.len(), 2);
    assert_eq!(q.wait_for_all, None, "unset: follows two_node");
    let bad =
        format!("{base}quorum {{\n provider: corosync_votequorum\n auto_tie_breaker_node: middle\n}}\n");
    let errs = errors(&bad);
    assert!(
        errs.iter().any(|e| e.starts_with("c.conf:17:") && e.contains("auto_tie_breaker_node")),
        "{errs:?}"
    );
    let warn =
        format!("{base}quorum {{\n provider: corosync_votequorum\n two_node: 1\n auto_tie_breaker: 1\n}}\n");
    assert!(warnings(&warn).iter().any(|w| w.contains("two_node is disabled")), "{:?}", warnings(&warn));
}

/// Two named nodes and a `fencing` section with `extra` inside it.
fn fenced_cluster(extra: &str) -> String {
    format!(
        "totem {{\n version: 2\n cluster_name: c\n}}\n\
         nodelist {{\n node {{\n  ring0_addr: 10.0.0.1\n  nodeid: 1\n  name: n1\n }}\n \
         node {{\n  ring0_addr: 10.0.0.2\n  nodeid: 2\n  name: n2\n }}\n}}\n\
         fencing {{\n post_join_delay: 3\n device {{\n  name: ipmi\n  agent: fence_ipmilan\n  ipaddr: 10.0.0.100\n  delay: 5\n }}\n\
         {extra}}}\n"
    )
}

#[test]
fn the_fencing_section_maps_devices_and_methods_and_bad_references_are_errors_at_the_section() {
    let node = " node {\n  name: n2\n  method {\n   name: ipmi\n   device {\n    name: ipmi\n    port: 2\n   }\n  }\n }\n";
    let f = load(&fenced_cluster(node)).settings.fencing.expect("fencing");
    assert_eq!(f.post_join_delay, Duration::from_secs(3));
    let device = &f.devices["ipmi"];
    assert_eq!(device.agent, "fence_ipmilan");
    assert_eq!(device.attrs, vec![("ipaddr".into(), "10.0.0.100".into()), ("delay".into(), "5".into())]);
    let n2 = &f.nodes[&NodeId(2)];
    assert_eq!(n2.name, "n2");
    assert_eq!(n2.methods.len(), 1);
    assert_eq!(n2.methods[0].devices[0].device, "ipmi");
    assert_eq!(n2.methods[0].devices[0].attrs, vec![("port".into(), "2".into())]);

    let bad = node.replace("    name: ipmi\n    port", "    name: apc\n    port");
    let errs = errors(&fenced_cluster(&bad));
    assert!(errs.iter().any(|e| e.starts_with("c.conf:17:") && e.contains("\"apc\"")), "{errs:?}");
    let stranger = node.replace("name: n2\n  method", "name: n9\n  method");
    let errs = errors(&fenced_cluster(&stranger));
    assert!(errs.iter().any(|e| e.contains("not a node of the nodelist")), "{errs:?}");
}

#[test]
fn a_nodes_unfence_devices_are_read_and_must_name_defined_devices() {
    let node = " node {\n  name: n1\n  method {\n   name: ipmi\n   device {\n    name: ipmi\n   }\n  }\n  \
                unfence {\n   device {\n    name: ipmi\n    port: 1\n   }\n  }\n }\n";
    let f = load(&fenced_cluster(node)).settings.fencing.expect("fencing");
    let unfence = &f.unfence[&NodeId(1)];
    assert_eq!(unfence.len(), 1);
    assert_eq!(unfence[0].device, "ipmi");
    assert_eq!(unfence[0].attrs, vec![("port".into(), "1".into())]);
    assert!(!f.unfence.contains_key(&NodeId(2)));
    let bad = node.replace("    name: ipmi\n    port: 1", "    name: san\n    port: 1");
    let errs = errors(&fenced_cluster(&bad));
    assert!(errs.iter().any(|e| e.contains("unfence") && e.contains("\"san\"")), "{errs:?}");
}
