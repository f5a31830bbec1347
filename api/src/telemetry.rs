//! The process log: levels from config or RUST_LOG, human or JSON on the console, and optional
//! daily-rotated JSON files in the data dir. Secrets are never logged.

use tracing_appender::{
    non_blocking::WorkerGuard,
    rolling::{Builder, Rotation},
};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber. Keep the guard alive: it flushes the file log on drop.
pub fn init(settings: &Settings) -> anyhow::Result<Option<WorkerGuard>> {
    let (filter, text) = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => (EnvFilter::try_new(&env)?, env),
        _ => (
            EnvFilter::try_new(&settings.log)
                .map_err(|e| anyhow::anyhow!("KUTANGA_LOG: invalid filter `{}`: {e}", settings.log))?,
            settings.log.clone(),
        ),
    };
    // The web app's files, one line each at every start, unless asked for by name.
    let filter =
        if text.contains("memory_serve") { filter } else { filter.add_directive("memory_serve=warn".parse()?) };
    let console = match settings.log_format {
        LogFormat::Human => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => {
            tracing_subscriber::fmt::layer().json().with_current_span(true).with_writer(std::io::stderr).boxed()
        }
    };
    let (file, guard) = if settings.log_files {
        let dir = settings.data_dir.join("logs");
        std::fs::create_dir_all(&dir)?;
        let appender = Builder::new()
            .rotation(Rotation::DAILY)
            .filename_prefix("kutanga")
            .filename_suffix("log")
            .max_log_files(usize::from(settings.log_retention))
            .build(&dir)?;
        let (writer, guard) = tracing_appender::non_blocking(appender);
        let layer = tracing_subscriber::fmt::layer().json().with_ansi(false).with_writer(writer).boxed();
        (Some(layer), Some(guard))
    } else {
        (None, None)
    };
    tracing_subscriber::registry().with(filter).with(console).with(file).try_init()?;
    Ok(guard)
}
