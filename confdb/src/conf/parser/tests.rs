//! Unit tests of the line parser: key names, syntax errors, warnings.

use crate::conf::{parse, Entry};

fn entries(text: &str) -> Vec<(String, String, u32)> {
    let parsed = parse(text, "c.conf").unwrap_or_else(|e| panic!("errors: {e:?}"));
    parsed.entries.into_iter().map(|Entry { key, value, line }| (key, value, line)).collect()
}

fn e(key: &str, value: &str, line: u32) -> (String, String, u32) {
    (key.to_string(), value.to_string(), line)
}

fn errors(text: &str) -> Vec<String> {
    parse(text, "c.conf").expect_err("should fail").iter().map(|d| d.to_string()).collect()
}

fn warnings(text: &str) -> Vec<String> {
    parse(text, "c.conf").expect("should parse").warnings.iter().map(|d| d.to_string()).collect()
}

#[test]
fn keys_are_named_like_cmap() {
    let text = "\
# comment
totem {
\tversion: 2
\tcluster_name:   demo  
\tinterface {
\t\tmcastport: 5405
\t\tlinknumber: 1
\t}
}
nodelist {
  node {
    ring0_addr: 10.0.0.1
    nodeid: 1
  }
  node {
    ring0_addr: 10.0.0.2
  }
}
logging {
  logger_subsys {
    debug: on
    subsys: CPG
  }
}
uidgid {
  uid: hacluster
}
";
    assert_eq!(
        entries(text),
        vec![
            e("totem.version", "2", 3),
            e("totem.cluster_name", "demo", 4),
            e("totem.interface.1.mcastport", "5405", 6),
            e("totem.interface.1.linknumber", "1", 7),
            e("nodelist.node.0.ring0_addr", "10.0.0.1", 12),
            e("nodelist.node.0.nodeid", "1", 13),
            e("nodelist.node.1.ring0_addr", "10.0.0.2", 16),
            e("logging.logger_subsys.CPG.debug", "on", 21),
            e("logging.logger_subsys.CPG.subsys", "CPG", 22),
            e("uidgid.config.uid.hacluster", "1", 26),
        ]
    );
    let parsed = parse(text, "c.conf").unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let paths: Vec<(&str, u32)> = parsed.sections.iter().map(|s| (s.path.as_str(), s.line)).collect();
    assert_eq!(
        paths,
        vec![
            ("totem", 2),
            ("totem.interface.1", 5),
            ("nodelist", 10),
            ("nodelist.node.0", 11),
            ("nodelist.node.1", 15),
            ("logging", 19),
            ("logging.logger_subsys.CPG", 20),
            ("uidgid", 25),
        ]
    );
    assert_eq!(parsed.last_line, 27);
}

#[test]
fn corosync_leniencies_are_kept() {
    // A colon after a section name, an empty value, a '#' inside a value, CRLF line ends.
    assert_eq!(
        entries("totem: {\r\n  cluster_name:\r\n  crypto_hash: a#b\r\n}\r\n"),
        vec![e("totem.cluster_name", "", 2), e("totem.crypto_hash", "a#b", 3)]
    );
    assert_eq!(entries(""), vec![]);
    assert_eq!(entries("\n\n   # only comments\n"), vec![]);
}

#[test]
fn fencing_sections_are_numbered_by_position_at_every_level() {
    let text = "\
fencing {
  device {
    name: d1
  }
  node {
    name: n1
    method {
      name: m1
      device {
        name: d1
      }
      device {
        name: d2
      }
    }
    method {
      device {
        name: d3
      }
    }
    unfence {
      device {
        name: d1
      }
    }
  }
}
";
    let keys: Vec<String> = entries(text).into_iter().map(|(k, v, _)| format!("{k}={v}")).collect();
    assert_eq!(
        keys,
        vec![
            "fencing.device.0.name=d1",
            "fencing.node.0.name=n1",
            "fencing.node.0.method.0.name=m1",
            "fencing.node.0.method.0.device.0.name=d1",
            "fencing.node.0.method.0.device.1.name=d2",
            "fencing.node.0.method.1.device.0.name=d3",
            "fencing.node.0.unfence.device.0.name=d1",
        ]
    );
}

