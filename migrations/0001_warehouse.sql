-- The warehouse star schema.
--
-- Conventions: times are BIGINT milliseconds since the Unix epoch (UTC), exact
-- and free of server time-zone settings; `*_date_key` columns point at
-- dim_date (yyyymmdd). Surrogate keys are BIGINT UNSIGNED. No foreign-key
-- constraints: facts may arrive before their dimensions (inferred members),
-- and the loaders' merges keep every row consistent in any arrival order.
--
-- Convergence rules (why the loaders can apply events in any order, any number
-- of times): every fact column is either keyed by the event identity
-- (stream_id, version) and written once, or merged with a commutative,
-- idempotent rule: LEAST / GREATEST, or "lowest/highest version wins" with the
-- deciding version stored beside the value.

CREATE TABLE dim_date (
  date_key INT NOT NULL,
  full_date DATE NOT NULL,
  year SMALLINT NOT NULL,
  quarter TINYINT NOT NULL,
  month TINYINT NOT NULL,
  day_of_month TINYINT NOT NULL,
  iso_day_of_week TINYINT NOT NULL,
  PRIMARY KEY (date_key),
  UNIQUE KEY uk_dim_date_full_date (full_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- 1970-01-01 .. 2099-12-31; facts outside that range keep their date_key
-- without a dimension row.
INSERT INTO dim_date (date_key, full_date, year, quarter, month, day_of_month, iso_day_of_week)
SELECT CAST(DATE_FORMAT(d, '%Y%m%d') AS UNSIGNED), d, YEAR(d), QUARTER(d), MONTH(d), DAYOFMONTH(d), WEEKDAY(d) + 1
FROM (
  SELECT DATE_ADD('1970-01-01', INTERVAL (a.n + 10 * b.n + 100 * c.n + 1000 * e.n + 10000 * f.n) DAY) AS d
  FROM (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a
  CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b
  CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c
  CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) e
  CROSS JOIN (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) f
) days
WHERE d <= '2099-12-31';

-- The presentation dimension (one row per stream). A row created by any other
-- event is an inferred member (created_version IS NULL) until its
-- PresentationCreated arrives.
CREATE TABLE dim_presentation (
  presentation_key BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  presentation_id VARCHAR(64) NOT NULL,
  tenant_id VARCHAR(64) NOT NULL,
  title TEXT NULL,
  title_version BIGINT NULL,
  presenter_id VARCHAR(64) NULL,
  presenter_name TEXT NULL,
  scheduled_start_ms BIGINT NULL,
  scheduled_date_key INT NULL,
  timezone VARCHAR(64) NULL,
  created_version BIGINT NULL,
  started_at_ms BIGINT NULL,
  ended_at_ms BIGINT NULL,
  -- Bumped by every committed change to the presentation's facts, so that a
  -- summary computed from an older state is known to be stale.
  revision BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (presentation_key),
  UNIQUE KEY uk_presentation_id (presentation_id),
  KEY ix_presentation_tenant_started (tenant_id, started_at_ms),
  KEY ix_presentation_tenant_scheduled (tenant_id, scheduled_start_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Viewers are people of one tenant: (tenant_id, viewer_id) is the natural key.
CREATE TABLE dim_viewer (
  viewer_key BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id VARCHAR(64) NOT NULL,
  viewer_id VARCHAR(64) NOT NULL,
  PRIMARY KEY (viewer_key),
  UNIQUE KEY uk_viewer (tenant_id, viewer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Attendance: one row per viewing session, an accumulating snapshot. The
-- viewer and attributes come from the lowest-version ViewerJoined
-- (join_version); start is the earliest join, end the latest heartbeat or
-- leave. A row with join_version NULL is a session whose join has not arrived.
CREATE TABLE fact_session (
  presentation_key BIGINT UNSIGNED NOT NULL,
  session_id VARCHAR(64) NOT NULL,
  viewer_key BIGINT UNSIGNED NULL,
  join_version BIGINT NULL,
  device VARCHAR(16) NULL,
  country VARCHAR(64) NULL,
  department TEXT NULL,
  start_ms BIGINT NULL,
  start_date_key INT NULL,
  end_ms BIGINT NULL,
  PRIMARY KEY (presentation_key, session_id),
  KEY ix_session_viewer (presentation_key, viewer_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The viewer as seen in one presentation: attributes from the viewer's
-- highest-version ViewerJoined there (latest_join_version).
CREATE TABLE fact_presentation_viewer (
  presentation_key BIGINT UNSIGNED NOT NULL,
  viewer_key BIGINT UNSIGNED NOT NULL,
  latest_join_version BIGINT NOT NULL,
  name TEXT NULL,
  email TEXT NULL,
  department TEXT NULL,
  country VARCHAR(64) NOT NULL,
  device VARCHAR(16) NOT NULL,
  PRIMARY KEY (presentation_key, viewer_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Polls. The lowest-version PollCreated defines the poll (created_version);
-- its options carry that version so a later re-creation cannot mix in.
CREATE TABLE dim_poll (
  presentation_key BIGINT UNSIGNED NOT NULL,
  poll_id VARCHAR(64) NOT NULL,
  created_version BIGINT NULL,
  created_at_ms BIGINT NULL,
  question TEXT NULL,
  multiple_choice BOOLEAN NULL,
  closed_at_ms BIGINT NULL,
  PRIMARY KEY (presentation_key, poll_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE dim_poll_option (
  presentation_key BIGINT UNSIGNED NOT NULL,
  poll_id VARCHAR(64) NOT NULL,
  created_version BIGINT NOT NULL,
  position INT NOT NULL,
  option_id VARCHAR(64) NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (presentation_key, poll_id, created_version, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every vote is kept (keyed by its event identity): which vote is effective
-- depends on the poll's close time, which may arrive later.
CREATE TABLE fact_poll_vote (
  presentation_key BIGINT UNSIGNED NOT NULL,
  version BIGINT NOT NULL,
  poll_id VARCHAR(64) NOT NULL,
  viewer_key BIGINT UNSIGNED NOT NULL,
  occurred_at_ms BIGINT NOT NULL,
  PRIMARY KEY (presentation_key, version),
  KEY ix_poll_vote_poll (presentation_key, poll_id, viewer_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE fact_poll_vote_option (
  presentation_key BIGINT UNSIGNED NOT NULL,
  version BIGINT NOT NULL,
  position INT NOT NULL,
  option_id VARCHAR(64) NOT NULL,
  PRIMARY KEY (presentation_key, version, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Surveys, defined like polls by their lowest-version SurveyCreated.
CREATE TABLE dim_survey (
  presentation_key BIGINT UNSIGNED NOT NULL,
  survey_id VARCHAR(64) NOT NULL,
  created_version BIGINT NULL,
  created_at_ms BIGINT NULL,
  title TEXT NULL,
  PRIMARY KEY (presentation_key, survey_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE dim_survey_question (
  presentation_key BIGINT UNSIGNED NOT NULL,
  survey_id VARCHAR(64) NOT NULL,
  created_version BIGINT NOT NULL,
  position INT NOT NULL,
  question_id VARCHAR(64) NOT NULL,
  kind VARCHAR(8) NOT NULL,
  text TEXT NOT NULL,
  scale BIGINT NOT NULL,
  PRIMARY KEY (presentation_key, survey_id, created_version, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE dim_survey_question_option (
  presentation_key BIGINT UNSIGNED NOT NULL,
  survey_id VARCHAR(64) NOT NULL,
  created_version BIGINT NOT NULL,
  question_position INT NOT NULL,
  position INT NOT NULL,
  option_id VARCHAR(64) NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (presentation_key, survey_id, created_version, question_position, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every submission is kept; the highest version per viewer is effective.
CREATE TABLE fact_survey_response (
  presentation_key BIGINT UNSIGNED NOT NULL,
  version BIGINT NOT NULL,
  survey_id VARCHAR(64) NOT NULL,
  viewer_key BIGINT UNSIGNED NOT NULL,
  occurred_at_ms BIGINT NOT NULL,
  PRIMARY KEY (presentation_key, version),
  KEY ix_survey_response_survey (presentation_key, survey_id, viewer_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per answer in the submission, in submission order (position).
CREATE TABLE fact_survey_answer (
  presentation_key BIGINT UNSIGNED NOT NULL,
  version BIGINT NOT NULL,
  position INT NOT NULL,
  question_id VARCHAR(64) NOT NULL,
  rating BIGINT NULL,
  text_answer TEXT NULL,
  PRIMARY KEY (presentation_key, version, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE fact_survey_answer_option (
  presentation_key BIGINT UNSIGNED NOT NULL,
  version BIGINT NOT NULL,
  answer_position INT NOT NULL,
  position INT NOT NULL,
  option_id VARCHAR(64) NOT NULL,
  PRIMARY KEY (presentation_key, version, answer_position, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Q&A. The question row is created by whichever of its events arrives first;
-- asked_version IS NULL until its QuestionAsked arrives. For an anonymous
-- question the asker is never stored: asker_viewer_key stays NULL.
CREATE TABLE dim_question (
  presentation_key BIGINT UNSIGNED NOT NULL,
  question_id VARCHAR(64) NOT NULL,
  asked_version BIGINT NULL,
  asked_at_ms BIGINT NULL,
  text TEXT NULL,
  anonymous BOOLEAN NULL,
  asker_viewer_key BIGINT UNSIGNED NULL,
  status VARCHAR(9) NULL,
  status_version BIGINT NULL,
  first_answered_at_ms BIGINT NULL,
  answered_by_id VARCHAR(64) NULL,
  answered_by_name TEXT NULL,
  answer_method VARCHAR(16) NULL,
  PRIMARY KEY (presentation_key, question_id),
  KEY ix_question_asker (presentation_key, asker_viewer_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A viewer's upvote state on a question: the highest version among their
-- QuestionUpvoted / QuestionUpvoteWithdrawn decides.
CREATE TABLE fact_question_upvote (
  presentation_key BIGINT UNSIGNED NOT NULL,
  question_id VARCHAR(64) NOT NULL,
  viewer_key BIGINT UNSIGNED NOT NULL,
  version BIGINT NOT NULL,
  upvoted BOOLEAN NOT NULL,
  PRIMARY KEY (presentation_key, question_id, viewer_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every accepted analytics event, by identity. Decides idempotency (an
-- identity already here is a duplicate) and conflicts (same identity,
-- different content hash). load_id tells which load inserted the row.
CREATE TABLE event_ledger (
  stream_id VARCHAR(64) NOT NULL,
  version BIGINT NOT NULL,
  tenant_id VARCHAR(64) NOT NULL,
  data_point VARCHAR(16) NOT NULL,
  event_type VARCHAR(64) NOT NULL,
  occurred_at_ms BIGINT NOT NULL,
  content_hash BINARY(32) NOT NULL,
  load_id BIGINT UNSIGNED NOT NULL,
  loaded_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (stream_id, version),
  KEY ix_ledger_occurred (occurred_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Messages and lines that could not be loaded, with why. The same body from
-- the same source (and line) is one row whose seen_count grows.
CREATE TABLE error_event (
  error_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  source VARCHAR(128) NOT NULL,
  line_number BIGINT NOT NULL DEFAULT 0,
  body_sha256 BINARY(32) NOT NULL,
  raw_body MEDIUMBLOB NOT NULL,
  body_truncated BOOLEAN NOT NULL DEFAULT FALSE,
  reason TEXT NOT NULL,
  kind VARCHAR(32) NOT NULL,
  stream_id VARCHAR(64) NULL,
  version BIGINT NULL,
  first_seen TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  last_seen TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  seen_count INT UNSIGNED NOT NULL DEFAULT 1,
  PRIMARY KEY (error_id),
  UNIQUE KEY uk_error_body (source, body_sha256, line_number),
  KEY ix_error_first_seen (first_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per committed load (an SQS batch or a backfill chunk).
CREATE TABLE load_run (
  load_id BIGINT UNSIGNED NOT NULL,
  source VARCHAR(128) NOT NULL,
  started_at TIMESTAMP(3) NOT NULL,
  finished_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  messages INT UNSIGNED NOT NULL,
  events_loaded INT UNSIGNED NOT NULL,
  duplicates INT UNSIGNED NOT NULL,
  conflicts INT UNSIGNED NOT NULL,
  malformed INT UNSIGNED NOT NULL,
  wrong_data_point INT UNSIGNED NOT NULL,
  not_analytics INT UNSIGNED NOT NULL,
  attempts INT UNSIGNED NOT NULL,
  PRIMARY KEY (load_id),
  KEY ix_load_run_finished (finished_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
