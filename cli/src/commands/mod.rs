//! One file per `warehouse` command group: each holds its clap arguments
//! and its `run`, printing its answer as JSON on stdout.

pub mod analytics;
pub mod backfill;
pub mod dlq;
pub mod engagement;
pub mod errors;
pub mod flags;
pub mod forget;
pub mod generate;
pub mod migrate;
pub mod pipeline;
pub mod reconcile;
pub mod status;
pub mod verify;
