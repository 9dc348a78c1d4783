//! The report's Q&A: counts by status, the average time to answer and the
//! most upvoted questions, as two small SQL aggregates.

use mysql::prelude::Queryable;

use crate::contract::{average_seconds_1dp, QnaReport, QuestionStatus, TopQuestion, TOP_QUESTIONS};
use crate::read::error::AnalyticsError;
use crate::read::sql::{bytes, fetch, take, take_big, take_opt_string, take_string, Scope};

pub(super) fn qna(conn: &mut impl Queryable, scope: &Scope) -> Result<QnaReport, AnalyticsError> {
    let sql = format!(
        "SELECT COUNT(*), \
           COALESCE(SUM(CASE WHEN q.status IS NULL THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN q.status = 'answered' THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN q.status = 'dismissed' THEN 1 ELSE 0 END), 0), \
           SUM(CASE WHEN q.status = 'answered' AND q.first_answered_at_ms IS NOT NULL \
                 THEN GREATEST(CAST(q.first_answered_at_ms AS DECIMAL(20,0)) - q.asked_at_ms, 0) END), \
           COALESCE(SUM(CASE WHEN q.status = 'answered' AND q.first_answered_at_ms IS NOT NULL \
                 THEN 1 ELSE 0 END), 0), \
           (SELECT COUNT(*) FROM dim_presentation p \
              JOIN dim_question q2 ON q2.presentation_key = p.presentation_key \
              JOIN fact_question_upvote u ON u.presentation_key = q2.presentation_key AND u.question_id = q2.question_id \
              WHERE {c} AND q2.asked_version IS NOT NULL AND u.upvoted) \
         FROM dim_presentation p JOIN dim_question q ON q.presentation_key = p.presentation_key \
         WHERE {c} AND q.asked_version IS NOT NULL",
        c = scope.condition
    );
    let mut rows = fetch(conn, &sql, "computing Q&A")?;
    let mut row = rows
        .pop()
        .ok_or_else(|| AnalyticsError::Database("Q&A returned no row".into()))?;
    let mut report = QnaReport {
        asked: take(&mut row, 0)?,
        open: take_big(&mut row, 1)? as i64,
        answered: take_big(&mut row, 2)? as i64,
        dismissed: take_big(&mut row, 3)? as i64,
        ..QnaReport::default()
    };
    let answer_ms = take_big(&mut row, 4)?;
    let answered_n = take_big(&mut row, 5)? as i64;
    report.upvotes = take(&mut row, 6)?;
    report.average_seconds_to_answer = average_seconds_1dp(answer_ms, answered_n);

    let sql = format!(
        "SELECT q.question_id, q.text, v.viewer_id, q.status, COALESCE(u.n, 0) AS upvotes \
         FROM dim_presentation p JOIN dim_question q ON q.presentation_key = p.presentation_key \
         LEFT JOIN (SELECT u.question_id, COUNT(*) AS n FROM dim_presentation p \
                    JOIN fact_question_upvote u ON u.presentation_key = p.presentation_key \
                    WHERE {c} AND u.upvoted GROUP BY u.question_id) u ON u.question_id = q.question_id \
         LEFT JOIN dim_viewer v ON v.viewer_key = q.asker_viewer_key \
         WHERE {c} AND q.asked_version IS NOT NULL \
         ORDER BY upvotes DESC, q.asked_at_ms, {} LIMIT {TOP_QUESTIONS}",
        bytes("q.question_id"),
        c = scope.condition
    );
    for mut row in fetch(conn, &sql, "ranking questions")? {
        let question_id = take_string(&mut row, 0)?;
        let text = take_string(&mut row, 1)?;
        let asked_by = take_opt_string(&mut row, 2)?;
        let status = match take_opt_string(&mut row, 3)?.as_deref() {
            Some("answered") => QuestionStatus::Answered,
            Some("dismissed") => QuestionStatus::Dismissed,
            _ => QuestionStatus::Open,
        };
        report.top.push(TopQuestion {
            question_id,
            text,
            asked_by,
            upvotes: take(&mut row, 4)?,
            status,
        });
    }
    Ok(report)
}
