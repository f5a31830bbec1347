//! Brute-force limits on sign-in, password checks and reset requests.
//!
//! Failures count, successes do not; each alias and each item of a batched request counts on
//! its own (each is its own resolver call). An attempt takes its place in the counters before
//! the password is checked and gives it back when it succeeds, so that attempts made at the same
//! moment (a batch, parallel requests) cannot all slip under the limit. Failures are counted
//! three ways:
//! - per (account, address): over `per_account`, that address may not try that account;
//! - per address: over `per_ip`, that address may not try any account;
//! - per account, from every address: over ten times `per_account`, a wrong password answers
//!   RATE_LIMITED, but a right one from an address that is not itself over its limits still
//!   signs in. Nobody can lock another person out by failing on their account.
//!
//! Each counter is a leaky bucket: it drains at `limit / window` per second, so a full burst is
//! allowed again one window after the last failure. Over a limit the answer is RATE_LIMITED with
//! the seconds to wait.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::error::ApiError;

/// How many times the (account, address) limit the account as a whole may fail.
const ACCOUNT_FACTOR: u32 = 10;

/// Failures per key, draining over time.
#[derive(Debug)]
struct Failures {
    limit: f64,
    /// Failures drained per second.
    drain: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Failures {
    fn new(limit: u32, window: Duration) -> Self {
        let limit = f64::from(limit.max(1));
        Self { limit, drain: limit / window.as_secs_f64().max(0.001), buckets: Mutex::default() }
    }

    fn level(&self, entry: Option<&(f64, Instant)>, now: Instant) -> f64 {
        entry.map_or(0.0, |(level, at)| (level - self.drain * now.duration_since(*at).as_secs_f64()).max(0.0))
    }

    /// The wait until the key is under its limit again, if it is over now.
    fn over(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // One more failure would pass the limit (the level drains continuously, so `limit`
        // failures a moment ago are a little under `limit` now).
        let allowed = self.limit - 1.0;
        let level = self.level(buckets.get(key), now);
        (level > allowed + 1e-6).then(|| Duration::from_secs_f64((level - allowed) / self.drain))
    }

    /// Counts a failure; returns the wait if the key is now over its limit.
    fn count(&self, key: String) -> Option<Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let level = self.level(buckets.get(&key), now) + 1.0;
        buckets.insert(key, (level, now));
        (level > self.limit).then(|| Duration::from_secs_f64((level - self.limit) / self.drain))
    }

    /// Takes back one count (an attempt that did not fail).
    fn refund(&self, key: &str) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = buckets.get(key).copied() {
            let level = (self.level(Some(&entry), now) - 1.0).max(0.0);
            buckets.insert(key.to_owned(), (level, now));
        }
    }

    fn tidy(&self) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.retain(|_, (level, at)| *level - self.drain * now.duration_since(*at).as_secs_f64() > 0.0);
    }
}

/// Limits on the GraphQL WebSocket: new sockets per address (a leaky bucket refilled over a
/// minute) and sockets open at once per account. A script that opens sockets in a loop, or one
/// account holding thousands, cannot wear the hub down.
#[derive(Debug)]
pub struct SocketLimits {
    opened: Failures,
    open: Mutex<HashMap<i64, usize>>,
    per_account: usize,
}

/// An account's place among its open sockets, given back when the socket ends.
#[derive(Debug)]
pub struct SocketSlot {
    limits: std::sync::Arc<SocketLimits>,
    user_id: i64,
}

impl SocketLimits {
    pub fn new(per_ip_per_minute: u32, per_account: u32) -> Self {
        Self {
            opened: Failures::new(per_ip_per_minute, Duration::from_secs(60)),
            open: Mutex::default(),
            per_account: per_account as usize,
        }
    }

    /// A new socket from `ip`: RATE_LIMITED (with the wait) past the address's rate.
    pub fn opening(&self, ip: &str) -> Result<(), ApiError> {
        self.opened.count(address(ip)).map_or(Ok(()), |wait| Err(limited(wait)))
    }

    /// A place for one more socket of the account, or None when it holds its limit.
    pub fn hold(self: &std::sync::Arc<Self>, user_id: i64) -> Option<SocketSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user_id).or_default();
        if *count >= self.per_account {
            return None;
        }
        *count += 1;
        Some(SocketSlot { limits: self.clone(), user_id })
    }

    /// Sockets open now, of every account.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }

    pub fn tidy(&self) {
        self.opened.tidy();
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

fn limited(wait: Duration) -> ApiError {
    ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) }
}

/// The three counters, with the same window.
#[derive(Debug)]
pub struct AttemptLimits {
    turn: Mutex<()>,
    per_pair: Failures,
    per_ip: Failures,
    per_account: Failures,
}

