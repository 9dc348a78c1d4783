//! Survey rows: the survey (`dim_survey`, inferred from a response if need
//! be) with its questions and their options, and each response
//! (`fact_survey_response`) with its answers and the options they chose.

use super::Keys;
use crate::contract::{Event, EventBody};
use crate::store::{merge, Row, Upsert};

/// The rows of a batch's surveys, their questions and responses, one multi-row statement per table.
pub(super) struct Surveys {
    surveys: Upsert,
    survey_questions: Upsert,
    survey_question_options: Upsert,
    survey_responses: Upsert,
    survey_answers: Upsert,
    survey_answer_options: Upsert,
}

impl Surveys {
    pub(super) fn new() -> Surveys {
        let keep_first = merge::keep("presentation_key");
        Surveys {
            surveys: Upsert::new(
                "dim_survey",
                &[
                    "presentation_key",
                    "survey_id",
                    "created_version",
                    "created_at_ms",
                    "title",
                ],
                &[
                    merge::if_lower("created_at_ms", "created_version"),
                    merge::if_lower("title", "created_version"),
                    merge::least("created_version"),
                ]
                .join(", "),
            ),
            survey_questions: Upsert::new(
                "dim_survey_question",
                &[
                    "presentation_key",
                    "survey_id",
                    "created_version",
                    "position",
                    "question_id",
                    "kind",
                    "text",
                    "scale",
                ],
                &keep_first,
            ),
            survey_question_options: Upsert::new(
                "dim_survey_question_option",
                &[
                    "presentation_key",
                    "survey_id",
                    "created_version",
                    "question_position",
                    "position",
                    "option_id",
                    "text",
                ],
                &keep_first,
            ),
            survey_responses: Upsert::new(
                "fact_survey_response",
                &[
                    "presentation_key",
                    "version",
                    "survey_id",
                    "viewer_key",
                    "occurred_at_ms",
                ],
                &keep_first,
            ),
            survey_answers: Upsert::new(
                "fact_survey_answer",
                &[
                    "presentation_key",
                    "version",
                    "position",
                    "question_id",
                    "rating",
                    "text_answer",
                ],
                &keep_first,
            ),
            survey_answer_options: Upsert::new(
                "fact_survey_answer_option",
                &[
                    "presentation_key",
                    "version",
                    "answer_position",
                    "position",
                    "option_id",
                ],
                &keep_first,
            ),
        }
    }

    pub(super) fn add(&mut self, keys: &Keys, presentation: u64, event: &Event) {
        let version = event.version;
        match &event.body {
            EventBody::SurveyCreated {
                survey_id,
                title,
                questions,
            } => {
                let mut row = Row::default();
                row.uint(presentation)
                    .str(survey_id)
                    .int(version)
                    .int(event.occurred_at)
                    .str(title);
                self.surveys.add(&row);
                for (position, question) in questions.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .str(survey_id)
                        .int(version)
                        .int(position as i64)
                        .str(&question.id)
                        .str(question.kind.as_str())
                        .str(&question.text)
                        .int(question.scale);
                    self.survey_questions.add(&row);
                    for (option_position, option) in question.options.iter().enumerate() {
                        let mut row = Row::default();
                        row.uint(presentation)
                            .str(survey_id)
                            .int(version)
                            .int(position as i64)
                            .int(option_position as i64)
                            .str(&option.id)
                            .str(&option.text);
                        self.survey_question_options.add(&row);
                    }
                }
            }
            EventBody::SurveySubmitted {
                survey_id,
                viewer_id,
                answers,
            } => {
                let viewer = keys.viewer(event, viewer_id);
                let mut row = Row::default();
                row.uint(presentation)
                    .int(version)
                    .str(survey_id)
                    .uint(viewer)
                    .int(event.occurred_at);
                self.survey_responses.add(&row);
                let mut row = Row::default();
                row.uint(presentation).str(survey_id).null().null().null();
                self.surveys.add(&row);
                for (position, answer) in answers.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .int(version)
                        .int(position as i64)
                        .str(&answer.question_id)
                        .opt_int(answer.rating)
                        .opt_str(answer.text.as_deref());
                    self.survey_answers.add(&row);
                    for (option_position, option_id) in
                        answer.option_ids.iter().flatten().enumerate()
                    {
                        let mut row = Row::default();
                        row.uint(presentation)
                            .int(version)
                            .int(position as i64)
                            .int(option_position as i64)
                            .str(option_id);
                        self.survey_answer_options.add(&row);
                    }
                }
            }
            // Other data points' events: see `FactWriter::add`.
            _ => {}
        }
    }

    pub(super) fn finish(mut self, statements: &mut Vec<String>) {
        for upsert in [
            &mut self.surveys,
            &mut self.survey_questions,
            &mut self.survey_question_options,
            &mut self.survey_responses,
            &mut self.survey_answers,
            &mut self.survey_answer_options,
        ] {
            statements.extend(upsert.take_statements());
        }
    }
}
