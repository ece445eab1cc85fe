//! `oriel check-config FILE`: validate a configuration file and the `ORIEL_*` variables.

use std::path::PathBuf;

use crate::settings;

/// Options of `oriel check-config`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckConfigArgs {
    /// The TOML file to check.
    file: PathBuf,
}

pub(crate) fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    let config = settings::load(Some(&args.file), Vec::new())?;
    #[allow(clippy::print_stdout)] // the command's whole output
    {
        println!(
            "{}: ok (listen {}, data in {}, {} log with {} partitions)",
            args.file.display(),
            config.server.listen,
            config.data_dir.display(),
            config.log.kind(),
            config.log.partitions()
        );
    }
    Ok(())
}
