//! One integration-test binary (faster to link than one per file), a module
//! per area. Every test gets its own freshly migrated database.

mod helpers;
mod loaders;
mod migrate;
