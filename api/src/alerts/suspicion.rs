//! Suspicious activity: failed sign-ins, reused refresh tokens and FORBIDDEN answers, counted per
//! client address (an IPv6 client by its /64) in memory, against the enabled `security.*` rules.
//! When one address reaches a rule's threshold within its window the rule fires an alert about
//! that address (the alert's `subject`, and the address of its `alert.fire` audit entry); it
//! resolves once that address has been quiet for a window.
//!
//! Noting an event never waits: it goes into a bounded channel (a flood beyond it is dropped, not
//! queued), and one task counts and writes. Only kinds some enabled rule watches are counted, and
//! only as many events per address as the highest threshold on that kind, for as long as the
//! longest window: at most [`MAX_ADDRESSES`] addresses of at most [`MAX_EVENTS`] events of 4
//! bytes (40 MB at the very worst). When full, the address quiet the longest is forgotten, never
//! one with an open alert.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use entity::{alert, alert_rule};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use shared::Suspicion;
use tokio::{sync::mpsc, time::Instant};

use super::{Watch, watch_of};
use crate::{app::Services, auth::limits::address, error::ApiError};

/// Events waiting to be counted; more are dropped.
const QUEUE: usize = 4096;
/// Addresses counted at once.
const MAX_ADDRESSES: usize = 10_000;
/// The highest threshold of a security rule, and so the most events kept per address and kind.
pub const MAX_EVENTS: u32 = 1_000;
/// Open alerts one rule may have at once (a spread-out attack must not write without end).
const MAX_OPEN_PER_RULE: usize = 100;
/// How often quiet addresses are forgotten and their alerts resolved.
const SWEEP: Duration = Duration::from_secs(5);
/// Events are stamped in ticks of this many milliseconds since the watcher started.
const TICK_MS: u64 = 100;

type Signal = (Suspicion, String);

/// The sending end, and the receiving end until the watcher takes it.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Signal>,
    rx: Arc<Mutex<Option<mpsc::Receiver<Signal>>>>,
}

impl Default for Inbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self { tx, rx: Arc::new(Mutex::new(Some(rx))) }
    }
}

impl super::AlertEngine {
    /// Notes one suspicious event from `ip` (unknown: counted together as `unknown`).
    pub fn suspicious(&self, kind: Suspicion, ip: Option<&str>) {
        let _ = self.suspicions.tx.try_send((kind, ip.map_or_else(|| "unknown".to_owned(), address)));
    }
}

/// Counts the noted events and fires and resolves the security rules until `stop`.
pub fn watch(s: &Services, stop: tokio_util::sync::CancellationToken) {
    let Some(mut inbox) = s.alerts.suspicions.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let s = s.clone();
    s.tasks.clone().spawn(async move {
        let mut watcher =
            Watcher { counts: Counts::default(), open: HashMap::new(), seen: None, start: Instant::now() };
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            let outcome = tokio::select! {
                signal = inbox.recv() => match signal {
                    Some((kind, who)) => watcher.noted(&s, kind, &who).await,
                    None => break,
                },
                _ = sweep.tick() => watcher.sweep(&s).await,
                () = stop.cancelled() => break,
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "cannot evaluate the security rules");
            }
        }
    });
}

/// The security rules among the enabled ones: (rule, kind, threshold, window in ticks).
fn security_rules(rules: &[alert_rule::Model]) -> Vec<(&alert_rule::Model, Suspicion, u32, u32)> {
    rules
        .iter()
        .filter_map(|r| match watch_of(r) {
            Some(Watch::Suspicion { kind, threshold, window }) => {
                Some((r, kind, threshold, (window.max(1) as u64 * 1000 / TICK_MS) as u32))
            }
            _ => None,
        })
        .collect()
}

struct Watcher {
    counts: Counts,
    /// The open security alerts: (rule, address) -> alert id.
    open: HashMap<(i64, String), i64>,
    /// The rules `open` was read against: when the rules change, it is read again.
    seen: Option<Arc<Vec<alert_rule::Model>>>,
    start: Instant,
}

