//! Microbenchmarks of the hot paths a CPG message takes through totemd: the Totem wire codec,
//! token handling per rotation, packing and fragmentation through the engine, the CPG
//! service's fan-out to local clients, and the local API's framing.
//!
//! `cargo bench -p benches --bench hot_paths`. Counters are per message (or per rotation,
//! per delivered event, per frame) so divan prints the rate of each.
#![forbid(unsafe_code)]

use benches::{Load, Ring};
use bytes::{Bytes, BytesMut};
use cpg::service::{ClientId, CpgConfig, CpgService};
use cpg::GroupName;
use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use ipc::frame::encode_frame;
use ipc::{CpgDeliver, Event, EventKind, FrameDecoder, ServerFrame, ServerFrameKind, FRAME_MAX_DEFAULT};
use totem::wire::{Fragment, Mcast, Packet, Token, WireRingId};
use totem::{Delivery, NodeId, RingId, Seq, TotemConfig};

fn main() {
    divan::main();
}

/// Payload sizes of the codec benches: a small message, a 1 KiB one, a full datagram.
const WIRE_SIZES: [usize; 3] = [64, 1024, 1400];

fn ring() -> Option<WireRingId> {
    Some(WireRingId { representative: 1, seq: 8 })
}

/// One mcast packet carrying `count` whole messages of `size` bytes (packing).
fn mcast(size: usize, count: usize) -> Packet {
    let fragment = Fragment { first: true, last: true, data: Bytes::from(vec![0xa5; size]) };
    Packet::Mcast(Mcast {
        ring_id: ring(),
        seq: 123_456,
        sender: 1,
        safe: false,
        fragments: vec![fragment; count],
        recovered: None,
    })
}

fn token() -> Packet {
    Packet::Token(Token {
        ring_id: ring(),
        token_seq: 99_999,
        seq: 123_456,
        aru: 123_400,
        aru_owner: 2,
        rtr: vec![123_401, 123_402],
        fcc: 40,
        backlog: 12,
        ..Token::default()
    })
}

mod wire {
    use super::*;

    #[divan::bench(args = WIRE_SIZES)]
    fn encode_mcast(bencher: Bencher, size: usize) {
        let p = mcast(size, 1);
        bencher.counter(BytesCount::new(size)).bench_local(|| black_box(&p).encode());
    }

    #[divan::bench(args = WIRE_SIZES)]
    fn decode_mcast(bencher: Bencher, size: usize) {
        let bytes = mcast(size, 1).encode();
        bencher
            .counter(BytesCount::new(size))
            .bench_local(|| Packet::decode(black_box(bytes.clone())).expect("valid packet"));
    }

    /// 20 messages of 64 bytes packed into one packet: the cost per message.
    #[divan::bench]
    fn encode_decode_packed_64(bencher: Bencher) {
        let p = mcast(64, 20);
        bencher
            .counter(ItemsCount::new(20usize))
            .bench_local(|| Packet::decode(black_box(&p).encode()).expect("valid packet"));
    }

    #[divan::bench]
    fn encode_decode_token(bencher: Bencher) {
        let t = token();
        bencher.bench_local(|| Packet::decode(black_box(&t).encode()).expect("valid packet"));
    }
}

mod engine {
    use super::*;

    /// A ring of `nodes` that has formed.
    fn formed(nodes: usize) -> Ring {
        let mut ring = Ring::new(nodes, TotemConfig::default(), 1).expect("engines start");
        ring.form().expect("ring forms");
        ring
    }

    /// An idle ring passing its token: one rotation is `nodes` token handlings (each a
    /// decode, the engine's token rules, an encode).
    #[divan::bench(args = [2, 5], sample_count = 20)]
    fn token_rotation(bencher: Bencher, nodes: usize) {
        const ROTATIONS: usize = 200;
        bencher.counter(ItemsCount::new(ROTATIONS)).with_inputs(|| formed(nodes)).bench_local_values(
            |mut ring| {
                for _ in 0..ROTATIONS * nodes {
                    ring.step().expect("ring steps");
                }
                ring
            },
        );
    }

