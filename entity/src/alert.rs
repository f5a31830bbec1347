//! One firing of an alert rule, until it resolves.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub rule_id: i64,
    /// The server the alert is about (None: the host).
    pub server_id: Option<i64>,
    /// FIRING or RESOLVED.
    pub state: String,
    pub value: f64,
    pub started_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
    pub acknowledged_by: Option<i64>,
    pub acknowledged_at: Option<DateTimeUtc>,
    /// The client address a security alert is about (None for other alerts).
    pub subject: Option<String>,
    /// The last webhook delivery failure, if any.
    pub webhook_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::alert_rule::Entity", from = "Column::RuleId", to = "super::alert_rule::Column::Id")]
    AlertRule,
}

impl Related<super::alert_rule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AlertRule.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
