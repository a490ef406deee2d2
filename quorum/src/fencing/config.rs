//! The fencing configuration: devices, each node's methods, delays and the blocking policy.
//!
//! Shaped after cluster.conf's `<fencedevices>` and `<clusternode><fence>` (the `fencing {}`
//! section that confdb's cluster_conf converter writes).

use std::collections::BTreeMap;
use std::time::Duration;

use totem::NodeId;

/// Attribute keys that name things in the configuration and are never passed to an agent.
const RESERVED_KEYS: [&str; 2] = ["name", "agent"];

/// The whole fencing configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceConfig {
    /// Fence devices by name (`fencing.device.N.name`).
    pub devices: BTreeMap<String, Device>,
    /// How to fence each node.
    pub nodes: BTreeMap<NodeId, NodeFencing>,
    /// Devices each node runs for itself at start, with `action=on` unless the reference sets
    /// an action (cluster.conf's `<unfence>`, fence_node -U): fabric fencing (SCSI
    /// reservations, switch ports) has to let a node back in before it touches shared storage.
    pub unfence: BTreeMap<NodeId, Vec<DeviceRef>>,
    /// After the first quorate membership, how long to wait for configured nodes to join before
    /// fencing those that have not (fenced's `post_join_delay`, default 6 s).
    pub post_join_delay: Duration,
    /// How long one agent may run before it counts as failed.
    pub agent_timeout: Duration,
    /// After every method has failed, how long to wait before starting again from the first.
    pub retry_delay: Duration,
    /// Whether service is held while a fence is pending.
    pub policy: BlockPolicy,
}

impl Default for FenceConfig {
    fn default() -> Self {
        FenceConfig {
            devices: BTreeMap::new(),
            nodes: BTreeMap::new(),
            unfence: BTreeMap::new(),
            post_join_delay: Duration::from_secs(6),
            agent_timeout: Duration::from_secs(60),
            retry_delay: Duration::from_secs(5),
            policy: BlockPolicy::default(),
        }
    }
}

/// One fence device (cluster.conf's `<fencedevice>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The agent program (`fence_ipmilan`).
    pub agent: String,
    /// Every other attribute, in file order, passed to the agent on stdin.
    pub attrs: Vec<(String, String)>,
}

/// How one node is fenced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFencing {
    /// The node's name (nodelist `name`), passed to agents as `nodename=`.
    pub name: String,
    /// Methods in the order they are tried.
    pub methods: Vec<Method>,
}

/// One fence method: every device must succeed, one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// The method's name, reported in events.
    pub name: String,
    /// The devices, run in order.
    pub devices: Vec<DeviceRef>,
}

/// A method's use of a device, with per-node attributes (`port=2`, `action=off`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRef {
    /// The device's name, a key of [`FenceConfig::devices`].
    pub device: String,
    /// Attributes that add to or override the device's for this node.
    pub attrs: Vec<(String, String)>,
}

/// Whether service is held while a fence is pending.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum BlockPolicy {
    /// Hold service while any fence is pending (fenced and GFS: a blocked cluster is better than
    /// a corrupted one).
    #[default]
    BlockWhilePending,
    /// Never hold service; fencing still runs.
    Never,
}

/// Why a [`FenceConfig`] was refused. Nothing is changed by a refused configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A method names a device that [`FenceConfig::devices`] does not define.
    #[error("node {node} method {method:?} uses device {device:?}, which is not defined")]
    UnknownDevice {
        /// The node.
        node: NodeId,
        /// The method.
        method: String,
        /// The missing device's name.
        device: String,
    },
    /// A node is listed without any method: it could never be fenced.
    #[error("node {node} has no fence method")]
    NoMethods {
        /// The node.
        node: NodeId,
    },
    /// A method has no device: it would succeed without fencing anything.
    #[error("node {node} method {method:?} has no device")]
    EmptyMethod {
        /// The node.
        node: NodeId,
        /// The method.
        method: String,
    },
    /// Two methods of one node share a name, so events could not tell them apart.
    #[error("node {node} has two methods named {method:?}")]
    DuplicateMethod {
        /// The node.
        node: NodeId,
        /// The method.
        method: String,
    },
    /// Node id 0 is never valid.
    #[error("node id 0 is not valid")]
    ZeroNodeId,
    /// A device has no agent program.
    #[error("device {device:?} has no agent")]
    NoAgent {
        /// The device.
        device: String,
    },
    /// A key or value cannot be written as one `key=value` line on an agent's stdin.
    #[error("{owner}: attribute {key:?} cannot be passed to an agent (empty key, '=' in the key, or a line break)")]
    BadAttribute {
        /// The device or node it belongs to.
        owner: String,
        /// The key.
        key: String,
    },
    /// A `delay` attribute is not a number of seconds.
    #[error("{owner}: delay={value:?} is not a number of seconds")]
    BadDelay {
        /// The device or node it belongs to.
        owner: String,
        /// The value.
        value: String,
    },
    /// `agent_timeout` is zero: every agent would fail.
    #[error("agent_timeout is zero")]
    ZeroAgentTimeout,
}

