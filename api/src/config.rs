//! The hub's configuration: one typed struct, parsed once at start.
//!
//! Every option is a command-line flag and a `KUTANGA_*` environment variable; an optional TOML
//! file (`KUTANGA_CONFIG`) supplies values for options set by neither. Precedence: flag, then
//! environment, then file, then the default. A bad value stops the hub at once with a message
//! that names the variable and what it expects.

use std::{ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, ValueEnum, parser::ValueSource};

/// Options of every subcommand (`--help` lists them with their variables).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// A TOML file with more settings; keys are the long option names (`bind`, `data_dir`, ...).
    #[arg(long, env = "KUTANGA_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The address and port the hub listens on.
    #[arg(long, env = "KUTANGA_BIND", global = true, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub bind: SocketAddr,

    /// A PEM file with the hub's TLS certificate chain (leaf first). With `KUTANGA_TLS_KEY` the hub
    /// serves HTTPS itself (TLS 1.2 and 1.3, rustls) and sends HSTS; SIGHUP reloads both files.
    #[arg(long, env = "KUTANGA_TLS_CERT", global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// A PEM file with the private key of `KUTANGA_TLS_CERT` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "KUTANGA_TLS_KEY", global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Seconds browsers keep to HTTPS for the hub's host after an answer over HTTPS
    /// (`Strict-Transport-Security`, sent with TLS or an https:// public URL). It covers every
    /// port of the host name: 0 sends none, for hosts that also serve plain HTTP (a game's map).
    #[arg(long, env = "KUTANGA_HSTS_MAX_AGE", global = true, default_value_t = 31_536_000, value_parser = clap::value_parser!(u64).range(0..=63_072_000))]
    pub hsts_max_age: u64,

    /// The folder for the hub's data: the SQLite database, the JWT key, game servers, logs.
    #[arg(long, env = "KUTANGA_DATA_DIR", global = true, default_value = "./data", value_name = "DIR")]
    pub data_dir: PathBuf,

    /// The database: unset means a SQLite file in the data dir; `postgres://...` uses PostgreSQL;
    /// `sqlite://PATH` another SQLite file.
    #[arg(long, env = "KUTANGA_DATABASE_URL", global = true, value_name = "URL", value_parser = parse_database_url)]
    pub database_url: Option<String>,

    /// `development` (playground, introspection and suggestions on) or `production` (off unless asked
    /// for, unsafe settings refused).
    #[arg(long, env = "KUTANGA_MODE", global = true, default_value = "development", value_enum)]
    pub mode: Mode,

    /// The HS256 key that signs access tokens, at least 32 bytes. Unset: a random key is generated
    /// once into `<data dir>/jwt.key` (mode 0600).
    #[arg(long, env = "KUTANGA_JWT_SECRET", global = true, value_name = "SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// The email of the first admin, created when the hub has no users yet.
    #[arg(
        long,
        env = "KUTANGA_ADMIN_EMAIL",
        global = true,
        default_value = "admin@localhost.localdomain",
        value_name = "EMAIL"
    )]
    pub admin_email: String,

    /// The first admin's password. Unset: a random password is printed once on the console.
    #[arg(long, env = "KUTANGA_ADMIN_PASSWORD", global = true, value_name = "PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// The hub's display name, shown in the web app.
    #[arg(long, env = "KUTANGA_HUB_NAME", global = true, default_value = "Kutanga Hub", value_name = "NAME")]
    pub hub_name: String,

    /// A folder of the built web app (Trunk's `dist`) to serve at `/` instead of the one built
    /// into the binary: for working on the app without building the hub again.
    #[arg(long, env = "KUTANGA_WEB_DIR", global = true, value_name = "DIR")]
    pub web_dir: Option<PathBuf>,

    /// Serve the GraphiQL playground at GET /graphql. Default: on in development, off in production.
    #[arg(long, env = "KUTANGA_PLAYGROUND", global = true, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub playground: Option<bool>,

    /// Answer GraphQL introspection queries. Default: on in development, off in production.
    #[arg(long, env = "KUTANGA_INTROSPECTION", global = true, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub introspection: Option<bool>,

    /// The deepest GraphQL query accepted.
    #[arg(long, env = "KUTANGA_GRAPHQL_MAX_DEPTH", global = true, default_value_t = 12, value_parser = clap::value_parser!(u16).range(2..=64))]
    pub graphql_max_depth: u16,

    /// The highest GraphQL query complexity accepted (each field counts 1).
    #[arg(long, env = "KUTANGA_GRAPHQL_MAX_COMPLEXITY", global = true, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub graphql_max_complexity: u32,

    /// The deepest nesting of a GraphQL document the parser accepts: selection sets, fragments,
    /// and the brackets of values and variables (deeper documents are refused before parsing).
    #[arg(long, env = "KUTANGA_GRAPHQL_MAX_RECURSION", global = true, default_value_t = 32, value_parser = clap::value_parser!(u16).range(4..=128))]
    pub graphql_max_recursion: u16,

    /// The most operations one batched POST may hold (the complexity limit holds for the batch
    /// as a whole).
    #[arg(long, env = "KUTANGA_GRAPHQL_MAX_BATCH", global = true, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub graphql_max_batch: u16,

    /// The largest request body accepted, in bytes.
    #[arg(long, env = "KUTANGA_MAX_BODY_BYTES", global = true, default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub max_body_bytes: u64,

    /// How long an access token lives, in seconds.
    #[arg(long, env = "KUTANGA_ACCESS_TOKEN_TTL", global = true, default_value_t = 900, value_parser = clap::value_parser!(u64).range(30..=86_400))]
    pub access_token_ttl: u64,

    /// How long a login session lives at most, in seconds, however it is used.
    #[arg(long, env = "KUTANGA_SESSION_TTL", global = true, default_value_t = 30 * 86_400, value_parser = clap::value_parser!(u64).range(300..=31_536_000))]
    pub session_ttl: u64,

    /// Who may create an account with `register`: `closed` (only admins create users), `open`
    /// (anyone), or `invite` (anyone holding an invitation an admin made).
    #[arg(long, env = "KUTANGA_REGISTRATION", global = true, default_value = "closed", value_enum)]
    pub registration: Registration,

    /// The shortest password accepted, in characters (ASVS: at least 8; 15 or more without MFA).
    #[arg(long, env = "KUTANGA_PASSWORD_MIN_LENGTH", global = true, default_value_t = 8, value_parser = clap::value_parser!(u16).range(8..=64))]
    pub password_min_length: u16,

    /// A session unused for this many seconds ends (its refresh token stops working).
    #[arg(long, env = "KUTANGA_SESSION_IDLE_TIMEOUT", global = true, default_value_t = 7 * 86_400, value_parser = clap::value_parser!(u64).range(300..=31_536_000))]
    pub session_idle_timeout: u64,

    /// Seconds after a refresh during which the refresh token it replaced is still answered
    /// (a retry whose answer was lost, as when a browser reloads mid-refresh) instead of being
    /// taken for a stolen token that revokes the session. 0: never.
    #[arg(long, env = "KUTANGA_REFRESH_REUSE_GRACE", global = true, default_value_t = 15, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub refresh_reuse_grace: u64,

    /// Sign-in and password-reset attempts allowed per account before RATE_LIMITED.
    #[arg(long, env = "KUTANGA_RATE_LIMIT_ACCOUNT", global = true, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rate_limit_account: u32,

    /// Sign-in and password-reset attempts allowed per client IP before RATE_LIMITED.
    #[arg(long, env = "KUTANGA_RATE_LIMIT_IP", global = true, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate_limit_ip: u32,

    /// The seconds over which the allowed attempts refill completely.
    #[arg(long, env = "KUTANGA_RATE_LIMIT_WINDOW", global = true, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub rate_limit_window: u64,

    /// New GraphQL WebSockets one address may open per minute (a burst of as many, refilled over
    /// the minute); past it the upgrade answers 429.
    #[arg(long, env = "KUTANGA_WS_PER_IP_PER_MINUTE", global = true, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ws_per_ip_per_minute: u32,

    /// GraphQL WebSockets one account may hold open at once; past it connection_init closes the
    /// new one with 4429.
    #[arg(long, env = "KUTANGA_WS_PER_ACCOUNT", global = true, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ws_per_account: u32,

    /// The SMTP server for password-reset mail, as `smtp://user:pass@host:587` (STARTTLS),
    /// `smtps://...:465` (TLS) or `smtp://host:25?tls=none`. Unset: reset links go to the log.
    #[arg(long, env = "KUTANGA_SMTP_URL", global = true, value_name = "URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of the hub's mail.
    #[arg(
        long,
        env = "KUTANGA_SMTP_FROM",
        global = true,
        default_value = "Kutanga Hub <noreply@localhost.localdomain>",
        value_name = "ADDRESS"
    )]
    pub smtp_from: String,

    /// The hub's address as users reach it, for links in mail (default: http://<bind>).
    #[arg(long, env = "KUTANGA_PUBLIC_URL", global = true, value_name = "URL")]
    pub public_url: Option<String>,

    /// When the hub runs as root, each game server runs as a user of its own: UID and GID
    /// `KUTANGA_GAME_UID_BASE + server id` (no passwd entry needed). Pick a range no real user or
    /// container uses. When the hub is not root, game servers run as the hub's own user.
    #[arg(long, env = "KUTANGA_GAME_UID_BASE", global = true, default_value_t = 1_900_000_000, value_parser = clap::value_parser!(u32).range(10_000..=2_000_000_000))]
    pub game_uid_base: u32,

    /// Lines of each server's console kept in memory for `consoleTail`.
    #[arg(long, env = "KUTANGA_CONSOLE_LINES", global = true, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub console_lines: u32,

    /// A console log file is rotated (once, to `.1`) when it grows past this many bytes.
    #[arg(long, env = "KUTANGA_CONSOLE_LOG_BYTES", global = true, default_value_t = 8 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(65_536..=1_073_741_824))]
    pub console_log_bytes: u64,

    /// Stop every game server (console command, signal, kill) when the hub shuts down, instead of
    /// leaving them running to be adopted at the next start.
    #[arg(long, env = "KUTANGA_STOP_SERVERS_ON_SHUTDOWN", global = true, default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub stop_servers_on_shutdown: bool,

    /// Open files a game server may hold (RLIMIT_NOFILE).
    #[arg(long, env = "KUTANGA_GAME_OPEN_FILES", global = true, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    pub game_open_files: u64,

    /// The disk space each server's folder may use, in MiB (0: no quota). Checked before a start
    /// and at every status check; a server over its quota is warned on its console and stopped.
    #[arg(long, env = "KUTANGA_DISK_QUOTA_MB", global = true, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=16_777_216))]
    pub disk_quota_mb: u64,

    /// Seconds between the status checks of each running server (process, port probe, quota).
    #[arg(long, env = "KUTANGA_STATUS_INTERVAL", global = true, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub status_interval: u64,

    /// Seconds between resource samples of the host and the running servers (at least 1).
    #[arg(long, env = "KUTANGA_METRICS_INTERVAL", global = true, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub metrics_interval: u64,

    /// Hours of raw samples (one per interval) kept in the history.
    #[arg(long, env = "KUTANGA_METRICS_RAW_HOURS", global = true, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub metrics_raw_hours: u32,

    /// Days of 1-minute rollups (average, minimum, maximum) kept in the history.
    #[arg(long, env = "KUTANGA_METRICS_MINUTE_DAYS", global = true, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub metrics_minute_days: u32,

    /// Days of 1-hour rollups kept in the history.
    #[arg(long, env = "KUTANGA_METRICS_HOUR_DAYS", global = true, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub metrics_hour_days: u32,

    /// Addresses allowed to read GET /metrics: IPs or CIDR ranges, separated by commas
    /// (`0.0.0.0/0,::/0` for everyone).
    #[arg(
        long,
        env = "KUTANGA_METRICS_ALLOW",
        global = true,
        default_value = "127.0.0.1/32,::1/128",
        value_name = "CIDRS"
    )]
    pub metrics_allow: String,

    /// A bearer token GET /metrics asks for (Prometheus: `authorization: { credentials: ... }`).
    #[arg(long, env = "KUTANGA_METRICS_TOKEN", global = true, hide_env_values = true, value_name = "TOKEN")]
    pub metrics_token: Option<String>,

    /// Reverse proxies (IPs or CIDR ranges, comma-separated) whose `Forwarded` or
    /// `X-Forwarded-For` headers are believed; unset, those headers are ignored.
    #[arg(long, env = "KUTANGA_TRUSTED_PROXIES", global = true, default_value = "", value_name = "CIDRS")]
    pub trusted_proxies: String,

    /// Web origins (`scheme://host[:port]`, comma-separated) whose pages may use the GraphQL API
    /// besides the hub's own: CORS on `/graphql` and the WebSocket. Unset, no CORS, and only the
    /// hub's own pages and clients that send no Origin (scripts, native clients) open sockets.
    #[arg(long, env = "KUTANGA_ALLOWED_ORIGINS", global = true, default_value = "", value_name = "ORIGINS")]
    pub allowed_origins: String,

    /// Addresses (IPs or CIDR ranges, comma-separated) that alert webhooks may reach although
    /// they are not public (loopback, private, link-local...), e.g. a chat relay on the LAN.
    #[arg(long, env = "KUTANGA_WEBHOOK_ALLOW", global = true, default_value = "", value_name = "CIDRS")]
    pub webhook_allow: String,

    /// Seconds an alert webhook request may take (connecting included).
    #[arg(long, env = "KUTANGA_WEBHOOK_TIMEOUT", global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub webhook_timeout: u64,

    /// Times a failed alert webhook is retried.
    #[arg(long, env = "KUTANGA_WEBHOOK_RETRIES", global = true, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub webhook_retries: u32,

    /// Milliseconds before the first webhook retry; each next retry waits twice as long.
    #[arg(long, env = "KUTANGA_WEBHOOK_BACKOFF_MS", global = true, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub webhook_backoff_ms: u64,

    /// How long shutdown waits for requests and WebSockets to finish, in seconds.
    #[arg(long, env = "KUTANGA_SHUTDOWN_TIMEOUT", global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub shutdown_timeout: u64,

    /// Log filter (`info`, `kutanga=debug,tower_http=info`...). RUST_LOG wins when it is set.
    #[arg(long = "log", env = "KUTANGA_LOG", global = true, default_value = "info", value_name = "FILTER")]
    pub log: String,

    /// Log format on the console: `human` or `json`.
    #[arg(long, env = "KUTANGA_LOG_FORMAT", global = true, default_value = "human", value_enum)]
    pub log_format: LogFormat,

    /// Also write the log as JSON to daily-rotated files in `<data dir>/logs`.
    #[arg(long, env = "KUTANGA_LOG_FILES", global = true, default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, value_name = "BOOL")]
    pub log_files: bool,

    /// Make a backup of the hub's database every this many hours into KUTANGA_BACKUP_DIR (0: none).
    #[arg(long, env = "KUTANGA_BACKUP_INTERVAL_HOURS", global = true, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=8760))]
    pub backup_interval_hours: u32,

    /// The folder of backups made on a schedule and before upgrades. Default: `<data dir>/backups`.
    #[arg(long, env = "KUTANGA_BACKUP_DIR", global = true, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,

    /// How many scheduled backups to keep (the newest first).
    #[arg(long, env = "KUTANGA_BACKUP_KEEP", global = true, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub backup_keep: u32,

    /// Scheduled backups older than this many days are removed (the newest is always kept).
    #[arg(long, env = "KUTANGA_BACKUP_MAX_AGE_DAYS", global = true, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub backup_max_age_days: u32,

    /// How many daily log files to keep.
    #[arg(long, env = "KUTANGA_LOG_RETENTION", global = true, default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=3650))]
    pub log_retention: u16,

    /// Every option as it came to be set, secrets hidden (see [`Settings::effective`]).
    #[arg(skip)]
    pub effective: Vec<ConfigEntry>,
}

