mod answers;
mod ejson;
mod event;
pub use answers::{
    average_2dp, average_seconds_1dp, count, department_or_unknown, floor_seconds, format_time,
    format_time_opt, normalize_country, normalize_department, normalize_device,
    normalize_optional_text, trim_blanks, Attendance, PollOption, PollReport, PresentationList,
    PresentationReport, PresentationRow, Presenter, QnaReport, QuestionStatus, SurveyOptionCount,
    SurveyQuestionDetail, SurveyQuestionReport, SurveyReport, TopQuestion, ViewerList, ViewerRow,
    TOP_QUESTIONS, UNKNOWN,
};
pub use ejson::{civil_from_days, days_from_civil, days_in_month, parse_rfc3339, truncate_chars};
pub use event::{
    parse_event, Choice, DataPoint, Event, EventBody, EventError, Person, QuestionKind,
    SurveyAnswer, SurveyQuestion, ViewerJoined,
};
