//! The first schema: accounts and access, game servers, audit, metrics and alerts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            m.create_table(table).await?;
        }
        for index in indexes() {
            m.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        // Forward only: the hub never drops its data.
        Err(DbErr::Migration("migrations are forward only".into()))
    }
}

fn fk(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::Cascade)
        .take()
}

fn tables() -> Vec<TableCreateStatement> {
    use ForeignKeyAction::{Cascade, Restrict, SetNull};
    vec![
        Table::create()
            .table(Users::Table)
            .col(big_pk_auto(Users::Id))
            .col(string_len_uniq(Users::Email, 254))
            .col(string_len(Users::DisplayName, 64))
            .col(string(Users::PasswordHash))
            .col(boolean(Users::Disabled).default(false))
            .col(timestamp_with_time_zone(Users::CreatedAt))
            .col(timestamp_with_time_zone(Users::UpdatedAt))
            .col(timestamp_with_time_zone_null(Users::LastLoginAt))
            .col(timestamp_with_time_zone(Users::PasswordChangedAt))
            .take(),
        Table::create()
            .table(Roles::Table)
            .col(big_pk_auto(Roles::Id))
            .col(string_len_uniq(Roles::Name, 64))
            .col(string_null(Roles::Description))
            .col(boolean(Roles::BuiltIn).default(false))
            .col(timestamp_with_time_zone(Roles::CreatedAt))
            .take(),
        Table::create()
            .table(Permissions::Table)
            .col(string_len(Permissions::Key, 64).primary_key())
            .col(string(Permissions::Description))
            .take(),
        Table::create()
            .table(RolePermissions::Table)
            .col(big_integer(RolePermissions::RoleId))
            .col(string_len(RolePermissions::PermissionKey, 64))
            .primary_key(Index::create().col(RolePermissions::RoleId).col(RolePermissions::PermissionKey))
            .foreign_key(&mut fk((RolePermissions::Table, RolePermissions::RoleId), (Roles::Table, Roles::Id), Cascade))
            .foreign_key(&mut fk(
                (RolePermissions::Table, RolePermissions::PermissionKey),
                (Permissions::Table, Permissions::Key),
                Cascade,
            ))
            .take(),
        Table::create()
            .table(UserRoles::Table)
            .col(big_integer(UserRoles::UserId))
            .col(big_integer(UserRoles::RoleId))
            .primary_key(Index::create().col(UserRoles::UserId).col(UserRoles::RoleId))
            .foreign_key(&mut fk((UserRoles::Table, UserRoles::UserId), (Users::Table, Users::Id), Cascade))
            .foreign_key(&mut fk((UserRoles::Table, UserRoles::RoleId), (Roles::Table, Roles::Id), Restrict))
            .take(),
        Table::create()
            .table(Sessions::Table)
            .col(big_pk_auto(Sessions::Id))
            .col(big_integer(Sessions::UserId))
            .col(string_len_uniq(Sessions::RefreshTokenHash, 64))
            .col(string_len_null(Sessions::PreviousTokenHash, 64))
            .col(timestamp_with_time_zone(Sessions::CreatedAt))
            .col(timestamp_with_time_zone(Sessions::LastUsedAt))
            .col(timestamp_with_time_zone(Sessions::ExpiresAt))
            .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
            .col(string_len_null(Sessions::Ip, 64))
            .col(string_len_null(Sessions::UserAgent, 512))
            .foreign_key(&mut fk((Sessions::Table, Sessions::UserId), (Users::Table, Users::Id), Cascade))
            .take(),
        Table::create()
            .table(Templates::Table)
            .col(big_pk_auto(Templates::Id))
            .col(string_len_uniq(Templates::Slug, 64))
            .col(string_len(Templates::Name, 128))
            .col(text_null(Templates::Description))
            .col(text(Templates::Definition))
            .col(boolean(Templates::BuiltIn).default(false))
            .col(timestamp_with_time_zone(Templates::CreatedAt))
            .col(timestamp_with_time_zone(Templates::UpdatedAt))
            .take(),
        Table::create()
            .table(GameServers::Table)
            .col(big_pk_auto(GameServers::Id))
            .col(string_len_uniq(GameServers::Name, 64))
            .col(big_integer(GameServers::TemplateId))
            .col(string_len(GameServers::State, 16))
            .col(big_integer_null(GameServers::Pid))
            .col(big_integer_null(GameServers::PidStartTime))
            .col(integer_null(GameServers::Port))
            .col(boolean(GameServers::AutoRestart).default(true))
            .col(boolean(GameServers::StartWithHub).default(false))
            .col(integer_null(GameServers::MemoryLimitMb))
            .col(big_integer_null(GameServers::CreatedBy))
            .col(timestamp_with_time_zone(GameServers::CreatedAt))
            .col(timestamp_with_time_zone_null(GameServers::StartedAt))
            .col(integer_null(GameServers::LastExitCode))
            .foreign_key(&mut fk(
                (GameServers::Table, GameServers::TemplateId),
                (Templates::Table, Templates::Id),
                Restrict,
            ))
            .foreign_key(&mut fk((GameServers::Table, GameServers::CreatedBy), (Users::Table, Users::Id), SetNull))
            .take(),
        Table::create()
            .table(ServerVariables::Table)
            .col(big_integer(ServerVariables::ServerId))
            .col(string_len(ServerVariables::Key, 64))
            .col(text(ServerVariables::Value))
            .primary_key(Index::create().col(ServerVariables::ServerId).col(ServerVariables::Key))
            .foreign_key(&mut fk(
                (ServerVariables::Table, ServerVariables::ServerId),
                (GameServers::Table, GameServers::Id),
                Cascade,
            ))
            .take(),
        Table::create()
            .table(ServerGrants::Table)
            .col(big_integer(ServerGrants::ServerId))
            .col(big_integer(ServerGrants::UserId))
            .col(string_len(ServerGrants::PermissionKey, 64))
            .col(big_integer_null(ServerGrants::GrantedBy))
            .col(timestamp_with_time_zone(ServerGrants::CreatedAt))
            .primary_key(
                Index::create().col(ServerGrants::ServerId).col(ServerGrants::UserId).col(ServerGrants::PermissionKey),
            )
            .foreign_key(&mut fk(
                (ServerGrants::Table, ServerGrants::ServerId),
                (GameServers::Table, GameServers::Id),
                Cascade,
            ))
            .foreign_key(&mut fk((ServerGrants::Table, ServerGrants::UserId), (Users::Table, Users::Id), Cascade))
            .foreign_key(&mut fk(
                (ServerGrants::Table, ServerGrants::PermissionKey),
                (Permissions::Table, Permissions::Key),
                Cascade,
            ))
            .foreign_key(&mut fk((ServerGrants::Table, ServerGrants::GrantedBy), (Users::Table, Users::Id), SetNull))
            .take(),
        // No foreign key on actor_id: deleting a user keeps their audit entries.
        Table::create()
            .table(AuditLog::Table)
            .col(big_pk_auto(AuditLog::Id))
            .col(timestamp_with_time_zone(AuditLog::At))
            .col(big_integer_null(AuditLog::ActorId))
            .col(string_len_null(AuditLog::ActorEmail, 254))
            .col(string_len(AuditLog::Action, 64))
            .col(string_len_null(AuditLog::TargetType, 32))
            .col(string_len_null(AuditLog::TargetId, 64))
            .col(string_len(AuditLog::Outcome, 16))
            .col(text_null(AuditLog::Detail))
            .col(string_len_null(AuditLog::Ip, 64))
            .take(),
        Table::create()
            .table(MetricSamples::Table)
            .col(big_pk_auto(MetricSamples::Id))
            .col(big_integer_null(MetricSamples::ServerId))
            .col(string_len(MetricSamples::Metric, 64))
            .col(big_integer(MetricSamples::AtMs))
            .col(double(MetricSamples::Value))
            .take(),
        Table::create()
            .table(MetricRollups::Table)
            .col(big_pk_auto(MetricRollups::Id))
            .col(integer(MetricRollups::StepSeconds))
            .col(big_integer_null(MetricRollups::ServerId))
            .col(string_len(MetricRollups::Metric, 64))
            .col(big_integer(MetricRollups::BucketMs))
            .col(double(MetricRollups::Avg))
            .col(double(MetricRollups::Min))
            .col(double(MetricRollups::Max))
            .col(integer(MetricRollups::Count))
            .take(),
        Table::create()
            .table(AlertRules::Table)
            .col(big_pk_auto(AlertRules::Id))
            .col(string_len(AlertRules::Name, 128))
            .col(string_len(AlertRules::Metric, 64))
            .col(big_integer_null(AlertRules::ServerId))
            .col(string_len(AlertRules::Comparison, 8))
            .col(double(AlertRules::Threshold))
            .col(integer(AlertRules::ForSeconds))
            .col(string_len_null(AlertRules::WebhookUrl, 2048))
            .col(boolean(AlertRules::Enabled).default(true))
            .col(big_integer_null(AlertRules::CreatedBy))
            .col(timestamp_with_time_zone(AlertRules::CreatedAt))
            .foreign_key(&mut fk(
                (AlertRules::Table, AlertRules::ServerId),
                (GameServers::Table, GameServers::Id),
                Cascade,
            ))
            .foreign_key(&mut fk((AlertRules::Table, AlertRules::CreatedBy), (Users::Table, Users::Id), SetNull))
            .take(),
        Table::create()
            .table(Alerts::Table)
            .col(big_pk_auto(Alerts::Id))
            .col(big_integer(Alerts::RuleId))
            .col(string_len(Alerts::State, 16))
            .col(double(Alerts::Value))
            .col(timestamp_with_time_zone(Alerts::StartedAt))
            .col(timestamp_with_time_zone_null(Alerts::ResolvedAt))
            .col(big_integer_null(Alerts::AcknowledgedBy))
            .col(timestamp_with_time_zone_null(Alerts::AcknowledgedAt))
            .col(text_null(Alerts::WebhookError))
            .foreign_key(&mut fk((Alerts::Table, Alerts::RuleId), (AlertRules::Table, AlertRules::Id), Cascade))
            .foreign_key(&mut fk((Alerts::Table, Alerts::AcknowledgedBy), (Users::Table, Users::Id), SetNull))
            .take(),
    ]
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create().name("idx_sessions_user").table(Sessions::Table).col(Sessions::UserId).take(),
        Index::create().name("idx_user_roles_role").table(UserRoles::Table).col(UserRoles::RoleId).take(),
        Index::create().name("idx_server_grants_user").table(ServerGrants::Table).col(ServerGrants::UserId).take(),
        Index::create().name("idx_game_servers_template").table(GameServers::Table).col(GameServers::TemplateId).take(),
        Index::create().name("idx_audit_at").table(AuditLog::Table).col(AuditLog::At).take(),
        Index::create().name("idx_audit_action").table(AuditLog::Table).col(AuditLog::Action).col(AuditLog::Id).take(),
        Index::create().name("idx_audit_actor").table(AuditLog::Table).col(AuditLog::ActorId).col(AuditLog::Id).take(),
        Index::create()
            .name("idx_audit_target")
            .table(AuditLog::Table)
            .col(AuditLog::TargetId)
            .col(AuditLog::Id)
            .take(),
        Index::create()
            .name("idx_metric_samples_series")
            .table(MetricSamples::Table)
            .col(MetricSamples::Metric)
            .col(MetricSamples::ServerId)
            .col(MetricSamples::AtMs)
            .take(),
        Index::create().name("idx_metric_samples_at").table(MetricSamples::Table).col(MetricSamples::AtMs).take(),
        Index::create()
            .name("idx_metric_rollups_series")
            .table(MetricRollups::Table)
            .col(MetricRollups::StepSeconds)
            .col(MetricRollups::Metric)
            .col(MetricRollups::ServerId)
            .col(MetricRollups::BucketMs)
            .take(),
        Index::create()
            .name("idx_metric_rollups_at")
            .table(MetricRollups::Table)
            .col(MetricRollups::StepSeconds)
            .col(MetricRollups::BucketMs)
            .take(),
        Index::create().name("idx_alerts_rule").table(Alerts::Table).col(Alerts::RuleId).take(),
    ]
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    PasswordHash,
    Disabled,
    CreatedAt,
    UpdatedAt,
    LastLoginAt,
    PasswordChangedAt,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
    Name,
    Description,
    BuiltIn,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Permissions {
    Table,
    Key,
    Description,
}

