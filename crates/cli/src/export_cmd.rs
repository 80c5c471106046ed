//! `registry export adtte --data DIR [--as-of DATE] [--known-at TIME] [--out PATH]`: the
//! time-to-event data set (CDISC ADaM ADTTE style, `interfaces.md`) as CSV, from the labels in
//! the asked view. Glue only: the rows come from `registry_report::adtte`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::report_cmd::{load, write_output, ViewArgs};

#[derive(clap::Subcommand)]
pub(crate) enum ExportCommand {
    /// One CSV row per patient and clock (PFS1, PFS2, OS): USUBJID, PARAMCD, PARAM, STARTDT, ADT,
    /// AVAL, CNSR, EVNTDESC, BBM, BBMCLASS, PRIORBRT, SALVRT, CBPD, ANYRT, PATTERN.
    Adtte(AdtteArgs),
}

#[derive(clap::Args)]
pub(crate) struct AdtteArgs {
    #[command(flatten)]
    view: ViewArgs,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn run(cmd: ExportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExportCommand::Adtte(args) => {
            let input = load(&args.view, &mut crate::report_cmd::Timings::default())?;
            let labels: Vec<serde_json::Value> = input.patients.into_iter().map(|p| p.labels).collect();
            let csv = registry_report::adtte::to_csv(&labels).context("cannot build the ADTTE rows")?;
            write_output(args.out.as_ref(), &csv)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
