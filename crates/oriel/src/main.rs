//! The `oriel` binary: one process that collects, stores and serves click-stream events.
//!
//! Subcommands: `serve` runs everything; `sql` and `delete` talk to a running server; `gen`
//! makes realistic traffic; `import` backfills events; `log` inspects the event log;
//! `check-config` validates a configuration file; `version` prints the version. Configuration is loaded by [`settings`], the server is assembled
//! and run by [`serve`], and logging and metrics are set up by [`telemetry`].

mod client;
mod gen_command;
mod generate;
mod import;
mod log_tools;
mod progress;
mod serve;
mod settings;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: ingestion and queries allocate many small, short-lived buffers, where it is
/// measurably faster than the system allocator (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run a SQL query on a running server and print the result.
    Sql {
        /// The query, in Druid's SQL dialect.
        query: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: client::Format,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Delete every event of a visitor or user on a running server.
    Delete {
        /// The visitor's party_id.
        #[arg(long, conflicts_with = "user")]
        party: Option<String>,
        /// The user's user_id.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Generate realistic click-stream traffic into a file or to a running collector.
    Gen(gen_command::GenArgs),
    /// Backfill events from a JSON-lines or Parquet file into the store of a stopped server.
    Import(import::ImportArgs),
    /// Inspect the event log of a stopped server.
    #[command(subcommand)]
    Log(LogCommand),
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Print every stored event as one JSON object per line, partition by partition.
    Dump(ConfigArgs),
    /// Print the offsets, size and consumers of each partition.
    Stats(ConfigArgs),
}

/// Where to find the configuration and data of a server.
#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "ORIEL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Options of `oriel serve`; each overrides the configuration file and environment.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    base: ConfigArgs,
    /// Address to listen on, e.g. 127.0.0.1:8080 (overrides server.listen).
    #[arg(long)]
    listen: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::CheckConfig { file } => settings::check(&file),
        Command::Sql { query, format, connection } => client::sql(&connection, &query, format),
        Command::Delete { party, user, connection } => client::delete(&connection, party, user),
        Command::Gen(args) => gen_command::run(args),
        Command::Import(args) => import::run(args),
        Command::Log(LogCommand::Dump(args)) => log_tools::dump(&args),
        Command::Log(LogCommand::Stats(args)) => log_tools::stats(&args),
        Command::Version => {
            #[allow(clippy::print_stdout)] // the command's whole output
            {
                // The profile too: a debug build is far slower, and benchmarks must say which ran.
                let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
                println!("oriel {} ({profile} build)", env!("CARGO_PKG_VERSION"));
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