/// One option as its definition describes it, for the generated documents.
struct OptionDoc {
    /// The flag without its dashes (`data-dir`).
    long: String,
    /// The TOML key (`data_dir`).
    key: String,
    env: String,
    /// The default as clap writes it (several joined by commas); empty when unset.
    default: String,
    value_name: String,
    /// The doc comment on one line.
    help: String,
    /// The values it takes, when it lists them.
    choices: Vec<String>,
}

/// Every option with a flag, in the order `Settings` declares them.
fn option_docs() -> Vec<OptionDoc> {
    let cmd = Settings::augment_args(clap::Command::new("kutanga"));
    cmd.get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?.to_owned();
            let help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
            let defaults: Vec<String> =
                arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            let choices = if arg.is_hide_possible_values_set() {
                Vec::new()
            } else {
                arg.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect()
            };
            Some(OptionDoc {
                key: long.replace('-', "_"),
                env: arg.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default(),
                default: defaults.join(","),
                value_name: arg
                    .get_value_names()
                    .and_then(|n| n.first())
                    .map_or("VALUE".to_owned(), ToString::to_string),
                help: help.split_whitespace().collect::<Vec<_>>().join(" "),
                choices,
                long,
            })
        })
        .collect()
}

/// The configuration reference, `docs/configuration.md`, made from the options' own definitions
/// (their doc comments, variables and defaults); a test fails when the file differs.
pub fn reference() -> String {
    let mut doc = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from api/src/config.rs by the test `config::tests::the_reference_is_current`; \
         KUTANGA_UPDATE_DOCS=1 writes it anew. Do not edit by hand. -->\n\n\
         Every option is a flag (`--data-dir`), an environment variable (`KUTANGA_DATA_DIR`) and a key of \
         the TOML file named by `KUTANGA_CONFIG` (`data_dir = \"/var/lib/kutanga\"`). A flag wins over the \
         environment, which wins over the file, which wins over the default. A bad value stops the hub at \
         once with a message that names the variable and what it expects; `kutanga check-config` prints \
         the values in effect and every warning.\n\n\
         | Variable | Flag / file key | Default | Meaning |\n|---|---|---|---|\n",
    );
    for option in option_docs() {
        let default = if option.default.is_empty() { "unset".to_owned() } else { format!("`{}`", option.default) };
        let mut meaning = option.help.replace('|', "\\|");
        if !meaning.is_empty() && !meaning.ends_with('.') {
            meaning.push('.');
        }
        if !option.choices.is_empty() {
            let choices: Vec<String> = option.choices.iter().map(|c| format!("`{c}`")).collect();
            meaning.push_str(&format!(" One of {}.", choices.join(", ")));
        }
        doc.push_str(&format!(
            "| `{}` | `--{}` / `{}` | {default} | {meaning} |\n",
            option.env, option.long, option.key
        ));
    }
    doc
}

