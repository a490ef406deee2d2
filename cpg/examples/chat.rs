//! A group chat: joins the group named on the command line, sends each line read from stdin
//! and prints every delivery and configuration change.
//!
//! ```sh
//! cargo run -p cpg --features client --example chat -- lobby [--socket PATH]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use cpg::client::Cpg;
use cpg::{CpgEvent, GroupName, Guarantee};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (group, socket) = parse_args()?;
    let cpg = Cpg::connect(cpg::client::socket_path(socket.as_deref())).await?;
    cpg.join(&group).await?;
    eprintln!("joined {group} on node {}; type lines to send, Ctrl-D to leave", cpg.local_node_id().await?);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => cpg.mcast(&group, Guarantee::Agreed, line).await?,
                None => break,
            },
            event = cpg.next_event() => match event {
                Some(event) => print_event(&event),
                None => return Err("totemd closed the connection".into()),
            },
        }
    }
    cpg.leave(&group).await?;
    Ok(())
}

fn print_event(event: &CpgEvent) {
    match event {
        CpgEvent::Deliver(m) => println!("<{}> {}", m.sender, String::from_utf8_lossy(&m.data)),
        CpgEvent::Confchg(c) => {
            for change in c.joined.iter().chain(&c.left) {
                println!("* {} {} ({})", change.member, change.reason, c.group);
            }
            let members: Vec<String> = c.members.iter().map(|m| m.to_string()).collect();
            println!("* {} members: {}", c.group, members.join(" "));
        }
        CpgEvent::Totem(t) => {
            println!("* ring {}.{} with nodes {:?}", t.ring_representative, t.ring_seq, t.members)
        }
    }
}

fn parse_args() -> Result<(GroupName, Option<PathBuf>), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut group, mut socket) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--socket" => socket = Some(PathBuf::from(args.next().ok_or("--socket needs a PATH")?)),
            _ if group.is_none() => group = Some(GroupName::try_from(arg.as_str())?),
            _ => return Err(format!("unexpected argument {arg}").into()),
        }
    }
    let group = group.ok_or("usage: chat GROUP [--socket PATH]")?;
    Ok((group, socket))
}
