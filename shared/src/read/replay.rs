//! "The old way": the answers of `ANALYTICS.md` computed by replaying events in
//! memory. It is the reference the warehouse's SQL is checked against, so it
//! follows the contract literally and favours clarity over speed.
//!
//! Events may be added in any order and any number of times; an identity
//! `(streamId, version)` seen before is ignored (the first one wins). State is
//! kept per presentation, folded as events arrive, so that the answers never
//! depend on arrival order.
//!
//! Decisions where the contract is silent (each also noted where it applies):
//! - A presentation is identified by `(tenantId, streamId)`: an event can only
//!   ever add to a presentation of its own tenant.
//! - Several `PresentationCreated` (or `PollCreated` for one poll,
//!   `SurveyCreated` for one survey, `QuestionAsked` for one question): the
//!   lowest version is the creation; the others are ignored (except that every
//!   `PresentationCreated` takes part in choosing the title, as the contract says).
//! - `pollsAnswered` / `surveysSubmitted` count only polls / surveys that are
//!   reported (their creation has arrived), like every other figure.
//! - Viewer-row `name` / `email`: as written; blank counts as missing (`null`),
//!   like the department.
//! - A rating distribution lists every value 1..=scale, but never more than
//!   [`MAX_DISTRIBUTION_KEYS`] zero entries (a corrupt huge `scale` must not
//!   exhaust memory); a question with scale < 1 has no valid rating.
//! - Time arithmetic is done in `i128`, so no event content can overflow.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::contract::{
    average_2dp, average_seconds_1dp, count, department_or_unknown, floor_seconds, format_time,
    format_time_opt, normalize_country, normalize_department, normalize_device,
    normalize_optional_text, trim_blanks, Attendance, PollOption, PollReport, PresentationReport,
    PresentationRow, Presenter, QnaReport, QuestionStatus, SurveyOptionCount, SurveyQuestionDetail,
    SurveyQuestionReport, SurveyReport, TopQuestion, ViewerRow, TOP_QUESTIONS,
};
use crate::contract::{Choice, Event, EventBody, QuestionKind, SurveyAnswer, SurveyQuestion};

/// Rating distributions list zero counts for at most this many values.
pub const MAX_DISTRIBUTION_KEYS: i64 = 1000;

/// The in-memory replay of any number of presentations.
#[derive(Debug, Default, Clone)]
pub struct Replay {
    /// Every identity accepted so far, analytics or not.
    seen: HashSet<(String, i64)>,
    /// (tenantId, presentationId) → state.
    presentations: BTreeMap<(String, String), PresentationState>,
}

impl Replay {
    pub fn new() -> Replay {
        Replay::default()
    }

    /// Adds one event. Returns `false` when its identity was already seen (the
    /// event is then ignored), `true` otherwise.
    pub fn add(&mut self, event: &Event) -> bool {
        if !self.seen.insert((event.stream_id.clone(), event.version)) {
            return false;
        }
        if matches!(event.body, EventBody::NotAnalytics) {
            return true;
        }
        self.presentations
            .entry((event.tenant_id.clone(), event.stream_id.clone()))
            .or_default()
            .apply(event);
        true
    }

    /// Every known presentation as (tenantId, presentationId), sorted.
    pub fn presentation_ids(&self) -> Vec<(String, String)> {
        self.presentations.keys().cloned().collect()
    }

    /// The report of one presentation; `None` when it is unknown or belongs to
    /// another tenant.
    pub fn report(&self, tenant_id: &str, presentation_id: &str) -> Option<PresentationReport> {
        let state = self.state(tenant_id, presentation_id)?;
        Some(Computed::new(state).report(tenant_id, presentation_id))
    }

    /// Every viewer row of one presentation, ordered by viewerId; `None` when
    /// the presentation is unknown or belongs to another tenant.
    pub fn viewers(&self, tenant_id: &str, presentation_id: &str) -> Option<Vec<ViewerRow>> {
        let state = self.state(tenant_id, presentation_id)?;
        Some(Computed::new(state).viewer_rows())
    }

    /// Every presentation row of one tenant, ordered by presentationId.
    pub fn presentations(&self, tenant_id: &str) -> Vec<PresentationRow> {
        self.presentations
            .iter()
            .filter(|((tenant, _), _)| tenant == tenant_id)
            .map(|((tenant, id), state)| {
                PresentationRow::from_report(&Computed::new(state).report(tenant, id))
            })
            .collect()
    }

    fn state(&self, tenant_id: &str, presentation_id: &str) -> Option<&PresentationState> {
        self.presentations
            .get(&(tenant_id.to_string(), presentation_id.to_string()))
    }
}

// ---------------------------------------------------------------------------
// Folded state of one presentation
// ---------------------------------------------------------------------------

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
struct Created {
    presenter: Presenter,
    scheduled_start: i64,
}

#[derive(Debug, Clone, Default)]
struct SessionState {
    /// Lowest-version `ViewerJoined`: the session's viewer and attributes.
    first_join: Option<(i64, crate::contract::ViewerJoined)>,
    /// Earliest `ViewerJoined.occurredAt`.
    start: Option<i64>,
    /// Latest `occurredAt` among heartbeats and leaves.
    last_activity: Option<i64>,
}

#[derive(Debug, Clone)]
struct PollCreatedState {
    occurred_at: i64,
    question: String,
    options: Vec<Choice>,
    multiple_choice: bool,
}