    /// Messages through a 2-node ring: 64 B are packed many to a packet, 1400 B about one
    /// per packet, 100 KiB cut into fragments and assembled again.
    #[divan::bench(args = [64, 1400, 102_400], sample_count = 10, sample_size = 1)]
    fn pack_and_fragment(bencher: Bencher, size: usize) {
        let messages = (2_000_000 / size).clamp(50, 5_000) as u64;
        let load = Load { messages, size, ..Load::default() };
        bencher
            .counter(BytesCount::new(messages as usize * size))
            .with_inputs(|| formed(2))
            .bench_local_values(|mut ring| ring.run(&load).expect("load is delivered"));
    }
}

mod cpg_fanout {
    use super::*;

    /// One node's service with `clients` local clients in one group, after the sync of its
    /// ring (submissions delivered back to itself, as a one-node ring does).
    fn service(clients: u64) -> (CpgService, RingId) {
        let group = GroupName::try_from("bench").expect("valid name");
        let mut s = CpgService::new(NodeId(1), CpgConfig::default());
        let ring = RingId { seq: 4, representative: NodeId(1) };
        s.handle_regular(ring, &[NodeId(1)]);
        for c in 0..clients {
            s.connect(ClientId(c), 1000 + c as u32);
            s.join(ClientId(c), &group).expect("join");
        }
        loop_back(&mut s, ring);
        while s.poll_event().is_some() {}
        (s, ring)
    }

    /// Delivers every submission back to the service (without its service tag byte, as
    /// the node hands it over); how many events it produced.
    fn loop_back(s: &mut CpgService, ring: RingId) -> usize {
        let mut events = 0;
        while let Some((submission, guarantee)) = s.next_submission() {
            s.submitted();
            let payload = submission.slice(1..);
            s.handle_delivery(Delivery { ring_id: ring, seq: Seq(1), sender: NodeId(1), guarantee, payload });
            while s.poll_event().is_some() {
                events += 1;
            }
        }
        events
    }

    /// One 1 KiB message delivered to `clients` local members: the cost per event.
    #[divan::bench(args = [1, 10, 100, 1000])]
    fn deliver(bencher: Bencher, clients: u64) {
        let (mut s, ring) = service(clients);
        let group = GroupName::try_from("bench").expect("valid name");
        let data = Bytes::from(vec![0xa5u8; 1024]);
        bencher.counter(ItemsCount::new(clients)).bench_local(|| {
            s.mcast(ClientId(0), &group, cpg::Guarantee::Agreed, data.clone()).expect("mcast");
            assert_eq!(loop_back(&mut s, ring), clients as usize);
        });
    }
}

mod ipc_framing {
    use super::*;

    fn deliver_frame(size: usize) -> ServerFrame {
        let deliver = CpgDeliver {
            group: Bytes::from_static(b"bench"),
            node_id: 1,
            pid: 4242,
            guarantee: 0,
            data: Bytes::from(vec![0xa5u8; size]),
        };
        ServerFrameKind::Event(Event { kind: Some(EventKind::CpgDeliver(deliver)) }).into()
    }

    /// A delivery event framed for a client.
    #[divan::bench(args = [64, 1024, 65_536])]
    fn encode_deliver(bencher: Bencher, size: usize) {
        let frame = deliver_frame(size);
        let mut out = BytesMut::new();
        bencher.counter(BytesCount::new(size)).bench_local(|| {
            out.clear();
            encode_frame(black_box(&frame), &mut out);
        });
    }

    /// 64 delivery frames pushed as one read and cut out again (the client's side).
    #[divan::bench(args = [64, 1024, 65_536])]
    fn decode_deliver(bencher: Bencher, size: usize) {
        let mut stream = BytesMut::new();
        for _ in 0..64 {
            encode_frame(&deliver_frame(size), &mut stream);
        }
        bencher.counter(ItemsCount::new(64usize)).bench_local(|| {
            let mut decoder = FrameDecoder::new(FRAME_MAX_DEFAULT);
            decoder.push(black_box(&stream));
            let mut n = 0;
            while let Some(f) = decoder.next_frame::<ServerFrame>().expect("valid frames") {
                black_box(f);
                n += 1;
            }
            assert_eq!(n, 64);
        });
    }
}