/// The packaged configuration file, `packaging/kutanga.toml`: every option, commented, with its
/// meaning and default, and `set` (key, TOML value) uncommented; a test fails when it differs.
pub fn sample_file(set: &[(&str, &str)]) -> String {
    let mut file = String::from(
        "# Kutanga Hub's configuration (KUTANGA_CONFIG names this file). Every setting is listed,\n\
         # commented out, at its default; a KUTANGA_* environment variable or a flag wins over a\n\
         # value here. `kutanga check-config` prints the values in effect and what is wrong with them.\n\
         # Generated from api/src/config.rs; docs/configuration.md explains each one.\n",
    );
    for option in option_docs().into_iter().filter(|o| o.key != "config") {
        let key = &option.key;
        file.push('\n');
        let mut line = String::from("#");
        for word in option.help.split(' ').filter(|w| !w.is_empty()) {
            if line.len() + word.len() > 98 {
                file.push_str(&line);
                file.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        file.push_str(&line);
        file.push('\n');
        if let Some((_, value)) = set.iter().find(|(k, _)| k == key) {
            file.push_str(&format!("{key} = {value}\n"));
            continue;
        }
        let value = match option.default {
            d if d.is_empty() => format!("\"<{}>\"", option.value_name),
            d if d.parse::<i64>().is_ok() || d == "true" || d == "false" => d,
            d => format!("{d:?}"),
        };
        file.push_str(&format!("# {key} = {value}\n"));
    }
    file
}

/// What the Debian package's file sets: the data in /var/lib, production rules.
pub const PACKAGED: &[(&str, &str)] = &[("data_dir", "\"/var/lib/kutanga\""), ("mode", "\"production\"")];

/// One option of the running hub: its value (or that it is a secret) and where the value came
/// from. Secrets never reach this list, only whether they are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The long option name, as in the TOML file (`data_dir`).
    pub key: String,
    /// The value as given; for secrets `set` or `unset`.
    pub value: String,
    /// `default`, `environment`, `file` or `command line`.
    pub source: &'static str,
    pub secret: bool,
}

/// Options whose values are secrets: they show only whether they are set. The database and mail
/// addresses may carry a password.
const SECRET_OPTIONS: &[&str] = &["jwt_secret", "admin_password", "smtp_url", "metrics_token", "database_url"];

/// A parser whose options include a flattened [`Settings`].
pub trait WithSettings {
    fn settings_mut(&mut self) -> &mut Settings;
}

/// Reads every option of `Settings` out of the final matches.
fn effective(matches: &ArgMatches, from_file: &[String]) -> Vec<ConfigEntry> {
    let cmd = Settings::augment_args(clap::Command::new("settings"));
    cmd.get_arguments()
        .filter(|a| a.get_id() != "config" || matches.value_source("config").is_some())
        .map(|arg| {
            let id = arg.get_id().as_str();
            let secret = SECRET_OPTIONS.contains(&id) || arg.is_hide_env_values_set();
            let raw: Vec<String> = matches
                .get_raw(id)
                .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let value = match (secret, raw.is_empty()) {
                (true, true) | (false, true) => "unset".to_owned(),
                (true, false) => "set".to_owned(),
                (false, false) => raw.join(","),
            };
            let source = match matches.value_source(id) {
                _ if from_file.iter().any(|f| f == id) => "file",
                Some(ValueSource::EnvVariable) => "environment",
                Some(ValueSource::CommandLine) => "command line",
                _ => "default",
            };
            ConfigEntry { key: id.to_owned(), value, source, secret }
        })
        .collect()
}

/// How strict the hub is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Development,
    Production,
}

