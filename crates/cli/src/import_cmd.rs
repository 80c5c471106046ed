//! `registry import FILE --data DIR`: NDJSON through the same validation, de-duplication, append
//! and projection as the bus, without a bus.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use registry_domain::config::Config;
use registry_ingest::{ingest_batch, BatchSummary, InputOutcome, RawInput};
use registry_projector::Projector;
use registry_store::Store;

#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// NDJSON file of events, or `-` for stdin.
    file: PathBuf,
    /// Data directory of the registry (created if missing).
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
    /// Lines per unit of work (one flush, then projection of the touched patients).
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
}

pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub(crate) fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

pub(crate) fn open_store(data: &std::path::Path) -> anyhow::Result<Store> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create data directory {}", data.display()))?;
    Store::open(&data.join("store")).with_context(|| format!("cannot open the store in {}", data.display()))
}

/// [`open_store`] for a reader: the store's indexes are built only if something needs them
/// (`Store::open_lazy`).
pub(crate) fn open_store_lazy(data: &std::path::Path) -> anyhow::Result<Store> {
    let dir = data.join("store");
    if !dir.exists() {
        return open_store(data);
    }
    Store::open_lazy(&dir).with_context(|| format!("cannot open the store in {}", data.display()))
}

/// Brings the report snapshot up to date with the log (docs/report.md, "Snapshot").
fn refresh_snapshot(store: &Store) -> anyhow::Result<()> {
    let pb = crate::progress::bar(0, "report snapshot", false);
    crate::snapshot::refresh(store, today(), &pb).context("report snapshot refresh failed")?;
    pb.finish_and_clear();
    Ok(())
}

pub(crate) fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.data)?;
    let projector = Projector::new(store.clone(), Config::default());
    // Finish whatever an interrupted earlier run appended but did not project.
    projector.catch_up(today()).context("projection catch-up failed")?;
    refresh_snapshot(&store)?;

    let (reader, total, name): (Box<dyn Read>, Option<u64>, String) = if args.file.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None, "stdin".to_owned())
    } else {
        let f = File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len, args.file.display().to_string())
    };
    let pb = match total {
        Some(t) => crate::progress::bar(t, "importing", true),
        None => crate::progress::spinner("importing lines"),
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let batch_size = args.batch_size.max(1);

    let mut summary = BatchSummary::default();
    let mut lines: Vec<(u64, Vec<u8>)> = Vec::with_capacity(batch_size);
    let mut line_no: u64 = 0;
    let mut bytes_read: u64 = 0;
    loop {
        let mut buf = Vec::new();
        let n = reader.read_until(b'\n', &mut buf).with_context(|| format!("cannot read {name}"))?;
        if n > 0 {
            line_no += 1;
            bytes_read += n as u64;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            // Blank lines separate nothing and carry nothing: skipped, not counted.
            if !buf.iter().all(u8::is_ascii_whitespace) {
                lines.push((line_no, buf));
            }
        }
        if lines.len() >= batch_size || (n == 0 && !lines.is_empty()) {
            import_batch(&store, &projector, &name, &lines, &mut summary)?;
            lines.clear();
            match total {
                Some(_) => pb.set_position(bytes_read),
                None => pb.set_position(line_no),
            }
        }
        if n == 0 {
            break;
        }
    }
    pb.finish_and_clear();
    refresh_snapshot(&store)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(ExitCode::SUCCESS)
}

fn import_batch(
    store: &Store,
    projector: &Projector,
    name: &str,
    lines: &[(u64, Vec<u8>)],
    summary: &mut BatchSummary,
) -> anyhow::Result<()> {
    let sources: Vec<String> = lines.iter().map(|(no, _)| format!("file:{name}:{no}")).collect();
    let inputs: Vec<RawInput<'_>> = lines
        .iter()
        .zip(&sources)
        .map(|((_, bytes), source)| RawInput { bytes, source, subject_site: None, stream_seq: None })
        .collect();
    let outcomes = ingest_batch(store, &inputs, now_micros()).context("append to the store failed")?;
    for ((no, _), outcome) in lines.iter().zip(&outcomes) {
        if let InputOutcome::Rejected { code, message, .. } = outcome {
            eprintln!("line {no}: {code}: {message}");
        }
        summary.count(outcome);
    }
    projector.catch_up(today()).context("projection failed")?;
    Ok(())
}
