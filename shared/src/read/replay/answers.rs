//! Computing the answers from one presentation's folded state, as the
//! contract defines them: sessions, peaks, effective votes and responses,
//! Q&A.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::contract::{
    average_2dp, average_seconds_1dp, count, department_or_unknown, floor_seconds, format_time,
    format_time_opt, normalize_country, normalize_department, normalize_device,
    normalize_optional_text, trim_blanks, Attendance, PollOption, PollReport, PresentationReport,
    QnaReport, QuestionKind, QuestionStatus, SurveyAnswer, SurveyOptionCount, SurveyQuestion,
    SurveyQuestionDetail, SurveyQuestionReport, SurveyReport, Timeline, TimelineBucket,
    TopQuestion, ViewerRow, DEFAULT_BUCKET_SECONDS, LIVE_CUT_OFF_MS, TOP_QUESTIONS,
};
use crate::contract::{div_round_half_away, timeline_buckets, EngagementWeights};

use super::state::{
    AskedState, PollCreatedState, PollState, PresentationState, SurveyCreatedState, SurveyState,
};
use super::MAX_DISTRIBUTION_KEYS;

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
pub(super) struct Computed<'a> {
    state: &'a PresentationState,
    /// The tenant's erased viewers (ANALYTICS.md §8).
    erased: BTreeSet<&'a str>,
    sessions: Vec<Session<'a>>,
    polls: Vec<PollResult<'a>>,
    surveys: Vec<SurveyResult<'a>>,
    /// The tenant's engagement weights (§5).
    weights: EngagementWeights,
}

impl<'a> Computed<'a> {
    pub(super) fn new(
        state: &'a PresentationState,
        erased: BTreeSet<&'a str>,
        weights: EngagementWeights,
    ) -> Computed<'a> {
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
            erased,
            sessions,
            polls,
            surveys,
            weights,
        }
    }

    pub(super) fn report(&self, tenant_id: &str, presentation_id: &str) -> PresentationReport {
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
            qna: qna_report(state, &self.erased),
            data_through: format_time_opt(state.data_through),
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

    pub(super) fn viewer_rows(&self) -> Vec<ViewerRow> {
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

        // questionsAsked: reported, non-anonymous questions per asker (an
        // erased viewer's count as anonymous).
        let mut asked: HashMap<&str, i64> = HashMap::new();
        for q in self.state.questions.values() {
            if let Some((
                _,
                AskedState {
                    asked_by: Some(by), ..
                },
            )) = &q.asked
            {
                if !self.erased.contains(by.as_str()) {
                    *asked.entry(by.as_str()).or_default() += 1;
                }
            }
        }

        // upvotesGiven: questions that count, upvoted by the viewer's
        // highest-version upvote event.
        let mut upvoted: HashMap<&str, i64> = HashMap::new();
        for q in self.state.questions.values().filter(|q| q.asked.is_some()) {
            for (viewer, (_, up)) in &q.upvotes {
                if *up {
                    *upvoted.entry(viewer.as_str()).or_default() += 1;
                }
            }
        }
        let length = self.length_ms();
        let asked_any = self.state.questions.values().any(|q| q.asked.is_some());

        accs.into_iter()
            .map(|(viewer_id, acc)| {
                let joined = self.state.latest_join.get(viewer_id).map(|(_, j)| j);
                // An erased viewer's name and email are gone (§8).
                let erased = self.erased.contains(viewer_id);
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
                let mut row = ViewerRow {
                    viewer_id: viewer_id.to_string(),
                    name: normalize_optional_text(
                        joined.filter(|_| !erased).and_then(|j| j.name.as_deref()),
                    ),
                    email: normalize_optional_text(
                        joined.filter(|_| !erased).and_then(|j| j.email.as_deref()),
                    ),
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
                    upvotes_given: upvoted.get(viewer_id).copied().unwrap_or(0),
                    engagement_score: 0,
                };
                row.engagement_score = self.score(&row, acc.watch_ms, length, asked_any);
                row
            })
            .collect()
    }
}