impl Watcher {
    fn now(&self) -> u32 {
        (self.start.elapsed().as_millis() as u64 / TICK_MS).min(u64::from(u32::MAX)) as u32
    }

    /// The enabled rules, with `open` read from the database again when they changed since (a
    /// rule paused or deleted while one of its alerts was being raised leaves nothing firing).
    async fn rules(&mut self, s: &Services) -> Result<Arc<Vec<alert_rule::Model>>, ApiError> {
        let rules = s.alerts.enabled_rules(s).await?;
        if self.seen.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, &rules)) {
            return Ok(rules);
        }
        let firing = alert::Entity::find()
            .filter(alert::Column::State.eq(super::FIRING))
            .filter(alert::Column::Subject.is_not_null())
            .all(s.db.conn())
            .await?;
        self.open.clear();
        for a in firing {
            let Some(who) = a.subject.clone() else { continue };
            if rules.iter().any(|r| r.id == a.rule_id) {
                self.open.insert((a.rule_id, who), a.id);
            } else if let Some(rule) = alert_rule::Entity::find_by_id(a.rule_id).one(s.db.conn()).await? {
                s.alerts.resolve(s, &rule, a.id).await?; // paused while it was being raised
            }
        }
        self.seen = Some(rules.clone());
        Ok(rules)
    }

    /// Counts one event and fires each rule on its kind that the address has now reached.
    async fn noted(&mut self, s: &Services, kind: Suspicion, who: &str) -> Result<(), ApiError> {
        let rules = self.rules(s).await?;
        let watching: Vec<_> = security_rules(&rules).into_iter().filter(|(_, k, ..)| *k == kind).collect();
        let Some(keep) = watching.iter().map(|(_, _, threshold, _)| *threshold).max() else {
            return Ok(()); // no rule watches this kind: nothing is kept
        };
        let now = self.now();
        let open = &self.open;
        let protected = |(_, w): &(Suspicion, String)| open.keys().any(|(_, o)| o == w);
        self.counts.note(kind, who, now, keep as usize, protected);
        for (rule, _, threshold, window) in watching {
            if self.open.contains_key(&(rule.id, who.to_owned())) {
                continue;
            }
            let seen = self.counts.within(kind, who, window, now);
            if seen < threshold as usize {
                continue;
            }
            if self.open.keys().filter(|(id, _)| *id == rule.id).count() >= MAX_OPEN_PER_RULE {
                tracing::warn!(rule = %rule.name, address = who, "too many open security alerts; not raising another");
                continue;
            }
            let id = s.alerts.fire(s, rule, None, Some(who), seen as f64).await?;
            self.open.insert((rule.id, who.to_owned()), id);
        }
        Ok(())
    }

    /// Forgets events older than every window and resolves the alerts whose address has been
    /// quiet for the rule's window.
    async fn sweep(&mut self, s: &Services) -> Result<(), ApiError> {
        let rules = self.rules(s).await?;
        let security = security_rules(&rules);
        let now = self.now();
        let longest = security.iter().map(|(.., window)| *window).max().unwrap_or(0);
        self.counts.forget_before(now.saturating_sub(longest));
        let mut quiet = Vec::new();
        for ((rule_id, who), id) in &self.open {
            let Some((rule, kind, _, window)) = security.iter().find(|(r, ..)| r.id == *rule_id) else { continue };
            if self.counts.newest(*kind, who).is_none_or(|t| now.saturating_sub(t) >= *window) {
                quiet.push(((*rule_id, who.clone()), *id, (*rule).clone()));
            }
        }
        for (key, id, rule) in quiet {
            s.alerts.resolve(s, &rule, id).await?;
            self.open.remove(&key);
        }
        Ok(())
    }
}

/// The recent events per (kind, address), in ticks, oldest first.
#[derive(Default)]
struct Counts(HashMap<(Suspicion, String), VecDeque<u32>>);

