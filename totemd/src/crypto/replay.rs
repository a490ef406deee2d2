//! The per-sender anti-replay window (RFC 4303 §3.4.3, IPsec ESP's sliding window).

/// How many counters below the highest one seen are still accepted once (out of order).
pub const REPLAY_WINDOW: u64 = 1024;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// The counters seen from one sender: the highest, and which of the [`REPLAY_WINDOW`] below it.
///
/// Bit `i` of the bitmap (word `i / 64`, bit `i % 64`) says whether counter `top - i` was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    top: u64,
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// A window that has seen exactly `counter`.
    pub(crate) fn starting_at(counter: u64) -> ReplayWindow {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        ReplayWindow { top: counter, seen }
    }

    /// Whether `counter` would be accepted: above the top, or inside the window and unseen.
    /// Changes nothing, so the caller can ask before paying for the decryption.
    pub(crate) fn is_fresh(&self, counter: u64) -> bool {
        if counter > self.top {
            return true;
        }
        let back = self.top - counter;
        back < REPLAY_WINDOW && !self.bit(back)
    }

    /// Records `counter`, which [`Self::is_fresh`] accepted and which authenticated.
    pub(crate) fn accept(&mut self, counter: u64) {
        debug_assert!(self.is_fresh(counter));
        if counter > self.top {
            self.slide(counter - self.top);
            self.top = counter;
            self.seen[0] |= 1;
        } else {
            let back = self.top - counter;
            if back < REPLAY_WINDOW {
                self.seen[(back / 64) as usize] |= 1 << (back % 64);
            }
        }
    }

    /// The highest counter accepted.
    #[cfg(test)]
    pub(crate) fn top(&self) -> u64 {
        self.top
    }

    fn bit(&self, back: u64) -> bool {
        self.seen[(back / 64) as usize] & (1 << (back % 64)) != 0
    }

    /// Moves every bit `by` places towards older counters; bits falling off the end are gone.
    fn slide(&mut self, by: u64) {
        if by >= REPLAY_WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        for i in (0..WORDS).rev() {
            let from = i.checked_sub(words);
            let high = from.map_or(0, |j| self.seen[j] << bits);
            let low = match from.and_then(|j| j.checked_sub(1)) {
                Some(k) if bits > 0 => self.seen[k] >> (64 - bits),
                _ => 0,
            };
            self.seen[i] = high | low;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// The rule the window implements, written the slow and obvious way.
    struct Model {
        seen: BTreeSet<u64>,
    }

    impl Model {
        fn offer(&mut self, counter: u64) -> bool {
            let top = self.seen.last().copied();
            let fresh = match top {
                None => true,
                Some(top) => {
                    counter > top || (top - counter < REPLAY_WINDOW && !self.seen.contains(&counter))
                }
            };
            if fresh {
                self.seen.insert(counter);
            }
            fresh
        }
    }

    fn offer(window: &mut Option<ReplayWindow>, counter: u64) -> bool {
        match window {
            None => {
                *window = Some(ReplayWindow::starting_at(counter));
                true
            }
            Some(w) if w.is_fresh(counter) => {
                w.accept(counter);
                true
            }
            Some(_) => false,
        }
    }

    #[test]
    fn duplicates_and_too_old_counters_are_rejected() {
        let mut w = ReplayWindow::starting_at(5000);
        assert!(!w.is_fresh(5000), "duplicate of the top");
        assert!(w.is_fresh(5000 - 1023) && !w.is_fresh(5000 - 1024), "window edge");
        w.accept(4000);
        assert!(!w.is_fresh(4000), "duplicate inside the window");
        w.accept(6000);
        assert!(!w.is_fresh(4000), "slid out of the window");
        assert!(!w.is_fresh(6000) && w.is_fresh(5999) && w.is_fresh(6001));
        w.accept(u64::MAX);
        assert!(!w.is_fresh(u64::MAX) && w.is_fresh(u64::MAX - 1) && !w.is_fresh(0));
    }

    proptest! {
        /// Counters clustered so that duplicates, reordering and slides of every size happen.
        #[test]
        fn window_matches_the_model(
            start in any::<u64>(),
            steps in prop::collection::vec((-1500i64..1500, 0u8..8), 1..400),
        ) {
            let mut window = None;
            let mut model = Model { seen: BTreeSet::new() };
            let mut at = start;
            for (delta, repeat) in steps {
                at = at.saturating_add_signed(delta);
                for _ in 0..=repeat % 2 {
                    prop_assert_eq!(offer(&mut window, at), model.offer(at), "counter {}", at);
                }
            }
            prop_assert_eq!(window.map(|w| w.top()), model.seen.last().copied());
        }
    }
}
