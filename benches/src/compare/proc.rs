//! Child processes of `benches compare`: daemons (output collected for error messages) and
//! drivers (the [`workload`] protocol over their stdin and stdout). Each is killed when
//! dropped, and on Ctrl-C by [`super::net::install_signal_cleanup`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use workload::Reply;

use super::net::{kill9, track_pid, untrack_pid};

/// Output lines kept per process (the newest).
const LOG_LINES_MAX: usize = 400;

/// A running child; killed (SIGKILL) when dropped.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
    stdin: Option<ChildStdin>,
    replies: Option<Receiver<String>>,
}

impl Proc {
    /// Starts `argv`; its output goes to the log, or with `protocol` its stdout lines are
    /// protocol replies.
    pub fn spawn(name: &str, argv: &[String], protocol: bool) -> Result<Proc> {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if protocol { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", argv[0]))?;
        track_pid(child.id());
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        collect(child.stderr.take().expect("piped stderr"), log.clone(), None);
        let replies = if protocol {
            let (tx, rx) = mpsc::channel();
            collect(stdout, log.clone(), Some(tx));
            Some(rx)
        } else {
            collect(stdout, log.clone(), None);
            None
        };
        Ok(Proc { name: name.into(), stdin: child.stdin.take(), child, log, replies })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its last output lines.
    pub fn log(&self) -> String {
        let log = self.log.lock().expect("log lock");
        let lines: Vec<&str> = log.iter().map(String::as_str).collect();
        lines.join("\n")
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends one protocol line.
    pub fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("no protocol stdin")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("{} is gone", self.name))
    }

    /// The next JSON line on its stdout within `timeout`.
    pub fn line(&mut self, timeout: Duration) -> Result<String> {
        let rx = self.replies.as_ref().context("no protocol stdout")?;
        match rx.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => {
                bail!("{}: no answer within {timeout:?}:\n{}", self.name, self.log())
            }
            Err(RecvTimeoutError::Disconnected) => bail!("{} exited:\n{}", self.name, self.log()),
        }
    }

    /// The next protocol reply within `timeout`.
    pub fn reply(&mut self, timeout: Duration) -> Result<Reply> {
        loop {
            let line = self.line(timeout)?;
            // Any other JSON on stdout (a library's chatter) is skipped.
            if let Ok(reply) = serde_json::from_str::<Reply>(&line) {
                if let Reply::Error { message } = &reply {
                    bail!("{}: {message}", self.name);
                }
                return Ok(reply);
            }
        }
    }

    /// SIGKILL now, and reap it.
    pub fn kill(&mut self) {
        kill9(self.child.id());
        let _ = self.child.wait();
        untrack_pid(self.child.id());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn collect(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<VecDeque<String>>>,
    tx: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &tx {
                if line.starts_with('{') {
                    let _ = tx.send(line);
                    continue;
                }
            }
            let mut log = log.lock().expect("log lock");
            if log.len() == LOG_LINES_MAX {
                log.pop_front();
            }
            log.push_back(line);
        }
    });
}
