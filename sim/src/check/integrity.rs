//! Integrity: every delivered message was submitted, by its stated sender, with these exact
//! bytes and guarantee, and each node incarnation delivers it at most once.
//!
//! Duplicates are found through sender FIFO order, which Totem also guarantees (a sender's
//! messages take seqs in submission order, and delivery follows seq): per receiver incarnation
//! and sender, delivered counters must strictly increase. Equal = duplicate; lower = duplicate
//! or reordering. This needs memory per node pair only, not per message.

use std::collections::BTreeMap;

use totem::{Guarantee, Instant, NodeId};

use super::{Check, CheckerKind, Observation, Violation};
use crate::workload::{payload_hash, MsgId};

#[derive(Copy, Clone, Debug)]
struct Submitted {
    guarantee: Guarantee,
    len: usize,
    hash: u64,
}

/// The integrity checker.
#[derive(Debug, Default)]
pub struct Integrity {
    submitted: BTreeMap<MsgId, Submitted>,
    /// (receiver, sender) → (receiver incarnation, highest counter delivered).
    last_from: BTreeMap<(NodeId, NodeId), (u32, u64)>,
}

impl Integrity {
    /// Messages the engines accepted so far.
    pub fn submitted_count(&self) -> usize {
        self.submitted.len()
    }

    /// Whether `id` was submitted.
    pub fn was_submitted(&self, id: MsgId) -> bool {
        self.submitted.contains_key(&id)
    }
}

impl Check for Integrity {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::Submit { id, guarantee, len, hash, .. } => {
                self.submitted.insert(id, Submitted { guarantee, len, hash });
            }
            Observation::Deliver { node, incarnation, delivery: d, id } => {
                let fail = |detail: String| Violation::new(CheckerKind::Integrity, at, Some(node), detail);
                let Some(id) = id else {
                    out.push(fail(format!(
                        "phantom: {} bytes from n{} carry no message id",
                        d.payload.len(),
                        d.sender
                    )));
                    return;
                };
                let Some(s) = self.submitted.get(&id) else {
                    out.push(fail(format!("phantom: {id} was never submitted")));
                    return;
                };
                if d.sender != id.sender {
                    out.push(fail(format!("{id} delivered as sent by n{}", d.sender)));
                }
                if d.guarantee != s.guarantee {
                    out.push(fail(format!(
                        "{id} submitted {:?} but delivered {:?}",
                        s.guarantee, d.guarantee
                    )));
                }
                if d.payload.len() != s.len || payload_hash(&d.payload) != s.hash {
                    out.push(fail(format!(
                        "{id} corrupted: {} bytes delivered, {} submitted",
                        d.payload.len(),
                        s.len
                    )));
                }
                let last = self.last_from.entry((node, id.sender)).or_insert((incarnation, 0));
                if last.0 != incarnation {
                    *last = (incarnation, 0);
                }
                if id.counter == last.1 {
                    out.push(fail(format!("duplicate delivery of {id}")));
                } else if id.counter < last.1 {
                    out.push(fail(format!(
                        "{id} delivered after m{}.{}: a duplicate, or the sender's order broken",
                        id.sender, last.1
                    )));
                }
                last.1 = last.1.max(id.counter);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use totem::Guarantee::{Agreed, Safe};

    use super::super::testkit::*;
    use super::super::{run_history, Observation as O};
    use super::*;

    const A: NodeId = NodeId(1);

    fn submit(d: &totem::Delivery, id: MsgId) -> O<'static> {
        O::Submit {
            node: id.sender,
            incarnation: 0,
            id,
            guarantee: d.guarantee,
            len: d.payload.len(),
            hash: payload_hash(&d.payload),
        }
    }

    #[test]
    fn submitted_then_delivered_once_passes() {
        let (m1, m2) = (id(2, 1), id(2, 2));
        let (d1, d2) = (delivery(ring(1, 1), 1, m1, Agreed), delivery(ring(1, 1), 2, m2, Safe));
        let h = [
            (0, submit(&d1, m1)),
            (0, submit(&d2, m2)),
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d1, id: Some(m1) }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &d2, id: Some(m2) }),
            // A restarted node may deliver it again: a new incarnation.
            (3, O::Deliver { node: A, incarnation: 1, delivery: &d1, id: Some(m1) }),
        ];
        assert!(run_history(&mut Integrity::default(), &h).is_empty());
    }

    #[test]
    fn duplicate_fails() {
        let m = id(2, 1);
        let d = delivery(ring(1, 1), 1, m, Agreed);
        let h = [
            (0, submit(&d, m)),
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
        ];
        let v = run_history(&mut Integrity::default(), &h);
        assert_eq!(v.len(), 1);
        assert!(v[0].detail.contains("duplicate"));
    }

    #[test]
    fn phantom_unparseable_wrong_sender_and_corruption_fail() {
        let m = id(2, 1);
        let d = delivery(ring(1, 1), 1, m, Agreed);
        let raw_d = raw(ring(1, 1), 1, 2, b"junk");
        let mut wrong_sender = d.clone();
        wrong_sender.sender = NodeId(3);
        let mut corrupted = delivery(ring(1, 1), 1, id(2, 2), Agreed);
        let submitted_m2 = delivery(ring(1, 1), 1, id(2, 2), Agreed);
        corrupted.payload = crate::workload::make_payload(id(2, 2), 9);
        let h = [
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &raw_d, id: None }),
            (3, submit(&d, m)),
            (4, O::Deliver { node: NodeId(5), incarnation: 0, delivery: &wrong_sender, id: Some(m) }),
            (5, submit(&submitted_m2, id(2, 2))),
            (6, O::Deliver { node: NodeId(6), incarnation: 0, delivery: &corrupted, id: Some(id(2, 2)) }),
        ];
        let v = run_history(&mut Integrity::default(), &h);
        assert_eq!(v.len(), 4, "{v:?}");
    }

    #[test]
    fn sender_order_reversal_fails() {
        let (m1, m2) = (id(2, 1), id(2, 2));
        let (d1, d2) = (delivery(ring(1, 1), 1, m1, Agreed), delivery(ring(1, 1), 2, m2, Agreed));
        let h = [
            (0, submit(&d1, m1)),
            (0, submit(&d2, m2)),
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d2, id: Some(m2) }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &d1, id: Some(m1) }),
        ];
        assert_eq!(run_history(&mut Integrity::default(), &h).len(), 1);
    }
}
