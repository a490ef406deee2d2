//! cman's `cluster.conf` (XML) converted to the equivalent corosync.conf.
//!
//! # What is converted
//! | cluster.conf | corosync.conf |
//! |---|---|
//! | `<cluster name config_version>` | `totem.cluster_name`, `totem.config_version` (and `version: 2`) |
//! | `<cman transport>` | `totem.transport` (`udp`, `udpu`; otherwise `knet`, corosync 3's default) |
//! | `<cman port>`, `<multicast addr>` | `totem.interface` (linknumber 0) `mcastport`, `mcastaddr` |
//! | `<totem token=.. …/>` | each attribute as a `totem` key; `<interface ringnumber=..>` as `totem.interface` |
//! | `<clusternode name nodeid votes>` | `nodelist.node`: `ring0_addr` and `name` = name, `nodeid`, `quorum_votes` = votes |
//! | `<altname name>` | `ring1_addr` |
//! | `<cman two_node expected_votes>` | `quorum`: `provider: corosync_votequorum`, `two_node`, `expected_votes` |
//! | `<logging …/>` | `logging` keys of the same names |
//! | `<fence>`, `<unfence>`, `<fencedevices>` | the `fencing` section below |
//!
//! Anything else (`<rm>`, `<fence_daemon>`, `<quorumd>`, other attributes) is not converted;
//! each is listed in [`Imported::notes`], as is any change of meaning, and as a comment at
//! the top of the output.
//!
//! # The `fencing` section
//! corosync has no fencing configuration; this section is ours, shaped after cluster.conf so
//! that nothing is lost. Repeated sections are numbered by position, as corosync numbers
//! `nodelist.node` (cmap keys in the right column):
//! ```text
//! fencing {
//!     device {                          # one per <fencedevice>, in file order
//!         name: ipmi_n1                 #   fencing.device.0.name: the name methods refer to
//!         agent: fence_ipmilan          #   fencing.device.0.agent: the agent program
//!         ipaddr: 10.0.0.101            #   fencing.device.0.ATTR: every other attribute,
//!         login: admin                  #     in file order, passed to the agent as is
//!     }
//!     node {                            # one per <clusternode> with <fence> or <unfence>
//!         name: n1                      #   fencing.node.0.name: the nodelist name
//!         nodeid: 1                     #   fencing.node.0.nodeid
//!         method {                      #   fencing.node.0.method.0: methods in the order
//!             name: ipmi                #     they are tried; the first that succeeds wins
//!             device {                  #   fencing.node.0.method.0.device.0: the method's
//!                 name: ipmi_n1         #     devices, all of which must succeed; `name` is a
//!                 action: reboot        #     fencing.device, the other attributes add to or
//!             }                         #     override that device's for this node
//!         }
//!         unfence {                     #   fencing.node.0.unfence.device.K: devices run
//!             device {                  #     when the node (re)joins (fence_scsi and alike)
//!                 name: scsi
//!                 action: on
//!             }
//!         }
//!     }
//! }
//! ```
//! Device attributes often hold credentials (`passwd`): the converted file deserves the
//! permissions of the cluster.conf it came from.

mod convert;
mod xml;

use crate::conf::{check_value, Block, Item, ValueError};
use xml::Element;

