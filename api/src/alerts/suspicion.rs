//! Suspicious activity: failed sign-ins, reused refresh tokens and FORBIDDEN answers, counted per
//! client address in memory, against the enabled `security.*` rules. When one address reaches a
//! rule's threshold within its window the rule fires an alert about that address (the alert's
//! `subject`, and the address of its `alert.fire` audit entry); it resolves once the address has
//! been quiet for a window.
//!
//! Noting an event never waits: it goes into a bounded channel (a flood beyond it is dropped, not
//! queued), and one task counts and writes. Counts are bounded too: at most [`MAX_ADDRESSES`]
//! addresses and [`MAX_EVENTS`] events each, the oldest forgotten first.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use shared::Suspicion;
use tokio::{sync::mpsc, time::Instant};

use super::{MAX_WINDOW, Watch, watch_of};
use crate::app::Services;

/// Events waiting to be counted; more are dropped.
const QUEUE: usize = 4096;
/// Addresses counted at once.
const MAX_ADDRESSES: usize = 50_000;
/// Events remembered per address and kind.
const MAX_EVENTS: usize = 10_000;
/// How often quiet addresses are forgotten and their alerts resolved.
const SWEEP: Duration = Duration::from_secs(5);

type Signal = (Suspicion, String);

/// The sending end, and the receiving end until the watcher takes it.
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

impl Clone for Inbox {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), rx: self.rx.clone() }
    }
}

impl super::AlertEngine {
    /// Notes one suspicious event from `ip` (unknown: counted together as `unknown`).
    pub fn suspicious(&self, kind: Suspicion, ip: Option<&str>) {
        let _ = self.suspicions.tx.try_send((kind, ip.unwrap_or("unknown").to_owned()));
    }
}

/// Counts the noted events and fires and resolves the security rules until `stop`.
pub fn watch(s: &Services, stop: tokio_util::sync::CancellationToken) {
    let Some(mut inbox) = s.alerts.suspicions.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let s = s.clone();
    s.tasks.clone().spawn(async move {
        let mut counts = Counts::default();
        let mut open = Open::default();
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                signal = inbox.recv() => match signal {
                    Some((kind, who)) => {
                        counts.note(kind, &who, Instant::now());
                        if let Err(e) = fire(&s, &counts, &mut open, kind, &who).await {
                            tracing::warn!(error = %e, "cannot evaluate the security rules");
                        }
                    }
                    None => break,
                },
                _ = sweep.tick() => {
                    counts.forget_before(Instant::now() - Duration::from_secs(MAX_WINDOW as u64));
                    if let Err(e) = resolve(&s, &counts, &mut open).await {
                        tracing::warn!(error = %e, "cannot resolve the security alerts");
                    }
                }
                () = stop.cancelled() => break,
            }
        }
    });
}

/// The recent events per (kind, address), oldest first.
#[derive(Default)]
struct Counts(HashMap<(Suspicion, String), VecDeque<Instant>>);

impl Counts {
    fn note(&mut self, kind: Suspicion, who: &str, at: Instant) {
        if self.0.len() >= MAX_ADDRESSES && !self.0.contains_key(&(kind, who.to_owned())) {
            // Full: forget the address whose newest event is the oldest.
            if let Some(stalest) = self.0.iter().min_by_key(|(_, q)| q.back().copied()).map(|(k, _)| k.clone()) {
                self.0.remove(&stalest);
            }
        }
        let events = self.0.entry((kind, who.to_owned())).or_default();
        if events.len() >= MAX_EVENTS {
            events.pop_front();
        }
        events.push_back(at);
    }

    /// Events of `kind` from `who` in the `window` seconds before now.
    fn within(&self, kind: Suspicion, who: &str, window: i64, now: Instant) -> usize {
        let Some(events) = self.0.get(&(kind, who.to_owned())) else { return 0 };
        let since = now.checked_sub(Duration::from_secs(window.max(0) as u64));
        events.iter().rev().take_while(|t| since.is_none_or(|since| **t > since)).count()
    }

    fn forget_before(&mut self, before: Instant) {
        self.0.retain(|_, events| {
            while events.front().is_some_and(|t| *t <= before) {
                events.pop_front();
            }
            !events.is_empty()
        });
    }
}

