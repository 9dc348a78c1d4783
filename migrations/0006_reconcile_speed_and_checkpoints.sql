-- Reconciliation reads a window's ledger rows through one index that holds
-- everything its checksum query needs, so it never visits the clustered index
-- (those lookups dominated at 5 M rows). content_hash56 is the first 7 bytes
-- of the content hash as an integer: virtual, so it is stored only in the
-- index, and summed there without converting each row's hash. The index
-- starts with occurred_at_ms, so it replaces ix_ledger_occurred.
ALTER TABLE event_ledger
  ADD COLUMN content_hash56 BIGINT UNSIGNED
    AS (CAST(CONV(HEX(SUBSTRING(content_hash, 1, 7)), 16, 10) AS UNSIGNED)) VIRTUAL;

ALTER TABLE event_ledger
  ADD KEY ix_ledger_reconcile (occurred_at_ms, data_point, stream_id, version, content_hash56),
  DROP KEY ix_ledger_occurred;

-- A run is recorded when it starts; progress_json holds where it stands
-- (which pass, the byte offset to continue from, the counts so far) until it
-- finishes, when finished_at is set and progress_json cleared. A run that
-- stops before its time limit continues from there (the reconcile Lambda).
ALTER TABLE reconcile_run
  MODIFY finished_at TIMESTAMP(3) NULL DEFAULT NULL,
  ADD COLUMN progress_json MEDIUMTEXT NULL;

-- An unfinished run's per-stream state, written when it stops: in the export
-- pass the versions seen (one bit each) and the export's block checksums; in
-- the details pass the versions compared and the blocks that differ.
CREATE TABLE reconcile_run_stream (
  run_id BIGINT UNSIGNED NOT NULL,
  stream_id VARCHAR(64) NOT NULL,
  versions MEDIUMBLOB NOT NULL,
  blocks MEDIUMBLOB NOT NULL,
  PRIMARY KEY (run_id, stream_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
