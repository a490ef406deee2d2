//! The event loop: one queue event per step, then every engine output drained and routed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bytes::Bytes;
use totem::{Destination, Event, Guarantee, Instant, NodeId, Transmit};
use totemd::Node;

use super::{Cluster, Ev, Mutation, MutationKind, SimError};
use crate::check::{Check, CheckerKind, Observation, Violation};
use crate::net::{Fate, PacketKind};
use crate::node::Liveness;
use crate::rng::nanos;
use crate::summary::summarize;
use crate::trace::TraceKind;
use crate::workload::{make_payload, parse_payload, payload_hash, MsgId};

/// A cheap fingerprint of a datagram for the trace hash: its length and its crc32 trailer.
fn fingerprint(data: &[u8]) -> u64 {
    let crc = data
        .len()
        .checked_sub(4)
        .and_then(|s| data.get(s..))
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    (data.len() as u64) << 32 | u64::from(crc)
}

fn guarantee_word(g: Guarantee) -> u64 {
    match g {
        Guarantee::Agreed => 1,
        Guarantee::Safe => 2,
    }
}

impl Cluster {
    /// Queues `ev` at global time `at`; returns its key.
    pub(super) fn push(&mut self, at: u64, ev: Ev) -> (u64, u64) {
        let key = (at, self.counter);
        self.counter += 1;
        self.queue.insert(key, ev);
        key
    }

