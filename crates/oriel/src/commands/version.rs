//! `oriel version`: the version, and whether this is a release or a debug build.

pub(crate) fn run() -> anyhow::Result<()> {
    // The profile too: a debug build is far slower, and benchmarks must say which ran.
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    #[allow(clippy::print_stdout)] // the command's whole output
    {
        println!("oriel {} ({profile} build)", env!("CARGO_PKG_VERSION"));
    }
    Ok(())
}
