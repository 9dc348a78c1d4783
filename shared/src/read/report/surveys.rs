//! The report's surveys: their definitions (questions, choice options), then
//! the effective responses, their first answers and chosen options, folded
//! in Rust (`SurveyFold`).

use std::collections::{BTreeMap, HashMap};

use mysql::prelude::Queryable;

use crate::contract::{
    average_2dp, SurveyOptionCount, SurveyQuestionDetail, SurveyQuestionReport, SurveyReport,
};
use crate::read::error::AnalyticsError;
use crate::read::replay::MAX_DISTRIBUTION_KEYS;
use crate::read::sql::{
    bytes, bytes_at, bytes_literal, case_of, fetch, non_blank, stream, take, take_string, Scope,
};

/// An option of a choice question.
struct ChoiceDim {
    position: i64,
    option_id: String,
    text: String,
}

struct QuestionDim {
    position: i64,
    question_id: String,
    kind: String,
    text: String,
    scale: i64,
}

pub(super) fn surveys(
    conn: &mut impl Queryable,
    scope: &Scope,
    key: u64,
) -> Result<Vec<SurveyReport>, AnalyticsError> {
    let sql = format!(
        "SELECT d.survey_id, d.title FROM dim_presentation p \
         JOIN dim_survey d ON d.presentation_key = p.presentation_key \
         WHERE {} AND d.created_version IS NOT NULL \
         ORDER BY d.created_at_ms, {}",
        scope.condition,
        bytes("d.survey_id")
    );
    let mut surveys = Vec::new();
    for mut row in fetch(conn, &sql, "reading surveys")? {
        surveys.push((
            SurveyReport {
                survey_id: take_string(&mut row, 0)?,
                title: take_string(&mut row, 1)?,
                responses: 0,
                questions: Vec::new(),
            },
            Vec::<QuestionDim>::new(),
        ));
    }
    if surveys.is_empty() {
        return Ok(Vec::new());
    }
    let index: HashMap<String, usize> = surveys
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.survey_id.clone(), i))
        .collect();

    // The questions, in SurveyCreated order.
    let sql = format!(
        "SELECT d.survey_id, q.position, q.question_id, q.kind, q.text, q.scale \
         FROM dim_presentation p \
         JOIN dim_survey d ON d.presentation_key = p.presentation_key \
         JOIN dim_survey_question q ON q.presentation_key = d.presentation_key \
           AND q.survey_id = d.survey_id AND q.created_version = d.created_version \
         WHERE {} AND d.created_version IS NOT NULL \
         ORDER BY {}, q.position",
        scope.condition,
        bytes("d.survey_id")
    );
    let mut any_choice = false;
    for mut row in fetch(conn, &sql, "reading survey questions")? {
        let survey_id = take_string(&mut row, 0)?;
        let question = QuestionDim {
            position: take(&mut row, 1)?,
            question_id: take_string(&mut row, 2)?,
            kind: take_string(&mut row, 3)?,
            text: take_string(&mut row, 4)?,
            scale: take(&mut row, 5)?,
        };
        any_choice |= question.kind == "choice";
        if let Some(&i) = index.get(&survey_id) {
            surveys[i].1.push(question);
        }
    }

    // The options of choice questions: (survey, question position) → options.
    let mut options: HashMap<(String, i64), Vec<ChoiceDim>> = HashMap::new();
    if any_choice {
        let sql = format!(
            "SELECT o.survey_id, o.question_position, o.position, o.option_id, o.text \
             FROM dim_presentation p \
             JOIN dim_survey d ON d.presentation_key = p.presentation_key \
             JOIN dim_survey_question_option o ON o.presentation_key = d.presentation_key \
               AND o.survey_id = d.survey_id AND o.created_version = d.created_version \
             WHERE {} AND d.created_version IS NOT NULL \
             ORDER BY {}, o.question_position, o.position",
            scope.condition,
            bytes("o.survey_id")
        );
        for mut row in fetch(conn, &sql, "reading survey options")? {
            let survey_id = take_string(&mut row, 0)?;
            let position: i64 = take(&mut row, 1)?;
            let option = ChoiceDim {
                position: take(&mut row, 2)?,
                option_id: take_string(&mut row, 3)?,
                text: take_string(&mut row, 4)?,
            };
            options
                .entry((survey_id, position))
                .or_default()
                .push(option);
        }
    }

    let (responses, mut figures) = {
        let mut fold = SurveyFold::new(&surveys, &options);
        fold.read(conn, key)?;
        (fold.responses, fold.figures)
    };

    let mut reports = Vec::with_capacity(surveys.len());
    for (i, (mut survey, questions)) in surveys.into_iter().enumerate() {
        survey.responses = responses[i];
        for (q, f) in questions.into_iter().zip(std::mem::take(&mut figures[i])) {
            let key = (survey.survey_id.clone(), q.position);
            let detail = match q.kind.as_str() {
                "rating" => {
                    let mut distribution: BTreeMap<i64, i64> =
                        (1..=q.scale.min(MAX_DISTRIBUTION_KEYS))
                            .map(|k| (k, 0))
                            .collect();
                    let sum: i128 = f
                        .ratings
                        .iter()
                        .map(|(r, n)| i128::from(*r) * i128::from(*n))
                        .sum();
                    distribution.extend(f.ratings);
                    SurveyQuestionDetail::Rating {
                        average_rating: average_2dp(sum, f.answered),
                        distribution,
                    }
                }
                "choice" => {
                    let options = options
                        .get(&key)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|o| SurveyOptionCount {
                            option_id: o.option_id.clone(),
                            text: o.text.clone(),
                            count: f.option_counts.get(&o.position).copied().unwrap_or(0),
                        })
                        .collect();
                    SurveyQuestionDetail::Choice { options }
                }
                _ => SurveyQuestionDetail::Text,
            };
            survey.questions.push(SurveyQuestionReport {
                question_id: q.question_id,
                text: q.text,
                answered: f.answered,
                detail,
            });
        }
        reports.push(survey);
    }
    Ok(reports)
}