/// Who may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    Closed,
    Open,
    Invite,
}

/// The console log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// The database the hub talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Settings {
    /// Where backups made by the hub go.
    pub fn backup_folder(&self) -> PathBuf {
        self.backup_dir.clone().unwrap_or_else(|| self.data_dir.join("backups"))
    }

    /// The scheduled backups, when any are asked for.
    pub fn backup_schedule(&self) -> Option<crate::backup::Schedule> {
        const HOUR: u64 = 3600;
        (self.backup_interval_hours > 0).then(|| crate::backup::Schedule {
            dir: self.backup_folder(),
            every: Duration::from_secs(u64::from(self.backup_interval_hours) * HOUR),
            keep: self.backup_keep as usize,
            max_age: Duration::from_secs(u64::from(self.backup_max_age_days) * 24 * HOUR),
        })
    }

    pub fn database(&self) -> DatabaseTarget {
        match self.database_url.as_deref() {
            None => DatabaseTarget::Sqlite(self.data_dir.join("kutanga.db")),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                DatabaseTarget::Postgres(url.to_owned())
            }
            Some(url) => {
                DatabaseTarget::Sqlite(PathBuf::from(url.trim_start_matches("sqlite://").trim_start_matches("sqlite:")))
            }
        }
    }

    pub fn playground_enabled(&self) -> bool {
        self.playground.unwrap_or(self.mode == Mode::Development)
    }

    pub fn introspection_enabled(&self) -> bool {
        self.introspection.unwrap_or(self.mode == Mode::Development)
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl)
    }

    /// The base of links the hub mails out.
    pub fn public_url(&self) -> String {
        let scheme = if self.tls().is_some() { "https" } else { "http" };
        self.public_url.clone().unwrap_or_else(|| format!("{scheme}://{}", self.bind)).trim_end_matches('/').to_owned()
    }

    /// The certificate and key files when the hub serves TLS itself.
    pub fn tls(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }

    /// The addresses allowed to read /metrics.
    pub fn metrics_allow_list(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        cidr_list("KUTANGA_METRICS_ALLOW", &self.metrics_allow)
    }

    /// The reverse proxies whose forwarding headers are believed.
    pub fn trusted_proxy_list(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        cidr_list("KUTANGA_TRUSTED_PROXIES", &self.trusted_proxies)
    }

    /// The other sites whose pages may open the WebSocket, as `scheme://host[:port]` in lower case.
    pub fn allowed_origin_list(&self) -> Result<Vec<String>, ConfigError> {
        self.allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                canonical_origin(s).ok_or_else(|| {
                    ConfigError::invalid(
                        "KUTANGA_ALLOWED_ORIGINS",
                        "origins like https://example.org separated by commas",
                    )
                })
            })
            .collect()
    }

    /// The non-public addresses alert webhooks may reach anyway.
    pub fn webhook_allow_list(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        cidr_list("KUTANGA_WEBHOOK_ALLOW", &self.webhook_allow)
    }

    /// Checks what the parser cannot: relations between options and production rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_shape()?;
        if self.mode == Mode::Production {
            self.validate_production()?;
        }
        Ok(())
    }

    /// Checks relations between options, in any mode.
    pub fn validate_shape(&self) -> Result<(), ConfigError> {
        self.metrics_allow_list()?;
        self.webhook_allow_list()?;
        self.trusted_proxy_list()?;
        self.allowed_origin_list()?;
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(ConfigError::invalid("KUTANGA_TLS_KEY", "the key of KUTANGA_TLS_CERT")),
            (None, Some(_)) => {
                return Err(ConfigError::invalid("KUTANGA_TLS_CERT", "the certificate of KUTANGA_TLS_KEY"));
            }
            _ => {}
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::invalid("KUTANGA_METRICS_TOKEN", "a token of at least 16 characters"));
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            return Err(ConfigError::invalid("KUTANGA_JWT_SECRET", "a secret of at least 32 bytes"));
        }
        if let Some(pw) = &self.admin_password
            && pw.chars().count() < shared::validation::PASSWORD_MIN_CHARS
        {
            return Err(ConfigError::invalid("KUTANGA_ADMIN_PASSWORD", "a password of at least 8 characters"));
        }
        shared::validation::normalize_email(&self.admin_email)
            .map_err(|e| ConfigError::invalid("KUTANGA_ADMIN_EMAIL", &format!("an email address ({})", e.message)))?;
        if let Some(url) = &self.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(ConfigError::invalid("KUTANGA_SMTP_URL", "smtp://... or smtps://..."));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::invalid("KUTANGA_PUBLIC_URL", "http://... or https://..."));
        }
        if u64::from(self.metrics_minute_days) * 24 < u64::from(self.metrics_raw_hours) {
            return Err(ConfigError::invalid(
                "KUTANGA_METRICS_MINUTE_DAYS",
                "at least as long as KUTANGA_METRICS_RAW_HOURS (rollups outlive raw samples)",
            ));
        }
        if self.metrics_hour_days < self.metrics_minute_days {
            return Err(ConfigError::invalid(
                "KUTANGA_METRICS_HOUR_DAYS",
                "at least KUTANGA_METRICS_MINUTE_DAYS (hourly rollups outlive minute rollups)",
            ));
        }
        if self.mode == Mode::Production && self.playground == Some(true) && self.introspection == Some(false) {
            return Err(ConfigError::invalid(
                "KUTANGA_PLAYGROUND",
                "false when introspection is off (the playground needs introspection)",
            ));
        }
        Ok(())
    }
}

