//! The tokio driver: one task owns the [`Node`], the UDP socket and the timer.
//!
//! Each turn of the loop feeds one input (a datagram, an expired deadline), then drains every
//! output: first the events — a `Persist` is stored durably before anything after it is sent —
//! then the transmits; then it re-arms the one timer from [`Node::poll_timeout`]. It makes no
//! protocol decision. SIGINT, SIGTERM and `run_for` stop it cleanly; SIGHUP (or `totemctl
//! reload`) reads the configuration file again and applies what may change at run time
//! ([`crate::reload`]).
//!
//! With `NOTIFY_SOCKET` set (systemd `Type=notify`), [`notify::Notifier`] sends `READY=1` once
//! the first regular configuration is installed, the ring as `STATUS=`, and `STOPPING=1`.
//!
//! Every datagram goes through the [`PacketCrypto`] built by [`crypto::setup`]: each transmit
//! is sealed once (one counter, one AEAD pass, whatever the number of peers) and each received
//! datagram is opened before the node sees it; one that does not open is counted and dropped.
//! The engine's `netmtu` is reduced by the crypto's overhead so a sealed packet still fits.
//!
//! Below the crypto sits the multi-link layer [`Links`]: one UDP socket per local link
//! (`ringN_addr`), a heartbeat on every link to every peer, and each sealed packet framed and
//! sent on the lowest link up to its destination. Received: the link layer first, then the
//! crypto, then the node. The loop sleeps until the earlier of the node's and the links'
//! deadlines; link up/down changes are logged at info.
//!
//! The driver owns the confdb store (`api::Confdb`): the configuration file's keys, reloaded
//! with it, and the `runtime.` keys it updates on each new ring and link change; confdb
//! notifications go to their trackers at the end of every flush of outputs.

pub mod api;
pub mod crypto;
pub mod fence_agent;
mod multicast;
pub mod notify;
mod os;
mod segments;
mod transport;
mod unreachable;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use cpg::service::ClientId;
use quorum::fencing::FenceEvent;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use totem::{Destination, Event, NodeId, PersistedState, RingId, SrpState, Transmit};

use crate::config::{fmt_members, DaemonConfig};
use crate::crypto::PacketCrypto;
use crate::links::{Datagram, LinkEvent, LinkId, LinkStatus, LinkTransmit, Links, LinksError};
use crate::node::{Node, NodeError};
use crate::state::{StateDir, StateError};
use api::{ClientInput, IpcServer, IpcSetupError};

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
    /// The link layer refused the nodes' link addresses or options.
    #[error("links: {0}")]
    Links(#[from] LinksError),
    /// A ring seq could not be stored: the daemon stops rather than send without it.
    #[error(transparent)]
    State(#[from] StateError),
    /// The local API's socket could not be set up.
    #[error(transparent)]
    Ipc(#[from] IpcSetupError),
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
    /// A client asked for it (`totemctl shutdown`).
    Shutdown,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Terminate => "SIGTERM",
            StopReason::Interrupt => "SIGINT",
            StopReason::RunFor => "run-for elapsed",
            StopReason::Shutdown => "shutdown requested",
        })
    }
}