#[derive(Debug, Clone)]
struct Vote {
    version: i64,
    occurred_at: i64,
    option_ids: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct PollState {
    created: Option<(i64, PollCreatedState)>,
    /// Earliest `PollClosed.occurredAt`.
    closed_at: Option<i64>,
    /// viewerId → every vote (the effective one depends on `closed_at`).
    votes: HashMap<String, Vec<Vote>>,
}

#[derive(Debug, Clone)]
struct SurveyCreatedState {
    occurred_at: i64,
    title: String,
    questions: Vec<SurveyQuestion>,
}

#[derive(Debug, Clone, Default)]
struct SurveyState {
    created: Option<(i64, SurveyCreatedState)>,
    /// viewerId → highest-version submission's answers.
    responses: HashMap<String, (i64, Vec<SurveyAnswer>)>,
}

#[derive(Debug, Clone)]
struct AskedState {
    occurred_at: i64,
    /// `None` for an anonymous question: the asker is never stored.
    asked_by: Option<String>,
    text: String,
}

#[derive(Debug, Clone, Default)]
struct QuestionState {
    asked: Option<(i64, AskedState)>,
    /// Highest version among answered (`Answered`) / dismissed (`Dismissed`).
    status: Option<(i64, QuestionStatus)>,
    /// Earliest `QuestionAnswered.occurredAt`.
    first_answered_at: Option<i64>,
    /// viewerId → (version, is upvote) of the highest-version upvote/withdrawal.
    upvotes: HashMap<String, (i64, bool)>,
}

#[derive(Debug, Clone, Default)]
struct PresentationState {
    /// Highest version among `PresentationCreated` and `PresentationRenamed`.
    title: Option<(i64, String)>,
    created: Option<(i64, Created)>,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    sessions: BTreeMap<String, SessionState>,
    /// viewerId → highest-version `ViewerJoined` carrying that viewerId.
    latest_join: BTreeMap<String, (i64, crate::contract::ViewerJoined)>,
    polls: BTreeMap<String, PollState>,
    surveys: BTreeMap<String, SurveyState>,
    questions: BTreeMap<String, QuestionState>,
}

impl PresentationState {
    fn apply(&mut self, e: &Event) {
        let (version, at) = (e.version, e.occurred_at);
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

// ---------------------------------------------------------------------------
// Computing the answers from the folded state
// ---------------------------------------------------------------------------

/// One session as the contract defines it.
struct Session<'a> {
    viewer_id: &'a str,
    joined: &'a crate::contract::ViewerJoined,
    start: i64,
    end: i64,
}

impl Session<'_> {
    /// `max(0, end − start)` in ms.
    fn duration(&self) -> i128 {
        (i128::from(self.end) - i128::from(self.start)).max(0)
    }
}

struct PollResult<'a> {
    created: &'a PollCreatedState,
    poll_id: &'a str,
    closed_at: Option<i64>,
    /// Respondents (viewers whose effective vote has a valid option).
    respondents: BTreeSet<&'a str>,
    /// Votes per option, in `PollCreated` order.
    votes: Vec<i64>,
}

struct SurveyResult<'a> {
    survey_id: &'a str,
    created: &'a SurveyCreatedState,
    state: &'a SurveyState,
    /// Viewers with an effective response.
    responders: BTreeSet<&'a str>,
}

/// Everything derived from one presentation's state, computed once.
struct Computed<'a> {
    state: &'a PresentationState,
    sessions: Vec<Session<'a>>,
    polls: Vec<PollResult<'a>>,
    surveys: Vec<SurveyResult<'a>>,
}

impl<'a> Computed<'a> {
    fn new(state: &'a PresentationState) -> Computed<'a> {
        let sessions = state
            .sessions
            .values()
            .filter_map(|s| {
                let (_, joined) = s.first_join.as_ref()?;
                let start = s.start?;
                let mut end = s.last_activity.unwrap_or(start);
                if let Some(ended) = state.ended_at {
                    end = end.min(ended);
                }
                Some(Session {
                    viewer_id: &joined.viewer_id,
                    joined,
                    start,
                    end,
                })
            })
            .collect();

        let mut polls: Vec<PollResult<'a>> = state
            .polls
            .iter()
            .filter_map(|(poll_id, poll)| {
                let (_, created) = poll.created.as_ref()?;
                Some(compute_poll(poll_id, created, poll))
            })
            .collect();
        polls.sort_by(|a, b| {
            (a.created.occurred_at, a.poll_id).cmp(&(b.created.occurred_at, b.poll_id))
        });

        let mut surveys: Vec<SurveyResult<'a>> = state
            .surveys
            .iter()
            .filter_map(|(survey_id, survey)| {
                let (_, created) = survey.created.as_ref()?;
                Some(SurveyResult {
                    survey_id,
                    created,
                    state: survey,
                    responders: survey.responses.keys().map(String::as_str).collect(),
                })
            })
            .collect();
        surveys.sort_by(|a, b| {
            (a.created.occurred_at, a.survey_id).cmp(&(b.created.occurred_at, b.survey_id))
        });

        Computed {
            state,
            sessions,
            polls,
            surveys,
        }
    }

    fn report(&self, tenant_id: &str, presentation_id: &str) -> PresentationReport {
        let state = self.state;
        PresentationReport {
            presentation_id: presentation_id.to_string(),
            tenant_id: tenant_id.to_string(),
            title: state.title.as_ref().map(|(_, t)| t.clone()),
            presenter: state.created.as_ref().map(|(_, c)| c.presenter.clone()),
            scheduled_start: state
                .created
                .as_ref()
                .map(|(_, c)| format_time(c.scheduled_start)),
            started_at: format_time_opt(state.started_at),
            ended_at: format_time_opt(state.ended_at),
            attendance: self.attendance(),
            polls: self.polls.iter().map(poll_report).collect(),
            surveys: self.surveys.iter().map(survey_report).collect(),
            qna: qna_report(state),
        }
    }

    fn attendance(&self) -> Attendance {
        let viewers: BTreeSet<&str> = self.sessions.iter().map(|s| s.viewer_id).collect();
        let total_ms: i128 = self.sessions.iter().map(Session::duration).sum();
        let unique = count(viewers.len());

        let mut by_device: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut by_country: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut by_department: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for s in &self.sessions {
            let j = s.joined;
            by_device
                .entry(normalize_device(j.device.as_deref()))
                .or_default()
                .insert(s.viewer_id);
            by_country
                .entry(normalize_country(j.country.as_deref()))
                .or_default()
                .insert(s.viewer_id);
            by_department
                .entry(department_or_unknown(j.department.as_deref()))
                .or_default()
                .insert(s.viewer_id);
        }
        let counts = |m: BTreeMap<String, BTreeSet<&str>>| -> BTreeMap<String, i64> {
            m.into_iter().map(|(k, v)| (k, count(v.len()))).collect()
        };

        Attendance {
            unique_viewers: unique,
            sessions: count(self.sessions.len()),
            total_watch_seconds: floor_seconds(total_ms),
            average_watch_seconds: average_seconds_1dp(total_ms, unique).unwrap_or(0.0),
            peak_concurrent_viewers: peak_concurrent(&self.sessions),
            by_device: counts(by_device),
            by_country: counts(by_country),
            by_department: counts(by_department),
        }
    }

    fn viewer_rows(&self) -> Vec<ViewerRow> {
        struct Acc {
            sessions: i64,
            watch_ms: i128,
            first_joined: i64,
            last_seen: i64,
        }
        let mut accs: BTreeMap<&str, Acc> = BTreeMap::new();
        for s in &self.sessions {
            let acc = accs.entry(s.viewer_id).or_insert(Acc {
                sessions: 0,
                watch_ms: 0,
                first_joined: s.start,
                last_seen: s.end,
            });
            acc.sessions += 1;
            acc.watch_ms += s.duration();
            acc.first_joined = acc.first_joined.min(s.start);
            acc.last_seen = acc.last_seen.max(s.end);
        }

        // questionsAsked: reported, non-anonymous questions per asker.
        let mut asked: HashMap<&str, i64> = HashMap::new();
        for q in self.state.questions.values() {
            if let Some((
                _,
                AskedState {
                    asked_by: Some(by), ..
                },
            )) = &q.asked
            {
                *asked.entry(by.as_str()).or_default() += 1;
            }
        }

        accs.into_iter()
            .map(|(viewer_id, acc)| {
                let joined = self.state.latest_join.get(viewer_id).map(|(_, j)| j);
                let polls_answered = self
                    .polls
                    .iter()
                    .filter(|p| p.respondents.contains(viewer_id))
                    .count();
                let surveys_submitted = self
                    .surveys
                    .iter()
                    .filter(|s| s.responders.contains(viewer_id))
                    .count();
                ViewerRow {
                    viewer_id: viewer_id.to_string(),
                    name: normalize_optional_text(joined.and_then(|j| j.name.as_deref())),
                    email: normalize_optional_text(joined.and_then(|j| j.email.as_deref())),
                    department: normalize_department(joined.and_then(|j| j.department.as_deref())),
                    country: normalize_country(joined.and_then(|j| j.country.as_deref())),
                    device: normalize_device(joined.and_then(|j| j.device.as_deref())),
                    sessions: acc.sessions,
                    watch_seconds: floor_seconds(acc.watch_ms),
                    first_joined_at: format_time(acc.first_joined),
                    last_seen_at: format_time(acc.last_seen),
                    polls_answered: count(polls_answered),
                    surveys_submitted: count(surveys_submitted),
                    questions_asked: asked.get(viewer_id).copied().unwrap_or(0),
                }
            })
            .collect()
    }
}

/// Greatest number of distinct viewers having a session with
/// `start ≤ t < end` at one instant `t`; zero-length sessions never count.
fn peak_concurrent(sessions: &[Session<'_>]) -> i64 {
    // (time, 0 = end / 1 = start, viewer): at equal times ends go first, as
    // a session ending at t is no longer there at t.
    let mut points: Vec<(i64, u8, &str)> = Vec::new();
    for s in sessions.iter().filter(|s| s.end > s.start) {
        points.push((s.start, 1, s.viewer_id));
        points.push((s.end, 0, s.viewer_id));
    }
    points.sort_unstable();
    let mut open: HashMap<&str, u32> = HashMap::new();
    let mut present = 0i64;
    let mut peak = 0i64;
    for (_, kind, viewer) in points {
        let n = open.entry(viewer).or_insert(0);
        if kind == 1 {
            *n += 1;
            if *n == 1 {
                present += 1;
                peak = peak.max(present);
            }
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                present -= 1;
            }
        }
    }
    peak
}

/// The valid options of a vote: its optionIds that exist in the poll, each
/// once, in the vote's order; for a single-choice poll only the first.
fn valid_options<'v>(option_ids: &'v [String], poll: &PollCreatedState) -> Vec<&'v str> {
    let mut valid: Vec<&str> = Vec::new();
    for id in option_ids {
        if poll.options.iter().any(|o| &o.id == id) && !valid.contains(&id.as_str()) {
            valid.push(id);
            if !poll.multiple_choice {
                break;
            }
        }
    }
    valid
}

