//! Arbitrary input never panics the parsers: corosync.conf text of any shape (random
//! strings, and strings built from the syntax's own characters) and cluster.conf XML.

use proptest::prelude::*;

/// Lines made of corosync.conf's meaningful pieces, so braces and colons meet often.
fn conf_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("totem {".to_string()),
        Just("interface {".to_string()),
        Just("nodelist {".to_string()),
        Just("node {".to_string()),
        Just("logger_subsys {".to_string()),
        Just("uidgid {".to_string()),
        Just("}".to_string()),
        Just("linknumber: 9".to_string()),
        Just("subsys: a.b".to_string()),
        Just("uid: x".to_string()),
        Just("# c".to_string()),
        "[a-z_{}:#. \t]{0,12}",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn corosync_conf_parser_never_panics(text in any::<String>()) {
        let _ = confdb::conf::parse(&text, "fuzz.conf");
    }

    #[test]
    fn corosync_conf_parser_never_panics_on_conf_like_text(text in conf_like()) {
        if let Ok(parsed) = confdb::conf::parse(&text, "fuzz.conf") {
            // Every key is unique after parsing.
            let mut keys: Vec<&str> = parsed.entries.iter().map(|e| e.key.as_str()).collect();
            keys.sort_unstable();
            let len = keys.len();
            keys.dedup();
            prop_assert_eq!(keys.len(), len);
        }
    }

    #[test]
    fn cluster_conf_import_never_panics(text in any::<String>()) {
        let _ = confdb::cluster_conf::import(&text);
    }

    #[test]
    fn cluster_conf_import_never_panics_on_xml_like_text(
        text in "(<cluster name=\"c\">|<clusternodes>|<clusternode name=\"n\" nodeid=\"1\">|<fence>|<method>|<device name=\"d\"/>|</[a-z]+>|<[a-z]+/>|[ a-z=\"&;]){0,30}"
    ) {
        let _ = confdb::cluster_conf::import(&text);
    }
}