impl FenceConfig {
    /// Checks references, emptiness and that every attribute can be written to an agent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.agent_timeout.is_zero() {
            return Err(ConfigError::ZeroAgentTimeout);
        }
        for (name, device) in &self.devices {
            if device.agent.trim().is_empty() {
                return Err(ConfigError::NoAgent { device: name.clone() });
            }
            check_attrs(&format!("device {name:?}"), &device.attrs)?;
        }
        for (&node, fencing) in &self.nodes {
            self.validate_node(node, fencing)?;
        }
        for (&node, devices) in &self.unfence {
            if node.0 == 0 {
                return Err(ConfigError::ZeroNodeId);
            }
            for dref in devices {
                self.validate_ref(node, "unfence", dref)?;
            }
        }
        Ok(())
    }

    fn validate_node(&self, node: NodeId, fencing: &NodeFencing) -> Result<(), ConfigError> {
        if node.0 == 0 {
            return Err(ConfigError::ZeroNodeId);
        }
        if fencing.methods.is_empty() {
            return Err(ConfigError::NoMethods { node });
        }
        for (i, method) in fencing.methods.iter().enumerate() {
            if fencing.methods[..i].iter().any(|m| m.name == method.name) {
                return Err(ConfigError::DuplicateMethod { node, method: method.name.clone() });
            }
            if method.devices.is_empty() {
                return Err(ConfigError::EmptyMethod { node, method: method.name.clone() });
            }
            for dref in &method.devices {
                self.validate_ref(node, &method.name, dref)?;
            }
        }
        Ok(())
    }

    fn validate_ref(&self, node: NodeId, method: &str, dref: &DeviceRef) -> Result<(), ConfigError> {
        let Some(device) = self.devices.get(&dref.device) else {
            return Err(ConfigError::UnknownDevice {
                node,
                method: method.to_owned(),
                device: dref.device.clone(),
            });
        };
        let owner = format!("node {node} device {:?}", dref.device);
        check_attrs(&owner, &dref.attrs)?;
        let merged = merge_attrs(&device.attrs, &dref.attrs);
        parse_delay(&merged).map_err(|value| ConfigError::BadDelay { owner, value })?;
        Ok(())
    }
}

fn check_attrs(owner: &str, attrs: &[(String, String)]) -> Result<(), ConfigError> {
    for (key, value) in attrs {
        let line_break = |s: &str| s.contains(['\n', '\r', '\0']);
        if key.is_empty() || key.contains('=') || line_break(key) || line_break(value) {
            return Err(ConfigError::BadAttribute { owner: owner.to_owned(), key: key.clone() });
        }
    }
    Ok(())
}

/// The device's attributes with the node reference's added or overriding in place; `name`
/// and `agent` dropped (they name things here, agents do not read them).
pub(crate) fn merge_attrs(device: &[(String, String)], dref: &[(String, String)]) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::with_capacity(device.len() + dref.len());
    for (key, value) in device.iter().chain(dref) {
        if RESERVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        match merged.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1.clone_from(value),
            None => merged.push((key.clone(), value.clone())),
        }
    }
    merged
}

/// The `delay` attribute in seconds (fence-agents' `delay` option), zero if absent; the bad
/// value otherwise.
pub(crate) fn parse_delay(attrs: &[(String, String)]) -> Result<Duration, String> {
    let Some((_, value)) = attrs.iter().find(|(k, _)| k == "delay") else {
        return Ok(Duration::ZERO);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| value.clone())
}
