//! Reading exports: their sources (a file or S3, plain or gzip) and which
//! of them a job may read, their lines (at most 1 MiB held of any), an event
//! parsed from a line, and scanning a whole export in parallel.

mod lines;
mod parse;
mod scan;
mod source;
pub use lines::{Line, LineBytes, LineReader, MAX_LINE_BYTES, OVER_LONG_KEPT_BYTES};
pub use parse::{parse_line, ParseError};
pub use scan::{each_export_event, expand_sources, scan, ExportReadError, ScanPoint};
pub use source::{open_local, open_source, ExportScope, Source};