fn compute_poll<'a>(
    poll_id: &'a str,
    created: &'a PollCreatedState,
    poll: &'a PollState,
) -> PollResult<'a> {
    let mut respondents = BTreeSet::new();
    let mut votes = vec![0i64; created.options.len()];
    for (viewer_id, cast) in &poll.votes {
        // Effective vote: the highest version among votes at or before closing.
        let effective = cast
            .iter()
            .filter(|v| poll.closed_at.is_none_or(|closed| v.occurred_at <= closed))
            .max_by_key(|v| v.version);
        let Some(vote) = effective else { continue };
        let valid = valid_options(&vote.option_ids, created);
        if valid.is_empty() {
            continue;
        }
        respondents.insert(viewer_id.as_str());
        for (i, option) in created.options.iter().enumerate() {
            if valid.contains(&option.id.as_str()) {
                votes[i] += 1;
            }
        }
    }
    PollResult {
        created,
        poll_id,
        closed_at: poll.closed_at,
        respondents,
        votes,
    }
}

fn poll_report(p: &PollResult<'_>) -> PollReport {
    PollReport {
        poll_id: p.poll_id.to_string(),
        question: p.created.question.clone(),
        multiple_choice: p.created.multiple_choice,
        closed_at: format_time_opt(p.closed_at),
        respondents: count(p.respondents.len()),
        options: p
            .created
            .options
            .iter()
            .zip(&p.votes)
            .map(|(o, votes)| PollOption {
                option_id: o.id.clone(),
                text: o.text.clone(),
                votes: *votes,
            })
            .collect(),
    }
}

/// The answer a response gives to a question: the first one with its id.
fn answer_to<'a>(answers: &'a [SurveyAnswer], question_id: &str) -> Option<&'a SurveyAnswer> {
    answers.iter().find(|a| a.question_id == question_id)
}

/// Valid choice options of an answer: its optionIds that exist in the
/// question, each once.
fn valid_choices<'a>(answer: &'a SurveyAnswer, question: &SurveyQuestion) -> Vec<&'a str> {
    let mut valid: Vec<&str> = Vec::new();
    for id in answer.option_ids.iter().flatten() {
        if question.options.iter().any(|o| &o.id == id) && !valid.contains(&id.as_str()) {
            valid.push(id);
        }
    }
    valid
}

