//! The `registry` binary: glue only. Each subcommand parses its arguments and calls a library.
//! `main` prints the error chain once and exits 2 on a usage or I/O error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod stats_cmd;

#[derive(Parser)]
#[command(name = "registry", version, about = "ALK+ NSCLC crizotinib registry tracker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Survival and competing-risk statistics on any CSV (JSON on stdout).
    #[command(subcommand)]
    Stats(stats_cmd::StatsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stats(cmd) => stats_cmd::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("registry: {err:#}");
            ExitCode::from(2)
        }
    }
}
