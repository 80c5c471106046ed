//! Counters of the ingest service, exported in Prometheus text format by the HTTP layer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::batch::InputOutcome;

/// Events accepted, duplicates, rejections by reason.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    accepted: AtomicU64,
    duplicate: AtomicU64,
    rejected: Mutex<BTreeMap<String, u64>>,
}

impl IngestMetrics {
    pub fn count(&self, outcome: &InputOutcome) {
        match outcome {
            InputOutcome::Accepted { .. } => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
            }
            InputOutcome::Duplicate { .. } => {
                self.duplicate.fetch_add(1, Ordering::Relaxed);
            }
            InputOutcome::Rejected { code, .. } => {
                let mut r = self.rejected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                *r.entry((*code).to_owned()).or_default() += 1;
            }
        }
    }

    /// Prometheus exposition of the counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP registry_events_ingested_total Events accepted into the log.\n");
        out.push_str("# TYPE registry_events_ingested_total counter\n");
        out.push_str(&format!("registry_events_ingested_total {}\n", self.accepted.load(Ordering::Relaxed)));
        out.push_str("# HELP registry_events_duplicate_total Inputs absorbed as duplicates.\n");
        out.push_str("# TYPE registry_events_duplicate_total counter\n");
        out.push_str(&format!("registry_events_duplicate_total {}\n", self.duplicate.load(Ordering::Relaxed)));
        out.push_str("# HELP registry_events_rejected_total Inputs rejected, by reason.\n");
        out.push_str("# TYPE registry_events_rejected_total counter\n");
        let r = self.rejected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (reason, n) in r.iter() {
            out.push_str(&format!("registry_events_rejected_total{{reason=\"{reason}\"}} {n}\n"));
        }
        out
    }
}
