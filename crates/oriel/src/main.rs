//! The `oriel` binary: one process that collects, stores and serves click-stream events.
//!
//! Subcommands: `serve` runs everything; `check-config` validates a configuration file;
//! `version` prints the version. Configuration is loaded by [`settings`], the server is assembled
//! and run by [`serve`], and logging and metrics are set up by [`telemetry`].

mod serve;
mod settings;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Real-time click-stream analytics in one binary.
#[derive(Debug, Parser)]
#[command(name = "oriel", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collector, event log, store and APIs in this process.
    Serve(ServeArgs),
    /// Check a configuration file (and ORIEL_* variables) and report the first problem.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Print the version.
    Version,
}

/// Options of `oriel serve`; each overrides the configuration file and environment.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML). Without one, every setting has its default.
    #[arg(long, env = "ORIEL_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (overrides server.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (overrides data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::CheckConfig { file } => settings::check(&file),
        Command::Version => {
            #[allow(clippy::print_stdout)] // the command's whole output
            {
                println!("oriel {}", env!("CARGO_PKG_VERSION"));
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}
