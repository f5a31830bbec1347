//! Game server states, shared by the supervisor and the web app.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Where a game server is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(async_graphql::Enum))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerState {
    /// Its folder and files are being prepared.
    Installing,
    /// Not running.
    Offline,
    /// The process runs but has not said it is ready yet.
    Starting,
    /// Ready for players.
    Running,
    /// Asked to stop; waiting for the process to exit.
    Stopping,
    /// Exited without being asked to.
    Crashed,
}

impl ServerState {
    pub const ALL: [ServerState; 6] =
        [Self::Installing, Self::Offline, Self::Starting, Self::Running, Self::Stopping, Self::Crashed];

    /// The state as stored in the database and shown in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Installing => "INSTALLING",
            Self::Offline => "OFFLINE",
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Stopping => "STOPPING",
            Self::Crashed => "CRASHED",
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServerState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown server state `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for st in ServerState::ALL {
            assert_eq!(st.as_str().parse::<ServerState>(), Ok(st));
        }
        assert!("running".parse::<ServerState>().is_err());
    }
}