fn survey_report(s: &SurveyResult<'_>) -> SurveyReport {
    let responses: Vec<&[SurveyAnswer]> = s
        .state
        .responses
        .values()
        .map(|(_, answers)| answers.as_slice())
        .collect();
    let questions = s
        .created
        .questions
        .iter()
        .map(|q| {
            let answers = responses.iter().filter_map(|r| answer_to(r, &q.id));
            let (answered, detail) = match q.kind {
                QuestionKind::Rating => {
                    let mut distribution: BTreeMap<i64, i64> =
                        (1..=q.scale.min(MAX_DISTRIBUTION_KEYS))
                            .map(|k| (k, 0))
                            .collect();
                    let (mut n, mut sum) = (0i64, 0i128);
                    for r in answers.filter_map(|a| a.rating) {
                        if (1..=q.scale).contains(&r) {
                            n += 1;
                            sum += i128::from(r);
                            *distribution.entry(r).or_default() += 1;
                        }
                    }
                    let detail = SurveyQuestionDetail::Rating {
                        average_rating: average_2dp(sum, n),
                        distribution,
                    };
                    (n, detail)
                }
                QuestionKind::Choice => {
                    let mut counts = vec![0i64; q.options.len()];
                    let mut n = 0i64;
                    for a in answers {
                        let valid = valid_choices(a, q);
                        if valid.is_empty() {
                            continue;
                        }
                        n += 1;
                        for (i, o) in q.options.iter().enumerate() {
                            if valid.contains(&o.id.as_str()) {
                                counts[i] += 1;
                            }
                        }
                    }
                    let options = q
                        .options
                        .iter()
                        .zip(counts)
                        .map(|(o, count)| SurveyOptionCount {
                            option_id: o.id.clone(),
                            text: o.text.clone(),
                            count,
                        })
                        .collect();
                    (n, SurveyQuestionDetail::Choice { options })
                }
                QuestionKind::Text => {
                    let n = answers
                        .filter(|a| {
                            a.text
                                .as_deref()
                                .is_some_and(|t| !trim_blanks(t).is_empty())
                        })
                        .count();
                    (count(n), SurveyQuestionDetail::Text)
                }
            };
            SurveyQuestionReport {
                question_id: q.id.clone(),
                text: q.text.clone(),
                answered,
                detail,
            }
        })
        .collect();
    SurveyReport {
        survey_id: s.survey_id.to_string(),
        title: s.created.title.clone(),
        responses: count(responses.len()),
        questions,
    }
}

