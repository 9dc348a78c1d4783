mod analytics;
pub mod flags;
mod replay;
pub use analytics::{
    parse_date, parse_date_to, parse_limit, parse_offset, presentation_list, presentation_report,
    refresh_summaries, viewer_list, AnalyticsError, PresentationQuery, PresentationSort,
    ViewerQuery, ViewerSort,
};
pub use replay::Replay;
