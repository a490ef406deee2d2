//! The Totem engine alone: agreed messages ordered and delivered through an in-memory ring of
//! 2 and 5 nodes (see [`benches::Ring`]). No sockets; the time is the engines' CPU.
//!
//! `cargo bench -p benches --bench engine`. The counter is deliveries summed over all nodes;
//! divide by the node count for deliveries per node.
#![forbid(unsafe_code)]

use benches::{Load, Ring};
use divan::counter::ItemsCount;
use divan::Bencher;
use totem::TotemConfig;

/// Messages each iteration submits (summed over senders).
const MESSAGES: u64 = 5_000;

fn main() {
    divan::main();
}

/// A ring of `nodes` that has formed and run a short warm-up load.
fn formed_ring(nodes: usize, size: usize) -> Ring {
    let mut ring = Ring::new(nodes, TotemConfig::default(), 1).expect("engines start");
    ring.form().expect("ring forms");
    ring.run(&Load { messages: 1_000, size, ..Load::default() }).expect("warm-up load is delivered");
    ring
}

#[divan::bench(args = [2, 5], consts = [64, 1024], sample_count = 10, sample_size = 1)]
fn agreed<const SIZE: usize>(bencher: Bencher, nodes: usize) {
    let load = Load { messages: MESSAGES, size: SIZE, ..Load::default() };
    bencher
        .counter(ItemsCount::new(MESSAGES * nodes as u64))
        .with_inputs(|| formed_ring(nodes, SIZE))
        .bench_local_values(|mut ring| ring.run(&load).expect("load is delivered"));
}
