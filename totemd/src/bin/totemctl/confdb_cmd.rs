//! `totemctl confdb ...`: the daemon's key-value store, as corosync-cmapctl shows it, through
//! the confdb client library ([`confdb::client`]).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use clap::Subcommand;
use confdb::client::{Change, ChangeKind, Confdb};
use confdb::store::Value;
use serde_json::{json, Value as Json};

use crate::cpg_cmd::SocketArg;

#[derive(Debug, Subcommand)]
pub enum ConfdbCommand {
    /// Print one key as `KEY (TYPE) = VALUE` (corosync-cmapctl -g KEY).
    ///
    /// Example: totemctl confdb get totem.token
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
    ///
    /// Example: totemctl confdb set app.mode str active
    Set {
        /// The key.
        key: String,
        /// i8, u8, i16, u16, i32, u32, i64, u64, flt, dbl, str or bin.
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// The value (bin: printable bytes as is, `\\` and `\xHH`).
        value: String,
        /// Print {"ok":true} when done.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Delete a key (corosync-cmapctl -d KEY).
    Delete {
        /// The key.
        key: String,
        /// Print {"ok":true} when done.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Print every key starting with PREFIX (all keys without one) as `KEY (TYPE) = VALUE`
    /// lines in key order (`corosync-cmapctl [-b] [PREFIX]`).
    ///
    /// Examples: totemctl confdb dump runtime.   totemctl confdb dump nodelist. --json
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
    ///
    /// Example: totemctl confdb track runtime.members.
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
    let db = Confdb::connect_named(path, "totemctl").await.map_err(|e| e.to_string())?;
    let text = |e: ipc::IpcError| e.to_string();
    match command {
        ConfdbCommand::Get { key, json, .. } => {
            let value = db.get(&key).await.map_err(text)?;
            if json {
                println!("{}", entry_json(&key, &value));
            } else {
                println!("{}", entry_line(&key, &value));
            }
        }
        ConfdbCommand::Set { key, type_name, value, json, .. } => {
            db.set_text(&key, &type_name, &value).await.map_err(text)?;
            print_ok(json);
        }
        ConfdbCommand::Delete { key, json, .. } => {
            db.delete(&key).await.map_err(text)?;
            print_ok(json);
        }
        ConfdbCommand::Dump { prefix, json, .. } => {
            let entries = db.iter_prefix(&prefix.unwrap_or_default()).await.map_err(text)?;
            if json {
                println!("{}", Json::Array(entries.iter().map(|(k, v)| entry_json(k, v)).collect()));
            } else {
                let mut out = std::io::stdout().lock();
                for (key, value) in &entries {
                    if writeln!(out, "{}", entry_line(key, value)).is_err() {
                        break; // A closed pipe (`| head`).
                    }
                }
            }
        }
        ConfdbCommand::Track { prefix, exact, .. } => {
            db.track(&prefix, !exact).await.map_err(text)?;
            track(&db).await?;
        }
    }
    Ok(())
}

fn print_ok(json: bool) {
    if json {
        println!("{}", json!({"ok": true}));
    }
}

async fn track(db: &Confdb) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    loop {
        tokio::select! {
            _ = sigterm.recv() => return Ok(()),
            _ = sigint.recv() => return Ok(()),
            change = db.next_change() => match change {
                Some(change) => {
                    if writeln!(out, "{}", change_json(&change)).and_then(|()| out.flush()).is_err() {
                        return Ok(());
                    }
                }
                None => return Err("totemd closed the connection".into()),
            },
        }
    }
}

/// `KEY (TYPE) = VALUE`, as corosync-cmapctl prints a key.
fn entry_line(key: &str, value: &Value) -> String {
    format!("{key} ({}) = {value}", value.type_name())
}

fn entry_json(key: &str, value: &Value) -> Json {
    let mut object = json!({"key": key});
    if let (Json::Object(map), Json::Object(fields)) = (&mut object, value_json(value)) {
        map.extend(fields);
    }
    object
}

/// {"type":..,"value":..}: integers as numbers, other types as their text; binary values add
/// "value_b64" with the raw bytes.
pub fn value_json(v: &Value) -> Json {
    let text = v.to_string();
    let value = match v {
        Value::I8(_) | Value::I16(_) | Value::I32(_) | Value::I64(_) => {
            text.parse::<i64>().ok().map(|n| json!(n))
        }
        Value::U8(_) | Value::U16(_) | Value::U32(_) | Value::U64(_) => {
            text.parse::<u64>().ok().map(|n| json!(n))
        }
        _ => None,
    };
    let value = value.unwrap_or_else(|| json!(text));
    let mut object = json!({"type": v.type_name(), "value": value});
    if let Value::Binary(bytes) = v {
        object["value_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    object
}

fn change_json(c: &Change) -> Json {
    let kind = match c.kind {
        ChangeKind::Added => "added",
        ChangeKind::Changed => "changed",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Overflow => return json!({"kind": "overflow"}),
    };
    json!({
        "key": c.key,
        "kind": kind,
        "old": c.old.as_ref().map_or(Json::Null, value_json),
        "new": c.new.as_ref().map_or(Json::Null, value_json),
    })
}

#[cfg(test)]
mod tests {
    use confdb::store::TrackId;

    use super::*;

    #[test]
    fn lines_are_cmapctls_and_json_numbers_are_numbers() {
        assert_eq!(entry_line("totem.token", &Value::U32(3000)), "totem.token (u32) = 3000");
        assert_eq!(
            entry_json("totem.token", &Value::U32(3000)).to_string(),
            r#"{"key":"totem.token","type":"u32","value":3000}"#
        );
        assert_eq!(entry_json("a.b", &Value::I8(-3)).to_string(), r#"{"key":"a.b","type":"i8","value":-3}"#);
        assert_eq!(
            entry_json("a.b.c", &Value::Binary(b"a\0".to_vec())).to_string(),
            r#"{"key":"a.b.c","type":"bin","value":"a\\x00","value_b64":"YQA="}"#
        );
    }

    #[test]
    fn changes_print_kind_old_and_new() {
        let c = Change {
            track: TrackId(1),
            key: "totem.token".into(),
            kind: ChangeKind::Changed,
            old: Some(Value::U32(3000)),
            new: Some(Value::U32(5000)),
        };
        assert_eq!(
            change_json(&c).to_string(),
            r#"{"key":"totem.token","kind":"changed","old":{"type":"u32","value":3000},"new":{"type":"u32","value":5000}}"#
        );
        let overflow = Change { kind: ChangeKind::Overflow, key: String::new(), old: None, new: None, ..c };
        assert_eq!(change_json(&overflow).to_string(), r#"{"kind":"overflow"}"#);
    }
}
