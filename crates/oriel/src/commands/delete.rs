//! `oriel delete --party ID | --user ID`: every event of a visitor or user, on a running server.

use anyhow::bail;
use serde_json::json;

use crate::client::Connection;

/// Options of `oriel delete`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    /// The visitor's party_id.
    #[arg(long, conflicts_with = "user")]
    party: Option<String>,
    /// The user's user_id.
    #[arg(long)]
    user: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(args: DeleteArgs) -> anyhow::Result<()> {
    let DeleteArgs { party, user, connection } = args;
    if party.is_none() && user.is_none() {
        bail!("name the visitor with --party ID or the user with --user ID");
    }
    let who =
        party.as_ref().map(|p| format!("visitor {p}")).or_else(|| user.as_ref().map(|u| format!("user {u}"))).unwrap_or_default();
    let answer = connection.call("/api/v1/delete", json!({ "party_id": party, "user_id": user }))?;
    let n = answer["deleted"].as_u64().unwrap_or(0);
    let id = answer["receipt"]["id"].as_str().unwrap_or("-");
    #[allow(clippy::print_stdout)]
    {
        println!("deleted {n} event{} of {who} (receipt {id}; `oriel deletions` lists them)", if n == 1 { "" } else { "s" });
    }
    Ok(())
}
