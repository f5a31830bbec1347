//! Newtype ids, so that a user id can never be passed where a server id is expected.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// A role (built-in or custom).
    RoleId
);
id_type!(
    /// A game server instance.
    ServerId
);
id_type!(
    /// A game server template.
    TemplateId
);
id_type!(
    /// An audit log entry.
    AuditId
);
id_type!(
    /// A login session (one refresh-token family).
    SessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_from_their_display() {
        let id = UserId(42);
        assert_eq!(id.to_string().parse::<UserId>(), Ok(id));
        assert!("4x".parse::<ServerId>().is_err());
    }
}
