//! `registry stats …` (placeholder until the stats capability lands).
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub(crate) enum StatsCommand {}

pub(crate) fn run(cmd: StatsCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
