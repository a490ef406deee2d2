//! `totemctl cpg ...`: closed process groups through the daemon's socket.
//!
//! - `list [--json]`: every group and its members, as corosync-cpgtool shows them.
//! - `listen GROUP`: join and print each event as one JSON object per line.
//! - `send GROUP [--safe] [--count N --size BYTES]`: send stdin's lines (or N generated
//!   messages) to the group.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine as _;
use clap::{Args, Subcommand};
use cpg::client::Cpg;
use cpg::{Change, CpgEvent, GroupName, Guarantee, MemberId};
use serde_json::{json, Value};

/// The socket option every cpg subcommand takes.
#[derive(Debug, Args)]
pub struct SocketArg {
    /// The daemon's socket (default: $TOTEMD_SOCKET, else /var/lib/totemd/totemd.sock if it
    /// exists, else ./totemd-state/totemd.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CpgCommand {
    /// List every group and its members (node id, pid), as corosync-cpgtool does.
    List {
        /// Print JSON: [{"group":..,"members":[{"nodeid":..,"pid":..}]}].
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Join GROUP and print each event as one JSON object per line until SIGINT, SIGTERM or
    /// the daemon closing.
    ///
    /// {"event":"deliver","group":..,"nodeid":..,"pid":..,"data":".."} ("data_b64" when the
    /// bytes are not UTF-8); {"event":"confchg","group":..,"members":[..],"left":[..],
    /// "joined":[..]}; {"event":"totem","ring_id":"REP.SEQ","members":[..]}.
    Listen {
        /// The group.
        group: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Join GROUP and send each line of standard input as one message (or --count generated
    /// messages of --size bytes), then print how many were sent.
    ///
    /// Examples: echo hello | totemctl cpg send mygroup
    ///           totemctl cpg send mygroup --count 1000 --size 1024 --safe
    Send {
        /// The group.
        group: String,
        /// Safe delivery (delivered once every node holds it) instead of agreed.
        #[arg(long)]
        safe: bool,
        /// Send this many generated messages instead of reading standard input.
        #[arg(long, requires = "size", value_name = "N")]
        count: Option<u64>,
        /// Size of each generated message in bytes.
        #[arg(long, requires = "count", value_name = "BYTES")]
        size: Option<usize>,
        /// Print {"group":..,"sent":N} at the end.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
}

/// Runs one cpg subcommand; errors are one line on stderr and exit status 1.
pub fn run(command: CpgCommand) -> ExitCode {
    let (name, result) = match command {
        CpgCommand::List { json, socket } => ("list", block_on(list(socket.path(), json))),
        CpgCommand::Listen { group, socket } => ("listen", block_on(listen(socket.path(), group))),
        CpgCommand::Send { group, safe, count, size, json, socket } => {
            let what = match (count, size) {
                (Some(count), Some(size)) => Messages::Generated { count, size },
                _ => Messages::Stdin,
            };
            let guarantee = if safe { Guarantee::Safe } else { Guarantee::Agreed };
            ("send", block_on(send(socket.path(), group, guarantee, what, json)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totemctl: cpg {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

impl SocketArg {
    /// The socket named, or the usual one ([`ipc::socket_path`]).
    pub fn path(&self) -> PathBuf {
        cpg::client::socket_path(self.socket.as_deref())
    }
}

fn block_on<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)
}

async fn connect(path: &Path) -> Result<Cpg> {
    Ok(Cpg::connect_with(path, cpg::client::ConnectOptions::new("totemctl")).await?)
}

fn group_name(name: &str) -> Result<GroupName> {
    GroupName::try_from(name).map_err(|e| format!("group {name:?}: {e}").into())
}

async fn list(path: PathBuf, as_json: bool) -> Result<()> {
    let groups = connect(&path).await?.groups().await?;
    if as_json {
        println!("{}", groups_json(&groups));
    } else {
        print!("{}", groups_table(&groups));
    }
    Ok(())
}

async fn listen(path: PathBuf, group: String) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let group = group_name(&group)?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let cpg = connect(&path).await?;
    cpg.join(&group).await?;
    let mut out = std::io::stdout().lock();
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            event = cpg.next_event() => match event {
                Some(event) => {
                    // A closed pipe (`| head`) ends the listener quietly.
                    if writeln!(out, "{}", event_json(&event)).and_then(|()| out.flush()).is_err() {
                        return Ok(());
                    }
                }
                None => return Err("totemd closed the connection".into()),
            },
        }
    }
    cpg.leave(&group).await?;
    Ok(())
}

/// What `send` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Messages {
    /// One message per line of standard input (without its line end).
    Stdin,
    /// `count` messages of `size` bytes.
    Generated { count: u64, size: usize },
}

async fn send(path: PathBuf, group: String, guarantee: Guarantee, what: Messages, json: bool) -> Result<()> {
    let group = group_name(&group)?;
    let cpg = Arc::new(connect(&path).await?);
    cpg.join(&group).await?;
    // Our own messages come back to us as members: drain them so the connection keeps reading.
    let drain = {
        let cpg = cpg.clone();
        tokio::spawn(async move { while cpg.next_event().await.is_some() {} })
    };
    let mut sent = 0u64;
    match what {
        Messages::Generated { count, size } => {
            for i in 0..count {
                cpg.mcast(&group, guarantee, generated_message(i, size)).await?;
                sent += 1;
            }
        }
        Messages::Stdin => {
            let mut lines = stdin_lines();
            while let Some(line) = lines.recv().await {
                cpg.mcast(&group, guarantee, line?).await?;
                sent += 1;
            }
        }
    }
    cpg.leave(&group).await?;
    drain.abort();
    if json {
        println!("{}", json!({"group": group.to_string(), "sent": sent}));
    } else {
        println!("sent {sent} messages to {group}");
    }
    Ok(())
}

/// Lines of standard input, read on a thread (tokio's stdin is a thread too).
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Message `i` of a generated run: its number in decimal, then `.`s up to `size` bytes (cut
/// to `size` when the number is longer).
fn generated_message(i: u64, size: usize) -> Vec<u8> {
    let mut data = i.to_string().into_bytes();
    data.resize(size, b'.');
    data
}

fn member_json(m: &MemberId) -> Value {
    json!({"nodeid": m.node_id, "pid": m.pid})
}

fn change_json(c: &Change) -> Value {
    json!({"nodeid": c.member.node_id, "pid": c.member.pid, "reason": c.reason.name()})
}

/// One `listen` line.
fn event_json(event: &CpgEvent) -> Value {
    match event {
        CpgEvent::Deliver(m) => {
            let mut v = json!({
                "event": "deliver",
                "group": m.group.to_string(),
                "nodeid": m.sender.node_id,
                "pid": m.sender.pid,
            });
            match std::str::from_utf8(&m.data) {
                Ok(text) => v["data"] = text.into(),
                Err(_) => v["data_b64"] = base64::engine::general_purpose::STANDARD.encode(&m.data).into(),
            }
            v
        }
        CpgEvent::Confchg(c) => json!({
            "event": "confchg",
            "group": c.group.to_string(),
            "members": c.members.iter().map(member_json).collect::<Vec<_>>(),
            "left": c.left.iter().map(change_json).collect::<Vec<_>>(),
            "joined": c.joined.iter().map(change_json).collect::<Vec<_>>(),
        }),
        CpgEvent::Totem(t) => json!({
            "event": "totem",
            "ring_id": format!("{}.{}", t.ring_representative, t.ring_seq),
            "members": t.members,
        }),
    }
}

/// `list --json`.
fn groups_json(groups: &[(GroupName, Vec<MemberId>)]) -> Value {
    groups
        .iter()
        .map(|(g, members)| {
            json!({"group": g.to_string(), "members": members.iter().map(member_json).collect::<Vec<_>>()})
        })
        .collect()
}

/// `list`: each group's name on a line, then one line per member, as corosync-cpgtool prints.
fn groups_table(groups: &[(GroupName, Vec<MemberId>)]) -> String {
    if groups.is_empty() {
        return "no groups\n".into();
    }
    let mut out = format!("{:<30} {:>10} {:>10}\n", "Group Name", "PID", "Node ID");
    for (group, members) in groups {
        out.push_str(&format!("{group}\n"));
        for m in members {
            out.push_str(&format!("{:<30} {:>10} {:>10}\n", "", m.pid, m.node_id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use clap::Parser;
    use cpg::{Confchg, Message, Reason, TotemConfchg};

    use super::*;

    fn g(name: &str) -> GroupName {
        GroupName::try_from(name).unwrap()
    }

    fn m(node_id: u32, pid: u32) -> MemberId {
        MemberId { node_id, pid }
    }

    fn deliver(data: &'static [u8]) -> CpgEvent {
        CpgEvent::Deliver(Message {
            group: g("chat"),
            sender: m(1, 42),
            guarantee: Guarantee::Agreed,
            data: Bytes::from_static(data),
        })
    }

    #[test]
    fn deliver_of_text_is_a_data_string_in_order() {
        assert_eq!(
            event_json(&deliver(b"hi \"there\"\n")).to_string(),
            r#"{"event":"deliver","group":"chat","nodeid":1,"pid":42,"data":"hi \"there\"\n"}"#
        );
    }

    #[test]
    fn deliver_of_binary_is_base64() {
        assert_eq!(
            event_json(&deliver(&[0xff, 0x00, 0x01])).to_string(),
            r#"{"event":"deliver","group":"chat","nodeid":1,"pid":42,"data_b64":"/wAB"}"#
        );
    }

    #[test]
    fn confchg_lists_members_and_reasons() {
        let e = CpgEvent::Confchg(Confchg {
            group: g("chat"),
            members: vec![m(1, 42), m(2, 7)],
            left: vec![Change { member: m(3, 9), reason: Reason::NodeDown }],
            joined: vec![Change { member: m(2, 7), reason: Reason::Join }],
        });
        assert_eq!(
            event_json(&e).to_string(),
            concat!(
                r#"{"event":"confchg","group":"chat","members":[{"nodeid":1,"pid":42},{"nodeid":2,"pid":7}],"#,
                r#""left":[{"nodeid":3,"pid":9,"reason":"nodedown"}],"joined":[{"nodeid":2,"pid":7,"reason":"join"}]}"#
            )
        );
    }

    #[test]
    fn totem_shows_ring_id_as_rep_dot_seq() {
        let e = CpgEvent::Totem(TotemConfchg { ring_representative: 1, ring_seq: 12, members: vec![1, 2] });
        assert_eq!(event_json(&e).to_string(), r#"{"event":"totem","ring_id":"1.12","members":[1,2]}"#);
    }

    #[test]
    fn group_list_as_json_and_table() {
        let groups = vec![(g("a"), vec![m(1, 5)]), (g("b"), vec![m(1, 6), m(2, 70)])];
        assert_eq!(
            groups_json(&groups).to_string(),
            r#"[{"group":"a","members":[{"nodeid":1,"pid":5}]},{"group":"b","members":[{"nodeid":1,"pid":6},{"nodeid":2,"pid":70}]}]"#
        );
        let table = groups_table(&groups);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["Group", "Name", "PID", "Node", "ID"]);
        assert_eq!(lines[1], "a");
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["5", "1"]);
        assert_eq!(lines[5].split_whitespace().collect::<Vec<_>>(), ["70", "2"]);
        assert_eq!(groups_table(&[]), "no groups\n");
    }

    #[test]
    fn generated_messages_have_their_number_and_size() {
        assert_eq!(generated_message(12, 5), b"12...");
        assert_eq!(generated_message(12345, 3), b"123");
        assert_eq!(generated_message(0, 0), b"");
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cpg: CpgCommand,
    }

    fn parse(args: &[&str]) -> std::result::Result<CpgCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("cpg").chain(args.iter().copied())).map(|c| c.cpg)
    }

    #[test]
    fn send_parses_count_and_size_together_only() {
        let c = parse(&["send", "g", "--safe", "--count", "3", "--size", "10", "--socket", "/s"]).unwrap();
        let CpgCommand::Send { group, safe, count, size, socket, .. } = c else { panic!() };
        assert_eq!((group.as_str(), safe, count, size), ("g", true, Some(3), Some(10)));
        assert_eq!(socket.socket.as_deref(), Some(Path::new("/s")));
        assert!(parse(&["send", "g", "--count", "3"]).is_err());
    }

    #[test]
    fn list_and_listen_take_a_socket() {
        let CpgCommand::List { json, socket } = parse(&["list", "--json", "--socket", "/s"]).unwrap() else {
            panic!()
        };
        assert!(json);
        assert_eq!(socket.path(), Path::new("/s"));
        assert!(matches!(parse(&["listen", "g"]).unwrap(), CpgCommand::Listen { .. }));
        assert!(parse(&["listen"]).is_err());
    }

    #[test]
    fn daemon_down_is_reported_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totemd.sock");
        let err = block_on(list(path.clone(), false)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to totemd at {}: No such file or directory (is totemd running?)",
                path.display()
            )
        );
    }
}