impl Counts {
    /// Keeps the newest `keep` events of the key; when the map is full, a new key takes the place
    /// of the one quiet the longest that `protected` does not hold, or is dropped.
    fn note(
        &mut self,
        kind: Suspicion,
        who: &str,
        at: u32,
        keep: usize,
        protected: impl Fn(&(Suspicion, String)) -> bool,
    ) {
        let key = (kind, who.to_owned());
        if !self.0.contains_key(&key) && self.0.len() >= MAX_ADDRESSES {
            let stalest = self
                .0
                .iter()
                .filter(|(k, _)| !protected(k))
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(k, _)| k.clone());
            match stalest {
                Some(k) => {
                    self.0.remove(&k);
                }
                None => return,
            }
        }
        let events = self.0.entry(key).or_default();
        events.push_back(at);
        while events.len() > keep.max(1) {
            events.pop_front();
        }
    }

    /// Events of `kind` from `who` in the last `window` ticks.
    fn within(&self, kind: Suspicion, who: &str, window: u32, now: u32) -> usize {
        let Some(events) = self.0.get(&(kind, who.to_owned())) else { return 0 };
        events.iter().rev().take_while(|t| now.saturating_sub(**t) < window).count()
    }

    fn newest(&self, kind: Suspicion, who: &str) -> Option<u32> {
        self.0.get(&(kind, who.to_owned()))?.back().copied()
    }

    fn forget_before(&mut self, before: u32) {
        self.0.retain(|_, events| {
            while events.front().is_some_and(|t| *t < before) {
                events.pop_front();
            }
            !events.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u32 = (1000 / TICK_MS) as u32;

    #[test]
    fn events_are_counted_per_address_within_the_window_and_bounded() {
        let mut counts = Counts::default();
        let none = |_: &(Suspicion, String)| false;
        for i in 0..5 {
            counts.note(Suspicion::LoginFailures, "203.0.113.9", i * 10 * SECOND, 100, none);
        }
        counts.note(Suspicion::LoginFailures, "198.51.100.1", 0, 100, none);
        let now = 40 * SECOND;
        assert_eq!(counts.within(Suspicion::LoginFailures, "203.0.113.9", 25 * SECOND, now), 3, "at 20, 30, 40 s");
        assert_eq!(counts.within(Suspicion::LoginFailures, "203.0.113.9", 3600 * SECOND, now), 5);
        assert_eq!(counts.within(Suspicion::Forbidden, "203.0.113.9", 3600 * SECOND, now), 0, "per kind");
        assert_eq!(counts.within(Suspicion::LoginFailures, "198.51.100.1", 3600 * SECOND, now), 1, "per address");
        counts.forget_before(15 * SECOND);
        assert_eq!(counts.within(Suspicion::LoginFailures, "203.0.113.9", 3600 * SECOND, now), 3);
        assert_eq!(counts.0.len(), 1, "an address with nothing left is forgotten");
        for _ in 0..50 {
            counts.note(Suspicion::Forbidden, "x", now, 7, none);
        }
        assert_eq!(counts.within(Suspicion::Forbidden, "x", 3600 * SECOND, now), 7, "only as many as a rule needs");
    }

    #[test]
    fn a_full_map_forgets_the_stalest_unprotected_address() {
        let mut counts = Counts::default();
        for i in 0..MAX_ADDRESSES as u32 {
            counts.note(Suspicion::Forbidden, &format!("10.0.{}.{}", i / 256, i % 256), i, 5, |_| false);
        }
        let oldest = (Suspicion::Forbidden, "10.0.0.0".to_owned());
        let keep_oldest = |k: &(Suspicion, String)| *k == oldest;
        counts.note(Suspicion::Forbidden, "192.0.2.1", 99_999, 5, keep_oldest);
        assert_eq!(counts.0.len(), MAX_ADDRESSES);
        assert!(counts.0.contains_key(&oldest), "an address with an open alert stays");
        assert!(!counts.0.contains_key(&(Suspicion::Forbidden, "10.0.0.1".to_owned())), "the next stalest went");
        counts.note(Suspicion::Forbidden, "192.0.2.2", 99_999, 5, |_| true);
        assert!(!counts.0.contains_key(&(Suspicion::Forbidden, "192.0.2.2".to_owned())), "nothing to forget: dropped");
    }
}
