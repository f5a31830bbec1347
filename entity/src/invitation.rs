//! An invitation to register (when registration is by invitation).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When set, only this address may use the invitation.
    pub email: Option<String>,
    /// SHA-256 of the token (hex); the token itself is shown once to its maker.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The role the new account gets (the User role when unset).
    pub role_id: Option<i64>,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub used_by: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
