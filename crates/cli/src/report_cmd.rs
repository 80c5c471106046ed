//! `registry report --data DIR [--as-of DATE] [--known-at TIME] [--format json|md|html] [--out PATH]`:
//! the cohort report (`interfaces.md`, "Report") recomputed from the log in the asked view.
//! Glue only: labels, enrolment and baseline sites from the projection (`registry-domain`), the
//! numbers and renderings from `registry-report`.
//!
//! Every patient is projected from one sequential pass over the log (decoded and projected on
//! every core), not patient by patient through the index: the same projections as
//! `Projector::labels_in_view` (the same events per patient, `view::events_by_patient`), read once.
//! `--timings` prints how long each phase took on stderr.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::config::Config;
use registry_domain::events::PatientId;
use registry_domain::projection::{project_patient, PatientProjection};
use registry_domain::view::{events_by_patient, RecordedEvent, View};
use registry_report::{PatientInput, PatientRow, ReportInput};
use registry_store::{Store, StoredEvent};

use crate::labels_cmd::{parse_date, parse_instant};
use crate::snapshot;

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
    /// Print the time of each phase (open, read and decode, project, report, render) on stderr.
    #[arg(long)]
    timings: bool,
    /// Recompute every patient from the log; neither read nor write the report snapshot.
    #[arg(long)]
    recompute: bool,
}

/// Phase durations, printed by `--timings`.
#[derive(Default)]
pub(crate) struct Timings(Vec<(&'static str, f64)>, Option<String>);

impl Timings {
    fn since(&mut self, what: &'static str, t: &mut Instant) {
        self.0.push((what, t.elapsed().as_secs_f64()));
        *t = Instant::now();
    }

    fn print(&self) {
        let parts: Vec<String> = self.0.iter().map(|(w, s)| format!("{w} {s:.3} s")).collect();
        let total: f64 = self.0.iter().map(|(_, s)| s).sum();
        eprintln!("timings: {} (total {total:.3} s)", parts.join(", "));
        if let Some(snapshot) = &self.1 {
            eprintln!("snapshot: {snapshot}");
        }
    }
}

/// `f` over `items` on every core (scoped threads, contiguous chunks), results in `items` order.
pub(crate) fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 16);
    if threads == 1 || items.len() < 2 * threads {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<U>>())).collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

fn decode(e: &StoredEvent) -> anyhow::Result<RecordedEvent> {
    let event = registry_domain::stored::decode(&e.content).with_context(|| format!("cannot decode the event at seq {}", e.seq))?;
    let received_at = DateTime::from_timestamp_micros(e.received_at_micros).unwrap_or(DateTime::<Utc>::MIN_UTC);
    Ok(RecordedEvent { event, seq: e.seq, received_at })
}

/// Every event of the log, decoded, in log order. One thread reads the log in chunks while the
/// others (every core) decode the chunks already read; the chunks are put back in order.
fn read_and_decode(store: &Store, pb: &indicatif::ProgressBar) -> anyhow::Result<Vec<RecordedEvent>> {
    const CHUNK: usize = 4096;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 16);
    let capacity = usize::try_from(store.len()).unwrap_or(0);
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<(usize, Vec<StoredEvent>)>(2 * threads);
    let raw_rx = std::sync::Mutex::new(raw_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, anyhow::Result<Vec<RecordedEvent>>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (raw_rx, done_tx) = (&raw_rx, done_tx.clone());
            s.spawn(move || loop {
                let next = raw_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((k, chunk))) = next else { break };
                let decoded: anyhow::Result<Vec<RecordedEvent>> = chunk.iter().map(decode).collect();
                pb.inc(chunk.len() as u64);
                if done_tx.send((k, decoded)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let mut read_error = None;
        let mut scan = store.iter_from(1);
        let mut k = 0;
        'read: loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            for e in scan.by_ref().take(CHUNK) {
                match e {
                    Ok(e) => chunk.push(e),
                    Err(e) => {
                        read_error = Some(anyhow::Error::new(e).context("cannot read the log"));
                        break 'read;
                    }
                }
            }
            if chunk.is_empty() || raw_tx.send((k, chunk)).is_err() {
                break;
            }
            k += 1;
        }
        drop(raw_tx);
        let mut parts: Vec<(usize, anyhow::Result<Vec<RecordedEvent>>)> = done_rx.iter().collect();
        if let Some(e) = read_error {
            return Err(e);
        }
        parts.sort_unstable_by_key(|(k, _)| *k);
        let mut events = Vec::with_capacity(capacity);
        for (_, part) in parts {
            events.extend(part?);
        }
        Ok(events)
    })
}

