//! Unit tests: one input on links in a known state, then the exact outputs (transmits, events,
//! status, counters).

use super::*;
use proptest::prelude::*;

const ME: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const C: NodeId = NodeId(3);
const L0: LinkId = LinkId(0);
const L1: LinkId = LinkId(1);

fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

/// Node `node`'s address on `link`: 10.0.<link>.<node>:5405.
fn addr(node: NodeId, link: LinkId) -> SocketAddr {
    SocketAddr::from(([10, 0, link.0, node.0 as u8], 5405))
}

/// Links from node 1 to `peers`, each on links 0 and 1, with corosync's defaults
/// (ping every 750 ms, timeout 1500 ms, 2 pongs).
fn links(peers: &[NodeId]) -> Links {
    let table = peers.iter().map(|&n| (n, vec![(L0, addr(n, L0)), (L1, addr(n, L1))])).collect();
    Links::new(ME, LinkConfig::default(), table).unwrap()
}

fn ping(link: LinkId, sender: NodeId, at: Instant) -> Bytes {
    Frame::Ping(Heartbeat { link, sender, timestamp: at.as_nanos() }).encode()
}

fn pong(link: LinkId, sender: NodeId, at: Instant) -> Bytes {
    Frame::Pong(Heartbeat { link, sender, timestamp: at.as_nanos() }).encode()
}

fn data(payload: &'static [u8]) -> Bytes {
    Frame::Data(Bytes::from_static(payload)).encode()
}

/// Transmits with each datagram's bytes in one buffer.
fn flat(transmits: Vec<LinkTransmit>) -> Vec<(LinkId, SocketAddr, Bytes)> {
    transmits.into_iter().map(|(link, to, d)| (link, to, d.to_bytes())).collect()
}

fn transmits(l: &mut Links) -> Vec<(LinkId, SocketAddr, Bytes)> {
    flat(std::iter::from_fn(|| l.poll_transmit()).collect())
}

fn events(l: &mut Links) -> Vec<LinkEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn up(l: &Links) -> Vec<(NodeId, LinkId, bool)> {
    l.status().iter().map(|s| (s.node, s.link, s.up)).collect()
}

/// Pings at `at`, then node `node` answers on `link` 1 ms later.
fn ping_and_pong(l: &mut Links, at: Instant, node: NodeId, link: LinkId) {
    l.handle_timeout(at);
    transmits(l);
    let got = l.handle_datagram(at + Duration::from_millis(1), link, addr(node, link), pong(link, node, at));
    assert_eq!(got, None);
}

/// Brings `link` to `node` up: two pongs in a row (pings at 0 and 750 ms, pongs 1 ms later).
fn bring_up(l: &mut Links, node: NodeId, link: LinkId) {
    ping_and_pong(l, ms(0), node, link);
    ping_and_pong(l, ms(750), node, link);
    assert_eq!(events(l), vec![LinkEvent::Up { node, link }]);
}

#[test]
fn defaults_follow_corosync_calc_knet_ping_timers() {
    // exec/totemconfig.c: pong_count 2, ping_timeout = token / pong_count,
    // ping_interval = token / (pong_count * 2), with corosync 3's token of 3000 ms.
    let c = LinkConfig::default();
    assert_eq!(
        (c.ping_interval, c.ping_timeout, c.pong_count),
        (Duration::from_millis(750), Duration::from_millis(1500), 2)
    );
    let c = LinkConfig::from_token(Duration::from_millis(1000), 5);
    assert_eq!(
        (c.ping_interval, c.ping_timeout, c.pong_count),
        (Duration::from_millis(100), Duration::from_millis(200), 5)
    );
}