/// The open security alerts: (rule, address) -> alert id. Loaded from the database on first use,
/// so alerts left FIRING by an earlier run resolve once their address is quiet.
#[derive(Default)]
struct Open(Option<HashMap<(i64, String), i64>>);

impl Open {
    async fn get(&mut self, s: &Services) -> Result<&mut HashMap<(i64, String), i64>, crate::error::ApiError> {
        use entity::alert;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        if self.0.is_none() {
            let rows = alert::Entity::find()
                .filter(alert::Column::State.eq(super::FIRING))
                .filter(alert::Column::Subject.is_not_null())
                .all(s.db.conn())
                .await?;
            self.0 = Some(rows.into_iter().filter_map(|a| Some(((a.rule_id, a.subject?), a.id))).collect());
        }
        Ok(self.0.get_or_insert_default())
    }
}

/// Fires each enabled rule on `kind` that `who` has now reached.
async fn fire(
    s: &Services,
    counts: &Counts,
    open: &mut Open,
    kind: Suspicion,
    who: &str,
) -> Result<(), crate::error::ApiError> {
    let rules = s.alerts.enabled_rules(s).await?;
    let open = open.get(s).await?;
    let now = Instant::now();
    for rule in rules.iter() {
        let Some(Watch::Suspicion { kind: k, threshold, window }) = watch_of(rule) else { continue };
        if k != kind || open.contains_key(&(rule.id, who.to_owned())) {
            continue;
        }
        let seen = counts.within(kind, who, window, now);
        if seen >= threshold as usize {
            let id = s.alerts.fire(s, rule, None, Some(who), seen as f64).await?;
            open.insert((rule.id, who.to_owned()), id);
        }
    }
    Ok(())
}

/// Resolves the alerts whose address fell below the threshold (or whose rule is gone or paused).
async fn resolve(s: &Services, counts: &Counts, open: &mut Open) -> Result<(), crate::error::ApiError> {
    let rules = s.alerts.enabled_rules(s).await?;
    let open = open.get(s).await?;
    let now = Instant::now();
    let mut done = Vec::new();
    for ((rule_id, who), id) in open.iter() {
        let Some(rule) = rules.iter().find(|r| r.id == *rule_id) else {
            done.push((*rule_id, who.clone())); // deleted (its alerts with it) or paused (resolved then)
            continue;
        };
        let Some(Watch::Suspicion { kind, threshold, window }) = watch_of(rule) else { continue };
        if counts.within(kind, who, window, now) < threshold as usize {
            s.alerts.resolve(s, rule, *id).await?;
            done.push((*rule_id, who.clone()));
        }
    }
    for key in done {
        open.remove(&key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_per_address_within_the_window_and_bounded() {
        let mut counts = Counts::default();
        let t0 = Instant::now();
        for i in 0..5 {
            counts.note(Suspicion::LoginFailures, "203.0.113.9", t0 + Duration::from_secs(i * 10));
        }
        counts.note(Suspicion::LoginFailures, "198.51.100.1", t0);
        let now = t0 + Duration::from_secs(40);
        assert_eq!(counts.within(Suspicion::LoginFailures, "203.0.113.9", 25, now), 3, "at 20, 30 and 40 s");
        assert_eq!(counts.within(Suspicion::LoginFailures, "203.0.113.9", 3600, now), 5);
        assert_eq!(counts.within(Suspicion::Forbidden, "203.0.113.9", 3600, now), 0, "per kind");
        assert_eq!(counts.within(Suspicion::LoginFailures, "198.51.100.1", 3600, now), 1, "per address");
        counts.forget_before(t0 + Duration::from_secs(15));
        assert_eq!(counts.within(Suspicion::LoginFailures, "203.0.113.9", 3600, now), 3);
        assert_eq!(counts.0.len(), 1, "an address with nothing left is forgotten");
        for _ in 0..MAX_EVENTS + 10 {
            counts.note(Suspicion::Forbidden, "x", now);
        }
        assert_eq!(counts.within(Suspicion::Forbidden, "x", 3600, now), MAX_EVENTS);
    }
}
