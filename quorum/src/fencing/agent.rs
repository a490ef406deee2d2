//! What the daemon runs: one fence agent invocation, and the stdin it is given.

use std::fmt;
use std::time::Duration;

use totem::NodeId;

use super::config::{merge_attrs, parse_delay, DeviceRef, FenceConfig};

/// Identifies one agent run; the daemon reports its result with the same id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op{}", self.0)
    }
}

/// Run one fence agent, then report with [`super::Fencer::handle_agent_result`].
///
/// The daemon waits `delay`, spawns `agent` with `stdin` written to its standard input (then
/// closed), kills it if it still runs after `timeout`, and reports success when it exits 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAgent {
    /// The id to report the result with.
    pub op: OpId,
    /// The node being fenced.
    pub node: NodeId,
    /// The method this run belongs to (for logs).
    pub method: String,
    /// The device's name (for logs).
    pub device: String,
    /// The agent program.
    pub agent: String,
    /// `key=value` lines as fence agents read them: the device's attributes, the node
    /// reference's added or overriding them, `nodename=` (unless given) and `action=reboot`
    /// when no `action` is configured (the agents' own default).
    pub stdin: String,
    /// Kill the agent after this long and count it as failed.
    pub timeout: Duration,
    /// The device's `delay` attribute: wait this long before spawning the agent. In a
    /// two-node cluster both halves of a split are quorate and shoot each other; giving one
    /// node's device a delay lets the other win. `delay=` also stays in `stdin`, since
    /// fence-agents accept it and some installations rely on the agent honouring it; such an
    /// agent waits a second time, which only slows the loser further.
    pub delay: Duration,
}

/// Builds the run of `device_index` of `method_index` for `node`. The configuration is
/// validated, so every index and name resolves.
pub(crate) fn run_agent(
    config: &FenceConfig,
    op: OpId,
    node: NodeId,
    method_index: usize,
    device_index: usize,
) -> RunAgent {
    let method = &config.nodes[&node].methods[method_index];
    run_device(config, op, node, &method.name, &method.devices[device_index], "reboot")
}

/// Builds the run of one device reference against `node`, with `action=default_action` unless
/// the attributes name an action. The configuration is validated, so the device resolves.
pub(crate) fn run_device(
    config: &FenceConfig,
    op: OpId,
    node: NodeId,
    method: &str,
    dref: &DeviceRef,
    default_action: &str,
) -> RunAgent {
    let device = &config.devices[&dref.device];
    let attrs = merge_attrs(&device.attrs, &dref.attrs);
    let delay = parse_delay(&attrs).unwrap_or(Duration::ZERO);
    let nodename = config.nodes.get(&node).map_or_else(|| node.to_string(), |n| n.name.clone());
    RunAgent {
        op,
        node,
        method: method.to_owned(),
        device: dref.device.clone(),
        agent: device.agent.clone(),
        stdin: agent_stdin(&attrs, &nodename, default_action),
        timeout: config.agent_timeout,
        delay,
    }
}

fn agent_stdin(attrs: &[(String, String)], nodename: &str, default_action: &str) -> String {
    let mut out = String::new();
    for (key, value) in attrs {
        out.push_str(&format!("{key}={value}\n"));
    }
    let has = |key: &str| attrs.iter().any(|(k, _)| k == key);
    if !has("nodename") {
        out.push_str(&format!("nodename={nodename}\n"));
    }
    if !has("action") {
        out.push_str(&format!("action={default_action}\n"));
    }
    out
}
