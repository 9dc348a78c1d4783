pub mod aws;
pub mod config;
pub mod db;
pub mod migrate;
pub mod sql;
