-- Rollout flags of the analytics API: per tenant and data point (attendance,
-- polls, surveys, qna), whether the API serves that data point's sections:
-- 'off' (left out: the product uses its old path), 'shadow' (served only to
-- requests asking with ?shadow=true, for comparison with the old path) or
-- 'on'. A tenant and data point without a row is 'on' (shared::flags).
--
-- tenant_id is VARBINARY: compared byte for byte with no PAD SPACE, so the
-- flag of `acme` is never the flag of `acme ` (tenant ids are 1 to 64
-- characters, at most 256 bytes of UTF-8).
CREATE TABLE feature_flag (
  tenant_id VARBINARY(256) NOT NULL,
  data_point VARCHAR(16) NOT NULL,
  state VARCHAR(8) NOT NULL,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (tenant_id, data_point),
  CONSTRAINT ck_feature_flag_data_point CHECK (data_point IN ('attendance', 'polls', 'surveys', 'qna')),
  CONSTRAINT ck_feature_flag_state CHECK (state IN ('off', 'shadow', 'on'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
