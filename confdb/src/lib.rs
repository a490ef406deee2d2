//! The configuration and runtime database (like corosync's cmap).
//!
//! Today it owns the configuration parsers, both sans-IO (text in, typed data out; no file,
//! socket or clock):
//! - [`conf`]: corosync.conf. [`conf::parse`] turns the text into a flat list of entries named
//!   like corosync's cmap keys (`totem.token`, `totem.interface.0.mcastport`,
//!   `nodelist.node.1.ring0_addr`), each with the line it came from, plus warnings for keys
//!   corosync does not know. It checks syntax only; what the values mean is the daemon's
//!   business (`totemd::config`). [`conf::Block`] writes corosync.conf text back.
//! - [`cluster_conf`]: the XML `cluster.conf` of a cman cluster, converted to the equivalent
//!   corosync.conf, including its fencing set-up in a `fencing { }` section (see that module
//!   for the format).
//!
//! And the store these entries feed, sans-IO too:
//! - [`store`]: the typed key-value store (corosync's cmap): dotted keys, typed values, prefix
//!   iteration, tracking with ordered bounded notifications, access control, cheap counters,
//!   load and reload of a parsed corosync.conf.
//!
//! And, with the feature `client`, the API applications link: [`client::Confdb`] talks to
//! the daemon's store through its local socket (get, set, delete, iterate, track).
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
pub mod cluster_conf;
pub mod conf;
pub mod store;
