//! Facts: the rows a batch's new events add beyond the presentations and
//! viewers (sessions, polls, surveys, questions, with their per-presentation
//! members, inferred ones included), one multi-row statement per table and
//! no round trip of their own: the statements go with the batch's last
//! script. Each data point's file owns its tables: columns, merges and rows.
//! Presentation events have no rows here: theirs are `dim_presentation`
//! rows, written with the dimensions.

mod attendance;
mod polls;
mod qna;
mod surveys;

use attendance::Attendance;
use polls::Polls;
use qna::Qna;
use surveys::Surveys;

use super::dimensions::{PresentationKeys, ViewerKeys};
use super::erasure::Erasures;
use crate::contract::{Event, EventBody};

/// The dimension keys the fact rows refer to, and the erased viewers whose
/// values they leave out.
struct Keys<'k> {
    presentations: &'k PresentationKeys,
    viewers: &'k ViewerKeys,
    erasures: &'k Erasures,
}

impl Keys<'_> {
    /// Whether the viewer an event names is erased (ANALYTICS.md §8).
    fn erased(&self, event: &Event, viewer_id: &str) -> bool {
        self.erasures.contains(&event.tenant_id, viewer_id)
    }

    fn viewer(&self, event: &Event, viewer_id: &str) -> u64 {
        // Every viewer the new events name has a key by now: the known ones
        // were read right after the ledger, the others inserted and read with
        // the dimensions (see `dimensions::write_dimensions`).
        self.viewers[&(event.tenant_id.clone(), viewer_id.to_string())]
    }
}

/// Accumulates the fact rows of a batch, one multi-row statement per table.
pub(super) struct FactWriter<'k> {
    keys: Keys<'k>,
    attendance: Attendance,
    polls: Polls,
    surveys: Surveys,
    qna: Qna,
}

impl<'k> FactWriter<'k> {
    pub(super) fn new(
        presentations: &'k PresentationKeys,
        viewers: &'k ViewerKeys,
        erasures: &'k Erasures,
    ) -> FactWriter<'k> {
        FactWriter {
            keys: Keys {
                presentations,
                viewers,
                erasures,
            },
            attendance: Attendance::new(),
            polls: Polls::new(),
            surveys: Surveys::new(),
            qna: Qna::new(),
        }
    }

    /// Adds the rows of one new event, given to its data point's writer.
    pub(super) fn add(&mut self, event: &Event) {
        // Every new event's presentation was upserted and read with the
        // dimensions (see `dimensions::write_dimensions`).
        let presentation =
            self.keys.presentations[&(event.tenant_id.clone(), event.stream_id.clone())];
        let keys = &self.keys;
        match &event.body {
            EventBody::ViewerJoined(_)
            | EventBody::ViewerHeartbeat { .. }
            | EventBody::ViewerLeft { .. } => self.attendance.add(keys, presentation, event),
            EventBody::PollCreated { .. }
            | EventBody::PollClosed { .. }
            | EventBody::PollVoted { .. } => self.polls.add(keys, presentation, event),
            EventBody::SurveyCreated { .. } | EventBody::SurveySubmitted { .. } => {
                self.surveys.add(keys, presentation, event)
            }
            EventBody::QuestionAsked { .. }
            | EventBody::QuestionUpvoted { .. }
            | EventBody::QuestionUpvoteWithdrawn { .. }
            | EventBody::QuestionAnswered { .. }
            | EventBody::QuestionDismissed { .. } => self.qna.add(keys, presentation, event),
            EventBody::PresentationCreated { .. }
            | EventBody::PresentationRenamed { .. }
            | EventBody::PresentationStarted
            | EventBody::PresentationEnded
            | EventBody::NotAnalytics => {}
        }
    }

    /// The statements of every row added.
    pub(super) fn finish(self) -> Vec<String> {
        let mut statements = Vec::new();
        self.attendance.finish(&mut statements);
        self.polls.finish(&mut statements);
        self.surveys.finish(&mut statements);
        self.qna.finish(&mut statements);
        statements
    }
}
