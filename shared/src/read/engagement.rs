//! The engagement score (ANALYTICS.md §5): the tenants' weights, kept in
//! `engagement_weight` (migration 0011), and the score of a viewer row as a
//! SQL expression, so that the viewer list sorts and pages by it in the
//! database.
//!
//! The score is computed exactly, in integers: with each included
//! component's ratio `nᵢ / dᵢ` and `D = Π dᵢ`, `100 · Σ wᵢ·nᵢ/dᵢ / W` is
//! `N / (W·D)` with `N = 100 · Σ wᵢ·nᵢ·(D/dᵢ)`, and rounding half away from
//! zero a non-negative fraction `a / b` is `⌊(2a + b) / 2b⌋`, taken as
//! `(x − MOD(x, y)) DIV y`, all in `DECIMAL(65,0)` (a presentation's length
//! in ms times its poll and survey counts stays far inside 65 digits).
//! Components whose weight is 0 are left out of both sums (they change
//! nothing, as the contract says).
//!
//! Decisions where the contract is silent:
//! - `warehouse engagement set` prints what `get` prints afterwards, with
//!   `default` false: weights set equal to the defaults are still set.
//! - Tenants are matched byte for byte (`tenant_id` is `VARBINARY`).

use mysql::prelude::Queryable;

use super::error::{bad_request, AnalyticsError};
use super::flags::check_tenant;
use super::report::PresentationDim;
use super::sql::{fetch, take, Scope, SESSION_END};
use crate::contract::{EngagementSettings, EngagementWeights};
use crate::store::str_literal;

/// The weights in force for a tenant: its own, or the defaults.
pub fn engagement_weights(
    conn: &mut impl Queryable,
    tenant_id: &str,
) -> Result<EngagementSettings, AnalyticsError> {
    check_tenant(tenant_id)?;
    let stored = stored_weights(conn, tenant_id)?;
    Ok(EngagementSettings {
        tenant_id: tenant_id.to_string(),
        weights: stored.unwrap_or_default(),
        default: stored.is_none(),
    })
}

/// Sets a tenant's weights for every later answer, and returns them as
/// [`engagement_weights`] then reads them.
pub fn set_engagement_weights(
    conn: &mut impl Queryable,
    tenant_id: &str,
    weights: EngagementWeights,
) -> Result<EngagementSettings, AnalyticsError> {
    check_tenant(tenant_id)?;
    if let Some(why) = weights.invalid() {
        return Err(bad_request(why));
    }
    let sql = format!(
        "INSERT INTO engagement_weight (tenant_id, watch, polls, surveys, qna, updated_at) \
         VALUES ({}, {}, {}, {}, {}, CURRENT_TIMESTAMP(3)) \
         ON DUPLICATE KEY UPDATE watch = VALUES(watch), polls = VALUES(polls), \
           surveys = VALUES(surveys), qna = VALUES(qna), updated_at = VALUES(updated_at)",
        str_literal(tenant_id),
        weights.watch,
        weights.polls,
        weights.surveys,
        weights.qna
    );
    conn.query_drop(sql)
        .map_err(|e| AnalyticsError::database("setting the engagement weights", e))?;
    engagement_weights(conn, tenant_id)
}

/// The tenant's own weights, `None` when it has none.
fn stored_weights(
    conn: &mut impl Queryable,
    tenant_id: &str,
) -> Result<Option<EngagementWeights>, AnalyticsError> {
    let sql = format!(
        "SELECT watch, polls, surveys, qna FROM engagement_weight WHERE tenant_id = {}",
        str_literal(tenant_id)
    );
    let mut rows = fetch(conn, &sql, "reading the engagement weights")?;
    let Some(mut row) = rows.pop() else {
        return Ok(None);
    };
    Ok(Some(EngagementWeights {
        watch: take(&mut row, 0)?,
        polls: take(&mut row, 1)?,
        surveys: take(&mut row, 2)?,
        qna: take(&mut row, 3)?,
    }))
}

/// What the scores of one presentation's viewers depend on besides their
/// own figures: the tenant's weights, and the presentation's counts.
pub(super) struct ScoreInputs {
    pub(super) weights: EngagementWeights,
    /// Polls and surveys in the report, questions that count.
    pub(super) polls: i64,
    pub(super) surveys: i64,
    pub(super) questions: i64,
    /// `L`: `endedAt − startedAt` when both are known, otherwise the
    /// latest last end minus the earliest first start of the counted
    /// sessions (0 without).
    pub(super) length_ms: i64,
}

