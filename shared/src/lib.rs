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
//!   migrations, AWS clients, S3 objects written a part at a time
//!   (`ObjectWriter`) and the clock. It knows no event type.
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

/// `mi_option_purge_delay` in libmimalloc-sys 0.1.49's mimalloc v3 (the
/// dependency is pinned to it; the unit test checks the default it has).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc give freed memory back to the system after 1 ms instead
/// of its default 1,000 ms: a backfill or reconciliation frees a batch's
/// worth of memory every batch, and with the default delay that memory
/// stayed mapped, so a direct backfill peaked at 270-290 MiB where 175-195
/// are in use, at no measurable cost in speed (BENCHMARKS.md). Call it first
/// thing in `main`, before other threads start.
pub fn return_freed_memory_promptly() {
    // SAFETY: sets one of mimalloc's options by its number, before the
    // program's other threads exist; any value is valid for this option.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1) }
}

#[cfg(test)]
mod layers;

#[cfg(test)]
mod allocator_tests {
    use super::{return_freed_memory_promptly, MI_OPTION_PURGE_DELAY};

    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // Its default in this version's options.c (1,000 ms), unless the
        // environment set it; no option beside it defaults to 1,000.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), 1000);
        }
        return_freed_memory_promptly();
        assert_eq!(get(), 1);
    }
}
