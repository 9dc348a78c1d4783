//! The folded state of one presentation: each event, as it arrives in any
//! order, is kept or ignored by its version, so that the state (and the
//! answers computed from it) never depends on arrival order.

use std::collections::{BTreeMap, HashMap};

use crate::contract::{
    Choice, Event, EventBody, Presenter, QuestionStatus, SurveyAnswer, SurveyQuestion,
};

/// Keeps `value` of the lowest (`lowest == true`) or highest version seen.
fn keep_by_version<T>(slot: &mut Option<(i64, T)>, version: i64, value: T, lowest: bool) {
    let replace = match slot {
        None => true,
        Some((v, _)) => {
            if lowest {
                version < *v
            } else {
                version > *v
            }
        }
    };
    if replace {
        *slot = Some((version, value));
    }
}

fn keep_min(slot: &mut Option<i64>, value: i64) {
    *slot = Some(slot.map_or(value, |v| v.min(value)));
}

fn keep_max(slot: &mut Option<i64>, value: i64) {
    *slot = Some(slot.map_or(value, |v| v.max(value)));
}

#[derive(Debug, Clone)]
pub(super) struct Created {
    pub(super) presenter: Presenter,
    pub(super) scheduled_start: i64,
}

#[derive(Debug, Clone, Default)]
pub(super) struct SessionState {
    /// Lowest-version `ViewerJoined`: the session's viewer and attributes.
    pub(super) first_join: Option<(i64, crate::contract::ViewerJoined)>,
    /// Earliest `ViewerJoined.occurredAt`.
    pub(super) start: Option<i64>,
    /// Latest `occurredAt` among heartbeats and leaves.
    pub(super) last_activity: Option<i64>,
}

