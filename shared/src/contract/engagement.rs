//! The engagement score's weights (ANALYTICS.md §5): a tenant's, or the
//! defaults, and the answer of `warehouse engagement get | set`.

use serde::{Deserialize, Serialize};

/// The weight of each component of the score, integers from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementWeights {
    pub watch: u8,
    pub polls: u8,
    pub surveys: u8,
    pub qna: u8,
}

/// A weight is at most this.
pub const MAX_WEIGHT: u8 = 100;

impl EngagementWeights {
    /// A tenant's weights until set: watch 50, polls 20, surveys 15, qna 15.
    pub const DEFAULT: EngagementWeights = EngagementWeights {
        watch: 50,
        polls: 20,
        surveys: 15,
        qna: 15,
    };

    /// Why these weights cannot be set, if they cannot: each from 0 to 100,
    /// at least one above 0.
    pub fn invalid(&self) -> Option<String> {
        let named = [
            ("watch", self.watch),
            ("polls", self.polls),
            ("surveys", self.surveys),
            ("qna", self.qna),
        ];
        if let Some((name, w)) = named.iter().find(|(_, w)| *w > MAX_WEIGHT) {
            return Some(format!(
                "{name} weight {w} is too large: weights are integers from 0 to {MAX_WEIGHT}"
            ));
        }
        if named.iter().all(|(_, w)| *w == 0) {
            return Some(
                "every weight is 0: at least one of watch, polls, surveys and qna must be above 0"
                    .to_string(),
            );
        }
        None
    }
}

impl Default for EngagementWeights {
    fn default() -> EngagementWeights {
        EngagementWeights::DEFAULT
    }
}

/// `{"tenantId", "weights": {…}, "default": true|false}`: the weights in
/// force for a tenant, and whether they are the defaults (none set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngagementSettings {
    pub tenant_id: String,
    pub weights: EngagementWeights,
    pub default: bool,
}
