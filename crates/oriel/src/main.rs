//! The `oriel` binary: one process that collects, stores and serves click-stream events.
//!
//! Each subcommand is a module of [`commands`]: `serve` runs everything; `collect`, `ingest`
//! and `query` run one role of a cluster each; `sql`, `delete`,
//! `deletions`, `export` and `signin` talk to a running server ([`client`]); `gen` makes realistic traffic ([`generate`]);
//! `import` backfills events; `log` inspects the event log; `user add` makes the entry of a
//! user who signs in with a password; `check-config` validates a
//! configuration file; `version` prints the version. Configuration is loaded by [`settings`],
//! logging and metrics are set up by [`telemetry`].

mod client;
mod commands;
mod generate;
mod progress;
mod settings;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oriel_core::config::NodeRole;

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
    Serve(commands::serve::ServeArgs),
    /// Cluster role: run the collector endpoints, writing events to Kafka (docs/deploy.md).
    Collect(commands::serve::ServeArgs),
    /// Cluster role: consume cluster.partitions of Kafka into segments in the shared store.
    Ingest(commands::serve::ServeArgs),
    /// Cluster role: answer SQL, the Druid API and the UI over every ingest node's store.
    Query(commands::serve::ServeArgs),
    /// Check a configuration file (and ORIEL_* variables) and report the first problem.
    CheckConfig(commands::check_config::CheckConfigArgs),
    /// Run a SQL query on a running server and print the result.
    Sql(commands::sql::SqlArgs),
    /// Delete every event of a visitor or user on a running server.
    Delete(commands::delete::DeleteArgs),
    /// List the receipts of past deletions on a running server.
    Deletions(commands::deletions::DeletionsArgs),
    /// Export every event of a visitor or user from a running server (JSON lines or Parquet).
    Export(commands::export::ExportArgs),
    /// Print a one-time link that signs a browser in to a running server.
    Signin(commands::signin::SigninArgs),
    /// Generate realistic click-stream traffic into a file or to a running collector.
    Gen(commands::generate::GenArgs),
    /// Backfill events from a JSON-lines or Parquet file into the store of a stopped server.
    Import(commands::import::ImportArgs),
    /// Inspect the event log of a stopped server.
    #[command(subcommand)]
    Log(commands::log::LogCommand),
    /// Manage users who sign in with a password.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args, NodeRole::Serve),
        Command::Collect(args) => commands::serve::run(args, NodeRole::Collect),
        Command::Ingest(args) => commands::serve::run(args, NodeRole::Ingest),
        Command::Query(args) => commands::serve::run(args, NodeRole::Query),
        Command::CheckConfig(args) => commands::check_config::run(args),
        Command::Sql(args) => commands::sql::run(args),
        Command::Delete(args) => commands::delete::run(args),
        Command::Deletions(args) => commands::deletions::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Signin(args) => commands::signin::run(args),
        Command::Gen(args) => commands::generate::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Log(command) => commands::log::run(command),
        Command::User(command) => commands::user::run(command),
        Command::Version => commands::version::run(),
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
