//! The command line of `jitsudod`. In the library (not in `main.rs`) so that the man
//! page generator (`cargo run -p xtask -- gen`) renders jitsudod(8)'s option sections
//! from the same definition `--help` prints.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config;

#[derive(Parser, Debug)]
#[command(
    name = "jitsudod",
    version,
    about = "jitsudo approval service",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service
    Serve {
        /// Service config file
        #[arg(long, value_name = "FILE", default_value = config::DEFAULT_CONFIG)]
        config: PathBuf,
        /// TESTING ONLY: evaluate policy hours and weekdays as if it were TIME (RFC 3339);
        /// grant validity always uses the real clock
        #[arg(long, value_name = "TIME")]
        fake_now: Option<String>,
    },
    /// Create an admin approver directly in the database and print its API token once
    /// (bootstrap: admins register hosts and approvers with jitsudoctl)
    AddAdmin {
        /// Approver name
        name: String,
        /// Groups the admin belongs to (may also approve for group:G)
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// Service config file (names the database)
        #[arg(long, value_name = "FILE", default_value = config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a policy file and print its rules
    CheckPolicy { file: PathBuf },
}

/// The clap command `jitsudod` parses its arguments with.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    #[test]
    fn definition_is_consistent() {
        super::command().debug_assert();
    }
}
