pub mod analytics;
pub mod flags;
pub mod replay;
