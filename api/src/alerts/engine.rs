//! Evaluates the rules: on every collector tick (thresholds held for a while) and on every server
//! state change (crashes). A change of an alert is written with its audit entry in one
//! transaction, published for the `alerts` subscription, then delivered to the rule's webhook in
//! the background: a slow or broken webhook never holds up the collector or the next tick.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{alert, alert_rule, game_server};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use shared::ServerState;
use tokio::sync::Mutex;

use super::{
    FIRING, Watch, describe,
    target::Targets,
    watch_of,
    webhook::{Delivery, Notice, WebhookFormat},
};
use crate::{
    app::Services,
    audit::{AuditBatch, Entry},
    config::Settings,
    error::ApiError,
    events::{HubEvent, ServerStateEvent, Topic},
    monitor::{
        SeriesKey, Target,
        chart::{self, ChartFormat, ChartSpec},
    },
};

/// One rule's condition on one series (a crash rule has one per server).
#[derive(Debug, Default, Clone, Copy)]
struct Track {
    /// Since when the condition holds.
    since: Option<DateTime<Utc>>,
    /// The open alert.
    firing: Option<i64>,
}

/// (rule id, server id).
type Key = (i64, Option<i64>);

/// The enabled rules as last read, with the generation they were read at.
type RuleCache = Option<(u64, Arc<Vec<alert_rule::Model>>)>;

/// The alert evaluator. Cheap to clone.
#[derive(Clone)]
pub struct AlertEngine {
    tracks: Arc<Mutex<Option<HashMap<Key, Track>>>>,
    /// Read from the database again only after a rule changed (see [`AlertEngine::rules_changed`]),
    /// not on every tick.
    rules: Arc<Mutex<RuleCache>>,
    generation: Arc<AtomicU64>,
    delivery: Delivery,
    /// Signs of suspicious activity on their way to [`super::suspicion::watch`].
    pub(super) suspicions: super::suspicion::Inbox,
}

