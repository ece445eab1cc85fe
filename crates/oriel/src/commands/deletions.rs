//! `oriel deletions`: the receipts of past deletions on a running server, newest first.

use serde_json::Value;

use crate::client::Connection;

/// Options of `oriel deletions`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeletionsArgs {
    /// Print the receipts as JSON, one per line, instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(args: DeletionsArgs) -> anyhow::Result<()> {
    let bytes = args.connection.get("/api/v1/deletions")?;
    let answer: Value = serde_json::from_slice(&bytes)?;
    let receipts = answer["deletions"].as_array().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    #[allow(clippy::print_stdout)]
    {
        if args.json {
            for receipt in &receipts {
                println!("{receipt}");
            }
            return Ok(());
        }
        if receipts.is_empty() {
            println!("no deletions yet");
            return Ok(());
        }
        println!("{:<8} {:<24} {:<16} {:<32} {:>8}", "id", "requested at", "by", "whose events", "deleted");
        for r in &receipts {
            let whose = match (r["party_id"].as_str(), r["user_id"].as_str()) {
                (Some(p), _) => format!("visitor {p}"),
                (None, Some(u)) => format!("user {u}"),
                (None, None) => "-".into(),
            };
            println!(
                "{:<8} {:<24} {:<16} {:<32} {:>8}",
                text(&r["id"]),
                text(&r["requested_at"]),
                text(&r["requested_by"]),
                whose,
                r["deleted"].as_u64().unwrap_or(0)
            );
        }
    }
    Ok(())
}
