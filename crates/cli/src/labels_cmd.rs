//! `registry labels --data DIR [--as-of DATE] [--known-at TIME] [--patient ID]`: labels recomputed
//! from the log in the asked view, one JSON object per patient per line, sorted by patient_id.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::config::Config;
use registry_domain::view::View;
use registry_projector::Projector;

#[derive(clap::Args)]
pub(crate) struct LabelsArgs {
    /// Data directory of the registry.
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
    /// Clinical cut-off (YYYY-MM-DD): events with occurred_on ≤ this date; default today (UTC).
    #[arg(long, value_parser = parse_date)]
    as_of: Option<NaiveDate>,
    /// What the registry had received by this instant (RFC 3339); default now.
    #[arg(long, value_parser = parse_instant)]
    known_at: Option<DateTime<Utc>>,
    /// Only this patient.
    #[arg(long)]
    patient: Option<String>,
}

pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("{s:?} is not a date YYYY-MM-DD ({e})"))
}

pub(crate) fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2016-05-04T09:12:00Z ({e})"))
}

pub(crate) fn run(args: LabelsArgs) -> anyhow::Result<ExitCode> {
    let store = crate::import_cmd::open_store(&args.data)?;
    let projector = Projector::new(store, Config::default());
    let view = View { as_of: args.as_of.unwrap_or_else(crate::import_cmd::today), known_at: args.known_at };
    let projections = projector.labels_in_view(&view, args.patient.as_deref()).context("projection failed")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for p in &projections {
        writeln!(out, "{}", p.labels.to_json_line())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
