//! Shared by the integration tests (`tests/it`) and the benchmarks
//! (`benches/`): real services and the loaders driven as Lambda drives them.

pub mod freshness;
pub mod harness;
pub mod helpers;
