//! The contract in code: what `shared/contract/EVENTS.md` and
//! `shared/contract/ANALYTICS.md` say, as pure functions and types (no I/O,
//! no SQL). An event document parsed from Extended JSON (`event/`,
//! `ejson.rs`); the answers' JSON shapes (`answers.rs`) and the rules every
//! implementation shares to print the same strings and numbers: time
//! (`time.rs`), rounding (`figures.rs`), the timeline's buckets
//! (`timeline.rs`), the engagement weights (`engagement.rs`), the viewer
//! list's CSV (`csv.rs`), normalisation (`normalize.rs`);
//! the text of error messages (`text.rs`); a viewer's erasure in the bodies
//! kept anyway (`erasure.rs`), as the anonymous asker's (`anonymity.rs`).

mod anonymity;
mod answers;
mod csv;
mod diff;
mod ejson;
mod engagement;
mod erasure;
mod event;
mod figures;
mod normalize;
mod text;
mod time;
mod timeline;

pub use anonymity::{without_anonymous_asker, REMOVED_ASKER};
pub use answers::{
    Attendance, PollOption, PollReport, PresentationList, PresentationReport, PresentationRow,
    Presenter, QnaReport, QuestionStatus, SurveyOptionCount, SurveyQuestionDetail,
    SurveyQuestionReport, SurveyReport, TopQuestion, ViewerList, ViewerRow, TOP_QUESTIONS,
};
pub use csv::{push_viewer_csv, VIEWER_CSV_HEADER};
pub use diff::differences;
pub use engagement::{EngagementSettings, EngagementWeights, MAX_WEIGHT};
pub use erasure::{mentioned_viewers, without_erased, ErasureReceipt, Mentions, ERASED};
pub use event::{
    is_id, parse_event, Choice, DataPoint, Event, EventBody, EventError, EventErrorKind, Person,
    QuestionKind, SurveyAnswer, SurveyQuestion, ViewerJoined, DATE_RANGE_MS, MAX_EVENT_BYTES,
    MAX_ID_CHARS, MAX_TEXT_CHARS,
};
pub use figures::{average_2dp, average_seconds_1dp, count, div_round_half_away, floor_seconds};
pub use normalize::{
    department_or_unknown, normalize_country, normalize_department, normalize_device,
    normalize_optional_text, trim_blanks, UNKNOWN,
};
pub use text::{abbreviate, truncate_chars};
pub use time::{
    civil_from_days, days_from_civil, days_in_month, format_date, format_time, format_time_opt,
    parse_rfc3339,
};
pub use timeline::{
    timeline_buckets, Timeline, TimelineBucket, DEFAULT_BUCKET_SECONDS, LIVE_CUT_OFF_MS,
    MAX_TIMELINE_BUCKETS,
};