#[test]
fn pings_every_interval_on_each_link_to_each_peer() {
    let mut l = links(&[B, C]);
    assert_eq!(l.poll_timeout(), Some(Instant::ZERO));
    l.handle_timeout(ms(0));
    assert_eq!(
        transmits(&mut l),
        vec![
            (L0, addr(B, L0), ping(L0, ME, ms(0))),
            (L1, addr(B, L1), ping(L1, ME, ms(0))),
            (L0, addr(C, L0), ping(L0, ME, ms(0))),
            (L1, addr(C, L1), ping(L1, ME, ms(0))),
        ]
    );
    assert_eq!(l.poll_timeout(), Some(ms(750)));

    // A spurious wake-up before the deadline does nothing.
    l.handle_timeout(ms(749));
    assert_eq!(transmits(&mut l), vec![]);

    l.handle_timeout(ms(750));
    assert_eq!(
        transmits(&mut l),
        vec![
            (L0, addr(B, L0), ping(L0, ME, ms(750))),
            (L1, addr(B, L1), ping(L1, ME, ms(750))),
            (L0, addr(C, L0), ping(L0, ME, ms(750))),
            (L1, addr(C, L1), ping(L1, ME, ms(750))),
        ]
    );
    assert_eq!(l.poll_timeout(), Some(ms(1500)));
    assert_eq!(l.status().iter().map(|s| s.pings_sent).collect::<Vec<_>>(), vec![2, 2, 2, 2]);
    assert_eq!(events(&mut l), vec![]);
}

#[test]
fn link_is_up_after_pong_count_pongs_and_down_after_ping_timeout() {
    let mut l = links(&[B]);
    ping_and_pong(&mut l, ms(0), B, L0);
    assert_eq!(events(&mut l), vec![]);
    assert_eq!(up(&l), vec![(B, L0, false), (B, L1, false)]);

    ping_and_pong(&mut l, ms(750), B, L0);
    assert_eq!(events(&mut l), vec![LinkEvent::Up { node: B, link: L0 }]);
    assert_eq!(up(&l), vec![(B, L0, true), (B, L1, false)]);
    assert!(l.is_reachable(B));
    let s = &l.status()[0];
    assert_eq!(
        (s.last_pong, s.last_heard, s.rtt, s.pings_sent, s.pongs_received),
        (Some(ms(751)), Some(ms(751)), Some(Duration::from_millis(1)), 2, 2)
    );

    // No more pongs: the link times out 1500 ms after the last one (751 + 1500), not before.
    l.handle_timeout(ms(1500));
    l.handle_timeout(ms(2250));
    assert_eq!(l.poll_timeout(), Some(ms(2251)));
    l.handle_timeout(ms(2250) + Duration::from_nanos(999_999));
    assert_eq!(events(&mut l), vec![]);
    l.handle_timeout(ms(2251));
    assert_eq!(events(&mut l), vec![LinkEvent::Down { node: B, link: L0 }]);
    assert_eq!(up(&l), vec![(B, L0, false), (B, L1, false)]);
    assert_eq!(l.status()[0].down_count, 1);
    assert!(!l.is_reachable(B));
    assert_eq!(l.poll_timeout(), Some(ms(3000)));
}

#[test]
fn an_unanswered_ping_breaks_the_row_of_pongs() {
    let mut l = links(&[B]);
    ping_and_pong(&mut l, ms(0), B, L0);
    l.handle_timeout(ms(750)); // unanswered
    ping_and_pong(&mut l, ms(1500), B, L0);
    assert_eq!(events(&mut l), vec![]);
    ping_and_pong(&mut l, ms(2250), B, L0);
    assert_eq!(events(&mut l), vec![LinkEvent::Up { node: B, link: L0 }]);
}

#[test]
fn data_goes_over_the_lowest_up_link_and_back_to_link_0_when_it_recovers() {
    let mut l = links(&[B]);
    let mut out = Vec::new();

    // Nothing known up yet: link 0, so a cluster can form.
    l.send(Destination::Node(B), Bytes::from_static(b"t1"), &mut out);
    assert_eq!(flat(std::mem::take(&mut out)), vec![(L0, addr(B, L0), data(b"t1"))]);

    // Link 1 up, link 0 down: link 1.
    bring_up(&mut l, B, L1);
    out.clear();
    l.send(Destination::Node(B), Bytes::from_static(b"t2"), &mut out);
    assert_eq!(flat(std::mem::take(&mut out)), vec![(L1, addr(B, L1), data(b"t2"))]);

    // Link 0 recovers: it is used again.
    ping_and_pong(&mut l, ms(1500), B, L0);
    l.handle_datagram(ms(1501), L1, addr(B, L1), pong(L1, B, ms(1500)));
    ping_and_pong(&mut l, ms(2250), B, L0);
    l.handle_datagram(ms(2251), L1, addr(B, L1), pong(L1, B, ms(2250)));
    assert_eq!(events(&mut l), vec![LinkEvent::Up { node: B, link: L0 }]);
    out.clear();
    l.send(Destination::Node(B), Bytes::from_static(b"t3"), &mut out);
    assert_eq!(flat(std::mem::take(&mut out)), vec![(L0, addr(B, L0), data(b"t3"))]);
    assert_eq!(l.status().iter().map(|s| s.data_sent).collect::<Vec<_>>(), vec![2, 1]);
}

