//! The permission catalogue: every key the hub checks, listed once.
//!
//! The keys are seeded into the database; roles hold sets of them and per-server grants hold
//! a subset of the `server.*` keys.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

macro_rules! permissions {
    ($($variant:ident => $key:literal, $desc:literal;)*) => {
        /// A permission key such as `server.start`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Permission {
            $(#[doc = $desc] #[serde(rename = $key)] $variant,)*
        }

        impl Permission {
            /// Every key of the catalogue, in a stable order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The key as stored and as the API spells it.
            pub const fn key(self) -> &'static str {
                match self { $(Permission::$variant => $key,)* }
            }

            /// What the key allows, in a sentence.
            pub const fn description(self) -> &'static str {
                match self { $(Permission::$variant => $desc,)* }
            }
        }
    };
}

permissions! {
    UserRead => "user.read", "See user accounts.";
    UserManage => "user.manage", "Create, change, disable and delete user accounts.";
    RoleRead => "role.read", "See roles and the permission catalogue.";
    RoleManage => "role.manage", "Create, change and delete roles and assign them to users.";
    ServerRead => "server.read", "See game servers, their state and their console.";
    ServerCreate => "server.create", "Create game servers from templates.";
    ServerUpdate => "server.update", "Change a game server's settings and variables.";
    ServerDelete => "server.delete", "Delete game servers and their files.";
    ServerStart => "server.start", "Start and restart game servers.";
    ServerStop => "server.stop", "Stop and kill game servers.";
    ServerConsole => "server.console", "Send commands to a game server's console.";
    ServerGrant => "server.grant", "Grant and revoke other users' access to a game server.";
    TemplateManage => "template.manage", "Create, change and delete game server templates.";
    MetricsRead => "metrics.read", "See the host's resource metrics.";
    AuditRead => "audit.read", "Read the audit log.";
    AlertRead => "alert.read", "See alert rules and alerts.";
    AlertManage => "alert.manage", "Create and delete alert rules and acknowledge alerts.";
    SettingsManage => "settings.manage", "Change the hub's settings.";
}

impl Permission {
    /// Looks a key up in the catalogue.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.key() == key)
    }

    /// Whether the key is one of the per-server keys that a grant may hold.
    pub fn is_server_scoped(self) -> bool {
        self.key().starts_with("server.") && self != Permission::ServerCreate
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The error of parsing a key that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPermission(pub String);

impl fmt::Display for UnknownPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown permission key `{}`", self.0)
    }
}

impl std::error::Error for UnknownPermission {}

impl FromStr for Permission {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_key(s).ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// A role that the hub seeds on its first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltInRole {
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: &'static [Permission],
}

/// The administrator role: every key of the catalogue.
pub const ADMIN: BuiltInRole =
    BuiltInRole { name: "Admin", description: "Full control of the hub.", permissions: Permission::ALL };

/// The moderator role: runs servers and reads what happens, changes no accounts.
pub const MODERATOR: BuiltInRole = BuiltInRole {
    name: "Moderator",
    description: "Starts, stops and watches servers; reads the audit log.",
    permissions: &[
        Permission::UserRead,
        Permission::RoleRead,
        Permission::ServerRead,
        Permission::ServerStart,
        Permission::ServerStop,
        Permission::ServerConsole,
        Permission::MetricsRead,
        Permission::AuditRead,
        Permission::AlertRead,
    ],
};

/// The plain user role: nothing global, only what per-server grants give.
pub const USER: BuiltInRole =
    BuiltInRole { name: "User", description: "Sees only the servers granted to them.", permissions: &[] };

/// The roles seeded on the first start, in order.
pub const BUILT_IN_ROLES: [BuiltInRole; 3] = [ADMIN, MODERATOR, USER];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_back() {
        for p in Permission::ALL {
            assert_eq!(p.key().parse::<Permission>(), Ok(*p));
        }
        assert!("server.launch".parse::<Permission>().is_err());
    }

    #[test]
    fn the_catalogue_matches_the_design() {
        let keys: Vec<_> = Permission::ALL.iter().map(|p| p.key()).collect();
        assert_eq!(
            keys.join(" "),
            "user.read user.manage role.read role.manage server.read server.create server.update \
             server.delete server.start server.stop server.console server.grant template.manage \
             metrics.read audit.read alert.read alert.manage settings.manage"
        );
    }

    #[test]
    fn server_scoped_keys_exclude_create() {
        assert!(Permission::ServerStart.is_server_scoped());
        assert!(!Permission::ServerCreate.is_server_scoped());
        assert!(!Permission::UserRead.is_server_scoped());
    }
}
