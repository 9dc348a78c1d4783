-- Issue 15. A presentation is (tenant_id, stream id) and an event's identity
-- (tenant_id, stream_id, version) (EVENTS.md): an event carrying another
-- tenant is another presentation's and can neither join nor shadow the
-- first tenant's stream. The keys lead with the tenant, as every answer does.
ALTER TABLE dim_presentation
  DROP KEY uk_presentation_id,
  ADD UNIQUE KEY uk_presentation (tenant_id, presentation_id);

ALTER TABLE event_ledger
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (tenant_id, stream_id, version),
  DROP KEY ix_ledger_reconcile,
  ADD KEY ix_ledger_reconcile (occurred_at_ms, data_point, tenant_id, stream_id, version, content_hash56);

ALTER TABLE reconcile_discrepancy
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (run_id, tenant_id, stream_id, version);

ALTER TABLE reconcile_run_stream
  ADD COLUMN tenant_id VARCHAR(64) NOT NULL DEFAULT '' AFTER run_id,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (run_id, tenant_id, stream_id);

-- The limits: a country of 255 characters after upper-casing is still a
-- country (longer is `unknown`, stored as such); option ids, a survey
-- question's own id and a person's id are texts of up to 4,000 characters,
-- not ids (EVENTS.md, Limits).
ALTER TABLE fact_session MODIFY country VARCHAR(255) NULL;
ALTER TABLE fact_presentation_viewer MODIFY country VARCHAR(255) NOT NULL;
ALTER TABLE dim_presentation MODIFY presenter_id VARCHAR(4000) NULL;
ALTER TABLE dim_poll_option MODIFY option_id VARCHAR(4000) NOT NULL;
ALTER TABLE fact_poll_vote_option MODIFY option_id VARCHAR(4000) NOT NULL;
ALTER TABLE dim_survey_question MODIFY question_id VARCHAR(4000) NOT NULL;
ALTER TABLE dim_survey_question_option MODIFY option_id VARCHAR(4000) NOT NULL;
ALTER TABLE fact_survey_answer_option MODIFY option_id VARCHAR(4000) NOT NULL;
ALTER TABLE dim_question MODIFY answered_by_id VARCHAR(4000) NULL;
