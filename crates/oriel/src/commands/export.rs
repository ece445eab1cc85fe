//! `oriel export --party ID | --user ID`: every event of a visitor or user on a running server,
//! as JSON lines or Parquet, for a data-subject access request.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::client::Connection;

/// Options of `oriel export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The visitor's party_id.
    #[arg(long, conflicts_with = "user")]
    party: Option<String>,
    /// The user's user_id.
    #[arg(long)]
    user: Option<String>,
    /// `jsonl` (one JSON object per event) or `parquet`.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "parquet"])]
    format: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(args: ExportArgs) -> anyhow::Result<()> {
    let ExportArgs { party, user, format, out, connection } = args;
    let (key, id) = match (party, user) {
        (Some(p), _) => ("party_id", p),
        (None, Some(u)) => ("user_id", u),
        (None, None) => bail!("name the visitor with --party ID or the user with --user ID"),
    };
    if format == "parquet" && out.is_none() {
        bail!("a Parquet export is binary: give --out FILE");
    }
    let mut url = reqwest::Url::parse("http://oriel/api/v1/export").context("export URL")?;
    url.query_pairs_mut().append_pair(key, &id).append_pair("format", &format);
    let bytes = connection.get(&format!("{}?{}", url.path(), url.query().unwrap_or_default()))?;
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
            #[allow(clippy::print_stderr)]
            {
                eprintln!("wrote {} bytes to {}", bytes.len(), path.display());
            }
        }
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(())
}