/// The key of a client address: an IPv6 address counts by its /64 (one host usually holds a
/// whole /64, and would otherwise get 2^64 fresh counters).
pub fn address(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().map(|a| a.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(v4) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

fn pair(account: &str, ip: Option<&str>) -> String {
    format!("{account}\u{0}{}", ip.map_or_else(|| "-".to_owned(), address))
}

impl AttemptLimits {
    pub fn new(per_account: u32, per_ip: u32, window: Duration) -> Self {
        Self {
            turn: Mutex::default(),
            per_pair: Failures::new(per_account, window),
            per_ip: Failures::new(per_ip, window),
            per_account: Failures::new(per_account.saturating_mul(ACCOUNT_FACTOR), window),
        }
    }

    /// Before a password is checked: RATE_LIMITED when this address is over its own limits, for
    /// this account or for all (others' failures never refuse it here); otherwise the attempt
    /// is counted until [`Self::succeeded`] takes it back.
    pub fn before(&self, account: &str, ip: Option<&str>) -> Result<(), ApiError> {
        let key = pair(account, ip);
        // One lock order (address, then pair) for the check and the count, so that two attempts
        // at once cannot both see room for one.
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let ip = ip.map(address);
        let wait =
            [ip.as_deref().and_then(|ip| self.per_ip.over(ip)), self.per_pair.over(&key)].into_iter().flatten().max();
        if let Some(w) = wait {
            return Err(limited(w));
        }
        self.per_pair.count(key);
        if let Some(ip) = ip {
            self.per_ip.count(ip);
        }
        Ok(())
    }

    /// The attempt let in by [`Self::before`] did not fail (or was not made): it no longer counts.
    pub fn succeeded(&self, account: &str, ip: Option<&str>) {
        self.per_pair.refund(&pair(account, ip));
        if let Some(ip) = ip {
            self.per_ip.refund(&address(ip));
        }
    }

    /// The attempt let in by [`Self::before`] failed: it stays counted, and counts against the
    /// account as a whole. Returns RATE_LIMITED (to answer instead of the failure) when the
    /// account is over its limit.
    pub fn failed(&self, account: &str) -> Option<ApiError> {
        self.per_account.count(account.to_owned()).map(limited)
    }

    /// An attempt that has no failure of its own (a reset request, a registration): allowed
    /// when the address is under its limits, and counted like a failure.
    pub fn attempt(&self, account: &str, ip: Option<&str>) -> Result<(), ApiError> {
        self.before(account, ip)
    }

    /// Drops the counters that have drained (call now and then).
    pub fn tidy(&self) {
        self.per_pair.tidy();
        self.per_ip.tidy();
        self.per_account.tidy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_limited_per_address_and_per_account() {
        let limits = std::sync::Arc::new(SocketLimits::new(3, 2));
        for _ in 0..3 {
            limits.opening("10.0.0.1").unwrap();
        }
        assert!(matches!(limits.opening("10.0.0.1"), Err(ApiError::RateLimited { .. })));
        limits.opening("10.0.0.2").unwrap();
        let (a, b) = (limits.hold(7).unwrap(), limits.hold(7).unwrap());
        assert!(limits.hold(7).is_none(), "a third socket of the account");
        assert!(limits.hold(8).is_some(), "another account is not concerned");
        drop(a);
        let c = limits.hold(7).expect("a place is given back when its socket ends");
        drop((b, c));
        assert!(limits.open.lock().unwrap().get(&7).is_none(), "nothing kept for an account without sockets");
    }

    fn fail(limits: &AttemptLimits, account: &str, ip: &str) -> Result<Option<ApiError>, ApiError> {
        limits.before(account, Some(ip))?;
        Ok(limits.failed(account))
    }

    #[test]
    fn failures_from_one_address_limit_that_address_only() {
        let limits = AttemptLimits::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(fail(&limits, "a@x.org", "10.0.0.1").unwrap().is_none());
        }
        match limits.before("a@x.org", Some("10.0.0.1")) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!((1..=20).contains(&retry_after_secs)),
            other => panic!("{other:?}"),
        }
        // The same account from another address, and another account from this one, may try.
        limits.before("a@x.org", Some("10.0.0.2")).unwrap();
        limits.before("b@x.org", Some("10.0.0.1")).unwrap();
    }

    #[test]
    fn successes_give_their_place_back() {
        let limits = AttemptLimits::new(2, 100, Duration::from_secs(60));
        for _ in 0..10 {
            limits.before("a@x.org", Some("10.0.0.1")).unwrap();
            limits.succeeded("a@x.org", Some("10.0.0.1"));
        }
        // Attempts in flight at once count until they end: the third waits for a result.
        limits.before("a@x.org", Some("10.0.0.1")).unwrap();
        limits.before("a@x.org", Some("10.0.0.1")).unwrap();
        assert!(limits.before("a@x.org", Some("10.0.0.1")).is_err());
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let limits = AttemptLimits::new(100, 2, Duration::from_secs(60));
        fail(&limits, "a@x.org", "10.0.0.9").unwrap();
        fail(&limits, "b@x.org", "10.0.0.9").unwrap();
        assert!(limits.before("c@x.org", Some("10.0.0.9")).is_err());
    }

    #[test]
    fn an_account_failing_everywhere_throttles_failures_only() {
        let limits = AttemptLimits::new(2, 1000, Duration::from_secs(60));
        let mut throttled = 0;
        for n in 0..25 {
            throttled += usize::from(fail(&limits, "a@x.org", &format!("10.1.0.{n}")).unwrap().is_some());
        }
        assert_eq!(throttled, 5, "failures past 20 answer RATE_LIMITED");
        // The owner, from a clean address, is not refused before the check.
        limits.before("a@x.org", Some("192.0.2.7")).unwrap();
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let limits = AttemptLimits::new(2, 100, Duration::from_secs(60));
        fail(&limits, "a@x.org", "2001:db8:1:2::1").unwrap();
        fail(&limits, "a@x.org", "2001:db8:1:2:ffff::9").unwrap();
        assert!(limits.before("a@x.org", Some("2001:db8:1:2:abcd::7")).is_err());
        limits.before("a@x.org", Some("2001:db8:1:3::1")).unwrap();
        assert_eq!(address("::ffff:10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn counters_drain() {
        let limits = AttemptLimits::new(1, 100, Duration::from_millis(50));
        fail(&limits, "a@x.org", "10.0.0.1").unwrap();
        assert!(limits.before("a@x.org", Some("10.0.0.1")).is_err());
        std::thread::sleep(Duration::from_millis(80));
        limits.before("a@x.org", Some("10.0.0.1")).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        limits.tidy();
        assert!(limits.per_pair.buckets.lock().unwrap().is_empty());
    }
}
