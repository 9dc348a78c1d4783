pub mod backfill;
pub mod generate;
pub mod reconcile;
pub mod verify;
