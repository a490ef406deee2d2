//! The element-by-element conversion; the mapping table is in the module doc of
//! [`crate::cluster_conf`].

use std::collections::BTreeMap;

use super::xml::Element;
use super::{put, required, Converter, Error};
use crate::conf::{Block, Item};

/// `<logging>` attributes that are corosync.conf `logging` keys of the same name.
const LOGGING_KEYS: &[&str] = &[
    "to_syslog",
    "to_logfile",
    "to_stderr",
    "logfile",
    "logfile_priority",
    "syslog_facility",
    "syslog_priority",
    "debug",
    "timestamp",
    "fileline",
    "function_name",
];

impl Converter {
    pub(super) fn convert(&mut self, cluster: &Element) -> Result<Vec<Block>, Error> {
        self.note_unknown_children(cluster, &["cman", "totem", "clusternodes", "fencedevices", "logging"]);
        self.note_unknown_attrs(cluster, &["name", "config_version"]);
        let mut blocks = vec![self.totem(cluster)?];
        let (nodelist, fence_nodes) = self.nodes(cluster)?;
        blocks.push(nodelist);
        blocks.push(self.quorum(cluster)?);
        if let Some(logging) = cluster.child("logging") {
            blocks.push(self.logging(logging)?);
        }
        if let Some(fencing) = self.fencing(cluster, fence_nodes)? {
            blocks.push(fencing);
        }
        Ok(blocks)
    }

    fn note(&mut self, el: &Element, what: String) {
        self.notes.push((el.line, format!("line {}: {what}", el.line)));
    }

    fn note_unknown_children(&mut self, el: &Element, known: &[&str]) {
        for child in el.children.iter().filter(|c| !known.contains(&c.name.as_str())) {
            let what = match child.name.as_str() {
                "rm" => "<rm> (rgmanager resources and services) is not converted".to_string(),
                "fence_daemon" => "<fence_daemon> (fenced timing) is not converted".to_string(),
                "quorumd" => "<quorumd> (the qdisk quorum disk) is not converted".to_string(),
                other => format!("<{other}> in <{}> is not converted", el.name),
            };
            self.note(child, what);
        }
    }

    fn note_unknown_attrs(&mut self, el: &Element, known: &[&str]) {
        for (k, _) in el.attrs.iter().filter(|(k, _)| !known.contains(&k.as_str())) {
            let what = format!("attribute {k} of <{}> is not converted", el.name);
            self.note(el, what);
        }
    }

    fn totem(&mut self, cluster: &Element) -> Result<Block, Error> {
        let mut totem = Block::new("totem");
        totem.key("version", "2");
        put(&mut totem, cluster, "name", "cluster_name", required(cluster, "name")?)?;
        if let Some(v) = cluster.attr("config_version") {
            number::<u64>(cluster, "config_version", v, "a whole number")?;
            put(&mut totem, cluster, "config_version", "config_version", v)?;
        }
        let cman = cluster.child("cman");
        let redundant = cluster
            .child("clusternodes")
            .is_some_and(|c| c.children_named("clusternode").any(|n| n.child("altname").is_some()));
        match cman.and_then(|c| c.attr("transport")) {
            Some(t @ ("udp" | "udpu")) if redundant => {
                let cman = cman.expect("the transport came from <cman>");
                let what = format!(
                    "<cman transport=\"{t}\"> with <altname> (a redundant ring) becomes knet: \
                     corosync 3 has several links only with knet"
                );
                self.note(cman, what);
                totem.key("transport", "knet");
            }
            Some(t @ ("udp" | "udpu" | "knet")) => {
                totem.key("transport", t);
            }
            other => {
                if let (Some(cman), Some(t)) = (cman, other) {
                    self.note(cman, format!("<cman transport=\"{t}\"> becomes knet: corosync 3 has no {t}"));
                }
                totem.comment("cman used UDP multicast by default; knet is corosync 3's default transport");
                totem.key("transport", "knet");
            }
        }
        if let Some(cman) = cman {
            if let Some(keyfile) = cman.attr("keyfile") {
                put(&mut totem, cman, "keyfile", "keyfile", keyfile)?;
            }
        }
        let totem_el = cluster.child("totem");
        if let Some(t) = totem_el {
            for (k, v) in &t.attrs {
                put(&mut totem, t, k, k, v)?;
            }
            self.note_unknown_children(t, &["interface"]);
        }
        for interface in self.interfaces(cman, totem_el)? {
            totem.block(interface);
        }
        Ok(totem)
    }

