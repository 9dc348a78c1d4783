//! Q&A rows: the question (`dim_question`: asked, then answered or dismissed;
//! inferred from an upvote if need be) and each viewer's latest upvote
//! (`fact_question_upvote`).

use super::Keys;
use crate::contract::truncate_chars;
use crate::contract::{Event, EventBody};
use crate::store::{merge, Row, Upsert};

const QUESTION_COLUMNS: &[&str] = &[
    "presentation_key",
    "question_id",
    "asked_version",
    "asked_at_ms",
    "text",
    "anonymous",
    "asker_viewer_key",
    "status",
    "status_version",
    "first_answered_at_ms",
    "answered_by_id",
    "answered_by_name",
    "answer_method",
];

/// The rows of a batch's questions and upvotes, one multi-row statement per table.
pub(super) struct Qna {
    questions: Upsert,
    upvotes: Upsert,
}

impl Qna {
    pub(super) fn new() -> Qna {
        Qna {
            questions: Upsert::new(
                "dim_question",
                QUESTION_COLUMNS,
                &[
                    merge::if_lower("asked_at_ms", "asked_version"),
                    merge::if_lower("text", "asked_version"),
                    merge::if_lower("anonymous", "asked_version"),
                    merge::if_lower("asker_viewer_key", "asked_version"),
                    merge::least("asked_version"),
                    merge::if_higher("status", "status_version"),
                    merge::if_higher("answered_by_id", "status_version"),
                    merge::if_higher("answered_by_name", "status_version"),
                    merge::if_higher("answer_method", "status_version"),
                    merge::greatest("status_version"),
                    merge::least("first_answered_at_ms"),
                ]
                .join(", "),
            ),
            upvotes: Upsert::new(
                "fact_question_upvote",
                &[
                    "presentation_key",
                    "question_id",
                    "viewer_key",
                    "version",
                    "upvoted",
                ],
                &[
                    merge::if_higher("upvoted", "version"),
                    merge::greatest("version"),
                ]
                .join(", "),
            ),
        }
    }

    pub(super) fn add(&mut self, keys: &Keys, presentation: u64, event: &Event) {
        let version = event.version;
        match &event.body {
            EventBody::QuestionAsked {
                question_id,
                viewer_id,
                text,
                anonymous,
            } => {
                // An erased viewer's question is stored anonymous: nothing
                // ties them to it.
                let anonymous = *anonymous || keys.erased(event, viewer_id);
                let asker = (!anonymous).then(|| keys.viewer(event, viewer_id));
                let mut row = Row::default();
                row.uint(presentation)
                    .str(question_id)
                    .int(version)
                    .int(event.occurred_at)
                    .str(text)
                    .bool(anonymous)
                    .opt_uint(asker);
                row.null().null().null().null().null().null();
                self.questions.add(&row);
            }
            EventBody::QuestionUpvoted {
                question_id,
                viewer_id,
            }
            | EventBody::QuestionUpvoteWithdrawn {
                question_id,
                viewer_id,
            } => {
                let viewer = keys.viewer(event, viewer_id);
                let upvoted = matches!(event.body, EventBody::QuestionUpvoted { .. });
                let mut row = Row::default();
                row.uint(presentation)
                    .str(question_id)
                    .uint(viewer)
                    .int(version)
                    .bool(upvoted);
                self.upvotes.add(&row);
                self.push_inferred_question(presentation, question_id);
            }
            EventBody::QuestionAnswered {
                question_id,
                answered_by,
                method,
            } => {
                let mut row = Row::default();
                row.uint(presentation).str(question_id);
                row.null().null().null().null().null();
                row.str("answered")
                    .int(version)
                    .int(event.occurred_at)
                    .str(&answered_by.id)
                    .str(&answered_by.name)
                    .str(truncate_chars(method, 16));
                self.questions.add(&row);
            }
            EventBody::QuestionDismissed { question_id } => {
                let mut row = Row::default();
                row.uint(presentation).str(question_id);
                row.null().null().null().null().null();
                row.str("dismissed")
                    .int(version)
                    .null()
                    .null()
                    .null()
                    .null();
                self.questions.add(&row);
            }
            // Other data points' events: see `FactWriter::add`.
            _ => {}
        }
    }

    fn push_inferred_question(&mut self, presentation: u64, question_id: &str) {
        let mut row = Row::default();
        row.uint(presentation).str(question_id);
        for _ in 2..QUESTION_COLUMNS.len() {
            row.null();
        }
        self.questions.add(&row);
    }

    pub(super) fn finish(mut self, statements: &mut Vec<String>) {
        for upsert in [&mut self.questions, &mut self.upvotes] {
            statements.extend(upsert.take_statements());
        }
    }
}
