//! `oriel sql QUERY`: a query on a running server, printed as a table, CSV or JSON.

use serde_json::{Value, json};

use crate::client::Connection;

/// Output formats of `oriel sql`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// An aligned text table.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per row, keys in the order of the SELECT, in a JSON array.
    Json,
}

/// Options of `oriel sql`.
#[derive(Debug, clap::Args)]
pub(crate) struct SqlArgs {
    /// The query, in Druid's SQL dialect.
    query: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(args: SqlArgs) -> anyhow::Result<()> {
    let answer = args.connection.call("/api/v1/sql", json!({ "query": args.query }))?;
    let names: Vec<String> = answer["columns"]
        .as_array()
        .map(|c| c.iter().map(|c| c["name"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<Value>> = answer["rows"]
        .as_array()
        .map(|r| r.iter().map(|row| row.as_array().cloned().unwrap_or_default()).collect())
        .unwrap_or_default();
    let out = match args.format {
        Format::Table => table(&names, &rows),
        Format::Csv => csv(&names, &rows),
        Format::Json => objects(&names, &rows),
    };
    if answer["caught_up"] == Value::Bool(false) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "note: the server is still catching up after a restart ({} events not yet ingested); the answer may be partial",
                answer["ingest_lag_events"]
            );
        }
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}

/// Rows as JSON objects whose keys keep the column order (a JSON map would sort them).
fn objects(names: &[String], rows: &[Vec<Value>]) -> String {
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
        for (j, (name, value)) in names.iter().zip(row).enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            out.push_str(&Value::String(name.clone()).to_string());
            out.push_str(": ");
            out.push_str(&value.to_string());
        }
        out.push('}');
    }
    out.push_str(if rows.is_empty() { "]\n" } else { "\n]\n" });
    out
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
    let numeric: Vec<bool> =
        (0..names.len()).map(|i| rows.iter().all(|r| matches!(r.get(i), Some(Value::Number(_) | Value::Null)))).collect();
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

    /// Regression: the keys came out in alphabetical order, not in the SELECT's.
    #[test]
    fn json_keeps_the_select_order() {
        let names = vec!["views".to_string(), "page".to_string()];
        let rows = vec![vec![json!(3), json!("/a")]];
        let out = objects(&names, &rows);
        assert_eq!(out, "[\n  {\"views\": 3, \"page\": \"/a\"}\n]\n");
        assert!(serde_json::from_str::<Value>(&out).is_ok());
        assert_eq!(objects(&names, &[]), "[]\n");
    }
}
