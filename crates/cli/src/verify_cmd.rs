//! `registry verify --data DIR`: the whole log re-read, its hash chain checked, the stored
//! labels compared with a fresh replay, and the report snapshot's current entries compared with
//! a fresh fold (`snapshot::verify`). Non-zero exit with a clear message on any problem.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use registry_domain::config::Config;
use registry_projector::Projector;
use registry_store::Store;

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// Data directory of the registry.
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
}

pub(crate) fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let dir = args.data.join("store");
    if !dir.exists() {
        anyhow::bail!("no registry store in {}", args.data.display());
    }
    let store = Store::open(&dir).with_context(|| format!("cannot open the store in {}", args.data.display()))?;
    let pb = crate::progress::bar(store.last_seq(), "verifying chain", false);
    let report = match store.verify_chain(|seq| pb.set_position(seq)) {
        Ok(report) => report,
        Err(err) => {
            pb.finish_and_clear();
            eprintln!("registry verify: FAILED: {err}");
            return Ok(ExitCode::from(1));
        }
    };
    pb.finish_and_clear();
    let projector = Projector::new(store.clone(), Config::default());
    let n_patients = store.patient_ids()?.len() as u64;
    let pb = crate::progress::bar(n_patients, "replaying labels", false);
    let mut problems = projector.verify(|n| pb.set_position(n)).context("label replay failed")?;
    pb.finish_and_clear();
    // The report snapshot `registry report` reads instead of refolding (docs/report.md, "Snapshot").
    let pb = crate::progress::bar(n_patients, "checking the report snapshot", false);
    let snap = crate::snapshot::verify(&store, &pb).context("report snapshot check failed")?;
    pb.finish_and_clear();
    problems.extend(snap.problems.iter().map(|p| format!("report snapshot: {p}")));
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("registry verify: FAILED: {p}");
        }
        eprintln!("registry verify: FAILED: {} problem(s) in the stored labels or the report snapshot", problems.len());
        return Ok(ExitCode::from(1));
    }
    println!(
        "{}",
        serde_json::json!({
            "ok": true,
            "events": report.events,
            "head_hash": report.head_hash_hex(),
            "patients_with_labels_checked": n_patients,
            "report_snapshot": {
                "checkpoint": snap.checkpoint,
                "entries": snap.entries,
                "checked": snap.checked,
                "stale_skipped": snap.stale,
                "variants_checked": snap.variants,
            },
        })
    );
    Ok(ExitCode::SUCCESS)
}