    /// `totem.interface` blocks: link 0 from `<cman port>` and `<multicast addr>`, then one per
    /// `<totem><interface ringnumber>` (whose attributes win over cman's).
    fn interfaces(&mut self, cman: Option<&Element>, totem: Option<&Element>) -> Result<Vec<Block>, Error> {
        let mut links: BTreeMap<String, Block> = BTreeMap::new();
        if let Some(cman) = cman {
            if let Some(port) = cman.attr("port") {
                put(link(&mut links, "0"), cman, "port", "mcastport", port)?;
            }
            if let Some(m) = cman.child("multicast") {
                if let Some(addr) = m.attr("addr") {
                    put(link(&mut links, "0"), m, "addr", "mcastaddr", addr)?;
                }
                self.note_unknown_attrs(m, &["addr"]);
            }
        }
        for i in totem.into_iter().flat_map(|t| t.children_named("interface")) {
            let n = i.attr("ringnumber").unwrap_or("0");
            number::<u8>(i, "ringnumber", n, "a link number from 0 to 7")?;
            let block = link(&mut links, n);
            for (k, v) in i.attrs.iter().filter(|(k, _)| k != "ringnumber") {
                block.items.retain(|item| !matches!(item, Item::Key(key, _) if key == k));
                put(block, i, k, k, v)?;
            }
        }
        Ok(links.into_values().collect())
    }

    /// The nodelist, and the `<clusternode>`s that have fencing, for [`Converter::fencing`].
    fn nodes<'a>(&mut self, cluster: &'a Element) -> Result<(Block, Vec<&'a Element>), Error> {
        let mut nodelist = Block::new("nodelist");
        let mut fence_nodes = Vec::new();
        let mut ids: BTreeMap<u32, u32> = BTreeMap::new();
        let mut names: BTreeMap<&str, u32> = BTreeMap::new();
        let Some(clusternodes) = cluster.child("clusternodes") else {
            self.notes.push((cluster.line, "no <clusternodes>: the nodelist is empty".to_string()));
            return Ok((nodelist, fence_nodes));
        };
        self.note_unknown_children(clusternodes, &["clusternode"]);
        for n in clusternodes.children_named("clusternode") {
            let name = required(n, "name")?;
            let id_text = required(n, "nodeid")?;
            let id = number::<u32>(n, "nodeid", id_text, "a node id from 1 to 4294967295")?;
            if id == 0 {
                return Err(bad(n, "nodeid", id_text, "a node id from 1 to 4294967295"));
            }
            if let Some(first) = ids.insert(id, n.line) {
                return Err(Error::Duplicate {
                    line: n.line,
                    first,
                    what: "node id",
                    name: id_text.to_string(),
                });
            }
            if let Some(first) = names.insert(name, n.line) {
                return Err(Error::Duplicate {
                    line: n.line,
                    first,
                    what: "node name",
                    name: name.to_string(),
                });
            }
            let mut node = Block::new("node");
            put(&mut node, n, "name", "ring0_addr", name)?;
            if let Some(alt) = n.child("altname") {
                put(&mut node, alt, "name", "ring1_addr", required(alt, "name")?)?;
                self.note_unknown_attrs(alt, &["name"]);
            }
            put(&mut node, n, "name", "name", name)?;
            put(&mut node, n, "nodeid", "nodeid", id_text)?;
            if let Some(votes) = n.attr("votes") {
                number::<u32>(n, "votes", votes, "a number of votes")?;
                put(&mut node, n, "votes", "quorum_votes", votes)?;
            }
            self.note_unknown_attrs(n, &["name", "nodeid", "votes"]);
            self.note_unknown_children(n, &["fence", "unfence", "altname"]);
            nodelist.block(node);
            if n.child("fence").is_some() || n.child("unfence").is_some() {
                fence_nodes.push(n);
            }
        }
        Ok((nodelist, fence_nodes))
    }

    fn quorum(&mut self, cluster: &Element) -> Result<Block, Error> {
        let mut quorum = Block::new("quorum");
        quorum.key("provider", "corosync_votequorum");
        if let Some(cman) = cluster.child("cman") {
            if let Some(v) = cman.attr("two_node") {
                if v != "0" && v != "1" {
                    return Err(bad(cman, "two_node", v, "0 or 1"));
                }
                put(&mut quorum, cman, "two_node", "two_node", v)?;
            }
            if let Some(v) = cman.attr("expected_votes") {
                number::<u32>(cman, "expected_votes", v, "a number of votes")?;
                put(&mut quorum, cman, "expected_votes", "expected_votes", v)?;
            }
            let mapped = ["two_node", "expected_votes", "transport", "port", "keyfile"];
            self.note_unknown_attrs(cman, &mapped);
            self.note_unknown_children(cman, &["multicast"]);
        }
        Ok(quorum)
    }

    fn logging(&mut self, el: &Element) -> Result<Block, Error> {
        let mut logging = Block::new("logging");
        for (k, v) in el.attrs.iter().filter(|(k, _)| LOGGING_KEYS.contains(&k.as_str())) {
            put(&mut logging, el, k, k, v)?;
        }
        self.note_unknown_attrs(el, LOGGING_KEYS);
        self.note_unknown_children(el, &[]);
        Ok(logging)
    }

    fn fencing(&mut self, cluster: &Element, nodes: Vec<&Element>) -> Result<Option<Block>, Error> {
        let mut fencing = Block::new("fencing");
        let mut devices: BTreeMap<&str, u32> = BTreeMap::new();
        if let Some(fencedevices) = cluster.child("fencedevices") {
            self.note_unknown_children(fencedevices, &["fencedevice"]);
            for d in fencedevices.children_named("fencedevice") {
                let name = required(d, "name")?;
                let agent = required(d, "agent")?;
                if let Some(first) = devices.insert(name, d.line) {
                    return Err(Error::Duplicate {
                        line: d.line,
                        first,
                        what: "fence device",
                        name: name.into(),
                    });
                }
                let mut device = Block::new("device");
                put(&mut device, d, "name", "name", name)?;
                put(&mut device, d, "agent", "agent", agent)?;
                for (k, v) in d.attrs.iter().filter(|(k, _)| k != "name" && k != "agent") {
                    put(&mut device, d, k, k, v)?;
                }
                self.note_unknown_children(d, &[]);
                fencing.block(device);
            }
        }
        for n in nodes {
            if let Some(node) = self.fence_node(n, &devices)? {
                fencing.block(node);
            }
        }
        Ok((!fencing.items.is_empty()).then_some(fencing))
    }

    fn fence_node(&mut self, n: &Element, devices: &BTreeMap<&str, u32>) -> Result<Option<Block>, Error> {
        let name = required(n, "name")?;
        let mut node = Block::new("node");
        put(&mut node, n, "name", "name", name)?;
        put(&mut node, n, "nodeid", "nodeid", required(n, "nodeid")?)?;
        let header = node.items.len();
        for fence in n.children_named("fence") {
            self.note_unknown_children(fence, &["method"]);
            for m in fence.children_named("method") {
                let mut method = Block::new("method");
                if let Some(method_name) = m.attr("name") {
                    put(&mut method, m, "name", "name", method_name)?;
                }
                self.note_unknown_children(m, &["device"]);
                for d in m.children_named("device") {
                    method.block(device_ref(d, name, devices)?);
                }
                node.block(method);
            }
        }
        for unfence in n.children_named("unfence") {
            let mut block = Block::new("unfence");
            self.note_unknown_children(unfence, &["device"]);
            for d in unfence.children_named("device") {
                block.block(device_ref(d, name, devices)?);
            }
            node.block(block);
        }
        Ok((node.items.len() > header).then_some(node))
    }
}