/// A setting worth a second look: production mode refuses to start with the ones marked so, and
/// `kutanga check-config` lists them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The variable to change.
    pub variable: &'static str,
    /// What it should be instead, and why.
    pub expected: String,
    /// Whether production mode refuses to start with it.
    pub refused_in_production: bool,
}

impl Settings {
    /// What production mode refuses to start with, whatever else allows it.
    fn validate_production(&self) -> Result<(), ConfigError> {
        match self.warnings()?.into_iter().find(|w| w.refused_in_production) {
            Some(w) => Err(ConfigError::invalid(w.variable, &w.expected)),
            None => Ok(()),
        }
    }

    /// Every warning about these settings, in any mode.
    pub fn warnings(&self) -> Result<Vec<Warning>, ConfigError> {
        const MIN_BITS: f64 = 100.0;
        let mut found = Vec::new();
        let mut warn = |variable: &'static str, refused_in_production: bool, expected: &str| {
            found.push(Warning { variable, expected: expected.to_owned(), refused_in_production });
        };
        if let Some(secret) = &self.jwt_secret
            && estimated_bits(secret) < MIN_BITS
        {
            warn(
                "KUTANGA_JWT_SECRET",
                true,
                "a random secret in production (this one is too predictable: repeated or few distinct \
                 characters); e.g. `openssl rand -hex 32`, or leave it unset to use a generated key",
            );
        }
        if let Some(token) = &self.metrics_token
            && estimated_bits(token) < MIN_BITS
        {
            warn(
                "KUTANGA_METRICS_TOKEN",
                true,
                "a random token in production (this one is too predictable); e.g. `openssl rand -hex 32`",
            );
        }
        let beyond_loopback = self.metrics_allow_list()?.iter().any(|net| !net.network().to_canonical().is_loopback());
        if beyond_loopback && self.metrics_token.is_none() {
            warn(
                "KUTANGA_METRICS_TOKEN",
                true,
                "a token in production when KUTANGA_METRICS_ALLOW reaches beyond loopback (or /metrics is open \
                 to those addresses without any credential)",
            );
        }
        if let Some(url) = &self.public_url
            && let Some(rest) = url.strip_prefix("http://")
        {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(['[', ']']);
            let local = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !local {
                warn(
                    "KUTANGA_PUBLIC_URL",
                    true,
                    "an https:// address in production (links in mail and webhooks would send tokens in clear)",
                );
            }
        }
        if !self.bind.ip().to_canonical().is_loopback() && self.tls().is_none() && self.trusted_proxy_list()?.is_empty()
        {
            warn(
                "KUTANGA_BIND",
                true,
                "a loopback address behind a reverse proxy that terminates TLS (and names it in \
                 KUTANGA_TRUSTED_PROXIES), or KUTANGA_TLS_CERT and KUTANGA_TLS_KEY: on another address without \
                 TLS, passwords and tokens cross the network in clear",
            );
        }
        if let Ok(meta) = std::fs::metadata(&self.data_dir) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o004 != 0 {
                warn(
                    "KUTANGA_DATA_DIR",
                    true,
                    "a folder other users cannot list (`chmod 711` or tighter): it holds the database, the JWT \
                     key and the game servers' files (in development the hub makes it 711 itself)",
                );
            }
        }
        if matches!(self.database(), DatabaseTarget::Postgres(_)) && self.jwt_secret.is_none() {
            warn(
                "KUTANGA_JWT_SECRET",
                false,
                "the same secret on every hub that shares this PostgreSQL database, if more than one does: \
                 each would otherwise generate a key of its own, and accept none of the others' tokens",
            );
        }
        if self.mode == Mode::Production && self.playground_enabled() {
            warn(
                "KUTANGA_PLAYGROUND",
                false,
                "off unless you use it: the playground page shows the whole schema to whoever opens it",
            );
        }
        Ok(found)
    }
}

