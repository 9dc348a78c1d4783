//! `warehouse status`: per data point, the last load, the events loaded in
//! the last hour and day, the latest `occurredAt` loaded, the errors of the
//! last day by reason, and its queues when they are configured; the last
//! reconciliation and the unfinished runs.

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use serde::Serialize;

use super::{aws_error, db_error, loader_data_point, ms, OpsError, QueuePair};
use crate::contract::{format_time, DataPoint};
use crate::jobs::backfill::RunCounts;
use crate::store::Database;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Milliseconds as a TIMESTAMP(3) in SQL; `?` is bound to the milliseconds.
const AT: &str = "FROM_UNIXTIME(? / 1000)";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The time the figures are relative to.
    pub at: String,
    pub data_points: BTreeMap<DataPoint, DataPointStatus>,
    /// Errors of the last day recorded by what is no loader (a backfill run,
    /// reconcile's direct repair): source, then reason, then count.
    pub errors_last_day_elsewhere: BTreeMap<String, BTreeMap<String, u64>>,
    pub last_reconcile: Option<ReconcileStatus>,
    pub unfinished_reconciles: Vec<UnfinishedReconcile>,
    pub unfinished_backfills: Vec<BackfillStatus>,
    /// What this report could not include, and why.
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPointStatus {
    /// The latest load that brought new events of this data point.
    pub last_load: Option<LastLoad>,
    pub loaded_last_hour: u64,
    pub loaded_last_day: u64,
    pub latest_occurred_at: Option<String>,
    /// `error_event` rows seen in the last day by this data point's loader,
    /// by reason (`malformed`, `wrong_data_point`, `conflict`, `refused`).
    pub errors_last_day: BTreeMap<String, u64>,
    /// Present when `QUEUE_URL_<DATA POINT>` or `DLQ_URL_<DATA POINT>` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastLoad {
    pub at: String,
    pub age_seconds: i64,
    /// As a string: load ids use all 63 bits, more than a JSON reader keeps.
    pub load_id: String,
    /// The loader or run that committed it (from `load_run`).
    pub source: Option<String>,
    /// New events in that load, all data points together.
    pub events_loaded: Option<u64>,
}

