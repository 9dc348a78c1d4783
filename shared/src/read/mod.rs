//! The read path: the analytics answers of `shared/contract/ANALYTICS.md`,
//! computed by the database from the warehouse tables (the presentation
//! report, the viewer list, the presentation list and the timeline), the parsing of the
//! user's paging, sorting and date input that the CLI and the HTTP API
//! share, the tenants' feature flags ([`flags`]), and the in-memory
//! [`Replay`], the reference these answers are tested against. The shapes
//! and the rounding / formatting helpers are those of [`crate::contract`].
//!
//! Where work happens:
//! - `params`: the user's input, checked; `error`: why a question could not
//!   be answered; `sql`: the SQL building blocks and the reading of rows.
//! - `report/`: the presentation report, folded in Rust from range reads of
//!   the presentation's fact rows (one file per data point), and its cache.
//! - `viewers` and `presentations`: the two lists, which filter, sort and
//!   page in SQL (`WHERE`, `ORDER BY`, `LIMIT … OFFSET`, with
//!   `COUNT(*) OVER ()` for the total); Rust receives one page (at most
//!   `MAX_LIMIT` rows). The presentation list reads the summaries as the
//!   loaders last refreshed them ([`refresh_summaries_of`], after every
//!   batch; [`refresh_stale_summaries`] after backfill and reconcile
//!   invocations) and never writes.
//! - `engagement`: the tenants' weights and the engagement score (§5) as a
//!   SQL expression of a viewer row, exact in `DECIMAL` integers.
//! - `timeline`: the attendance timeline (§4), folded in Rust from the
//!   same range read of the sessions as the report's attendance;
//!   `timeline_svg`: that timeline drawn as an SVG chart.
//! - `replay/`: the in-memory reference.
//!
//! MariaDB materialises a CTE once per reference, so each CTE that does real
//! work is referenced once.
//!
//! The SQL uses only what MySQL 8 and MariaDB 10.11 share (CTEs, window
//! functions, `VALUES()` in upserts), and every `GROUP BY` is valid under
//! `ONLY_FULL_GROUP_BY`. Durations are summed as `DECIMAL`, never as
//! `BIGINT`, so no event time can overflow them (the replay uses `i128`).
//!
//! Decisions where the contract is silent (those of one file are in it):
//! - `search` is a case-insensitive substring (`LOWER()` on both sides, then
//!   a binary `LIKE` with `%` and `_` escaped, so they match themselves); an
//!   empty search matches every row.
//! - Sorting by `name` (viewers) or `title` (presentations) is by the
//!   lower-cased text in code-point order, missing values last; every sort
//!   ends with the id in byte order, so pages never overlap.

mod engagement;
mod error;
pub mod flags;
mod params;
mod presentations;
mod replay;
mod report;
mod sql;
mod timeline;
mod timeline_svg;
mod viewers;

pub use engagement::{engagement_weights, set_engagement_weights};
pub use error::AnalyticsError;
pub use params::{
    parse_date, parse_date_to, parse_limit, parse_offset, parse_timeline_format,
    parse_viewer_format, PresentationParams, PresentationQuery, PresentationSort, TimelineFormat,
    ViewerFormat, ViewerParams, ViewerQuery, ViewerSort, MAX_LIMIT,
};
pub use presentations::{
    presentation_list, refresh_stale_summaries, refresh_summaries, refresh_summaries_of, Refreshed,
};
pub use replay::Replay;
pub use report::{presentation_report, presentation_report_read_only};
pub use timeline::{timeline, timeline_with_heading};
pub use timeline_svg::{
    timeline_svg, TimelineHeading, TIMELINE_SVG_SIZE, TIMELINE_SVG_VIEWERS_STROKE,
};
pub use viewers::{viewer_csv, viewer_list, CsvOutcome};
