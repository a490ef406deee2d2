//! `nodelist` and `totem.interface`: the cluster's nodes, their addresses, and the links.
//! corosync's rules (corosync.conf(5), `totem_config_validate`): every node has `ring0_addr`;
//! every node has an address on every link; several links need knet and node names; one
//! family of address per link. totemd also needs every node's `nodeid`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use totem::NodeId;

use super::settings::{Link, NodeEntry, RingAddr, Transport, LINKS_MAX};
use super::values::{is_host_name, Reader};

/// Reads every `nodelist.node`, reporting missing, malformed and duplicate ids and addresses.
pub(super) fn nodelist(r: &mut Reader<'_>) -> Vec<NodeEntry> {
    let sections: Vec<(String, u32)> = r
        .parsed
        .sections
        .iter()
        .filter(|s| s.path.strip_prefix("nodelist.node.").is_some_and(|n| !n.contains('.')))
        .map(|s| (s.path.clone(), s.line))
        .collect();
    if sections.is_empty() {
        let line = r.section_line("nodelist");
        r.error(
            line,
            "nodelist: no node: list every node of the cluster, each with a nodeid and a ring0_addr",
        );
        return Vec::new();
    }
    let mut nodes = Vec::new();
    let mut ids: BTreeMap<u32, u32> = BTreeMap::new();
    let mut addrs_seen: BTreeMap<(u8, String), u32> = BTreeMap::new();
    for (path, line) in sections {
        let id = nodeid(r, &path, line, &mut ids);
        let mut addrs = BTreeMap::new();
        for link in 0..LINKS_MAX {
            let Some(entry) = r.get(&format!("{path}.ring{link}_addr")) else { continue };
            let Some(addr) = ring_addr(&entry.value) else {
                r.bad(entry, "an IP address or a host name");
                continue;
            };
            let seen_as = (link, addr.to_string().to_ascii_lowercase());
            if let Some(first) = addrs_seen.insert(seen_as, line) {
                let msg = format!("{}: {addr} is also the address of the node at line {first}", entry.key);
                r.error(entry.line, msg);
            }
            addrs.insert(link, addr);
        }
        let ring0_line = match r.get(&format!("{path}.ring0_addr")) {
            Some(e) => e.line,
            None => {
                r.error(
                    line,
                    format!("{path}.ring0_addr: missing: every node needs ring0_addr, its address on link 0"),
                );
                0
            }
        };
        let name = r.text(&format!("{path}.name"), "a node name").map(str::to_string);
        let quorum_votes =
            r.number(&format!("{path}.quorum_votes"), 0..=u32::MAX, "a number of votes").unwrap_or(1);
        if let Some(nodeid) = id.filter(|_| addrs.contains_key(&0)) {
            nodes.push(NodeEntry { nodeid, name, addrs, quorum_votes, line, ring0_line });
        }
    }
    nodes
}

fn nodeid(r: &mut Reader<'_>, path: &str, line: u32, ids: &mut BTreeMap<u32, u32>) -> Option<NodeId> {
    let key = format!("{path}.nodeid");
    let Some(entry) = r.get(&key) else {
        r.error(
            line,
            format!("{key}: missing: totemd needs every node's nodeid (as corosync does with knet)"),
        );
        return None;
    };
    let id = r.number(&key, 1..=u32::MAX, "a node id")?;
    if let Some(first) = ids.insert(id, line) {
        r.error(entry.line, format!("{key}: {id} is also the nodeid of the node at line {first}"));
        return None;
    }
    Some(NodeId(id))
}

/// An IP address, or a host name to resolve when the daemon starts.
fn ring_addr(value: &str) -> Option<RingAddr> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(RingAddr::Ip(ip));
    }
    is_host_name(value).then(|| RingAddr::Name(value.to_string()))
}

/// The links the nodes have addresses on, each with its `totem.interface` options.
pub(super) fn links(r: &mut Reader<'_>, transport: Transport, nodes: &[NodeEntry]) -> BTreeMap<u8, Link> {
    let used: BTreeSet<u8> = nodes.iter().flat_map(|n| n.addrs.keys().copied()).collect();
    same_links_everywhere(r, nodes);
    if used.len() > 1 {
        for n in nodes.iter().filter(|n| n.name.is_none()) {
            let msg = format!(
                "nodelist.node (node {}): name: missing: with several links every node needs a name",
                n.nodeid
            );
            r.error(n.line, msg);
        }
    }
    let mut interfaces = interfaces(r, transport, &used);
    let configured: BTreeSet<u8> = used.iter().copied().chain(interfaces.keys().copied()).collect();
    if transport != Transport::Knet && configured.iter().any(|&l| l > 0) {
        let line = r.get("totem.transport").map_or_else(|| r.section_line("totem"), |e| e.line);
        let list: Vec<String> = configured.iter().map(u8::to_string).collect();
        let msg = format!(
            "totem.transport: {transport} has link 0 only, but links {} are configured (ringN_addr or \
             interface linknumber): use transport: knet for several links",
            list.join(", ")
        );
        r.error(line, msg);
    }
    one_family_per_link(r, nodes);
    used.into_iter().map(|l| (l, interfaces.remove(&l).unwrap_or_else(|| Link::new(l)))).collect()
}

