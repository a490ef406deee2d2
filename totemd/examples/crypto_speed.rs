//! Per-packet cost of [`PacketCrypto`]: nanoseconds to seal and to open one datagram.
//!
//! ```sh
//! cargo run --release -p totemd --example crypto_speed
//! ```
//!
//! Sizes: 64 B (a token), 1 KiB, and 1400 B (a full Totem packet at the default `netmtu`, the
//! size a 100 KiB or 1 MiB message is cut into). Opening includes the replay-window check.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use totem::NodeId;
use totemd::crypto::{Aead, PacketCrypto};
use totemd::keyfile::{AuthKey, KEY_LEN_DEFAULT};

const SIZES: [usize; 3] = [64, 1024, 1400];
const BATCH: usize = 10_000;
const ROUNDS: usize = 20;

fn main() {
    let key = AuthKey::from_bytes((0..KEY_LEN_DEFAULT).map(|i| i as u8).collect()).expect("valid length");
    println!(
        "{:<18} {:>6} {:>10} {:>10} {:>10} {:>12}",
        "aead", "bytes", "seal ns", "seal_into", "open ns", "open MB/s"
    );
    for aead in [Aead::Aes256Gcm, Aead::ChaCha20Poly1305] {
        for size in SIZES {
            let r = measure(aead, &key, size);
            let mbps = size as f64 / r.open_ns * 1e3;
            println!(
                "{:<18} {:>6} {:>10.0} {:>10.0} {:>10.0} {:>12.0}",
                aead.name(),
                size,
                r.seal_ns,
                r.seal_into_ns,
                r.open_ns,
                mbps
            );
        }
    }
    let off = measure_off(1400);
    println!("{:<18} {:>6} {:>10.0} {:>10} {:>10.0}", "off", 1400, off.0, "-", off.1);

    // A large message crosses the wire as full packets: what crypto adds per message.
    let r = measure(Aead::Aes256Gcm, &key, 1400);
    for (name, len) in [("100 KiB", 100 * 1024usize), ("1 MiB", 1024 * 1024)] {
        let packets = len.div_ceil(1400) as f64;
        println!(
            "{name} message = {packets} packets of 1400 B: seal {:.0} µs, open {:.0} µs (aes-256-gcm)",
            packets * r.seal_ns / 1e3,
            packets * r.open_ns / 1e3
        );
    }
}

struct Figures {
    seal_ns: f64,
    seal_into_ns: f64,
    open_ns: f64,
}

/// Best of [`ROUNDS`] batches: the least disturbed by the rest of the machine.
fn measure(aead: Aead, key: &AuthKey, size: usize) -> Figures {
    let mut sender = PacketCrypto::new(aead, key, "bench", NodeId(1), 1);
    let mut receiver = PacketCrypto::new(aead, key, "bench", NodeId(2), 1);
    let payload = Bytes::from(vec![0x5a; size]);
    let mut best = Figures { seal_ns: f64::MAX, seal_into_ns: f64::MAX, open_ns: f64::MAX };
    let mut out = BytesMut::with_capacity(size + totemd::crypto::OVERHEAD);
    for _ in 0..ROUNDS {
        let mut sealed = Vec::with_capacity(BATCH);
        let t = timed(|| {
            for _ in 0..BATCH {
                sealed.push(sender.seal(black_box(payload.clone())).expect("seal"));
            }
        });
        best.seal_ns = best.seal_ns.min(per_packet(t));
        let t = timed(|| {
            for _ in 0..BATCH {
                out.clear();
                sender.seal_into(black_box(&payload), &mut out).expect("seal_into");
                black_box(&out);
            }
        });
        best.seal_into_ns = best.seal_into_ns.min(per_packet(t));
        let t = timed(|| {
            for packet in sealed.drain(..) {
                black_box(receiver.open(packet).expect("open"));
            }
        });
        best.open_ns = best.open_ns.min(per_packet(t));
    }
    best
}

fn measure_off(size: usize) -> (f64, f64) {
    let mut c = PacketCrypto::off();
    let payload = Bytes::from(vec![0x5a; size]);
    let seal = timed(|| {
        for _ in 0..BATCH {
            black_box(c.seal(black_box(payload.clone())).expect("seal"));
        }
    });
    let open = timed(|| {
        for _ in 0..BATCH {
            black_box(c.open(black_box(payload.clone())).expect("open"));
        }
    });
    (per_packet(seal), per_packet(open))
}

fn per_packet(t: Duration) -> f64 {
    t.as_nanos() as f64 / BATCH as f64
}

// Measuring speed is the one thing here that needs the wall clock.
#[allow(clippy::disallowed_methods)]
fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
