//! The analytics warehouse: events from the product's event store loaded
//! into a MySQL star schema, and the answers of `ANALYTICS.md` read from it.
//!
//! The folders read as the path of an event, then of an answer; each imports
//! only the ones below it (checked by the `layers` test):
//!
//! - `handlers`: the only code that sees a Lambda event: the SQS loaders, the
//!   HTTP API, the backfill and reconcile functions, and each function's
//!   typed configuration.
//! - `ops`: on-call operations beside the handlers, for the CLI: the status
//!   of each data point and of the runs, dead-letter queues listed and
//!   re-driven, and the errors grouped by reason (`ops` feature only).
//! - `jobs`: backfill (run, lanes, checkpoints), reconcile (checksums, ledger
//!   side, run state, repair, metrics), verify (the release check) and
//!   generate (synthetic exports), sharing a `JobContext`.
//! - `export`: where an export is read from (a file, S3), its lines, the
//!   parallel scan, and one line parsed into an event.
//! - `redrive`: sending events onto their data points' queues.
//! - `write`: the write path: a batch's transaction, the ledger, rejects,
//!   dimensions, and the facts, one file per data point; erasures (what a
//!   transaction leaves out, and `forget`) and the retention of kept bodies.
//! - `read`: the read path: parameters shared by the API and the CLI, the
//!   report (one file per data point), the viewer list (JSON pages and CSV)
//!   and presentation list, the timeline, the engagement weights and score,
//!   the rollout flags, and the in-memory reference computation (`Replay`).
//! - `store`: configuration, connections and retries, SQL building,
//!   migrations, AWS clients and the clock. It knows no event type.
//! - `contract`: pure code: Extended JSON, the event types, the answer
//!   shapes (the timeline's and the engagement weights' included),
//!   normalisation, figures, time, the timeline's bucket width and the
//!   viewer CSV's lines. No I/O, no SQL.
//! - `telemetry`: logging set-up.
//!
//! Inside a folder the files are private; each folder's `mod.rs` re-exports
//! what the others (and the binaries) use. A few modules are public on
//! purpose, as namespaces whose names would clash or read worse flattened:
//! `jobs::{backfill, reconcile, verify, generate}`, `read::flags` and
//! `store::migrate`.

pub mod contract;
pub mod export;
pub mod handlers;
pub mod jobs;
#[cfg(feature = "ops")]
pub mod ops;
pub mod read;
pub mod redrive;
pub mod store;
pub mod telemetry;
pub mod write;

/// Every binary of the project (the functions, the CLI, the tests and
/// benches) allocates through mimalloc: parsing an event builds dozens of
/// small JSON values, and the system allocator was a large share of that
/// (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(test)]
mod layers;