/// A rough estimate of the randomness in a secret, in bits: its length times the Shannon entropy
/// of its characters. Repetition and small alphabets score low; 32 random bytes in hex score ~250.
pub fn estimated_bits(secret: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in secret.chars() {
        *counts.entry(c).or_insert(0u32) += 1;
    }
    let n = secret.chars().count() as f64;
    let per_char: f64 = counts.values().map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum();
    per_char * n
}

fn parse_database_url(raw: &str) -> Result<String, String> {
    let ok = ["postgres://", "postgresql://", "sqlite://", "sqlite:"]
        .iter()
        .any(|p| raw.starts_with(p) && raw.len() > p.len());
    if ok { Ok(raw.to_owned()) } else { Err("expected postgres://USER@HOST/DB or sqlite://PATH".into()) }
}

/// A configuration value the hub cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable, flag or file key holds a value of the wrong shape.
    #[error("{variable}: invalid value; expected {expected}")]
    Invalid { variable: String, expected: String },
    /// The config file cannot be read or parsed.
    #[error("KUTANGA_CONFIG: cannot use {path}: {reason}")]
    File { path: String, reason: String },
    /// Clap's own report (help, version, unknown flag, bad value), already rendered.
    #[error("{0}")]
    Cli(#[from] clap::Error),
}

impl ConfigError {
    fn invalid(variable: &str, expected: &str) -> Self {
        Self::Invalid { variable: variable.to_owned(), expected: expected.to_owned() }
    }
}

/// Parses a `clap::Parser` whose options include a flattened [`Settings`], applying the TOML
/// file named by `--config`/`KUTANGA_CONFIG` under the flags and environment.
pub fn parse_with_file<T>(args: Vec<OsString>) -> Result<T, ConfigError>
where
    T: CommandFactory + FromArgMatches + WithSettings,
{
    let first = T::command().try_get_matches_from(&args).map_err(name_the_variable)?;
    let file = first.get_one::<PathBuf>("config").cloned();
    let (matches, from_file) = match file {
        None => (first, Vec::new()),
        Some(path) => {
            let extra = file_args(&path, &first)?;
            let from_file = extra
                .iter()
                .filter_map(|a| a.to_str()?.strip_prefix("--")?.split('=').next().map(|k| k.replace('-', "_")))
                .collect();
            let mut all = args;
            all.extend(extra);
            (T::command().try_get_matches_from(all).map_err(name_the_variable)?, from_file)
        }
    };
    let mut parsed = T::from_arg_matches(&matches).map_err(ConfigError::from)?;
    // A subcommand's matches hold the global options too; the top level has them all.
    parsed.settings_mut().effective = effective(&matches, &from_file);
    Ok(parsed)
}

/// Turns the file's keys into `--key=value` arguments for the options that neither a flag nor
/// the environment set.
fn file_args(path: &std::path::Path, matches: &ArgMatches) -> Result<Vec<OsString>, ConfigError> {
    let file_err = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| file_err(e.message().to_owned()))?;
    let cmd = Settings::augment_args(clap::Command::new("settings"));
    let mut out = Vec::new();
    for (key, value) in table {
        let id = key.replace('-', "_");
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id().as_str() == id && id != "config")
            .ok_or_else(|| file_err(format!("unknown key `{key}`")))?;
        if !matches!(matches.value_source(&id), None | Some(ValueSource::DefaultValue)) {
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(file_err(format!("`{key}` must be a string, number or boolean, not {}", other.type_str())));
            }
        };
        let long = arg.get_long().unwrap_or(id.as_str());
        out.push(OsString::from(format!("--{long}={text}")));
    }
    Ok(out)
}

/// Adds the environment variable's name to clap's report of a bad value, so the operator knows
/// which variable to fix.
fn name_the_variable(err: clap::Error) -> ConfigError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(err.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return ConfigError::Cli(err);
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return ConfigError::Cli(err);
    };
    let long = arg.trim_start_matches("--").split([' ', '=']).next().unwrap_or_default();
    let cmd = Settings::augment_args(clap::Command::new("settings"));
    let option = cmd.get_arguments().find(|a| a.get_long() == Some(long));
    let Some(env) = option.and_then(|a| a.get_env()) else {
        return ConfigError::Cli(err);
    };
    // A secret's value (a database URL with its password) is never repeated on the console.
    let secret = option.is_some_and(|a| a.is_hide_env_values_set() || SECRET_OPTIONS.contains(&a.get_id().as_str()));
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(_)) if secret => "(hidden)".to_owned(),
        Some(ContextValue::String(v)) => v.clone(),
        _ => String::new(),
    };
    let expected = err
        .source()
        .map(|s| s.to_string())
        .or_else(|| match err.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(v)) => Some(format!("one of {}", v.join(", "))),
            _ => None,
        })
        .unwrap_or_else(|| "a valid value (see --help)".into());
    ConfigError::Invalid { variable: format!("{} (--{long}, value `{value}`)", env.to_string_lossy()), expected }
}

