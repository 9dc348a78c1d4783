//! The analytics warehouse: the event contract in code, the dimension model,
//! all SQL, loading, reconciliation and the analytics queries.

pub mod contract;
pub mod export;
pub mod handlers;
pub mod jobs;
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
