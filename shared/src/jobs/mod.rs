//! The jobs: backfilling an export into the warehouse, reconciling an
//! export against the ledger, verifying reports against a replay, and
//! generating test exports. Backfill and reconcile share a `JobContext`.

mod context;
mod error;
mod summaries;

pub mod backfill;
pub mod generate;
pub mod reconcile;
pub mod verify;

pub use context::{BackfillProgress, JobContext, LaneHook, ProgressCallback};
pub use error::JobError;
