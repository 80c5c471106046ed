//! `registry rejections --data DIR [--reason CODE] [--site SITE] [--open]` and
//! `registry rejections --data DIR --raw ID`: the inputs the registry refused, as kept in the
//! store (docs/event-contract.md, "Reading the rejections back").
//!
//! Every rejection is kept with its raw bytes, source, reason, message and time, so that nothing
//! sent is lost and a fixed event can be sent again (events.md). This command is how a registry
//! reads them back: one JSON object per rejection per line, oldest first
//! ([`registry_ingest::RejectionEntry`]), and `--raw ID` writes one rejection's bytes exactly as
//! received, to fix and resend (`registry import` or `registry publish`). `--open` lists only
//! those no fixed event has resolved yet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use registry_domain::validate::RejectReason;
use registry_ingest::RejectionFilter;
use registry_store::Store;

#[derive(clap::Args)]
pub(crate) struct RejectionsArgs {
    /// Data directory: an import's (`DIR/store`) or a `registry serve` / `registry ingest` one
    /// (`DIR/ingest/store`, `DIR/store`). The service must not be running on it (sled is one
    /// process's database); while it runs, use `GET /rejections` or `registry.rejected.<site>`.
    #[arg(long, env = "REGISTRY_DATA")]
    data: PathBuf,
    /// Only this reason code (e.g. `schema`, `site_mismatch`).
    #[arg(long, value_parser = parse_reason)]
    reason: Option<RejectReason>,
    /// Only inputs from this site (the site token of the bus subject, else the input's `site_id`).
    #[arg(long)]
    site: Option<String>,
    /// Only rejections not yet resolved by an accepted event with the same `event_id`.
    #[arg(long)]
    open: bool,
    /// What the registry had received by this instant (RFC 3339): rejections made by then,
    /// resolved only by a fix received by then; default now.
    #[arg(long, value_parser = crate::labels_cmd::parse_instant)]
    known_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Write the raw bytes of rejection ID exactly as received (no newline added) and stop.
    #[arg(long, value_name = "ID", conflicts_with_all = ["reason", "site", "open", "known_at"])]
    raw: Option<u64>,
}

pub(crate) fn parse_reason(s: &str) -> Result<RejectReason, String> {
    RejectReason::from_code(s).ok_or_else(|| {
        format!("{s:?} is not a reason code (one of {})", RejectReason::ALL.map(RejectReason::code).join(", "))
    })
}

/// The store holding the rejections: `DIR/store`, else the ingest's in a `registry serve` layout.
pub(crate) fn store_dir(data: &Path) -> Option<PathBuf> {
    [data.join("store"), data.join("ingest").join("store")].into_iter().find(|d| d.exists())
}

pub(crate) fn run(args: RejectionsArgs) -> anyhow::Result<ExitCode> {
    let dir = store_dir(&args.data).with_context(|| {
        format!("no registry store in {} (looked for store/ and ingest/store/)", args.data.display())
    })?;
    let store = Store::open_lazy(&dir).with_context(|| {
        format!(
            "cannot open the store in {} (a service running on it holds it; then use GET /rejections or registry.rejected.<site>)",
            dir.display()
        )
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let Some(id) = args.raw {
        let r = store.get_rejection(id)?.with_context(|| format!("no rejection {id} in {}", dir.display()))?;
        out.write_all(&r.raw)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let filter = RejectionFilter {
        reason: args.reason,
        site: args.site,
        open: args.open,
        after_id: 0,
        known_at_micros: args.known_at.map(|t| t.timestamp_micros()),
    };
    let mut written = Ok(());
    registry_ingest::for_each_rejection(&store, &filter, |entry| {
        written = serde_json::to_writer(&mut out, &entry).map_err(anyhow::Error::from).and_then(|()| Ok(writeln!(out)?));
        written.is_ok()
    })?;
    written?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
