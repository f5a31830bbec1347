//! sea-orm entities: one module per table, nothing else. Entities never call services.

pub mod alert;
pub mod alert_rule;
pub mod audit_log;
pub mod game_server;
pub mod invitation;
pub mod metric_bucket;
pub mod metric_point;
pub mod metric_series;
pub mod password_reset;
pub mod permission;
pub mod role;
pub mod role_permission;
pub mod rotated_token;
pub mod server_grant;
pub mod server_variable;
pub mod session;
pub mod template;
pub mod user;
pub mod user_role;

pub mod prelude {
    pub use super::alert::Entity as Alert;
    pub use super::alert_rule::Entity as AlertRule;
    pub use super::audit_log::Entity as AuditLog;
    pub use super::game_server::Entity as GameServer;
    pub use super::invitation::Entity as Invitation;
    pub use super::metric_bucket::Entity as MetricBucket;
    pub use super::metric_point::Entity as MetricPoint;
    pub use super::metric_series::Entity as MetricSeries;
    pub use super::password_reset::Entity as PasswordReset;
    pub use super::permission::Entity as Permission;
    pub use super::role::Entity as Role;
    pub use super::role_permission::Entity as RolePermission;
    pub use super::rotated_token::Entity as RotatedToken;
    pub use super::server_grant::Entity as ServerGrant;
    pub use super::server_variable::Entity as ServerVariable;
    pub use super::session::Entity as Session;
    pub use super::template::Entity as Template;
    pub use super::user::Entity as User;
    pub use super::user_role::Entity as UserRole;
}
