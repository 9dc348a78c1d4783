-- Reconciliation runs and what each found. A discrepancy row names one
-- event: missing (in the export, not in the warehouse), unexpected (in the
-- warehouse within the window, not in the export) or conflicting (same
-- identity, different content).
CREATE TABLE reconcile_run (
  run_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  source TEXT NOT NULL,
  from_ms BIGINT NOT NULL,
  to_ms BIGINT NOT NULL,
  compared BIGINT UNSIGNED NOT NULL,
  missing BIGINT UNSIGNED NOT NULL,
  unexpected BIGINT UNSIGNED NOT NULL,
  conflicting BIGINT UNSIGNED NOT NULL,
  repaired BIGINT UNSIGNED NOT NULL,
  repair_mode VARCHAR(8) NULL,
  summary_json MEDIUMTEXT NOT NULL,
  finished_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (run_id),
  KEY ix_reconcile_run_finished (finished_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE reconcile_discrepancy (
  run_id BIGINT UNSIGNED NOT NULL,
  stream_id VARCHAR(64) NOT NULL,
  version BIGINT NOT NULL,
  kind VARCHAR(12) NOT NULL,
  data_point VARCHAR(16) NOT NULL,
  tenant_id VARCHAR(64) NOT NULL,
  PRIMARY KEY (run_id, stream_id, version),
  KEY ix_discrepancy_kind (run_id, kind, data_point)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
