//! The audit log: a paged query and a live subscription, for holders of `audit.read`.

use async_graphql::{Context, ID, InputObject, Object, Subscription};
use chrono::{DateTime, Utc};
use entity::audit_log;
use futures_util::{Stream, StreamExt, future};
use shared::Permission;

use super::{
    guard::{Need, caller},
    live,
    users::{User, user_by_id},
};
use crate::{
    app::Services,
    audit::{self, Filter},
    error::{ApiError, GqlResult, IntoGql},
    events::{HubEvent, Topic},
};

/// The largest page of `auditLog`.
const MAX_PAGE: i32 = 500;

/// One recorded action.
pub struct AuditEntry(audit_log::Model);

/// One recorded action: who did what to what, with what outcome, when and from where.
#[Object]
impl AuditEntry {
    /// The entry's id (for paging with `after`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// When it was recorded.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// Who acted; null for the hub itself or a user deleted since (see `actorEmail`).
    async fn actor(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        match self.0.actor_id {
            Some(id) => user_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    /// The actor's email when the entry was written; stays when the user is deleted.
    async fn actor_email(&self) -> Option<&str> {
        self.0.actor_email.as_deref()
    }
    /// What was done, such as `auth.login` or `role.update`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// The kind of thing acted on, such as `server`, `user` or `role`; null when none.
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }
    /// The id of the thing acted on; null when none.
    async fn target_id(&self) -> Option<&str> {
        self.0.target_id.as_deref()
    }
    /// success, denied or failure.
    async fn outcome(&self) -> &str {
        &self.0.outcome
    }
    /// More on the action in words, such as what changed; null when there is nothing to add.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// The client's address.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
}

/// Which entries to list.
#[derive(InputObject, Default)]
pub struct AuditFilter {
    /// Only entries with exactly this action, such as `server.start`.
    action: Option<String>,
    /// Only entries by this user.
    actor_id: Option<ID>,
    /// Only entries about the thing with this id (of any kind).
    target_id: Option<String>,
    /// Entries at or after this instant.
    from: Option<DateTime<Utc>>,
    /// Entries before this instant.
    to: Option<DateTime<Utc>>,
}

impl AuditFilter {
    fn into_filter(self) -> Result<Filter, ApiError> {
        let actor_id = self
            .actor_id
            .map(|id| id.parse::<i64>().map_err(|_| ApiError::bad_input("actorId", "not a user id")))
            .transpose()?;
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(ApiError::bad_input("from", "`from` must not be after `to`"));
        }
        Ok(Filter { action: self.action, actor_id, target_id: self.target_id, from: self.from, to: self.to })
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The newest entries first. Page with `first` (1 to 500, default 50) and `after` (the id of
    /// the last entry of the previous page). Needs `audit.read`.
    #[graphql(guard = "Need(Permission::AuditRead)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which entries to list; null: all.")] filter: Option<AuditFilter>,
        #[graphql(desc = "How many entries, 1 to 500 (default 50).")] first: Option<i32>,
        #[graphql(desc = "The id of the last entry seen; null: from the newest.")] after: Option<String>,
    ) -> GqlResult<Vec<AuditEntry>> {
        let services = ctx.data::<Services>()?;
        let first = first.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input("first", format!("first must be between 1 and {MAX_PAGE}"))).gql();
        }
        let after = after
            .map(|a| a.parse::<i64>().map_err(|_| ApiError::bad_input("after", "not an audit entry id")))
            .transpose()
            .gql()?;
        let filter = filter.unwrap_or_default().into_filter().gql()?;
        let rows = audit::list(services.db.conn(), &filter, first as u64, after).await.gql()?;
        Ok(rows.into_iter().map(AuditEntry).collect())
    }
}

#[derive(Default)]
pub struct AuditSubscription;

#[Subscription]
impl AuditSubscription {
    /// Each new audit entry as it is committed. Needs `audit.read`.
    #[graphql(guard = "Need(Permission::AuditRead)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which entries to send; null: all.")] filter: Option<AuditFilter>,
    ) -> async_graphql::Result<impl Stream<Item = GqlResult<AuditEntry>> + use<>> {
        let services = ctx.data::<Services>()?;
        let filter = filter.unwrap_or_default().into_filter().gql()?;
        let entries = services
            .bus
            .subscribe(Topic::Audit)
            .filter_map(move |event| {
                future::ready(match event {
                    HubEvent::Audit(entry) if filter.matches(&entry) => Some(AuditEntry((*entry).clone())),
                    _ => None,
                })
            })
            .boxed();
        let check: live::Check = Box::new(|_, me| Box::pin(async move { me.require(Permission::AuditRead) }));
        Ok(live::while_allowed(services, live::LiveCaller::new(caller(ctx)?), check, entries))
    }
}
