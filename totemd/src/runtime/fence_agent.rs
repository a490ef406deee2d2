//! Running fence agents: the standard executables (fence_ipmilan, fence_virsh, ...) read their
//! options as `key=value` lines on stdin and exit 0 on success. The fencing state machine
//! decides what to run; this only runs it, with the device's delay first and a timeout, and
//! reports the outcome to the driver loop. The agent's output is kept (bounded) for the logs.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Bytes of an agent's output kept for the log.
const OUTPUT_MAX: usize = 4096;

/// How one agent run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOutcome {
    /// The run this answers (the fencing state machine's operation id).
    pub op: u64,
    /// Exit status 0 within the timeout.
    pub success: bool,
    /// What happened, for the log and the history: the exit status and the agent's output.
    pub detail: String,
}

/// Starts `agent` (a path, or a name looked up in `PATH` and /usr/sbin) after `delay`, writes
/// `stdin` to it and reports on `done` once it exits or `timeout` passes (it is killed then).
pub fn spawn(
    op: u64,
    agent: String,
    stdin: String,
    timeout: Duration,
    delay: Duration,
    done: mpsc::Sender<AgentOutcome>,
) {
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (success, detail) = match tokio::time::timeout(timeout, run(&agent, &stdin)).await {
            Ok(Ok((0, output))) => (true, format!("{agent}: success{}", tail(&output))),
            Ok(Ok((code, output))) => (false, format!("{agent}: exit status {code}{}", tail(&output))),
            Ok(Err(e)) => (false, format!("{agent}: cannot run: {e}")),
            Err(_) => (false, format!("{agent}: no answer within {} s, killed", timeout.as_secs())),
        };
        let _ = done.send(AgentOutcome { op, success, detail }).await;
    });
}

fn tail(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

async fn run(agent: &str, stdin: &str) -> std::io::Result<(i32, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut child = Command::new(agent)
        .env("PATH", format!("{path}:/usr/sbin:/sbin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        // An agent that exits without reading is not an error here: its status says.
        let _ = input.write_all(stdin.as_bytes()).await;
    }
    let mut output = Vec::new();
    if let Some(out) = child.stdout.take() {
        let _ = out.take(OUTPUT_MAX as u64).read_to_end(&mut output).await;
    }
    if let Some(err) = child.stderr.take() {
        let _ = err.take(OUTPUT_MAX as u64).read_to_end(&mut output).await;
    }
    let status = child.wait().await?;
    Ok((status.code().unwrap_or(-1), String::from_utf8_lossy(&output).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(agent: &str, stdin: &str, timeout: Duration) -> AgentOutcome {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(1);
            spawn(7, agent.into(), stdin.into(), timeout, Duration::ZERO, tx);
            rx.recv().await.unwrap()
        })
    }

    #[test]
    fn exit_status_zero_is_success_and_the_output_is_kept() {
        let o = outcome("cat", "action=off\nport=n2\n", Duration::from_secs(10));
        assert_eq!(o.op, 7);
        assert!(o.success, "{o:?}");
        assert!(o.detail.contains("action=off") && o.detail.contains("port=n2"), "{o:?}");
    }

    #[test]
    fn failure_missing_agent_and_timeout_are_reported() {
        assert!(!outcome("false", "", Duration::from_secs(10)).success);
        let missing = outcome("fence_does_not_exist_here", "", Duration::from_secs(10));
        assert!(!missing.success && missing.detail.contains("cannot run"), "{missing:?}");
        // An agent that hangs is killed at the timeout.
        let dir = std::env::temp_dir().join(format!("totemd-fence-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("fence_hang");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let hung = outcome(script.to_str().unwrap(), "", Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!hung.success && hung.detail.contains("killed"), "{hung:?}");
    }
}