/// What one survey question received from the effective responses.
#[derive(Default)]
struct QuestionFigures {
    /// Responses with a valid answer to the question.
    answered: i64,
    /// Rating value → responses (rating questions).
    ratings: BTreeMap<i64, i64>,
    /// Option position → responses choosing it (choice questions).
    option_counts: HashMap<i64, i64>,
}

/// (survey, question, positions of the options chosen so far).
type ChoiceAnswer = (usize, usize, Vec<i64>);

/// The survey figures, folded from three range reads of the presentation's
/// responses, answers and chosen options (answers in primary-key order, so
/// no sort in the database, and no join per answer). Holds one entry per
/// effective response and per first answer to a choice question.
struct SurveyFold<'d> {
    /// Survey id → position in the report.
    surveys: HashMap<&'d str, usize>,
    /// Per survey: question id → the questions with that id.
    question_ids: Vec<HashMap<&'d str, Vec<usize>>>,
    /// Per survey and question: its definition and (choice) options.
    questions: Vec<Vec<(&'d QuestionDim, &'d [ChoiceDim])>>,
    /// Effective response version → survey.
    effective: HashMap<i64, usize>,
    responses: Vec<i64>,
    /// First answers to choice questions, (version, answer position) →
    /// the questions they answer.
    choices: HashMap<(i64, i64), Vec<ChoiceAnswer>>,
    figures: Vec<Vec<QuestionFigures>>,
}