fn same_links_everywhere(r: &mut Reader<'_>, nodes: &[NodeEntry]) {
    let Some(first) = nodes.first() else { return };
    let links = |n: &NodeEntry| n.addrs.keys().map(u8::to_string).collect::<Vec<_>>().join(", ");
    for n in &nodes[1..] {
        if n.addrs.keys().ne(first.addrs.keys()) {
            let msg = format!(
                "nodelist.node (node {}): has addresses on links {} but node {} (line {}) on links {}: \
                 every node needs an address on every link",
                n.nodeid,
                links(n),
                first.nodeid,
                first.line,
                links(first)
            );
            r.error(n.line, msg);
        }
    }
}

fn one_family_per_link(r: &mut Reader<'_>, nodes: &[NodeEntry]) {
    let mut family: BTreeMap<u8, (bool, &NodeEntry)> = BTreeMap::new();
    for n in nodes {
        for (&link, addr) in &n.addrs {
            let RingAddr::Ip(ip) = addr else { continue };
            match family.get(&link) {
                None => {
                    family.insert(link, (ip.is_ipv4(), n));
                }
                Some(&(v4, first)) if v4 != ip.is_ipv4() => {
                    let msg = format!(
                        "nodelist.node (node {}): ring{link}_addr {ip} is not of the address family of node {} \
                         on link {link} ({}): one family per link",
                        n.nodeid,
                        first.nodeid,
                        first.addrs[&link]
                    );
                    r.error(n.line, msg);
                }
                Some(_) => {}
            }
        }
    }
}

/// Every `totem.interface.N` section, by link number.
fn interfaces(r: &mut Reader<'_>, transport: Transport, used: &BTreeSet<u8>) -> BTreeMap<u8, Link> {
    let sections: Vec<(u8, String, u32)> = r
        .parsed
        .sections
        .iter()
        .filter_map(|s| {
            let n = s.path.strip_prefix("totem.interface.")?.parse::<u8>().ok()?;
            Some((n, s.path.clone(), s.line))
        })
        .collect();
    let mut links = BTreeMap::new();
    for (n, path, line) in sections {
        let mut link = Link::new(n);
        let key = |k: &str| format!("{path}.{k}");
        link.mcastport = r.number(&key("mcastport"), 1..=u16::MAX, "a UDP port").unwrap_or(link.mcastport);
        link.bindnetaddr = r.ip(&key("bindnetaddr"));
        link.mcastaddr = r.ip(&key("mcastaddr"));
        if let (Some(ip), Some(e)) = (link.mcastaddr, r.get(&key("mcastaddr"))) {
            if transport == Transport::Udp && !ip.is_multicast() {
                r.bad(e, "a multicast address");
            }
        }
        link.broadcast = r.flag(&key("broadcast")).unwrap_or(false);
        link.ttl = r.number(&key("ttl"), 0..=u8::MAX, "a TTL").unwrap_or(1);
        if link.ttl != 1 && transport != Transport::Udp {
            let line = r.get(&key("ttl")).map_or(line, |e| e.line);
            r.error(line, format!("{}: only the udp transport sets a ttl (corosync's rule)", key("ttl")));
        }
        // The heartbeat options the link layer (`crate::links`) uses; other knet tuning is not.
        link.knet_ping_interval = r.millis(&key("knet_ping_interval"), 1);
        link.knet_ping_timeout = r.millis(&key("knet_ping_timeout"), 1);
        link.knet_pong_count = r.number(&key("knet_pong_count"), 1..=u32::MAX, "a number of pongs");
        let heartbeat = ["knet_ping_interval", "knet_ping_timeout", "knet_pong_count"];
        let knet: Vec<String> = r
            .parsed
            .under(&path)
            .filter(|e| {
                let k = &e.key[path.len() + 1..];
                k.starts_with("knet_") && !heartbeat.contains(&k)
            })
            .map(|e| e.key.clone())
            .collect();
        for k in knet {
            r.not_implemented(&k, "totemd has no knet link layer to tune");
        }
        if !used.contains(&n) {
            r.warn(line, format!("{path}: no node has ring{n}_addr, so this interface has no effect"));
        }
        links.insert(n, link);
    }
    links
}