/// Every listed patient's projection in the view, sorted by patient_id, from one pass over the log.
pub(crate) fn project_all(store: &Store, view: &View, timings: &mut Timings) -> anyhow::Result<Vec<PatientProjection>> {
    Ok(project_all_with(store, view, false, timings)?.0)
}

/// A patient's report snapshot entry, by patient id.
type SnapshotEntry = (String, snapshot::Entry);

/// [`project_all`]; with `entries`, also every patient's snapshot entry for the view's date
/// (known_at must be none), computed through the log's last seq.
fn project_all_with(
    store: &Store,
    view: &View,
    entries: bool,
    timings: &mut Timings,
) -> anyhow::Result<(Vec<PatientProjection>, Vec<SnapshotEntry>)> {
    let through = store.last_seq();
    let mut t = Instant::now();
    let pb = crate::progress::bar(store.last_seq(), "reading the log", false);
    let events = read_and_decode(store, &pb)?;
    pb.finish_and_clear();
    timings.since("read and decode", &mut t);
    let groups = events_by_patient(events);
    timings.since("group", &mut t);
    let cfg = Config::default();
    let pb = crate::progress::bar(groups.len() as u64, "projecting", false);
    let projections: Vec<(Option<PatientProjection>, Option<snapshot::Entry>)> =
        par_map(&groups, |(pid, evs): &(PatientId, Vec<RecordedEvent>)| {
            let p = if entries {
                let (p, entry) = snapshot::fold_entry(pid, evs, through, view.as_of, false, &cfg);
                (p, Some(entry))
            } else {
                (project_patient(pid, evs, view, &cfg), None)
            };
            pb.inc(1);
            p
        });
    pb.finish_and_clear();
    timings.since("project", &mut t);
    let mut out = Vec::with_capacity(projections.len());
    let mut written = Vec::new();
    for ((pid, _), (p, entry)) in groups.iter().zip(projections) {
        out.extend(p);
        written.extend(entry.map(|e| (pid.as_str().to_owned(), e)));
    }
    Ok((out, written))
}

