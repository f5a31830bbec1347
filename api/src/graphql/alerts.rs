//! Alert rules and alerts: queries for holders of `alert.read`, changes for `alert.manage`, and
//! the live `alerts` subscription.

use async_graphql::{Context, Enum, ID, InputObject, Object, Subscription};
use chrono::{DateTime, Utc};
use entity::{alert, alert_rule};
use futures_util::{Stream, StreamExt, future};
use sea_orm::EntityTrait;
use shared::Permission;

use super::{
    guard::{Need, caller, client, services},
    live,
    users::{User, parse_arg, user_by_id},
};
use crate::{
    alerts::{self, Comparison, NewRule, WebhookFormat},
    error::{ApiError, GqlResult, IntoGql},
    events::{HubEvent, Topic},
};

/// How a rule compares the metric with its threshold.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlertComparison {
    /// The condition holds while the value is greater than the threshold.
    Above,
    /// The condition holds while the value is less than the threshold.
    Below,
}

/// The body a webhook gets.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlertWebhookFormat {
    /// A JSON object with the alert and its rule.
    Generic,
    /// A Discord webhook message with an embed.
    Discord,
    /// A Slack incoming-webhook message with blocks.
    Slack,
}

/// Whether an alert is still open.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Open: raised and not resolved yet.
    Firing,
    /// Over: the condition ended (for a crash, the server ran again or went OFFLINE; for a security
    /// rule, the address was quiet for a window), or the rule was paused.
    Resolved,
}

impl AlertState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Firing => alerts::FIRING,
            Self::Resolved => alerts::RESOLVED,
        }
    }
}

/// A rule: a metric of the host or of a server beyond a threshold for `forSeconds`, (with metric
/// `server.crashed`) a crash of one server or of any, or (with a `security.*` metric) suspicious
/// activity: `threshold` or more events from one client address within `forSeconds`.
pub struct AlertRule(alert_rule::Model);

