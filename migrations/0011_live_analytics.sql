-- Issue 16: freshness (ANALYTICS.md §6) and the engagement weights (§5).
-- Self-contained: it only adds (and fills the new column once).
--
-- dim_presentation.data_through_ms: the latest occurredAt among the
-- presentation's accepted analytics events (`dataThrough`). Every batch
-- already upserts the row of each presentation it touches (the revision
-- bump), so the loaders keep it with GREATEST in that same statement, and
-- an answer reads it with the row it reads anyway: no scan of the ledger
-- per answer (a live presentation has hundreds of thousands of events).
-- Filled here once from the ledger for what was loaded before; events of
-- no data point ('none': not analytics) never count.
ALTER TABLE dim_presentation
  ADD COLUMN data_through_ms BIGINT NULL;

UPDATE dim_presentation p
SET data_through_ms = (
  SELECT MAX(l.occurred_at_ms) FROM event_ledger l
  WHERE l.tenant_id = p.tenant_id AND l.stream_id = p.presentation_id AND l.data_point <> 'none'
);

-- engagement_weight: a tenant's weights of the engagement score, set with
-- `warehouse engagement set`; a tenant without a row has the defaults.
-- tenant_id is VARBINARY (as in feature_flag) so tenants are matched byte
-- for byte.
CREATE TABLE engagement_weight (
  tenant_id VARBINARY(256) NOT NULL,
  watch TINYINT UNSIGNED NOT NULL,
  polls TINYINT UNSIGNED NOT NULL,
  surveys TINYINT UNSIGNED NOT NULL,
  qna TINYINT UNSIGNED NOT NULL,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (tenant_id),
  CONSTRAINT ck_engagement_weight_range CHECK (watch <= 100 AND polls <= 100 AND surveys <= 100 AND qna <= 100),
  CONSTRAINT ck_engagement_weight_some CHECK (watch + polls + surveys + qna > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