fn qna_report(state: &PresentationState) -> QnaReport {
    let mut report = QnaReport::default();
    let mut answer_ms: i128 = 0;
    let mut answered_n: i64 = 0;
    // (upvotes, asked at, questionId, …) for the top list.
    let mut ranked: Vec<(i64, i64, &str, &AskedState, QuestionStatus)> = Vec::new();
    for (question_id, q) in &state.questions {
        let Some((_, asked)) = &q.asked else { continue };
        let status = q.status.map_or(QuestionStatus::Open, |(_, s)| s);
        let upvotes = count(q.upvotes.values().filter(|(_, up)| *up).count());
        report.asked += 1;
        report.upvotes += upvotes;
        match status {
            QuestionStatus::Open => report.open += 1,
            QuestionStatus::Answered => {
                report.answered += 1;
                // Status answered implies at least one QuestionAnswered.
                if let Some(first) = q.first_answered_at {
                    answer_ms += (i128::from(first) - i128::from(asked.occurred_at)).max(0);
                    answered_n += 1;
                }
            }
            QuestionStatus::Dismissed => report.dismissed += 1,
        }
        ranked.push((upvotes, asked.occurred_at, question_id, asked, status));
    }
    report.average_seconds_to_answer = average_seconds_1dp(answer_ms, answered_n);
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
    report.top = ranked
        .into_iter()
        .take(TOP_QUESTIONS)
        .map(|(upvotes, _, question_id, asked, status)| TopQuestion {
            question_id: question_id.to_string(),
            text: asked.text.clone(),
            asked_by: asked.asked_by.clone(),
            upvotes,
            status,
        })
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{parse_event, Person, ViewerJoined};
    use serde_json::Value;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/samples/events.jsonl"
    );
    const EXPECTED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/samples/expected.json"
    );

    // ----- helpers ---------------------------------------------------------

    fn assert_json_eq(what: &str, actual: &Value, expected: &Value) {
        let lines = crate::jobs::verify::differences(actual, expected, "actual", "expected");
        assert!(lines.is_empty(), "{what} differs:\n{}", lines.join("\n"));
    }

    fn sample_lines() -> Vec<String> {
        let text = std::fs::read_to_string(SAMPLE).expect("sample events");
        text.lines().map(str::to_string).collect()
    }

    fn replay_lines<'a>(lines: impl IntoIterator<Item = &'a String>) -> Replay {
        let mut replay = Replay::new();
        for line in lines {
            if line.trim().is_empty() {
                continue;
            }
            if let Ok(event) = parse_event(line) {
                replay.add(&event);
            }
        }
        replay
    }

    /// Every answer of a replay, as JSON, for the presentations of `expected`.
    fn answers(replay: &Replay, expected: &Value) -> Value {
        let mut reports = serde_json::Map::new();
        let mut viewers = serde_json::Map::new();
        let mut tenants = BTreeSet::new();
        for (id, report) in expected["reports"].as_object().expect("reports") {
            let tenant = report["tenantId"].as_str().expect("tenantId");
            tenants.insert(tenant.to_string());
            let r = replay.report(tenant, id).expect("known presentation");
            reports.insert(id.clone(), serde_json::to_value(r).expect("report json"));
            let v = replay.viewers(tenant, id).expect("known presentation");
            viewers.insert(id.clone(), serde_json::to_value(v).expect("viewers json"));
        }
        let mut presentations = serde_json::Map::new();
        for tenant in tenants {
            let rows = serde_json::to_value(replay.presentations(&tenant)).expect("rows json");
            presentations.insert(tenant, rows);
        }
        serde_json::json!({"reports": reports, "viewers": viewers, "presentations": presentations})
    }

    fn expected() -> Value {
        let mut expected: Value =
            serde_json::from_str(&std::fs::read_to_string(EXPECTED).expect("expected.json"))
                .expect("expected json");
        // The presentation rows are unordered in expected.json: sort them by id.
        for rows in expected["presentations"]
            .as_object_mut()
            .expect("presentations")
            .values_mut()
        {
            if let Value::Array(rows) = rows {
                rows.sort_by(|a, b| {
                    a["presentationId"]
                        .as_str()
                        .cmp(&b["presentationId"].as_str())
                });
            }
        }
        expected
    }

    fn check_against_expected(replay: &Replay, expected: &Value) {
        let actual = answers(replay, expected);
        for (id, report) in expected["reports"].as_object().expect("reports") {
            assert_json_eq(&format!("reports.{id}"), &actual["reports"][id], report);
        }
        for (id, rows) in expected["viewers"].as_object().expect("viewers") {
            assert_json_eq(&format!("viewers.{id}"), &actual["viewers"][id], rows);
        }
        for (tenant, rows) in expected["presentations"]
            .as_object()
            .expect("presentations")
        {
            assert_json_eq(
                &format!("presentations.{tenant}"),
                &actual["presentations"][tenant],
                rows,
            );
        }
    }

    /// xorshift64*: deterministic shuffles without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    // ----- golden ----------------------------------------------------------

    #[test]
    fn golden_sample_gives_the_expected_answers() {
        let expected = expected();
        let replay = replay_lines(&sample_lines());
        check_against_expected(&replay, &expected);
        // No presentation beyond those of the sample (malformed lines included).
        let ids: Vec<String> = replay
            .presentation_ids()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let mut want: Vec<String> = expected["reports"]
            .as_object()
            .expect("reports")
            .keys()
            .cloned()
            .collect();
        want.sort();
        assert_eq!(ids, want);
    }

    #[test]
    fn golden_sample_is_order_and_duplicate_independent() {
        let expected = expected();
        let lines = sample_lines();
        let reference = answers(&replay_lines(&lines), &expected);
        for seed in [1u64, 7, 42, 2021, 0xDEAD_BEEF] {
            let mut rng = Rng(seed);
            let mut shuffled = lines.clone();
            // Duplicate a random fifth of the lines, then shuffle everything.
            for _ in 0..lines.len() / 5 {
                shuffled.push(lines[rng.below(lines.len())].clone());
            }
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.below(i + 1));
            }
            let replay = replay_lines(&shuffled);
            assert_json_eq(
                &format!("seed {seed}"),
                &answers(&replay, &expected),
                &reference,
            );
            check_against_expected(&replay, &expected);
        }
    }

    #[test]
    fn other_tenant_and_unknown_presentations_are_not_found() {
        let replay = replay_lines(&sample_lines());
        assert!(replay.report("globex", "prs-acm-0000").is_none());
        assert!(replay.viewers("globex", "prs-acm-0000").is_none());
        assert!(replay.report("acme", "nope").is_none());
        assert!(replay.presentations("nobody").is_empty());
    }

    // ----- hand-made events ------------------------------------------------

    fn ev(version: i64, at: i64, body: EventBody) -> Event {
        Event {
            stream_id: "p".into(),
            version,
            event_type: "Test".into(),
            occurred_at: at,
            tenant_id: "t".into(),
            schema_version: 1,
            content_hash: [0; 32],
            body,
        }
    }

    fn replay_of(events: &[Event]) -> Replay {
        let mut replay = Replay::new();
        for e in events {
            replay.add(e);
        }
        replay
    }

    fn report_of(events: &[Event]) -> PresentationReport {
        replay_of(events).report("t", "p").expect("presentation")
    }

    fn joined(viewer: &str, session: &str) -> EventBody {
        EventBody::ViewerJoined(ViewerJoined {
            viewer_id: viewer.into(),
            session_id: session.into(),
            name: None,
            email: None,
            department: None,
            country: None,
            region: None,
            device: None,
        })
    }

    fn heartbeat(viewer: &str, session: &str) -> EventBody {
        EventBody::ViewerHeartbeat {
            viewer_id: viewer.into(),
            session_id: session.into(),
        }
    }

    fn left(viewer: &str, session: &str) -> EventBody {
        EventBody::ViewerLeft {
            viewer_id: viewer.into(),
            session_id: session.into(),
        }
    }

    fn choices(ids: &[&str]) -> Vec<Choice> {
        ids.iter()
            .map(|id| Choice {
                id: id.to_string(),
                text: id.to_uppercase(),
            })
            .collect()
    }

    fn poll(id: &str, multiple: bool, options: &[&str]) -> EventBody {
        EventBody::PollCreated {
            poll_id: id.into(),
            question: "Q?".into(),
            options: choices(options),
            multiple_choice: multiple,
        }
    }

    fn vote(poll: &str, viewer: &str, options: &[&str]) -> EventBody {
        EventBody::PollVoted {
            poll_id: poll.into(),
            viewer_id: viewer.into(),
            option_ids: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    fn asked(q: &str, viewer: &str, anonymous: bool) -> EventBody {
        EventBody::QuestionAsked {
            question_id: q.into(),
            viewer_id: viewer.into(),
            text: format!("text of {q}"),
            anonymous,
        }
    }

    fn answered(q: &str) -> EventBody {
        EventBody::QuestionAnswered {
            question_id: q.into(),
            answered_by: Person {
                id: "e-1".into(),
                name: "E".into(),
            },
            method: "live".into(),
        }
    }

    fn upvote(q: &str, viewer: &str, up: bool) -> EventBody {
        if up {
            EventBody::QuestionUpvoted {
                question_id: q.into(),
                viewer_id: viewer.into(),
            }
        } else {
            EventBody::QuestionUpvoteWithdrawn {
                question_id: q.into(),
                viewer_id: viewer.into(),
            }
        }
    }

    fn rating(q: &str, r: Option<i64>) -> SurveyAnswer {
        SurveyAnswer {
            question_id: q.into(),
            rating: r,
            option_ids: None,
            text: None,
        }
    }

    fn survey_created() -> EventBody {
        EventBody::SurveyCreated {
            survey_id: "s".into(),
            title: "S".into(),
            questions: vec![
                SurveyQuestion {
                    id: "r".into(),
                    kind: QuestionKind::Rating,
                    text: "Rate".into(),
                    scale: 5,
                    options: vec![],
                },
                SurveyQuestion {
                    id: "c".into(),
                    kind: QuestionKind::Choice,
                    text: "Pick".into(),
                    scale: 5,
                    options: choices(&["a", "b"]),
                },
                SurveyQuestion {
                    id: "x".into(),
                    kind: QuestionKind::Text,
                    text: "Say".into(),
                    scale: 5,
                    options: vec![],
                },
            ],
        }
    }

    fn submitted(viewer: &str, answers: Vec<SurveyAnswer>) -> EventBody {
        EventBody::SurveySubmitted {
            survey_id: "s".into(),
            viewer_id: viewer.into(),
            answers,
        }
    }

    // ----- rules -----------------------------------------------------------

    #[test]
    fn duplicate_identity_first_wins_and_non_analytics_ignored() {
        let mut replay = Replay::new();
        assert!(replay.add(&ev(1, 0, EventBody::NotAnalytics)));
        assert!(
            replay.report("t", "p").is_none(),
            "non-analytics creates nothing"
        );
        // Same identity, different content: ignored.
        assert!(!replay.add(&ev(1, 0, EventBody::PresentationStarted)));
        assert!(replay.report("t", "p").is_none());
        assert!(replay.add(&ev(2, 5, EventBody::PresentationStarted)));
        let r = replay
            .report("t", "p")
            .expect("exists without PresentationCreated");
        assert_eq!(r.title, None);
        assert_eq!(r.presenter, None);
        assert_eq!(r.started_at.as_deref(), Some("1970-01-01T00:00:00.005Z"));
        assert_eq!(
            replay.presentation_ids(),
            vec![("t".to_string(), "p".to_string())]
        );
    }

    #[test]
    fn title_from_highest_version_of_created_and_renamed() {
        let created = EventBody::PresentationCreated {
            title: "Created".into(),
            presenter: Person {
                id: "e".into(),
                name: "E".into(),
            },
            scheduled_start: 1000,
            timezone: "UTC".into(),
        };
        let renamed = EventBody::PresentationRenamed {
            title: "Renamed".into(),
        };
        // Rename arrives before the creation but has the higher version.
        let r = report_of(&[ev(5, 0, renamed.clone()), ev(1, 0, created.clone())]);
        assert_eq!(r.title.as_deref(), Some("Renamed"));
        assert_eq!(
            r.scheduled_start.as_deref(),
            Some("1970-01-01T00:00:01.000Z")
        );
        let r = report_of(&[ev(1, 0, renamed), ev(2, 0, created)]);
        assert_eq!(r.title.as_deref(), Some("Created"));
    }

    #[test]
    fn leave_before_join_and_end_clamp() {
        let events = [
            ev(3, 50_000, left("u", "s1")),
            ev(2, 40_000, heartbeat("u", "s1")),
            ev(1, 10_000, joined("u", "s1")),
            // Heartbeats without any join are no session.
            ev(4, 10_000, heartbeat("v", "s2")),
            ev(5, 60_000, heartbeat("v", "s2")),
        ];
        let r = report_of(&events);
        assert_eq!(r.attendance.sessions, 1);
        assert_eq!(r.attendance.unique_viewers, 1);
        assert_eq!(r.attendance.total_watch_seconds, 40);
        assert_eq!(r.attendance.peak_concurrent_viewers, 1);
        // Ended at 30 s: the session is clamped to [10 s, 30 s].
        let mut events = events.to_vec();
        events.push(ev(6, 30_000, EventBody::PresentationEnded));
        let replay = replay_of(&events);
        let r = replay.report("t", "p").expect("report");
        assert_eq!(r.attendance.total_watch_seconds, 20);
        let rows = replay.viewers("t", "p").expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].last_seen_at, "1970-01-01T00:00:30.000Z");
        assert_eq!(rows[0].first_joined_at, "1970-01-01T00:00:10.000Z");
        // Ended before the join: duration 0, never negative.
        let r = report_of(&[
            ev(1, 10_000, joined("u", "s1")),
            ev(2, 5_000, EventBody::PresentationEnded),
        ]);
        assert_eq!(r.attendance.total_watch_seconds, 0);
        assert_eq!(r.attendance.average_watch_seconds, 0.0);
        assert_eq!(r.attendance.peak_concurrent_viewers, 0);
    }

    #[test]
    fn zero_length_sessions_never_count_in_peak() {
        let events = [
            // u: [0, 10 s); v: zero length at 5 s; w: starts when u ends.
            ev(1, 0, joined("u", "s1")),
            ev(2, 10_000, left("u", "s1")),
            ev(3, 5_000, joined("v", "s2")),
            ev(4, 10_000, joined("w", "s3")),
            ev(5, 20_000, left("w", "s3")),
            // u again on a second device, overlapping: still one viewer.
            ev(6, 2_000, joined("u", "s4")),
            ev(7, 8_000, heartbeat("u", "s4")),
        ];
        let r = report_of(&events);
        assert_eq!(r.attendance.peak_concurrent_viewers, 1);
        assert_eq!(r.attendance.sessions, 4);
        assert_eq!(r.attendance.unique_viewers, 3);
        // 10 + 0 + 10 + 6 = 26 s over 3 viewers = 8.666… → 8.7
        assert_eq!(r.attendance.total_watch_seconds, 26);
        assert_eq!(r.attendance.average_watch_seconds, 8.7);
        let r = report_of(&[
            ev(1, 0, joined("u", "s1")),
            ev(2, 10_000, left("u", "s1")),
            ev(3, 9_999, joined("v", "s2")),
            ev(4, 10_001, left("v", "s2")),
        ]);
        assert_eq!(r.attendance.peak_concurrent_viewers, 2);
    }

    #[test]
    fn session_attributes_from_lowest_version_join_and_row_from_highest() {
        let join = |viewer: &str, session: &str, device: &str, dept: Option<&str>| {
            EventBody::ViewerJoined(ViewerJoined {
                viewer_id: viewer.into(),
                session_id: session.into(),
                name: Some("N".into()),
                email: Some(String::new()),
                department: dept.map(str::to_string),
                country: Some("fr".into()),
                region: None,
                device: Some(device.into()),
            })
        };
        let replay = replay_of(&[
            ev(3, 3_000, join("u", "s1", "Mobile", Some("  "))),
            ev(1, 1_000, join("u", "s1", "TV", Some(" Sales "))),
            ev(2, 2_000, join("u", "s2", "desktop", None)),
        ]);
        let r = replay.report("t", "p").expect("report");
        assert_eq!(r.attendance.sessions, 2);
        let keys = |m: &BTreeMap<String, i64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&r.attendance.by_device), ["desktop=1", "tv=1"]);
        assert_eq!(keys(&r.attendance.by_department), ["Sales=1", "unknown=1"]);
        assert_eq!(keys(&r.attendance.by_country), ["FR=1"]);
        let rows = replay.viewers("t", "p").expect("rows");
        assert_eq!(rows[0].device, "mobile");
        assert_eq!(rows[0].department, None);
        assert_eq!(rows[0].email, None);
        assert_eq!(rows[0].name.as_deref(), Some("N"));
        assert_eq!(rows[0].country, "FR");
        assert_eq!(rows[0].sessions, 2);
        assert_eq!(rows[0].first_joined_at, "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn vote_after_close_is_ignored_entirely() {
        let events = [
            ev(1, 0, poll("p1", false, &["a", "b"])),
            ev(2, 1_000, vote("p1", "u", &["a"])),
            ev(4, 3_000, vote("p1", "u", &["b"])), // after closing: replaces nothing
            ev(
                3,
                2_000,
                EventBody::PollClosed {
                    poll_id: "p1".into(),
                },
            ),
            ev(
                5,
                2_500,
                EventBody::PollClosed {
                    poll_id: "p1".into(),
                },
            ),
            ev(6, 3_000, vote("p1", "v", &["b"])), // only a late vote: no vote
            ev(7, 2_000, vote("p1", "w", &["b"])), // exactly at closing: counts
        ];
        let r = report_of(&events);
        let p = &r.polls[0];
        assert_eq!(p.closed_at.as_deref(), Some("1970-01-01T00:00:02.000Z"));
        assert_eq!(p.respondents, 2);
        assert_eq!((p.options[0].votes, p.options[1].votes), (1, 1));
        // Without closing, the highest version counts.
        let r = report_of(&[events[0].clone(), events[1].clone(), events[2].clone()]);
        assert_eq!(
            (r.polls[0].options[0].votes, r.polls[0].options[1].votes),
            (0, 1)
        );
    }

    #[test]
    fn single_choice_counts_first_valid_option_and_votes_wait_for_the_poll() {
        let mut replay = Replay::new();
        replay.add(&ev(2, 1_000, vote("p1", "u", &["zz", "b", "a"])));
        replay.add(&ev(3, 1_000, vote("p1", "v", &["zz"])));
        replay.add(&ev(4, 1_000, vote("p2", "u", &["b", "b", "a", "q"])));
        let r = replay.report("t", "p").expect("report");
        assert!(r.polls.is_empty(), "no PollCreated yet");
        replay.add(&ev(1, 0, poll("p1", false, &["a", "b"])));
        replay.add(&ev(5, 0, poll("p2", true, &["a", "b"])));
        let r = replay.report("t", "p").expect("report");
        let votes = |p: &PollReport| p.options.iter().map(|o| o.votes).collect::<Vec<_>>();
        assert_eq!(r.polls[0].poll_id, "p1");
        assert_eq!(votes(&r.polls[0]), [0, 1]);
        assert_eq!(r.polls[0].respondents, 1);
        assert_eq!(votes(&r.polls[1]), [1, 1]);
        assert_eq!(r.polls[1].respondents, 1);
        let rows = replay_of(&[
            ev(1, 0, poll("p1", false, &["a", "b"])),
            ev(2, 0, vote("p1", "u", &["a"])),
            ev(3, 0, vote("p1", "v", &["zz"])),
            ev(4, 0, joined("u", "s1")),
            ev(5, 0, joined("v", "s2")),
        ])
        .viewers("t", "p")
        .expect("rows");
        assert_eq!(rows[0].polls_answered, 1);
        assert_eq!(rows[1].polls_answered, 0);
    }

    #[test]
    fn polls_ordered_by_creation_time_then_id() {
        let r = report_of(&[
            ev(1, 5, poll("b", false, &["a"])),
            ev(2, 5, poll("a", false, &["a"])),
            ev(3, 1, poll("c", false, &["a"])),
        ]);
        let ids: Vec<&str> = r.polls.iter().map(|p| p.poll_id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
    }

    #[test]
    fn survey_rules() {
        let choice = |ids: &[&str]| SurveyAnswer {
            question_id: "c".into(),
            rating: None,
            option_ids: Some(ids.iter().map(|i| i.to_string()).collect()),
            text: None,
        };
        let text = |t: &str| SurveyAnswer {
            question_id: "x".into(),
            rating: None,
            option_ids: None,
            text: Some(t.into()),
        };
        let events = [
            ev(1, 0, survey_created()),
            // u: first answer to r counts (4), the duplicated 1 does not;
            // answer to an unknown question is ignored.
            ev(
                2,
                0,
                submitted(
                    "u",
                    vec![
                        rating("r", Some(4)),
                        rating("r", Some(1)),
                        rating("zz", Some(3)),
                        choice(&["a", "a", "b", "q"]),
                        text(" hi "),
                    ],
                ),
            ),
            // v: rating 0 and a blank text are invalid; choice only unknown ids.
            ev(
                3,
                0,
                submitted("v", vec![rating("r", Some(0)), choice(&["q"]), text("  ")]),
            ),
            // w: first submission replaced by the later one (rating 6 invalid).
            ev(4, 0, submitted("w", vec![rating("r", Some(5))])),
            ev(
                5,
                0,
                submitted("w", vec![rating("r", Some(6)), choice(&["b"])]),
            ),
            // y: first answer to r is invalid, so r is unanswered.
            ev(
                6,
                0,
                submitted("y", vec![rating("r", None), rating("r", Some(3))]),
            ),
            // z: 5 → average (4 + 5) / 2 = 4.5
            ev(7, 0, submitted("z", vec![rating("r", Some(5))])),
        ];
        let r = report_of(&events);
        let s = serde_json::to_value(&r.surveys[0]).expect("json");
        assert_eq!(
            s,
            serde_json::json!({
                "surveyId": "s", "title": "S", "responses": 5,
                "questions": [
                    {"questionId": "r", "kind": "rating", "text": "Rate", "answered": 2,
                     "averageRating": 4.5,
                     "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}},
                    {"questionId": "c", "kind": "choice", "text": "Pick", "answered": 2,
                     "options": [{"optionId": "a", "text": "A", "count": 1},
                                 {"optionId": "b", "text": "B", "count": 2}]},
                    {"questionId": "x", "kind": "text", "text": "Say", "answered": 1}
                ]
            })
        );
        // Submissions before the SurveyCreated are kept.
        let late = report_of(&[events[1].clone(), events[6].clone(), events[0].clone()]);
        assert_eq!(late.surveys[0].responses, 2);
        let none = report_of(&[ev(1, 0, survey_created())]);
        match &none.surveys[0].questions[0].detail {
            SurveyQuestionDetail::Rating { average_rating, .. } => {
                assert_eq!(*average_rating, None)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rating_average_rounds_half_away_from_zero() {
        // 1 + 2 + 2 + 2 + 2 + 2 + 2 + 2 = 15 over 8 = 1.875 → 1.88
        let mut events = vec![ev(1, 0, survey_created())];
        for (i, r) in [1, 2, 2, 2, 2, 2, 2, 2].into_iter().enumerate() {
            let v = i as i64 + 2;
            events.push(ev(
                v,
                0,
                submitted(&format!("u{v}"), vec![rating("r", Some(r))]),
            ));
        }
        let r = report_of(&events);
        match &r.surveys[0].questions[0].detail {
            SurveyQuestionDetail::Rating { average_rating, .. } => {
                assert_eq!(*average_rating, Some(1.88))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn qna_rules() {
        let events = [
            ev(1, 0, asked("q1", "u1", false)),
            ev(2, 1_000, asked("q2", "u2", true)),
            ev(3, 2_000, asked("q3", "u1", false)),
            // q1: answered then dismissed (higher version) → dismissed.
            ev(10, 5_000, answered("q1")),
            ev(
                11,
                6_000,
                EventBody::QuestionDismissed {
                    question_id: "q1".into(),
                },
            ),
            // q2: dismissed then answered twice → answered; earliest answer
            // 1_050 ms after asking → 1.05 s → 1.1
            ev(12, 2_050, answered("q2")),
            ev(
                13,
                1_500,
                EventBody::QuestionDismissed {
                    question_id: "q2".into(),
                },
            ),
            ev(14, 9_000, answered("q2")),
            // q3: answered before asked → clamped at 0.
            ev(15, 1_000, answered("q3")),
            // Upvotes: q1 by a, b; b withdraws (higher version); c upvotes twice.
            ev(20, 0, upvote("q1", "a", true)),
            ev(22, 0, upvote("q1", "b", false)),
            ev(21, 0, upvote("q1", "b", true)),
            ev(23, 0, upvote("q2", "c", true)),
            ev(24, 0, upvote("q2", "c", true)),
            ev(25, 0, upvote("q2", "d", true)),
            // Withdrawn then upvoted again: counts.
            ev(26, 0, upvote("q3", "a", false)),
            ev(27, 0, upvote("q3", "a", true)),
            // A question never asked: its events do not count.
            ev(30, 0, upvote("q9", "a", true)),
            ev(31, 0, answered("q9")),
        ];
        let r = report_of(&events);
        let q = &r.qna;
        assert_eq!(
            (q.asked, q.open, q.answered, q.dismissed, q.upvotes),
            (3, 0, 2, 1, 4)
        );
        // (1.05 + 0) / 2 = 0.525 → 0.5
        assert_eq!(q.average_seconds_to_answer, Some(0.5));
        let top: Vec<(&str, i64, Option<&str>, QuestionStatus)> = q
            .top
            .iter()
            .map(|t| {
                (
                    t.question_id.as_str(),
                    t.upvotes,
                    t.asked_by.as_deref(),
                    t.status,
                )
            })
            .collect();
        assert_eq!(
            top,
            [
                ("q2", 2, None, QuestionStatus::Answered),
                ("q1", 1, Some("u1"), QuestionStatus::Dismissed),
                ("q3", 1, Some("u1"), QuestionStatus::Answered),
            ]
        );
        let v = serde_json::to_value(&q.top[0]).expect("json");
        assert_eq!(v["askedBy"], Value::Null);
        assert_eq!(v["status"], "answered");
        let only_q2 = report_of(&[events[1].clone(), events[5].clone()]);
        assert_eq!(only_q2.qna.average_seconds_to_answer, Some(1.1));
        let none = report_of(&[events[0].clone()]);
        assert_eq!(none.qna.average_seconds_to_answer, None);
        assert_eq!(none.qna.open, 1);
    }

    #[test]
    fn top_is_at_most_ten_ordered_by_upvotes_time_id() {
        let mut events = Vec::new();
        let mut v = 0;
        for i in 0..12 {
            v += 1;
            // All asked at the same time except q11, asked first.
            let at = if i == 11 { -1 } else { 0 };
            events.push(ev(v, at, asked(&format!("q{i:02}"), "u", false)));
        }
        v += 1;
        events.push(ev(v, 0, upvote("q05", "a", true)));
        let r = report_of(&events);
        let ids: Vec<&str> = r.qna.top.iter().map(|t| t.question_id.as_str()).collect();
        assert_eq!(
            ids,
            ["q05", "q11", "q00", "q01", "q02", "q03", "q04", "q06", "q07", "q08"]
        );
    }

    #[test]
    fn viewer_engagement_counts() {
        let replay = replay_of(&[
            ev(1, 0, joined("u", "s1")),
            ev(2, 0, asked("q1", "u", false)),
            ev(3, 0, asked("q2", "u", true)),
            ev(4, 0, asked("q3", "u", false)),
            ev(5, 0, survey_created()),
            ev(6, 0, submitted("u", vec![])),
            // A survey whose creation is missing does not count.
            ev(
                7,
                0,
                EventBody::SurveySubmitted {
                    survey_id: "other".into(),
                    viewer_id: "u".into(),
                    answers: vec![],
                },
            ),
        ]);
        let rows = replay.viewers("t", "p").expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].questions_asked, 2);
        assert_eq!(rows[0].surveys_submitted, 1);
        assert_eq!(rows[0].polls_answered, 0);
        assert_eq!(rows[0].watch_seconds, 0);
        let list = replay.presentations("t");
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].questions, list[0].surveys, list[0].polls),
            (3, 1, 0)
        );
    }

    #[test]
    fn tenants_are_separate() {
        let mut other = ev(1, 0, joined("u", "s1"));
        other.tenant_id = "t2".into();
        other.stream_id = "p2".into();
        let replay = replay_of(&[ev(1, 0, joined("u", "s1")), other]);
        assert!(replay.report("t", "p2").is_none());
        assert!(replay.report("t2", "p").is_none());
        assert_eq!(replay.presentations("t").len(), 1);
        assert_eq!(replay.presentations("t2")[0].presentation_id, "p2");
    }

    #[test]
    fn extreme_values_never_panic() {
        let mut events = vec![
            ev(1, i64::MIN, joined("u", "s1")),
            ev(2, i64::MAX, heartbeat("u", "s1")),
            ev(3, i64::MAX, joined("v", "s2")),
            ev(4, i64::MIN, asked("q", "u", false)),
            ev(5, i64::MAX, answered("q")),
            ev(
                6,
                0,
                EventBody::SurveyCreated {
                    survey_id: "s".into(),
                    title: "S".into(),
                    questions: vec![
                        SurveyQuestion {
                            id: "big".into(),
                            kind: QuestionKind::Rating,
                            text: String::new(),
                            scale: i64::MAX,
                            options: vec![],
                        },
                        SurveyQuestion {
                            id: "neg".into(),
                            kind: QuestionKind::Rating,
                            text: String::new(),
                            scale: -3,
                            options: vec![],
                        },
                    ],
                },
            ),
            ev(
                7,
                0,
                submitted(
                    "u",
                    vec![rating("big", Some(i64::MAX)), rating("neg", Some(1))],
                ),
            ),
            ev(i64::MAX, i64::MAX, EventBody::PresentationEnded),
        ];
        events.push(ev(
            8,
            0,
            submitted("v", vec![rating("big", Some(i64::MAX))]),
        ));
        let replay = replay_of(&events);
        let r = replay.report("t", "p").expect("report");
        let _ = serde_json::to_string(&r).expect("json");
        let _ = replay.viewers("t", "p").expect("rows");
        let _ = replay.presentations("t");
        assert_eq!(r.surveys[0].questions[0].answered, 2);
        assert_eq!(r.surveys[0].questions[1].answered, 0);
    }
}
