//! A short-lived cache of resolved callers, keyed by session, so that a request does not cost
//! four queries. Every change of a user's roles, grants, account or sessions invalidates it at
//! once (see `Services::access_changed`), so a revoked token stops working on the next request.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::Caller;

/// How long an entry is trusted without a change notice (a safety net, not the mechanism).
const TTL: Duration = Duration::from_secs(60);
/// Beyond this many sessions the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;
/// Loads of callers take turns in this many lanes (by session).
const LANES: usize = 64;

#[derive(Debug)]
pub struct CallerCache {
    entries: Mutex<Entries>,
    /// A session's caller is loaded by one request at a time: a burst of sockets of one session
    /// (a client reconnecting its tabs, a load test) loads it once, the others wait for a turn
    /// and find it cached, instead of each holding a query's state while the pool is busy.
    lanes: [tokio::sync::Mutex<()>; LANES],
}

impl Default for CallerCache {
    fn default() -> Self {
        Self { entries: Mutex::default(), lanes: std::array::from_fn(|_| tokio::sync::Mutex::new(())) }
    }
}

#[derive(Debug, Default)]
struct Entries {
    callers: HashMap<i64, (Caller, Instant)>,
    /// Bumped by every invalidation: a caller loaded before one is not stored after it.
    epoch: u64,
}

impl CallerCache {
    pub fn get(&self, session_id: i64) -> Option<Caller> {
        let entries = self.entries.lock().ok()?;
        entries.callers.get(&session_id).filter(|(_, at)| at.elapsed() < TTL).map(|(c, _)| c.clone())
    }

    /// Waits for the turn of a session's lane; load its caller while holding it.
    pub async fn turn(&self, session_id: i64) -> tokio::sync::MutexGuard<'_, ()> {
        self.lanes[session_id.rem_euclid(LANES as i64) as usize].lock().await
    }

    /// The epoch to read before loading a caller, and to give [`Self::insert`] after.
    pub fn epoch(&self) -> u64 {
        self.entries.lock().map(|e| e.epoch).unwrap_or(u64::MAX)
    }

    /// Keeps a caller loaded at `epoch`, unless some access changed since: then what was loaded
    /// may already be stale, and the next request loads again.
    pub fn insert(&self, epoch: u64, caller: Caller) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.epoch != epoch {
                return;
            }
            if entries.callers.len() >= MAX_ENTRIES {
                entries.callers.clear();
            }
            entries.callers.insert(caller.session_id, (caller, Instant::now()));
        }
    }

    /// Forgets every session of a user (None: every session).
    pub fn invalidate_user(&self, user_id: Option<i64>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.epoch = entries.epoch.wrapping_add(1);
            match user_id {
                Some(id) => entries.callers.retain(|_, (c, _)| c.user_id != id),
                None => entries.callers.clear(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user_id: i64, session_id: i64) -> Caller {
        Caller {
            user_id,
            session_id,
            email: format!("u{user_id}@x.org"),
            permissions: Default::default(),
            session_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        }
    }

    #[test]
    fn invalidation_forgets_only_that_user() {
        let cache = CallerCache::default();
        cache.insert(cache.epoch(), caller(1, 10));
        cache.insert(cache.epoch(), caller(1, 11));
        cache.insert(cache.epoch(), caller(2, 20));
        cache.invalidate_user(Some(1));
        assert!(cache.get(10).is_none() && cache.get(11).is_none());
        assert_eq!(cache.get(20).map(|c| c.user_id), Some(2));
        cache.invalidate_user(None);
        assert!(cache.get(20).is_none());
    }

    #[test]
    fn a_caller_loaded_before_an_invalidation_is_not_kept() {
        let cache = CallerCache::default();
        let epoch = cache.epoch();
        // ... the caller is loaded here, then the session is revoked and the cache told ...
        cache.invalidate_user(Some(1));
        cache.insert(epoch, caller(1, 10));
        assert!(cache.get(10).is_none());
    }
}
