//! The driver against the engine: every node delivers every message, all in one order.

use benches::{payload_number, Load, Ring};
use totem::{Guarantee, TotemConfig};

/// Runs `load` on a formed ring of `nodes` and checks agreed order (Totem paper, section 2:
/// every node delivers the same messages in the same total order) and per-sender FIFO order.
fn delivers_in_one_order(nodes: usize, load: Load) {
    let mut ring = Ring::new(nodes, TotemConfig::default(), 7).expect("engines start");
    ring.form().expect("ring forms");
    let report = ring.run(&Load { record: true, ..load.clone() }).expect("load is delivered");
    assert_eq!(report.reconfigurations, 0, "the ring stayed up");
    let first = ring.deliveries(0);
    assert_eq!(first.len() as u64, load.messages, "node 1 delivered every message once");
    for i in 1..nodes {
        assert_eq!(ring.deliveries(i), first, "node {} delivered in node 1's order", i + 1);
    }
    let mut next = vec![0u64; nodes];
    for d in first {
        let (sender, counter) = payload_number(&d.payload).expect("numbered payload");
        assert_eq!(d.sender, benches::node_id(sender));
        assert_eq!(d.payload.len(), load.size.max(12));
        assert_eq!(d.guarantee, load.guarantee);
        assert_eq!(counter, next[sender], "sender {} delivered in submission order", sender + 1);
        next[sender] += 1;
    }
}

#[test]
fn two_nodes_deliver_1000_messages_in_the_same_order() {
    delivers_in_one_order(2, Load { messages: 1_000, size: 64, ..Load::default() });
}

#[test]
fn five_nodes_deliver_large_messages_in_the_same_order() {
    delivers_in_one_order(5, Load { messages: 500, size: 1024, ..Load::default() });
}

#[test]
fn safe_messages_are_delivered_in_the_same_order() {
    delivers_in_one_order(
        3,
        Load { messages: 500, size: 100, guarantee: Guarantee::Safe, ..Load::default() },
    );
}

#[test]
fn fragmented_messages_are_delivered_whole() {
    // Larger than one packet's payload (netmtu 1500), so the engine fragments them.
    delivers_in_one_order(2, Load { messages: 100, size: 5_000, in_flight_max: 16, ..Load::default() });
}

#[test]
fn one_sender_is_enough() {
    delivers_in_one_order(3, Load { messages: 300, size: 64, senders: Some(vec![1]), ..Load::default() });
}
