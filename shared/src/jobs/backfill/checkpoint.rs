//! A run's checkpoints: where each lane stands (committed with the lane's
//! batch), the run as a whole, and starting, resuming and saving the run's
//! rows (`backfill_run`, `backfill_lane`).

use mysql::prelude::Queryable;

use crate::store::{Database, DbError};

use super::{BackfillOptions, RunCounts};

/// Where one lane stands: the byte offset just past the last batch whose
/// lines of this lane are committed, and the counters of those lines.
#[derive(Clone, Default)]
pub(super) struct Checkpoint {
    pub(super) next_offset: u64,
    pub(super) next_line: u64,
    pub(super) counters: RunCounts,
    pub(super) elapsed_ms: u64,
}

/// A run's lanes, whether it is done, and its time so far.
pub(super) struct RunState {
    pub(super) lanes: Vec<Checkpoint>,
    pub(super) done: bool,
    pub(super) elapsed_ms: u64,
}

impl RunState {
    pub(super) fn new(lanes: usize) -> RunState {
        RunState {
            lanes: vec![Checkpoint::default(); lanes],
            done: false,
            elapsed_ms: 0,
        }
    }

    /// The run as a whole: counters summed, the offset every lane has passed
    /// (where a resumed read starts), the longest elapsed time.
    pub(super) fn total(&self) -> Checkpoint {
        let resume = self
            .lanes
            .iter()
            .min_by_key(|c| c.next_offset)
            .cloned()
            .unwrap_or_default();
        let mut total = Checkpoint {
            next_offset: resume.next_offset,
            next_line: resume.next_line,
            counters: RunCounts::default(),
            elapsed_ms: self
                .lanes
                .iter()
                .map(|c| c.elapsed_ms)
                .fold(self.elapsed_ms, u64::max),
        };
        for lane in &self.lanes {
            total.counters.add(&lane.counters);
        }
        total
    }
}

/// Starts a run or resumes it: returns where each lane continues.
pub(super) fn begin(
    db: &Database,
    run_id: &str,
    options: &BackfillOptions,
    lanes: usize,
) -> Result<RunState, DbError> {
    let options_json = serde_json::to_string(options).expect("options serialise");
    let mut conn = db.conn()?;
    let existing: Option<(String, String, u64)> = conn
        .exec_first(
            "SELECT options_json, status, elapsed_ms FROM backfill_run WHERE run_id = ?",
            (run_id,),
        )
        .map_err(|e| DbError::caused(format!("cannot read backfill run {run_id}"), e))?;
    match existing {
        Some((stored, status, elapsed_ms)) => {
            if stored != options_json {
                return Err(DbError::permanent(format!(
                    "run {run_id} was started with other options ({stored}); resume it with the same source, mode, filters and --lanes, or use another --run-id"
                )));
            }
            conn.exec_drop(
                "UPDATE backfill_run SET invocations = invocations + 1 WHERE run_id = ?",
                (run_id,),
            )
            .map_err(|e| DbError::caused("", e))?;
            let rows: Vec<(u64, u64, String, u64)> = conn
                .exec(
                    "SELECT next_offset, next_line, counters_json, elapsed_ms FROM backfill_lane WHERE run_id = ? ORDER BY lane",
                    (run_id,),
                )
                .map_err(|e| DbError::caused(format!("cannot read backfill run {run_id}"), e))?;
            if rows.len() != lanes {
                return Err(DbError::permanent(format!(
                    "run {run_id} has {} lane checkpoints where its options need {lanes}: it was started by an older version; start it again with another --run-id",
                    rows.len()
                )));
            }
            Ok(RunState {
                lanes: rows
                    .into_iter()
                    .map(
                        |(next_offset, next_line, counters, elapsed_ms)| Checkpoint {
                            next_offset,
                            next_line,
                            counters: serde_json::from_str(&counters).unwrap_or_default(),
                            elapsed_ms,
                        },
                    )
                    .collect(),
                done: status == "done",
                elapsed_ms,
            })
        }
        None => {
            let mut tx = conn
                .start_transaction(mysql::TxOpts::default())
                .map_err(|e| DbError::caused(format!("cannot start backfill run {run_id}"), e))?;
            tx.exec_drop(
                "INSERT INTO backfill_run (run_id, source, mode, options_json, status, counters_json, invocations) VALUES (?, ?, ?, ?, 'running', '{}', 1)",
                (run_id, &options.source, options.mode.as_str(), &options_json),
            )
            .and_then(|()| {
                tx.exec_batch(
                    "INSERT INTO backfill_lane (run_id, lane, counters_json) VALUES (?, ?, '{}')",
                    (0..lanes).map(|lane| (run_id, lane)),
                )
            })
            .and_then(|()| tx.commit())
            .map_err(|e| DbError::caused(format!("cannot start backfill run {run_id}"), e))?;
            Ok(RunState::new(lanes))
        }
    }
}

/// A lane's checkpoint, in the transaction of the batch it follows.
pub(super) fn save_lane(
    tx: &mut impl Queryable,
    run_id: &str,
    lane: usize,
    checkpoint: &Checkpoint,
) -> Result<(), mysql::Error> {
    tx.exec_drop(
        "UPDATE backfill_lane SET next_offset = ?, next_line = ?, counters_json = ?, elapsed_ms = ? WHERE run_id = ? AND lane = ?",
        (
            checkpoint.next_offset,
            checkpoint.next_line,
            serde_json::to_string(&checkpoint.counters).expect("counters serialise"),
            checkpoint.elapsed_ms,
            run_id,
            lane,
        ),
    )
}

/// The run's row: where it stands as a whole (what operators read).
pub(super) fn save_run(
    db: &Database,
    run_id: &str,
    total: &Checkpoint,
    done: bool,
) -> Result<(), DbError> {
    let status = if done { "done" } else { "running" };
    db.conn()?
        .exec_drop(
            "UPDATE backfill_run SET next_offset = ?, next_line = ?, counters_json = ?, elapsed_ms = ?, status = ?, \
             updated_at = CURRENT_TIMESTAMP(3), finished_at = IF(? = 'done', CURRENT_TIMESTAMP(3), NULL) WHERE run_id = ?",
            (
                total.next_offset,
                total.next_line,
                serde_json::to_string(&total.counters).expect("counters serialise"),
                total.elapsed_ms,
                status,
                status,
                run_id,
            ),
        )
        .map_err(|e| DbError::caused(format!("cannot save backfill run {run_id}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_totals_sum_its_lanes_and_resume_from_the_least_offset() {
        let lane = |next_offset, next_line, elapsed_ms, lines, attendance| {
            let mut checkpoint = Checkpoint {
                next_offset,
                next_line,
                elapsed_ms,
                ..Checkpoint::default()
            };
            checkpoint.counters.lines = lines;
            checkpoint
                .counters
                .by_data_point
                .insert("attendance".into(), attendance);
            checkpoint
        };
        let (first, second) = (lane(900, 9, 40, 5, 3), lane(400, 4, 70, 2, 1));
        let state = RunState {
            lanes: vec![first, second],
            done: false,
            elapsed_ms: 50,
        };
        let total = state.total();
        assert_eq!((total.next_offset, total.next_line), (400, 4));
        assert_eq!(total.counters.lines, 7);
        assert_eq!(total.counters.by_data_point["attendance"], 4);
        assert_eq!(total.elapsed_ms, 70);
    }
}