impl Computed<'_> {
    /// §5's `L`: `endedAt − startedAt` when both are known, otherwise the
    /// latest last end minus the earliest first start of the counted
    /// sessions (0 without).
    fn length_ms(&self) -> i128 {
        if let (Some(started), Some(ended)) = (self.state.started_at, self.state.ended_at) {
            return i128::from(ended) - i128::from(started);
        }
        let counted = self.sessions.iter().filter(|s| s.end > s.start);
        match (
            counted.clone().map(|s| s.start).min(),
            counted.map(|s| s.end).max(),
        ) {
            (Some(first), Some(last)) => i128::from(last) - i128::from(first),
            _ => 0,
        }
    }

    /// The engagement score of a row (§5), with exact fractions.
    fn score(&self, row: &ViewerRow, watch_ms: i128, length: i128, asked_any: bool) -> i64 {
        let w = self.weights;
        let mut included: Vec<(u8, Fraction)> = Vec::new();
        if length > 0 {
            let ratio = Fraction::new(watch_ms, length).min_one();
            included.push((w.watch, ratio));
        }
        if !self.polls.is_empty() {
            let polls = i128::from(count(self.polls.len()));
            included.push((w.polls, Fraction::new(row.polls_answered.into(), polls)));
        }
        if !self.surveys.is_empty() {
            let surveys = i128::from(count(self.surveys.len()));
            included.push((
                w.surveys,
                Fraction::new(row.surveys_submitted.into(), surveys),
            ));
        }
        if asked_any {
            let given = i128::from(row.questions_asked) + i128::from(row.upvotes_given);
            included.push((w.qna, Fraction::new(given, 2).min_one()));
        }
        let total: i128 = included.iter().map(|(w, _)| i128::from(*w)).sum();
        if total == 0 {
            return 0;
        }
        let sum = included
            .iter()
            .fold(Fraction::new(0, 1), |acc, (w, r)| {
                acc.add(&r.times(i128::from(*w)))
            })
            .times(100);
        div_round_half_away(sum.numerator, sum.denominator * total)
            .and_then(|s| i64::try_from(s).ok())
            .unwrap_or(0)
    }

    /// The attendance timeline (§4), bucket by bucket as the contract words
    /// it: distinct viewers per predicate, no cleverness.
    pub(super) fn timeline(&self, tenant_id: &str, presentation_id: &str) -> Timeline {
        let counted: Vec<&Session> = self.sessions.iter().filter(|s| s.end > s.start).collect();
        // viewer → (first start, last end) over their counted sessions.
        let mut span: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for s in &counted {
            let e = span.entry(s.viewer_id).or_insert((s.start, s.end));
            *e = (e.0.min(s.start), e.1.max(s.end));
        }
        let mut timeline = Timeline {
            presentation_id: presentation_id.to_string(),
            tenant_id: tenant_id.to_string(),
            bucket_seconds: DEFAULT_BUCKET_SECONDS,
            from: None,
            to: None,
            at_end: 0,
            data_through: format_time_opt(self.state.data_through),
            buckets: Vec::new(),
        };
        let (Some(first), Some(last)) = (
            span.values().map(|s| s.0).min(),
            span.values().map(|s| s.1).max(),
        ) else {
            return timeline;
        };
        let (w, from, to) = timeline_buckets(first, last);
        let cut_off = self.state.ended_at.unwrap_or(last - LIVE_CUT_OFF_MS);
        timeline.bucket_seconds = w / 1000;
        timeline.from = Some(format_time(from));
        timeline.to = Some(format_time(to));
        timeline.at_end = count(span.values().filter(|s| s.1 >= cut_off).count());
        let mut t = from;
        while t < to {
            let viewers: BTreeSet<&str> = counted
                .iter()
                .filter(|s| s.start < t + w && s.end > t)
                .map(|s| s.viewer_id)
                .collect();
            timeline.buckets.push(TimelineBucket {
                at: format_time(t),
                viewers: count(viewers.len()),
                joined: count(span.values().filter(|s| t <= s.0 && s.0 < t + w).count()),
                left: count(
                    span.values()
                        .filter(|s| t < s.1 && s.1 <= t + w && s.1 < cut_off)
                        .count(),
                ),
            });
            t += w;
        }
        timeline
    }
}

/// A non-negative fraction, kept reduced.
#[derive(Debug, Clone, Copy)]
struct Fraction {
    numerator: i128,
    denominator: i128,
}

impl Fraction {
    fn new(numerator: i128, denominator: i128) -> Fraction {
        let g = gcd(numerator, denominator).max(1);
        Fraction {
            numerator: numerator / g,
            denominator: denominator / g,
        }
    }

    fn min_one(self) -> Fraction {
        if self.numerator > self.denominator {
            Fraction::new(1, 1)
        } else {
            self
        }
    }

    fn times(self, factor: i128) -> Fraction {
        Fraction::new(self.numerator * factor, self.denominator)
    }

    fn add(&self, other: &Fraction) -> Fraction {
        Fraction::new(
            self.numerator * other.denominator + other.numerator * self.denominator,
            self.denominator * other.denominator,
        )
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
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

fn qna_report(state: &PresentationState, erased: &BTreeSet<&str>) -> QnaReport {
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
            asked_by: asked
                .asked_by
                .clone()
                .filter(|by| !erased.contains(by.as_str())),
            upvotes,
            status,
        })
        .collect();
    report
}
