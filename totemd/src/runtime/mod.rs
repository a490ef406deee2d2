//! The tokio driver: one task owns the [`Node`], the UDP socket and the timer.
//!
//! Each turn of the loop feeds one input (a datagram, an expired deadline), then drains every
//! output: first the events — a `Persist` is stored durably before anything after it is sent —
//! then the transmits; then it re-arms the one timer from [`Node::poll_timeout`]. It makes no
//! protocol decision. SIGINT, SIGTERM and `run_for` stop it cleanly; SIGHUP is logged and
//! otherwise ignored (no configuration reload yet), so a reload request never kills it.
//!
//! With `NOTIFY_SOCKET` set (systemd `Type=notify`), [`notify::Notifier`] sends `READY=1` once
//! the first regular configuration is installed, the ring as `STATUS=`, and `STOPPING=1`.
//!
//! Every datagram goes through the [`PacketCrypto`] built by [`crypto::setup`]: each transmit
//! is sealed once (one counter, one AEAD pass, whatever the number of peers) and each received
//! datagram is opened before the node sees it; one that does not open is counted and dropped.
//! The engine's `netmtu` is reduced by the crypto's overhead so a sealed packet still fits.

pub mod crypto;
pub mod notify;
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
use crate::crypto::PacketCrypto;
use crate::node::{Node, NodeError};
use crate::state::{StateDir, StateError};

pub use crypto::CryptoError;
pub use os::{seed, unix_seconds, Clock};
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
    /// Received datagrams that failed authentication (another key or cluster name, forged).
    pub open_auth_failed: u64,
    /// Received datagrams replayed or too old for the sender's replay window.
    pub open_replay: u64,
    /// Received datagrams with another format byte (crypto off or another AEAD on the sender).
    pub open_bad_version: u64,
    /// Received datagrams shorter than the crypto header and tag.
    pub open_too_short: u64,
    /// Authentic datagrams from a new sender beyond the crypto's bound on senders.
    pub open_too_many_senders: u64,
    /// Transmits that could not be sealed (counter exhausted): not sent.
    pub seal_errors: u64,
    /// Boot epochs stored while running (the packet counter entered a new epoch).
    pub epochs_stored: u64,
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
             datagrams sent {}, send errors {}, unroutable {}, recv errors {}, persists {}; \
             crypto dropped auth failed {} replay {} bad version {} too short {} too many senders {}, \
             seal errors {}, epochs stored {}",
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
            d.open_auth_failed,
            d.open_replay,
            d.open_bad_version,
            d.open_too_short,
            d.open_too_many_senders,
            d.seal_errors,
            d.epochs_stored,
        )
    }
}

/// Runs the daemon on a single-threaded tokio runtime until a signal or `run_for`.
///
/// `persisted` is what `state` held at start; every `Persist` the node asks for is stored in
/// `state` before the datagrams that follow it are sent. `crypto` comes from [`crypto::setup`]
/// (which stored its boot epoch already); a new epoch is stored before it is used.
pub fn run(
    config: &DaemonConfig,
    state: &mut StateDir,
    persisted: PersistedState,
    crypto: PacketCrypto,
) -> Result<Summary, RuntimeError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RuntimeError::Setup)?;
    runtime.block_on(drive(config, state, persisted, crypto))
}

/// The driver loop; see [`run`].
pub async fn drive(
    config: &DaemonConfig,
    state: &mut StateDir,
    persisted: PersistedState,
    crypto: PacketCrypto,
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
    let mut sighup = signal(SignalKind::hangup()).map_err(RuntimeError::Setup)?;

    let seed = seed();
    tracing::info!("engine seed {seed:#018x}");
    let clock = Clock::start();
    let mut totem = config.totem.clone();
    if crypto.overhead() > 0 {
        // A sealed packet must fit where a plaintext one of `netmtu` would.
        totem.netmtu = totem.netmtu.saturating_sub(crypto.overhead());
        tracing::info!(
            "netmtu {} for the engine: {} less {} bytes of crypto header and tag",
            totem.netmtu,
            config.totem.netmtu,
            crypto.overhead()
        );
    }
    let node = Node::new(config.node_id, totem, persisted, seed, clock.now())?;
    let epoch_stored = crypto.epoch();
    let mut driver = Driver {
        node,
        socket,
        peers: &config.peers,
        state,
        clock,
        crypto,
        epoch_stored,
        notifier: notify::Notifier::from_env(),
        ready: false,
        stats: DriverStats::default(),
    };
    let stop_at = config.run_for.map(|d| clock.after(d));
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];

    let reason = loop {
        driver.flush().await?;
        let timer = driver.node.poll_timeout().map(|at| clock.to_tokio(at));
        let input = tokio::select! {
            biased;
            _ = sigterm.recv() => Input::Stop(StopReason::Terminate),
            _ = sigint.recv() => Input::Stop(StopReason::Interrupt),
            _ = sighup.recv() => Input::Hangup,
            _ = sleep_until(stop_at) => Input::Stop(StopReason::RunFor),
            // The timer before the socket: a steady stream of datagrams must not starve it.
            _ = sleep_until(timer) => Input::Timeout,
            received = driver.socket.recv_from(&mut buf) => Input::Received(received),
        };
        match input {
            Input::Stop(reason) => break reason,
            Input::Hangup => {
                tracing::warn!("SIGHUP: reloading the configuration is not supported yet; nothing changed")
            }
            Input::Received(Ok((len, from))) => {
                tracing::trace!(%from, len, "datagram");
                // A fresh buffer of its own, so the crypto decrypts it in place.
                let datagram = Bytes::copy_from_slice(&buf[..len]);
                driver.receive(datagram, from);
            }
            Input::Received(Err(e)) => {
                driver.stats.recv_errors += 1;
                tracing::debug!(error = %e, "receive failed");
            }
            Input::Timeout => driver.node.handle_timeout(clock.now()),
        }
    };
    tracing::info!("stopping: {reason}; leaving the ring");
    if let Some(notifier) = &mut driver.notifier {
        notifier.stopping();
    }
    // A clean leave: the members fail us at once instead of waiting for a token timeout.
    driver.node.leave(clock.now());
    driver.flush().await?;
    Ok(driver.summary(reason))
}

