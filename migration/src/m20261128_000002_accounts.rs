//! Accounts: invitations, password resets, and the history of rotated refresh tokens (to detect
//! the reuse of a stolen one).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Invitations::Table)
                .col(big_pk_auto(Invitations::Id))
                .col(string_len_null(Invitations::Email, 254))
                .col(string_len_uniq(Invitations::TokenHash, 64))
                .col(big_integer_null(Invitations::RoleId))
                .col(big_integer_null(Invitations::CreatedBy))
                .col(timestamp_with_time_zone(Invitations::CreatedAt))
                .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                .col(timestamp_with_time_zone_null(Invitations::UsedAt))
                .col(big_integer_null(Invitations::UsedBy))
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::RoleId)
                        .to(Roles::Table, Roles::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::CreatedBy)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::UsedBy)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PasswordResets::Table)
                .col(big_pk_auto(PasswordResets::Id))
                .col(big_integer(PasswordResets::UserId))
                .col(string_len_uniq(PasswordResets::TokenHash, 64))
                .col(timestamp_with_time_zone(PasswordResets::CreatedAt))
                .col(timestamp_with_time_zone(PasswordResets::ExpiresAt))
                .col(timestamp_with_time_zone_null(PasswordResets::UsedAt))
                .col(string_len_null(PasswordResets::Ip, 64))
                .foreign_key(
                    ForeignKey::create()
                        .from(PasswordResets::Table, PasswordResets::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RotatedTokens::Table)
                .col(string_len(RotatedTokens::TokenHash, 64).primary_key())
                .col(big_integer(RotatedTokens::SessionId))
                .col(timestamp_with_time_zone(RotatedTokens::RotatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(RotatedTokens::Table, RotatedTokens::SessionId)
                        .to(Sessions::Table, Sessions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        for index in [
            Index::create()
                .name("idx_password_resets_user")
                .table(PasswordResets::Table)
                .col(PasswordResets::UserId)
                .take(),
            Index::create()
                .name("idx_rotated_tokens_session")
                .table(RotatedTokens::Table)
                .col(RotatedTokens::SessionId)
                .take(),
        ] {
            m.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("migrations are forward only".into()))
    }
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    Email,
    TokenHash,
    RoleId,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    UsedBy,
}

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    Ip,
}

#[derive(DeriveIden)]
enum RotatedTokens {
    Table,
    TokenHash,
    SessionId,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
}
