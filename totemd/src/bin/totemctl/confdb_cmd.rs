//! `totemctl confdb ...`: the daemon's key-value store, as corosync-cmapctl shows it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use clap::Subcommand;
use ipc::{
    ConfdbChange, ConfdbDelete, ConfdbEntry, ConfdbGet, ConfdbIter, ConfdbNotify, ConfdbSet, ConfdbTrack,
    ConfdbValue, Connection, EventKind, RequestBody, ResponseResult,
};
use serde_json::{json, Value};

use crate::cpg_cmd::SocketArg;

#[derive(Debug, Subcommand)]
pub enum ConfdbCommand {
    /// Print one key as `KEY (TYPE) = VALUE` (corosync-cmapctl -g KEY).
    Get {
        /// The key.
        key: String,
        /// Print one JSON object: {"key":..,"type":..,"value":..}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Set a key, creating it if needed (corosync-cmapctl -s KEY TYPE VALUE). Root and the
    /// groups of `uidgid { gid: }` may write; `runtime.` keys are read-only.
    Set {
        /// The key.
        key: String,
        /// i8, u8, i16, u16, i32, u32, i64, u64, flt, dbl, str or bin.
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// The value (bin: printable bytes as is, `\\` and `\xHH`).
        value: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Delete a key (corosync-cmapctl -d KEY).
    Delete {
        /// The key.
        key: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Print every key starting with PREFIX (all keys without one) as `KEY (TYPE) = VALUE`
    /// lines in key order (`corosync-cmapctl [PREFIX]`).
    Dump {
        /// Only keys starting with this.
        prefix: Option<String>,
        /// Print one JSON document: [{"key":..,"type":..,"value":..}, ...].
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Print each change of the keys starting with PREFIX as one JSON object per line until
    /// SIGINT, SIGTERM or the daemon closing (corosync-cmapctl -t PREFIX):
    /// {"key":..,"kind":"added|changed|deleted","old":..,"new":..}; {"kind":"overflow"} when
    /// changes were dropped.
    Track {
        /// The prefix (with --exact: the key).
        prefix: String,
        /// Track this one key only.
        #[arg(long)]
        exact: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
}

type Result<T> = std::result::Result<T, String>;

/// Runs one confdb subcommand; errors are one line on stderr and exit status 1.
pub fn run(command: ConfdbCommand) -> ExitCode {
    let (name, socket) = match &command {
        ConfdbCommand::Get { socket, .. } => ("get", socket),
        ConfdbCommand::Set { socket, .. } => ("set", socket),
        ConfdbCommand::Delete { socket, .. } => ("delete", socket),
        ConfdbCommand::Dump { socket, .. } => ("dump", socket),
        ConfdbCommand::Track { socket, .. } => ("track", socket),
    };
    let path = socket.path();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(execute(&path, command)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totemctl: confdb {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(path: &Path, command: ConfdbCommand) -> Result<()> {
    let (conn, _) = Connection::connect(path, "totemctl").await.map_err(|e| e.to_string())?;
    let request = |body| async { conn.request(body).await.map_err(|e| e.to_string()) };
    match command {
        ConfdbCommand::Get { key, json, .. } => {
            match request(RequestBody::ConfdbGet(ConfdbGet { key: key.clone() })).await? {
                ResponseResult::ConfdbValue(reply) => {
                    let entry = ConfdbEntry { key, value: reply.value };
                    if json {
                        println!("{}", entry_json(&entry));
                    } else {
                        println!("{}", entry_line(&entry));
                    }
                    Ok(())
                }
                other => unexpected(other),
            }
        }
        ConfdbCommand::Set { key, type_name, value, .. } => {
            let body = RequestBody::ConfdbSet(ConfdbSet { key, type_name, text: value });
            expect_ok(request(body).await?)
        }
        ConfdbCommand::Delete { key, .. } => {
            expect_ok(request(RequestBody::ConfdbDelete(ConfdbDelete { key })).await?)
        }
        ConfdbCommand::Dump { prefix, json, .. } => {
            let body = RequestBody::ConfdbIter(ConfdbIter { prefix: prefix.unwrap_or_default() });
            match request(body).await? {
                ResponseResult::ConfdbEntries(e) if json => {
                    println!("{}", Value::Array(e.entries.iter().map(entry_json).collect()));
                    Ok(())
                }
                ResponseResult::ConfdbEntries(e) => {
                    let mut out = std::io::stdout().lock();
                    for entry in &e.entries {
                        if writeln!(out, "{}", entry_line(entry)).is_err() {
                            break; // A closed pipe (`| head`).
                        }
                    }
                    Ok(())
                }
                other => unexpected(other),
            }
        }
        ConfdbCommand::Track { prefix, exact, .. } => {
            let body = RequestBody::ConfdbTrack(ConfdbTrack { key_or_prefix: prefix, prefix: !exact });
            match request(body).await? {
                ResponseResult::ConfdbTracking(_) => track(&conn).await,
                other => unexpected(other),
            }
        }
    }
}

async fn track(conn: &Connection) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    loop {
        tokio::select! {
            _ = sigterm.recv() => return Ok(()),
            _ = sigint.recv() => return Ok(()),
            event = conn.next_event() => match event.and_then(|e| e.kind) {
                Some(EventKind::ConfdbNotify(n)) => {
                    if writeln!(out, "{}", notify_json(&n)).and_then(|()| out.flush()).is_err() {
                        return Ok(());
                    }
                }
                Some(_) => {}
                None => return Err("totemd closed the connection".into()),
            },
        }
    }
}

fn expect_ok(result: ResponseResult) -> Result<()> {
    match result {
        ResponseResult::Ok(_) => Ok(()),
        other => unexpected(other),
    }
}

fn unexpected(result: ResponseResult) -> Result<()> {
    Err(format!("unexpected answer from totemd: {result:?}"))
}

/// `KEY (TYPE) = VALUE`, as corosync-cmapctl prints a key.
fn entry_line(entry: &ConfdbEntry) -> String {
    match &entry.value {
        Some(v) => format!("{} ({}) = {}", entry.key, v.type_name, v.text),
        None => format!("{} (?) = ?", entry.key),
    }
}

fn entry_json(entry: &ConfdbEntry) -> Value {
    let mut object = json!({"key": entry.key});
    if let (Some(v), Value::Object(map)) = (&entry.value, &mut object) {
        if let Value::Object(fields) = value_json(v) {
            map.extend(fields);
        }
    }
    object
}

/// {"type":..,"value":..}: integers as numbers, other types as their text; binary values add
/// "value_b64" with the raw bytes.
fn value_json(v: &ConfdbValue) -> Value {
    let value = match v.type_name.as_str() {
        "i8" | "i16" | "i32" | "i64" => v.text.parse::<i64>().map_or_else(|_| json!(v.text), |n| json!(n)),
        "u8" | "u16" | "u32" | "u64" => v.text.parse::<u64>().map_or_else(|_| json!(v.text), |n| json!(n)),
        _ => json!(v.text),
    };
    let mut object = json!({"type": v.type_name, "value": value});
    if v.type_name == "bin" {
        object["value_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(&v.raw));
    }
    object
}

fn notify_json(n: &ConfdbNotify) -> Value {
    let kind = ConfdbChange::try_from(n.kind).map_or("unknown", ConfdbChange::name);
    if kind == "overflow" {
        return json!({"kind": kind});
    }
    json!({
        "key": n.key,
        "kind": kind,
        "old": n.old.as_ref().map_or(Value::Null, value_json),
        "new": n.new.as_ref().map_or(Value::Null, value_json),
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn value(type_name: &str, text: &str, raw: &[u8]) -> Option<ConfdbValue> {
        Some(ConfdbValue { type_name: type_name.into(), text: text.into(), raw: Bytes::copy_from_slice(raw) })
    }

    #[test]
    fn lines_are_cmapctls_and_json_numbers_are_numbers() {
        let entry = ConfdbEntry { key: "totem.token".into(), value: value("u32", "3000", b"") };
        assert_eq!(entry_line(&entry), "totem.token (u32) = 3000");
        assert_eq!(entry_json(&entry).to_string(), r#"{"key":"totem.token","type":"u32","value":3000}"#);
        let bin = ConfdbEntry { key: "a.b.c".into(), value: value("bin", "a\\x00", b"a\0") };
        assert_eq!(
            entry_json(&bin).to_string(),
            r#"{"key":"a.b.c","type":"bin","value":"a\\x00","value_b64":"YQA="}"#
        );
    }

    #[test]
    fn notifications_print_kind_old_and_new() {
        let n = ConfdbNotify {
            track_id: 1,
            key: "totem.token".into(),
            kind: ConfdbChange::Changed as i32,
            old: value("u32", "3000", b""),
            new: value("u32", "5000", b""),
        };
        assert_eq!(
            notify_json(&n).to_string(),
            r#"{"key":"totem.token","kind":"changed","old":{"type":"u32","value":3000},"new":{"type":"u32","value":5000}}"#
        );
    }
}
