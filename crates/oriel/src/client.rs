//! `oriel sql` and `oriel delete`: clients of a running server's query API.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Where the server is and how to authenticate.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The server's URL.
    #[arg(long, env = "ORIEL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Bearer token (needed when the server is not on loopback).
    #[arg(long, env = "ORIEL_TOKEN")]
    token: Option<String>,
}

/// Output formats of `oriel sql`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// An aligned text table.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per row, in a JSON array.
    Json,
}

fn call(connection: &Connection, path: &str, body: Value) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let url = format!("{}{path}", connection.url.trim_end_matches('/'));
        let mut request = reqwest::Client::new().post(&url).json(&body);
        if let Some(token) = &connection.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| format!("cannot reach oriel at {} (is oriel serve running?)", connection.url))?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "error": text }));
        if !status.is_success() {
            let message = value.get("error").and_then(Value::as_str).unwrap_or("request failed");
            bail!("{message} (HTTP {})", status.as_u16());
        }
        Ok(value)
    })
}

/// `oriel sql QUERY`.
pub(crate) fn sql(connection: &Connection, query: &str, format: Format) -> anyhow::Result<()> {
    let answer = call(connection, "/api/v1/sql", json!({ "query": query }))?;
    let names: Vec<String> = answer["columns"]
        .as_array()
        .map(|c| c.iter().map(|c| c["name"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<Value>> = answer["rows"]
        .as_array()
        .map(|r| r.iter().map(|row| row.as_array().cloned().unwrap_or_default()).collect())
        .unwrap_or_default();
    let out = match format {
        Format::Table => table(&names, &rows),
        Format::Csv => csv(&names, &rows),
        Format::Json => {
            let objects: Vec<Value> = rows
                .iter()
                .map(|row| Value::Object(names.iter().cloned().zip(row.iter().cloned()).collect()))
                .collect();
            serde_json::to_string_pretty(&objects)? + "\n"
        }
    };
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(names: &[String], rows: &[Vec<Value>]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|v| text(v).replace(['\n', '\t'], " ")).collect()).collect();
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| cells.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0).max(n.chars().count()))
        .collect();
    let numeric: Vec<bool> = (0..names.len()).map(|i| rows.iter().all(|r| matches!(r.get(i), Some(Value::Number(_) | Value::Null)))).collect();
    let line = |values: &[String]| {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| if numeric[i] { format!("{v:>w$}", w = widths[i]) } else { format!("{v:<w$}", w = widths[i]) })
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = line(names) + "\n";
    out += &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-");
    out += "\n";
    for row in &cells {
        out += &line(row);
        out += "\n";
    }
    out += &format!("({} row{})\n", rows.len(), if rows.len() == 1 { "" } else { "s" });
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn csv(names: &[String], rows: &[Vec<Value>]) -> String {
    let mut out = names.iter().map(|n| csv_field(n)).collect::<Vec<_>>().join(",") + "\n";
    for row in rows {
        out += &(row.iter().map(|v| csv_field(&text(v))).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

/// `oriel delete --party ID | --user ID`.
pub(crate) fn delete(connection: &Connection, party: Option<String>, user: Option<String>) -> anyhow::Result<()> {
    if party.is_none() && user.is_none() {
        bail!("name the visitor with --party ID or the user with --user ID");
    }
    let who = party.as_ref().map(|p| format!("visitor {p}")).or_else(|| user.as_ref().map(|u| format!("user {u}"))).unwrap_or_default();
    let answer = call(connection, "/api/v1/delete", json!({ "party_id": party, "user_id": user }))?;
    let n = answer["deleted"].as_u64().unwrap_or(0);
    #[allow(clippy::print_stdout)]
    {
        println!("deleted {n} event{} of {who}", if n == 1 { "" } else { "s" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_csv_layout() {
        let names = vec!["page".to_string(), "views".to_string()];
        let rows = vec![vec![json!("/a"), json!(1200)], vec![json!("/b, \"c\""), json!(7)]];
        assert_eq!(table(&names, &rows), "page    | views\n--------+------\n/a      |  1200\n/b, \"c\" |     7\n(2 rows)\n");
        assert_eq!(csv(&names, &rows), "page,views\n/a,1200\n\"/b, \"\"c\"\"\",7\n");
    }
}
