//! The audit trail: who did what to what, with what outcome, when and from where.
//!
//! [`AuditBatch::record`] is the one function every feature calls to write an entry, inside the
//! same transaction as the change it records; the batch publishes the entries on the event bus
//! only after the caller has committed. Entries are never changed or deleted through the API.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::events::{EventBus, HubEvent};

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failure => "failure",
        }
    }
}

/// Who acted: a user, or the hub itself (`None` in [`Entry::actor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: i64,
    pub email: String,
}

/// One entry to record.
#[derive(Debug, Clone)]
pub struct Entry {
    pub actor: Option<Actor>,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub detail: Option<String>,
    pub ip: Option<String>,
}

impl Entry {
    /// A successful action by `actor` (None: the hub).
    pub fn new(action: &'static str, actor: Option<Actor>) -> Self {
        Self { actor, action, target_type: None, target_id: None, outcome: Outcome::Success, detail: None, ip: None }
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
}

/// Entries written in one transaction, published once it commits.
#[derive(Debug, Default)]
#[must_use = "publish the batch after the transaction commits"]
pub struct AuditBatch {
    written: Vec<audit_log::Model>,
}

impl AuditBatch {
    /// Writes an entry in the caller's transaction.
    pub async fn record<C: ConnectionTrait>(&mut self, txn: &C, entry: Entry) -> Result<(), DbErr> {
        let model = audit_log::ActiveModel {
            at: Set(Utc::now()),
            actor_id: Set(entry.actor.as_ref().map(|a| a.id)),
            actor_email: Set(entry.actor.map(|a| a.email)),
            action: Set(entry.action.to_owned()),
            target_type: Set(entry.target_type.map(str::to_owned)),
            target_id: Set(entry.target_id),
            outcome: Set(entry.outcome.as_str().to_owned()),
            detail: Set(entry.detail),
            ip: Set(entry.ip),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        self.written.push(model);
        Ok(())
    }

    /// Commits the transaction, then publishes the entries: the usual end of a change.
    pub async fn finish(self, txn: crate::db::WriteTxn, bus: &dyn EventBus) -> Result<(), DbErr> {
        txn.commit().await?;
        self.publish(bus);
        Ok(())
    }

    /// Publishes the written entries. Call it after the commit.
    pub fn publish(self, bus: &dyn EventBus) {
        for model in self.written {
            bus.publish(HubEvent::Audit(Arc::new(model)));
        }
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_id: Option<i64>,
    pub target_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Filter {
    /// Whether an entry passes the filter (for the live subscription).
    pub fn matches(&self, e: &audit_log::Model) -> bool {
        self.action.as_ref().is_none_or(|a| *a == e.action)
            && self.actor_id.is_none_or(|id| e.actor_id == Some(id))
            && self.target_id.as_ref().is_none_or(|t| e.target_id.as_ref() == Some(t))
            && self.from.is_none_or(|from| e.at >= from)
            && self.to.is_none_or(|to| e.at < to)
    }
}

/// The newest `last` entries about one target with one of `actions`, newest first.
pub async fn about<C: ConnectionTrait>(
    db: &C,
    target_type: &str,
    target_id: &str,
    actions: &[&str],
    last: u64,
) -> Result<Vec<audit_log::Model>, DbErr> {
    use audit_log::Column;
    audit_log::Entity::find()
        .filter(Column::TargetType.eq(target_type))
        .filter(Column::TargetId.eq(target_id))
        .filter(Column::Action.is_in(actions.iter().copied()))
        .order_by_desc(Column::Id)
        .limit(last)
        .all(db)
        .await
}

/// The newest entries first; `after` is the id of the last entry of the previous page.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &Filter,
    first: u64,
    after: Option<i64>,
) -> Result<Vec<audit_log::Model>, DbErr> {
    use audit_log::Column;
    let mut q = audit_log::Entity::find();
    if let Some(action) = &filter.action {
        q = q.filter(Column::Action.eq(action.as_str()));
    }
    if let Some(actor) = filter.actor_id {
        q = q.filter(Column::ActorId.eq(actor));
    }
    if let Some(target) = &filter.target_id {
        q = q.filter(Column::TargetId.eq(target.as_str()));
    }
    if let Some(from) = filter.from {
        q = q.filter(Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(Column::At.lt(to));
    }
    if let Some(after) = after {
        q = q.filter(Column::Id.lt(after));
    }
    q.order_by_desc(Column::Id).limit(first).all(db).await
}