/// One input chosen by the loop.
enum Input {
    Stop(StopReason),
    Hangup,
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
    crypto: PacketCrypto,
    /// The crypto epoch last stored in `state` (`None` with crypto off).
    epoch_stored: Option<u32>,
    /// The service manager's notification socket, if `NOTIFY_SOCKET` named one.
    notifier: Option<notify::Notifier>,
    /// Whether `READY=1` was sent.
    ready: bool,
    stats: DriverStats,
}

impl Driver<'_> {
    /// Drains every output: events first (storing `Persist`), then transmits.
    async fn flush(&mut self) -> Result<(), RuntimeError> {
        while let Some(event) = self.node.poll_event() {
            self.on_event(event)?;
        }
        while let Some(transmit) = self.node.poll_transmit() {
            self.send(transmit).await?;
        }
        Ok(())
    }

    /// Opens `datagram` and hands its payload to the node; a datagram that does not open is
    /// counted and dropped, never shown to the node.
    fn receive(&mut self, datagram: Bytes, from: SocketAddr) {
        match self.crypto.open(datagram) {
            Ok(opened) => self.node.handle_datagram(self.clock.now(), opened.payload),
            Err(e) => {
                if crypto::count_open_error(&mut self.stats, &e) {
                    tracing::warn!(%from, "datagram dropped: {e}");
                } else {
                    tracing::debug!(%from, "datagram dropped: {e}");
                }
            }
        }
    }

    /// Seals `payload` once for all its destinations; `None` (counted) if it cannot be. A new
    /// epoch is stored before the packet that entered it is sent.
    fn seal(&mut self, payload: Bytes) -> Result<Option<Bytes>, StateError> {
        let sealed = match self.crypto.seal(payload) {
            Ok(sealed) => sealed,
            Err(e) => {
                self.stats.seal_errors += 1;
                if self.stats.seal_errors.is_power_of_two() {
                    tracing::error!(failures = self.stats.seal_errors, "packet not sent: {e}");
                }
                return Ok(None);
            }
        };
        if let Some(epoch) = self.crypto.epoch().filter(|&e| Some(e) != self.epoch_stored) {
            // The next boot must start above every epoch whose counters this boot used.
            self.state.store_boot_epoch(epoch)?;
            self.epoch_stored = Some(epoch);
            self.stats.epochs_stored += 1;
            tracing::info!("crypto entered boot epoch {epoch}; stored");
        }
        Ok(Some(sealed))
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
                tracing::info!("new ring {} members {}", c.ring_id, fmt_members(&c.members));
                if let Some(notifier) = &mut self.notifier {
                    let status = format!("ring {} members {}", c.ring_id, fmt_members(&c.members));
                    if self.ready {
                        notifier.status(&status);
                    } else {
                        notifier.ready(&status);
                        self.ready = true;
                    }
                }
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

    async fn send(&mut self, transmit: Transmit) -> Result<(), StateError> {
        match transmit.dest {
            // udpu: "every other node" is one unicast to each peer, all of the same sealed bytes.
            Destination::All => {
                if self.peers.is_empty() {
                    return Ok(());
                }
                let Some(sealed) = self.seal(transmit.payload)? else { return Ok(()) };
                for (_, &addr) in self.peers.iter() {
                    Self::send_to(&self.socket, &mut self.stats, &sealed, addr).await;
                }
            }
            Destination::Node(id) => match self.peers.get(id) {
                Some(addr) => {
                    let Some(sealed) = self.seal(transmit.payload)? else { return Ok(()) };
                    Self::send_to(&self.socket, &mut self.stats, &sealed, addr).await
                }
                None => {
                    self.stats.unroutable += 1;
                    tracing::warn!(node = %id, "no address for node: datagram dropped");
                }
            },
        }
        Ok(())
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
