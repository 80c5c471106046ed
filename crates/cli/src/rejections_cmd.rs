//! `registry rejections --data DIR [--reason CODE] [--site SITE] [--open]` and
//! `registry rejections --data DIR --raw ID`: the inputs the registry refused, as kept in the
//! store (docs/event-contract.md, "Reading the rejections back").
//!
//! Every rejection is kept with its raw bytes, source, reason, message and time, so that nothing
//! sent is lost and a fixed event can be sent again (events.md). This command is how a registry
//! reads them back: one JSON object per rejection per line, oldest first, and `--raw ID` writes
//! one rejection's bytes exactly as received, to fix and resend (`registry import` or `registry
//! publish`). A rejection is `resolved_by` the event with the same `event_id` that the store
//! accepted at or after it (the fixed resend; never for `event_id_conflict`, whose fix is a
//! correction under a new id); `--open` lists only those not resolved yet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use registry_domain::validate::RejectReason;
use registry_store::{Store, StoredRejection};
use serde_json::{json, Value};

/// Raw inputs up to this size are printed in the listing (the contract's largest event);
/// larger ones only with `--raw ID`.
const LISTED_RAW_BYTES: usize = registry_domain::validate::MAX_EVENT_BYTES;

#[derive(clap::Args)]
pub(crate) struct RejectionsArgs {
    /// Data directory: an import's (`DIR/store`) or a `registry serve` / `registry ingest` one
    /// (`DIR/ingest/store`, `DIR/store`). The service must not be running on it (sled is one
    /// process's database); live rejections are on `registry.rejected.<site>`.
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
    /// Write the raw bytes of rejection ID exactly as received (no newline added) and stop.
    #[arg(long, value_name = "ID", conflicts_with_all = ["reason", "site", "open"])]
    raw: Option<u64>,
}

fn parse_reason(s: &str) -> Result<RejectReason, String> {
    RejectReason::from_code(s).ok_or_else(|| {
        format!("{s:?} is not a reason code (one of {})", RejectReason::ALL.map(RejectReason::code).join(", "))
    })
}

/// The store holding the rejections: `DIR/store`, else the ingest's in a `registry serve` layout.
fn store_dir(data: &Path) -> anyhow::Result<PathBuf> {
    let plain = data.join("store");
    let serve = data.join("ingest").join("store");
    if plain.exists() {
        Ok(plain)
    } else if serve.exists() {
        Ok(serve)
    } else {
        anyhow::bail!("no registry store in {} (looked for {} and {})", data.display(), plain.display(), serve.display())
    }
}

pub(crate) fn run(args: RejectionsArgs) -> anyhow::Result<ExitCode> {
    let dir = store_dir(&args.data)?;
    let store = Store::open_lazy(&dir).with_context(|| {
        format!(
            "cannot open the store in {} (a service running on it holds it; stop it, or read live rejections from registry.rejected.<site>)",
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
    for r in store.rejections() {
        let r = r?;
        if args.reason.is_some_and(|code| code.code() != r.reason) {
            continue;
        }
        let peek = Peek::of(&r);
        if args.site.as_deref().is_some_and(|s| peek.site.as_deref() != Some(s)) {
            continue;
        }
        let resolved_by = resolved_by(&store, &r, peek.event_id.as_deref())?;
        if args.open && resolved_by.is_some() {
            continue;
        }
        writeln!(out, "{}", line(&r, &peek, resolved_by))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// What can be read of a refused input without trusting it: its `event_id` (a UUID) and its site.
struct Peek {
    event_id: Option<String>,
    site: Option<String>,
}

impl Peek {
    fn of(r: &StoredRejection) -> Peek {
        let value: Option<Value> = serde_json::from_slice(&r.raw).ok();
        let field = |key: &str| value.as_ref().and_then(|v| v.get(key)).and_then(Value::as_str);
        let event_id = field("event_id").and_then(|s| uuid::Uuid::parse_str(s).ok()).map(|u| u.hyphenated().to_string());
        // The subject's site token is who published it (a site_mismatch's event names another).
        let subject_site =
            r.source.strip_prefix("registry.events.").and_then(|rest| rest.split('.').next()).filter(|s| !s.is_empty());
        let site = subject_site.or_else(|| field("site_id")).map(str::to_owned);
        Peek { event_id, site }
    }
}

/// The event with the same id accepted at or after the rejection, as `{"seq", "received_at"}`.
fn resolved_by(store: &Store, r: &StoredRejection, event_id: Option<&str>) -> anyhow::Result<Option<Value>> {
    // An event_id_conflict's stored event is the one it collided with, not a fix: a different
    // content under a stored id is sent again as a correction with a new id (`supersedes`).
    let Some(event_id) = event_id.filter(|_| r.reason != RejectReason::EventIdConflict.code()) else { return Ok(None) };
    let Some(seq) = store.seq_of_event_id(event_id)? else { return Ok(None) };
    let Some(event) = store.get(seq)? else { return Ok(None) };
    // Accepted at or after the rejection (one import batch stamps its lines with one time).
    if event.received_at_micros < r.at_micros {
        return Ok(None);
    }
    Ok(Some(json!({"seq": seq, "received_at": instant(event.received_at_micros)})))
}

fn instant(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}

fn line(r: &StoredRejection, peek: &Peek, resolved_by: Option<Value>) -> Value {
    // The raw input as text when it is UTF-8 and not larger than an event may be; else null
    // (`--raw ID` writes any input's bytes).
    let raw = (r.raw.len() <= LISTED_RAW_BYTES).then(|| std::str::from_utf8(&r.raw).ok()).flatten();
    json!({
        "id": r.id,
        "rejected_at": instant(r.at_micros),
        "source": r.source,
        "site": peek.site,
        "reason": r.reason,
        "message": r.message,
        "event_id": peek.event_id,
        "resolved_by": resolved_by,
        "raw_bytes": r.raw.len(),
        "raw": raw,
    })
}
