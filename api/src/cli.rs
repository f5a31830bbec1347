//! The `kutanga` command line: serve (the default), migrate, schema, and admin helpers.

use std::{ffi::OsString, path::PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{self, ConfigError, Settings};

/// Kutanga Hub: runs game servers, watches hosts, and lets a team share the work safely.
///
/// Every option can also be set with its KUTANGA_* environment variable or in the TOML file
/// named by --config.
#[derive(Debug, Parser)]
#[command(name = "kutanga", version = version(), about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and the web app (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL), or write it to a file.
    Schema {
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Account rescue for when nobody can sign in.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Ask the hub serving at KUTANGA_BIND for /healthz (for container health checks); exits 1
    /// unless it answers 200 within 5 s.
    Health,
    /// Print the effective configuration (secrets hidden) and every warning about it, without
    /// starting; exits with 1 when the hub would refuse to start.
    CheckConfig,
    /// Write a backup of the hub's database (with its JWT key and configuration file) to a
    /// compressed file; safe while the hub runs. PostgreSQL needs `pg_dump` on PATH.
    Backup {
        /// The file to write (it must not exist), e.g. hub-2026-12-01.tar.gz.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Restore a backup into the data dir (and database) configured, which must hold none yet,
    /// while no hub runs on it. PostgreSQL needs `psql` on PATH.
    Restore {
        /// The backup file.
        #[arg(value_name = "FILE")]
        input: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user account (audited).
    CreateUser {
        #[arg(long)]
        email: String,
        /// The password; a random one is generated and printed when omitted.
        #[arg(long, env = "KUTANGA_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// A role to give (repeatable), e.g. --role Admin.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Set a new password for an account and end all its sessions (audited).
    ResetPassword {
        #[arg(long)]
        email: String,
        /// The new password; a random one is generated and printed when omitted.
        #[arg(long, env = "KUTANGA_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

/// The version `--version` prints: the hub's and its database schema's.
fn version() -> &'static str {
    static TEXT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{} (database schema {})", shared::VERSION, crate::db::schema_version()));
    &TEXT
}

impl config::WithSettings for Cli {
    fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

impl Cli {
    /// Parses the process arguments, the environment and the config file.
    pub fn parse_from_env() -> Result<Self, ConfigError> {
        Self::parse_args(std::env::args_os().collect())
    }

    pub fn parse_args(args: Vec<OsString>) -> Result<Self, ConfigError> {
        let cli: Self = config::parse_with_file(args)?;
        // check-config reports what the others refuse to start with.
        if !matches!(cli.command, Some(Command::CheckConfig)) {
            cli.settings.validate()?;
        }
        Ok(cli)
    }
}