/// A data point's queues. Each figure is there when its queue is configured;
/// the age of the oldest message is `null` when CloudWatch has no point for
/// the last ten minutes (SQS stops publishing for a queue idle for hours).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_message_age_seconds: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_depth: Option<u64>,
    /// Calls that failed (the figures they would have given are absent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    pub missing: u64,
    pub unexpected: u64,
    pub conflicting: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileStatus {
    pub run_id: u64,
    pub source: String,
    pub finished_at: String,
    pub age_seconds: i64,
    /// The window on `occurredAt` it compared.
    pub from: String,
    pub to: String,
    pub compared: u64,
    #[serde(flatten)]
    pub found: Found,
    pub by_data_point: BTreeMap<String, Found>,
    pub repaired: u64,
    /// `queue`, `direct`, or `null` when it did not repair.
    pub repair: Option<String>,
    pub elapsed_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnfinishedReconcile {
    pub run_id: u64,
    pub source: String,
    pub compared: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillStatus {
    pub run_id: String,
    pub source: String,
    pub mode: String,
    pub started_at: String,
    /// When an invocation last ended (a run's row is saved then; its lanes
    /// after every batch).
    pub updated_at: String,
    pub idle_seconds: i64,
    pub invocations: u64,
    /// Bytes of the (decompressed) export every lane has passed: where a
    /// resumed run reads from.
    pub next_offset: u64,
    pub lines: u64,
    /// Events loaded (`direct`) or sent (`enqueue`).
    pub events: u64,
    pub refused: u64,
    pub malformed: u64,
    pub by_data_point: BTreeMap<String, u64>,
    pub lanes: Vec<LaneStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneStatus {
    pub lane: u32,
    pub next_offset: u64,
    pub lines: u64,
    pub events: u64,
}

/// The warehouse's part of the status, at `now_ms`.
pub fn warehouse_status(db: &Database, now_ms: i64) -> Result<Status, OpsError> {
    let mut conn = db.conn()?;
    let mut data_points = BTreeMap::new();
    for dp in DataPoint::ALL {
        data_points.insert(dp, data_point_status(&mut conn, dp, now_ms)?);
    }
    let mut elsewhere: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let errors: Vec<(String, String, u64)> = conn
        .exec(
            format!(
                "SELECT source, kind, COUNT(*) FROM error_event \
                 WHERE last_seen > {AT} AND last_seen <= {AT} GROUP BY source, kind"
            ),
            (now_ms - DAY_MS, now_ms),
        )
        .map_err(db_error("cannot count the errors of the last day"))?;
    for (source, kind, n) in errors {
        let counts = match loader_data_point(&source) {
            Some(dp) => {
                &mut data_points
                    .get_mut(&dp)
                    .expect("every data point")
                    .errors_last_day
            }
            None => elsewhere.entry(source).or_default(),
        };
        *counts.entry(kind).or_default() += n;
    }
    Ok(Status {
        at: format_time(now_ms),
        data_points,
        errors_last_day_elsewhere: elsewhere,
        last_reconcile: last_reconcile(&mut conn, now_ms)?,
        unfinished_reconciles: unfinished_reconciles(&mut conn)?,
        unfinished_backfills: unfinished_backfills(&mut conn, now_ms)?,
        left_out: Vec::new(),
    })
}

fn data_point_status(
    conn: &mut mysql::PooledConn,
    dp: DataPoint,
    now_ms: i64,
) -> Result<DataPointStatus, OpsError> {
    let name = dp.as_str();
    // Both read `ix_ledger_loaded` (data_point, loaded_at) as a range.
    let last: Option<(u64, i64)> = conn
        .exec_first(
            format!(
                "SELECT load_id, {} FROM event_ledger WHERE data_point = ? AND loaded_at <= {AT} \
                 ORDER BY loaded_at DESC LIMIT 1",
                ms("loaded_at")
            ),
            (name, now_ms),
        )
        .map_err(db_error("cannot read the last load"))?;
    let (day, hour): (u64, Option<u64>) = conn
        .exec_first(
            format!(
                "SELECT COUNT(*), SUM(loaded_at > {AT}) FROM event_ledger \
                 WHERE data_point = ? AND loaded_at > {AT} AND loaded_at <= {AT}"
            ),
            (now_ms - HOUR_MS, name, now_ms - DAY_MS, now_ms),
        )
        .map_err(db_error("cannot count the events loaded"))?
        .unwrap_or((0, None));
    // Backwards along `ix_ledger_reconcile` (occurred_at_ms, data_point, …)
    // to the first row of this data point.
    let latest: Option<i64> = conn
        .exec_first(
            "SELECT occurred_at_ms FROM event_ledger WHERE data_point = ? \
             ORDER BY occurred_at_ms DESC LIMIT 1",
            (name,),
        )
        .map_err(db_error("cannot read the latest occurredAt"))?;
    let last_load = match last {
        None => None,
        Some((load_id, at_ms)) => {
            let run: Option<(String, u64)> = conn
                .exec_first(
                    "SELECT source, events_loaded FROM load_run WHERE load_id = ?",
                    (load_id,),
                )
                .map_err(db_error("cannot read the last load"))?;
            Some(LastLoad {
                at: format_time(at_ms),
                age_seconds: (now_ms - at_ms).div_euclid(1000),
                load_id: load_id.to_string(),
                source: run.as_ref().map(|(source, _)| source.clone()),
                events_loaded: run.map(|(_, n)| n),
            })
        }
    };
    Ok(DataPointStatus {
        last_load,
        loaded_last_hour: hour.unwrap_or(0),
        loaded_last_day: day,
        latest_occurred_at: latest.map(format_time),
        errors_last_day: BTreeMap::new(),
        queue: None,
    })
}

fn last_reconcile(
    conn: &mut mysql::PooledConn,
    now_ms: i64,
) -> Result<Option<ReconcileStatus>, OpsError> {
    type Row = (
        u64,
        String,
        i64,
        i64,
        u64,
        u64,
        u64,
        u64,
        u64,
        Option<String>,
        i64,
        String,
    );
    let row: Option<Row> = conn
        .query_first(format!(
            "SELECT run_id, source, from_ms, to_ms, compared, missing, unexpected, conflicting, repaired, \
             repair_mode, {}, summary_json FROM reconcile_run WHERE finished_at IS NOT NULL \
             ORDER BY finished_at DESC, run_id DESC LIMIT 1",
            ms("finished_at")
        ))
        .map_err(db_error("cannot read the last reconciliation"))?;
    let Some((
        run_id,
        source,
        from,
        to,
        compared,
        missing,
        unexpected,
        conflicting,
        repaired,
        repair,
        finished,
        summary,
    )) = row
    else {
        return Ok(None);
    };
    let rows: Vec<(String, String, u64)> = conn
        .exec(
            "SELECT data_point, kind, COUNT(*) FROM reconcile_discrepancy WHERE run_id = ? GROUP BY data_point, kind",
            (run_id,),
        )
        .map_err(db_error("cannot read the last reconciliation's discrepancies"))?;
    let mut by_data_point: BTreeMap<String, Found> = BTreeMap::new();
    for (dp, kind, n) in rows {
        let found = by_data_point.entry(dp).or_default();
        match kind.as_str() {
            "missing" => found.missing += n,
            "unexpected" => found.unexpected += n,
            "conflicting" => found.conflicting += n,
            _ => {}
        }
    }
    let elapsed_seconds = serde_json::from_str::<serde_json::Value>(&summary)
        .ok()
        .and_then(|summary| summary.get("elapsedSeconds")?.as_f64());
    Ok(Some(ReconcileStatus {
        run_id,
        source,
        finished_at: format_time(finished),
        age_seconds: (now_ms - finished).div_euclid(1000),
        from: format_time(from),
        to: format_time(to),
        compared,
        found: Found {
            missing,
            unexpected,
            conflicting,
        },
        by_data_point,
        repaired,
        repair,
        elapsed_seconds,
    }))
}

fn unfinished_reconciles(
    conn: &mut mysql::PooledConn,
) -> Result<Vec<UnfinishedReconcile>, OpsError> {
    let rows: Vec<(u64, String, u64)> = conn
        .query(
            "SELECT run_id, source, compared FROM reconcile_run WHERE finished_at IS NULL ORDER BY run_id",
        )
        .map_err(db_error("cannot read the unfinished reconciliations"))?;
    Ok(rows
        .into_iter()
        .map(|(run_id, source, compared)| UnfinishedReconcile {
            run_id,
            source,
            compared,
        })
        .collect())
}

fn unfinished_backfills(
    conn: &mut mysql::PooledConn,
    now_ms: i64,
) -> Result<Vec<BackfillStatus>, OpsError> {
    type Row = (String, String, String, u64, String, u64, i64, i64);
    let runs: Vec<Row> = conn
        .query(format!(
            "SELECT run_id, source, mode, next_offset, counters_json, invocations, {}, {} \
             FROM backfill_run WHERE status <> 'done' ORDER BY started_at, run_id",
            ms("started_at"),
            ms("updated_at")
        ))
        .map_err(db_error("cannot read the unfinished backfills"))?;
    let mut out = Vec::with_capacity(runs.len());
    for (run_id, source, mode, run_offset, run_counters, invocations, started, updated) in runs {
        let lanes: Vec<(u32, u64, String)> = conn
            .exec(
                "SELECT lane, next_offset, counters_json FROM backfill_lane WHERE run_id = ? ORDER BY lane",
                (&run_id,),
            )
            .map_err(db_error("cannot read a backfill's lanes"))?;
        let counts = |json: &str| serde_json::from_str::<RunCounts>(json).unwrap_or_default();
        // The lanes are saved with every batch, the run's row once per
        // invocation: the lanes are the newer figures when there are any.
        let lane_counts: Vec<(u32, u64, RunCounts)> = lanes
            .iter()
            .map(|(lane, offset, json)| (*lane, *offset, counts(json)))
            .collect();
        let (next_offset, totals) = if lane_counts.is_empty() {
            (run_offset, counts(&run_counters))
        } else {
            let mut totals = RunCounts::default();
            for (_, _, c) in &lane_counts {
                totals.lines += c.lines;
                totals.events += c.events;
                totals.refused += c.refused;
                totals.malformed += c.malformed;
                for (dp, n) in &c.by_data_point {
                    *totals.by_data_point.entry(dp.clone()).or_default() += n;
                }
            }
            let offset = lane_counts.iter().map(|(_, o, _)| *o).min().unwrap_or(0);
            (offset, totals)
        };
        out.push(BackfillStatus {
            run_id,
            source,
            mode,
            started_at: format_time(started),
            updated_at: format_time(updated),
            idle_seconds: (now_ms - updated).div_euclid(1000),
            invocations,
            next_offset,
            lines: totals.lines,
            events: totals.events,
            refused: totals.refused,
            malformed: totals.malformed,
            by_data_point: totals.by_data_point,
            lanes: lane_counts
                .into_iter()
                .map(|(lane, next_offset, c)| LaneStatus {
                    lane,
                    next_offset,
                    lines: c.lines,
                    events: c.events,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Adds the queues' figures for the data points whose queues are set, and
/// says in `left_out` what is not set. A failed call is reported in its
/// data point's `errors`, not as a failure of the whole status.
pub async fn add_queue_figures(
    status: &mut Status,
    sqs: Option<&aws_sdk_sqs::Client>,
    cloudwatch: Option<&aws_sdk_cloudwatch::Client>,
    queues: &BTreeMap<DataPoint, QueuePair>,
    now_ms: i64,
) {
    let mut unset = Vec::new();
    for dp in DataPoint::ALL {
        let pair = queues.get(&dp).cloned().unwrap_or_default();
        if pair.queue.is_none() {
            unset.push(super::queue_variable(dp));
        }
        if pair.dlq.is_none() {
            unset.push(super::dlq_variable(dp));
        }
        let Some(sqs) = sqs.filter(|_| pair != QueuePair::default()) else {
            continue;
        };
        let mut figures = QueueStatus::default();
        if let Some(url) = &pair.queue {
            match queue_counts(sqs, url).await {
                Ok((depth, in_flight)) => {
                    figures.depth = Some(depth);
                    figures.in_flight = Some(in_flight);
                }
                Err(e) => figures.errors.push(e.to_string()),
            }
            match cloudwatch {
                Some(cloudwatch) => match oldest_age(cloudwatch, url, now_ms).await {
                    Ok(age) => figures.oldest_message_age_seconds = Some(age),
                    Err(e) => figures.errors.push(e.to_string()),
                },
                None => figures
                    .errors
                    .push("no CloudWatch client: the oldest message's age is left out".into()),
            }
        }
        if let Some(url) = &pair.dlq {
            match queue_counts(sqs, url).await {
                Ok((depth, _)) => figures.dlq_depth = Some(depth),
                Err(e) => figures.errors.push(e.to_string()),
            }
        }
        status
            .data_points
            .get_mut(&dp)
            .expect("every data point")
            .queue = Some(figures);
    }
    if unset.len() == 2 * DataPoint::ALL.len() {
        status
            .left_out
            .push("queue figures: no QUEUE_URL_<DATA POINT> or DLQ_URL_<DATA POINT> is set".into());
    } else if sqs.is_none() {
        status
            .left_out
            .push("queue figures: no SQS client was given".into());
    } else if !unset.is_empty() {
        status.left_out.push(format!(
            "queue figures where {} {} not set",
            unset.join(", "),
            if unset.len() == 1 { "is" } else { "are" }
        ));
    }
}

/// A queue's visible and in-flight messages.
pub(super) async fn queue_counts(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<(u64, u64), OpsError> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| aws_error(&format!("cannot read the attributes of {url}"), e))?;
    let attributes = out.attributes.unwrap_or_default();
    let number = |name: A| {
        attributes
            .get(&name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((
        number(A::ApproximateNumberOfMessages),
        number(A::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// The queue's name: the last part of its URL.
fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// `ApproximateAgeOfOldestMessage` (AWS/SQS, seconds): the latest maximum
/// CloudWatch has over the ten minutes to `now_ms`. SQS does not answer it
/// itself, and receiving to look would count a receive against the loader's
/// `maxReceiveCount`.
async fn oldest_age(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    url: &str,
    now_ms: i64,
) -> Result<Option<u64>, OpsError> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let name = queue_name(url);
    let out = cloudwatch
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(Dimension::builder().name("QueueName").value(name).build())
        .start_time(DateTime::from_millis(now_ms - 10 * 60_000))
        .end_time(DateTime::from_millis(now_ms))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                &format!("cannot read the age of the oldest message of {name}"),
                e,
            )
        })?;
    Ok(out
        .datapoints
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((p.timestamp?, p.maximum?)))
        .max_by_key(|(at, _)| (at.secs(), at.subsec_nanos()))
        .map(|(_, age)| age.max(0.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_named_by_its_urls_last_part() {
        assert_eq!(
            queue_name(
                "https://sqs.eu-west-1.amazonaws.com/123456789012/warehouse-AttendanceQueue-X"
            ),
            "warehouse-AttendanceQueue-X"
        );
        assert_eq!(queue_name("http://127.0.0.1:5000/123/q/"), "q");
    }
}
