//! Loading the configuration: defaults, then the file, then `ORIEL_*` variables, then flags.

use std::path::Path;

use std::path::PathBuf;

use anyhow::Context;
use oriel_core::Config;

/// Where to find the configuration and data of a server.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "ORIEL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (overrides data_dir).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
}

/// Loads and validates the configuration. `flags` are `(dotted key, flag, value)` from the
/// command line, applied last and named in errors.
pub(crate) fn load(file: Option<&Path>, flags: Vec<(&str, &str, String)>) -> anyhow::Result<Config> {
    let text = match file {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("cannot read configuration file {}", path.display()))?)
        }
        None => None,
    };
    let origin = file.map(|p| p.display().to_string()).unwrap_or_default();
    let source = text.as_deref().map(|t| (origin.as_str(), t));
    Ok(Config::load_with_flags(source, std::env::vars(), flags)?)
}

/// Loads the configuration of a command that takes `--config` and `--data-dir`.
pub(crate) fn load_for(args: &ConfigArgs, mut flags: Vec<(&str, &str, String)>) -> anyhow::Result<Config> {
    if let Some(dir) = &args.data_dir {
        flags.push(("data_dir", "--data-dir", dir.display().to_string()));
    }
    load(args.config.as_deref(), flags)
}