/// The driver's own counters (the engine keeps its own in [`totem::Stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Bytes of the datagrams handed to the kernel.
    pub bytes_sent: u64,
    /// Bytes of the datagrams received.
    pub bytes_received: u64,
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
    /// Every link to every peer at the end.
    pub links: Vec<LinkStatus>,
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
        )?;
        f.write_str("; links")?;
        if self.links.is_empty() {
            f.write_str(" none")?;
        }
        for (i, l) in self.links.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let state = if l.up { "up" } else { "down" };
            write!(
                f,
                "{sep}node {} link {} {state} pings {} pongs {} downs {}",
                l.node, l.link, l.pings_sent, l.pongs_received, l.down_count
            )?;
        }
        Ok(())
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
    let mut sockets = Vec::new();
    for (link, addr) in config.local_links() {
        let bind_err = |source| RuntimeError::Bind { addr, source };
        let bound = transport::bind(addr).map_err(bind_err)?;
        let socket = UdpSocket::from_std(bound.socket).map_err(bind_err)?;
        tracing::info!(
            "link {link}: listening on udp {addr} (receive buffer {} bytes, send buffer {} bytes)",
            bound.recv_buffer,
            bound.send_buffer
        );
        if let Err(e) = segments::enable_gro(&socket) {
            tracing::debug!("link {link}: UDP_GRO not enabled ({e}): datagrams are read one by one");
        }
        if let Err(e) = unreachable::enable(&socket) {
            tracing::warn!(
                "link {link}: ICMP errors not enabled ({e}): a killed peer is noticed only by timeouts"
            );
        }
        sockets.push((link, socket));
    }
    let multicast = multicast::setup(config, &mut sockets)?;
    let links = Links::new(config.node_id, config.link_config(), config.link_table())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(RuntimeError::Setup)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RuntimeError::Setup)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(RuntimeError::Setup)?;

    let seed = seed();
    tracing::info!("engine seed {seed:#018x}");
    let clock = Clock::start();
    let mut totem = config.totem.clone();
    // The link layer's data frame header.
    totem.netmtu = totem.netmtu.saturating_sub(LINK_FRAME_OVERHEAD);
    let framed_max = PACKET_MAX.saturating_sub(LINK_FRAME_OVERHEAD + crypto.overhead());
    if totem.packet_max == 0 && totem.netmtu < framed_max {
        // The link layer cuts longer packets into datagrams of `netmtu` and joins them.
        totem.packet_max = framed_max;
    }
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
    let mut node = Node::new(config.node_id, totem, persisted, seed, clock.now())?;
    if let Some(quorum) = &config.cluster.quorum {
        node.enable_quorum(quorum)?;
        tracing::info!(
            "quorum: votequorum over {} nodes (expected votes {}), two_node {}, wait_for_all {}, \
             last_man_standing {}, auto_tie_breaker {}",
            quorum.nodelist.len(),
            quorum.expected_votes.map_or_else(|| "from the nodelist".to_string(), |v| v.to_string()),
            quorum.two_node,
            quorum.wait_for_all.unwrap_or(quorum.two_node),
            quorum.last_man_standing,
            quorum.auto_tie_breaker
        );
    }
    if let Some(fencing) = &config.cluster.fencing {
        node.enable_fencing(clock.now(), fencing.clone())
            .map_err(|e| NodeError::Engine(format!("fencing: {e}")))?;
        tracing::info!(
            "fencing: {} devices, {} nodes, post_join_delay {} s",
            fencing.devices.len(),
            fencing.nodes.len(),
            fencing.post_join_delay.as_secs()
        );
    }
    let socket_path = config.ipc_socket(std::env::var_os(ipc::SOCKET_ENV).map(PathBuf::from));
    let session_config = ipc::SessionConfig::new(
        config.node_id.0,
        u32::try_from(node.cpg().config().message_max).unwrap_or(u32::MAX),
    );
    let access = api::Access::from_config(&config.cluster.uidgid);
    let confdb = api::Confdb::new(config.reload.as_ref().map(|r| &r.parsed), &access);
    let ipc = IpcServer::bind(&socket_path, access, session_config)?;
    tracing::info!("local API on {}", ipc.path().display());
    if let Some(addr) = config.cluster.metrics_listen {
        api::http::spawn(addr, ipc.input_sender())?;
    }
    let epoch_stored = crypto.epoch();
    let mut driver = Driver {
        node,
        ipc,
        sockets,
        links,
        peers: config.link_table().into_keys().filter(|&id| id != config.node_id).collect(),
        state,
        clock,
        crypto,
        epoch_stored,
        notifier: notify::Notifier::from_env(),
        reload_source: config.reload.clone(),
        quorum_trackers: BTreeSet::new(),
        fence_done: None,
        confdb,
        names: config.cluster.nodes.iter().filter_map(|n| Some((n.nodeid, n.name.clone()?))).collect(),
        ready: false,
        multicast,
        stats: DriverStats::default(),
        shutdown_requested: false,
        refused: false,
        held: BTreeSet::new(),
        outbox: Vec::new(),
        no_segmentation: BTreeSet::new(),
    };
    let stop_at = config.run_for.map(|d| clock.after(d));
    let (fence_done, mut fence_results) = tokio::sync::mpsc::channel(16);
    driver.fence_done = Some(fence_done);
    let mut rx = segments::RecvBuf::new();

    // Deadlines already due handled in a row without waiting (see below).
    let mut due_in_a_row = 0;
    let reason = loop {
        driver.flush().await?;
        let deadline = match (driver.node.poll_timeout(), driver.links.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A deadline already due (a one-node ring releasing its token at once) is handled now:
        // tokio's timer would round it up to its next millisecond. A few in a row at most, so
        // the sockets and signals are still polled.
        let now = clock.now();
        if deadline.is_some_and(|at| at <= now) && due_in_a_row < DUE_IN_A_ROW_MAX {
            due_in_a_row += 1;
            driver.links.handle_timeout(now);
            driver.node.handle_timeout(now);
            continue;
        }
        due_in_a_row = 0;
        let timer = deadline.map(|at| clock.to_tokio(at));
        let retry = (!driver.held.is_empty()).then(|| tokio::time::Instant::now() + HELD_RETRY);
        let (listener, client_input) = driver.ipc.io();
        let input = tokio::select! {
            biased;
            _ = sigterm.recv() => Input::Stop(StopReason::Terminate),
            _ = sigint.recv() => Input::Stop(StopReason::Interrupt),
            _ = sighup.recv() => Input::Hangup,
            _ = sleep_until(stop_at) => Input::Stop(StopReason::RunFor),
            // The timer before the socket: a steady stream of datagrams must not starve it.
            _ = sleep_until(timer) => Input::Timeout,
            // A held message waits for room that nothing else may announce (a slow reader's
            // writer making progress): look again soon.
            _ = sleep_until(retry) => Input::Retry,
            received = recv_any(&driver.sockets, rx.space(RECV_BUFFER_BYTES)) => Input::Received(received),
            accepted = listener.accept() => Input::Accepted(accepted.map(|(stream, _)| stream)),
            Some(input) = client_input.recv() => Input::Client(input),
            Some(outcome) = fence_results.recv() => Input::FenceAgent(outcome),
        };
        match input {
            Input::Stop(reason) => break reason,
            Input::Hangup => {
                tracing::info!("SIGHUP: reloading the configuration");
                if let Err(e) = driver.reload() {
                    tracing::error!("reload failed, nothing changed: {e}");
                }
            }
            Input::Received(received) => {
                if !driver.ipc.clients.is_empty() && driver.node.send_queue_empty() {
                    // What the clients sent meanwhile is taken before the packet: a token then
                    // carries those messages along instead of leaving them for its next visit
                    // (a whole rotation later). Their readers run during the yield. With messages
                    // queued already the visit has work and the yield would only cost time.
                    tokio::task::yield_now().await;
                    driver.take_client_input();
                }
                driver.on_received(received, &mut rx);
                // What else is readable already joins this turn: one flush per batch.
                driver.receive_ready(&mut rx);
            }
            Input::Retry => {}
            Input::Timeout => {
                let now = clock.now();
                driver.links.handle_timeout(now);
                driver.node.handle_timeout(now);
            }
            Input::FenceAgent(outcome) => {
                if outcome.success {
                    tracing::info!("fencing: {}", outcome.detail);
                } else {
                    tracing::warn!("fencing: {}", outcome.detail);
                }
                let op = quorum::fencing::OpId(outcome.op);
                driver.node.fence_agent_result(clock.now(), op, outcome.success, outcome.detail);
            }
            Input::Accepted(Ok(stream)) => {
                if let Some((client, pid)) = driver.ipc.admit(stream) {
                    driver.node.client_connect(client, pid);
                }
            }
            Input::Accepted(Err(e)) => tracing::warn!("IPC accept failed: {e}"),
            Input::Client(input) => {
                driver.on_client_input(input);
                driver.take_client_input();
            }
        }
        if driver.shutdown_requested {
            break StopReason::Shutdown;
        }
    };
    tracing::info!("stopping: {reason}; leaving the ring");
    if let Some(notifier) = &mut driver.notifier {
        notifier.stopping();
    }
    // A clean leave: the members fail us at once instead of waiting for a token timeout.
    driver.node.leave(clock.now());
    driver.flush().await?;
    // The last answers (a shutdown's `Ok`) reach their clients before the sockets close.
    driver.ipc.drain(Duration::from_millis(500)).await;
    Ok(driver.summary(reason))
}

