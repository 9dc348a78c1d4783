//! "The old way": the answers of `ANALYTICS.md` computed by replaying events in
//! memory. It is the reference the warehouse's SQL is checked against, so it
//! follows the contract literally and favours clarity over speed.
//!
//! Events may be added in any order and any number of times; an identity
//! `(tenantId, streamId, version)` seen before is ignored (the first one wins). State is
//! kept per presentation, folded as events arrive, so that the answers never
//! depend on arrival order.
//!
//! Decisions where the contract is silent (each also noted where it applies):
//! - A presentation is identified by `(tenantId, streamId)`: an event can only
//!   ever add to a presentation of its own tenant.
//! - Several `PresentationCreated` (or `PollCreated` for one poll,
//!   `SurveyCreated` for one survey, `QuestionAsked` for one question): the
//!   lowest version is the creation; the others are ignored (except that every
//!   `PresentationCreated` takes part in choosing the title, as the contract says).
//! - `pollsAnswered` / `surveysSubmitted` count only polls / surveys that are
//!   reported (their creation has arrived), like every other figure.
//! - Viewer-row `name` / `email`: as written; blank counts as missing (`null`),
//!   like the department.
//! - A rating distribution lists every value 1..=scale, but never more than
//!   [`MAX_DISTRIBUTION_KEYS`] zero entries (a corrupt huge `scale` must not
//!   exhaust memory); a question with scale < 1 has no valid rating.
//! - Time arithmetic is done in `i128`, so no event content can overflow.
//! - An erased viewer ([`Replay::forget`], ANALYTICS.md §8) is applied when
//!   the answers are computed, so it holds whatever the order of erasures
//!   and events: their name and email are `null`, their questions anonymous.

mod answers;
mod state;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::contract::{
    EngagementWeights, Event, EventBody, PresentationReport, PresentationRow, Timeline, ViewerRow,
};

use answers::Computed;
use state::PresentationState;

/// Rating distributions list zero counts for at most this many values.
pub const MAX_DISTRIBUTION_KEYS: i64 = 1000;

/// The in-memory replay of any number of presentations.
#[derive(Debug, Default, Clone)]
pub struct Replay {
    /// Every identity accepted so far, analytics or not.
    seen: HashSet<(String, String, i64)>,
    /// (tenantId, presentationId) → state.
    presentations: BTreeMap<(String, String), PresentationState>,
    /// Erased viewers, as (tenantId, viewerId).
    erased: BTreeSet<(String, String)>,
    /// The tenants' engagement weights (§5), where not the defaults.
    weights: BTreeMap<String, EngagementWeights>,
}

impl Replay {
    pub fn new() -> Replay {
        Replay::default()
    }

    /// Adds one event. Returns `false` when its identity was already seen (the
    /// event is then ignored), `true` otherwise.
    pub fn add(&mut self, event: &Event) -> bool {
        let identity = (
            event.tenant_id.clone(),
            event.stream_id.clone(),
            event.version,
        );
        if !self.seen.insert(identity) {
            return false;
        }
        if matches!(event.body, EventBody::NotAnalytics) {
            return true;
        }
        self.presentations
            .entry((event.tenant_id.clone(), event.stream_id.clone()))
            .or_default()
            .apply(event);
        true
    }

    /// Erases viewer `viewer_id` of tenant `tenant_id` (ANALYTICS.md §8):
    /// from then on every answer shows neither their name nor their email,
    /// and their questions as anonymous, whatever events came before or come
    /// after.
    pub fn forget(&mut self, tenant_id: &str, viewer_id: &str) {
        self.erased
            .insert((tenant_id.to_string(), viewer_id.to_string()));
    }

    /// Sets a tenant's engagement weights (§5) for every answer.
    pub fn set_weights(&mut self, tenant_id: &str, weights: EngagementWeights) {
        self.weights.insert(tenant_id.to_string(), weights);
    }

    /// Everything computed of one presentation of a tenant.
    fn computed<'a>(&'a self, tenant_id: &str, state: &'a PresentationState) -> Computed<'a> {
        let weights = self.weights.get(tenant_id).copied().unwrap_or_default();
        Computed::new(state, self.erased_of(tenant_id), weights)
    }

    /// The erased viewers of one tenant.
    fn erased_of(&self, tenant_id: &str) -> BTreeSet<&str> {
        self.erased
            .iter()
            .filter(|(tenant, _)| tenant == tenant_id)
            .map(|(_, viewer)| viewer.as_str())
            .collect()
    }

    /// Every known presentation as (tenantId, presentationId), sorted.
    pub fn presentation_ids(&self) -> Vec<(String, String)> {
        self.presentations.keys().cloned().collect()
    }

    /// The report of one presentation; `None` when it is unknown or belongs to
    /// another tenant.
    pub fn report(&self, tenant_id: &str, presentation_id: &str) -> Option<PresentationReport> {
        let state = self.state(tenant_id, presentation_id)?;
        Some(
            self.computed(tenant_id, state)
                .report(tenant_id, presentation_id),
        )
    }

    /// Every viewer row of one presentation, ordered by viewerId; `None` when
    /// the presentation is unknown or belongs to another tenant.
    pub fn viewers(&self, tenant_id: &str, presentation_id: &str) -> Option<Vec<ViewerRow>> {
        let state = self.state(tenant_id, presentation_id)?;
        Some(self.computed(tenant_id, state).viewer_rows())
    }

    /// The attendance timeline of one presentation (§4); `None` when the
    /// presentation is unknown or belongs to another tenant.
    pub fn timeline(&self, tenant_id: &str, presentation_id: &str) -> Option<Timeline> {
        let state = self.state(tenant_id, presentation_id)?;
        Some(
            self.computed(tenant_id, state)
                .timeline(tenant_id, presentation_id),
        )
    }

    /// Every presentation row of one tenant, ordered by presentationId.
    pub fn presentations(&self, tenant_id: &str) -> Vec<PresentationRow> {
        self.presentations
            .iter()
            .filter(|((tenant, _), _)| tenant == tenant_id)
            .map(|((tenant, id), state)| {
                let computed = self.computed(tenant, state);
                PresentationRow::from_report(&computed.report(tenant, id))
            })
            .collect()
    }

    fn state(&self, tenant_id: &str, presentation_id: &str) -> Option<&PresentationState> {
        self.presentations
            .get(&(tenant_id.to_string(), presentation_id.to_string()))
    }
}

#[cfg(test)]
mod tests;