/// Every listed patient's [`PatientRow`] in the view, from the report snapshot where it holds an
/// exact row (docs/report.md, "Snapshot"), refolding the rest. Exactly the rows of
/// [`project_all`] (`PatientRow::from_projection`). Without `known_at`, what was refolded is
/// written back to the snapshot.
pub(crate) fn rows_in_view(store: &Store, view: &View, timings: &mut Timings) -> anyhow::Result<Vec<PatientRow>> {
    let mut t = Instant::now();
    let write_back = view.known_at.is_none();
    let snap = snapshot::read(store)?;
    timings.since("snapshot read", &mut t);
    let changes = if snap.checkpoint == 0 {
        None
    } else {
        let c = snapshot::changes(store, &snap)?;
        timings.since("log since snapshot", &mut t);
        Some(c)
    };
    let n_entries = snap.entries.len();
    // The rows the snapshot holds for the view (moved out of their entries); the patients to
    // refold, with their old entry when it is still current (its other variants are kept).
    let mut rows: Vec<PatientRow> = Vec::with_capacity(n_entries);
    let mut refold: HashMap<String, Option<snapshot::Entry>> = HashMap::new();
    if let Some(c) = &changes {
        for pid in &c.new {
            refold.insert(pid.clone(), None);
        }
        for (pid, entry) in snap.entries {
            match entry {
                Some(e) if !c.stale.contains(&pid) => match e.take_row(view) {
                    Ok(row) => rows.extend(row),
                    Err(e) => {
                        refold.insert(pid, Some(e));
                    }
                },
                _ => {
                    refold.insert(pid, None);
                }
            }
        }
        timings.since("snapshot select", &mut t);
    }
    // Refolding patient by patient reads each one's events through the indexes (built now, one
    // pass over the log); past a quarter of the cohort (or without a snapshot) one sequential pass
    // for all is cheaper. What was refolded is written back, merged with still-current entries.
    let merged = |pid: &str, fresh: snapshot::Entry, refold: &mut HashMap<String, Option<snapshot::Entry>>| match refold
        .get_mut(pid)
        .and_then(Option::take)
    {
        Some(old) => old.with_variants_of(fresh),
        None => fresh,
    };
    if changes.is_none() || refold.len() * 4 > n_entries {
        let (projections, entries) = project_all_with(store, view, write_back, timings)?;
        let mut t = Instant::now();
        let rows = par_map(&projections, PatientRow::from_projection).into_iter().collect::<Result<Vec<_>, _>>()?;
        timings.since("report input", &mut t);
        timings.1 = Some(match &changes {
            None => "none yet: every patient from one pass over the log".to_owned(),
            Some(_) => format!("{} patients to refold: every patient from one pass over the log", refold.len()),
        });
        if write_back {
            let all = changes.is_none();
            let mut out: Vec<(String, Option<Vec<u8>>)> = Vec::new();
            for (pid, fresh) in entries {
                if all || refold.contains_key(&pid) {
                    let entry = merged(&pid, fresh, &mut refold);
                    out.push((pid, Some(entry.to_bytes())));
                }
            }
            let entries = out;
            store.put_snapshot_batch(entries, store.last_seq(), true).context("cannot write the report snapshot")?;
            timings.since("snapshot write", &mut t);
        }
        return Ok(rows);
    }
    timings.1 = Some(format!("{} patients from the snapshot, {} refolded", rows.len(), refold.len()));
    let mut todo: Vec<String> = refold.keys().cloned().collect();
    todo.sort_unstable();
    let last = store.last_seq();
    let projector = registry_projector::Projector::new(store.clone(), Config::default());
    let cfg = Config::default();
    let folded: Vec<anyhow::Result<(Option<PatientRow>, Option<snapshot::Entry>)>> = par_map(&todo, |pid| {
        let events = projector.patient_events(pid).with_context(|| format!("cannot read the events of {pid}"))?;
        let Some(id) = PatientId::parse(pid) else { return Ok((None, None)) };
        let (p, entry) = if write_back {
            let (p, fresh) = snapshot::fold_entry(&id, &events, last, view.as_of, false, &cfg);
            (p, Some(fresh))
        } else {
            (project_patient(&id, &events, view, &cfg), None)
        };
        let row = p.as_ref().map(PatientRow::from_projection).transpose()?;
        Ok((row, entry))
    });
    let mut written = Vec::new();
    for (pid, r) in todo.iter().zip(folded) {
        let (row, fresh) = r?;
        rows.extend(row);
        if let Some(fresh) = fresh {
            written.push((pid.as_str(), Some(merged(pid, fresh, &mut refold).to_bytes())));
        }
    }
    timings.since("refold", &mut t);
    if write_back && (!written.is_empty() || last > snap.checkpoint) {
        store.put_snapshot_batch(written, last, true).context("cannot write the report snapshot")?;
        timings.since("snapshot write", &mut t);
    }
    Ok(rows)
}

/// Every listed patient's labels, enrolment and baseline metastatic organs in the view, sorted by
/// patient_id (`PatientInput::from_projection`: the same input as `GET /cohort/report`).
pub(crate) fn load(args: &ViewArgs, timings: &mut Timings) -> anyhow::Result<ReportInput> {
    let mut t = Instant::now();
    let store = crate::import_cmd::open_store(&args.data)?;
    timings.since("open", &mut t);
    let view = View { as_of: args.as_of.unwrap_or_else(crate::import_cmd::today), known_at: args.known_at };
    let projections = project_all(&store, &view, timings)?;
    let mut t = Instant::now();
    let patients = par_map(&projections, PatientInput::from_projection);
    timings.since("report input", &mut t);
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
    let mut timings = Timings::default();
    let mut t = Instant::now();
    let store = crate::import_cmd::open_store_lazy(&args.view.data)?;
    timings.since("open", &mut t);
    let view = View { as_of: args.view.as_of.unwrap_or_else(crate::import_cmd::today), known_at: args.view.known_at };
    let rows = if args.recompute {
        let projections = project_all(&store, &view, &mut timings)?;
        let mut t = Instant::now();
        let rows = par_map(&projections, PatientRow::from_projection).into_iter().collect::<Result<Vec<_>, _>>()?;
        timings.since("report input", &mut t);
        rows
    } else {
        rows_in_view(&store, &view, &mut timings)?
    };
    let mut t = Instant::now();
    let report = registry_report::build_from_rows(view.as_of, view.known_at, rows);
    timings.since("numbers", &mut t);
    let text = match args.format {
        Format::Json => report.to_json_string(),
        Format::Md => report.to_markdown(),
        Format::Html => report.to_html(),
    };
    write_output(args.out.as_ref(), &text)?;
    timings.since("render and write", &mut t);
    if args.timings {
        timings.print();
    }
    Ok(ExitCode::SUCCESS)
}
