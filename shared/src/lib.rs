//! The analytics warehouse: the event contract in code, the dimension model,
//! all SQL, loading, reconciliation and the analytics queries.

pub mod config;
pub mod db;
pub mod event;
pub mod migrate;