/// The `interface` block of link `n`, created with its `linknumber` if new.
fn link<'m>(links: &'m mut BTreeMap<String, Block>, n: &str) -> &'m mut Block {
    links.entry(n.to_string()).or_insert_with(|| {
        let mut b = Block::new("interface");
        b.key("linknumber", n);
        b
    })
}

/// A method's `<device name=.. attr=..>`: a reference to a defined device plus node-specific
/// attributes.
fn device_ref(d: &Element, node: &str, devices: &BTreeMap<&str, u32>) -> Result<Block, Error> {
    let name = required(d, "name")?;
    if !devices.contains_key(name) {
        return Err(Error::UnknownDevice { line: d.line, node: node.to_string(), device: name.to_string() });
    }
    let mut device = Block::new("device");
    put(&mut device, d, "name", "name", name)?;
    for (k, v) in d.attrs.iter().filter(|(k, _)| k != "name") {
        put(&mut device, d, k, k, v)?;
    }
    Ok(device)
}

fn bad(el: &Element, attribute: &str, value: &str, expected: &'static str) -> Error {
    Error::BadAttribute {
        line: el.line,
        element: el.name.clone(),
        attribute: attribute.to_string(),
        value: value.to_string(),
        expected,
    }
}

fn number<T: std::str::FromStr>(
    el: &Element,
    attribute: &str,
    value: &str,
    expected: &'static str,
) -> Result<T, Error> {
    value.parse().map_err(|_| bad(el, attribute, value, expected))
}
