//! Progress bars for long CLI work: count, rate and ETA on stderr (hidden when not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

fn styled(total: u64, what: &str, counts: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{msg:>10}} [{{bar:30}}] {counts} eta {{eta}}");
    let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// A bar for `total` items of `what`.
pub(crate) fn bar(total: u64, what: &str) -> ProgressBar {
    styled(total, what, "{human_pos}/{human_len} {per_sec}")
}

/// A bar for `total` bytes of `what`.
pub(crate) fn bytes(total: u64, what: &str) -> ProgressBar {
    styled(total, what, "{bytes}/{total_bytes} {bytes_per_sec}")
}
