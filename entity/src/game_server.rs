//! A game server instance made from a template.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "game_servers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub template_id: i64,
    /// One of `shared::ServerState`, as text.
    pub state: String,
    pub pid: Option<i64>,
    /// The process start time (clock ticks since boot), so that a reused pid is never mistaken.
    pub pid_start_time: Option<i64>,
    pub port: Option<i32>,
    pub auto_restart: bool,
    pub start_with_hub: bool,
    pub memory_limit_mb: Option<i32>,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub last_exit_code: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::template::Entity", from = "Column::TemplateId", to = "super::template::Column::Id")]
    Template,
    #[sea_orm(has_many = "super::server_variable::Entity")]
    ServerVariable,
    #[sea_orm(has_many = "super::server_grant::Entity")]
    ServerGrant,
}

impl Related<super::template::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Template.def()
    }
}

impl Related<super::server_variable::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ServerVariable.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
