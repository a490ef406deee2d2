//! The group service never panics on a delivered message, whatever its bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use totem::{Delivery, Guarantee, NodeId, RingId, Seq};

fuzz_target!(|data: &[u8]| {
    let mut service = cpg::service::CpgService::new(NodeId(1), cpg::service::CpgConfig::default());
    let ring = RingId { seq: 4, representative: NodeId(1) };
    service.handle_regular(ring, &[NodeId(1), NodeId(2)]);
    let delivery = Delivery {
        ring_id: ring,
        seq: Seq(1),
        sender: NodeId(2),
        guarantee: Guarantee::Agreed,
        payload: Bytes::copy_from_slice(data),
    };
    service.handle_delivery(delivery);
    while service.poll_event().is_some() {}
});
