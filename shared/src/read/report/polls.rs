//! The report's polls: their definitions, then each viewer's effective vote
//! and its valid options, folded in Rust (`PollFold`). The viewer list's
//! `pollsAnswered` reuses the definitions and the effective-vote CTE.
//!
//! Poll definitions (close times, option ids) are read first and inlined
//! as literal lookup tables, so that the statements on votes only read
//! votes (see `effective_votes_cte`).

use std::collections::HashMap;

use mysql::prelude::Queryable;

use crate::contract::{format_time_opt, PollOption, PollReport};
use crate::read::error::AnalyticsError;
use crate::read::sql::{
    bytes, bytes_literal, case_of, fetch, stream, take, take_opt_string, take_string, Scope,
};
use crate::store::push_str_literal;

/// A reported poll as `PollCreated` defined it.
pub(in crate::read) struct PollDim {
    poll_id: String,
    question: String,
    multiple_choice: bool,
    closed_at_ms: Option<i64>,
    /// (optionId, text), in `PollCreated` order.
    options: Vec<(String, String)>,
}

/// The reported polls of one presentation with their options, ordered by
/// creation time then pollId.
pub(in crate::read) fn poll_dims(
    conn: &mut impl Queryable,
    scope: &Scope,
) -> Result<Vec<PollDim>, AnalyticsError> {
    let sql = format!(
        "SELECT d.poll_id, d.question, d.multiple_choice, d.closed_at_ms, o.option_id, o.text \
         FROM dim_presentation p \
         JOIN dim_poll d ON d.presentation_key = p.presentation_key \
         LEFT JOIN dim_poll_option o ON o.presentation_key = d.presentation_key \
           AND o.poll_id = d.poll_id AND o.created_version = d.created_version \
         WHERE {} AND d.created_version IS NOT NULL \
         ORDER BY d.created_at_ms, {}, o.position",
        scope.condition,
        bytes("d.poll_id")
    );
    let mut polls: Vec<PollDim> = Vec::new();
    for mut row in fetch(conn, &sql, "reading polls")? {
        let poll_id = take_string(&mut row, 0)?;
        if polls.last().is_none_or(|p| p.poll_id != poll_id) {
            polls.push(PollDim {
                poll_id,
                question: take_string(&mut row, 1)?,
                multiple_choice: take::<Option<bool>>(&mut row, 2)?.unwrap_or(false),
                closed_at_ms: take(&mut row, 3)?,
                options: Vec::new(),
            });
        }
        if let Some(option_id) = take_opt_string(&mut row, 4)? {
            let text = take_string(&mut row, 5)?;
            if let Some(poll) = polls.last_mut() {
                poll.options.push((option_id, text));
            }
        }
    }
    Ok(polls)
}

/// `eff` (poll_id, viewer_key, version): each viewer's effective vote in
/// the reported `polls` of presentation `key`, the highest version at or
/// before the poll's closing. The polls' definitions are few and already
/// read, so their close times are inlined as a literal lookup table and the
/// statement only reads the votes, grouped in index order.
fn effective_votes_cte(polls: &[PollDim], key: u64) -> String {
    let mut ids = String::new();
    for (i, poll) in polls.iter().enumerate() {
        if i > 0 {
            ids.push(',');
        }
        push_str_literal(&mut ids, &poll.poll_id);
    }
    let closes = case_of(
        "v.poll_id",
        polls.iter().map(|p| {
            let until = p.closed_at_ms.unwrap_or(i64::MAX);
            (p.poll_id.clone(), until.to_string())
        }),
    );
    format!(
        "eff AS (\
           SELECT v.poll_id, v.viewer_key, MAX(v.version) AS version \
           FROM fact_poll_vote v \
           WHERE v.presentation_key = {key} AND v.poll_id IN ({ids}) AND v.occurred_at_ms <= {closes} \
           GROUP BY v.poll_id, v.viewer_key)"
    )
}

/// `pa` (viewer_key, n): the number of reported polls where each viewer is
/// a respondent, i.e. whose effective vote names at least one option of the
/// poll (the rule of `PollFold`: a single-choice vote keeps its first
/// valid option, which exists exactly when any does).
pub(in crate::read) fn polls_answered_ctes(polls: &[PollDim], key: u64) -> String {
    let valid = case_of(
        "e.poll_id",
        polls.iter().map(|p| {
            let arms = p
                .options
                .iter()
                .map(|(id, _)| (id.clone(), "1".to_string()));
            (p.poll_id.clone(), case_of("vo.option_id", arms))
        }),
    );
    format!(
        "{}, pa AS (\
           SELECT e.viewer_key, COUNT(*) AS n FROM eff e \
           WHERE EXISTS (SELECT 1 FROM fact_poll_vote_option vo \
             WHERE vo.presentation_key = {key} AND vo.version = e.version AND {valid} = 1) \
           GROUP BY e.viewer_key)",
        effective_votes_cte(polls, key)
    )
}

