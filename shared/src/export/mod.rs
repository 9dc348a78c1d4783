pub mod lines;
pub mod source;
