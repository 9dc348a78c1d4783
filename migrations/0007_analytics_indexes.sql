-- Analytics: each viewer's effective poll vote (the highest version at or
-- before the poll's closing) is found from this index alone, in index order,
-- without reading the vote rows. It replaces ix_poll_vote_poll, its prefix,
-- so the loaders still maintain one secondary index per vote.
ALTER TABLE fact_poll_vote
  ADD KEY ix_poll_vote_effective (presentation_key, poll_id, viewer_key, occurred_at_ms),
  DROP KEY ix_poll_vote_poll;
