//! Conversion errors and small mappings.

use super::{import, to_corosync_conf, Error};

fn err(xml: &str) -> Error {
    import(xml).expect_err("should be refused")
}

#[test]
fn a_minimal_cluster_gets_version_transport_and_votequorum() {
    let text = to_corosync_conf(r#"<cluster name="c"><clusternodes><clusternode name="10.0.0.1" nodeid="1"/></clusternodes></cluster>"#).unwrap();
    assert_eq!(
        text,
        "# corosync.conf converted from a cman cluster.conf by `totemctl config import`.

totem {
    version: 2
    cluster_name: c
    # cman used UDP multicast by default; knet is corosync 3's default transport
    transport: knet
}

nodelist {
    node {
        ring0_addr: 10.0.0.1
        name: 10.0.0.1
        nodeid: 1
    }
}

quorum {
    provider: corosync_votequorum
}
"
    );
}

#[test]
fn totem_interfaces_take_cman_port_and_multicast_then_their_own_attributes() {
    let xml = r#"<cluster name="c">
<cman port="6000"><multicast addr="239.192.1.1"/></cman>
<totem token="500"><interface ringnumber="0" mcastport="6001"/><interface ringnumber="1" bindnetaddr="10.1.0.0"/></totem>
</cluster>"#;
    let parsed = crate::conf::parse(&to_corosync_conf(xml).unwrap(), "t").unwrap();
    assert_eq!(parsed.value("totem.token"), Some("500"));
    assert_eq!(parsed.value("totem.interface.0.mcastport"), Some("6001"));
    assert_eq!(parsed.value("totem.interface.0.mcastaddr"), Some("239.192.1.1"));
    assert_eq!(parsed.value("totem.interface.1.bindnetaddr"), Some("10.1.0.0"));
}

#[test]
fn structural_problems_are_refused_with_their_line() {
    assert_eq!(err("<foo/>"), Error::NotCluster { line: 1, found: "foo".into() });
    assert!(matches!(err("<cluster>"), Error::Xml { line: 1, .. }));
    assert_eq!(
        err("<cluster/>"),
        Error::MissingAttribute { line: 1, element: "cluster".into(), attribute: "name" }
    );
    assert_eq!(
        err("<cluster name=\"c\">\n<clusternodes>\n<clusternode name=\"a\"/>\n</clusternodes></cluster>"),
        Error::MissingAttribute { line: 3, element: "clusternode".into(), attribute: "nodeid" }
    );
    assert!(matches!(
        err(r#"<cluster name="c"><clusternodes><clusternode name="a" nodeid="0"/></clusternodes></cluster>"#),
        Error::BadAttribute { attribute, .. } if attribute == "nodeid"
    ));
    assert!(matches!(
        err(
            r#"<cluster name="c"><clusternodes><clusternode name="a" nodeid="1"/><clusternode name="b" nodeid="1"/></clusternodes></cluster>"#
        ),
        Error::Duplicate { what: "node id", .. }
    ));
}

#[test]
fn fencing_references_must_resolve_and_values_must_fit_corosync_conf() {
    let unknown = r#"<cluster name="c"><clusternodes><clusternode name="a" nodeid="1">
<fence><method name="m"><device name="nope"/></method></fence></clusternode></clusternodes></cluster>"#;
    assert_eq!(err(unknown), Error::UnknownDevice { line: 2, node: "a".into(), device: "nope".into() });
    let dup = r#"<cluster name="c"><fencedevices><fencedevice name="d" agent="x"/>
<fencedevice name="d" agent="y"/></fencedevices></cluster>"#;
    assert!(matches!(err(dup), Error::Duplicate { line: 2, first: 1, what: "fence device", .. }));
    let brace = r#"<cluster name="c"><fencedevices><fencedevice name="d" agent="x" passwd="a{b"/></fencedevices></cluster>"#;
    let e = err(brace);
    assert!(matches!(&e, Error::Unrepresentable { attribute, .. } if attribute == "passwd"), "{e:?}");
    assert!(!e.to_string().contains("a{b"), "a password must not be printed: {e}");
}

#[test]
fn unconverted_parts_are_listed() {
    let xml = r#"<cluster name="c" alias="x"><rm/><dlm/><cman cluster_id="7"/><clusternodes/></cluster>"#;
    let imported = import(xml).unwrap();
    assert_eq!(
        imported.notes,
        vec![
            "line 1: <rm> (rgmanager resources and services) is not converted",
            "line 1: <dlm> in <cluster> is not converted",
            "line 1: attribute alias of <cluster> is not converted",
            "line 1: attribute cluster_id of <cman> is not converted",
        ]
    );
    assert!(imported.text.contains("\n#   line 1: <dlm> in <cluster> is not converted\n"));
}
