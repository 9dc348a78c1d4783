mod lines;
mod parse;
mod source;
pub use lines::{Line, LineReader};
pub use parse::{parse_line, ParseError};
pub use source::{open_local, open_source, Source};
