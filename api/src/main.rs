//! The `kutanga` binary: parse the command line, start logging, run the command.

use std::process::ExitCode;

use kutanga::{cli::Cli, config::ConfigError, run, telemetry};

fn main() -> ExitCode {
    // Before the runtime starts its threads, which copy this thread's capabilities.
    if let Err(e) = kutanga::supervisor::process::keep_capabilities_from_children() {
        #[expect(clippy::print_stderr, reason = "logging is not set up yet")]
        {
            eprintln!("kutanga: cannot drop the capabilities games would inherit: {e}");
        }
        return ExitCode::from(2);
    }
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run_main()),
        Err(e) => {
            #[expect(clippy::print_stderr, reason = "logging is not set up yet")]
            {
                eprintln!("kutanga: cannot start: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run_main() -> ExitCode {
    let cli = match Cli::parse_from_env() {
        Ok(cli) => cli,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            #[expect(clippy::print_stderr, reason = "logging is not set up before the config is read")]
            {
                eprintln!("kutanga: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let _log_guard = match telemetry::init(&cli.settings) {
        Ok(guard) => guard,
        Err(e) => {
            #[expect(clippy::print_stderr, reason = "logging failed to start")]
            {
                eprintln!("kutanga: cannot start logging: {e}");
            }
            return ExitCode::from(2);
        }
    };
    match run::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
