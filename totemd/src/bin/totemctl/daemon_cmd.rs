//! Requests about the daemon itself:
//! - `totemctl status`: this node's ring and links, as `corosync-cfgtool -s` shows them;
//! - `totemctl reload [--json]`: read the configuration again (`corosync-cfgtool -R`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ipc::{Connection, ReloadRequest, RequestBody, ResponseResult, StatusReply, StatusRequest};
use serde_json::{json, Value};

use crate::cpg_cmd::SocketArg;

/// Prints the status; errors are one line on stderr and exit status 1.
pub fn run(json_output: bool, socket: &SocketArg) -> ExitCode {
    let path = socket.path();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(fetch(path)));
    match result {
        Ok(status) => {
            if json_output {
                println!("{}", status_json(&status));
            } else {
                print!("{}", status_text(&status));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("totemctl: status: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn fetch(path: PathBuf) -> Result<StatusReply, String> {
    match request(&path, RequestBody::Status(StatusRequest {})).await? {
        ResponseResult::Status(s) => Ok(s),
        other => Err(format!("unexpected answer from totemd: {other:?}")),
    }
}

async fn request(path: &Path, body: RequestBody) -> Result<ResponseResult, String> {
    let (conn, _) = Connection::connect(path, "totemctl").await.map_err(|e| e.to_string())?;
    conn.request(body).await.map_err(|e| e.to_string())
}

/// One request to the daemon at `path` and its answer, on a runtime of its own; errors as the
/// one line totemctl prints.
pub fn request_blocking(path: &Path, body: RequestBody) -> Result<ResponseResult, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(request(path, body)))
}

/// Asks the daemon to reload its configuration file and prints what changed (`--json`:
/// {"applied":[..],"not_applied":[..]}); exit status 1 when it could not (the file has errors,
/// or the daemon runs without a file).
pub fn reload(json_output: bool, socket: &SocketArg) -> ExitCode {
    let path = socket.path();
    let result = request_blocking(&path, RequestBody::Reload(ReloadRequest {}));
    match result {
        Ok(ResponseResult::Reload(r)) if json_output => {
            println!("{}", json!({"applied": r.applied, "not_applied": r.not_applied}));
            ExitCode::SUCCESS
        }
        Ok(ResponseResult::Reload(r)) => {
            if r.applied.is_empty() && r.not_applied.is_empty() {
                println!("configuration unchanged");
            }
            for change in &r.applied {
                println!("applied: {change}");
            }
            for change in &r.not_applied {
                println!("not applied (restart needed): {change}");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => {
            eprintln!("totemctl: reload: unexpected answer from totemd: {other:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("totemctl: reload: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One JSON object: node_id, ring_id ("REP.SEQ"), state, members, links.
pub fn status_json(s: &StatusReply) -> Value {
    let links: Vec<Value> =
        s.links.iter().map(|l| json!({"link": l.link, "node_id": l.node_id, "up": l.up})).collect();
    json!({
        "node_id": s.node_id,
        "ring_id": format!("{}.{}", s.ring_rep, s.ring_seq),
        "state": s.state,
        "members": s.members,
        "links": links,
    })
}

/// The readable form: the node and ring, then each link with each peer's state.
pub fn status_text(s: &StatusReply) -> String {
    let members: Vec<String> = s.members.iter().map(u32::to_string).collect();
    let mut out = format!(
        "Local node ID {}, ring ID {}.{} ({})\nMembers: {}\n",
        s.node_id,
        s.ring_rep,
        s.ring_seq,
        s.state,
        members.join(" ")
    );
    let mut links: Vec<u32> = s.links.iter().map(|l| l.link).collect();
    links.dedup();
    if links.is_empty() {
        out.push_str("No links to other nodes (one-node cluster)\n");
    }
    for link in links {
        out.push_str(&format!("LINK ID {link}\n\tstatus:\n\t\tnodeid: {:>3}:\tlocalhost\n", s.node_id));
        for l in s.links.iter().filter(|l| l.link == link) {
            let state = if l.up { "connected" } else { "disconnected" };
            out.push_str(&format!("\t\tnodeid: {:>3}:\t{state}\n", l.node_id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ipc::LinkInfo;

    use super::*;

    fn sample() -> StatusReply {
        StatusReply {
            node_id: 1,
            ring_rep: 1,
            ring_seq: 12,
            members: vec![1, 2],
            state: "operational".into(),
            links: vec![
                LinkInfo { node_id: 2, link: 0, up: true },
                LinkInfo { node_id: 2, link: 1, up: false },
            ],
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        assert_eq!(
            status_json(&sample()).to_string(),
            r#"{"node_id":1,"ring_id":"1.12","state":"operational","members":[1,2],"links":[{"link":0,"node_id":2,"up":true},{"link":1,"node_id":2,"up":false}]}"#
        );
    }

    #[test]
    fn text_lists_each_link_with_each_peer() {
        assert_eq!(
            status_text(&sample()),
            "Local node ID 1, ring ID 1.12 (operational)\nMembers: 1 2\n\
             LINK ID 0\n\tstatus:\n\t\tnodeid:   1:\tlocalhost\n\t\tnodeid:   2:\tconnected\n\
             LINK ID 1\n\tstatus:\n\t\tnodeid:   1:\tlocalhost\n\t\tnodeid:   2:\tdisconnected\n"
        );
    }
}