pub(super) fn polls(
    conn: &mut impl Queryable,
    scope: &Scope,
    key: u64,
) -> Result<Vec<PollReport>, AnalyticsError> {
    let dims = poll_dims(conn, scope)?;
    let mut fold = PollFold::new(&dims);
    if !dims.is_empty() {
        fold.read(conn, &dims, key)?;
    }
    Ok(dims
        .into_iter()
        .zip(fold.respondents.into_iter().zip(fold.votes))
        .map(|(poll, (respondents, votes))| PollReport {
            options: poll
                .options
                .into_iter()
                .zip(votes)
                .map(|((option_id, text), votes)| PollOption {
                    option_id,
                    text,
                    votes,
                })
                .collect(),
            poll_id: poll.poll_id,
            question: poll.question,
            multiple_choice: poll.multiple_choice,
            closed_at: format_time_opt(poll.closed_at_ms),
            respondents,
        })
        .collect())
}

/// Poll figures, folded from the effective votes (one entry each) and a
/// range read of the presentation's vote options in primary-key order (by
/// vote, in the vote's order; no join and no sort in the database).
struct PollFold {
    respondents: Vec<i64>,
    /// Per poll, votes per option (in `PollCreated` order).
    votes: Vec<Vec<i64>>,
}

impl PollFold {
    fn new(polls: &[PollDim]) -> PollFold {
        PollFold {
            respondents: vec![0; polls.len()],
            votes: polls.iter().map(|p| vec![0; p.options.len()]).collect(),
        }
    }

    fn read(
        &mut self,
        conn: &mut impl Queryable,
        polls: &[PollDim],
        key: u64,
    ) -> Result<(), AnalyticsError> {
        let db = |e: mysql::Error| AnalyticsError::database("counting votes", e);
        let started = std::time::Instant::now();
        // Polls and option ids are sent back as their numbers here (no text
        // to copy per row); the options of no poll are left out.
        let mut ids: Vec<&str> = Vec::new();
        for (id, _) in polls.iter().flat_map(|p| &p.options) {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        let numbers: Vec<Vec<usize>> = polls
            .iter()
            .map(|p| {
                p.options
                    .iter()
                    .map(|(id, _)| ids.iter().position(|i| i == id).unwrap_or(0))
                    .collect()
            })
            .collect();
        let sql = format!(
            "WITH {} SELECT {}, version FROM eff",
            effective_votes_cte(polls, key),
            case_of(
                "poll_id",
                polls
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.poll_id.clone(), i.to_string()))
            )
        );
        let mut effective: HashMap<i64, usize> = HashMap::new();
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let poll: Option<usize> = take(&mut row, 0)?;
            let version: i64 = take(&mut row, 1)?;
            if let Some(poll) = poll {
                effective.insert(version, poll);
            }
        }
        if ids.is_empty() {
            return Ok(()); // no vote can name an option
        }
        let listed: Vec<String> = ids.iter().map(|id| bytes_literal(id)).collect();
        let sql = format!(
            "SELECT version, {} FROM fact_poll_vote_option \
             WHERE presentation_key = {key} AND {} IN ({}) ORDER BY version, position",
            case_of(
                "option_id",
                ids.iter()
                    .enumerate()
                    .map(|(n, id)| (id.to_string(), n.to_string()))
            ),
            bytes("option_id"),
            listed.join(",")
        );
        // The vote being read: its version, poll and valid options so far.
        let mut vote: Option<(i64, usize, Vec<usize>)> = None;
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let version: i64 = take(&mut row, 0)?;
            if vote.as_ref().is_none_or(|(v, _, _)| *v != version) {
                if let Some((_, poll, valid)) = vote.take() {
                    self.count(&numbers[poll], poll, &valid);
                }
                let Some(&poll) = effective.get(&version) else {
                    continue;
                };
                vote = Some((version, poll, Vec::new()));
            }
            let Some((_, poll, valid)) = vote.as_mut() else {
                continue;
            };
            let option: usize = take(&mut row, 1)?;
            // Each option of the poll once; a single-choice vote keeps its
            // first.
            if numbers[*poll].contains(&option)
                && !valid.contains(&option)
                && (polls[*poll].multiple_choice || valid.is_empty())
            {
                valid.push(option);
            }
        }
        if let Some((_, poll, valid)) = vote {
            self.count(&numbers[poll], poll, &valid);
        }
        tracing::debug!(
            what = "folding votes",
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "analytics query"
        );
        Ok(())
    }

    /// One effective vote of poll `index` with these valid options (by
    /// number; `numbers` are those of the poll's options, in order).
    fn count(&mut self, numbers: &[usize], index: usize, valid: &[usize]) {
        if valid.is_empty() {
            return;
        }
        self.respondents[index] += 1;
        for (votes, number) in self.votes[index].iter_mut().zip(numbers) {
            if valid.contains(number) {
                *votes += 1;
            }
        }
    }
}
