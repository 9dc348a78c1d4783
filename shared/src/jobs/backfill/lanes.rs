//! A run's lanes: how many, which lane a line belongs to, dealing each
//! batch's lines to them, and a lane loading (or sending) its share and
//! committing its checkpoint with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::contract::Event;
use crate::export::ParseError;
use crate::jobs::{JobError, LaneHook};
use crate::redrive::QueueUrls;
use crate::store::{with_retry, Database, DbError};
use crate::write::{
    commit_isolating, load_batch, record_rejects, Item, LoadCounts, Reject, RejectKind,
};

use super::batch::ParsedBatch;
use super::checkpoint::{save_lane, Checkpoint};
use super::enqueue::enqueue;
use super::{BackfillOptions, Mode, RunCounts, MAX_LANES};

/// How many lanes a run loads on: `direct` runs use their option, the others
/// one (what they write is small; their work is sending or counting).
pub(super) fn lane_count(options: &BackfillOptions) -> usize {
    if options.mode == Mode::Direct && !options.dry_run {
        options.lanes.clamp(1, MAX_LANES)
    } else {
        1
    }
}

/// The lane a line belongs to: an event's presentation decides, so one
/// presentation's events stay in one lane in export order (and two lanes
/// never write the same ledger or fact rows); other lines go by line number.
/// The hash is spelled out (FNV-1a, then MurmurHash3's finaliser, whose low
/// bits are well mixed where FNV's are not) because a resumed run, maybe of
/// another release, must deal the same way.
fn lane_of(parsed: &Option<Result<Event, ParseError>>, line_number: u64, lanes: usize) -> usize {
    match parsed {
        Some(Ok(event)) => lane_of_stream(&event.stream_id, lanes),
        _ => (line_number % lanes as u64) as usize,
    }
}

/// The lane of a presentation's events in a run of `lanes` lanes.
pub fn lane_of_stream(stream_id: &str, lanes: usize) -> usize {
    let mut h = stream_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    ((h ^ (h >> 33)) % lanes as u64) as usize
}

/// Deals a batch's lines to the lanes, leaving out the lines a lane had
/// already committed before a resume.
pub(super) fn deal(batch: ParsedBatch, lanes: &[Checkpoint]) -> Vec<ParsedBatch> {
    let mut dealt: Vec<ParsedBatch> = lanes
        .iter()
        .map(|_| ParsedBatch {
            lines: Vec::new(),
            parsed: Vec::new(),
            nonblank: 0,
            end_offset: batch.end_offset,
            last_line: batch.last_line,
            bytes: 0,
        })
        .collect();
    for (line, parsed) in batch.lines.into_iter().zip(batch.parsed) {
        let lane = lane_of(&parsed, line.number, lanes.len());
        if line.end_offset <= lanes[lane].next_offset {
            continue;
        }
        let to = &mut dealt[lane];
        if parsed.is_some() {
            to.nonblank += 1;
        }
        to.bytes += line.bytes.len();
        to.lines.push(line);
        to.parsed.push(parsed);
    }
    dealt
}

/// One lane of a run: what it needs to load or send its share of each batch.
pub(super) struct Lane {
    pub(super) index: usize,
    pub(super) db: Arc<Database>,
    pub(super) sqs: Option<aws_sdk_sqs::Client>,
    pub(super) queues: QueueUrls,
    pub(super) options: BackfillOptions,
    pub(super) run_id: String,
    pub(super) base_elapsed_ms: u64,
    pub(super) started: Instant,
    /// Non-blank lines committed by every lane (progress display).
    pub(super) committed_lines: Arc<AtomicU64>,
    pub(super) before_commit: Option<LaneHook>,
}

