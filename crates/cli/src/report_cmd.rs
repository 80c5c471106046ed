//! `registry report --data DIR [--as-of DATE] [--known-at TIME] [--format json|md|html] [--out PATH]`:
//! the cohort report (`interfaces.md`, "Report") recomputed from the log in the asked view.
//! Glue only: labels from the projector, enrolment facts from the patient's events, the numbers
//! and renderings from `registry-report`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::config::Config;
use registry_domain::events::{Enrollment, EventType, Payload};
use registry_domain::view::{canonical_cmp, RecordedEvent, View};
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

/// Every listed patient's labels (JSON) and enrolment in the view, sorted by patient_id.
pub(crate) fn load(args: &ViewArgs) -> anyhow::Result<ReportInput> {
    let store = crate::import_cmd::open_store(&args.data)?;
    let projector = Projector::new(store, Config::default());
    let view = View { as_of: args.as_of.unwrap_or_else(crate::import_cmd::today), known_at: args.known_at };
    let projections = projector.labels_in_view(&view, None).context("projection failed")?;
    let mut patients = Vec::with_capacity(projections.len());
    for p in projections {
        let events = projector
            .patient_events(p.patient_id.as_str())
            .with_context(|| format!("cannot read the events of {}", p.patient_id))?;
        let enrollment = first_enrollment(&events, &view, p.labels.diagnosis_date);
        let labels = serde_json::to_value(&p.labels).context("labels are not serialisable")?;
        patients.push(PatientInput { labels, enrollment });
    }
    Ok(ReportInput { as_of: view.as_of, known_at: view.known_at, patients })
}

/// The first `patient.enrolled` in canonical order among the patient's events that count in the
/// view (`domain.md`, "Which events count": known by `known_at`, not hidden by a retraction or a
/// correction that counts, occurred_on ≤ `as_of`). The projection already applied these rules to
/// get `diagnosis_date`; when the candidates disagree with it, the first one that matches it wins,
/// so the report's enrolment facts are those of the labels.
pub(crate) fn first_enrollment(
    events: &[RecordedEvent],
    view: &View,
    diagnosis_date: Option<NaiveDate>,
) -> Option<Enrollment> {
    // Known events, one version per event_id (the one stored first stands).
    type Id = u128;
    let mut by_id: HashMap<Id, &RecordedEvent> = HashMap::new();
    for e in events {
        if view.known_at.is_some_and(|k| e.received_at > k) {
            continue;
        }
        by_id.entry(e.event.event_id.as_u128()).and_modify(|old| if e.seq < old.seq { *old = e }).or_insert(e);
    }
    // Who hides whom: retraction → target; correction → the event it supersedes (same type).
    let mut hiders: HashMap<Id, Vec<Id>> = HashMap::new();
    for e in by_id.values() {
        if let Payload::EventRetracted(r) = &e.event.payload {
            if by_id.get(&r.target_event_id.as_u128()).is_some_and(|t| t.event.patient_id == e.event.patient_id) {
                hiders.entry(r.target_event_id.as_u128()).or_default().push(e.event.event_id.as_u128());
            }
        }
        if let Some(target) = e.event.supersedes {
            if by_id.get(&target.as_u128()).is_some_and(|t| {
                t.event.patient_id == e.event.patient_id && t.event.event_type() == e.event.event_type()
            }) {
                hiders.entry(target.as_u128()).or_default().push(e.event.event_id.as_u128());
            }
        }
    }
    fn hidden(id: u128, hiders: &HashMap<u128, Vec<u128>>, memo: &mut HashMap<u128, bool>, path: &mut HashSet<u128>) -> bool {
        if let Some(v) = memo.get(&id) {
            return *v;
        }
        if !path.insert(id) {
            return false; // a cycle of links: treat as not hiding
        }
        let v = hiders.get(&id).is_some_and(|hs| hs.iter().any(|h| !hidden(*h, hiders, memo, path)));
        path.remove(&id);
        memo.insert(id, v);
        v
    }
    let mut memo = HashMap::new();
    let mut candidates: Vec<&RecordedEvent> = by_id
        .values()
        .copied()
        .filter(|e| e.event.event_type() == EventType::PatientEnrolled && e.event.occurred_on <= view.as_of)
        .filter(|e| !hidden(e.event.event_id.as_u128(), &hiders, &mut memo, &mut HashSet::new()))
        .collect();
    candidates.sort_by(|a, b| canonical_cmp(&a.event, &b.event));
    let enrolment = |e: &RecordedEvent| match &e.event.payload {
        Payload::PatientEnrolled(p) => Some(p.clone()),
        _ => None,
    };
    let first = candidates.first().and_then(|e| enrolment(e));
    match (&first, diagnosis_date) {
        (Some(f), Some(d)) if f.diagnosis_date != d => candidates
            .iter()
            .filter_map(|e| enrolment(e))
            .find(|p| p.diagnosis_date == d)
            .or(first),
        _ => first,
    }
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
