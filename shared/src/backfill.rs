//! Loading an export straight into the warehouse through the loaders' own
//! `load_batch`: parse, batch, one transaction per batch.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::db::{Database, DbError};
use crate::event::{parse_event, Event, EventError};
use crate::export::Line;
use crate::load::{commit_batch, BatchCounts, Item, Reject, RejectKind};

/// Lines per transaction: large enough to amortise round trips, small enough
/// to keep statements and lock sets modest.
pub const DEFAULT_BATCH_LINES: usize = 5_000;

/// The end-of-run summary (also the Lambda's response).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Non-blank lines read.
    pub lines: u64,
    /// Distinct valid events newly loaded.
    pub events: u64,
    /// Valid lines repeating an identity already loaded.
    pub duplicates: u64,
    pub malformed: u64,
    /// Distinct valid events whose type is not analytics (counted in `events`).
    pub not_analytics: u64,
    /// Duplicates whose content differs from the first (counted in `duplicates`).
    pub conflicts: u64,
    pub by_data_point: BTreeMap<String, u64>,
    pub elapsed_seconds: f64,
    pub events_per_second: f64,
}

impl Summary {
    pub fn add(&mut self, counts: &BatchCounts) {
        self.events += counts.loaded;
        self.duplicates += counts.duplicates;
        self.malformed += counts.malformed;
        self.not_analytics += counts.not_analytics;
        self.conflicts += counts.conflicts;
        for (dp, n) in &counts.loaded_by_data_point {
            *self
                .by_data_point
                .entry(dp.as_str().to_string())
                .or_default() += n;
        }
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed_seconds = elapsed.as_secs_f64();
        self.events_per_second = if self.elapsed_seconds > 0.0 {
            (self.lines as f64 / self.elapsed_seconds).round()
        } else {
            0.0
        };
    }
}

/// Parses one export line; bytes that are not UTF-8 are malformed too.
pub fn parse_line(bytes: &[u8]) -> Result<Event, String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_event(text).map_err(|e: EventError| e.to_string()),
        Err(e) => Err(format!(
            "the line is not valid UTF-8 ({e}); exports are UTF-8 text"
        )),
    }
}

/// Loads a batch of lines in one transaction (retrying transient failures
/// until `deadline`) and returns its counts.
pub fn load_lines(
    db: &Database,
    source: &str,
    lines: &[Line],
    deadline: Instant,
) -> Result<BatchCounts, DbError> {
    let parsed: Vec<(usize, Result<Event, String>)> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.is_blank())
        .map(|(i, line)| (i, parse_line(&line.bytes)))
        .collect();
    let items: Vec<Item> = parsed
        .iter()
        .filter_map(|(i, result)| {
            result.as_ref().ok().map(|event| Item {
                event,
                // Valid events are valid UTF-8.
                raw: std::str::from_utf8(&lines[*i].bytes).unwrap_or_default(),
                line: lines[*i].number,
            })
        })
        .collect();
    let rejects: Vec<Reject> = parsed
        .iter()
        .filter_map(|(i, result)| {
            result.as_ref().err().map(|reason| Reject {
                raw: &lines[*i].bytes,
                reason: reason.clone(),
                kind: RejectKind::Malformed,
                line: lines[*i].number,
                identity: None,
            })
        })
        .collect();
    Ok(commit_batch(db, deadline, source, &items, &rejects)?.counts)
}

/// Loads every line of `lines` in batches; the simplest whole-export run.
pub fn load_all(
    db: &Database,
    source: &str,
    lines: impl Iterator<Item = std::io::Result<Line>>,
    batch_lines: usize,
) -> Result<Summary, DbError> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut batch = Vec::with_capacity(batch_lines);
    let far = Instant::now() + Duration::from_secs(3600);
    for line in lines {
        let line = line.map_err(|e| DbError(format!("cannot read the export: {e}")))?;
        if !line.is_blank() {
            summary.lines += 1;
        }
        batch.push(line);
        if batch.len() >= batch_lines {
            summary.add(&load_lines(db, source, &batch, far)?);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        summary.add(&load_lines(db, source, &batch, far)?);
    }
    summary.finish(started.elapsed());
    Ok(summary)
}
