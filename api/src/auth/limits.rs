//! Brute-force limits on sign-in and password-reset attempts, per account and per client IP.
//!
//! Every attempt counts, each alias and each item of a batched request included (each is its own
//! resolver call). Over the limit the answer is RATE_LIMITED with the seconds to wait.

use std::{num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::error::ApiError;

/// The two limiters, with the same refill window.
pub struct AttemptLimits {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for AttemptLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptLimits").finish_non_exhaustive()
    }
}

fn quota(burst: u32, window: Duration) -> Quota {
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    // One attempt comes back every window / burst; a full burst after one window.
    let period = window / burst.get();
    Quota::with_period(period.max(Duration::from_millis(1)))
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst)
}

impl AttemptLimits {
    pub fn new(per_account: u32, per_ip: u32, window: Duration) -> Self {
        Self {
            per_account: RateLimiter::keyed(quota(per_account, window)),
            per_ip: RateLimiter::keyed(quota(per_ip, window)),
        }
    }

    /// Counts one attempt on `account` (a normalised email) from `ip`.
    pub fn check(&self, account: &str, ip: Option<&str>) -> Result<(), ApiError> {
        let clock = governor::clock::DefaultClock::default();
        let mut wait = Duration::ZERO;
        if let Some(ip) = ip
            && let Err(not_until) = self.per_ip.check_key(&ip.to_owned())
        {
            wait = wait.max(not_until.wait_time_from(clock.now()));
        }
        if let Err(not_until) = self.per_account.check_key(&account.to_owned()) {
            wait = wait.max(not_until.wait_time_from(clock.now()));
        }
        if wait.is_zero() { Ok(()) } else { Err(ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) }) }
    }

    /// Drops the state of keys that have fully refilled (call now and then).
    pub fn tidy(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_passes_then_the_account_is_limited() {
        let limits = AttemptLimits::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            limits.check("a@x.org", Some("10.0.0.1")).unwrap();
        }
        match limits.check("a@x.org", Some("10.0.0.2")) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!((1..=20).contains(&retry_after_secs)),
            other => panic!("{other:?}"),
        }
        // Another account from the same address is not affected.
        limits.check("b@x.org", Some("10.0.0.1")).unwrap();
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let limits = AttemptLimits::new(100, 2, Duration::from_secs(60));
        limits.check("a@x.org", Some("10.0.0.9")).unwrap();
        limits.check("b@x.org", Some("10.0.0.9")).unwrap();
        assert!(limits.check("c@x.org", Some("10.0.0.9")).is_err());
    }
}
