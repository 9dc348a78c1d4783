//! Loading: the one piece of code that turns parsed events into warehouse
//! rows. The SQS loaders, the backfill and the reconciliation's repair all
//! call `load_batch`.
//!
//! A batch is written in one transaction with a handful of multi-row
//! statements: the ledger first (it decides which events are new, duplicate or
//! conflicting), then the dimensions (inferred members included), then the
//! facts of the new events only, and last the upsert of the presentations
//! already known (their revision bump), which locks each one's row until the
//! commit: held that briefly, concurrent batches of one presentation wait
//! for each other only for that statement and the commit (see
//! `dimensions::presentation_upserts`). Every fact merge is commutative and
//! idempotent (see `migrations/0001_warehouse.sql`), so batches may commit in
//! any order. Statements go in a few round trips: the erasure guard and the
//! erasures of the viewers the batch names, the ledger (prepared, see
//! `store::PreparedUpsert`), the lookup of known viewers and presentations,
//! the new dimensions with their keys, then the facts, rejects, audit row and
//! the known presentations' upsert (see `store::run_script`).
//!
//! - `batch`: the transaction of one batch, in that order, and its counts.
//! - `ledger`: the ledger rows, which tell new events from repeats.
//! - `dimensions`: presentations and viewers, and the keys facts refer to.
//! - `facts`: the fact rows of the new events, one file per data point.
//! - `rejects`: inputs recorded in the error table instead of being loaded.
//! - `isolate`: a batch the database refuses, loaded in parts around the
//!   events it refuses.
//! - `erasure`: the erased viewers a transaction must leave out, read under
//!   the erasure guard; `forget`: a viewer's erasure (ANALYTICS.md §8) and
//!   the retention of kept bodies.

mod batch;
mod dimensions;
mod erasure;
mod facts;
mod forget;
mod isolate;
mod ledger;
mod rejects;

pub use batch::{commit_batch, load_batch, CommitHook, Item, LoadCounts};
pub use erasure::{erasures_of_tenants, Erasures};
pub use forget::{expire_error_bodies, forget, ForgetError, ERASABLE_COLUMNS, OTHER_TEXT_COLUMNS};
pub use isolate::{commit_isolating, Isolated};
pub use rejects::{record_rejects, Reject, RejectKind};
