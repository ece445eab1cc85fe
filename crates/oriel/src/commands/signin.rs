//! `oriel signin`: a fresh one-time link that signs a browser in to a running server.

use serde_json::json;

use crate::client::Connection;

/// Options of `oriel signin`.
#[derive(Debug, clap::Args)]
pub(crate) struct SigninArgs {
    /// Sign the browser in as a viewer (may query) instead of an admin.
    #[arg(long)]
    viewer: bool,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(args: SigninArgs) -> anyhow::Result<()> {
    let role = if args.viewer { "viewer" } else { "admin" };
    let answer = args.connection.call("/api/v1/signin-links", json!({ "role": role }))?;
    let path = answer["path"].as_str().unwrap_or_default();
    #[allow(clippy::print_stdout)]
    {
        println!("{}{path}", args.connection.url.trim_end_matches('/'));
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("open it within an hour; it works once and signs the browser in as {role}");
    }
    Ok(())
}
