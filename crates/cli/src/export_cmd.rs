//! `registry export adtte --data DIR [--as-of DATE] [--known-at TIME] [--out PATH]`: the
//! time-to-event data set (CDISC ADaM ADTTE style, `interfaces.md`) as CSV, from the labels in
//! the asked view. Glue only: the rows come from `registry_report::adtte`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use registry_domain::view::View;

use crate::report_cmd::{load, rows_in_view, write_output, ViewArgs};

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
    /// Recompute every patient from the log; neither read nor write the report snapshot.
    #[arg(long)]
    recompute: bool,
}

pub(crate) fn run(cmd: ExportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExportCommand::Adtte(args) => {
            let csv = if args.recompute {
                let input = load(&args.view, &mut crate::report_cmd::Timings::default())?;
                let labels: Vec<serde_json::Value> = input.patients.into_iter().map(|p| p.labels).collect();
                registry_report::adtte::to_csv(&labels).context("cannot build the ADTTE rows")?
            } else {
                // The report's snapshot (docs/report.md, "Snapshot"): the same rows, the same bytes.
                let store = crate::import_cmd::open_store_lazy(&args.view.data)?;
                let view = View { as_of: args.view.as_of.unwrap_or_else(crate::import_cmd::today), known_at: args.view.known_at };
                let rows = rows_in_view(&store, &view, &mut crate::report_cmd::Timings::default())?;
                registry_report::adtte::to_csv_from_rows(&rows)
            };
            write_output(args.out.as_ref(), &csv)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
