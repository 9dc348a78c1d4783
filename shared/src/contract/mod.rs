pub mod answers;
pub mod ejson;
pub mod event;
