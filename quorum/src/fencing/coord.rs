//! One member runs a victim's agents, and every member learns the result (fenced(8): the
//! domain's members agree on victims and one of them fences). Totem's total order does the
//! agreeing: in each ring, every member that has a victim it may fence multicasts a claim, and
//! the first claim delivered in that ring names the member that runs the agents. A new ring
//! starts the claims again, so a claimant that dies leaves the victim to the survivors. The
//! member that fences (or where an operator acknowledges) multicasts the result, and the
//! others complete the victim with it.
//!
//! Claims wait for a sync round, as CPG's do: on a new ring each member first multicasts a
//! `Sync`, and nobody claims until every member's has been delivered. A result multicast in
//! the previous ring but delivered only now (a victim killed by its fence breaks the ring
//! before the result goes out) comes before its sender's `Sync`, so nobody fences that victim
//! a second time.

use totem::{Instant, NodeId, RingId};

use super::wire::{Body, Claim, DecodeError, Done, FenceMessage, Request, Sync};
use super::{ConfigError, FenceConfig, FenceEvent, Fencer};

impl Fencer {
    /// A fencer for `local` that shares the work with the other members over the ring: feed it
    /// every ring with [`Fencer::new_ring`], multicast what [`Fencer::poll_message`] returns
    /// (agreed order) and hand every delivered fencing message, own ones included, to
    /// [`Fencer::handle_message`]. It runs a victim's agents only when its claim on it was the
    /// first delivered in the ring, never against itself, and unfences `local` at start.
    pub fn coordinated(local: NodeId, config: FenceConfig) -> Result<Fencer, ConfigError> {
        let mut fencer = Fencer::new(config)?;
        fencer.local = Some(local);
        Ok(fencer)
    }

    /// A new regular ring is installed (call before [`Fencer::handle_membership`] for it):
    /// claims made in earlier rings no longer count.
    pub fn new_ring(&mut self, ring: RingId) {
        if self.ring != Some(ring) && self.local.is_some() {
            self.ring = Some(ring);
            self.claims.clear();
            self.claims_sent.clear();
            self.synced.clear();
            self.in_sync = false;
            let sync = Sync { ring_seq: ring.seq, ring_rep: ring.representative.0 };
            self.messages.push_back(FenceMessage::encode_body(Body::Sync(sync)));
        }
    }

    /// A fencing message delivered in total order from `sender` (this node's own too).
    /// Malformed messages change nothing.
    pub fn handle_message(&mut self, now: Instant, sender: NodeId, bytes: &[u8]) -> Result<(), DecodeError> {
        match FenceMessage::decode_body(bytes)? {
            // A node is never its own victim: its fencing is the other members' business, and a
            // result it misses (partitioned away) would hold it forever.
            Body::Request(Request { node_id }) if node_id != 0 && Some(NodeId(node_id)) != self.local => {
                self.add_victim(NodeId(node_id), super::Cause::Manual);
            }
            Body::Sync(Sync { ring_seq, ring_rep }) => {
                let ring = RingId { seq: ring_seq, representative: NodeId(ring_rep) };
                if self.ring == Some(ring) {
                    self.synced.insert(sender);
                    self.in_sync = self.members.iter().all(|m| self.synced.contains(m));
                }
            }
            Body::Claim(Claim { node_id, ring_seq, ring_rep }) => {
                let ring = RingId { seq: ring_seq, representative: NodeId(ring_rep) };
                let node = NodeId(node_id);
                if self.ring == Some(ring) && !self.claims.contains_key(&node) {
                    self.claims.insert(node, sender);
                    if self.victims.contains_key(&node) {
                        self.push_event(FenceEvent::Owner { node, member: sender });
                    } else if Some(sender) == self.local {
                        // Our claim won, but the victim was done meanwhile: say so again, which
                        // frees the claim for a member that has it only now.
                        self.resend_done(node);
                    }
                }
            }
            Body::Done(Done { node_id, by }) if node_id != 0 => {
                let node = NodeId(node_id);
                // A finished victim is nobody's any more: a member that gets it again later in
                // this ring (a restarted node's startup rule, a new request) claims it afresh.
                self.claims.remove(&node);
                self.claims_sent.remove(&node);
                if Some(sender) != self.local {
                    self.complete(now, node, by);
                }
            }
            Body::Request(_) | Body::Done(_) => {}
        }
        self.finish(now);
        Ok(())
    }

    /// The next message to multicast (agreed order), if coordinated.
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.messages.pop_front()
    }

    /// The member that runs `node`'s agents in this ring, once a claim is delivered.
    pub fn owner(&self, node: NodeId) -> Option<NodeId> {
        self.claims.get(&node).copied()
    }

    /// Whether this fencer runs `node`'s agents now; when nobody has claimed it in this ring,
    /// sends this member's claim (once per ring).
    pub(super) fn owns(&mut self, node: NodeId) -> bool {
        let Some(local) = self.local else { return true };
        if node == local {
            return false;
        }
        if let Some(&owner) = self.claims.get(&node) {
            return owner == local;
        }
        if let Some(ring) = self.ring.filter(|_| self.in_sync) {
            if self.claims_sent.insert(node) {
                let claim = Claim { node_id: node.0, ring_seq: ring.seq, ring_rep: ring.representative.0 };
                self.messages.push_back(FenceMessage::encode_body(Body::Claim(claim)));
            }
        }
        false
    }

    /// Asks the members to fence `node` (coordinated [`Fencer::fence`]).
    pub(super) fn send_request(&mut self, node: NodeId) {
        self.messages.push_back(FenceMessage::encode_body(Body::Request(Request { node_id: node.0 })));
    }

    /// Repeats the last result this member knows for `node`, if any.
    fn resend_done(&mut self, node: NodeId) {
        if let Some(by) = self.history.iter().rev().find(|h| h.node == node).map(|h| h.by.clone()) {
            self.send_done(node, &by);
        }
    }

    /// Tells the members `node` is fenced, when coordinated.
    pub(super) fn send_done(&mut self, node: NodeId, by: &str) {
        if self.local.is_some() {
            let done = Done { node_id: node.0, by: by.to_owned() };
            self.messages.push_back(FenceMessage::encode_body(Body::Done(done)));
        }
    }
}