#[derive(DeriveIden)]
enum RolePermissions {
    Table,
    RoleId,
    PermissionKey,
}

#[derive(DeriveIden)]
enum UserRoles {
    Table,
    UserId,
    RoleId,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    RefreshTokenHash,
    PreviousTokenHash,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
    Ip,
    UserAgent,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
    Slug,
    Name,
    Description,
    Definition,
    BuiltIn,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GameServers {
    Table,
    Id,
    Name,
    TemplateId,
    State,
    Pid,
    PidStartTime,
    Port,
    AutoRestart,
    StartWithHub,
    MemoryLimitMb,
    CreatedBy,
    CreatedAt,
    StartedAt,
    LastExitCode,
}

#[derive(DeriveIden)]
enum ServerVariables {
    Table,
    ServerId,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum ServerGrants {
    Table,
    ServerId,
    UserId,
    PermissionKey,
    GrantedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorId,
    ActorEmail,
    Action,
    TargetType,
    TargetId,
    Outcome,
    Detail,
    Ip,
}

#[derive(DeriveIden)]
enum MetricSamples {
    Table,
    Id,
    ServerId,
    Metric,
    AtMs,
    Value,
}

#[derive(DeriveIden)]
enum MetricRollups {
    Table,
    Id,
    StepSeconds,
    ServerId,
    Metric,
    BucketMs,
    Avg,
    Min,
    Max,
    Count,
}

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    Id,
    Name,
    Metric,
    ServerId,
    Comparison,
    Threshold,
    ForSeconds,
    WebhookUrl,
    Enabled,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    RuleId,
    State,
    Value,
    StartedAt,
    ResolvedAt,
    AcknowledgedBy,
    AcknowledgedAt,
    WebhookError,
}
