//! The physical limit: a plain UDP sender in node 1's namespace and a receiver in node 2's,
//! over the same veth (`benches compare-udp send|recv`, each a process of its own since a
//! socket belongs to the namespace of the process that opens it).

use std::net::UdpSocket;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use workload::wall_ns;

use super::net::{address, Net};
use super::proc::Proc;

/// The receiver's port.
const PORT: u16 = 7405;

/// Arguments of `benches compare-udp`.
#[derive(clap::Args)]
pub struct UdpArgs {
    /// `send` or `recv`.
    role: String,
    /// Address to send to or bind.
    #[arg(long)]
    addr: String,
    /// Datagram payload bytes (sender).
    #[arg(long, default_value_t = 1472)]
    size: usize,
    /// How long to run, seconds.
    #[arg(long)]
    seconds: f64,
}

/// What the receiver counted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct UdpCount {
    /// Datagrams received.
    pub datagrams: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Seconds from the first datagram to the last.
    pub seconds: f64,
}

/// `benches compare-udp send|recv`.
pub fn run(args: &UdpArgs) -> Result<()> {
    let end = wall_ns() + (args.seconds * 1e9) as u64;
    match args.role.as_str() {
        "send" => {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.connect(&args.addr).with_context(|| format!("connect {}", args.addr))?;
            let buf = vec![0xa5u8; args.size];
            while wall_ns() < end {
                for _ in 0..64 {
                    let _ = socket.send(&buf); // ENOBUFS and the like: the limit, not an error
                }
            }
        }
        "recv" => {
            let socket = UdpSocket::bind(&args.addr).with_context(|| format!("bind {}", args.addr))?;
            socket.set_read_timeout(Some(Duration::from_millis(100)))?;
            let mut buf = vec![0u8; 65536];
            let (mut count, mut first, mut last) = (UdpCount::default(), 0, 0);
            while wall_ns() < end {
                if let Ok(n) = socket.recv(&mut buf) {
                    last = wall_ns();
                    if first == 0 {
                        first = last;
                    }
                    count.datagrams += 1;
                    count.bytes += n as u64;
                }
            }
            count.seconds = last.saturating_sub(first) as f64 / 1e9;
            println!("{}", serde_json::to_string(&count)?);
        }
        other => bail!("compare-udp {other}: send or recv"),
    }
    Ok(())
}

/// Runs a receiver on node 2 and a sender on node 1 for `seconds`; what arrived.
pub fn measure(benches: &str, net: &Net, size: usize, seconds: f64) -> Result<UdpCount> {
    let addr = format!("{}:{PORT}", address(2));
    let side = |node: u32, role: &str| -> Vec<String> {
        let mut argv: Vec<String> =
            ["ip", "netns", "exec", net.ns(node), benches, "compare-udp", role].map(String::from).to_vec();
        argv.extend(["--addr".into(), addr.clone(), "--size".into(), size.to_string()]);
        argv
    };
    let mut recv_argv = side(2, "recv");
    recv_argv.extend(["--seconds".into(), (seconds + 1.0).to_string()]);
    let mut receiver = Proc::spawn("udp receiver", &recv_argv, true)?;
    std::thread::sleep(Duration::from_millis(300));
    let mut send_argv = side(1, "send");
    send_argv.extend(["--seconds".into(), seconds.to_string()]);
    let mut sender = Proc::spawn("udp sender", &send_argv, false)?;
    let line = receiver.line(Duration::from_secs_f64(seconds + 10.0));
    sender.kill();
    Ok(serde_json::from_str(&line?)?)
}