impl<'d> SurveyFold<'d> {
    fn new(
        surveys: &'d [(SurveyReport, Vec<QuestionDim>)],
        options: &'d HashMap<(String, i64), Vec<ChoiceDim>>,
    ) -> SurveyFold<'d> {
        let mut fold = SurveyFold {
            surveys: HashMap::new(),
            question_ids: Vec::new(),
            questions: Vec::new(),
            effective: HashMap::new(),
            responses: vec![0; surveys.len()],
            choices: HashMap::new(),
            figures: Vec::new(),
        };
        for (i, (survey, dims)) in surveys.iter().enumerate() {
            fold.surveys.insert(survey.survey_id.as_str(), i);
            let mut ids: HashMap<&str, Vec<usize>> = HashMap::new();
            let mut defs = Vec::new();
            for (q, dim) in dims.iter().enumerate() {
                ids.entry(dim.question_id.as_str()).or_default().push(q);
                let choices = options
                    .get(&(survey.survey_id.clone(), dim.position))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                defs.push((dim, choices));
            }
            fold.question_ids.push(ids);
            fold.questions.push(defs);
            fold.figures
                .push(dims.iter().map(|_| QuestionFigures::default()).collect());
        }
        fold
    }

    fn read(&mut self, conn: &mut impl Queryable, key: u64) -> Result<(), AnalyticsError> {
        let db = |e: mysql::Error| AnalyticsError::database("reading survey answers", e);
        let started = std::time::Instant::now();
        // Each viewer's effective response to each reported survey: the
        // highest version of their submissions.
        // Grouped in the order of ix_survey_response_survey, which holds the
        // versions too; survey ids are matched exactly (byte for byte).
        let mut surveys: Vec<(&str, usize)> =
            self.surveys.iter().map(|(&id, &i)| (id, i)).collect();
        surveys.sort_unstable_by_key(|&(_, i)| i);
        let ids: Vec<String> = surveys.iter().map(|(id, _)| bytes_literal(id)).collect();
        let ids = ids.join(",");
        let sql = format!(
            "SELECT {}, MAX(r.version) FROM fact_survey_response r \
             WHERE r.presentation_key = {key} AND {} IN ({ids}) \
             GROUP BY r.survey_id, r.viewer_key",
            bytes("r.survey_id"),
            bytes("r.survey_id")
        );
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let survey_id = take_string(&mut row, 0)?;
            let version: i64 = take(&mut row, 1)?;
            if let Some(&survey) = self.surveys.get(survey_id.as_str()) {
                self.effective.insert(version, survey);
                self.responses[survey] += 1;
            }
        }

        // Answers in submission order, so that the first answer to a
        // question is the first seen; question ids are sent back as their
        // numbers in `ids` (no text to copy per row), answers to no known
        // question are left out (they are ignored).
        let mut ids: Vec<&str> = Vec::new();
        for (dim, _) in self.questions.iter().flatten() {
            if !ids.contains(&dim.question_id.as_str()) {
                ids.push(&dim.question_id);
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = ids.iter().map(|id| bytes_literal(id)).collect();
        let sql = format!(
            "SELECT a.version, {}, a.position, a.rating, {} \
             FROM fact_survey_answer a WHERE a.presentation_key = {key} AND {} IN ({}) \
             ORDER BY a.version, a.position",
            case_of(
                "a.question_id",
                ids.iter()
                    .enumerate()
                    .map(|(n, id)| (id.to_string(), n.to_string()))
            ),
            non_blank("a.text_answer"),
            bytes("a.question_id"),
            listed.join(",")
        );
        let mut response: Option<i64> = None;
        let mut answered: Vec<usize> = Vec::new();
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let version: i64 = take(&mut row, 0)?;
            let Some(&survey) = self.effective.get(&version) else {
                continue;
            };
            if response != Some(version) {
                response = Some(version);
                answered.clear();
            }
            let number: usize = take(&mut row, 1)?;
            let Some(questions) = ids
                .get(number)
                .and_then(|id| self.question_ids[survey].get(id))
            else {
                continue; // a question of another survey
            };
            let position: i64 = take(&mut row, 2)?;
            let rating: Option<i64> = take(&mut row, 3)?;
            let text: Option<bool> = take(&mut row, 4)?;
            for &q in questions {
                if answered.contains(&q) {
                    continue; // only the first answer counts
                }
                answered.push(q);
                let (dim, _) = self.questions[survey][q];
                let f = &mut self.figures[survey][q];
                match dim.kind.as_str() {
                    "rating" => {
                        if let Some(r) = rating.filter(|r| (1..=dim.scale).contains(r)) {
                            f.answered += 1;
                            *f.ratings.entry(r).or_default() += 1;
                        }
                    }
                    "text" => f.answered += i64::from(text == Some(true)),
                    "choice" => self.choices.entry((version, position)).or_default().push((
                        survey,
                        q,
                        Vec::new(),
                    )),
                    _ => {}
                }
            }
        }

        // The options chosen in those answers: each option of the question
        // with a chosen id counts once per answer.
        if !self.choices.is_empty() {
            let sql = format!(
                "SELECT ao.version, ao.answer_position, ao.option_id \
                 FROM fact_survey_answer_option ao WHERE ao.presentation_key = {key}"
            );
            for row in stream(conn, sql).map_err(db)? {
                let mut row = row.map_err(db)?;
                let version: i64 = take(&mut row, 0)?;
                let position: i64 = take(&mut row, 1)?;
                let Some(targets) = self.choices.get_mut(&(version, position)) else {
                    continue;
                };
                let option_id = bytes_at(&row, 2).unwrap_or_default();
                for (survey, q, chosen) in targets {
                    let (_, options) = self.questions[*survey][*q];
                    for o in options
                        .iter()
                        .filter(|o| o.option_id.as_bytes() == option_id)
                    {
                        if !chosen.contains(&o.position) {
                            chosen.push(o.position);
                        }
                    }
                }
            }
            for (survey, q, chosen) in self.choices.drain().flat_map(|(_, t)| t) {
                let f = &mut self.figures[survey][q];
                f.answered += i64::from(!chosen.is_empty());
                for position in chosen {
                    *f.option_counts.entry(position).or_default() += 1;
                }
            }
        }
        tracing::debug!(
            what = "folding survey answers",
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "analytics query"
        );
        Ok(())
    }
}
