//! One link's physical behaviour: latency distribution, loss, duplication and reordering.

use std::time::Duration;

use crate::rng::{nanos, SimRng};

/// How much a packet's latency varies around the base.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Jitter {
    /// Every packet takes exactly the base latency.
    None,
    /// Uniform extra delay in `0..=max`.
    Uniform(Duration),
    /// Exponential extra delay with this mean, capped at ten times the mean (a long tail
    /// without unbounded outliers).
    Exponential(Duration),
}

/// A latency distribution: `base + jitter`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Latency {
    /// The minimum one-way delay.
    pub base: Duration,
    /// The random part.
    pub jitter: Jitter,
}

impl Latency {
    /// A fixed latency.
    pub fn fixed(base: Duration) -> Self {
        Latency { base, jitter: Jitter::None }
    }

    /// Draws one packet's latency in nanoseconds.
    pub fn sample(&self, rng: &mut SimRng) -> u64 {
        let extra = match self.jitter {
            Jitter::None => 0,
            Jitter::Uniform(max) => rng.range_inclusive(0, nanos(max)),
            Jitter::Exponential(mean) => rng.exponential(nanos(mean) as f64, 10.0) as u64,
        };
        nanos(self.base).saturating_add(extra)
    }
}

/// The behaviour of one directed link (or the default of all links).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Per-packet latency.
    pub latency: Latency,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet arrives twice (the copy has its own latency).
    pub duplicate: f64,
    /// Probability that a packet is held back by an extra uniform delay up to `reorder_delay`,
    /// so later packets overtake it.
    pub reorder: f64,
    /// The largest extra delay of a reordered packet.
    pub reorder_delay: Duration,
}

impl Default for LinkConfig {
    /// A quiet LAN: 100–300 µs, no loss.
    fn default() -> Self {
        LinkConfig {
            latency: Latency {
                base: Duration::from_micros(100),
                jitter: Jitter::Uniform(Duration::from_micros(200)),
            },
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
        }
    }
}

impl LinkConfig {
    /// Draws the arrival delays of one packet on this link, given an extra loss probability
    /// (the cluster-wide `set_loss`). Empty = lost; two entries = duplicated.
    pub fn sample(&self, rng: &mut SimRng, extra_loss: f64) -> Delays {
        if rng.chance(self.loss) || rng.chance(extra_loss) {
            return Delays::default();
        }
        let mut delays = Delays::default();
        delays.push(self.one_delay(rng));
        if rng.chance(self.duplicate) {
            delays.push(self.one_delay(rng));
        }
        delays
    }

    fn one_delay(&self, rng: &mut SimRng) -> u64 {
        let mut d = self.latency.sample(rng);
        if rng.chance(self.reorder) {
            d = d.saturating_add(rng.range_inclusive(0, nanos(self.reorder_delay)));
        }
        d
    }
}

/// Up to two arrival delays (nanoseconds) of one packet on one link, without allocating.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Delays {
    items: [u64; 2],
    len: u8,
}

impl Delays {
    /// Adds a copy (ignored beyond two).
    pub fn push(&mut self, delay: u64) {
        if let Some(slot) = self.items.get_mut(usize::from(self.len)) {
            *slot = delay;
            self.len += 1;
        }
    }

    /// The delays.
    pub fn as_slice(&self) -> &[u64] {
        &self.items[..usize::from(self.len)]
    }

    /// Adds `extra` to every copy.
    pub fn delay_all(&mut self, extra: u64) {
        let len = usize::from(self.len);
        for d in &mut self.items[..len] {
            *d = d.saturating_add(extra);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stays_within_its_distribution() {
        let mut rng = SimRng::new(1);
        let l = Latency { base: Duration::from_millis(1), jitter: Jitter::Uniform(Duration::from_millis(2)) };
        for _ in 0..1000 {
            let d = l.sample(&mut rng);
            assert!((1_000_000..=3_000_000).contains(&d));
        }
        let e = Latency { base: Duration::ZERO, jitter: Jitter::Exponential(Duration::from_millis(1)) };
        for _ in 0..1000 {
            assert!(e.sample(&mut rng) <= 10_000_000);
        }
    }

    #[test]
    fn loss_one_loses_everything_and_duplicate_one_doubles() {
        let mut rng = SimRng::new(2);
        let lossy = LinkConfig { loss: 1.0, ..LinkConfig::default() };
        assert!(lossy.sample(&mut rng, 0.0).as_slice().is_empty());
        assert!(LinkConfig::default().sample(&mut rng, 1.0).as_slice().is_empty());
        let dup = LinkConfig { duplicate: 1.0, ..LinkConfig::default() };
        assert_eq!(dup.sample(&mut rng, 0.0).as_slice().len(), 2);
    }
}
