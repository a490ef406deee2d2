//! Requests about the cluster as a whole:
//! - `totemctl nodes`: every node with its name, addresses, votes, status and links, from the
//!   daemon's confdb (the nodelist and the `runtime.` keys), as one table;
//! - `totemctl metrics`: the runtime counters in the Prometheus text format;
//! - `totemctl shutdown`: this daemon leaves the ring cleanly and exits (`corosync-cfgtool -H`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use confdb::client::Confdb;
use confdb::store::Value;
use ipc::{Connection, MetricsRequest, RequestBody, ResponseResult, ShutdownRequest};
use serde_json::{json, Value as Json};
use totemd::runtime::api::metrics;

use crate::cpg_cmd::SocketArg;

/// How long `shutdown` waits for the daemon to close the connection once it agreed.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

fn block_on<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?.block_on(f)
}

fn finish(name: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totemctl: {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `totemctl nodes [--json]`.
pub fn nodes(json_output: bool, socket: &SocketArg) -> ExitCode {
    let path = socket.path();
    let result = block_on(async {
        let db = Confdb::connect_named(&path, "totemctl").await.map_err(|e| e.to_string())?;
        db.iter_prefix("").await.map_err(|e| e.to_string())
    });
    finish(
        "nodes",
        result.map(|keys| {
            let table = NodeTable::from_keys(&keys);
            if json_output {
                println!("{}", table.json());
            } else {
                print!("{}", table.text());
            }
        }),
    )
}

/// `totemctl metrics [--json]`.
pub fn metrics(json_output: bool, socket: &SocketArg) -> ExitCode {
    let path = socket.path();
    let result = crate::daemon_cmd::request_blocking(&path, RequestBody::Metrics(MetricsRequest {}));
    let result = match result {
        Ok(ResponseResult::Metrics(m)) if json_output => metrics_json(&m.text).map(|j| println!("{j}")),
        Ok(ResponseResult::Metrics(m)) => {
            print!("{}", m.text);
            Ok(())
        }
        Ok(other) => Err(format!("unexpected answer from totemd: {other:?}")),
        Err(e) => Err(e),
    };
    finish("metrics", result)
}

/// The samples as JSON: [{"name":..,"labels":{..},"value":..}, ...].
fn metrics_json(text: &str) -> Result<Json, String> {
    let samples = metrics::parse(text).map_err(|e| format!("totemd sent invalid metrics: {e}"))?;
    Ok(Json::Array(
        samples
            .iter()
            .map(|s| {
                let labels: serde_json::Map<String, Json> =
                    s.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({"name": s.name, "labels": labels, "value": s.value})
            })
            .collect(),
    ))
}

/// `totemctl shutdown [--json]`: asks, then waits for the daemon to close the connection.
pub fn shutdown(json_output: bool, socket: &SocketArg) -> ExitCode {
    let path = socket.path();
    let result = block_on(shutdown_and_wait(&path));
    let result = result.map(|()| {
        if json_output {
            println!("{}", json!({"stopped": true}));
        } else {
            println!("totemd left the ring and stopped");
        }
    });
    finish("shutdown", result)
}

async fn shutdown_and_wait(path: &Path) -> Result<(), String> {
    let (conn, _) = Connection::connect(path, "totemctl").await.map_err(|e| e.to_string())?;
    match conn.request(RequestBody::Shutdown(ShutdownRequest {})).await.map_err(|e| e.to_string())? {
        ResponseResult::Ok(_) => {}
        other => return Err(format!("unexpected answer from totemd: {other:?}")),
    }
    let closed = async { while conn.next_event().await.is_some() {} };
    tokio::time::timeout(SHUTDOWN_WAIT, closed).await.map_err(|_| {
        format!("totemd agreed to stop but was still running after {} s", SHUTDOWN_WAIT.as_secs())
    })
}

/// One row of `totemctl nodes`.
#[derive(Debug, Default, PartialEq)]
struct NodeRow {
    name: Option<String>,
    addresses: Vec<String>,
    votes: Option<u64>,
    /// `joined`/`left` from `runtime.members`, else `unknown`.
    status: Option<String>,
    /// Link number and whether it is connected.
    links: BTreeMap<u32, bool>,
    /// The peer's address on each link, as the daemon sends to it.
    link_addresses: BTreeMap<u32, String>,
}

/// Every node the confdb knows of: the nodelist, the ring's members, the links' peers.
#[derive(Debug, Default)]
struct NodeTable {
    local: Option<u32>,
    nodes: BTreeMap<u32, NodeRow>,
}

impl NodeTable {
    fn from_keys(keys: &[(String, Value)]) -> NodeTable {
        let map: BTreeMap<&str, &Value> = keys.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let number = |v: &Value| v.to_string().parse::<u64>().ok();
        let mut table = NodeTable {
            local: map
                .get("runtime.local_node_id")
                .and_then(|v| number(v))
                .and_then(|n| u32::try_from(n).ok()),
            ..NodeTable::default()
        };
        // nodelist.node.<pos>.<field>: grouped by position, keyed by its nodeid.
        let mut positions: BTreeMap<&str, BTreeMap<&str, &Value>> = BTreeMap::new();
        for (key, value) in &map {
            if let Some((pos, field)) = key.strip_prefix("nodelist.node.").and_then(|r| r.split_once('.')) {
                positions.entry(pos).or_default().insert(field, value);
            }
        }
        for fields in positions.values() {
            let Some(id) = fields.get("nodeid").and_then(|v| number(v)).and_then(|n| u32::try_from(n).ok())
            else {
                continue;
            };
            let row = table.nodes.entry(id).or_default();
            row.name = fields.get("name").map(|v| v.to_string());
            row.votes = fields.get("quorum_votes").and_then(|v| number(v));
            let mut addrs: Vec<(u32, String)> = fields
                .iter()
                .filter_map(|(f, v)| {
                    let link = f.strip_prefix("ring")?.strip_suffix("_addr")?.parse().ok()?;
                    Some((link, v.to_string()))
                })
                .collect();
            addrs.sort();
            row.addresses = addrs.into_iter().map(|(_, a)| a).collect();
        }
        for (key, value) in &map {
            let id_of = |rest: &str| rest.split('.').next().and_then(|id| id.parse::<u32>().ok());
            if let Some(rest) = key.strip_prefix("runtime.members.") {
                if let (Some(id), true) = (id_of(rest), rest.ends_with(".status")) {
                    table.nodes.entry(id).or_default().status = Some(value.to_string());
                }
            } else if let Some(rest) = key.strip_prefix("runtime.links.") {
                let parts: Vec<&str> = rest.split('.').collect();
                if let [id, link, field] = parts[..] {
                    if let (Ok(id), Ok(link)) = (id.parse::<u32>(), link.parse::<u32>()) {
                        let row = table.nodes.entry(id).or_default();
                        match field {
                            "connected" => {
                                row.links.insert(link, number(value) == Some(1));
                            }
                            "address" => {
                                row.link_addresses.insert(link, value.to_string());
                            }
                            _ => {}
                        }
                    }
                }
            } else if let Some(rest) = key.strip_prefix("runtime.votequorum.nodes.") {
                if let (Some(id), true) = (id_of(rest), rest.ends_with(".votes")) {
                    table.nodes.entry(id).or_default().votes = number(value);
                }
            }
        }
        for row in table.nodes.values_mut() {
            if row.addresses.is_empty() {
                // No nodelist (a daemon started from the command line): where its links send.
                row.addresses = row.link_addresses.values().cloned().collect();
            }
        }
        table
    }

    fn status(&self, id: u32, row: &NodeRow) -> String {
        match row.status.as_deref() {
            Some("joined") => "member".to_string(),
            Some(other) => other.to_string(),
            None if Some(id) == self.local => "starting".to_string(),
            None => "not seen".to_string(),
        }
    }

    fn links_text(&self, id: u32, row: &NodeRow) -> String {
        if Some(id) == self.local {
            return "local".into();
        }
        if row.links.is_empty() {
            return "-".into();
        }
        let links: Vec<String> =
            row.links.iter().map(|(l, up)| format!("{l}:{}", if *up { "up" } else { "down" })).collect();
        links.join(" ")
    }

    fn text(&self) -> String {
        let mut rows = vec![["Nodeid", "Name", "Addresses", "Votes", "Status", "Links"].map(String::from)];
        for (&id, row) in &self.nodes {
            let local = if Some(id) == self.local { " (local)" } else { "" };
            rows.push([
                id.to_string(),
                format!("{}{local}", row.name.as_deref().unwrap_or("-")),
                if row.addresses.is_empty() { "-".into() } else { row.addresses.join(",") },
                row.votes.map_or_else(|| "-".into(), |v| v.to_string()),
                self.status(id, row),
                self.links_text(id, row),
            ]);
        }
        let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    fn json(&self) -> Json {
        let nodes: Vec<Json> = self
            .nodes
            .iter()
            .map(|(&id, row)| {
                let links: Vec<Json> =
                    row.links.iter().map(|(l, up)| json!({"link": l, "connected": up})).collect();
                json!({
                    "node_id": id,
                    "name": row.name,
                    "addresses": row.addresses,
                    "votes": row.votes,
                    "status": self.status(id, row),
                    "local": Some(id) == self.local,
                    "links": links,
                })
            })
            .collect();
        json!({"local_node_id": self.local, "nodes": nodes})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<(String, Value)> {
        let s = |v: &str| Value::String(v.into());
        vec![
            ("nodelist.node.0.nodeid".into(), Value::U32(1)),
            ("nodelist.node.0.name".into(), s("alpha")),
            ("nodelist.node.0.ring0_addr".into(), s("10.0.0.1")),
            ("nodelist.node.0.ring1_addr".into(), s("10.1.0.1")),
            ("nodelist.node.1.nodeid".into(), Value::U32(2)),
            ("nodelist.node.1.ring0_addr".into(), s("10.0.0.2")),
            ("nodelist.node.1.quorum_votes".into(), Value::U32(2)),
            ("runtime.local_node_id".into(), Value::U32(1)),
            ("runtime.members.1.status".into(), s("joined")),
            ("runtime.members.2.status".into(), s("left")),
            ("runtime.links.2.0.connected".into(), Value::U8(0)),
            ("runtime.links.2.1.connected".into(), Value::U8(1)),
            ("runtime.links.3.0.connected".into(), Value::U8(1)),
            ("runtime.links.3.0.address".into(), s("10.0.0.3:5405")),
            ("runtime.links.2.0.address".into(), s("10.0.0.2:5405")),
            ("runtime.votequorum.nodes.1.votes".into(), Value::U32(1)),
        ]
    }

    #[test]
    fn the_table_joins_the_nodelist_members_links_and_votes() {
        let table = NodeTable::from_keys(&keys());
        assert_eq!(
            table.text(),
            "Nodeid  Name           Addresses          Votes  Status    Links\n\
             1       alpha (local)  10.0.0.1,10.1.0.1  1      member    local\n\
             2       -              10.0.0.2           2      left      0:down 1:up\n\
             3       -              10.0.0.3:5405      -      not seen  0:up\n"
        );
    }

    #[test]
    fn json_has_one_object_per_node() {
        let json = NodeTable::from_keys(&keys()).json();
        assert_eq!(json["local_node_id"], 1);
        assert_eq!(json["nodes"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            json["nodes"][1].to_string(),
            r#"{"node_id":2,"name":null,"addresses":["10.0.0.2"],"votes":2,"status":"left","local":false,"links":[{"link":0,"connected":false},{"link":1,"connected":true}]}"#
        );
    }

    #[test]
    fn metrics_json_lists_samples_with_labels() {
        let text = "# TYPE totem_x_total counter\ntotem_x_total{reason=\"auth\"} 3\n";
        assert_eq!(
            metrics_json(text).unwrap().to_string(),
            r#"[{"name":"totem_x_total","labels":{"reason":"auth"},"value":3.0}]"#
        );
        assert!(metrics_json("totem_x{").is_err());
    }
}
