//! The tokio driver: one task owns the [`Node`], the UDP socket and the timer.
//!
//! Each turn of the loop feeds one input (a datagram, an expired deadline), then drains every
//! output: first the events — a `Persist` is stored durably before anything after it is sent —
//! then the transmits; then it re-arms the one timer from [`Node::poll_timeout`]. It makes no
//! protocol decision. SIGINT, SIGTERM and `run_for` stop it cleanly.

mod os;
mod transport;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use totem::{Destination, Event, NodeId, PersistedState, RingId, SrpState, Transmit};

use crate::config::{fmt_members, DaemonConfig, PeerTable};
use crate::node::{Node, NodeError};
use crate::state::{StateDir, StateError};

pub use os::{seed, Clock};
pub use transport::{RECV_BUFFER_BYTES, SOCKET_BUFFER_BYTES};

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The tokio runtime or the signal handlers could not be set up.
    #[error("cannot set up the runtime: {0}")]
    Setup(io::Error),
    /// The UDP address could not be bound (in use, or not an address of this host).
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The node could not be built from the configuration.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A ring seq could not be stored: the daemon stops rather than send without it.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why the loop ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM arrived.
    Terminate,
    /// SIGINT arrived.
    Interrupt,
    /// `run_for` elapsed.
    RunFor,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Terminate => "SIGTERM",
            StopReason::Interrupt => "SIGINT",
            StopReason::RunFor => "run-for elapsed",
        })
    }
}

/// The driver's own counters (the engine keeps its own in [`totem::Stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Datagrams the kernel refused to send.
    pub send_errors: u64,
    /// Transmits to a node id missing from the peer table.
    pub unroutable: u64,
    /// Receive calls that failed.
    pub recv_errors: u64,
    /// `Persist` events stored.
    pub persists: u64,
}

/// What the daemon reports when it stops.
#[derive(Clone, Debug)]
pub struct Summary {
    /// This node.
    pub node_id: NodeId,
    /// Why it stopped.
    pub reason: StopReason,
    /// How long it ran.
    pub uptime: Duration,
    /// Its last installed ring.
    pub ring_id: RingId,
    /// That ring's members.
    pub members: Vec<NodeId>,
    /// The protocol state at the end.
    pub state: SrpState,
    /// The engine's counters.
    pub engine: totem::Stats,
    /// The driver's counters.
    pub driver: DriverStats,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.engine;
        let d = &self.driver;
        write!(
            f,
            "node {} stopped ({}) after {:.1} s: ring {} members {} state {:?}; \
             packets sent {} received {}, messages delivered {}, token rotations {}, \
             retransmits {}, token retransmits {}, configurations {}, \
             dropped checksum {} malformed {} stale {}; \
             datagrams sent {}, send errors {}, unroutable {}, recv errors {}, persists {}",
            self.node_id,
            self.reason,
            self.uptime.as_secs_f64(),
            self.ring_id,
            fmt_members(&self.members),
            self.state,
            e.packets_sent,
            e.packets_received,
            e.messages_delivered,
            e.token_rotations,
            e.retransmits,
            e.token_retransmits,
            e.configurations,
            e.dropped_checksum,
            e.dropped_malformed,
            e.dropped_stale,
            d.datagrams_sent,
            d.send_errors,
            d.unroutable,
            d.recv_errors,
            d.persists,
        )
    }
}

/// Runs the daemon on a single-threaded tokio runtime until a signal or `run_for`.
///
/// `persisted` is what `state` held at start; every `Persist` the node asks for is stored in
/// `state` before the datagrams that follow it are sent.
pub fn run(
    config: &DaemonConfig,
    state: &mut StateDir,
    persisted: PersistedState,
) -> Result<Summary, RuntimeError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RuntimeError::Setup)?;
    runtime.block_on(drive(config, state, persisted))
}

