//! The analytics warehouse: the event contract in code, the dimension model,
//! all SQL, loading, reconciliation and the analytics queries.

pub mod analytics;
pub mod api;
pub mod aws;
pub mod backfill;
pub mod config;
pub mod db;
pub mod ejson;
pub mod event;
pub mod export;
pub mod flags;
pub mod generate;
pub mod lambda;
pub mod load;
pub mod migrate;
pub mod reconcile;
pub mod replay;
pub mod report;
pub mod source;
pub mod sql;
pub mod sqs_loader;
pub mod telemetry;
pub mod verify;

/// Every binary of the project (the functions, the CLI, the tests and
/// benches) allocates through mimalloc: parsing an event builds dozens of
/// small JSON values, and the system allocator was a large share of that
/// (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