/// The presentation's counts, its length and the tenant's weights, in one
/// round trip. The sessions' span is read only when the presentation has
/// not both started and ended (a window over the viewer rows would do it in
/// the list's statement, but MariaDB then sorts the joined rows for minutes
/// at 20,000 viewers).
pub(super) fn score_inputs(
    conn: &mut impl Queryable,
    tenant_id: &str,
    dim: &PresentationDim,
    scope: &Scope,
    polls: usize,
) -> Result<ScoreInputs, AnalyticsError> {
    let key = dim.key;
    let length = match dim.started_at_ms.zip(dim.ended_at_ms) {
        Some((started, ended)) => format!("{}", i128::from(ended) - i128::from(started)),
        None => format!(
            "(SELECT COALESCE(MAX({SESSION_END}) - MIN(s.start_ms), 0) \
              FROM dim_presentation p JOIN fact_session s ON s.presentation_key = p.presentation_key \
              WHERE {} AND s.join_version IS NOT NULL AND {SESSION_END} > s.start_ms)",
            scope.condition
        ),
    };
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM dim_survey WHERE presentation_key = {key} AND created_version IS NOT NULL), \
           (SELECT COUNT(*) FROM dim_question WHERE presentation_key = {key} AND asked_version IS NOT NULL), \
           {length}, w.watch, w.polls, w.surveys, w.qna \
         FROM (SELECT 1 AS one) o LEFT JOIN engagement_weight w ON w.tenant_id = {}",
        str_literal(tenant_id)
    );
    let mut rows = fetch(conn, &sql, "reading the score's inputs")?;
    let mut row = rows
        .pop()
        .ok_or_else(|| AnalyticsError::Database("the score's inputs: no row".into()))?;
    let surveys: i64 = take(&mut row, 0)?;
    let questions: i64 = take(&mut row, 1)?;
    let length_ms: i64 = take(&mut row, 2)?;
    let stored: [Option<u8>; 4] = [
        take(&mut row, 3)?,
        take(&mut row, 4)?,
        take(&mut row, 5)?,
        take(&mut row, 6)?,
    ];
    let weights = match stored {
        [Some(watch), Some(polls), Some(surveys), Some(qna)] => EngagementWeights {
            watch,
            polls,
            surveys,
            qna,
        },
        _ => EngagementWeights::DEFAULT,
    };
    Ok(ScoreInputs {
        weights,
        polls: polls as i64,
        surveys,
        questions,
        length_ms,
    })
}

/// `CAST(expr AS DECIMAL(65,0))`: products of BIGINTs would overflow.
fn dec(expr: &str) -> String {
    format!("CAST({expr} AS DECIMAL(65,0))")
}

/// The score of a row with the columns `watch_ms`, `polls`, `surveys`,
/// `questions` and `upvotes`.
pub(super) fn score_sql(inputs: &ScoreInputs) -> String {
    let w = inputs.weights;
    // (weight, numerator, denominator) of each included component.
    let mut others: Vec<(u8, String, String)> = Vec::new();
    if inputs.polls > 0 {
        others.push((w.polls, "polls".into(), inputs.polls.to_string()));
    }
    if inputs.surveys > 0 {
        others.push((w.surveys, "surveys".into(), inputs.surveys.to_string()));
    }
    if inputs.questions > 0 {
        others.push((w.qna, "LEAST(questions + upvotes, 2)".into(), "2".into()));
    }
    if inputs.length_ms > 0 {
        let length = inputs.length_ms.to_string();
        others.push((w.watch, format!("LEAST(watch_ms, {length})"), length));
    }
    rounded_mean(&others)
}

/// `100 · Σ wᵢ·nᵢ/dᵢ / Σ wᵢ` rounded half away from zero, over the
/// components of weight above 0; `0` when there are none.
fn rounded_mean(components: &[(u8, String, String)]) -> String {
    let components: Vec<&(u8, String, String)> =
        components.iter().filter(|(w, _, _)| *w > 0).collect();
    let total: u32 = components.iter().map(|(w, _, _)| u32::from(*w)).sum();
    if total == 0 {
        return "0".to_string();
    }
    let product = |skip: Option<usize>| -> String {
        let factors: Vec<String> = components
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, (_, _, d))| dec(d))
            .collect();
        if factors.is_empty() {
            "1".to_string()
        } else {
            factors.join(" * ")
        }
    };
    let terms: Vec<String> = components
        .iter()
        .enumerate()
        .map(|(i, (w, n, _))| format!("{w} * {} * {}", dec(n), product(Some(i))))
        .collect();
    let numerator = format!("(100 * ({}))", terms.join(" + "));
    let denominator = format!("({total} * {})", product(None));
    let a = format!("(2 * {numerator} + {denominator})");
    let b = format!("(2 * {denominator})");
    format!("CAST(({a} - MOD({a}, {b})) DIV {b} AS SIGNED)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(weights: EngagementWeights, length_ms: i64) -> ScoreInputs {
        ScoreInputs {
            weights,
            polls: 3,
            surveys: 0,
            questions: 2,
            length_ms,
        }
    }

    #[test]
    fn components_without_weight_or_data_are_left_out() {
        // No survey: surveys is left out; no weight at all: 0.
        let sql = score_sql(&inputs(EngagementWeights::DEFAULT, 1000));
        assert!(
            !sql.contains("surveys") && sql.contains("watch_ms"),
            "{sql}"
        );
        let none = EngagementWeights {
            watch: 0,
            polls: 0,
            surveys: 9,
            qna: 0,
        };
        assert_eq!(score_sql(&inputs(none, 1000)), "0");
        // A length of 0 leaves watch out.
        assert!(!score_sql(&inputs(EngagementWeights::DEFAULT, 0)).contains("watch_ms"));
    }
}
