//! What each subcommand does.

use std::process::ExitCode;

use crate::{
    App,
    app::Services,
    backup, bootstrap,
    cli::{AdminCommand, Cli, Command},
    config::Settings,
    db::Db,
    events::LocalBus,
    users::{self, NewUser, Origin},
};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Migrate => {
            let bus = LocalBus::default();
            // Never under a running hub, nor into a restore.
            let _lock = backup::DataDirLock::acquire(&cli.settings.data_dir)?;
            let (db, applied) = bootstrap::open_database(&cli.settings, &bus).await?;
            bootstrap::seed(&db, &bus).await?;
            say(&if applied.is_empty() {
                "the database is up to date".to_owned()
            } else {
                format!("applied {} migration(s): {}", applied.len(), applied.join(", "))
            });
            db.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { output } => {
            let sdl = crate::sdl();
            match output {
                Some(path) => std::fs::write(&path, sdl)?,
                None => say(&sdl),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(cmd) => admin(cli.settings, cmd).await,
        Command::CheckConfig => Ok(check_config(&cli.settings)),
        Command::Health => Ok(health(&cli.settings).await),
        Command::Backup { output } => {
            let db = Db::connect(&cli.settings.database()).await?;
            let made = backup::create(&cli.settings, &db, &output).await;
            db.close().await;
            let manifest = made?;
            say(&format!(
                "wrote {} ({} database of {} bytes, schema {})",
                output.display(),
                if manifest.backend == backup::Backend::Sqlite { "SQLite" } else { "PostgreSQL" },
                manifest.database_bytes(),
                manifest.schema
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { input } => {
            let manifest = backup::restore(&cli.settings, &input).await?;
            say(&format!(
                "restored the backup made {} by Kutanga Hub {} (schema {}) into {}; start the hub to use it",
                manifest.created_at.to_rfc3339(),
                manifest.hub_version,
                manifest.schema,
                cli.settings.data_dir.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Whether the hub at the configured address answers /healthz: over loopback when it listens on
/// every address, over HTTPS when it serves TLS (its certificate is not checked: it names the
/// public host, and this is the hub asking itself).
async fn health(settings: &Settings) -> ExitCode {
    let mut addr = settings.bind;
    let mut tries = vec![addr];
    if addr.ip().is_unspecified() {
        // Listening on every address: loopback, of either family (IPv6 may be off on loopback).
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        let mut v6 = addr;
        v6.set_ip(std::net::Ipv6Addr::LOCALHOST.into());
        tries = if settings.bind.is_ipv4() { vec![addr] } else { vec![v6, addr] };
    }
    let scheme = if settings.tls().is_some() { "https" } else { "http" };
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            complain(&format!("unhealthy: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let mut last = String::new();
    for addr in tries {
        match client.get(format!("{scheme}://{addr}/healthz")).send().await {
            Ok(r) if r.status().is_success() => {
                say("healthy");
                return ExitCode::SUCCESS;
            }
            Ok(r) => last = format!("/healthz at {addr} answered {}", r.status()),
            Err(e) => last = format!("no answer from {scheme}://{addr}/healthz: {e}"),
        }
    }
    complain(&format!("unhealthy: {last}"));
    ExitCode::FAILURE
}

/// The effective settings, then every warning; 1 when the hub would refuse to start.
fn check_config(settings: &Settings) -> ExitCode {
    let mut lines = vec![format!(
        "kutanga {} (database schema {}), {} mode",
        shared::VERSION,
        crate::db::schema_version(),
        if settings.mode == crate::config::Mode::Production { "production" } else { "development" }
    )];
    lines.push("settings (secrets hidden):".to_owned());
    let width = settings.effective.iter().map(|e| e.key.len()).max().unwrap_or(0);
    for entry in &settings.effective {
        lines.push(format!("  {:width$}  {}  ({})", entry.key, entry.value, entry.source));
    }
    let mut refused = 0;
    if let Err(e) = settings.validate_shape() {
        lines.push(format!("error: {e}"));
        refused += 1;
    }
    match settings.warnings() {
        Ok(warnings) => {
            for w in warnings {
                let refusing = w.refused_in_production && settings.mode == crate::config::Mode::Production;
                refused += usize::from(refusing);
                let kind = match (refusing, w.refused_in_production) {
                    (true, _) => "error",
                    (false, true) => "warning (refused in production)",
                    (false, false) => "warning",
                };
                lines.push(format!("{kind}: {}: expected {}", w.variable, w.expected));
            }
        }
        Err(e) if refused == 0 => {
            lines.push(format!("error: {e}"));
            refused += 1;
        }
        Err(_) => {}
    }
    lines.push(if refused == 0 {
        "the hub would start with these settings".to_owned()
    } else {
        format!("the hub would refuse to start: {refused} error(s) above")
    });
    say(&lines.join("\n"));
    if refused == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    // SIGHUP's default is to end the process: from here on it only reloads (the TLS certificate,
    // once serving), even while the database is migrated or the servers are taken back.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let bind = settings.bind;
    // One hub per data dir, and none while a backup is restored into it.
    let _lock = backup::DataDirLock::acquire(&settings.data_dir)?;
    let (app, first_admin) = App::build(settings).await?;
    if let Some(admin) = &first_admin {
        tracing::info!(email = %admin.email, "created the first admin");
        bootstrap::announce(admin);
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("KUTANGA_BIND: cannot listen on {bind}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, version = shared::VERSION, "the hub is serving");
    let token = app.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    app.serve(listener).await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn admin(settings: Settings, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let s = Services::open(settings).await?;
    let origin = Origin { actor: None, ip: None, via: Some("command line") };
    let outcome = match cmd {
        AdminCommand::CreateUser { email, password, display_name, roles } => {
            let generated = password.is_none().then(|| crate::auth::random_secret()[..20].to_owned());
            let password = password.or_else(|| generated.clone()).unwrap_or_default();
            users::create(&s, &origin, NewUser { email, password, display_name, roles }, None)
                .await
                .map(|u| (format!("created user {} (id {})", u.email, u.id), generated))
        }
        AdminCommand::ResetPassword { email, password } => {
            let generated = password.is_none().then(|| crate::auth::random_secret()[..20].to_owned());
            let password = password.or_else(|| generated.clone()).unwrap_or_default();
            users::reset_password(&s, &origin, &email, password)
                .await
                .map(|u| (format!("set a new password for {}; their sessions have ended", u.email), generated))
        }
    };
    s.db.clone().close().await;
    match outcome {
        Ok((message, generated)) => {
            say(&message);
            if let Some(password) = generated {
                say(&format!("password: {password}"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            complain(&format!("error: {e}"));
            Ok(ExitCode::FAILURE)
        }
    }
}

#[expect(clippy::print_stdout, reason = "the command's own output")]
fn say(text: &str) {
    println!("{text}");
}

#[expect(clippy::print_stderr, reason = "the command's own error report")]
fn complain(text: &str) {
    eprintln!("{text}");
}
