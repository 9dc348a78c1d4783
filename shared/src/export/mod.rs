//! Reading exports: their sources (a file or S3, plain or gzip), their
//! lines, an event parsed from a line, and scanning a whole export in
//! parallel.

mod lines;
mod parse;
mod scan;
mod source;
pub use lines::{Line, LineReader};
pub use parse::{parse_line, ParseError};
pub use scan::{each_export_event, expand_sources, scan, ExportReadError, ScanPoint};
pub use source::{open_local, open_source, Source};
