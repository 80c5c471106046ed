//! `registry report --data DIR [--as-of DATE] [--known-at TIME] [--format json|md|html] [--out PATH]`:
//! the cohort report (`interfaces.md`, "Report") recomputed from the log in the asked view.
//! Glue only: labels, enrolment and baseline sites from the projector, the numbers and renderings
//! from `registry-report`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::config::Config;
use registry_domain::view::View;
use registry_projector::Projector;
use registry_report::{PatientInput, ReportInput};

use crate::labels_cmd::{parse_date, parse_instant};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Json,
    Md,
    Html,
}

/// The view of a report or export.
#[derive(clap::Args)]
pub(crate) struct ViewArgs {
    /// Data directory of the registry.
    #[arg(long, env = "REGISTRY_DATA")]
    pub(crate) data: PathBuf,
    /// Clinical cut-off (YYYY-MM-DD): events with occurred_on ≤ this date; default today (UTC).
    #[arg(long, value_parser = parse_date)]
    pub(crate) as_of: Option<NaiveDate>,
    /// What the registry had received by this instant (RFC 3339); default everything received.
    #[arg(long, value_parser = parse_instant)]
    pub(crate) known_at: Option<DateTime<Utc>>,
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    view: ViewArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Every listed patient's labels, enrolment and baseline metastatic organs in the view, sorted by
/// patient_id (`PatientInput::from_projection`: the same input as `GET /cohort/report`).
pub(crate) fn load(args: &ViewArgs) -> anyhow::Result<ReportInput> {
    let store = crate::import_cmd::open_store(&args.data)?;
    let projector = Projector::new(store, Config::default());
    let view = View { as_of: args.as_of.unwrap_or_else(crate::import_cmd::today), known_at: args.known_at };
    let projections = projector.labels_in_view(&view, None).context("projection failed")?;
    let patients = projections.iter().map(PatientInput::from_projection).collect();
    Ok(ReportInput { as_of: view.as_of, known_at: view.known_at, patients })
}

pub(crate) fn write_output(out: Option<&PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display())),
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            lock.write_all(text.as_bytes())?;
            lock.flush()?;
            Ok(())
        }
    }
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let input = load(&args.view)?;
    let report = registry_report::build(&input).context("cannot build the report")?;
    let text = match args.format {
        Format::Json => report.to_json_string(),
        Format::Md => report.to_markdown(),
        Format::Html => report.to_html(),
    };
    write_output(args.out.as_ref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
