-- `warehouse status`: the last load of each data point and the events loaded
-- in the last hour and day, read as a range of this index instead of a scan
-- of the whole ledger. loaded_at grows with time, so the index is appended
-- to at one end per data point.
ALTER TABLE event_ledger
  ADD KEY ix_ledger_loaded (data_point, loaded_at);