/// One input chosen by the loop.
enum Input {
    Stop(StopReason),
    Hangup,
    Received(io::Result<(LinkId, segments::Received)>),
    Timeout,
    Retry,
    Accepted(io::Result<tokio::net::UnixStream>),
    Client(ClientInput),
    FenceAgent(fence_agent::AgentOutcome),
}

/// Inputs of one kind already waiting that a turn of the loop takes before it flushes the
/// outputs: one flush, one timer and one poll of every source per batch, not per input.
const INPUT_BATCH: usize = 64;

/// Due deadlines the loop handles in a row before it polls its inputs again.
const DUE_IN_A_ROW_MAX: u32 = 8;

/// How often held messages are tried again when nothing else happens.
const HELD_RETRY: Duration = Duration::from_millis(1);

/// Bytes the link layer puts in front of every Totem packet (its data frame kind byte).
const LINK_FRAME_OVERHEAD: usize = 1;

/// Largest Totem packet on a ring without loss (the engine's `packet_max`), sealed and framed:
/// the link layer sends it as fragments of `netmtu`. Per byte, fewer and larger packets cost
/// the engine less (corosync hands knet packets of up to 64 KiB); a packet is lost with any
/// one of its fragments, so the engine goes back to `netmtu` packets when it sees loss.
const PACKET_MAX: usize = 32 * 1024;

