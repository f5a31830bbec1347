//! Gives memory back to the system once a wave of load has passed.
//!
//! glibc's allocator keeps what was freed in its arenas for the next allocation, so a hub that
//! served 10,000 sockets for a while held their memory long after they closed. When sockets
//! have closed since the last look, the housekeeping asks it to return its free pages.
//!
//! The hub's only `unsafe`: one call into the C library.

use std::time::{Duration, Instant};

/// Returns the allocator's free memory to the system (glibc; other allocators need nothing).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_back() {
    // SAFETY: malloc_trim takes no pointer and only releases pages that hold no allocation; glibc
    // takes the arenas' locks itself, so any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl's) give memory back by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() {}

/// The least time between two give-backs (each walks the allocator's arenas under their locks).
const MIN_GAP: Duration = Duration::from_secs(30);

/// Decides when to give memory back: when fewer sockets are open than at the highest count seen
/// since the last give-back, at most once per [`MIN_GAP`].
#[derive(Debug, Default)]
pub struct AfterWaves {
    highest: usize,
    last: Option<Instant>,
}

impl AfterWaves {
    /// Looks at the sockets open now; true when it is time to give memory back.
    pub fn fewer_now(&mut self, open: usize, now: Instant) -> bool {
        self.highest = self.highest.max(open);
        let due = self.last.is_none_or(|last| now.duration_since(last) >= MIN_GAP);
        if open < self.highest && due {
            self.highest = open;
            self.last = Some(now);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_given_back_after_sockets_closed_now_and_then() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut waves = AfterWaves::default();
        assert!(!waves.fewer_now(0, at(0)));
        assert!(!waves.fewer_now(1000, at(2)));
        assert!(waves.fewer_now(10, at(4)), "a wave left");
        assert!(!waves.fewer_now(10, at(6)));
        assert!(!waves.fewer_now(500, at(8)));
        assert!(!waves.fewer_now(0, at(10)), "too soon after the last");
        assert!(waves.fewer_now(0, at(34)), "the wave that left meanwhile is not forgotten");
        assert!(!waves.fewer_now(0, at(70)), "nothing left since");
        give_back();
    }
}
