//! `warehouse status [--pretty]`: per data point the last load, the events
//! loaded in the last hour and day, the latest `occurredAt`, the last day's
//! errors by reason and, where `QUEUE_URL_<DATA POINT>` / `DLQ_URL_<DATA
//! POINT>` are set, the queues; then the last reconciliation and the
//! unfinished runs. JSON by default, a table with `--pretty`.

use std::fmt::Write as _;

use shared::ops::{self, QueuePair, Status};

use crate::common::{database, print_json, runtime};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// A readable table instead of JSON.
    #[arg(long)]
    pretty: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let now_ms = shared::store::now_ms();
    let mut status = ops::warehouse_status(&database(1)?, now_ms)?;
    let queues = ops::queue_settings(&shared::store::env_lookup);
    let configured = queues.values().any(|pair| *pair != QueuePair::default());
    runtime()?.block_on(async {
        // AWS configuration is loaded only when there are queues to ask about.
        let aws = crate::common::aws_if(configured).await;
        let sqs = aws.as_ref().map(shared::store::sqs_client);
        let cloudwatch = aws.as_ref().map(ops::cloudwatch::Client::new);
        ops::add_queue_figures(
            &mut status,
            sqs.as_ref(),
            cloudwatch.as_ref(),
            &queues,
            now_ms,
        )
        .await
    });
    if args.pretty {
        print!("{}", table(&status));
        Ok(())
    } else {
        print_json(&status, false)
    }
}

/// Rows of cells as left-aligned columns two spaces apart.
fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The status for people.
fn table(status: &Status) -> String {
    let mut out = format!("warehouse status at {}\n\n", status.at);
    let mut rows = vec![[
        "data point",
        "last load",
        "age s",
        "1 h",
        "24 h",
        "latest occurredAt",
        "errors 24 h",
        "queue",
        "in flight",
        "oldest s",
        "DLQ",
    ]
    .map(String::from)
    .to_vec()];
    for (dp, s) in &status.data_points {
        let queue = s.queue.clone().unwrap_or_default();
        let errors = if s.errors_last_day.is_empty() {
            "-".to_string()
        } else {
            s.errors_last_day
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(vec![
            dp.as_str().to_string(),
            or_dash(s.last_load.as_ref().map(|l| l.at.clone())),
            or_dash(s.last_load.as_ref().map(|l| l.age_seconds)),
            s.loaded_last_hour.to_string(),
            s.loaded_last_day.to_string(),
            or_dash(s.latest_occurred_at.clone()),
            errors,
            or_dash(queue.depth),
            or_dash(queue.in_flight),
            or_dash(queue.oldest_message_age_seconds.flatten()),
            or_dash(queue.dlq_depth),
        ]);
    }
    out.push_str(&columns(&rows));
    for (dp, s) in &status.data_points {
        for error in s.queue.iter().flat_map(|q| &q.errors) {
            let _ = writeln!(out, "{dp} queue: {error}");
        }
    }
    for (source, counts) in &status.errors_last_day_elsewhere {
        let counts: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(out, "errors 24 h from {source}: {}", counts.join(", "));
    }
    out.push('\n');
    match &status.last_reconcile {
        None => out.push_str("last reconcile: none finished\n"),
        Some(r) => {
            let _ = writeln!(
                out,
                "last reconcile: run {} finished {} ({} s ago), window {} to {}\n  compared {}: missing {}, unexpected {}, conflicting {}; repaired {}{}",
                r.run_id,
                r.finished_at,
                r.age_seconds,
                r.from,
                r.to,
                r.compared,
                r.found.missing,
                r.found.unexpected,
                r.found.conflicting,
                r.repaired,
                r.repair.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
            );
            for (dp, found) in &r.by_data_point {
                let _ = writeln!(
                    out,
                    "  {dp}: missing {}, unexpected {}, conflicting {}",
                    found.missing, found.unexpected, found.conflicting
                );
            }
        }
    }
    for run in &status.unfinished_reconciles {
        let _ = writeln!(
            out,
            "unfinished reconcile: run {} of {}, {} compared so far",
            run.run_id, run.source, run.compared
        );
    }
    if status.unfinished_backfills.is_empty() {
        out.push_str("unfinished backfills: none\n");
    }
    for run in &status.unfinished_backfills {
        let _ = writeln!(
            out,
            "unfinished backfill {} ({}, {}): {} lines, {} events, {} refused, at byte {}; started {}, last saved {} ({} s idle), {} invocations",
            run.run_id,
            run.mode,
            run.source,
            run.lines,
            run.events,
            run.refused,
            run.next_offset,
            run.started_at,
            run.updated_at,
            run.idle_seconds,
            run.invocations
        );
    }
    for left_out in &status.left_out {
        let _ = writeln!(out, "left out: {left_out}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use shared::contract::DataPoint;
    use shared::ops::{DataPointStatus, QueueStatus};

    use crate::{parse, Command};

    #[test]
    fn status_takes_pretty() {
        assert!(matches!(
            parse(&["status"]),
            Command::Status(StatusArgs { pretty: false })
        ));
        assert!(matches!(
            parse(&["status", "--pretty"]),
            Command::Status(StatusArgs { pretty: true })
        ));
    }

    #[test]
    fn the_table_has_a_row_per_data_point_and_says_what_it_left_out() {
        let mut data_points: BTreeMap<DataPoint, DataPointStatus> = DataPoint::ALL
            .into_iter()
            .map(|dp| (dp, DataPointStatus::default()))
            .collect();
        let polls = data_points.get_mut(&DataPoint::Polls).unwrap();
        polls.loaded_last_day = 42;
        polls.errors_last_day.insert("malformed".into(), 3);
        polls.queue = Some(QueueStatus {
            depth: Some(7),
            in_flight: Some(1),
            oldest_message_age_seconds: Some(None),
            dlq_depth: Some(2),
            errors: vec![],
        });
        let status = Status {
            at: "2026-01-01T00:00:00.000Z".into(),
            data_points,
            errors_last_day_elsewhere: BTreeMap::new(),
            last_reconcile: None,
            unfinished_reconciles: vec![],
            unfinished_backfills: vec![],
            left_out: vec!["queue figures where QUEUE_URL_QNA is not set".into()],
        };
        let text = table(&status);
        let polls_line = text.lines().find(|l| l.starts_with("polls")).unwrap();
        let cells: Vec<&str> = polls_line.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "polls",
                "-",
                "-",
                "0",
                "42",
                "-",
                "malformed",
                "3",
                "7",
                "1",
                "-",
                "2"
            ]
        );
        assert_eq!(text.lines().filter(|l| l.starts_with("qna")).count(), 1);
        assert!(text.contains("left out: queue figures where QUEUE_URL_QNA is not set"));
        assert!(text.contains("last reconcile: none finished"));
    }
}