/// Receives one datagram (or train of them, [`segments`]) from whichever link's socket has
/// one first.
async fn recv_any(
    sockets: &[(LinkId, UdpSocket)],
    buf: &mut [u8],
) -> io::Result<(LinkId, segments::Received)> {
    use std::task::Poll;
    std::future::poll_fn(|cx| {
        for (link, socket) in sockets {
            loop {
                match socket.poll_recv_ready(cx) {
                    Poll::Ready(Ok(())) => match segments::try_recv(socket, buf) {
                        Ok(received) => return Poll::Ready(Ok((*link, received))),
                        // Readiness was stale and is cleared: ask again (registers the waker).
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Poll::Ready(Err(e)),
                    },
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
        }
        Poll::Pending
    })
    .await
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
    /// The local API: its socket and clients.
    ipc: IpcServer,
    /// One socket per local link, by link number; with `transport: udp` link 0 has a second
    /// one, joined to the multicast group, after the first (which sends).
    sockets: Vec<(LinkId, UdpSocket)>,
    links: Links,
    /// The nodes the links reach (every node but this one).
    peers: BTreeSet<NodeId>,
    state: &'a mut StateDir,
    clock: Clock,
    crypto: PacketCrypto,
    /// The crypto epoch last stored in `state` (`None` with crypto off).
    epoch_stored: Option<u32>,
    /// The service manager's notification socket, if `NOTIFY_SOCKET` named one.
    notifier: Option<notify::Notifier>,
    /// Whether `READY=1` was sent.
    ready: bool,
    /// The configuration file, to reload it.
    reload_source: Option<crate::reload::ReloadSource>,
    /// Where fence agent runs report.
    fence_done: Option<tokio::sync::mpsc::Sender<fence_agent::AgentOutcome>>,
    /// Clients tracking quorum changes.
    quorum_trackers: BTreeSet<ClientId>,
    /// The key-value store (cmap): configuration, `runtime.` keys, counters.
    confdb: api::Confdb,
    /// Node names from the nodelist (quorum member table).
    names: std::collections::BTreeMap<NodeId, String>,
    /// `transport: udp`: where packets for every node go, once.
    multicast: Option<multicast::Multicast>,
    stats: DriverStats,
    /// A client asked the daemon to stop (`totemctl shutdown`).
    shutdown_requested: bool,
    /// A socket reported ICMP port unreachable: its error queue names the peers.
    refused: bool,
    /// Clients with a queued message the daemon could not take yet (see [`Driver::serve`]).
    held: BTreeSet<ClientId>,
    /// Datagrams of this flush, sent together at its end (trains in one call, [`segments`]).
    outbox: Vec<LinkTransmit>,
    /// Links whose socket refused segmentation offload: their datagrams go one by one.
    no_segmentation: BTreeSet<LinkId>,
}

impl Driver<'_> {
    /// Drains every output: events first (storing `Persist`), then transmits; then the link
    /// layer's events and heartbeats.
    async fn flush(&mut self) -> Result<(), RuntimeError> {
        loop {
            self.report_unreachable();
            self.retry_held();
            while let Some(event) = self.node.poll_event() {
                self.on_event(event)?;
            }
            while let Some(transmit) = self.node.poll_transmit() {
                self.send(transmit)?;
            }
            self.send_outbox().await;
            if !self.flush_clients() && !self.refused {
                break;
            }
        }
        while let Some(run) = self.node.poll_fence_action() {
            tracing::warn!(
                "fencing node {}: running {} (device {}, method {})",
                run.node,
                run.agent,
                run.device,
                run.method
            );
            if let Some(done) = &self.fence_done {
                // Agents honour `delay=` themselves (fence-agents' fencing.py): it is on their stdin.
                fence_agent::spawn(run.op.0, run.agent, run.stdin, run.timeout, Duration::ZERO, done.clone());
            }
        }
        let mut fencing_changed = false;
        while let Some(event) = self.node.poll_fence_event() {
            self.confdb.mark_live_dirty();
            fencing_changed |= !matches!(event, FenceEvent::AttemptFailed { .. } | FenceEvent::Owner { .. });
            tracing::warn!("fencing: {event:?}");
        }
        if fencing_changed {
            self.notify_quorum_trackers();
        }
        while let Some(q) = self.node.poll_quorum_event() {
            let members = fmt_members(&q.members);
            self.confdb.mark_live_dirty();
            if q.quorate {
                tracing::info!("quorum: quorate, ring {} members {members}", q.ring_id);
            } else {
                tracing::warn!(
                    "quorum: NOT quorate (activity blocked), ring {} members {members}",
                    q.ring_id
                );
            }
            for id in &self.quorum_trackers {
                if let Some(client) = self.ipc.clients.get_mut(id) {
                    let event = api::quorum_to_wire(q.quorate, q.ring_id, &q.members, &self.node);
                    let _ = client.session.send_event(event);
                    client.flush();
                }
            }
        }
        while let Some(event) = self.links.poll_event() {
            match event {
                LinkEvent::Up { node, link } => {
                    tracing::info!("link {link} to node {node} up");
                    self.confdb.link(node, link.0, true);
                }
                LinkEvent::Down { node, link } => {
                    tracing::info!("link {link} to node {node} down");
                    self.confdb.link(node, link.0, false);
                }
            }
        }
        self.refresh_live_if_dirty();
        self.flush_confdb();
        while let Some(transmit) = self.links.poll_transmit() {
            self.send_link(transmit).await;
        }
        Ok(())
    }

    /// One read (a datagram or a train of them, or a failed read) from link `link`'s socket
    /// into `buf`.
    fn on_received(
        &mut self,
        received: io::Result<(LinkId, segments::Received)>,
        rx: &mut segments::RecvBuf,
    ) {
        match received {
            Ok((link, r)) => {
                tracing::trace!(%link, from = %r.from, len = r.len, segment = ?r.segment, "datagram");
                self.stats.bytes_received += r.len as u64;
                for datagram in segments::datagrams(rx.take(r.len), r.segment) {
                    self.receive(link, datagram, r.from);
                }
            }
            Err(e) if unreachable::is_refused(&e) => self.refused = true,
            Err(e) => {
                self.stats.recv_errors += 1;
                tracing::debug!(error = %e, "receive failed");
            }
        }
    }

    /// Reads the datagrams every socket already holds, up to [`INPUT_BATCH`] rounds.
    fn receive_ready(&mut self, rx: &mut segments::RecvBuf) {
        for _ in 1..INPUT_BATCH {
            let mut any = false;
            for i in 0..self.sockets.len() {
                let (link, socket) = &self.sockets[i];
                let link = *link;
                let received = match segments::try_recv(socket, rx.space(RECV_BUFFER_BYTES)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    received => received.map(|r| (link, r)),
                };
                any = true;
                self.on_received(received, rx);
            }
            if !any {
                break;
            }
        }
    }

    /// The inputs of the clients' readers already waiting, up to [`INPUT_BATCH`].
    fn take_client_input(&mut self) {
        for _ in 0..INPUT_BATCH {
            let Ok(input) = self.ipc.io().1.try_recv() else { break };
            self.on_client_input(input);
        }
    }

    /// One input from the clients' readers (or the metrics listener).
    fn on_client_input(&mut self, input: ClientInput) {
        match input {
            ClientInput::Bytes(client, bytes) => self.client_bytes(client, bytes),
            ClientInput::Closed(client) => self.drop_client(client, "closed its connection"),
            ClientInput::Metrics(reply) => {
                let _ = reply.send(self.metrics_text());
            }
        }
    }

    /// Hands `datagram` to the link layer, opens the Totem packet it carries and hands that to
    /// the node; a datagram that does not open is counted and dropped, never shown to the node.
    fn receive(&mut self, link: LinkId, datagram: Bytes, from: SocketAddr) {
        if self.multicast.is_some_and(|m| m.is_own(from)) {
            return; // Our own multicast, looped back by the interface.
        }
        let Some(packet) = self.links.handle_datagram(self.clock.now(), link, from, datagram) else { return };
        match self.crypto.open(packet) {
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
                self.confdb.ring(c.ring_id, &c.members);
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

    /// Seals the packet once, then the link layer frames it for each destination (udpu: "every
    /// other node" is one unicast to each peer) on the lowest link up to that peer; with
    /// `transport: udp` "every other node" is one datagram to the group ([`multicast`]).
    fn send(&mut self, transmit: Transmit) -> Result<(), StateError> {
        match transmit.dest {
            Destination::All if self.peers.is_empty() => return Ok(()),
            Destination::Node(id) if !self.peers.contains(&id) => {
                self.stats.unroutable += 1;
                tracing::warn!(node = %id, "no address for node: datagram dropped");
                return Ok(());
            }
            _ => {}
        }
        let Some(sealed) = self.seal(transmit.payload)? else { return Ok(()) };
        if let (Destination::All, Some(m)) = (&transmit.dest, self.multicast) {
            self.links.send_multicast(m.group(), sealed, &mut self.outbox);
            return Ok(());
        }
        self.links.send(transmit.dest, sealed, &mut self.outbox);
        Ok(())
    }

    /// Reads the error queues after an ICMP port unreachable and fails the peers it names.
    fn report_unreachable(&mut self) {
        if !std::mem::take(&mut self.refused) {
            return;
        }
        let now = self.clock.now();
        for (link, socket) in &self.sockets {
            for addr in unreachable::drain(socket) {
                let Some(node) = self.links.peer_at(*link, addr) else { continue };
                // Pings to a node that is gone keep drawing answers: tell only of members.
                if self.node.members().contains(&node) {
                    tracing::info!(
                        "link {link}: node {node} answered port unreachable ({addr}): its daemon is gone"
                    );
                } else {
                    tracing::debug!(%link, %node, %addr, "port unreachable from a node outside the ring");
                }
                self.node.handle_peer_unreachable(now, node);
            }
        }
    }

    /// Sends the datagrams of this flush in order: each train of one size for one peer in one
    /// call where the socket can segment ([`segments`]), the others one by one.
    async fn send_outbox(&mut self) {
        let outbox = std::mem::take(&mut self.outbox);
        let mut rest = &outbox[..];
        while !rest.is_empty() {
            let (link, addr, _) = rest[0];
            let n = if self.no_segmentation.contains(&link) { 1 } else { segments::train_len(rest) };
            let (train, after) = rest.split_at(n);
            rest = after;
            if n == 1 {
                self.send_link(train[0].clone()).await;
                continue;
            }
            let Some((_, socket)) = self.sockets.iter().find(|(l, _)| *l == link) else {
                self.stats.unroutable += n as u64;
                tracing::warn!(%link, %addr, "no local socket for link: datagrams dropped");
                continue;
            };
            let datagrams: Vec<&Datagram> = train.iter().map(|(_, _, d)| d).collect();
            match segments::send_train(socket, &datagrams, addr).await {
                Ok(bytes) => {
                    self.stats.datagrams_sent += n as u64;
                    self.stats.bytes_sent += bytes as u64;
                }
                Err(e) => {
                    if segments::is_unsupported(&e) {
                        tracing::info!(%link, "UDP segmentation offload refused ({e}): datagrams go one by one");
                        self.no_segmentation.insert(link);
                    } else if unreachable::is_refused(&e) {
                        self.refused = true;
                    }
                    // Sent one by one: the train was not sent (a pending ICMP error fails it whole).
                    for datagram in train {
                        self.send_link(datagram.clone()).await;
                    }
                }
            }
        }
        // The buffer is kept for the next flush.
        self.outbox = outbox;
        self.outbox.clear();
    }

    /// Sends one link-layer datagram on its link's socket.
    async fn send_link(&mut self, (link, addr, bytes): LinkTransmit) {
        match self.sockets.iter().find(|(l, _)| *l == link) {
            Some((_, socket)) => {
                // A pending ICMP error fails the next send once, and that datagram was not
                // sent: note the error queue has news, and send it again.
                if Self::send_to(socket, &mut self.stats, &bytes, addr).await {
                    self.refused = true;
                    Self::send_to(socket, &mut self.stats, &bytes, addr).await;
                }
            }
            None => {
                self.stats.unroutable += 1;
                tracing::warn!(%link, %addr, "no local socket for link: datagram dropped");
            }
        }
    }

    /// Sends one datagram; true when it failed on a pending ICMP port unreachable (not sent).
    async fn send_to(
        socket: &UdpSocket,
        stats: &mut DriverStats,
        datagram: &Datagram,
        addr: SocketAddr,
    ) -> bool {
        match segments::send_datagram(socket, datagram, addr).await {
            Ok(n) => {
                stats.datagrams_sent += 1;
                stats.bytes_sent += n as u64;
                false
            }
            Err(e) if unreachable::is_refused(&e) => true,
            Err(e) => {
                stats.send_errors += 1;
                // Warn on the 1st, 2nd, 4th, 8th... failure: visible, but no flood when a peer is unreachable.
                if stats.send_errors.is_power_of_two() {
                    tracing::warn!(%addr, error = %e, failures = stats.send_errors, "send failed");
                } else {
                    tracing::debug!(%addr, error = %e, "send failed");
                }
                false
            }
        }
    }

    /// Bytes from a client: requests are applied to the node and answered; a client that
    /// breaks the protocol is told why and dropped.
    fn client_bytes(&mut self, id: ClientId, bytes: Bytes) {
        let Some(client) = self.ipc.clients.get_mut(&id) else { return };
        client.session.handle_chunk(bytes);
        if client.held.is_some() {
            // Behind a held message: read on (to see a close), answer nothing yet.
            if client.session.pending_input() > api::CLIENT_INPUT_HELD_MAX {
                let pid = client.pid;
                tracing::warn!(
                    client = id.0,
                    pid,
                    "IPC client dropped: it sent more than {} bytes behind a held message",
                    api::CLIENT_INPUT_HELD_MAX
                );
                self.drop_client(id, "sent too much while held");
            }
            return;
        }
        self.serve(id);
    }

    /// Tries the held message of each client holding one again (the daemon may take it now),
    /// then serves what those clients sent after it.
    fn retry_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        for id in std::mem::take(&mut self.held) {
            self.serve(id);
        }
    }

    /// Applies and answers the client's requests: its held one first, then each whole frame
    /// it sent, until one must be held again.
    fn serve(&mut self, id: ClientId) {
        let now = self.clock.now();
        loop {
            let Some(client) = self.ipc.clients.get_mut(&id) else { return };
            let input = match client.held.take() {
                Some(request) => Ok(Some(ipc::SessionInput::Request(request))),
                None => client.session.poll_input(),
            };
            match input {
                Ok(None) => break,
                Ok(Some(ipc::SessionInput::Opened { client_name, protocol_version })) => {
                    tracing::debug!(client = id.0, pid = client.pid, uid = client.uid, %client_name, protocol_version, "IPC client said hello");
                }
                Ok(Some(ipc::SessionInput::Request(request))) => {
                    let Some(body) = request.body else { continue };
                    if let ipc::RequestBody::QuorumTrack(_) = body {
                        let response = match self.quorum_state_event() {
                            Some(event) => {
                                self.quorum_trackers.insert(id);
                                if let Some(client) = self.ipc.clients.get_mut(&id) {
                                    client.session.send_response(ipc::Response::ok(request.id));
                                    let _ = client.session.send_event(event);
                                }
                                continue;
                            }
                            None => ipc::Response::error(
                                request.id,
                                ipc::ErrorCode::NotSupported,
                                "no quorum provider is configured (quorum { provider: corosync_votequorum })",
                            ),
                        };
                        if let Some(client) = self.ipc.clients.get_mut(&id) {
                            client.session.send_response(response);
                        }
                        continue;
                    }
                    if self.admin_request(id, request.id, &body) {
                        continue;
                    }
                    if api::Confdb::reads(&body) {
                        self.refresh_confdb();
                    }
                    let Some(client) = self.ipc.clients.get_mut(&id) else { return };
                    if let Some(answer) = self.confdb.handle(id, client.uid, client.gid, &body) {
                        let response = match answer {
                            Ok(result) => ipc::Response::new(request.id, result),
                            Err((code, message)) => ipc::Response::error(request.id, code, message),
                        };
                        client.session.send_response(response);
                        continue;
                    }
                    if let ipc::RequestBody::Reload(_) = body {
                        tracing::info!(client = id.0, "reload requested over the local API");
                        let response = match self.reload() {
                            Ok(reply) => ipc::Response::new(request.id, ipc::ResponseResult::Reload(reply)),
                            Err(e) => ipc::Response::error(request.id, ipc::ErrorCode::InvalidArgument, e),
                        };
                        if let Some(client) = self.ipc.clients.get_mut(&id) {
                            client.session.send_response(response);
                        }
                        continue;
                    }
                    let queued = matches!(&body, ipc::RequestBody::CpgMcast(m) if m.queued);
                    if queued && self.node.cpg().queue_bytes() >= api::POSTED_QUEUE_MAX {
                        // Taken once the engine has drained the queue: held, in order.
                        return self.hold(id, ipc::Request { id: request.id, body: Some(body) });
                    }
                    let Some(client) = self.ipc.clients.get(&id) else { return };
                    let links = self.links.status();
                    let backlog = match &body {
                        ipc::RequestBody::CpgMcast(r) => self.group_backlog(id, &r.group),
                        _ => client.backlog(),
                    };
                    let source = api::StatusSource {
                        links: &links,
                        backlog,
                        backlog_soft: api::CLIENT_BACKLOG_SOFT,
                        names: &self.names,
                    };
                    // A queued message the daemon cannot take now is held, not refused.
                    let held = queued.then(|| body.clone());
                    let response = api::handle_request(&mut self.node, now, id, request.id, body, &source);
                    let Some(client) = self.ipc.clients.get_mut(&id) else { return };
                    if let (Some(body), Some(code)) = (held, response.error_code()) {
                        if matches!(code, ipc::ErrorCode::TryAgain | ipc::ErrorCode::FencingInProgress) {
                            return self.hold(id, ipc::Request { id: request.id, body: Some(body) });
                        }
                    }
                    client.session.send_response(response);
                }
                Err(e) => {
                    let pid = client.pid;
                    tracing::warn!(client = id.0, pid, "IPC client dropped: {e}");
                    return self.drop_client(id, "broke the protocol");
                }
            }
        }
    }

    /// Keeps `request` as the client's held message: nothing it sent later is served before
    /// it, and [`Driver::retry_held`] tries it again.
    fn hold(&mut self, id: ClientId, request: ipc::Request) {
        if let Some(client) = self.ipc.clients.get_mut(&id) {
            client.held = Some(request);
            self.held.insert(id);
        }
    }

    /// Reads the configuration file again and applies what may change at run time (see
    /// [`crate::reload`]); logs and returns what changed. A file with errors changes nothing.
    fn reload(&mut self) -> Result<ipc::ReloadReply, String> {
        use crate::reload::ReloadPlan;
        let Some(source) = &self.reload_source else {
            return Err("started without a configuration file: nothing to reload".into());
        };
        let file =
            crate::config::FileConfig::read(&source.path, &source.overrides).map_err(|e| e.to_string())?;
        let mut plan = ReloadPlan::new(&source.parsed, &file);
        if let Some(totem) = plan.totem.take() {
            self.node.set_totem_timing(totem).map_err(|e| format!("totem options: {e}"))?;
        }
        if plan.logging_levels {
            let subsys = crate::logging::subsys_debug(&file.parsed);
            match crate::logging::set_levels(&file.settings.logging, &subsys) {
                Ok(warnings) => warnings.iter().for_each(|w| tracing::warn!("{w}")),
                Err(e) => plan.not_applied_logging(&e),
            }
        }
        let running = plan.running(&source.parsed, &file.parsed);
        if plan.is_empty() {
            tracing::info!("reload: {} unchanged", source.path.display());
        }
        for change in &plan.applied {
            tracing::info!("reload: applied {change}");
        }
        for change in &plan.not_applied {
            tracing::warn!("reload: not applied, needs a restart: {change}");
        }
        if plan.uidgid {
            self.apply_uidgid(&file.settings.uidgid);
        }
        self.confdb.reload(&running);
        if let Some(source) = &mut self.reload_source {
            source.parsed = running;
        }
        Ok(ipc::ReloadReply { applied: plan.applied, not_applied: plan.not_applied })
    }

    /// The client is gone (or dropped): its groups see it leave with reason `procdown`.
    fn drop_client(&mut self, id: ClientId, why: &str) {
        if let Some(client) = self.ipc.clients.get(&id) {
            tracing::debug!(client = id.0, pid = client.pid, "IPC client {why}");
        }
        self.ipc.drop_client(id);
        self.quorum_trackers.remove(&id);
        self.confdb.drop_client(id);
        self.node.client_disconnect(self.clock.now(), id);
    }

    /// Gives each local client its events and writes what its session queued. A client whose
    /// unwritten bytes pass the bound is not reading: it is disconnected.
    /// Returns whether it disconnected any (their leaves may have queued more output).
    /// The current quorum and fencing state as a tracker's event; `None` without a provider.
    fn quorum_state_event(&self) -> Option<ipc::Event> {
        let s = self.node.quorum()?.status();
        let ring = s.ring_id.unwrap_or(self.node.ring_id());
        let members: Vec<NodeId> = s.members.iter().map(|m| m.node_id).collect();
        Some(api::quorum_to_wire(s.quorate, ring, &members, &self.node))
    }

    /// Sends every quorum tracker the current state (the fencing state changed).
    fn notify_quorum_trackers(&mut self) {
        let Some(event) = self.quorum_state_event() else { return };
        for id in &self.quorum_trackers {
            if let Some(client) = self.ipc.clients.get_mut(id) {
                let _ = client.session.send_event(event.clone());
                client.flush();
            }
        }
    }

    /// The largest backlog of `sender` and of the local members of `group`: past
    /// [`api::CLIENT_BACKLOG_SOFT`], sends to the group wait for the slowest reader.
    fn group_backlog(&self, sender: ClientId, group: &Bytes) -> usize {
        let own = self.ipc.clients.get(&sender).map_or(0, api::Client::backlog);
        let Ok(group) = cpg::GroupName::new(group.to_vec()) else { return own };
        let members = self.node.cpg().local_clients(&group);
        members.filter_map(|c| self.ipc.clients.get(&c)).map(api::Client::backlog).fold(own, usize::max)
    }

    fn flush_clients(&mut self) -> bool {
        let mut slow = Vec::new();
        let now = self.clock.now();
        for (&id, client) in &mut self.ipc.clients {
            if client.stalled(now) {
                slow.push(id);
            }
        }
        while let Some((id, event)) = self.node.poll_client_event() {
            let Some(client) = self.ipc.clients.get_mut(&id) else { continue };
            if client.backlog() > api::CLIENT_BACKLOG_MAX {
                if !slow.contains(&id) {
                    slow.push(id);
                }
                continue;
            }
            if matches!(event, cpg::CpgEvent::Confchg(_)) {
                self.confdb.mark_live_dirty();
            }
            if let Err(e) = client.session.send_event(api::event_to_wire(event)) {
                tracing::debug!(client = id.0, "event not queued: {e}");
            }
            client.flush();
        }
        for client in self.ipc.clients.values_mut() {
            client.flush();
        }
        for &id in &slow {
            if let Some(client) = self.ipc.clients.get(&id) {
                tracing::warn!(
                    client = id.0,
                    pid = client.pid,
                    "IPC client not reading its events ({} bytes unread): disconnected",
                    client.backlog()
                );
            }
            self.drop_client(id, "was too slow");
        }
        !slow.is_empty()
    }

    /// Sends each confdb tracker its notifications.
    fn flush_confdb(&mut self) {
        while let Some((id, event)) = self.confdb.poll_event() {
            let Some(client) = self.ipc.clients.get_mut(&id) else { continue };
            if let Err(e) = client.session.send_event(event) {
                tracing::debug!(client = id.0, "confdb notification not queued: {e}");
            }
            client.flush();
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
            links: self.links.status(),
        }
    }
}
