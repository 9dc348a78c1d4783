//! Poll rows: the poll (`dim_poll`, inferred from a vote if need be) and its
//! options, and each vote (`fact_poll_vote`) with the options it chose.

use super::Keys;
use crate::contract::{Event, EventBody};
use crate::store::{merge, Row, Upsert};

/// The rows of a batch's polls, their options and votes, one multi-row statement per table.
pub(super) struct Polls {
    polls: Upsert,
    poll_options: Upsert,
    poll_votes: Upsert,
    poll_vote_options: Upsert,
}

impl Polls {
    pub(super) fn new() -> Polls {
        let keep_first = merge::keep("presentation_key");
        Polls {
            polls: Upsert::new(
                "dim_poll",
                &[
                    "presentation_key",
                    "poll_id",
                    "created_version",
                    "created_at_ms",
                    "question",
                    "multiple_choice",
                    "closed_at_ms",
                ],
                &[
                    merge::if_lower("created_at_ms", "created_version"),
                    merge::if_lower("question", "created_version"),
                    merge::if_lower("multiple_choice", "created_version"),
                    merge::least("created_version"),
                    merge::least("closed_at_ms"),
                ]
                .join(", "),
            ),
            poll_options: Upsert::new(
                "dim_poll_option",
                &[
                    "presentation_key",
                    "poll_id",
                    "created_version",
                    "position",
                    "option_id",
                    "text",
                ],
                &keep_first,
            ),
            poll_votes: Upsert::new(
                "fact_poll_vote",
                &[
                    "presentation_key",
                    "version",
                    "poll_id",
                    "viewer_key",
                    "occurred_at_ms",
                ],
                &keep_first,
            ),
            poll_vote_options: Upsert::new(
                "fact_poll_vote_option",
                &["presentation_key", "version", "position", "option_id"],
                &keep_first,
            ),
        }
    }

    pub(super) fn add(&mut self, keys: &Keys, presentation: u64, event: &Event) {
        let version = event.version;
        match &event.body {
            EventBody::PollCreated {
                poll_id,
                question,
                options,
                multiple_choice,
            } => {
                let mut row = Row::default();
                row.uint(presentation)
                    .str(poll_id)
                    .int(version)
                    .int(event.occurred_at)
                    .str(question)
                    .bool(*multiple_choice)
                    .null();
                self.polls.add(&row);
                for (position, option) in options.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .str(poll_id)
                        .int(version)
                        .int(position as i64)
                        .str(&option.id)
                        .str(&option.text);
                    self.poll_options.add(&row);
                }
            }
            EventBody::PollClosed { poll_id } => {
                let mut row = Row::default();
                row.uint(presentation).str(poll_id);
                row.null().null().null().null().int(event.occurred_at);
                self.polls.add(&row);
            }
            EventBody::PollVoted {
                poll_id,
                viewer_id,
                option_ids,
            } => {
                let viewer = keys.viewer(event, viewer_id);
                let mut row = Row::default();
                row.uint(presentation)
                    .int(version)
                    .str(poll_id)
                    .uint(viewer)
                    .int(event.occurred_at);
                self.poll_votes.add(&row);
                // A poll row, even inferred, so the vote's poll is known.
                let mut row = Row::default();
                row.uint(presentation).str(poll_id);
                row.null().null().null().null().null();
                self.polls.add(&row);
                for (position, option_id) in option_ids.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .int(version)
                        .int(position as i64)
                        .str(option_id);
                    self.poll_vote_options.add(&row);
                }
            }
            // Other data points' events: see `FactWriter::add`.
            _ => {}
        }
    }

    pub(super) fn finish(mut self, statements: &mut Vec<String>) {
        for upsert in [
            &mut self.polls,
            &mut self.poll_options,
            &mut self.poll_votes,
            &mut self.poll_vote_options,
        ] {
            statements.extend(upsert.take_statements());
        }
    }
}
