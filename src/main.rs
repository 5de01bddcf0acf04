use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    fraudwall::cli::run(fraudwall::cli::Cli::parse())
}
