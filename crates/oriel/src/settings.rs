//! Loading the configuration: defaults, then the file, then `ORIEL_*` variables, then flags.

use std::path::Path;

use anyhow::Context;
use oriel_core::Config;

/// Loads and validates the configuration. `flags` are `(dotted key, flag, value)` from the
/// command line, applied last and named in errors.
pub(crate) fn load(file: Option<&Path>, flags: Vec<(&str, &str, String)>) -> anyhow::Result<Config> {
    let text = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read configuration file {}", path.display()))?,
        ),
        None => None,
    };
    let origin = file.map(|p| p.display().to_string()).unwrap_or_default();
    let source = text.as_deref().map(|t| (origin.as_str(), t));
    Ok(Config::load_with_flags(source, std::env::vars(), flags)?)
}

/// `oriel check-config FILE`.
pub(crate) fn check(file: &Path) -> anyhow::Result<()> {
    let config = load(Some(file), Vec::new())?;
    #[allow(clippy::print_stdout)] // the command's whole output
    {
        println!(
            "{}: ok (listen {}, data in {}, {} log partitions)",
            file.display(),
            config.server.listen,
            config.data_dir.display(),
            config.log.partitions
        );
    }
    Ok(())
}

/// Loads the configuration of a command that takes `--config` and `--data-dir`.
pub(crate) fn load_for(args: &crate::ConfigArgs, mut flags: Vec<(&str, &str, String)>) -> anyhow::Result<Config> {
    if let Some(dir) = &args.data_dir {
        flags.push(("data_dir", "--data-dir", dir.display().to_string()));
    }
    load(args.config.as_deref(), flags)
}
