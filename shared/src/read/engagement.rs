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
    let mut others: Vec<(u8, String, i64)> = Vec::new();
    if inputs.polls > 0 {
        others.push((w.polls, "polls".into(), inputs.polls));
    }
    if inputs.surveys > 0 {
        others.push((w.surveys, "surveys".into(), inputs.surveys));
    }
    if inputs.questions > 0 {
        others.push((w.qna, "LEAST(questions + upvotes, 2)".into(), 2));
    }
    if inputs.length_ms > 0 {
        let length = inputs.length_ms;
        others.push((w.watch, format!("LEAST(watch_ms, {length})"), length));
    }
    rounded_mean(&others)
}

/// `100 · Σ wᵢ·nᵢ/dᵢ / Σ wᵢ` rounded half away from zero, over the
/// components of weight above 0; `0` when there are none.
///
/// Over a common denominator: `(2·N + D) DIV (2·D)` with `N = Σ cᵢ·nᵢ`,
/// `cᵢ = 100·wᵢ·Πⱼ≠ᵢ dⱼ` and `D = Σ wᵢ · Π dⱼ` (all values are at least 0,
/// so `DIV` is the floor). The constants are multiplied out here and
/// divided by their common divisor, so that each row costs one product per
/// component, in BIGINT when it cannot overflow: written as products of
/// `DECIMAL(65,0)` casts, the score cost 60 of the 210 ms of a
/// 20,000-viewer page sorted by score, folded in `DECIMAL` 25, in BIGINT 8
/// (BENCHMARKS.md). Should a constant not fit in an `i128`, the products
/// are left to the database.
fn rounded_mean(components: &[(u8, String, i64)]) -> String {
    let components: Vec<&(u8, String, i64)> =
        components.iter().filter(|(w, _, _)| *w > 0).collect();
    let total: u32 = components.iter().map(|(w, _, _)| u32::from(*w)).sum();
    if total == 0 {
        return "0".to_string();
    }
    if let Some(sql) = folded_mean(&components, total) {
        return sql;
    }
    let product = |skip: Option<usize>| -> String {
        let factors: Vec<String> = components
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, (_, _, d))| dec(&d.to_string()))
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

/// [`rounded_mean`] with its constants multiplied out; `None` when one
/// does not fit in an `i128`.
fn folded_mean(components: &[&(u8, String, i64)], total: u32) -> Option<String> {
    let product = |skip: Option<usize>| -> Option<i128> {
        components
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .try_fold(1i128, |p, (_, (_, _, d))| p.checked_mul(i128::from(*d)))
    };
    let mut factors = Vec::with_capacity(components.len());
    for (i, (w, _, _)) in components.iter().enumerate() {
        factors.push(product(Some(i))?.checked_mul(100 * i128::from(*w))?);
    }
    let mut denominator = product(None)?.checked_mul(i128::from(total))?;
    let divisor = factors.iter().fold(denominator, |g, &c| gcd(g, c));
    if divisor > 1 {
        denominator /= divisor;
        factors.iter_mut().for_each(|c| *c /= divisor);
    }
    let b = denominator.checked_mul(2)?;
    // Each nᵢ is at most dᵢ, so N ≤ 100·D and 2·N + D ≤ 201·D: when that
    // fits a BIGINT, so does every step, and BIGINT `DIV` is exact.
    if denominator
        .checked_mul(201)
        .is_some_and(|max| max <= i128::from(i64::MAX))
    {
        let numerator: Vec<String> = components
            .iter()
            .zip(&factors)
            .map(|((_, n, _), c)| format!("{c} * CAST({n} AS SIGNED)"))
            .collect();
        return Some(format!(
            "(2 * ({}) + {denominator}) DIV {b}",
            numerator.join(" + ")
        ));
    }
    let numerator: Vec<String> = components
        .iter()
        .zip(&factors)
        .map(|((_, n, _), c)| format!("{c} * {}", dec(n)))
        .collect();
    let a = format!("(2 * ({}) + {denominator})", numerator.join(" + "));
    // `DECIMAL` division keeps few digits: the exact multiple is divided.
    Some(format!("CAST(({a} - MOD({a}, {b})) DIV {b} AS SIGNED)"))
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
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

    #[test]
    fn constants_are_multiplied_out_unless_they_overflow() {
        // Default weights, 3 polls, 2 for Q&A, 1,000 ms: c = 100·w·Πⱼ≠ᵢ d
        // (4,000,000, 4,500,000, 30,000) and D = 85·3·2·1,000, divided by
        // their common divisor 10,000; small enough for BIGINT.
        let sql = score_sql(&inputs(EngagementWeights::DEFAULT, 1000));
        assert_eq!(
            sql,
            "(2 * (400 * CAST(polls AS SIGNED) + 450 * CAST(LEAST(questions + upvotes, 2) AS SIGNED) \
             + 3 * CAST(LEAST(watch_ms, 1000) AS SIGNED)) + 51) DIV 102"
        );
        // A length of 10¹⁸ ms: D over 2⁶³ / 201, so DECIMAL, dividing the
        // exact multiple.
        let sql = score_sql(&inputs(
            EngagementWeights::DEFAULT,
            1_000_000_000_000_000_000,
        ));
        assert!(
            sql.starts_with("CAST(((2 * (")
                && sql.contains("AS DECIMAL(65,0)")
                && sql.contains("MOD("),
            "{sql}"
        );
        // Denominators whose product overflows an i128: the database multiplies.
        let huge = ScoreInputs {
            weights: EngagementWeights::DEFAULT,
            polls: i64::MAX,
            surveys: i64::MAX,
            questions: 0,
            length_ms: i64::MAX,
        };
        assert!(score_sql(&huge).contains("CAST(9223372036854775807 AS DECIMAL(65,0))"));
    }
}
