//! `oriel user add NAME --role viewer|admin`: asks for a password and prints the
//! `[[server.users]]` entry to paste into the configuration. The password is read from the
//! terminal without echo (twice, to catch typos), or as one line from standard input when that
//! is not a terminal (scripts); never from the command line, where other users of the machine
//! could read it in the process list.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use oriel_core::config::Role;

/// Commands about users.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Make the configuration entry of a user who signs in with a password.
    Add(AddArgs),
}

/// Options of `oriel user add`.
#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    /// The name to sign in with (letters, digits, '.', '_', '@', '-').
    name: String,
    /// What the user may do: `viewer` (query) or `admin` (also delete and manage).
    #[arg(long, value_enum, default_value = "viewer")]
    role: RoleArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Viewer,
    Admin,
}

/// Shortest password accepted.
const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted: the server checks no longer ones.
const MAX_PASSWORD_BYTES: usize = oriel_server::auth::MAX_PASSWORD_BYTES;

pub(crate) fn run(command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Add(args) = command;
    let name_ok = !args.name.is_empty()
        && args.name.len() <= 64
        && args.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !name_ok {
        bail!("the name {:?} must be 1 to 64 letters, digits, '.', '_', '@' or '-'", args.name);
    }
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {}: ", args.name)).context("cannot read the password")?;
        let again = rpassword::prompt_password("the same again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ; nothing was made");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!("the password must have at most {MAX_PASSWORD_BYTES} bytes (the server refuses longer ones)");
    }
    let hash = oriel_server::auth::hash_password(&password).map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    let role = match args.role {
        RoleArg::Viewer => Role::Viewer,
        RoleArg::Admin => Role::Admin,
    };
    #[allow(clippy::print_stdout)]
    {
        println!("[[server.users]]\nname = {:?}\nrole = \"{}\"\npassword_hash = \"{hash}\"", args.name, role.as_str());
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("add these lines to the configuration file and restart oriel serve");
    }
    Ok(())
}
