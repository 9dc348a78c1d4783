-- Analytics: per-presentation summaries computed from the facts by
-- `shared::analytics` (never by the loaders).
--
-- `source_revision` is the `dim_presentation.revision` a row was computed
-- from, read in the same consistent snapshot as the facts. A row whose
-- source_revision is below the presentation's current revision is stale and
-- is recomputed before it is used. `format_version` is the version of the
-- code's computation: a row of another format is recomputed too. Concurrent
-- refreshes merge with "higher (source_revision, format_version) wins", so a
-- slow refresh never overwrites a newer one.

-- The presentation list's headline figures.
CREATE TABLE agg_presentation (
  presentation_key BIGINT UNSIGNED NOT NULL,
  source_revision BIGINT UNSIGNED NOT NULL,
  format_version INT UNSIGNED NOT NULL,
  unique_viewers BIGINT NOT NULL,
  peak_concurrent_viewers BIGINT NOT NULL,
  total_watch_seconds BIGINT NOT NULL,
  polls BIGINT NOT NULL,
  surveys BIGINT NOT NULL,
  questions BIGINT NOT NULL,
  refreshed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (presentation_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The whole presentation report as JSON, so that asking again before the
-- next load touching the presentation costs one primary-key read.
CREATE TABLE agg_presentation_report (
  presentation_key BIGINT UNSIGNED NOT NULL,
  source_revision BIGINT UNSIGNED NOT NULL,
  format_version INT UNSIGNED NOT NULL,
  report LONGTEXT NOT NULL,
  refreshed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (presentation_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