/// A rule that raises alerts: a metric of the host or of a server beyond `threshold` for
/// `forSeconds`, a crash of one server or of any (metric `server.crashed`), or suspicious activity
/// (a `security.*` metric): `threshold` or more events from one client address within `forSeconds`.
#[Object]
impl AlertRule {
    /// The rule's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The rule's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// A metric name (see `hostMetrics`), `server.crashed`, or `security.login_failures`,
    /// `security.refresh_reuse`, `security.forbidden`.
    async fn metric(&self) -> &str {
        &self.0.metric
    }
    /// null: the host (for `server.crashed`: every server).
    async fn server_id(&self) -> Option<ID> {
        self.0.server_id.map(|id| ID(id.to_string()))
    }
    /// How the metric is compared with `threshold` (not used by `server.crashed` and security
    /// rules).
    async fn comparison(&self) -> AlertComparison {
        match self.0.comparison.parse::<Comparison>() {
            Ok(Comparison::Below) => AlertComparison::Below,
            _ => AlertComparison::Above,
        }
    }
    /// The value the metric is compared with; for a security rule, how many events from one
    /// address fire it; 0 for `server.crashed`.
    async fn threshold(&self) -> f64 {
        self.0.threshold
    }
    /// How long, in seconds, the condition must hold before an alert fires; for a security rule,
    /// the window the events are counted in; 0 for `server.crashed`.
    async fn for_seconds(&self) -> i32 {
        self.0.for_seconds
    }
    /// False while the rule is paused (see `setAlertRuleEnabled`).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// The webhook's host only: the full URL may hold a token and is never shown again.
    async fn webhook_host(&self) -> Option<String> {
        let url = self.0.webhook_url.as_deref()?;
        reqwest::Url::parse(url).ok()?.host_str().map(str::to_owned)
    }
    /// The body its webhook gets; null when the rule has no webhook.
    async fn webhook_format(&self) -> Option<AlertWebhookFormat> {
        self.0.webhook_url.as_ref()?;
        Some(match self.0.webhook_format.as_deref().and_then(|f| f.parse().ok()) {
            Some(WebhookFormat::Discord) => AlertWebhookFormat::Discord,
            Some(WebhookFormat::Slack) => AlertWebhookFormat::Slack,
            _ => AlertWebhookFormat::Generic,
        })
    }
    /// When the rule was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One firing of a rule, until it resolves.
pub struct Alert(alert::Model);

/// One firing of a rule, until it resolves.
#[Object]
impl Alert {
    /// The alert's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The rule that raised it.
    async fn rule(&self, ctx: &Context<'_>) -> GqlResult<AlertRule> {
        let s = services(ctx)?;
        alert_rule::Entity::find_by_id(self.0.rule_id)
            .one(s.db.conn())
            .await
            .map_err(ApiError::from)
            .and_then(|r| r.ok_or(ApiError::NotFound("alert rule")))
            .map(AlertRule)
            .gql()
    }
    /// FIRING while open, RESOLVED once over.
    async fn state(&self) -> AlertState {
        if self.0.state == alerts::FIRING { AlertState::Firing } else { AlertState::Resolved }
    }
    /// The value that fired the rule (1 for a crash).
    async fn value(&self) -> f64 {
        self.0.value
    }
    /// The server the alert is about; null: the host.
    async fn server_id(&self) -> Option<ID> {
        self.0.server_id.map(|id| ID(id.to_string()))
    }
    /// The client address a security alert is about; null for other alerts.
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
    /// When it fired.
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// When it resolved; null while it is FIRING.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// Who acknowledged it; null when nobody has, or that account was deleted.
    async fn acknowledged_by(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        match self.0.acknowledged_by {
            Some(id) => user_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    /// When it was acknowledged; null when nobody has acknowledged it.
    async fn acknowledged_at(&self) -> Option<DateTime<Utc>> {
        self.0.acknowledged_at
    }
    /// Why the last webhook delivery failed (after its retries); null when it succeeded.
    async fn webhook_error(&self) -> Option<&str> {
        self.0.webhook_error.as_deref()
    }
}

/// A new alert rule.
#[derive(InputObject)]
pub struct AlertRuleInput {
    /// The rule's name: 1 to 128 characters, no control or invisible characters.
    name: String,
    /// A metric name (see `hostMetrics`), `server.crashed`, or a security rule:
    /// `security.login_failures`, `security.refresh_reuse`, `security.forbidden`.
    metric: String,
    /// null: the host (for `server.crashed`: every server; security rules watch the whole hub).
    server_id: Option<ID>,
    /// For a security rule: how many events from one address fire it (a whole number, 1 or more).
    threshold: f64,
    /// How long the condition must hold before the alert fires; for a security rule, the window
    /// the events are counted in (1 to 86400).
    for_seconds: i32,
    /// http:// or https://; redirects are followed to the same host only.
    webhook_url: Option<String>,
    /// How the metric is compared with `threshold` (not used by `server.crashed` and security
    /// rules).
    #[graphql(default_with = "AlertComparison::Above")]
    comparison: AlertComparison,
    /// Default: from the URL (Discord's and Slack's webhook hosts), else GENERIC.
    webhook_format: Option<AlertWebhookFormat>,
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// Every rule. Needs `alert.read`.
    #[graphql(guard = "Need(Permission::AlertRead)")]
    async fn alert_rules(&self, ctx: &Context<'_>) -> GqlResult<Vec<AlertRule>> {
        let rules = alerts::rules(services(ctx)?, caller(ctx)?).await.gql()?;
        Ok(rules.into_iter().map(AlertRule).collect())
    }

    /// The newest alerts first (at most 500), of one state or all. Needs `alert.read`.
    #[graphql(guard = "Need(Permission::AlertRead)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only alerts in this state; null: every alert.")] state: Option<AlertState>,
    ) -> GqlResult<Vec<Alert>> {
        let rows = alerts::alerts(services(ctx)?, caller(ctx)?, state.map(AlertState::as_str)).await.gql()?;
        Ok(rows.into_iter().map(Alert).collect())
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Creates a rule. Needs `alert.manage` (and `server.read` on its server).
    #[graphql(guard = "Need(Permission::AlertManage)")]
    async fn create_alert_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule to create.")] input: AlertRuleInput,
    ) -> GqlResult<AlertRule> {
        let server_id = input.server_id.as_ref().map(|id| parse_arg("serverId", id)).transpose().gql()?;
        let new = NewRule {
            name: input.name,
            metric: input.metric,
            server_id,
            comparison: match input.comparison {
                AlertComparison::Above => Comparison::Above,
                AlertComparison::Below => Comparison::Below,
            },
            threshold: input.threshold,
            for_seconds: i64::from(input.for_seconds),
            webhook_url: input.webhook_url,
            webhook_format: input.webhook_format.map(|f| match f {
                AlertWebhookFormat::Generic => WebhookFormat::Generic,
                AlertWebhookFormat::Discord => WebhookFormat::Discord,
                AlertWebhookFormat::Slack => WebhookFormat::Slack,
            }),
        };
        alerts::create_rule(services(ctx)?, caller(ctx)?, new, client(ctx)).await.map(AlertRule).gql()
    }

    /// Deletes a rule and its alerts. Needs `alert.manage`.
    #[graphql(guard = "Need(Permission::AlertManage)")]
    async fn delete_alert_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule's id.")] id: ID,
    ) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        alerts::delete_rule(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()?;
        Ok(true)
    }

    /// Pauses (false) or resumes (true) a rule; pausing resolves its open alerts. Needs
    /// `alert.manage`.
    #[graphql(guard = "Need(Permission::AlertManage)")]
    async fn set_alert_rule_enabled(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule's id.")] id: ID,
        #[graphql(desc = "True resumes the rule, false pauses it.")] enabled: bool,
    ) -> GqlResult<AlertRule> {
        let id = parse_arg("id", &id).gql()?;
        alerts::set_enabled(services(ctx)?, caller(ctx)?, id, enabled, client(ctx)).await.map(AlertRule).gql()
    }

    /// Says that someone has seen the alert. Needs `alert.manage`.
    #[graphql(guard = "Need(Permission::AlertManage)")]
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The alert's id.")] id: ID,
    ) -> GqlResult<Alert> {
        let id = parse_arg("id", &id).gql()?;
        alerts::acknowledge(services(ctx)?, caller(ctx)?, id, client(ctx)).await.map(Alert).gql()
    }
}

#[derive(Default)]
pub struct AlertSubscription;

#[Subscription]
impl AlertSubscription {
    /// Each alert as it fires, resolves, is acknowledged or its webhook delivery changes.
    /// Needs `alert.read`.
    #[graphql(guard = "Need(Permission::AlertRead)")]
    async fn alerts(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = GqlResult<Alert>> + use<>> {
        let s = services(ctx)?;
        let changes = s
            .bus
            .subscribe(Topic::Alerts)
            .filter_map(|event| {
                future::ready(match event {
                    HubEvent::Alert(a) => Some(Alert((*a).clone())),
                    _ => None,
                })
            })
            .boxed();
        let check: live::Check = Box::new(|_, me| Box::pin(async move { me.require(Permission::AlertRead) }));
        Ok(live::while_allowed(s, live::LiveCaller::new(caller(ctx)?), check, changes))
    }
}
