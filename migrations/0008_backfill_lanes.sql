-- A direct backfill loads on several connections ("lanes"), its events dealt
-- to them by presentation. Each lane commits its own checkpoint with each of
-- its batches: next_offset is the byte offset just past the last batch whose
-- lines of this lane are committed, and counters_json counts those lines. A
-- resumed run reads from the smallest next_offset and skips each lane's
-- committed lines; the run's totals are the lanes' sums (backfill_run keeps
-- them for operators, written when an invocation ends).
CREATE TABLE backfill_lane (
  run_id VARCHAR(64) NOT NULL,
  lane INT UNSIGNED NOT NULL,
  next_offset BIGINT UNSIGNED NOT NULL DEFAULT 0,
  next_line BIGINT UNSIGNED NOT NULL DEFAULT 0,
  counters_json TEXT NOT NULL,
  elapsed_ms BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, lane)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