#[test]
fn multicast_routes_each_peer_on_its_own_best_link() {
    let mut l = links(&[B, C]);
    bring_up(&mut l, C, L1);
    let mut out = Vec::new();
    l.send(Destination::All, Bytes::from_static(b"m"), &mut out);
    assert_eq!(
        flat(std::mem::take(&mut out)),
        vec![(L0, addr(B, L0), data(b"m")), (L1, addr(C, L1), data(b"m"))]
    );
}

#[test]
fn send_to_an_unknown_or_local_node_is_counted() {
    let mut l = links(&[B]);
    let mut out = Vec::new();
    l.send(Destination::Node(ME), Bytes::from_static(b"x"), &mut out);
    l.send(Destination::Node(NodeId(9)), Bytes::from_static(b"x"), &mut out);
    assert_eq!(flat(std::mem::take(&mut out)), vec![]);
    assert_eq!(l.stats(), &LinkStats { no_route: 2, ..LinkStats::default() });
}

#[test]
fn data_on_a_down_link_is_delivered_and_recorded_but_only_pongs_bring_it_up() {
    let mut l = links(&[B]);
    let got = l.handle_datagram(ms(5), L1, addr(B, L1), data(b"totem"));
    assert_eq!(got, Some(Bytes::from_static(b"totem")));
    let s = &l.status()[1];
    assert_eq!((s.up, s.last_heard, s.last_pong, s.data_received), (false, Some(ms(5)), None, 1));
    assert_eq!(events(&mut l), vec![]);
}

#[test]
fn data_on_an_up_link_counts_as_life() {
    let mut l = links(&[B]);
    bring_up(&mut l, B, L0); // last pong at 751 ms
    l.handle_timeout(ms(1500));
    assert_eq!(l.handle_datagram(ms(2000), L0, addr(B, L0), data(b"x")), Some(Bytes::from_static(b"x")));
    l.handle_timeout(ms(2250));
    l.handle_timeout(ms(2251)); // the old pong alone would have expired here
    assert_eq!(events(&mut l), vec![]);
    assert_eq!(l.poll_timeout(), Some(ms(3000)));
    l.handle_timeout(ms(3000));
    l.handle_timeout(ms(3500));
    assert_eq!(events(&mut l), vec![LinkEvent::Down { node: B, link: L0 }]);
}

#[test]
fn pings_are_answered_on_the_link_they_came_in_on() {
    let mut l = links(&[B]);
    assert_eq!(l.handle_datagram(ms(3), L1, addr(B, L1), ping(L1, B, ms(2))), None);
    assert_eq!(transmits(&mut l), vec![(L1, addr(B, L1), pong(L1, ME, ms(2)))]);
    assert_eq!(up(&l), vec![(B, L0, false), (B, L1, false)]);
}

