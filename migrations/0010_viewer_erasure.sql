-- Issue 17: a viewer's erasure (ANALYTICS.md §8) and the retention of raw
-- bodies in error_event. Self-contained: it only adds.
--
-- viewer_erasure: one row per erased viewer, all that later loads need to
-- apply the erasure: who (tenant_id, viewer_id), and when it was first
-- erased (the receipt's erasedAt, the same on every repeat). No name, no
-- email. The id itself is kept, not a hash of it: dim_viewer and every
-- answer keep the id by §8 (only the name, the email and the questions' tie
-- go), and loads must match it exactly in any tenant. ix_erasure_viewer
-- finds an id whatever its tenant, for bodies whose tenant cannot be read.
CREATE TABLE viewer_erasure (
  tenant_id VARCHAR(64) NOT NULL,
  viewer_id VARCHAR(64) NOT NULL,
  erased_at_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, viewer_id),
  KEY ix_erasure_viewer (viewer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The lock that orders erasures and loads: every transaction that writes
-- what an erasure scrubs (facts, questions, error bodies) first takes this
-- one row in share mode and then reads the erasures; `forget` takes it
-- exclusively, records the erasure and scrubs, then commits. So a load
-- either committed before the scrub (which then sees its rows) or reads the
-- erasure after it (and applies it): no interleaving loses the erasure.
-- Loads share the lock with one another; only `forget` waits for them.
CREATE TABLE erasure_guard (
  id TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO erasure_guard (id) VALUES (1);

-- Retention: the nightly reconciliation removes raw bodies not seen for
-- ERROR_RETENTION_DAYS; the row (source, line, reason, kind, counts, times)
-- stays for triage, with when its body went.
ALTER TABLE error_event
  ADD COLUMN body_removed_at TIMESTAMP(3) NULL DEFAULT NULL,
  ADD KEY ix_error_last_seen (last_seen);
