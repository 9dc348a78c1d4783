-- Backfill runs: one row per run id, the checkpoint a resumed run continues
-- from. next_offset is the byte offset (of the decompressed export) just past
-- the last line whose effect is committed; the counters cover everything up
-- to it, so a resumed run's final summary equals an uninterrupted one's.
CREATE TABLE backfill_run (
  run_id VARCHAR(64) NOT NULL,
  source TEXT NOT NULL,
  mode VARCHAR(8) NOT NULL,
  options_json TEXT NOT NULL,
  status VARCHAR(8) NOT NULL,
  next_offset BIGINT UNSIGNED NOT NULL DEFAULT 0,
  next_line BIGINT UNSIGNED NOT NULL DEFAULT 0,
  counters_json TEXT NOT NULL,
  elapsed_ms BIGINT UNSIGNED NOT NULL DEFAULT 0,
  invocations INT UNSIGNED NOT NULL DEFAULT 0,
  started_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  finished_at TIMESTAMP(3) NULL,
  PRIMARY KEY (run_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
