//! The `fencing {}` section (format in confdb's `cluster_conf` module doc) to
//! [`quorum::fencing::FenceConfig`], every problem at its file line. Besides `device` and
//! `node` sections it takes `post_join_delay` (seconds, default 6, as fenced), `agent_timeout`
//! (seconds, default 60), `retry_delay` (seconds, default 5) and `policy` (`block`, the default:
//! service is held while a fence is pending or this node is not yet unfenced; or `never`). A
//! node's `unfence { device { name: D ... } }` devices are run by that node at start with
//! `action=on` unless the device sets an action (fence_node -U).

use std::collections::BTreeMap;
use std::time::Duration;

use quorum::fencing::{BlockPolicy, Device, DeviceRef, FenceConfig, Method, NodeFencing};
use totem::NodeId;

use super::settings::NodeEntry;
use super::values::Reader;

/// Entries under `prefix.N.` grouped by N in file order: `(N, rest of key, value, line)`.
fn numbered<'a>(r: &Reader<'a>, prefix: &str) -> BTreeMap<u32, Vec<(String, String, u32)>> {
    let mut groups: BTreeMap<u32, Vec<(String, String, u32)>> = BTreeMap::new();
    for e in r.parsed.under(prefix) {
        let rest = &e.key[prefix.len() + 1..];
        let Some((n, key)) = rest.split_once('.') else { continue };
        if let Ok(n) = n.parse() {
            groups.entry(n).or_default().push((key.to_string(), e.value.clone(), e.line));
        }
    }
    groups
}

fn seconds(r: &mut Reader<'_>, key: &str, default: u64) -> Duration {
    Duration::from_secs(u64::from(
        r.number(key, 0..=86_400u32, "a number of seconds").unwrap_or(default as u32),
    ))
}

/// The `device.K.attr` entries of a method or an unfence block, as device references in K
/// order; a device without a `name` is left out (validation reports the empty method).
fn device_refs(entries: &[(String, String, u32)]) -> Vec<DeviceRef> {
    let mut devices: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for (key, value, _) in entries {
        if let Some((d, attr)) = key.strip_prefix("device.").and_then(|r| r.split_once('.')) {
            if let Ok(d) = d.parse() {
                devices.entry(d).or_default().push((attr.to_string(), value.clone()));
            }
        }
    }
    devices
        .into_values()
        .filter_map(|attrs| {
            let device = attrs.iter().find(|(k, _)| k == "name")?.1.clone();
            let attrs = attrs.into_iter().filter(|(k, _)| k != "name").collect();
            Some(DeviceRef { device, attrs })
        })
        .collect()
}

/// The fencing configuration, or `None` when the file has no `fencing` section.
pub(super) fn fencing(r: &mut Reader<'_>, nodes: &[NodeEntry]) -> Option<FenceConfig> {
    let line = r.parsed.section("fencing").map(|s| s.line)?;
    let mut config = FenceConfig {
        post_join_delay: seconds(r, "fencing.post_join_delay", 6),
        agent_timeout: seconds(r, "fencing.agent_timeout", 60),
        retry_delay: seconds(r, "fencing.retry_delay", 5),
        policy: r
            .choice(
                "fencing.policy",
                &[("block", BlockPolicy::BlockWhilePending), ("never", BlockPolicy::Never)],
            )
            .unwrap_or_default(),
        ..FenceConfig::default()
    };
    for (_, entries) in numbered(r, "fencing.device") {
        let get = |k: &str| entries.iter().find(|(key, _, _)| key == k);
        let first_line = entries.first().map_or(line, |e| e.2);
        let Some((_, name, _)) = get("name") else {
            r.error(first_line, "fencing.device: missing name");
            continue;
        };
        let Some((_, agent, _)) = get("agent") else {
            r.error(first_line, format!("fencing.device {name}: missing agent (the fence agent program)"));
            continue;
        };
        let attrs = entries
            .iter()
            .filter(|(k, _, _)| k != "name" && k != "agent")
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .collect();
        config.devices.insert(name.clone(), Device { agent: agent.clone(), attrs });
    }
    for (i, entries) in numbered(r, "fencing.node") {
        let first_line = entries.first().map_or(line, |e| e.2);
        let get = |k: &str| entries.iter().find(|(key, _, _)| key == k).map(|(_, v, l)| (v.clone(), *l));
        let by_name = |name: &str| nodes.iter().find(|n| n.name.as_deref() == Some(name));
        let node = match (get("nodeid"), get("name")) {
            (Some((id, l)), _) => match id.parse::<u32>() {
                Ok(id) if id > 0 => {
                    nodes.iter().find(|n| n.nodeid == NodeId(id)).map(|n| (n.nodeid, n.name.clone()))
                }
                _ => {
                    r.error(l, format!("fencing.node.{i}.nodeid: expects a node id, found {id:?}"));
                    continue;
                }
            },
            (None, Some((name, _))) => by_name(&name).map(|n| (n.nodeid, n.name.clone())),
            (None, None) => {
                r.error(first_line, format!("fencing.node.{i}: missing nodeid or name"));
                continue;
            }
        };
        let Some((node_id, name)) = node else {
            r.error(first_line, format!("fencing.node.{i}: not a node of the nodelist"));
            continue;
        };
        let mut methods = Vec::new();
        let mut by_method: BTreeMap<u32, Vec<(String, String, u32)>> = BTreeMap::new();
        let mut unfence = Vec::new();
        for (key, value, l) in &entries {
            if let Some(rest) = key.strip_prefix("method.") {
                if let Some((m, rest)) = rest.split_once('.') {
                    if let Ok(m) = m.parse() {
                        by_method.entry(m).or_default().push((rest.to_string(), value.clone(), *l));
                    }
                }
            } else if let Some(rest) = key.strip_prefix("unfence.") {
                unfence.push((rest.to_string(), value.clone(), *l));
            }
        }
        for (m, method_entries) in by_method {
            let method_name = method_entries
                .iter()
                .find(|(k, _, _)| k == "name")
                .map_or_else(|| format!("method{m}"), |(_, v, _)| v.clone());
            methods.push(Method { name: method_name, devices: device_refs(&method_entries) });
        }
        if !unfence.is_empty() {
            config.unfence.insert(node_id, device_refs(&unfence));
        }
        let name = name.unwrap_or_else(|| node_id.to_string());
        config.nodes.insert(node_id, NodeFencing { name, methods });
    }
    if let Err(e) = config.validate() {
        r.error(line, format!("fencing: {e}"));
    }
    Some(config)
}
