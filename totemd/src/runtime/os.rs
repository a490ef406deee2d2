//! What the daemon takes from the OS for the engine: the clock and the seed of its RNG; and
//! for the packet crypto, the wall clock's seconds.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

/// Maps the OS monotonic clock onto [`totem::Instant`]: nanoseconds since the daemon started.
///
/// The only place the daemon reads the clock; the engine only ever sees what this returns.
#[derive(Copy, Clone, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose origin is now.
    // The driver is where time enters the node; the sans-IO crates are forbidden to read it
    // (clippy.toml), the daemon reads it here and nowhere else.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Clock {
        Clock { origin: std::time::Instant::now() }
    }

    /// Now, in the engine's time.
    // See `start`: the one other place the clock is read.
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> totem::Instant {
        let elapsed = std::time::Instant::now().saturating_duration_since(self.origin);
        totem::Instant::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Time since the origin.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now().as_nanos())
    }

    /// An engine deadline as a tokio deadline.
    pub fn to_tokio(&self, at: totem::Instant) -> tokio::time::Instant {
        self.after(Duration::from_nanos(at.as_nanos()))
    }

    /// The tokio deadline `d` after the origin.
    pub fn after(&self, d: Duration) -> tokio::time::Instant {
        // Past the end of representable time means never; a year out is never enough.
        let far = Duration::from_secs(365 * 24 * 3600);
        let at = self.origin.checked_add(d).or_else(|| self.origin.checked_add(far)).unwrap_or(self.origin);
        tokio::time::Instant::from_std(at)
    }
}

/// Seconds since the Unix epoch, saturating at `u32::MAX` (in 2106); 0 if the clock is
/// before 1970. Only the crypto's boot epoch reads it.
// The one place the daemon reads the wall clock (clippy.toml forbids it in the sans-IO crates).
#[allow(clippy::disallowed_methods)]
pub fn unix_seconds() -> u32 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u32::try_from(since.as_secs()).unwrap_or(u32::MAX)
}

/// A seed for the engine's RNG from the OS: `/dev/urandom`, else std's randomly keyed hasher.
pub fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    match File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(std::process::id())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_time_starts_near_zero_and_maps_back_to_the_same_deadline() {
        let clock = Clock::start();
        let now = clock.now();
        assert!(now.as_nanos() < 1_000_000_000);
        let at = now + Duration::from_millis(5);
        let expected = tokio::time::Instant::from_std(clock.origin + Duration::from_nanos(at.as_nanos()));
        assert_eq!(clock.to_tokio(at), expected);
        assert!(clock.now() >= now);
    }

    #[test]
    fn seeds_differ() {
        assert_ne!(seed(), seed());
    }
}
