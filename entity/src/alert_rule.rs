//! A threshold on a host or server metric, held for a duration.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub metric: String,
    /// null: the host.
    pub server_id: Option<i64>,
    /// above or below.
    pub comparison: String,
    pub threshold: f64,
    pub for_seconds: i32,
    pub webhook_url: Option<String>,
    /// generic, discord or slack; None: generic.
    pub webhook_format: Option<String>,
    pub enabled: bool,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::alert::Entity")]
    Alert,
}

impl Related<super::alert::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Alert.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