impl Lane {
    /// Loads or sends this lane's share of a batch, then commits its
    /// checkpoint (with the load, in `direct` mode).
    pub(super) async fn apply_batch(
        &self,
        mut checkpoint: Checkpoint,
        batch: ParsedBatch,
    ) -> Result<Checkpoint, JobError> {
        let options = &self.options;
        checkpoint.counters.lines += batch.nonblank;
        checkpoint.next_offset = batch.end_offset;
        checkpoint.next_line = batch.last_line;
        checkpoint.elapsed_ms = self.base_elapsed_ms + self.started.elapsed().as_millis() as u64;
        // What this batch takes: valid events the filters accept, and the rejects.
        let mut taken: Vec<usize> = Vec::new();
        let mut rejected: Vec<(usize, String)> = Vec::new();
        for (index, parsed) in batch.parsed.iter().enumerate() {
            match parsed {
                None => {}
                Some(Err(reason)) => rejected.push((index, reason.to_string())),
                Some(Ok(event)) if options.filters.accepts(event) => taken.push(index),
                Some(Ok(_)) => checkpoint.counters.skipped += 1,
            }
        }
        checkpoint.counters.malformed += rejected.len() as u64;
        if options.dry_run {
            for &index in &taken {
                let event = batch.parsed[index]
                    .as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .expect("taken events are valid");
                checkpoint.counters.events += 1;
                match event.data_point() {
                    Some(dp) => {
                        *checkpoint
                            .counters
                            .by_data_point
                            .entry(dp.to_string())
                            .or_default() += 1
                    }
                    None => checkpoint.counters.not_analytics += 1,
                }
            }
            self.committed_lines
                .fetch_add(batch.nonblank, Ordering::Relaxed);
            return Ok(checkpoint);
        }
        let mut unsendable: Vec<(usize, String)> = Vec::new();
        if options.mode == Mode::Enqueue {
            let sqs = self.sqs.as_ref().expect("checked at start");
            let (sent, too_large) =
                enqueue(sqs, &self.queues, &batch, &taken, &mut checkpoint.counters).await?;
            checkpoint.counters.events += sent;
            unsendable = too_large;
        }
        let source = format!("backfill:{}", self.run_id);
        let run_id = self.run_id.clone();
        let db = self.db.clone();
        let (mode, lane, nonblank) = (options.mode, self.index, batch.nonblank);
        let before_commit = self.before_commit.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let items: Vec<Item> = if mode == Mode::Direct {
                taken
                    .iter()
                    .map(|&index| Item {
                        event: batch.parsed[index]
                            .as_ref()
                            .and_then(|r| r.as_ref().ok())
                            .expect("taken events are valid"),
                        raw: std::str::from_utf8(&batch.lines[index].bytes).unwrap_or_default(),
                        line: batch.lines[index].number,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let rejects: Vec<Reject> = rejected
                .iter()
                .chain(unsendable.iter())
                .map(|(index, reason)| Reject {
                    raw: &batch.lines[*index].bytes,
                    raw_truncated: batch.lines[*index].as_read().is_over_long(),
                    reason: reason.clone(),
                    kind: RejectKind::Malformed,
                    line: batch.lines[*index].number,
                    identity: None,
                })
                .collect();
            let far = Instant::now() + Duration::from_secs(300);
            // One transaction: `write` puts the batch's effect in, then the
            // lane's checkpoint moves on with it.
            let commit = |write: &mut Write| {
                with_retry(&db, far, |conn| {
                    let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
                    let mut next = checkpoint.clone();
                    write(&mut tx, &mut next.counters)?;
                    save_lane(&mut tx, &run_id, lane, &next)?;
                    if let Some(hook) = &before_commit {
                        hook(lane, batch.last_line);
                    }
                    tx.commit()?;
                    Ok(next)
                })
                .map(|(next, _)| next)
            };
            let whole = commit(&mut |tx, counts| {
                if mode == Mode::Direct && !batch.lines.is_empty() {
                    add_load(counts, &load_batch(tx, &source, &items, &rejects, 1)?.counts);
                } else if mode == Mode::Enqueue {
                    record_rejects(tx, &source, rejects.iter())?;
                }
                Ok(())
            });
            let error = match whole {
                Ok(counted) => return Ok(counted),
                Err(error) if error.is_transient() || mode != Mode::Direct => {
                    return Err(JobError::from(error))
                }
                Err(error) => error,
            };
            // The database refuses the batch: its lines are loaded in parts
            // around the events it refuses, which are recorded with their
            // line and reason; then the lane's checkpoint moves on with the
            // rejects. A crash in between is safe: a resumed run loads the
            // batch again, and what was loaded counts as duplicates.
            tracing::warn!(%source, %error, lines = batch.lines.len(), "a backfill batch was refused; loading it in parts");
            let isolated = commit_isolating(&db, far, &source, &items, &[], None);
            if !isolated.retry.is_empty() {
                return Err(DbError::caused("loading a batch in parts failed", error).into());
            }
            let counted = commit(&mut |tx, counts| {
                record_rejects(tx, &source, rejects.iter())?;
                add_load(counts, &isolated.counts);
                Ok(())
            })?;
            Ok::<_, JobError>(counted)
        })
        .await
        .map_err(|e| DbError::caused("loading a batch failed", e))??;
        self.committed_lines.fetch_add(nonblank, Ordering::Relaxed);
        Ok(committed)
    }
}

/// What a lane's transaction writes before its checkpoint, counting it.
type Write<'w> =
    dyn FnMut(&mut mysql::Transaction<'_>, &mut RunCounts) -> Result<(), mysql::Error> + 'w;

/// A run's counts after one of its batches loaded.
fn add_load(counts: &mut RunCounts, load: &LoadCounts) {
    counts.events += load.loaded;
    counts.duplicates += load.duplicates;
    counts.conflicts += load.conflicts;
    counts.not_analytics += load.not_analytics;
    counts.refused += load.refused;
    for (dp, n) in &load.loaded_by_data_point {
        *counts.by_data_point.entry(dp.to_string()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{parse_line, Line, LineBytes};

    fn line(number: u64, text: &str) -> Line {
        Line::new(number, number * 100, text.as_bytes().to_vec())
    }

    fn event_line(stream: &str, version: i64) -> String {
        format!(
            r#"{{"streamId":"{stream}","version":{version},"type":"ViewerLeft","occurredAt":{{"$date":"2021-09-14T14:00:00Z"}},"tenantId":"t","data":{{"sessionId":"s","viewerId":"u"}}}}"#
        )
    }

    fn batch(lines: Vec<Line>) -> ParsedBatch {
        let parsed: Vec<_> = lines
            .iter()
            .map(|l| (!l.is_blank()).then(|| parse_line(l.as_read())))
            .collect();
        ParsedBatch {
            nonblank: parsed.iter().filter(|p| p.is_some()).count() as u64,
            end_offset: lines.last().map_or(0, |l| l.end_offset),
            last_line: lines.last().map_or(0, |l| l.number),
            bytes: lines.iter().map(|l| l.bytes.len()).sum(),
            lines,
            parsed,
        }
    }

    #[test]
    fn lanes_are_dealt_by_presentation_with_a_pinned_hash() {
        // A resumed run, maybe of another release, must deal as the first
        // invocation did: these values must never change.
        let lane = |stream: &str| {
            let parsed = parse_line(LineBytes::of(event_line(stream, 1).as_bytes()));
            assert!(parsed.is_ok(), "{parsed:?}");
            lane_of(&Some(parsed), 7, 2)
        };
        assert_eq!(lane("prs-glo-0001"), 0);
        assert_eq!(lane("prs-acm-0002"), 1);
        assert_eq!(lane("prs-acm-0000"), 0);
        // Other lines go by line number.
        assert_eq!(lane_of(&Some(parse_line(LineBytes::of(b"bad"))), 7, 2), 1);
        assert_eq!(lane_of(&None, 8, 2), 0);
    }

    #[test]
    fn a_batch_is_dealt_whole_and_committed_lines_are_left_out() {
        let lines = vec![
            line(1, &event_line("prs-glo-0001", 1)),
            line(2, &event_line("prs-acm-0002", 1)),
            line(3, "not json"),
            line(4, "  "),
            line(5, &event_line("prs-acm-0002", 2)),
        ];
        let fresh = [Checkpoint::default(), Checkpoint::default()];
        let dealt = deal(batch(lines.clone()), &fresh);
        let numbers = |b: &ParsedBatch| b.lines.iter().map(|l| l.number).collect::<Vec<_>>();
        assert_eq!(numbers(&dealt[0]), vec![1, 4]);
        assert_eq!(numbers(&dealt[1]), vec![2, 3, 5]);
        assert_eq!((dealt[0].nonblank, dealt[1].nonblank), (1, 3));
        let bytes = |numbers: &[usize]| numbers.iter().map(|&n| lines[n - 1].bytes.len()).sum();
        assert_eq!(
            (dealt[0].bytes, dealt[1].bytes),
            (bytes(&[1, 4]), bytes(&[2, 3, 5]))
        );
        assert!(dealt
            .iter()
            .all(|b| b.end_offset == 500 && b.last_line == 5));

        // Lane 1 had committed up to line 3 (offset 300) before a resume.
        let resumed = [
            Checkpoint::default(),
            Checkpoint {
                next_offset: 300,
                next_line: 3,
                ..Checkpoint::default()
            },
        ];
        let dealt = deal(batch(lines), &resumed);
        assert_eq!(numbers(&dealt[0]), vec![1, 4]);
        assert_eq!(numbers(&dealt[1]), vec![5]);
        assert_eq!(dealt[1].bytes, event_line("prs-acm-0002", 2).len());
    }
}