impl AlertEngine {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let delivery = Delivery::new(
            Duration::from_secs(settings.webhook_timeout),
            settings.webhook_retries,
            Duration::from_millis(settings.webhook_backoff_ms),
            Targets::new(settings.webhook_allow_list()?),
        )?;
        Ok(Self {
            tracks: Arc::default(),
            rules: Arc::default(),
            generation: Arc::default(),
            delivery,
            suspicions: super::suspicion::Inbox::default(),
        })
    }

    /// Which addresses webhooks may reach.
    pub fn targets(&self) -> &super::target::Targets {
        self.delivery.targets()
    }

    /// Says that a rule was created, deleted, paused or resumed (after the commit).
    pub fn rules_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The enabled rules. The generation is taken before the read, so a change committed while
    /// reading makes the next call read again.
    pub(super) async fn enabled_rules(&self, s: &Services) -> Result<Arc<Vec<alert_rule::Model>>, ApiError> {
        let mut cache = self.rules.lock().await;
        let now = self.generation.load(Ordering::SeqCst);
        if let Some((generation, rules)) = cache.as_ref()
            && *generation == now
        {
            return Ok(rules.clone());
        }
        let rules =
            Arc::new(alert_rule::Entity::find().filter(alert_rule::Column::Enabled.eq(true)).all(s.db.conn()).await?);
        *cache = Some((now, rules.clone()));
        Ok(rules)
    }

    /// The tracks, with the alerts left FIRING by an earlier run of the hub on the first use.
    async fn tracks<'a>(
        &'a self,
        s: &Services,
    ) -> Result<tokio::sync::MappedMutexGuard<'a, HashMap<Key, Track>>, ApiError> {
        let mut guard = self.tracks.lock().await;
        if guard.is_none() {
            // Security alerts (with a subject) are tracked by the suspicion watcher.
            let open = alert::Entity::find()
                .filter(alert::Column::State.eq(FIRING))
                .filter(alert::Column::Subject.is_null())
                .all(s.db.conn())
                .await?;
            let tracks = open
                .into_iter()
                .map(|a| ((a.rule_id, a.server_id), Track { since: Some(a.started_at), firing: Some(a.id) }))
                .collect();
            *guard = Some(tracks);
        }
        Ok(tokio::sync::MutexGuard::map(guard, |t| t.get_or_insert_default()))
    }

    /// Evaluates the threshold rules against one tick's values (see [`crate::monitor::Tick::values`]).
    pub async fn observe(&self, s: &Services, now: DateTime<Utc>, values: &[(SeriesKey, f64)]) -> Result<(), ApiError> {
        let rules = self.enabled_rules(s).await?;
        let values: HashMap<SeriesKey, f64> = values.iter().copied().collect();
        let mut tracks = self.tracks(s).await?;
        // Forget the tracks of rules deleted or disabled since.
        tracks.retain(|(rule_id, _), _| rules.iter().any(|r| r.id == *rule_id));
        for rule in rules.iter() {
            let Some(Watch::Threshold { metric, comparison, threshold, for_seconds }) = watch_of(rule) else {
                continue;
            };
            let key = (rule.id, rule.server_id);
            let value = values.get(&SeriesKey { server_id: rule.server_id, metric }).copied();
            let track = tracks.entry(key).or_default();
            match value {
                Some(v) if comparison.breached(v, threshold) => {
                    let since = *track.since.get_or_insert(now);
                    if track.firing.is_none() && (now - since).num_seconds() >= for_seconds {
                        track.firing = Some(self.fire(s, rule, rule.server_id, None, v).await?);
                    }
                }
                // Back within bounds, or no value any more (the server stopped).
                _ => {
                    track.since = None;
                    if let Some(id) = track.firing.take() {
                        self.resolve(s, rule, id).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Fires the crash rules that cover a server that crashed; resolves them when it runs again
    /// or is stopped.
    pub async fn server_state(&self, s: &Services, event: &ServerStateEvent) -> Result<(), ApiError> {
        if !matches!(event.state, ServerState::Crashed | ServerState::Running | ServerState::Offline) {
            return Ok(());
        }
        let rules = self.enabled_rules(s).await?;
        let mut tracks = self.tracks(s).await?;
        let covering = rules.iter().filter(|r| watch_of(r) == Some(Watch::Crash));
        for rule in covering.filter(|r| r.server_id.is_none_or(|id| id == event.server_id)) {
            let track = tracks.entry((rule.id, Some(event.server_id))).or_default();
            match (event.state, track.firing) {
                (ServerState::Crashed, None) => {
                    track.since = Some(event.at);
                    track.firing = Some(self.fire(s, rule, Some(event.server_id), None, 1.0).await?);
                }
                (ServerState::Running | ServerState::Offline, Some(id)) => {
                    *track = Track::default();
                    self.resolve(s, rule, id).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Raises an alert of `rule` about a server (None: the host) or, for a security rule, a
    /// client address (`subject`, also the audit entry's address).
    pub(super) async fn fire(
        &self,
        s: &Services,
        rule: &alert_rule::Model,
        server_id: Option<i64>,
        subject: Option<&str>,
        value: f64,
    ) -> Result<i64, ApiError> {
        let mut audit = AuditBatch::default();
        let txn = s.db.write().await?;
        let fired = alert::ActiveModel {
            rule_id: Set(rule.id),
            server_id: Set(server_id),
            subject: Set(subject.map(str::to_owned)),
            state: Set(FIRING.to_owned()),
            value: Set(value),
            started_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        let detail = match subject {
            Some(who) => format!("{} ({value} from {who})", describe(rule)),
            None => format!("{} (value {value})", describe(rule)),
        };
        let entry = Entry::new("alert.fire", None).target("alert", fired.id).detail(detail);
        audit.record(&*txn, entry.ip(subject.map(str::to_owned))).await?;
        audit.finish(txn, s.bus.as_ref()).await?;
        tracing::warn!(alert = fired.id, rule = %rule.name, value, "alert firing");
        self.changed(s, rule, fired.clone());
        Ok(fired.id)
    }

    pub(super) async fn resolve(&self, s: &Services, rule: &alert_rule::Model, id: i64) -> Result<(), ApiError> {
        let mut audit = AuditBatch::default();
        let txn = s.db.write().await?;
        // Gone with its rule, or resolved already (its rule was disabled).
        let Some(open) = alert::Entity::find_by_id(id).one(&*txn).await?.filter(|a| a.state == FIRING) else {
            return Ok(());
        };
        let resolved = super::mark_resolved(&*txn, open).await?;
        audit.record(&*txn, Entry::new("alert.resolve", None).target("alert", id).detail(describe(rule))).await?;
        audit.finish(txn, s.bus.as_ref()).await?;
        tracing::info!(alert = id, rule = %rule.name, "alert resolved");
        self.changed(s, rule, resolved);
        Ok(())
    }

    /// Publishes an alert's change and delivers it to the rule's webhook in the background.
    fn changed(&self, s: &Services, rule: &alert_rule::Model, alert: alert::Model) {
        s.bus.publish(HubEvent::Alert(Arc::new(alert.clone())));
        let Some(url) = rule.webhook_url.clone() else { return };
        let format = rule.webhook_format.as_deref().and_then(|f| f.parse().ok()).unwrap_or(WebhookFormat::Generic);
        let (s, rule, delivery) = (s.clone(), rule.clone(), self.delivery.clone());
        s.tasks.clone().spawn(async move {
            let server = match alert.server_id {
                Some(id) => game_server::Entity::find_by_id(id).one(s.db.conn()).await.ok().flatten().map(|g| g.name),
                None => None,
            };
            let notice = Notice {
                hub: &s.settings.hub_name,
                rule: &rule,
                alert: &alert,
                server: server.as_deref(),
                chart_url: chart_link(&s, &rule, &alert),
            };
            let outcome = delivery.post(&url, &notice.body(format)).await;
            if let Err(e) = record_delivery(&s, alert.id, outcome).await {
                tracing::warn!(alert = alert.id, error = %e, "cannot record a webhook delivery");
            }
        });
    }
}

/// How long a chart link in a webhook works.
const CHART_LINK_DAYS: i64 = 7;

/// A signed link to a PNG of the rule's metric around the alert, when the hub knows the address
/// the webhook's target can reach it at (KUTANGA_PUBLIC_URL); crash alerts have no metric.
fn chart_link(s: &Services, rule: &alert_rule::Model, alert: &alert::Model) -> Option<String> {
    let base = s.settings.public_url.as_deref()?;
    let Some(Watch::Threshold { .. }) = watch_of(rule) else { return None };
    let target = alert.server_id.map_or(Target::Host, Target::Server);
    let spec = ChartSpec {
        title: String::new(),
        from: alert.started_at - chrono::Duration::hours(1),
        to: alert.resolved_at.unwrap_or_else(Utc::now) + chrono::Duration::minutes(5),
        width: 800,
        height: 400,
    };
    let expires = (Utc::now() + chrono::Duration::days(CHART_LINK_DAYS)).timestamp();
    let path = chart::path(target, &rule.metric, ChartFormat::Png);
    Some(chart::signed_link(&s.keys, base, &path, &spec, expires))
}

/// Writes a delivery's outcome on the alert (an error stays visible until a delivery succeeds).
async fn record_delivery(s: &Services, id: i64, outcome: Result<u32, String>) -> Result<(), ApiError> {
    let error = match outcome {
        Ok(attempts) => {
            tracing::debug!(alert = id, attempts, "webhook delivered");
            None
        }
        Err(e) => {
            tracing::warn!(alert = id, error = %e, "webhook delivery failed");
            Some(e)
        }
    };
    let txn = s.db.write().await?;
    let Some(found) = alert::Entity::find_by_id(id).one(&*txn).await? else { return Ok(()) };
    if found.webhook_error == error {
        return Ok(());
    }
    let mut active = found.into_active_model();
    active.webhook_error = Set(error);
    let updated = active.update(&*txn).await?;
    txn.commit().await?;
    s.bus.publish(HubEvent::Alert(Arc::new(updated)));
    Ok(())
}

/// Feeds every server state change to the crash rules until `stop`.
pub fn watch_crashes(s: &Services, stop: tokio_util::sync::CancellationToken) {
    use futures_util::StreamExt;
    let s = s.clone();
    let mut events = s.bus.subscribe(Topic::ServerState);
    s.tasks.clone().spawn(async move {
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(HubEvent::ServerState(change)) => {
                        if let Err(e) = s.alerts.server_state(&s, &change).await {
                            tracing::warn!(error = %e, "cannot evaluate the crash rules");
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                () = stop.cancelled() => break,
            }
        }
    });
}
