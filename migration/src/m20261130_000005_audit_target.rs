//! Audit entries by target: a server's history of state changes is read from them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("idx_audit_target")
                .table(AuditLog::Table)
                .col(AuditLog::TargetType)
                .col(AuditLog::TargetId)
                .col(AuditLog::Id)
                .take(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    TargetType,
    TargetId,
    Id,
}