#[test]
fn malformed_unknown_mismatched_and_stale_datagrams_are_dropped_and_counted() {
    let mut l = links(&[B, C]);
    let from = addr(B, L0);
    let drop = |l: &mut Links, link, from, bytes: Bytes| {
        assert_eq!(l.handle_datagram(ms(1), link, from, bytes), None)
    };

    // Malformed: empty, unknown kind, short ping, long pong, link id 8.
    drop(&mut l, L0, from, Bytes::new());
    drop(&mut l, L0, from, Bytes::from_static(&[9, 0]));
    drop(&mut l, L0, from, ping(L0, B, ms(0)).slice(..HEARTBEAT_LEN - 1));
    drop(&mut l, L0, from, Bytes::from([pong(L0, B, ms(0)).to_vec(), vec![0]].concat()));
    let mut bad_link = ping(L0, B, ms(0)).to_vec();
    bad_link[1] = 8;
    drop(&mut l, L0, from, Bytes::from(bad_link));

    // Unknown source: a stranger, and B's link-1 address arriving on link 0.
    drop(&mut l, L0, SocketAddr::from(([192, 168, 0, 1], 5405)), data(b"x"));
    drop(&mut l, L0, addr(B, L1), data(b"x"));

    // Mismatched: a ping naming link 1 on link 0; a ping claiming to be C from B's address.
    drop(&mut l, L0, from, ping(L1, B, ms(0)));
    drop(&mut l, L0, from, ping(L0, C, ms(0)));

    // Stale: a pong with no ping outstanding; a duplicate; one later than ping_timeout.
    drop(&mut l, L0, from, pong(L0, B, ms(0)));
    l.handle_timeout(ms(0));
    transmits(&mut l);
    drop(&mut l, L0, from, pong(L0, B, ms(0)));
    drop(&mut l, L0, from, pong(L0, B, ms(0)));
    l.handle_timeout(ms(750));
    transmits(&mut l);
    assert_eq!(l.handle_datagram(ms(2251), L0, from, pong(L0, B, ms(750))), None);

    assert_eq!(
        l.stats(),
        &LinkStats { malformed: 5, unknown_source: 2, mismatched: 2, stale_pongs: 3, ..LinkStats::default() }
    );
    assert_eq!(transmits(&mut l), vec![]);
    assert_eq!(l.status()[0].pongs_received, 1);
    assert_eq!(events(&mut l), vec![]);
}

#[test]
fn queues_are_bounded() {
    let table = [(B, vec![(L0, addr(B, L0)), (L1, addr(B, L1))])].into_iter().collect();
    let config = LinkConfig { transmit_queue_max: 1, ..LinkConfig::default() };
    let mut l = Links::new(ME, config, table).unwrap();
    l.handle_timeout(ms(0));
    assert_eq!(transmits(&mut l), vec![(L0, addr(B, L0), ping(L0, ME, ms(0)))]);
    assert_eq!(l.stats().transmit_dropped, 1);
}

#[test]
fn new_refuses_bad_input() {
    let a = addr(B, L0);
    let new = |peers: Vec<(NodeId, Vec<(LinkId, SocketAddr)>)>| {
        Links::new(ME, LinkConfig::default(), peers.into_iter().collect()).map(|_| ())
    };
    assert_eq!(
        new(vec![(B, vec![(LinkId(8), a)])]),
        Err(LinksError::LinkOutOfRange { node: B, link: LinkId(8) })
    );
    assert_eq!(
        new(vec![(B, vec![(L0, a), (L0, addr(B, L1))])]),
        Err(LinksError::DuplicateLink { node: B, link: L0 })
    );
    assert_eq!(
        new(vec![(B, vec![(L0, a)]), (C, vec![(L0, a)])]),
        Err(LinksError::DuplicateAddress { link: L0, addr: a, first: B, second: C })
    );
    assert_eq!(new(vec![(B, vec![])]), Err(LinksError::NoLink(B)));
    // The local node's own entry is ignored.
    assert_eq!(new(vec![(ME, vec![]), (B, vec![(L0, a)])]), Ok(()));

    let zero = LinkConfig { pong_count: 0, ..LinkConfig::default() };
    assert_eq!(Links::new(ME, zero, BTreeMap::new()).map(|_| ()), Err(LinksError::ZeroPongCount));
    let zero = LinkConfig { ping_interval: Duration::ZERO, ..LinkConfig::default() };
    assert_eq!(Links::new(ME, zero, BTreeMap::new()).map(|_| ()), Err(LinksError::ZeroDuration));
}

#[test]
fn decode_errors() {
    assert_eq!(Frame::decode(Bytes::new()), Err(FrameError::Empty));
    assert_eq!(Frame::decode(Bytes::from_static(&[0])), Err(FrameError::UnknownKind(0)));
    assert_eq!(Frame::decode(Bytes::from_static(&[2, 0])), Err(FrameError::BadLength(2)));
    let mut b = [0u8; HEARTBEAT_LEN];
    b[0] = 3;
    b[1] = 200;
    assert_eq!(Frame::decode(Bytes::copy_from_slice(&b)), Err(FrameError::BadLinkId(200)));
    assert_eq!(Frame::decode(Bytes::from_static(&[1])), Ok(Frame::Data(Bytes::new())));
}

