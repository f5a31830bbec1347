//! A short-lived cache of resolved callers, keyed by session, so that a request does not cost
//! four queries. Every change of a user's roles, grants, account or sessions invalidates it at
//! once (see `Services::access_changed`), so a revoked token stops working on the next request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::OwnedMutexGuard;

use super::Caller;

/// How long an entry is trusted without a change notice (a safety net, not the mechanism).
const TTL: Duration = Duration::from_secs(60);
/// Beyond this many sessions the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub struct CallerCache {
    entries: Mutex<Entries>,
    /// A session's caller is loaded by one request at a time: a burst of sockets of one session
    /// (a client reconnecting its tabs, a load test) loads it once, the others wait for their
    /// turn and find it cached, instead of each holding a query's state while the pool is busy.
    /// Other sessions never wait for it. Only sessions being loaded have an entry.
    turns: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn to load a session's caller; the next waiting request's once dropped.
pub struct Turn<'a> {
    cache: &'a CallerCache,
    session_id: i64,
    lane: Arc<tokio::sync::Mutex<()>>,
    held: Option<OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.held = None;
        if let Ok(mut turns) = self.cache.turns.lock() {
            // Clones are only taken under this lock: two are the map's and this turn's.
            if Arc::strong_count(&self.lane) == 2 {
                turns.remove(&self.session_id);
            }
        }
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

    /// Waits for the turn to load a session's caller; load it while holding the turn.
    pub async fn turn(&self, session_id: i64) -> Turn<'_> {
        let lane = self.turns.lock().unwrap_or_else(|e| e.into_inner()).entry(session_id).or_default().clone();
        let mut turn = Turn { cache: self, session_id, lane, held: None };
        turn.held = Some(turn.lane.clone().lock_owned().await);
        turn
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
        Caller::from(crate::auth::Who {
            user_id,
            session_id,
            email: format!("u{user_id}@x.org"),
            permissions: Default::default(),
            session_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        })
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

    #[tokio::test]
    async fn a_session_loads_one_at_a_time_and_leaves_no_trace() {
        let cache = CallerCache::default();
        let first = cache.turn(1).await;
        // Another session is not held up.
        drop(cache.turn(2).await);
        assert!(tokio::time::timeout(Duration::from_millis(50), cache.turn(1)).await.is_err(), "one at a time");
        drop(first);
        drop(cache.turn(1).await);
        assert!(cache.turns.lock().unwrap().is_empty());
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
