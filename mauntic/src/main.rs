//! `mauntic`: telemetry, settings, then the subcommand; reports how it ended.

use clap::Parser;
use mauntic::cli::{self, Cli};
use mauntic::{telemetry, Settings};

/// See the workspace Cargo.toml: allocation-heavy paths (imports, projections) run faster on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let outcome = match Settings::from_env() {
        Ok(settings) => cli::run(cli, settings).await,
        Err(e) => Err(e.context("reading settings")),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "mauntic failed");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
