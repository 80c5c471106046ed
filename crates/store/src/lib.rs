//! registry-store: the append-only, hash-chained event log of the registry and the derived trees
//! (labels, checkpoints, outbox, rejections) kept beside it, on sled 0.34.
//!
//! The store knows nothing of clinical meaning. It stores opaque canonical event bytes under the
//! few keys the caller extracts (`event_id`, `patient_id`) and guarantees:
//! - **Append-only, contiguous**: accepted events get seq 1, 2, 3, … with no gaps; nothing is
//!   rewritten (only the `#[doc(hidden)]` tamper helpers do, for tests).
//! - **Idempotent**: same `event_id` + same content is a `Duplicate` (stored once); same id with
//!   other content is a `Conflict` and the stored event is untouched.
//! - **Tamper-evident**: each record carries SHA-256(prev ‖ seq ‖ received_at ‖ bytes);
//!   [`Store::verify_chain`] names the first bad seq.
//! - **Durable on return**: every write call that returns `Ok` has been flushed (fsync) —
//!   except [`Store::outbox_done`], see its doc.
//!
//! Architecture invariant: this crate parses no event content and depends on no other
//! registry crate. The engine stays behind [`EventLog`] so it could be swapped.
//!
//! Calling from tokio: every method blocks on disk IO (a flush is an fsync). In async code call
//! them inside `tokio::task::spawn_blocking` with a clone of the [`Store`] (cheap: it is a set of
//! handles), e.g. `let s = store.clone(); spawn_blocking(move || s.append_batch(&evs)).await??`.

mod alerts;
mod codec;
mod derived;
mod error;
mod index;
mod log;
mod rejections;
mod segfile;
mod snapshot;
mod verify;

pub use alerts::{OutboxPosition, PendingAlert, StoredAlert};
pub use codec::{Hash, RECORD_HEADER_LEN};
pub use error::{ChainError, ChainProblem, StoreError};
pub use log::{AppendOutcome, NewEvent, Store, StoreConfig, StoredEvent, DEFAULT_CACHE_BYTES};
pub use rejections::{Rejection, StoredRejection};
pub use verify::ChainReport;

/// The narrow interface of the event log, so the engine (sled today) could be swapped.
/// [`Store`] implements it by forwarding to its inherent methods of the same names.
pub trait EventLog: Send + Sync {
    /// Appends a batch atomically and durably; one outcome per input, in order.
    fn append_batch(&self, events: &[NewEvent<'_>]) -> Result<Vec<AppendOutcome>, StoreError>;
    /// The event at `seq`, if any.
    fn get(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError>;
    /// All events with seq ≥ `seq`, in seq order, streamed.
    fn iter_from(
        &self,
        seq: u64,
    ) -> Box<dyn Iterator<Item = Result<StoredEvent, StoreError>> + Send + '_>;
    /// Every patient id that has at least one event, sorted by bytes.
    fn patient_ids(&self) -> Result<Vec<String>, StoreError>;
    /// A patient's events in seq order.
    fn patient_events(&self, patient_id: &str) -> Result<Vec<StoredEvent>, StoreError>;
    /// The last assigned seq (0 when empty).
    fn last_seq(&self) -> u64;
    /// Number of events in the log.
    fn len(&self) -> u64;
    /// True when the log holds no event.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Recomputes the whole chain; see [`Store::verify_chain`].
    fn verify_chain(&self, progress: &mut dyn FnMut(u64)) -> Result<ChainReport, ChainError>;
}

impl EventLog for Store {
    fn append_batch(&self, events: &[NewEvent<'_>]) -> Result<Vec<AppendOutcome>, StoreError> {
        Store::append_batch(self, events)
    }
    fn get(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        Store::get(self, seq)
    }
    fn iter_from(
        &self,
        seq: u64,
    ) -> Box<dyn Iterator<Item = Result<StoredEvent, StoreError>> + Send + '_> {
        Box::new(Store::iter_from(self, seq))
    }
    fn patient_ids(&self) -> Result<Vec<String>, StoreError> {
        Store::patient_ids(self)
    }
    fn patient_events(&self, patient_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        Store::patient_events(self, patient_id)
    }
    fn last_seq(&self) -> u64 {
        Store::last_seq(self)
    }
    fn len(&self) -> u64 {
        Store::len(self)
    }
    fn verify_chain(&self, progress: &mut dyn FnMut(u64)) -> Result<ChainReport, ChainError> {
        Store::verify_chain(self, progress)
    }
}
