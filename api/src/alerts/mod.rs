//! Alerts: rules on a host or server metric (a threshold held for a while), on server crashes, or
//! on suspicious activity (bursts of failed sign-ins, reused refresh tokens, FORBIDDEN answers
//! from one address), the alerts they raise (FIRING, then RESOLVED), acknowledgement, and webhook
//! delivery.
//!
//! The rules and alerts live in the database; [`engine`] evaluates them on every collector tick
//! and on every crash, and [`webhook`] delivers each change to the rule's URL in the background.

pub mod engine;
pub mod suspicion;
pub mod target;
pub mod webhook;

use std::{fmt, str::FromStr};

use chrono::Utc;
use entity::{alert, alert_rule};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set};
use shared::{Metric, Permission, Suspicion, metric::Scope};

pub use engine::AlertEngine;
pub use webhook::WebhookFormat;

use crate::{
    app::Services,
    audit::AuditBatch,
    auth::{Caller, ClientInfo},
    error::ApiError,
    events::HubEvent,
    servers::access,
};

/// The metric name of the rule type that fires when a server crashes.
pub const SERVER_CRASHED: &str = "server.crashed";

/// How a rule compares a value to its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Above,
    Below,
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }

    /// Whether `value` breaks the rule.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::Below => value < threshold,
        }
    }
}

impl FromStr for Comparison {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "above" => Ok(Self::Above),
            "below" => Ok(Self::Below),
            other => Err(format!("unknown comparison `{other}`")),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// FIRING or RESOLVED, as stored.
pub const FIRING: &str = "FIRING";
pub const RESOLVED: &str = "RESOLVED";

/// What a rule watches, parsed from its row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Watch {
    /// A metric of the host (server None) or of one server.
    Threshold { metric: Metric, comparison: Comparison, threshold: f64, for_seconds: i64 },
    /// Crashes of one server, or of every server.
    Crash,
    /// `threshold` or more events of a kind from one client address within `window` seconds.
    Suspicion { kind: Suspicion, threshold: u32, window: i64 },
}

/// Reads what a stored rule watches; None for a row this version cannot read.
pub fn watch_of(rule: &alert_rule::Model) -> Option<Watch> {
    if rule.metric == SERVER_CRASHED {
        return Some(Watch::Crash);
    }
    if let Some(kind) = Suspicion::parse(&rule.metric) {
        return Some(Watch::Suspicion {
            kind,
            threshold: rule.threshold.max(1.0) as u32,
            window: i64::from(rule.for_seconds.max(1)),
        });
    }
    Some(Watch::Threshold {
        metric: rule.metric.parse().ok()?,
        comparison: rule.comparison.parse().ok()?,
        threshold: rule.threshold,
        for_seconds: i64::from(rule.for_seconds),
    })
}

/// A new rule as the API takes it.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub name: String,
    pub metric: String,
    pub server_id: Option<i64>,
    pub comparison: Comparison,
    pub threshold: f64,
    pub for_seconds: i64,
    pub webhook_url: Option<String>,
    pub webhook_format: Option<WebhookFormat>,
}

/// Longest a condition may have to hold.
const MAX_FOR_SECONDS: i64 = 7 * 24 * 3600;
/// The longest window a security rule counts events in (its events are kept in memory).
pub const MAX_WINDOW: i64 = 24 * 3600;

