//! Simulated CPG clients: per node, a few processes that connect, join and leave groups, send
//! group messages and exit, driven by the seeded scenario like the raw load.
//!
//! A client is known to the checkers by its [`MemberId`] (node id, pid). Pids and client ids
//! come from counters in the simulated host, never reset (not even by a crash), so a
//! `MemberId` names one client for the whole run. A client joins each group at most once (a
//! leave is final for that group): then every join and every leave happens once in the whole
//! run, which lets the virtual synchrony checker tell configuration changes apart (see
//! [`crate::check::cpg::synchrony`]). Group messages carry a [`MsgId`] from the same counter
//! as the raw load, in the same payload format ([`crate::workload::make_payload`]).

use std::collections::{BTreeMap, BTreeSet};

use cpg::service::ClientId;
use cpg::{GroupName, Guarantee, MemberId};
use totem::NodeId;

use crate::rng::SimRng;
use crate::workload::LoadConfig;

/// The shape of the random CPG activity.
#[derive(Clone, Debug, PartialEq)]
pub struct CpgLoad {
    /// Client operations each node performs per simulated second (Poisson); 0 = none.
    pub ops_per_node: f64,
    /// Most clients connected at once on one node.
    pub clients_max: usize,
    /// Groups the clients use (named `g0`, `g1`, ...).
    pub groups: usize,
    /// Of the operations: the fraction that connects a client (while below the maximum).
    pub connect_fraction: f64,
    /// The fraction that disconnects a client (its process exits: `procdown`).
    pub disconnect_fraction: f64,
    /// The fraction that joins or leaves a group; the rest send group messages.
    pub membership_fraction: f64,
    /// Sizes and guarantees of group messages.
    pub messages: LoadConfig,
    /// Keep every client's event stream in memory (for tests; see [`crate::Cluster::cpg_events`]).
    pub record_events: bool,
}

impl Default for CpgLoad {
    /// No activity (tests and scenarios turn it on); the rest a reasonable mix.
    fn default() -> Self {
        CpgLoad {
            ops_per_node: 0.0,
            clients_max: 3,
            groups: 3,
            connect_fraction: 0.1,
            disconnect_fraction: 0.03,
            membership_fraction: 0.12,
            messages: LoadConfig { safe_fraction: 0.3, large_fraction: 0.05, ..LoadConfig::default() },
            record_events: false,
        }
    }
}

impl CpgLoad {
    /// The name of group `k`.
    pub fn group_name(k: usize) -> GroupName {
        GroupName::new(format!("g{k}").into_bytes()).expect("a short nonempty name")
    }
}

/// One simulated client process.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimClient {
    pub pid: u32,
    pub connected: bool,
    /// Groups (by index) it asked to join and has not asked to leave.
    pub joined: BTreeSet<usize>,
    /// Groups it asked to leave (never joined again).
    pub left: BTreeSet<usize>,
}

/// The clients of one node and the host's counters.
#[derive(Clone, Debug)]
pub(crate) struct ClientTable {
    pub clients: BTreeMap<ClientId, SimClient>,
    pub next_client: u64,
    pub next_pid: u32,
}

impl ClientTable {
    pub fn new(node: NodeId) -> Self {
        // Pids look like a real host's and differ between nodes, which eases reading traces.
        ClientTable { clients: BTreeMap::new(), next_client: 1, next_pid: 1000 * node.0 + 1 }
    }

    /// Registers a new connected client; its id and pid are never used again on this node.
    pub fn connect(&mut self) -> (ClientId, u32) {
        let (client, pid) = (ClientId(self.next_client), self.next_pid);
        self.next_client += 1;
        self.next_pid += 1;
        self.clients.insert(client, SimClient { pid, connected: true, ..SimClient::default() });
        (client, pid)
    }

    /// Connected clients, in id order.
    pub fn connected(&self) -> impl Iterator<Item = (ClientId, &SimClient)> {
        self.clients.iter().filter(|(_, c)| c.connected).map(|(&id, c)| (id, c))
    }

    /// The pid of a client (connected or not).
    pub fn pid(&self, client: ClientId) -> Option<u32> {
        self.clients.get(&client).map(|c| c.pid)
    }

    /// A crash: every client is gone (the counters survive).
    pub fn clear(&mut self) {
        self.clients.clear();
    }
}

/// One client operation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CpgAction {
    Connect,
    Disconnect(ClientId),
    Join(ClientId, usize),
    Leave(ClientId, usize),
    Mcast { client: ClientId, group: usize, padding: usize, guarantee: Guarantee },
}

/// Draws the next operation of a node whose clients are `table`.
pub(crate) fn next_action(load: &CpgLoad, table: &ClientTable, rng: &mut SimRng) -> Option<CpgAction> {
    let connected: Vec<(ClientId, &SimClient)> = table.connected().collect();
    let room = connected.len() < load.clients_max;
    if connected.is_empty() || (room && rng.chance(load.connect_fraction)) {
        return room.then_some(CpgAction::Connect);
    }
    let &(client, c) = rng.pick(&connected)?;
    if rng.chance(load.disconnect_fraction) {
        return Some(CpgAction::Disconnect(client));
    }
    let fresh: Vec<usize> =
        (0..load.groups).filter(|g| !c.joined.contains(g) && !c.left.contains(g)).collect();
    let member: Vec<usize> = c.joined.iter().copied().collect();
    if member.is_empty() || rng.chance(load.membership_fraction) {
        // Join a group it was never in, or leave one (a client with no group left to join leaves).
        let join = !fresh.is_empty() && (member.is_empty() || rng.chance(0.6));
        return if join {
            Some(CpgAction::Join(client, *rng.pick(&fresh)?))
        } else {
            Some(CpgAction::Leave(client, *rng.pick(&member)?))
        };
    }
    let group = *rng.pick(&member)?;
    let padding = load.messages.sample_padding(rng);
    let guarantee = match load.messages.sample_guarantee(rng) {
        totem::Guarantee::Agreed => Guarantee::Agreed,
        totem::Guarantee::Safe => Guarantee::Safe,
    };
    Some(CpgAction::Mcast { client, group, padding, guarantee })
}

/// The member id of a client.
pub fn member_id(node: NodeId, pid: u32) -> MemberId {
    MemberId { node_id: node.0, pid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_pids_are_never_reused_even_after_a_crash() {
        let mut t = ClientTable::new(NodeId(2));
        let (a, pa) = t.connect();
        t.clear();
        let (b, pb) = t.connect();
        assert_ne!(a, b);
        assert_ne!(pa, pb);
        assert_eq!(pa, 2001);
    }

    #[test]
    fn a_client_never_rejoins_a_group_it_left() {
        let load = CpgLoad { ops_per_node: 1.0, groups: 2, ..CpgLoad::default() };
        let mut t = ClientTable::new(NodeId(1));
        let (c, _) = t.connect();
        t.clients.get_mut(&c).unwrap().left.insert(0);
        t.clients.get_mut(&c).unwrap().joined.insert(1);
        let mut rng = SimRng::new(3);
        for _ in 0..2000 {
            match next_action(&load, &t, &mut rng) {
                Some(CpgAction::Join(_, g)) => assert_ne!(g, 0),
                Some(CpgAction::Mcast { group, .. }) => assert_eq!(group, 1),
                _ => {}
            }
        }
    }
}
