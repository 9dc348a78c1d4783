//! Attendance facts: a session per join (`fact_session`), its end moved by
//! heartbeats and leaves, and the viewer's latest profile in each
//! presentation (`fact_presentation_viewer`).

use std::collections::BTreeMap;

use super::Keys;
use crate::contract::{
    normalize_country, normalize_department, normalize_device, normalize_optional_text, Event,
    EventBody,
};
use crate::store::{merge, Row, Upsert};
use crate::write::dimensions::date_key;

const SESSION_COLUMNS: &[&str] = &[
    "presentation_key",
    "session_id",
    "viewer_key",
    "join_version",
    "device",
    "country",
    "department",
    "start_ms",
    "start_date_key",
    "end_ms",
];

/// The rows of a batch's sessions and presentation viewers, one multi-row statement per table.
pub(super) struct Attendance {
    sessions: Upsert,
    /// Heartbeats and leaves collapse to the latest time per session before
    /// they are written: the end of a session is a GREATEST.
    session_ends: BTreeMap<(u64, String), i64>,
    presentation_viewers: Upsert,
}

impl Attendance {
    pub(super) fn new() -> Attendance {
        Attendance {
            sessions: Upsert::new(
                "fact_session",
                SESSION_COLUMNS,
                &[
                    merge::if_lower("viewer_key", "join_version"),
                    merge::if_lower("device", "join_version"),
                    merge::if_lower("country", "join_version"),
                    merge::if_lower("department", "join_version"),
                    merge::least("join_version"),
                    merge::if_lower("start_date_key", "start_ms"),
                    merge::least("start_ms"),
                    merge::greatest("end_ms"),
                ]
                .join(", "),
            ),
            session_ends: BTreeMap::new(),
            presentation_viewers: Upsert::new(
                "fact_presentation_viewer",
                &[
                    "presentation_key",
                    "viewer_key",
                    "latest_join_version",
                    "name",
                    "email",
                    "department",
                    "country",
                    "device",
                ],
                &[
                    merge::if_higher("name", "latest_join_version"),
                    merge::if_higher("email", "latest_join_version"),
                    merge::if_higher("department", "latest_join_version"),
                    merge::if_higher("country", "latest_join_version"),
                    merge::if_higher("device", "latest_join_version"),
                    merge::greatest("latest_join_version"),
                ]
                .join(", "),
            ),
        }
    }

    pub(super) fn add(&mut self, keys: &Keys, presentation: u64, event: &Event) {
        let version = event.version;
        match &event.body {
            EventBody::ViewerJoined(joined) => {
                let viewer = keys.viewer(event, &joined.viewer_id);
                let device = normalize_device(joined.device.as_deref());
                let country = normalize_country(joined.country.as_deref());
                let department = normalize_department(joined.department.as_deref());
                let mut row = Row::default();
                row.uint(presentation)
                    .str(&joined.session_id)
                    .uint(viewer)
                    .int(version)
                    .str(&device)
                    .str(&country)
                    .opt_str(department.as_deref())
                    .int(event.occurred_at)
                    .int(date_key(event.occurred_at))
                    .null();
                self.sessions.add(&row);
                // An erased viewer's name and email are never written again.
                let (name, email) = match keys.erased(event, &joined.viewer_id) {
                    true => (None, None),
                    false => (
                        normalize_optional_text(joined.name.as_deref()),
                        normalize_optional_text(joined.email.as_deref()),
                    ),
                };
                let mut row = Row::default();
                row.uint(presentation)
                    .uint(viewer)
                    .int(version)
                    .opt_str(name.as_deref())
                    .opt_str(email.as_deref())
                    .opt_str(department.as_deref())
                    .str(&country)
                    .str(&device);
                self.presentation_viewers.add(&row);
            }
            EventBody::ViewerHeartbeat { session_id, .. }
            | EventBody::ViewerLeft { session_id, .. } => {
                let end = self
                    .session_ends
                    .entry((presentation, session_id.clone()))
                    .or_insert(event.occurred_at);
                *end = (*end).max(event.occurred_at);
            }
            // Other data points' events: see `FactWriter::add`.
            _ => {}
        }
    }

    pub(super) fn finish(mut self, statements: &mut Vec<String>) {
        // Most attendance events only move a session's end: those rows go in
        // a statement of their own, three columns wide with a one-column
        // merge, which costs the server much less than the full session row.
        let mut session_end_rows = Upsert::new(
            "fact_session",
            &["presentation_key", "session_id", "end_ms"],
            &merge::greatest("end_ms"),
        );
        for ((presentation, session_id), end) in &self.session_ends {
            let mut row = Row::default();
            row.uint(*presentation).str(session_id).int(*end);
            session_end_rows.add(&row);
        }
        for upsert in [
            &mut self.sessions,
            &mut session_end_rows,
            &mut self.presentation_viewers,
        ] {
            statements.extend(upsert.take_statements());
        }
    }
}