fn any_frame() -> impl Strategy<Value = Frame> {
    let hb = (0u8..=7, any::<u32>(), any::<u64>()).prop_map(|(l, n, t)| Heartbeat {
        link: LinkId(l),
        sender: NodeId(n),
        timestamp: t,
    });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|v| Frame::Data(Bytes::from(v))),
        hb.clone().prop_map(Frame::Ping),
        hb.prop_map(Frame::Pong),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Frame::decode(Bytes::from(bytes));
    }

    #[test]
    fn frames_round_trip(frame in any_frame()) {
        prop_assert_eq!(Frame::decode(frame.encode()), Ok(frame));
    }

    /// Arbitrary datagrams from a known peer never panic the link layer, and only data frames
    /// come out.
    #[test]
    fn arbitrary_datagrams_never_panic_links(
        inputs in proptest::collection::vec((0u8..2, proptest::collection::vec(any::<u8>(), 0..20)), 0..32),
    ) {
        let mut l = links(&[B]);
        for (i, (link, bytes)) in inputs.into_iter().enumerate() {
            let link = LinkId(link);
            let now = ms(i as u64 * 100);
            l.handle_timeout(now);
            let is_data = bytes.first() == Some(&1);
            let got = l.handle_datagram(now, link, addr(B, link), Bytes::from(bytes));
            prop_assert_eq!(got.is_some(), is_data);
        }
    }
}

/// `transport: udp`: one datagram to the group carries the packet for every peer; a peer gets
/// it from this node's link 0 address and opens it exactly as a unicast data frame.
#[test]
fn a_multicast_is_one_data_frame_to_the_group_opened_like_a_unicast() {
    let mut me = links(&[B, C]);
    let group = SocketAddr::from(([239, 192, 1, 2], 5405));
    let mut out = Vec::new();
    me.send_multicast(group, Bytes::from_static(b"packet"), &mut out);
    let [(link, to, bytes)]: [(LinkId, SocketAddr, Bytes); 1] = flat(out).try_into().unwrap();
    assert_eq!((link, to, bytes.clone()), (L0, group, data(b"packet")));
    let sent: Vec<(NodeId, LinkId, u64)> =
        me.status().iter().map(|s| (s.node, s.link, s.data_sent)).collect();
    assert_eq!(sent, vec![(B, L0, 1), (B, L1, 0), (C, L0, 1), (C, L1, 0)]);

    let table = [ME, C].iter().map(|&n| (n, vec![(L0, addr(n, L0)), (L1, addr(n, L1))])).collect();
    let mut b = Links::new(B, LinkConfig::default(), table).unwrap();
    let got = b.handle_datagram(ms(1), L0, addr(ME, L0), bytes);
    assert_eq!(got, Some(Bytes::from_static(b"packet")));
}

/// Node `node`'s links to node 1 (and C), to receive what node 1 sends.
fn peer_of_me(node: NodeId) -> Links {
    let others = [ME, B, C].into_iter().filter(|&n| n != node);
    let table = others.map(|n| (n, vec![(L0, addr(n, L0)), (L1, addr(n, L1))])).collect();
    Links::new(node, LinkConfig::default(), table).unwrap()
}