#[test]
fn two_nodelist_blocks_do_not_reuse_node_numbers() {
    let text = "nodelist {\nnode {\nnodeid: 1\n}\n}\nnodelist {\nnode {\nnodeid: 2\n}\n}\n";
    assert_eq!(entries(text), vec![e("nodelist.node.0.nodeid", "1", 3), e("nodelist.node.1.nodeid", "2", 8)]);
}

#[test]
fn every_syntax_error_is_reported_with_its_line() {
    let text = "\
totem {
  token 3000
  : 5
  bad key: 1
  interface { x
  }
}
}
nodelist {
  node {
";
    assert_eq!(
        errors(text),
        vec![
            "c.conf:2: expected 'NAME {', '}' or 'KEY: VALUE', found \"token 3000\"",
            "c.conf:3: missing key name before ':'",
            "c.conf:4: invalid key name \"bad key\": use letters, digits, '_', '-' and '/'",
            "c.conf:5: unexpected \"x\" after '{': a section starts on a line of its own",
            "c.conf:8: '}' closes no section",
            "c.conf:9: section 'nodelist' opened here is not closed: a '}' is missing",
            "c.conf:10: section 'node' opened here is not closed: a '}' is missing",
        ]
    );
}

#[test]
fn bad_section_contents_are_errors() {
    assert_eq!(
        errors("totem {\n interface {\n  linknumber: 9\n }\n}\n"),
        vec!["c.conf:3: linknumber: expects a link number from 0 to 7, found \"9\""]
    );
    assert_eq!(
        errors("totem {\n interface {\n }\n interface {\n  linknumber: 0\n }\n}\n"),
        vec!["c.conf:4: a second interface with linknumber 0 (the first is at line 2)"]
    );
    assert_eq!(
        errors("logging {\n logger_subsys {\n  debug: on\n }\n}\n"),
        vec!["c.conf:2: logger_subsys section without a 'subsys:' key naming the subsystem"]
    );
    assert_eq!(
        errors("uidgid {\n user: x\n uid:\n}\n"),
        vec![
            "c.conf:2: uidgid takes only 'uid:' and 'gid:' lines, not \"user\"",
            "c.conf:3: uid: expects a user or group name or number, found \"\"",
        ]
    );
    assert_eq!(
        errors("a {\n}x\n}\n"),
        vec!["c.conf:2: unexpected text around '}' in \"}x\": '}' stands alone on its line"]
    );
}

#[test]
fn unknown_keys_and_sections_are_warnings_naming_the_line() {
    let text = "\
totem {
  tokne: 3000
  vsftype: none
}
totem_x {
  anything: 1
  sub {
    more: 2
  }
}
quorum {
  device {
    model: net
    net {
      host: qnetd
    }
  }
}
compatibility: whitetank
";
    assert_eq!(
        warnings(text),
        vec![
            "c.conf:2: unknown key 'tokne' in totem (did you mean 'token'?); it has no effect",
            "c.conf:3: unknown key 'vsftype' in totem; it has no effect",
            "c.conf:5: unknown section 'totem_x' (did you mean 'totem'?); its keys have no effect",
            "c.conf:19: unknown key 'compatibility' at the top level; it has no effect",
        ]
    );
    // Unknown keys are still entries: a later tool may want them.
    assert_eq!(parse(text, "c.conf").unwrap().value("totem_x.sub.more"), Some("2"));
}

#[test]
fn a_key_set_twice_keeps_the_later_value_with_a_warning() {
    let text = "totem {\n token: 1000\n join: 50\n token: 2000\n}\n";
    assert_eq!(entries(text), vec![e("totem.join", "50", 3), e("totem.token", "2000", 4)]);
    assert_eq!(
        warnings(text),
        vec!["c.conf:4: totem.token is set again (first at line 2); this value is used"]
    );
}

#[test]
fn lookups_by_prefix_and_section() {
    let parsed = parse("totem {\n token: 1\n}\ntotemx {\n a: 1\n}\n", "c.conf").unwrap();
    let keys: Vec<&str> = parsed.under("totem").map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["totem.token"]);
    assert_eq!(parsed.section("totemx").map(|s| s.line), Some(4));
    assert_eq!(parsed.get("totem.token").map(|e| e.line), Some(2));
}