/// Why a cluster.conf could not be converted. Lines are those of the XML document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The document is not well-formed XML.
    #[error("line {line}: not well-formed XML: {message}")]
    Xml {
        /// Where the reader stopped.
        line: u32,
        /// The reader's description.
        message: String,
    },
    /// The top element is not `<cluster>`.
    #[error("line {line}: the top element is <{found}>, not <cluster>: is this a cluster.conf?")]
    NotCluster {
        /// Its line.
        line: u32,
        /// Its name.
        found: String,
    },
    /// A required attribute is missing.
    #[error("line {line}: <{element}> has no {attribute}=\"...\" attribute")]
    MissingAttribute {
        /// The element's line.
        line: u32,
        /// The element.
        element: String,
        /// The attribute.
        attribute: &'static str,
    },
    /// An attribute's value is not of the expected form.
    #[error("line {line}: <{element} {attribute}=\"{value}\">: expected {expected}")]
    BadAttribute {
        /// The element's line.
        line: u32,
        /// The element.
        element: String,
        /// The attribute.
        attribute: String,
        /// Its value.
        value: String,
        /// The expected form.
        expected: &'static str,
    },
    /// An attribute (name or value) cannot be written to corosync.conf. The value is not
    /// shown: it may be a password.
    #[error("line {line}: <{element} {attribute}=...>: the value {reason}; corosync.conf cannot hold it")]
    Unrepresentable {
        /// The element's line.
        line: u32,
        /// The element.
        element: String,
        /// The attribute.
        attribute: String,
        /// What is wrong with it.
        reason: ValueError,
    },
    /// An attribute name cannot be a corosync.conf key.
    #[error("line {line}: <{element}>: attribute name {attribute:?} cannot be a corosync.conf key")]
    BadAttributeName {
        /// The element's line.
        line: u32,
        /// The element.
        element: String,
        /// The attribute name.
        attribute: String,
    },
    /// A node's fence method names a device that `<fencedevices>` does not define.
    #[error("line {line}: node {node} uses fence device {device:?}, which <fencedevices> does not define")]
    UnknownDevice {
        /// The `<device>` element's line.
        line: u32,
        /// The node's name.
        node: String,
        /// The device name.
        device: String,
    },
    /// Two elements that must be unique share a name or id.
    #[error("line {line}: {what} {name:?} is defined twice (first at line {first})")]
    Duplicate {
        /// The second one's line.
        line: u32,
        /// The first one's line.
        first: u32,
        /// What kind of thing (`fence device`, `node id`).
        what: &'static str,
        /// The shared name.
        name: String,
    },
}

/// The converted configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// corosync.conf text.
    pub text: String,
    /// What was not converted or changed meaning, one sentence each starting with the
    /// cluster.conf line, in line order (also at the top of `text` as comments).
    pub notes: Vec<String>,
}

/// Converts a cluster.conf document to corosync.conf text.
pub fn to_corosync_conf(xml: &str) -> Result<String, Error> {
    import(xml).map(|i| i.text)
}

/// Converts a cluster.conf document; see the module doc for what maps to what.
pub fn import(xml: &str) -> Result<Imported, Error> {
    let cluster = xml::read(xml)?;
    if cluster.name != "cluster" {
        return Err(Error::NotCluster { line: cluster.line, found: cluster.name });
    }
    let mut c = Converter { notes: Vec::new() };
    let blocks = c.convert(&cluster)?;
    c.notes.sort_by_key(|(line, _)| *line);
    let notes: Vec<String> = c.notes.into_iter().map(|(_, note)| note).collect();
    let mut text = String::new();
    text.push_str("# corosync.conf converted from a cman cluster.conf by `totemctl config import`.\n");
    if !notes.is_empty() {
        text.push_str("# Notes on the conversion:\n");
    }
    for note in &notes {
        text.push_str("#   ");
        text.push_str(note);
        text.push('\n');
    }
    for block in &blocks {
        text.push('\n');
        block.render(0, &mut text);
    }
    Ok(Imported { text, notes })
}

struct Converter {
    /// (cluster.conf line, note).
    notes: Vec<(u32, String)>,
}

/// Adds `key: value` for an attribute after checking that corosync.conf can hold it.
fn put(block: &mut Block, el: &Element, attribute: &str, key: &str, value: &str) -> Result<(), Error> {
    if !valid_key(key) {
        return Err(Error::BadAttributeName {
            line: el.line,
            element: el.name.clone(),
            attribute: attribute.to_string(),
        });
    }
    check_value(value).map_err(|reason| Error::Unrepresentable {
        line: el.line,
        element: el.name.clone(),
        attribute: attribute.to_string(),
        reason,
    })?;
    block.items.push(Item::Key(key.to_string(), value.to_string()));
    Ok(())
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
}

fn required<'a>(el: &'a Element, attribute: &'static str) -> Result<&'a str, Error> {
    el.attr(attribute).ok_or_else(|| Error::MissingAttribute {
        line: el.line,
        element: el.name.clone(),
        attribute,
    })
}

#[cfg(test)]
mod tests;