pub async fn create_rule(
    s: &Services,
    caller: &Caller,
    new: NewRule,
    client: &ClientInfo,
) -> Result<alert_rule::Model, ApiError> {
    caller.require(Permission::AlertManage)?;
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 128 || shared::validation::has_hidden(&name) {
        return Err(ApiError::bad_input(
            "name",
            "a rule name has 1 to 128 characters and no control or invisible characters",
        ));
    }
    let scope = match new.server_id {
        Some(id) => {
            access::require(s.db.conn(), caller, id, Permission::ServerRead).await.map_err(|e| match e {
                ApiError::NotFound(_) | ApiError::Forbidden(_) => ApiError::bad_input("serverId", "no such server"),
                other => other,
            })?;
            Scope::Server
        }
        None => Scope::Host,
    };
    let suspicion = Suspicion::parse(&new.metric);
    if suspicion.is_some() {
        if new.server_id.is_some() {
            return Err(ApiError::bad_input("serverId", "a security rule watches the whole hub: no server"));
        }
        let most = suspicion::MAX_EVENTS;
        if !(new.threshold.fract() == 0.0 && (1.0..=f64::from(most)).contains(&new.threshold)) {
            return Err(ApiError::bad_input("threshold", format!("a whole number of events, 1 to {most}")));
        }
        if !(1..=MAX_WINDOW).contains(&new.for_seconds) {
            return Err(ApiError::bad_input("forSeconds", format!("the window is 1 to {MAX_WINDOW} seconds")));
        }
    } else if new.metric != SERVER_CRASHED {
        crate::monitor::parse_metric(&new.metric, scope)?;
        if !new.threshold.is_finite() {
            return Err(ApiError::bad_input("threshold", "the threshold is a finite number"));
        }
        if !(0..=MAX_FOR_SECONDS).contains(&new.for_seconds) {
            return Err(ApiError::bad_input("forSeconds", format!("forSeconds is 0 to {MAX_FOR_SECONDS}")));
        }
    }
    let url = new.webhook_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let format = match url {
        Some(url) => {
            let parsed = webhook::validate_url(url)?;
            s.alerts
                .targets()
                .check_url(&parsed)
                .await
                .map_err(|why| ApiError::bad_input("webhookUrl", format!("a webhook URL {why}")))?;
            Some(new.webhook_format.unwrap_or_else(|| WebhookFormat::guess(&parsed)))
        }
        None => None,
    };
    let crash = new.metric == SERVER_CRASHED;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let rule = alert_rule::ActiveModel {
        name: Set(name),
        metric: Set(new.metric.clone()),
        server_id: Set(new.server_id),
        comparison: Set(new.comparison.as_str().to_owned()),
        threshold: Set(if crash { 0.0 } else { new.threshold }),
        for_seconds: Set(if crash { 0 } else { new.for_seconds as i32 }),
        webhook_url: Set(url.map(str::to_owned)),
        webhook_format: Set(format.map(|f| f.as_str().to_owned())),
        enabled: Set(true),
        created_by: Set(Some(caller.user_id)),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    audit
        .record(&*txn, caller.audit("alert_rule.create", client).target("alert_rule", rule.id).detail(describe(&rule)))
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    s.alerts.rules_changed();
    Ok(rule)
}

pub async fn delete_rule(s: &Services, caller: &Caller, id: i64, client: &ClientInfo) -> Result<(), ApiError> {
    caller.require(Permission::AlertManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let rule = alert_rule::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("alert rule"))?;
    // Its alerts go with it (the foreign key cascades).
    alert_rule::Entity::delete_by_id(id).exec(&*txn).await?;
    audit
        .record(&*txn, caller.audit("alert_rule.delete", client).target("alert_rule", id).detail(describe(&rule)))
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    s.alerts.rules_changed();
    Ok(())
}

/// Pauses or resumes a rule. Pausing resolves its open alerts (audited, published): nothing
/// stays FIRING for a rule that no longer watches.
pub async fn set_enabled(
    s: &Services,
    caller: &Caller,
    id: i64,
    enabled: bool,
    client: &ClientInfo,
) -> Result<alert_rule::Model, ApiError> {
    caller.require(Permission::AlertManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let rule = alert_rule::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("alert rule"))?;
    if rule.enabled == enabled {
        return Ok(rule);
    }
    let mut active = rule.into_active_model();
    active.enabled = Set(enabled);
    let rule = active.update(&*txn).await?;
    let action = if enabled { "alert_rule.enable" } else { "alert_rule.disable" };
    audit.record(&*txn, caller.audit(action, client).target("alert_rule", id)).await?;
    let mut resolved = Vec::new();
    if !enabled {
        let open = alert::Entity::find()
            .filter(alert::Column::RuleId.eq(id))
            .filter(alert::Column::State.eq(FIRING))
            .all(&*txn)
            .await?;
        for found in open {
            let done = mark_resolved(&*txn, found).await?;
            let entry = caller
                .audit("alert.resolve", client)
                .target("alert", done.id)
                .detail(format!("{} (the rule was paused)", describe(&rule)));
            audit.record(&*txn, entry).await?;
            resolved.push(done);
        }
    }
    audit.finish(txn, s.bus.as_ref()).await?;
    s.alerts.rules_changed();
    for done in resolved {
        s.bus.publish(HubEvent::Alert(std::sync::Arc::new(done)));
    }
    Ok(rule)
}

pub async fn acknowledge(
    s: &Services,
    caller: &Caller,
    id: i64,
    client: &ClientInfo,
) -> Result<alert::Model, ApiError> {
    caller.require(Permission::AlertManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let found = alert::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("alert"))?;
    if found.acknowledged_by.is_some() {
        return Err(ApiError::Conflict { field: None, message: "this alert is already acknowledged".into() });
    }
    let mut active = found.into_active_model();
    active.acknowledged_by = Set(Some(caller.user_id));
    active.acknowledged_at = Set(Some(Utc::now()));
    let updated = active.update(&*txn).await?;
    audit.record(&*txn, caller.audit("alert.acknowledge", client).target("alert", id)).await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    s.bus.publish(HubEvent::Alert(std::sync::Arc::new(updated.clone())));
    Ok(updated)
}

pub async fn rules(s: &Services, caller: &Caller) -> Result<Vec<alert_rule::Model>, ApiError> {
    caller.require(Permission::AlertRead)?;
    Ok(alert_rule::Entity::find().order_by_asc(alert_rule::Column::Id).all(s.db.conn()).await?)
}

/// The most alerts one query lists (newest first).
const LIST_LIMIT: u64 = 500;

pub async fn alerts(s: &Services, caller: &Caller, state: Option<&str>) -> Result<Vec<alert::Model>, ApiError> {
    caller.require(Permission::AlertRead)?;
    let mut q = alert::Entity::find().order_by_desc(alert::Column::Id).limit(LIST_LIMIT);
    if let Some(state) = state {
        q = q.filter(alert::Column::State.eq(state));
    }
    Ok(q.all(s.db.conn()).await?)
}

/// Sets an open alert RESOLVED now, in the caller's transaction.
pub async fn mark_resolved<C: sea_orm::ConnectionTrait>(txn: &C, open: alert::Model) -> Result<alert::Model, ApiError> {
    let mut active = open.into_active_model();
    active.state = Set(RESOLVED.to_owned());
    active.resolved_at = Set(Some(Utc::now()));
    Ok(active.update(txn).await?)
}

/// A rule in words, for the audit log and webhooks (never its webhook URL: it may hold a token).
pub fn describe(rule: &alert_rule::Model) -> String {
    if let Some(Watch::Suspicion { kind, threshold, window }) = watch_of(rule) {
        return format!("{}: {threshold} or more {} from one address within {window} s", rule.name, kind.words());
    }
    let crash = rule.metric == SERVER_CRASHED;
    let whose = match rule.server_id {
        Some(id) => format!("server {id}"),
        None if crash => "any server".to_owned(),
        None => "the host".to_owned(),
    };
    if crash {
        return format!("{}: {whose} crashed", rule.name);
    }
    format!(
        "{}: {} of {whose} {} {} for {} s",
        rule.name, rule.metric, rule.comparison, rule.threshold, rule.for_seconds
    )
}