use std::error::Error as _;

/// IP addresses or CIDR ranges separated by commas.
/// `scheme://host[:port]` in lower case, without a default port or a trailing slash; None when
/// the text is not an http(s) origin (a path, a query or user info make it none).
pub fn canonical_origin(text: &str) -> Option<String> {
    let uri: axum::http::Uri = text.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if authority.as_str().contains('@') || uri.query().is_some() || !matches!(uri.path(), "" | "/") {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    Some(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn cidr_list(variable: &'static str, text: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::invalid(variable, "IP addresses or CIDR ranges separated by commas"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn origins_are_compared_in_one_spelling() {
        assert_eq!(canonical_origin("HTTPS://Example.ORG:443/").as_deref(), Some("https://example.org"));
        assert_eq!(canonical_origin("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(canonical_origin("http://[::1]:80").as_deref(), Some("http://[::1]"));
        for not_an_origin in
            ["null", "example.org", "ftp://example.org", "https://a@example.org", "https://example.org/x", ""]
        {
            assert_eq!(canonical_origin(not_an_origin), None, "{not_an_origin}");
        }
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    impl WithSettings for Cli {
        fn settings_mut(&mut self) -> &mut Settings {
            &mut self.settings
        }
    }

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let args = std::iter::once("kutanga").chain(args.iter().copied()).map(OsString::from).collect();
        parse_with_file::<Cli>(args).map(|c| c.settings)
    }

    /// Fails unless the file at `path` (from the workspace root) holds `made`; with
    /// KUTANGA_UPDATE_DOCS set, writes it first. Returns the file's path.
    fn generated_file_is_current(path: &str, made: &str, test: &str) -> PathBuf {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        if std::env::var_os("KUTANGA_UPDATE_DOCS").is_some() {
            std::fs::write(&file, made).unwrap();
        }
        let kept = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            kept == made,
            "{path} is stale: run `KUTANGA_UPDATE_DOCS=1 cargo nextest run -p kutanga --lib config::tests::{test}` \
             and commit it"
        );
        file
    }

    #[test]
    fn the_reference_is_current() {
        let made = reference();
        generated_file_is_current("docs/configuration.md", &made, "the_reference_is_current");
        let options = Settings::augment_args(clap::Command::new("k")).get_arguments().count();
        assert_eq!(made.lines().filter(|l| l.starts_with("| `KUTANGA_")).count(), options, "every option has its row");
    }

    #[test]
    fn the_packaged_file_is_current_and_read() {
        let made = sample_file(PACKAGED);
        let path = generated_file_is_current("packaging/kutanga.toml", &made, "the_packaged_file_is_current_and_read");
        // The hub reads it as it stands, with the values it sets.
        let s = parse(&["--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/kutanga"));
        assert_eq!(s.mode, Mode::Production);
        // Each commented line, uncommented, is the default it names.
        let uncommented: String = made
            .lines()
            .filter_map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ") && !l.contains("\"<")))
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let all = dir.path().join("all.toml");
        std::fs::write(&all, uncommented).unwrap();
        let s = parse(&["--config", all.to_str().unwrap()]).unwrap();
        assert_eq!(s.bind, parse(&[]).unwrap().bind);
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.database(), DatabaseTarget::Sqlite(PathBuf::from("./data/kutanga.db")));
        assert!(s.playground_enabled());
        s.validate().unwrap();
    }

    #[test]
    fn production_turns_the_playground_off_unless_asked() {
        let s = parse(&["--mode", "production"]).unwrap();
        assert!(!s.playground_enabled() && !s.introspection_enabled());
        let s = parse(&["--mode", "production", "--playground", "true"]).unwrap();
        assert!(s.playground_enabled());
    }

    #[test]
    fn production_refuses_unsafe_settings_and_names_them() {
        // A data dir of the test's own: whatever ./data is where the test runs does not matter.
        let private = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let data_dir = private.path().to_str().unwrap();
        let parse = |args: &[&str]| {
            let mut all = args.to_vec();
            if !all.contains(&"--data-dir") {
                all.extend(["--data-dir", data_dir]);
            }
            parse(&all)
        };
        let refused = |args: &[&str], variable: &str| {
            let mut all = vec!["--mode", "production"];
            all.extend(args);
            let err = parse(&all).and_then(|s| s.validate()).unwrap_err().to_string();
            assert!(err.contains(variable), "{args:?}: {err}");
        };
        let aaa = "a".repeat(36);
        refused(&["--jwt-secret", &aaa], "KUTANGA_JWT_SECRET");
        refused(&["--jwt-secret", &"ab".repeat(20)], "KUTANGA_JWT_SECRET");
        refused(&["--metrics-allow", "0.0.0.0/0"], "KUTANGA_METRICS_TOKEN");
        refused(&["--metrics-allow", "10.0.0.0/8", "--metrics-token", &"x".repeat(20)], "KUTANGA_METRICS_TOKEN");
        refused(&["--public-url", "http://hub.example.org"], "KUTANGA_PUBLIC_URL");
        refused(&["--bind", "0.0.0.0:8080"], "KUTANGA_BIND");
        refused(&["--bind", "[::]:8080"], "KUTANGA_BIND");
        let open = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        refused(&["--data-dir", open.path().to_str().unwrap()], "KUTANGA_DATA_DIR");
        // Behind a proxy it names, or with its own TLS, any address will do.
        parse(&["--mode", "production", "--bind", "0.0.0.0:8080", "--trusted-proxies", "10.0.0.1"])
            .unwrap()
            .validate()
            .unwrap();
        let fine = [
            "--mode",
            "production",
            "--jwt-secret",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "--metrics-allow",
            "10.0.0.0/8",
            "--metrics-token",
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            "--public-url",
            "https://hub.example.org",
        ];
        parse(&fine).unwrap().validate().unwrap();
        parse(&["--mode", "production", "--public-url", "http://127.0.0.1:8080"]).unwrap().validate().unwrap();
        // Development mode is for trying things out: it says nothing of these.
        parse(&["--jwt-secret", &aaa, "--metrics-allow", "0.0.0.0/0"]).unwrap().validate().unwrap();
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = parse(&["--bind", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("KUTANGA_BIND"), "{err}");
        let err = parse(&["--graphql-max-depth", "1000"]).unwrap_err().to_string();
        assert!(err.contains("KUTANGA_GRAPHQL_MAX_DEPTH"), "{err}");
        let err = parse(&["--database-url", "mysql://x"]).unwrap_err().to_string();
        assert!(err.contains("KUTANGA_DATABASE_URL") && err.contains("postgres://"), "{err}");
        let err = parse(&["--jwt-secret", "short"]).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("KUTANGA_JWT_SECRET"), "{err}");
        let err = parse(&["--metrics-hour-days", "7"]).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("KUTANGA_METRICS_HOUR_DAYS"), "{err}");
        let err = parse(&["--metrics-raw-hours", "48", "--metrics-minute-days", "1"]).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("KUTANGA_METRICS_MINUTE_DAYS"), "{err}");
    }

    #[test]
    fn the_file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kutanga.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\nhub_name = \"From file\"\ngraphql-max-depth = 8\n").unwrap();
        let s = parse(&["--config", path.to_str().unwrap(), "--hub-name", "From flag"]).unwrap();
        assert_eq!(s.bind.port(), 9000);
        assert_eq!(s.hub_name, "From flag");
        assert_eq!(s.graphql_max_depth, 8);
        let entry = |key: &str| s.effective.iter().find(|e| e.key == key).unwrap_or_else(|| panic!("{key}")).clone();
        assert_eq!((entry("bind").value.as_str(), entry("bind").source), ("127.0.0.1:9000", "file"));
        assert_eq!((entry("hub_name").value.as_str(), entry("hub_name").source), ("From flag", "command line"));
        assert_eq!(entry("graphql_max_depth").source, "file");
        assert_eq!((entry("session_ttl").source, entry("log").value.as_str()), ("default", "info"));
    }

    #[test]
    fn the_effective_configuration_hides_secrets() {
        let s = parse(&[
            "--jwt-secret",
            "0123456789abcdef0123456789abcdef-secret",
            "--database-url",
            "postgres://hub:hunter2@db/hub",
            "--smtp-url",
            "smtp://mail:pw@mail.test",
        ])
        .unwrap();
        let shown = format!("{:?}", s.effective);
        for secret in ["0123456789abcdef", "hunter2", "pw@mail"] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        let entry = |key: &str| s.effective.iter().find(|e| e.key == key).unwrap().clone();
        assert_eq!((entry("jwt_secret").value.as_str(), entry("jwt_secret").secret), ("set", true));
        assert_eq!(entry("admin_password").value, "unset");
        assert_eq!(entry("database_url").value, "set");
        let cmd = Settings::augment_args(clap::Command::new("settings"));
        assert_eq!(s.effective.len(), cmd.get_arguments().count() - 1, "every option but --config is listed");
        // Nor does a refused secret show in the error.
        let err = parse(&["--database-url", "mysql://hub:hunter2@db/hub"]).unwrap_err().to_string();
        assert!(err.contains("KUTANGA_DATABASE_URL") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_file_refuses_unknown_keys_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kutanga.toml");
        std::fs::write(&path, "bnd = \"x\"\n").unwrap();
        let err = parse(&["--config", path.to_str().unwrap()]).unwrap_err().to_string();
        assert!(err.contains("unknown key `bnd`"), "{err}");
        std::fs::write(&path, "bind = \"x\"\n").unwrap();
        let err = parse(&["--config", path.to_str().unwrap()]).unwrap_err().to_string();
        assert!(err.contains("KUTANGA_BIND"), "{err}");
        let err = parse(&["--config", "/nonexistent/kutanga.toml"]).unwrap_err().to_string();
        assert!(err.contains("KUTANGA_CONFIG"), "{err}");
    }

    /// Property tests: `cargo xtask fuzz` runs them with more cases.
    mod fuzz {
        use std::ffi::OsString;

        use clap::CommandFactory;
        use proptest::prelude::*;

        use crate::cli::Cli;

        fn options() -> Vec<String> {
            Cli::command().get_arguments().filter_map(|a| a.get_long()).map(str::to_owned).collect()
        }

        /// Parsed, or refused with a message that names what is wrong.
        fn settled(args: Vec<OsString>) -> Result<(), TestCaseError> {
            if let Err(e) = Cli::parse_args(args) {
                let text = e.to_string();
                prop_assert!(text.contains("KUTANGA_") || text.contains("--") || text.contains("error"), "{}", text);
            }
            Ok(())
        }

        proptest! {
            /// Any values for any options are taken or refused by name; never a panic.
            #[test]
            fn any_options_are_taken_or_refused(pairs in proptest::collection::vec(
                (proptest::sample::select(options()), "\\PC{0,24}|-?[0-9]{1,12}|true|false|postgres://[a-z@:/.0-9]{0,20}"),
                0..6,
            )) {
                let mut args: Vec<OsString> = vec!["kutanga".into()];
                for (option, value) in pairs {
                    args.push(format!("--{option}").into());
                    args.push(value.into());
                }
                settled(args)?;
            }

            /// Any text as the configuration file, key-shaped lines included.
            #[test]
            fn any_config_file_is_read_or_refused(
                text in "(\\PC|\n|=|\"|\\[|\\]){0,200}|([a-z_]{1,20} = (\"\\PC{0,20}\"|-?[0-9]{1,10}|true|\\[\\])\n){1,6}"
            ) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("kutanga.toml");
                std::fs::write(&path, &text).unwrap();
                settled(vec!["kutanga".into(), "--config".into(), path.into_os_string()])?;
            }
        }
    }
}
