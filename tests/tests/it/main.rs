//! One integration-test binary (faster to link than one per file), a module
//! per area. Every test gets its own freshly migrated database.

pub use integration_tests::helpers;
mod analytics;
mod api;
mod backfill;
mod erasure;
mod export;
mod limits;
mod live;
mod loaders;
mod migrate;
mod ops;
mod pipeline;
mod privileges;
mod reconcile;
mod report_cache;
mod sql;
mod template;
mod timeline_svg;
