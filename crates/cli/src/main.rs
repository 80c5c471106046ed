//! The `registry` binary: glue only. Each subcommand parses its arguments and calls a library.
//! `main` prints the error chain once and exits 2 on a usage or I/O error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the report, import and projection allocate many
/// small strings, maps and vectors from several threads, where glibc's malloc (arena locks,
/// consolidation, returning pages to the kernel and faulting them in again) cost about a fifth of
/// a 100,000-patient report (perf; docs/report.md, "Benchmark"), and 20-25 % of the live
/// services' samples (docs/bus.md, "Benchmark").
/// Built without the default feature `mimalloc`, the binary uses the system allocator, so that
/// heap profilers that hook malloc (valgrind's massif, heaptrack) see every allocation.
#[cfg(all(feature = "mimalloc", not(feature = "heap-stats")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// With `heap-stats`, the allocator is wrapped to count the bytes held (heap.rs).
#[cfg(all(feature = "mimalloc", feature = "heap-stats"))]
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);
#[cfg(all(not(feature = "mimalloc"), feature = "heap-stats"))]
#[global_allocator]
static GLOBAL: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

mod api_cmd;
mod export_cmd;
mod heap;
mod import_cmd;
mod labels_cmd;
mod ops_http;
mod progress;
mod rejections_cmd;
mod report_cmd;
mod services_cmd;
mod snapshot;
mod stats_cmd;
mod synth_cmd;
mod verify_cmd;

#[derive(Parser)]
#[command(name = "registry", version, about = "ALK+ NSCLC crizotinib registry tracker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import NDJSON events (`-` for stdin) through validation, de-duplication, append and projection.
    Import(import_cmd::ImportArgs),
    /// Re-read the whole log, check its hash chain and that stored labels and the report snapshot equal a fresh replay.
    Verify(verify_cmd::VerifyArgs),
    /// Print every patient's labels (one JSON object per line, sorted by patient_id).
    Labels(labels_cmd::LabelsArgs),
    /// List the inputs the registry refused (one JSON object per line), or write one's raw bytes to fix and resend.
    Rejections(rejections_cmd::RejectionsArgs),
    /// Write a deterministic synthetic cohort as NDJSON events on stdout.
    Synth(synth_cmd::SynthArgs),
    /// The live system in one process: ingest, projector, alerts, operations endpoint.
    Serve(services_cmd::ServeArgs),
    /// The ingest service alone: EVENTS → validated log → ACCEPTED.
    Ingest(services_cmd::IngestArgs),
    /// The projector service alone: ACCEPTED → labels → ALERTS.
    Project(services_cmd::ProjectArgs),
    /// The alert bridge: ALERTS → webhooks and stdout NDJSON.
    Alerts(services_cmd::AlertsArgs),
    /// A feeder: NDJSON events onto registry.events.<site>.<type> with Nats-Msg-Id.
    Publish(services_cmd::PublishArgs),
    /// Survival and competing-risk statistics on any CSV (JSON on stdout).
    #[command(subcommand)]
    Stats(stats_cmd::StatsCommand),
    /// The cohort report: the study's tables and figures from live data (json, md or html).
    Report(report_cmd::ReportArgs),
    /// Export analysis data sets (`adtte`: one CSV row per patient and clock).
    #[command(subcommand)]
    Export(export_cmd::ExportCommand),
    /// The HTTP API and dashboard alone, over a data directory no other process has open.
    Api(api_cmd::ApiArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Import(args) => import_cmd::run(args),
        Command::Verify(args) => verify_cmd::run(args),
        Command::Labels(args) => labels_cmd::run(args),
        Command::Rejections(args) => rejections_cmd::run(args),
        Command::Synth(args) => synth_cmd::run(args),
        Command::Serve(args) => services_cmd::serve(args),
        Command::Ingest(args) => services_cmd::ingest(args),
        Command::Project(args) => services_cmd::project(args),
        Command::Alerts(args) => services_cmd::alerts(args),
        Command::Publish(args) => services_cmd::publish(args),
        Command::Stats(cmd) => stats_cmd::run(cmd),
        Command::Report(args) => report_cmd::run(args),
        Command::Export(cmd) => export_cmd::run(cmd),
        Command::Api(args) => api_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("registry: {err:#}");
            ExitCode::from(2)
        }
    }
}