fn long_packet(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

/// knet's fragmentation: a packet longer than a datagram goes as fragments of
/// `datagram_max`, all of one length but the last, each peer's in a row (one train each);
/// the peer joins them, in any order, into the packet, once.
#[test]
fn a_long_packet_goes_as_fragments_each_peer_in_a_row_and_is_joined_once() {
    let mut me = links(&[B, C]);
    let packet = long_packet(10_000);
    let mut out = Vec::new();
    me.send(Destination::All, packet.clone(), &mut out);
    let max = LinkConfig::default().datagram_max;
    let per_peer = 10_000usize.div_ceil(max - FRAGMENT_HEADER);
    assert_eq!(out.len(), 2 * per_peer);
    let to: Vec<SocketAddr> = out.iter().map(|t| t.1).collect();
    assert!(
        to[..per_peer].iter().all(|&a| a == addr(B, L0)) && to[per_peer..].iter().all(|&a| a == addr(C, L0))
    );
    assert!(out[..per_peer - 1].iter().all(|t| t.2.len() == max) && out[per_peer - 1].2.len() < max);
    assert_eq!(me.stats().packets_cut, 1);
    let sent: Vec<u64> = me.status().iter().map(|s| s.data_sent).collect();
    assert_eq!(sent, vec![1, 0, 1, 0], "a packet counts once, however many fragments");

    let mut b = peer_of_me(B);
    let mut mine: Vec<Bytes> = out[..per_peer].iter().map(|t| t.2.to_bytes()).collect();
    assert!(out.iter().all(|t| packet.as_ptr_range().contains(&t.2.body.as_ptr())), "parts are not copied");
    mine.reverse();
    let last = mine.pop().unwrap();
    for f in &mine {
        assert_eq!(b.handle_datagram(ms(1), L0, addr(ME, L0), f.clone()), None);
    }
    // A duplicate changes nothing; the last missing one completes the packet.
    assert_eq!(b.handle_datagram(ms(1), L0, addr(ME, L0), mine[0].clone()), None);
    assert_eq!(b.handle_datagram(ms(2), L0, addr(ME, L0), last.clone()), Some(packet));
    assert_eq!(b.handle_datagram(ms(3), L0, addr(ME, L0), last), None, "joined once");
    assert_eq!((b.stats().packets_joined, b.stats().packets_incomplete), (1, 0));
}

/// Packets missing a fragment wait, at most `JOINING_MAX` of them: the oldest is dropped
/// when another starts. The packets after them are joined. Totem asks for lost ones again.
#[test]
fn packets_that_lost_a_fragment_are_dropped_and_the_next_ones_get_through() {
    let mut me = links(&[B]);
    let mut b = peer_of_me(B);
    let mut joined = Vec::new();
    let lossy = JOINING_MAX + 1;
    for n in 0..(lossy + 2) {
        let packet = long_packet(3000 + n);
        let mut out = Vec::new();
        me.send(Destination::Node(B), packet.clone(), &mut out);
        let skip = if n < lossy { 1 } else { usize::MAX };
        for (i, (_, _, datagram)) in out.into_iter().enumerate() {
            if i != skip {
                if let Some(p) = b.handle_datagram(ms(1), L0, addr(ME, L0), datagram.to_bytes()) {
                    assert_eq!(p, packet);
                    joined.push(n);
                }
            }
        }
    }
    assert_eq!(joined, vec![lossy, lossy + 1]);
    // Packets 0 and 1: dropped when the fifth lossy packet and the first whole one started.
    assert_eq!(b.stats().packets_incomplete, 2);
}

/// Fragments are peer input: a bad header is malformed, fragments with a count that changes
/// start the packet over, and more bytes than any packet has drop it. Nothing panics.
#[test]
fn malformed_fragments_are_refused() {
    let mut b = peer_of_me(B);
    let from = addr(ME, L0);
    for bad in [
        frame::encode_fragment(1, 0, 1, Bytes::from_static(b"x")).to_bytes(), // count below 2
        frame::encode_fragment(1, 2, 2, Bytes::from_static(b"x")).to_bytes(), // index past count
        frame::encode_fragment(1, 0, 2, Bytes::from_static(b"")).to_bytes(),  // no bytes
        frame::encode_fragment(1, 0, FRAGMENTS_MAX + 1, Bytes::from_static(b"x")).to_bytes(), // too many
    ] {
        assert_eq!(b.handle_datagram(ms(1), L0, from, bad), None);
    }
    assert_eq!(b.stats().malformed, 4);
    assert_eq!(
        b.handle_datagram(
            ms(1),
            L0,
            from,
            frame::encode_fragment(7, 0, 3, Bytes::from_static(b"a")).to_bytes()
        ),
        None
    );
    assert_eq!(
        b.handle_datagram(
            ms(1),
            L0,
            from,
            frame::encode_fragment(7, 1, 2, Bytes::from_static(b"b")).to_bytes()
        ),
        None
    );
    assert_eq!(b.stats().packets_incomplete, 1);
    assert_eq!(
        b.handle_datagram(
            ms(1),
            L0,
            from,
            frame::encode_fragment(7, 0, 2, Bytes::from_static(b"a")).to_bytes()
        ),
        Some(Bytes::from_static(b"ab")),
        "started over with the new count"
    );
    let huge = Bytes::from(vec![0u8; 60_000]);
    for i in 0..3 {
        assert_eq!(
            b.handle_datagram(ms(1), L0, from, frame::encode_fragment(9, i, 4, huge.clone()).to_bytes()),
            None
        );
    }
    assert_eq!(b.stats().packets_incomplete, 2, "over JOINED_MAX");
}