/// The driver loop; see [`run`].
pub async fn drive(
    config: &DaemonConfig,
    state: &mut StateDir,
    persisted: PersistedState,
) -> Result<Summary, RuntimeError> {
    let bind_err = |source| RuntimeError::Bind { addr: config.bind, source };
    let bound = transport::bind(config.bind).map_err(bind_err)?;
    let socket = UdpSocket::from_std(bound.socket).map_err(bind_err)?;
    tracing::info!(
        "listening on udp {} (receive buffer {} bytes, send buffer {} bytes)",
        config.bind,
        bound.recv_buffer,
        bound.send_buffer
    );
    let mut sigterm = signal(SignalKind::terminate()).map_err(RuntimeError::Setup)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RuntimeError::Setup)?;

    let seed = seed();
    tracing::info!("engine seed {seed:#018x}");
    let clock = Clock::start();
    let node = Node::new(config.node_id, config.totem.clone(), persisted, seed, clock.now())?;
    let mut driver =
        Driver { node, socket, peers: &config.peers, state, clock, stats: DriverStats::default() };
    let stop_at = config.run_for.map(|d| clock.after(d));
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];

    let reason = loop {
        driver.flush().await?;
        let timer = driver.node.poll_timeout().map(|at| clock.to_tokio(at));
        let input = tokio::select! {
            biased;
            _ = sigterm.recv() => Input::Stop(StopReason::Terminate),
            _ = sigint.recv() => Input::Stop(StopReason::Interrupt),
            _ = sleep_until(stop_at) => Input::Stop(StopReason::RunFor),
            // The timer before the socket: a steady stream of datagrams must not starve it.
            _ = sleep_until(timer) => Input::Timeout,
            received = driver.socket.recv_from(&mut buf) => Input::Received(received),
        };
        match input {
            Input::Stop(reason) => break reason,
            Input::Received(Ok((len, from))) => {
                tracing::trace!(%from, len, "datagram");
                let datagram = Bytes::copy_from_slice(&buf[..len]);
                driver.node.handle_datagram(clock.now(), datagram);
            }
            Input::Received(Err(e)) => {
                driver.stats.recv_errors += 1;
                tracing::debug!(error = %e, "receive failed");
            }
            Input::Timeout => driver.node.handle_timeout(clock.now()),
        }
    };
    tracing::info!("stopping: {reason}; leaving the ring");
    // A clean leave: the members fail us at once instead of waiting for a token timeout.
    driver.node.leave(clock.now());
    driver.flush().await?;
    Ok(driver.summary(reason))
}

/// One input chosen by the loop.
enum Input {
    Stop(StopReason),
    Received(io::Result<(usize, SocketAddr)>),
    Timeout,
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The state the loop owns besides its buffers.
struct Driver<'a> {
    node: Node,
    socket: UdpSocket,
    peers: &'a PeerTable,
    state: &'a mut StateDir,
    clock: Clock,
    stats: DriverStats,
}

impl Driver<'_> {
    /// Drains every output: events first (storing `Persist`), then transmits.
    async fn flush(&mut self) -> Result<(), RuntimeError> {
        while let Some(event) = self.node.poll_event() {
            self.on_event(event)?;
        }
        while let Some(transmit) = self.node.poll_transmit() {
            self.send(transmit).await;
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Result<(), StateError> {
        match event {
            Event::Persist(p) => {
                // Blocking on the fsync is intended: nothing may be sent until it is done.
                self.state.store(p)?;
                self.stats.persists += 1;
                tracing::debug!("stored ring seq {}", p.ring_seq);
            }
            Event::Regular(c) => {
                tracing::info!("new ring {} members {}", c.ring_id, fmt_members(&c.members))
            }
            Event::Transitional(c) => {
                tracing::info!(
                    "transitional configuration of ring {} members {}",
                    c.ring_id,
                    fmt_members(&c.members)
                )
            }
            Event::Deliver(d) => {
                // No service consumes messages yet (see `Node::route_engine_events`).
                tracing::debug!(sender = %d.sender, seq = %d.seq, len = d.payload.len(), "delivered message");
            }
        }
        Ok(())
    }

    async fn send(&mut self, transmit: Transmit) {
        match transmit.dest {
            // udpu: "every other node" is one unicast to each peer.
            Destination::All => {
                for (_, &addr) in self.peers.iter() {
                    Self::send_to(&self.socket, &mut self.stats, &transmit.payload, addr).await;
                }
            }
            Destination::Node(id) => match self.peers.get(id) {
                Some(addr) => Self::send_to(&self.socket, &mut self.stats, &transmit.payload, addr).await,
                None => {
                    self.stats.unroutable += 1;
                    tracing::warn!(node = %id, "no address for node: datagram dropped");
                }
            },
        }
    }

    async fn send_to(socket: &UdpSocket, stats: &mut DriverStats, payload: &[u8], addr: SocketAddr) {
        match socket.send_to(payload, addr).await {
            Ok(_) => stats.datagrams_sent += 1,
            Err(e) => {
                stats.send_errors += 1;
                // Warn on the 1st, 2nd, 4th, 8th... failure: visible, but no flood when a peer is unreachable.
                if stats.send_errors.is_power_of_two() {
                    tracing::warn!(%addr, error = %e, failures = stats.send_errors, "send failed");
                } else {
                    tracing::debug!(%addr, error = %e, "send failed");
                }
            }
        }
    }

    fn summary(&self, reason: StopReason) -> Summary {
        Summary {
            node_id: self.node.node_id(),
            reason,
            uptime: self.clock.elapsed(),
            ring_id: self.node.ring_id(),
            members: self.node.members().to_vec(),
            state: self.node.state(),
            engine: self.node.stats().clone(),
            driver: self.stats.clone(),
        }
    }
}