#[derive(Debug, Clone)]
pub(super) struct PollCreatedState {
    pub(super) occurred_at: i64,
    pub(super) question: String,
    pub(super) options: Vec<Choice>,
    pub(super) multiple_choice: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Vote {
    pub(super) version: i64,
    pub(super) occurred_at: i64,
    pub(super) option_ids: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct PollState {
    pub(super) created: Option<(i64, PollCreatedState)>,
    /// Earliest `PollClosed.occurredAt`.
    pub(super) closed_at: Option<i64>,
    /// viewerId → every vote (the effective one depends on `closed_at`).
    pub(super) votes: HashMap<String, Vec<Vote>>,
}

#[derive(Debug, Clone)]
pub(super) struct SurveyCreatedState {
    pub(super) occurred_at: i64,
    pub(super) title: String,
    pub(super) questions: Vec<SurveyQuestion>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct SurveyState {
    pub(super) created: Option<(i64, SurveyCreatedState)>,
    /// viewerId → highest-version submission's answers.
    pub(super) responses: HashMap<String, (i64, Vec<SurveyAnswer>)>,
}

#[derive(Debug, Clone)]
pub(super) struct AskedState {
    pub(super) occurred_at: i64,
    /// `None` for an anonymous question: the asker is never stored.
    pub(super) asked_by: Option<String>,
    pub(super) text: String,
}

#[derive(Debug, Clone, Default)]
pub(super) struct QuestionState {
    pub(super) asked: Option<(i64, AskedState)>,
    /// Highest version among answered (`Answered`) / dismissed (`Dismissed`).
    pub(super) status: Option<(i64, QuestionStatus)>,
    /// Earliest `QuestionAnswered.occurredAt`.
    pub(super) first_answered_at: Option<i64>,
    /// viewerId → (version, is upvote) of the highest-version upvote/withdrawal.
    pub(super) upvotes: HashMap<String, (i64, bool)>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct PresentationState {
    /// Highest version among `PresentationCreated` and `PresentationRenamed`.
    pub(super) title: Option<(i64, String)>,
    pub(super) created: Option<(i64, Created)>,
    pub(super) started_at: Option<i64>,
    pub(super) ended_at: Option<i64>,
    pub(super) sessions: BTreeMap<String, SessionState>,
    /// viewerId → highest-version `ViewerJoined` carrying that viewerId.
    pub(super) latest_join: BTreeMap<String, (i64, crate::contract::ViewerJoined)>,
    pub(super) polls: BTreeMap<String, PollState>,
    pub(super) surveys: BTreeMap<String, SurveyState>,
    pub(super) questions: BTreeMap<String, QuestionState>,
    /// Latest `occurredAt` of every event applied (§6: analytics events
    /// only; the others never reach a presentation's state).
    pub(super) data_through: Option<i64>,
}

impl PresentationState {
    pub(super) fn apply(&mut self, e: &Event) {
        let (version, at) = (e.version, e.occurred_at);
        keep_max(&mut self.data_through, at);
        match &e.body {
            EventBody::PresentationCreated {
                title,
                presenter,
                scheduled_start,
                ..
            } => {
                keep_by_version(&mut self.title, version, title.clone(), false);
                // Several creations: the lowest version is the creation.
                let created = Created {
                    presenter: Presenter {
                        id: presenter.id.clone(),
                        name: presenter.name.clone(),
                    },
                    scheduled_start: *scheduled_start,
                };
                keep_by_version(&mut self.created, version, created, true);
            }
            EventBody::PresentationRenamed { title } => {
                keep_by_version(&mut self.title, version, title.clone(), false);
            }
            EventBody::PresentationStarted => keep_min(&mut self.started_at, at),
            EventBody::PresentationEnded => keep_max(&mut self.ended_at, at),
            EventBody::ViewerJoined(joined) => {
                let session = self.sessions.entry(joined.session_id.clone()).or_default();
                keep_by_version(&mut session.first_join, version, joined.clone(), true);
                keep_min(&mut session.start, at);
                let slot = self
                    .latest_join
                    .entry(joined.viewer_id.clone())
                    .or_insert_with(|| (version, joined.clone()));
                if version > slot.0 {
                    *slot = (version, joined.clone());
                }
            }
            EventBody::ViewerHeartbeat { session_id, .. }
            | EventBody::ViewerLeft { session_id, .. } => {
                // Matched to the session by sessionId alone.
                let session = self.sessions.entry(session_id.clone()).or_default();
                keep_max(&mut session.last_activity, at);
            }
            EventBody::PollCreated {
                poll_id,
                question,
                options,
                multiple_choice,
            } => {
                let poll = self.polls.entry(poll_id.clone()).or_default();
                let created = PollCreatedState {
                    occurred_at: at,
                    question: question.clone(),
                    options: options.clone(),
                    multiple_choice: *multiple_choice,
                };
                keep_by_version(&mut poll.created, version, created, true);
            }
            EventBody::PollClosed { poll_id } => {
                keep_min(
                    &mut self.polls.entry(poll_id.clone()).or_default().closed_at,
                    at,
                );
            }
            EventBody::PollVoted {
                poll_id,
                viewer_id,
                option_ids,
            } => {
                self.polls
                    .entry(poll_id.clone())
                    .or_default()
                    .votes
                    .entry(viewer_id.clone())
                    .or_default()
                    .push(Vote {
                        version,
                        occurred_at: at,
                        option_ids: option_ids.clone(),
                    });
            }
            EventBody::SurveyCreated {
                survey_id,
                title,
                questions,
            } => {
                let survey = self.surveys.entry(survey_id.clone()).or_default();
                let created = SurveyCreatedState {
                    occurred_at: at,
                    title: title.clone(),
                    questions: questions.clone(),
                };
                keep_by_version(&mut survey.created, version, created, true);
            }
            EventBody::SurveySubmitted {
                survey_id,
                viewer_id,
                answers,
            } => {
                let survey = self.surveys.entry(survey_id.clone()).or_default();
                let slot = survey
                    .responses
                    .entry(viewer_id.clone())
                    .or_insert_with(|| (version, answers.clone()));
                if version > slot.0 {
                    *slot = (version, answers.clone());
                }
            }
            EventBody::QuestionAsked {
                question_id,
                viewer_id,
                text,
                anonymous,
            } => {
                let question = self.questions.entry(question_id.clone()).or_default();
                let asked = AskedState {
                    occurred_at: at,
                    asked_by: (!anonymous).then(|| viewer_id.clone()),
                    text: text.clone(),
                };
                keep_by_version(&mut question.asked, version, asked, true);
            }
            EventBody::QuestionUpvoted {
                question_id,
                viewer_id,
            }
            | EventBody::QuestionUpvoteWithdrawn {
                question_id,
                viewer_id,
            } => {
                let up = matches!(e.body, EventBody::QuestionUpvoted { .. });
                let question = self.questions.entry(question_id.clone()).or_default();
                let slot = question
                    .upvotes
                    .entry(viewer_id.clone())
                    .or_insert((version, up));
                if version > slot.0 {
                    *slot = (version, up);
                }
            }
            EventBody::QuestionAnswered { question_id, .. } => {
                let question = self.questions.entry(question_id.clone()).or_default();
                keep_by_version(
                    &mut question.status,
                    version,
                    QuestionStatus::Answered,
                    false,
                );
                keep_min(&mut question.first_answered_at, at);
            }
            EventBody::QuestionDismissed { question_id } => {
                let question = self.questions.entry(question_id.clone()).or_default();
                keep_by_version(
                    &mut question.status,
                    version,
                    QuestionStatus::Dismissed,
                    false,
                );
            }
            EventBody::NotAnalytics => {}
        }
    }
}