    /// Processes the earliest queued event.
    pub(super) fn step(&mut self) {
        let Some(((at, _), ev)) = self.queue.pop_first() else { return };
        if at == self.now {
            self.same_instant_steps += 1;
            if self.same_instant_steps > self.cfg.steps_per_instant_max {
                let v = Violation::new(
                    CheckerKind::Engine,
                    self.now(),
                    None,
                    format!(
                        "livelock or event storm: {} events at one virtual instant, {} queued",
                        self.same_instant_steps,
                        self.queue.len()
                    ),
                );
                self.report(vec![v]);
                self.halted = true;
                return;
            }
        } else {
            self.same_instant_steps = 0;
        }
        if self.queue.len() > self.cfg.queue_max {
            let v = Violation::new(
                CheckerKind::Engine,
                self.now(),
                None,
                format!(
                    "event storm: {} events queued (datagrams in flight, timers, load)",
                    self.queue.len()
                ),
            );
            self.report(vec![v]);
            self.halted = true;
            return;
        }
        self.now = at;
        self.stats.steps += 1;
        self.current = None;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.dispatch(ev))) {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            let v = Violation::new(CheckerKind::Engine, self.now(), self.current, format!("panic: {msg}"));
            self.report(vec![v]);
            self.halted = true;
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Packet { to, from, data } => self.arrive(to, from, data),
            Ev::Timer(i) => {
                self.nodes[i].timer_key = None;
                if self.nodes[i].is_running() {
                    self.current = Some(self.nodes[i].id);
                    let local = self.local(i);
                    self.trace
                        .record(self.now, self.nodes[i].id.0, TraceKind::Timeout, &[], || "timeout".into());
                    if let Some(srp) = self.nodes[i].srp.as_mut() {
                        srp.handle_timeout(local);
                    }
                    self.after_input(i);
                }
            }
            Ev::Load(i) => {
                self.nodes[i].load_key = None;
                if self.nodes[i].is_running() {
                    self.current = Some(self.nodes[i].id);
                    let padding = self.cfg.load.sample_padding(&mut self.rng);
                    let g = self.cfg.load.sample_guarantee(&mut self.rng);
                    let _ = self.submit_at(i, padding, g);
                }
                self.schedule_load(i);
            }
            Ev::Cpg(i) => {
                self.nodes[i].cpg_key = None;
                if self.nodes[i].is_running() {
                    self.current = Some(self.nodes[i].id);
                    self.cpg_tick(i);
                }
                self.schedule_cpg(i);
            }
            Ev::Agent { runner, incarnation, run } => {
                self.current = Some(self.nodes[runner].id);
                self.agent_done(runner, incarnation, *run);
            }
            Ev::PowerOn(i) => self.power_on_node(i),
            Ev::Resume(i) => {
                if let Liveness::Paused { until } = self.nodes[i].liveness {
                    if until <= self.now {
                        self.resume_node(i);
                    }
                }
            }
        }
    }

    pub(super) fn local(&self, i: usize) -> Instant {
        self.nodes[i].clock.local(self.now)
    }

    fn arrive(&mut self, i: usize, from: NodeId, data: Bytes) {
        let id = self.nodes[i].id;
        let words = [u64::from(from.0), fingerprint(&data)];
        let kind = PacketKind::of(&data);
        match self.nodes[i].liveness {
            Liveness::Down => {
                self.stats.drops += 1;
                self.trace.record(self.now, id.0, TraceKind::Drop, &words, || {
                    format!("drop {} from n{from}: node down", kind.name())
                });
            }
            Liveness::Paused { .. } => {
                if self.nodes[i].socket.len() < self.cfg.socket_buffer_packets {
                    self.nodes[i].socket.push_back((from, data));
                    self.trace.record(self.now, id.0, TraceKind::Buffer, &words, || {
                        format!("buffer {} from n{from}", kind.name())
                    });
                } else {
                    self.stats.drops += 1;
                    self.trace.record(self.now, id.0, TraceKind::Drop, &words, || {
                        format!("drop {} from n{from}: socket buffer full", kind.name())
                    });
                }
            }
            Liveness::Up => self.feed(i, from, data),
        }
    }

    /// Hands one datagram to a running node.
    fn feed(&mut self, i: usize, from: NodeId, data: Bytes) {
        let id = self.nodes[i].id;
        self.current = Some(id);
        self.stats.arrivals += 1;
        let len = data.len();
        self.trace.record(
            self.now,
            id.0,
            TraceKind::Arrive,
            &[u64::from(from.0), fingerprint(&data)],
            || format!("recv from n{from} ({len} B): {}", summarize(&data)),
        );
        let local = self.local(i);
        if let Some(srp) = self.nodes[i].srp.as_mut() {
            srp.handle_datagram(local, data);
        }
        self.after_input(i);
    }

    /// After any input to node `i`: sample what the checkers watch, drain events and
    /// transmits, re-arm the timer.
    pub(super) fn after_input(&mut self, i: usize) {
        let (id, incarnation) = (self.nodes[i].id, self.nodes[i].incarnation);
        let Some(srp) = self.nodes[i].srp.as_ref() else { return };
        let hidden =
            self.cfg.mutation.is_some_and(|m| m.node == id && m.kind == MutationKind::HideReceivedThrough);
        if let Some((ring_id, seq)) = srp.engine().received_through().filter(|_| !hidden) {
            let obs = Observation::ReceivedThrough { node: id, incarnation, ring_id, seq };
            self.observe(&obs);
        }
        while let Some(ev) = self.nodes[i].srp.as_mut().and_then(Node::poll_event) {
            match self.cfg.mutation {
                Some(m) if matches!(ev, Event::Deliver(_)) => self.mutate(i, m, ev),
                _ => self.on_event(i, ev),
            }
        }
        self.drain_client_events(i);
        self.observe_quorum(i);
        self.drain_fencing(i);
        while let Some(tx) = self.nodes[i].srp.as_mut().and_then(Node::poll_transmit) {
            self.send(i, tx);
        }
        self.rearm(i);
    }

    /// Quorum events to the trace and the checkers, then the node's quorum state.
    fn observe_quorum(&mut self, i: usize) {
        let (id, incarnation) = (self.nodes[i].id, self.nodes[i].incarnation);
        while let Some(event) = self.nodes[i].srp.as_mut().and_then(Node::poll_quorum_event) {
            let mut words =
                vec![u64::from(event.quorate), event.ring_id.seq, u64::from(event.ring_id.representative.0)];
            words.extend(event.members.iter().map(|m| u64::from(m.0)));
            self.trace.record(self.now, id.0, TraceKind::Quorum, &words, || {
                format!(
                    "quorum {} ring {} members {:?}",
                    if event.quorate { "QUORATE" } else { "inquorate" },
                    event.ring_id,
                    event.members.iter().map(|m| m.0).collect::<Vec<_>>()
                )
            });
            self.observe(&Observation::Quorum { node: id, incarnation, event: &event });
            self.quorum_log.push((self.now(), id, event));
        }
        let Some(node) = self.nodes[i].srp.as_ref() else { return };
        let Some(q) = node.quorum() else { return };
        let claim = self.cfg.mutation.is_some_and(|m| m.node == id && m.kind == MutationKind::ClaimQuorum);
        // two_node: both halves of a split are quorate by design and fencing decides, so
        // only a node its fencer does not hold counts (the fencing checker has the rest).
        let held = self.cfg.quorum.as_ref().is_some_and(|q| q.two_node) && node.fencing_held();
        let quorate = (q.is_quorate() && !held) || claim;
        let (ring_id, members) = (node.ring_id(), node.members().to_vec());
        let operational = node.state() == totem::SrpState::Operational;
        self.observe(&Observation::QuorumState {
            node: id,
            incarnation,
            operational,
            ring_id,
            members: &members,
            quorate,
        });
    }

    /// Distorts one node's delivery stream as a buggy engine would (see [`Mutation`]).
    fn mutate(&mut self, i: usize, m: Mutation, ev: Event) {
        let node = &mut self.nodes[i];
        node.deliveries += 1;
        if node.id != m.node {
            return self.on_event(i, ev);
        }
        if node.deliveries == m.nth {
            match m.kind {
                MutationKind::DropDelivery => {}
                MutationKind::DuplicateDelivery => {
                    self.on_event(i, ev.clone());
                    self.on_event(i, ev);
                }
                MutationKind::SwapDeliveries => node.held = Some(ev),
                _ => self.on_event(i, ev),
            }
            return;
        }
        let held = node.held.take();
        self.on_event(i, ev);
        if let Some(h) = held {
            self.on_event(i, h);
        }
    }

    fn on_event(&mut self, i: usize, ev: Event) {
        let (node, incarnation) = (self.nodes[i].id, self.nodes[i].incarnation);
        let now = self.now;
        match &ev {
            Event::Persist(p) => {
                self.nodes[i].persisted = *p;
                self.trace.record(now, node.0, TraceKind::Persist, &[p.ring_seq], || {
                    format!("persist ring_seq {}", p.ring_seq)
                });
            }
            Event::Deliver(d) => {
                self.stats.deliveries += 1;
                let id = parse_payload(&d.payload);
                let (s, c) = id.map_or((0, 0), |m| (u64::from(m.sender.0), m.counter));
                let words = [
                    s,
                    c,
                    d.ring_id.seq,
                    u64::from(d.ring_id.representative.0),
                    d.seq.0,
                    guarantee_word(d.guarantee),
                ];
                self.trace.record(now, node.0, TraceKind::Deliver, &words, || {
                    let what =
                        id.map_or_else(|| format!("<{} B without id>", d.payload.len()), |m| m.to_string());
                    format!(
                        "deliver {what} {:?} ring {} seq {} ({} B)",
                        d.guarantee,
                        d.ring_id,
                        d.seq,
                        d.payload.len()
                    )
                });
                self.observe(&Observation::Deliver { node, incarnation, delivery: d, id });
            }
            Event::Transitional(c) | Event::Regular(c) => {
                let regular = matches!(ev, Event::Regular(_));
                let (kind, name) = if regular {
                    self.stats.regular_configs += 1;
                    (TraceKind::Regular, "regular")
                } else {
                    self.stats.transitional_configs += 1;
                    (TraceKind::Transitional, "transitional")
                };
                let mut words = vec![c.ring_id.seq, u64::from(c.ring_id.representative.0)];
                words.extend(c.members.iter().map(|m| u64::from(m.0)));
                self.trace.record(now, node.0, kind, &words, || {
                    format!(
                        "{name} ring {} members {:?}",
                        c.ring_id,
                        c.members.iter().map(|m| m.0).collect::<Vec<_>>()
                    )
                });
                if regular {
                    let local = self.local(i);
                    let n = &mut self.nodes[i];
                    let result = n.srp.as_ref().map(|srp| n.confdb.on_regular(srp, c, local));
                    if let Some(Err(detail)) = result {
                        self.report(vec![Violation::new(
                            CheckerKind::Confdb,
                            self.now(),
                            Some(node),
                            detail,
                        )]);
                    }
                }
                let obs = if regular {
                    Observation::Regular { node, incarnation, config: c }
                } else {
                    Observation::Transitional { node, incarnation, config: c }
                };
                self.observe(&obs);
            }
        }
    }

    /// Feeds the checkers; new violations go to the trace and may halt the run.
    pub(super) fn observe(&mut self, obs: &Observation<'_>) {
        let before = self.violations.len();
        self.checkers.observe(self.now(), obs, &mut self.violations);
        if self.violations.len() > before {
            let new = self.violations.split_off(before);
            self.report(new);
        }
    }

    /// Records violations found outside the step-wise checkers too.
    pub(super) fn report(&mut self, new: Vec<Violation>) {
        for v in new {
            let node = v.node.map_or(0, |n| n.0);
            self.trace.record(self.now, node, TraceKind::Violation, &[v.checker as u64], || {
                format!("VIOLATION {v}")
            });
            self.violations.push(v);
        }
        if self.cfg.stop_on_violation && !self.violations.is_empty() {
            self.halted = true;
        }
    }

    fn send(&mut self, i: usize, tx: Transmit) {
        let from = self.nodes[i].id;
        let kind = PacketKind::of(&tx.payload);
        self.stats.transmits += 1;
        let dest_word = match tx.dest {
            Destination::All => 0,
            Destination::Node(n) => u64::from(n.0),
        };
        let len = tx.payload.len();
        self.trace.record(self.now, from.0, TraceKind::Send, &[dest_word, fingerprint(&tx.payload)], || {
            let to = match tx.dest {
                Destination::All => "all".to_string(),
                Destination::Node(n) => format!("n{n}"),
            };
            format!("send -> {to} ({len} B): {}", summarize(&tx.payload))
        });
        match tx.dest {
            Destination::All => {
                for j in (0..self.nodes.len()).filter(|&j| j != i) {
                    self.route(i, j, &tx.payload, kind);
                }
            }
            Destination::Node(n) => {
                match (n.0 as usize).checked_sub(1).filter(|&j| j < self.nodes.len() && j != i) {
                    Some(j) => self.route(i, j, &tx.payload, kind),
                    None => {
                        self.stats.drops += 1;
                        self.trace.record(self.now, from.0, TraceKind::Drop, &[dest_word], || {
                            format!("drop {}: no such peer n{n}", kind.name())
                        });
                    }
                }
            }
        }
    }

    fn route(&mut self, i: usize, j: usize, data: &Bytes, kind: PacketKind) {
        let (from, to) = (self.nodes[i].id, self.nodes[j].id);
        let now = self.now();
        match self.fabric.route(&mut self.rng, now, from, to, kind) {
            Fate::Dropped(reason) => {
                self.stats.drops += 1;
                self.trace.record(
                    self.now,
                    from.0,
                    TraceKind::Drop,
                    &[u64::from(to.0), reason as u64],
                    || format!("drop {} -> n{to}: {}", kind.name(), reason.name()),
                );
            }
            Fate::Arrives(delays) => {
                for &d in delays.as_slice() {
                    self.push(self.now.saturating_add(d), Ev::Packet { to: j, from, data: data.clone() });
                }
            }
        }
    }

    /// Keeps exactly one queued timer per running node, at its engine's earliest deadline.
    fn rearm(&mut self, i: usize) {
        let node = &self.nodes[i];
        let want = match (&node.srp, node.liveness) {
            (Some(srp), Liveness::Up) => srp.poll_timeout().map(|dl| node.clock.global_at(dl).max(self.now)),
            _ => None,
        };
        if let (Some((t, _)), Some(w)) = (node.timer_key, want) {
            if t == w {
                return;
            }
        }
        if let Some(k) = self.nodes[i].timer_key.take() {
            self.queue.remove(&k);
        }
        if let Some(w) = want {
            let key = self.push(w, Ev::Timer(i));
            self.nodes[i].timer_key = Some(key);
        }
    }

    pub(super) fn schedule_load(&mut self, i: usize) {
        if self.load_rate <= 0.0 {
            return;
        }
        let gap = self.rng.exponential(1e9 / self.load_rate, 20.0) as u64;
        let key = self.push(self.now.saturating_add(gap.max(1)), Ev::Load(i));
        self.nodes[i].load_key = Some(key);
    }

    pub(super) fn submit_at(
        &mut self,
        i: usize,
        padding: usize,
        guarantee: Guarantee,
    ) -> Result<MsgId, SimError> {
        let node = &mut self.nodes[i];
        match node.liveness {
            Liveness::Down => return Err(SimError::NodeDown(node.id)),
            Liveness::Paused { .. } => return Err(SimError::NodePaused(node.id)),
            Liveness::Up => {}
        }
        let id = MsgId { sender: node.id, counter: node.next_counter };
        node.next_counter += 1;
        let incarnation = node.incarnation;
        let payload = make_payload(id, padding);
        let (len, hash) = (payload.len(), payload_hash(&payload));
        let local = self.local(i);
        let result = self.nodes[i].srp.as_mut().map(|s| s.submit(local, payload, guarantee));
        let words = [id.counter, len as u64, guarantee_word(guarantee)];
        match result {
            Some(Ok(())) => {
                self.stats.submitted += 1;
                self.trace.record(self.now, id.sender.0, TraceKind::Submit, &words, || {
                    format!("submit {id} {guarantee:?} ({len} B)")
                });
                self.observe(&Observation::Submit { node: id.sender, incarnation, id, guarantee, len, hash });
                self.after_input(i);
                Ok(id)
            }
            Some(Err(e)) => {
                self.stats.submit_rejected += 1;
                self.trace.record(self.now, id.sender.0, TraceKind::SubmitRejected, &words, || {
                    format!("submit {id} refused: {e}")
                });
                self.after_input(i);
                Err(e.into())
            }
            None => Err(SimError::NodeDown(id.sender)),
        }
    }

    pub(super) fn crash_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.liveness == Liveness::Down {
            return;
        }
        node.srp = None;
        node.liveness = Liveness::Down;
        node.socket.clear();
        node.clients.clear();
        let (id, incarnation) = (node.id, node.incarnation);
        if let Some(k) = node.timer_key.take() {
            self.queue.remove(&k);
        }
        self.stats.crashes += 1;
        self.trace.record(self.now, id.0, TraceKind::Crash, &[], || "CRASH".into());
        self.observe(&Observation::Crash { node: id, incarnation });
    }

    /// A clean leave: the engine's leave notice goes out, then the node is down.
    pub(super) fn leave_node(&mut self, i: usize) {
        if self.nodes[i].liveness != Liveness::Up {
            return;
        }
        let local = self.local(i);
        let Some(srp) = self.nodes[i].srp.as_mut() else { return };
        srp.leave(local);
        self.after_input(i);
        self.crash_node(i);
    }

    pub(super) fn restart_node(&mut self, i: usize) {
        if self.nodes[i].liveness != Liveness::Down {
            return;
        }
        let seed = self.rng.next_u64();
        let local = self.local(i);
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        let mut srp = Node::new(node.id, self.cfg.totem.clone(), node.persisted, seed, local)
            .expect("the configuration was accepted at the first start");
        if let Some(q) = &self.cfg.quorum {
            srp.enable_quorum(q).expect("the quorum configuration was accepted at the first start");
            if let Some(f) = &self.cfg.fencing {
                srp.enable_fencing(local, f.config.clone())
                    .expect("the fencing configuration was accepted at the first start");
            }
        }
        node.srp = Some(srp);
        node.confdb = Default::default();
        node.liveness = Liveness::Up;
        let (id, incarnation, ring_seq) = (node.id, node.incarnation, node.persisted.ring_seq);
        self.stats.restarts += 1;
        self.trace.record(self.now, id.0, TraceKind::Restart, &[u64::from(incarnation), ring_seq], || {
            format!("RESTART incarnation {incarnation} from ring_seq {ring_seq}")
        });
        self.observe(&Observation::Restart { node: id, incarnation });
        self.current = Some(id);
        self.after_input(i);
    }

    pub(super) fn pause_node(&mut self, i: usize, d: Duration) {
        let until = self.now.saturating_add(nanos(d));
        let node = &mut self.nodes[i];
        let id = node.id;
        match node.liveness {
            Liveness::Down => return,
            Liveness::Paused { until: u } if u >= until => return,
            _ => {}
        }
        node.liveness = Liveness::Paused { until };
        if let Some(k) = node.timer_key.take() {
            self.queue.remove(&k);
        }
        self.stats.pauses += 1;
        self.push(until, Ev::Resume(i));
        self.trace.record(self.now, id.0, TraceKind::Pause, &[until], || format!("PAUSE for {d:?}"));
        self.observe(&Observation::Pause { node: id });
    }

    /// Resumes a paused node: overdue timers and buffered datagrams, in an order drawn at random
    /// (a real event loop may see either first).
    pub(super) fn resume_node(&mut self, i: usize) {
        if !matches!(self.nodes[i].liveness, Liveness::Paused { .. }) {
            return;
        }
        self.nodes[i].liveness = Liveness::Up;
        let id = self.nodes[i].id;
        self.current = Some(id);
        let buffered = self.nodes[i].socket.len();
        let timeout_first = self.rng.chance(0.5);
        self.trace.record(
            self.now,
            id.0,
            TraceKind::Resume,
            &[buffered as u64, u64::from(timeout_first)],
            || {
                format!(
                    "RESUME with {buffered} buffered datagrams, {} first",
                    if timeout_first { "timers" } else { "datagrams" }
                )
            },
        );
        self.observe(&Observation::Resume { node: id });
        if timeout_first {
            self.overdue_timeout(i);
        }
        while let Some((from, data)) = self.nodes[i].socket.pop_front() {
            self.feed(i, from, data);
        }
        if !timeout_first {
            self.overdue_timeout(i);
        }
        self.deliver_held_agent_results(i);
        self.rearm(i);
    }

    fn overdue_timeout(&mut self, i: usize) {
        let local = self.local(i);
        let due = self.nodes[i].srp.as_ref().and_then(Node::poll_timeout).is_some_and(|d| d <= local);
        if due {
            self.trace
                .record(self.now, self.nodes[i].id.0, TraceKind::Timeout, &[], || "timeout (overdue)".into());
            if let Some(srp) = self.nodes[i].srp.as_mut() {
                srp.handle_timeout(local);
            }
            self.after_input(i);
        }
    }
}
