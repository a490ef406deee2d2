//! Fencing in the simulator: every fence device is a power switch the simulator controls.
//!
//! A node's fencer asks for an agent run ([`quorum::fencing::RunAgent`]); the simulator plays
//! the agent and the switch: after the device's `delay` (which real agents honour too, so one
//! side of a two-node split wins) and a drawn switch latency, the switch powers the node named
//! by `port=` (or `plug=`) off, off then on again later (`action=reboot`, the default), or on
//! (`action=on`), and the agent reports success to the node that ran it. A run dies with the
//! node running it. A fault rule ([`crate::Fault::Switch`]) makes a device fail at once or
//! hang (no answer: the fencer's `agent_timeout` counts it failed), so retries and the next
//! method get exercised.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use quorum::fencing::{Device, DeviceRef, FenceConfig, Method, NodeFencing};
use totem::NodeId;

/// The agent name of the simulated power switches.
pub const SWITCH_AGENT: &str = "fence_sim_switch";

/// What an agent run asks of a switch (`action=`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PowerAction {
    /// Power the port off.
    Off,
    /// Off, then on again after the boot time.
    Reboot,
    /// Power the port on.
    On,
    /// Report the port's state (success either way).
    Status,
}

/// One agent invocation, as read from the stdin the fencer built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchRequest {
    /// `action=` (fence agents default to `reboot`).
    pub action: PowerAction,
    /// `port=` or `plug=`: the node on the switch port. `None`: missing or not a node id.
    pub port: Option<NodeId>,
}

impl SwitchRequest {
    /// Reads `key=value` lines as a fence agent does; unknown keys are ignored. An unknown
    /// action is `None`, as an agent fails on it.
    pub fn parse(stdin: &str) -> Option<SwitchRequest> {
        let mut action = PowerAction::Reboot;
        let mut port = None;
        for line in stdin.lines() {
            let Some((key, value)) = line.split_once('=') else { continue };
            match key.trim() {
                "action" | "option" => {
                    action = match value.trim() {
                        "off" => PowerAction::Off,
                        "reboot" => PowerAction::Reboot,
                        "on" => PowerAction::On,
                        "status" | "monitor" => PowerAction::Status,
                        _ => return None,
                    }
                }
                "port" | "plug" => port = value.trim().parse::<u32>().ok().filter(|&n| n != 0).map(NodeId),
                _ => {}
            }
        }
        Some(SwitchRequest { action, port })
    }
}

/// How a faulty switch answers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SwitchMode {
    /// The agent exits non-zero at once and nothing is switched.
    Fail,
    /// The agent never answers and nothing is switched.
    Hang,
}

impl fmt::Display for SwitchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SwitchMode::Fail => "fails",
            SwitchMode::Hang => "hangs",
        })
    }
}

/// Fencing on every node of a simulated cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFencing {
    /// The fencing section every node runs.
    pub config: FenceConfig,
    /// A switch acts and answers after a latency drawn uniformly in this range.
    pub latency: (Duration, Duration),
    /// How long a node rebooted by a switch stays down before it starts again.
    pub boot_time: Duration,
}

impl SimFencing {
    /// The names of the two switches [`SimFencing::power_switches`] defines.
    pub const SWITCHES: [&'static str; 2] = ["switch1", "switch2"];

    /// Two power switches, each with every node on the port of its id: every node is fenced
    /// by method `primary` (switch1), then `secondary` (switch2). `delayed` nodes get
    /// `delay=` seconds on their references, so a node fencing them waits and they win a
    /// two-node race (as cluster.conf's `delay` on one node's device). `action` overrides
    /// the agents' default `reboot`. Short delays keep runs short; `agent_timeout` stays above
    /// the time Totem takes to notice a lost node (token, consensus and a join round, at the
    /// simulator's longest token), as the fencer expects the loss of a node it fenced only
    /// within `agent_timeout` of the fence and fences it again after.
    pub fn power_switches(ids: &[NodeId], delayed: &[(NodeId, u32)], action: Option<&str>) -> SimFencing {
        let devices = Self::SWITCHES
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let attrs = vec![("ipaddr".to_string(), format!("192.0.2.{}", k + 1))];
                (name.to_string(), Device { agent: SWITCH_AGENT.to_string(), attrs })
            })
            .collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let reference = |device: &str| {
                    let mut attrs = vec![("port".to_string(), id.0.to_string())];
                    if let Some((_, secs)) = delayed.iter().find(|(n, _)| *n == id) {
                        attrs.push(("delay".to_string(), secs.to_string()));
                    }
                    if let Some(a) = action {
                        attrs.push(("action".to_string(), a.to_string()));
                    }
                    DeviceRef { device: device.to_string(), attrs }
                };
                let methods = ["primary", "secondary"]
                    .iter()
                    .zip(Self::SWITCHES)
                    .map(|(name, device)| Method { name: name.to_string(), devices: vec![reference(device)] })
                    .collect();
                (id, NodeFencing { name: format!("node{id}"), methods })
            })
            .collect::<BTreeMap<_, _>>();
        SimFencing {
            config: FenceConfig {
                devices,
                nodes,
                post_join_delay: Duration::from_secs(3),
                agent_timeout: Duration::from_secs(10),
                retry_delay: Duration::from_secs(1),
                ..FenceConfig::default()
            },
            latency: (Duration::from_millis(20), Duration::from_millis(300)),
            boot_time: Duration::from_secs(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_stdin_is_read_as_fence_agents_do() {
        let r = SwitchRequest::parse("ipaddr=192.0.2.1\nport=3\ndelay=5\nnodename=node3\naction=off\n");
        assert_eq!(r, Some(SwitchRequest { action: PowerAction::Off, port: Some(NodeId(3)) }));
        let r = SwitchRequest::parse("plug=2\n");
        assert_eq!(r, Some(SwitchRequest { action: PowerAction::Reboot, port: Some(NodeId(2)) }));
        assert_eq!(
            SwitchRequest::parse("port=x\naction=on").map(|r| (r.action, r.port)),
            Some((PowerAction::On, None))
        );
        assert_eq!(SwitchRequest::parse("action=explode\nport=1"), None);
    }

    #[test]
    fn power_switches_validate_and_delay_one_node() {
        let ids = [NodeId(1), NodeId(2)];
        let f = SimFencing::power_switches(&ids, &[(NodeId(1), 5)], None);
        assert!(quorum::fencing::Fencer::new(f.config.clone()).is_ok());
        let refs = &f.config.nodes[&NodeId(1)].methods[0].devices[0].attrs;
        assert!(refs.contains(&("delay".to_string(), "5".to_string())));
        let refs = &f.config.nodes[&NodeId(2)].methods[1].devices[0].attrs;
        assert_eq!(refs, &vec![("port".to_string(), "2".to_string())]);
    }
}
