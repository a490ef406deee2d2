//! Configuration change consistency: each change a client sees for a group lists, as members,
//! the previous list of that client's view minus `left` plus `joined`; what leaves was there,
//! what joins was not; the client's first change for a group lists it as joined (reason
//! `join`), and its view ends with the change that lists it as left.
//!
//! This is what makes corosync's `cpg_confchg_fn_t` usable incrementally: an application may
//! apply `left` and `joined` to the list it had instead of reading `members`.

use std::collections::{BTreeMap, BTreeSet};

use ::cpg::{Confchg, CpgEvent, MemberId, Reason};
use totem::Instant;

use super::super::{Check, CheckerKind, ClientRef, Observation, Violation};
use super::Groups;

/// The confchg consistency checker.
#[derive(Debug, Default)]
pub struct ConfchgConsistency {
    groups: Groups,
    /// Each client's member list of each group it is in.
    views: BTreeMap<(MemberId, u32), Vec<MemberId>>,
}

impl ConfchgConsistency {
    /// The member list `client` last saw for `group`, while it is in the group.
    pub fn view(&self, client: MemberId, group: u32) -> Option<&Vec<MemberId>> {
        self.views.get(&(client, group))
    }

    fn confchg(&mut self, at: Instant, client: ClientRef, c: &Confchg, out: &mut Vec<Violation>) {
        let me = client.member();
        let g = self.groups.id(&c.group);
        let mut problems = Vec::new();
        if !c.members.windows(2).all(|w| w[0] < w[1]) {
            problems.push("members not sorted or repeated".to_string());
        }
        let left: BTreeSet<MemberId> = c.left.iter().map(|ch| ch.member).collect();
        let joined: BTreeSet<MemberId> = c.joined.iter().map(|ch| ch.member).collect();
        let members: BTreeSet<MemberId> = c.members.iter().copied().collect();
        match self.views.get(&(me, g)) {
            None => {
                if !c.joined.iter().any(|ch| ch.member == me && ch.reason == Reason::Join) {
                    problems.push("its first change for the group does not list it as joined".into());
                }
            }
            Some(prev) => {
                let prev: BTreeSet<MemberId> = prev.iter().copied().collect();
                if let Some(m) = left.difference(&prev).next() {
                    problems.push(format!("{m} left but was not a member"));
                }
                if let Some(m) = joined.intersection(&prev).next() {
                    problems.push(format!("{m} joined but was already a member"));
                }
                let expect: BTreeSet<MemberId> = prev.difference(&left).chain(&joined).copied().collect();
                if expect != members {
                    problems.push(format!(
                        "previous members {} minus left plus joined is {}",
                        list(prev.iter()),
                        list(expect.iter())
                    ));
                }
            }
        }
        if left.contains(&me) {
            if members.contains(&me) {
                problems.push("it left but is still listed".into());
            }
            self.views.remove(&(me, g));
        } else {
            if !members.contains(&me) {
                problems.push("it is not listed among the members".into());
            }
            self.views.insert((me, g), c.members.clone());
        }
        if !problems.is_empty() {
            out.push(Violation::new(
                CheckerKind::CpgConfchg,
                at,
                Some(client.node),
                format!(
                    "{client} in {}: change to {} (left {}, joined {}): {}",
                    c.group,
                    list(c.members.iter()),
                    list(left.iter()),
                    list(joined.iter()),
                    problems.join("; ")
                ),
            ));
        }
    }
}

fn list<'a>(m: impl Iterator<Item = &'a MemberId>) -> String {
    let v: Vec<String> = m.map(|m| m.to_string()).collect();
    format!("[{}]", v.join(" "))
}

impl Check for ConfchgConsistency {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        if let Observation::CpgEvent { client, event: CpgEvent::Confchg(c), .. } = *obs {
            self.confchg(at, client, c, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::check::run_history;

    fn run(events: &[(ClientRef, CpgEvent)]) -> Vec<Violation> {
        let h: Vec<_> = events
            .iter()
            .map(|(c, e)| (0, Observation::CpgEvent { client: *c, ring_id: ring(1), event: e, id: None }))
            .collect();
        run_history(&mut ConfchgConsistency::default(), &h)
    }

    #[test]
    fn a_consistent_sequence_passes() {
        let (x, y, z) = (cl(1, 1), cl(2, 2), cl(3, 3));
        let v = run(&[
            (y, change("a", &[x, y], &[], &[(y, Reason::Join)])),
            (y, change("a", &[x, y, z], &[], &[(z, Reason::NodeUp)])),
            (y, change("a", &[y], &[(x, Reason::NodeDown), (z, Reason::NodeDown)], &[])),
            (y, change("a", &[], &[(y, Reason::Leave)], &[])),
            (y, change("a", &[x, y], &[], &[(y, Reason::Join)])),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn a_member_list_that_does_not_follow_fails() {
        let (x, y, z) = (cl(1, 1), cl(2, 2), cl(3, 3));
        let v = run(&[
            (y, change("a", &[x, y], &[], &[(y, Reason::Join)])),
            // z appears without being listed as joined.
            (y, change("a", &[x, y, z], &[], &[])),
        ]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].checker, CheckerKind::CpgConfchg);
    }

    #[test]
    fn a_first_change_without_its_own_join_fails() {
        let (x, y) = (cl(1, 1), cl(2, 2));
        let v = run(&[(y, change("a", &[x, y], &[], &[(x, Reason::Join)]))]);
        assert_eq!(v.len(), 1, "{v:?}");
        let v = run(&[
            (y, change("a", &[y], &[], &[(y, Reason::Join)])),
            (y, change("a", &[x, y], &[(x, Reason::Leave)], &[])),
        ]);
        assert_eq!(v.len(), 1, "{v:?}");
    }
}
