//! A viewer's erasure (ANALYTICS.md §8) in the copies of bodies the
//! warehouse keeps anyway (a malformed line, a conflicting copy, a refused
//! or misrouted event, a dead-letter message): [`mentioned_viewers`] says
//! whose erasure a body may need, [`without_erased`] takes the erased
//! viewers' names, emails and questions out of it. The receipt of an
//! erasure is [`ErasureReceipt`].
//!
//! What is erased is what §8 names: the name and email of a viewer's
//! profile and the tie between the viewer and a question they asked. The
//! viewer id stays (sessions, votes and the viewer lists keep it).

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::anonymity::replace_string_values;

/// What stands where an erased viewer's value was, in a body that is not JSON.
pub const ERASED: &str = "(erased)";

/// What `warehouse forget` prints and `DELETE …/viewers/{viewerId}` answers
/// (ANALYTICS.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReceipt {
    pub tenant_id: String,
    pub viewer_id: String,
    /// Whether the warehouse held anything of the viewer.
    pub known: bool,
    /// When the viewer was first erased (RFC 3339): a repeat answers the
    /// same time.
    pub erased_at: String,
}

/// Whose erasure a kept body may need: the tenant it names (when it can be
/// read) and the viewer ids it mentions. A JSON document mentions its
/// `data.viewerId`; any other text every `"viewerId"` string value in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub tenant: Option<String>,
    pub viewers: BTreeSet<String>,
}

/// The tenant and viewers a body mentions (see [`Mentions`]).
pub fn mentioned_viewers(body: &[u8]) -> Mentions {
    if memchr::memmem::find(body, b"viewerId").is_none() {
        return Mentions::default();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(document) => {
            let (tenant, viewer) = tenant_and_viewer(&document);
            Mentions {
                tenant: tenant.map(str::to_string),
                viewers: viewer.map(str::to_string).into_iter().collect(),
            }
        }
        Err(_) => {
            let mut viewers = BTreeSet::new();
            let _ = replace_string_values(body, b"viewerId", |raw| {
                viewers.insert(unescape(raw));
                None
            });
            let mut tenant = None;
            let _ = replace_string_values(body, b"tenantId", |raw| {
                tenant.get_or_insert_with(|| unescape(raw));
                None
            });
            Mentions { tenant, viewers }
        }
    }
}

/// `body` without what it holds of erased viewers; the very bytes when it
/// holds nothing of them. `erased(tenant, viewer)` says whether a viewer is
/// erased (`tenant` is `None` when the body names none that can be read);
/// `emails` are erased viewers' emails known to the caller (`forget` knows
/// them before it scrubs; later loads do not, and find the viewer by id).
///
/// - A JSON document whose `data.viewerId` is erased loses every `name` and
///   `email` member inside `data` (the profile's), and, when it concerns a
///   question (`data.questionId`), `data.viewerId` itself: nothing ties the
///   viewer to the question any more.
/// - In any JSON document, an object whose `email` is one of `emails` loses
///   its `name` and `email`, and any other string holding one of `emails`
///   becomes [`ERASED`].
/// - A body that is not JSON but mentions an erased viewer id or holds one
///   of `emails` has every `"name"` and `"email"` value, every erased
///   `"viewerId"` value and every occurrence of `emails` replaced by
///   [`ERASED`], as no reader can tell which profile is whose.
pub fn without_erased<'b>(
    body: &'b [u8],
    erased: &dyn Fn(Option<&str>, &str) -> bool,
    emails: &[String],
) -> Cow<'b, [u8]> {
    let emails: Vec<&str> = emails
        .iter()
        .map(String::as_str)
        .filter(|e| !e.is_empty())
        .collect();
    let holds_email = emails
        .iter()
        .any(|e| memchr::memmem::find(body, e.as_bytes()).is_some());
    if !holds_email && memchr::memmem::find(body, b"viewerId").is_none() {
        return Cow::Borrowed(body);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut document) => {
            if scrub_document(&mut document, erased, &emails) {
                Cow::Owned(document.to_string().into_bytes())
            } else {
                Cow::Borrowed(body)
            }
        }
        Err(_) => scrub_text(body, erased, &emails),
    }
}

/// A document's `tenantId` and `data.viewerId`, when they are strings.
fn tenant_and_viewer(document: &Value) -> (Option<&str>, Option<&str>) {
    let tenant = document.get("tenantId").and_then(Value::as_str);
    let viewer = document
        .get("data")
        .and_then(|d| d.get("viewerId"))
        .and_then(Value::as_str);
    (tenant, viewer)
}

fn scrub_document(
    document: &mut Value,
    erased: &dyn Fn(Option<&str>, &str) -> bool,
    emails: &[&str],
) -> bool {
    let mut changed = false;
    let (tenant, viewer) = tenant_and_viewer(document);
    let viewer_erased = viewer.is_some_and(|v| erased(tenant, v));
    if viewer_erased {
        if let Some(data) = document.get_mut("data").and_then(Value::as_object_mut) {
            changed |= remove_profile_members(data);
            if data.contains_key("questionId") {
                changed |= data.remove("viewerId").is_some();
            }
        }
    }
    if !emails.is_empty() {
        changed |= scrub_emails(document, emails);
    }
    changed
}

/// Removes every `name` and `email` member of `object` and of the objects
/// inside it.
fn remove_profile_members(object: &mut Map<String, Value>) -> bool {
    let mut changed = object.remove("name").is_some() | object.remove("email").is_some();
    for value in object.values_mut() {
        changed |= match value {
            Value::Object(inner) => remove_profile_members(inner),
            Value::Array(items) => items
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .fold(false, |c, inner| remove_profile_members(inner) | c),
            _ => false,
        };
    }
    changed
}

fn holds_any(text: &str, emails: &[&str]) -> bool {
    emails.iter().any(|e| text.contains(e))
}

/// The email rules of [`without_erased`] over a whole document.
fn scrub_emails(value: &mut Value, emails: &[&str]) -> bool {
    match value {
        Value::Object(object) => {
            let mut changed = false;
            if object
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| holds_any(e, emails))
            {
                object.remove("email");
                object.remove("name");
                changed = true;
            }
            for inner in object.values_mut() {
                changed |= scrub_emails(inner, emails);
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |c, inner| scrub_emails(inner, emails) | c),
        Value::String(text) if holds_any(text, emails) => {
            *text = ERASED.to_string();
            true
        }
        _ => false,
    }
}

/// A value's raw bytes between quotes, unescaped when they are a JSON
/// string's inside, else as they are.
fn unescape(raw: &[u8]) -> String {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

fn scrub_text<'b>(
    body: &'b [u8],
    erased: &dyn Fn(Option<&str>, &str) -> bool,
    emails: &[&str],
) -> Cow<'b, [u8]> {
    let mentions = mentioned_viewers(body);
    let tenant = mentions.tenant.as_deref();
    let concerned = mentions.viewers.iter().any(|v| erased(tenant, v))
        || emails
            .iter()
            .any(|e| memchr::memmem::find(body, e.as_bytes()).is_some());
    if !concerned {
        return Cow::Borrowed(body);
    }
    let erased_marker = || Some(ERASED.as_bytes().to_vec());
    let mut text = replace_string_values(body, b"name", |_| erased_marker()).into_owned();
    text = replace_string_values(&text, b"email", |_| erased_marker()).into_owned();
    text = replace_string_values(&text, b"viewerId", |raw| {
        erased(tenant, &unescape(raw)).then(|| ERASED.as_bytes().to_vec())
    })
    .into_owned();
    for email in emails {
        let mut out = Vec::with_capacity(text.len());
        let mut rest = &text[..];
        while let Some(at) = memchr::memmem::find(rest, email.as_bytes()) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(ERASED.as_bytes());
            rest = &rest[at + email.len()..];
        }
        out.extend_from_slice(rest);
        text = out;
    }
    Cow::Owned(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(tenant: &'static str, viewer: &'static str) -> impl Fn(Option<&str>, &str) -> bool {
        move |t, v| v == viewer && t.is_none_or(|t| t == tenant)
    }

    fn scrubbed(body: &str, emails: &[&str]) -> String {
        let emails: Vec<String> = emails.iter().map(|e| e.to_string()).collect();
        String::from_utf8(
            without_erased(body.as_bytes(), &only("acme", "u-10"), &emails).into_owned(),
        )
        .unwrap()
    }

    const JOINED: &str = r#"{"streamId": "p", "version": 2, "type": "ViewerJoined", "tenantId": "acme", "data": {"viewerId": "u-10", "sessionId": "s", "profile": {"name": "Wei", "email": "wei@acme.example", "department": "Sales"}}}"#;

    #[test]
    fn an_erased_viewers_profile_leaves_a_json_body() {
        let out = scrubbed(JOINED, &[]);
        assert!(!out.contains("Wei") && !out.contains("wei@"), "{out}");
        assert!(
            out.contains("\"viewerId\":\"u-10\"") && out.contains("Sales"),
            "{out}"
        );
        // Another tenant's u-10 is another person.
        let globex = JOINED.replace("acme", "globex");
        assert!(matches!(
            without_erased(globex.as_bytes(), &only("acme", "u-10"), &[]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn an_erased_askers_question_loses_its_asker() {
        let asked = r#"{"tenantId": "acme", "type": "QuestionAsked", "version": "x", "data": {"questionId": "q", "viewerId": "u-10", "text": "Why?", "anonymous": false}}"#;
        let out = scrubbed(asked, &[]);
        assert!(!out.contains("u-10") && out.contains("Why?"), "{out}");
    }

    #[test]
    fn a_known_email_goes_with_its_profile_wherever_it_is() {
        let no_id = r#"{"tenantId": "acme", "type": "ViewerJoined", "data": {"profile": {"name": "Wei", "email": "wei@acme.example"}, "note": "mail wei@acme.example"}}"#;
        let out = scrubbed(no_id, &["wei@acme.example"]);
        assert!(!out.contains("Wei") && !out.contains("wei@"), "{out}");
        assert!(out.contains(ERASED));
    }

    #[test]
    fn a_body_that_is_not_json_loses_every_profile_value_when_it_concerns_the_viewer() {
        let cut = &JOINED[..JOINED.len() - 20];
        let out = scrubbed(cut, &[]);
        assert!(
            !out.contains("Wei") && !out.contains("wei@") && !out.contains("u-10"),
            "{out}"
        );
        let escaped =
            r#"{"tenantId": "acme", "data": {"viewerId": "u\u002d10", "profile": {"name": "Wei""#;
        assert!(!scrubbed(escaped, &[]).contains("Wei"));
        let by_email = r#"garbage wei@acme.example"#;
        assert_eq!(
            scrubbed(by_email, &["wei@acme.example"]),
            format!("garbage {ERASED}")
        );
        let other =
            r#"{"tenantId": "acme", "data": {"viewerId": "u-11", "profile": {"name": "Wei""#;
        assert_eq!(scrubbed(other, &[]), other);
    }

    #[test]
    fn mentions_are_read_from_json_and_from_text() {
        let m = mentioned_viewers(JOINED.as_bytes());
        assert_eq!(m.tenant.as_deref(), Some("acme"));
        assert_eq!(m.viewers, BTreeSet::from(["u-10".to_string()]));
        let m = mentioned_viewers(
            br#"{"viewerId": "a", "x": {"viewerId": "b\u0021"}, "tenantId": "t""#,
        );
        assert_eq!(m.tenant.as_deref(), Some("t"));
        assert_eq!(
            m.viewers,
            BTreeSet::from(["a".to_string(), "b!".to_string()])
        );
        assert_eq!(mentioned_viewers(b"nothing"), Mentions::default());
    }

    #[test]
    fn scrubbing_is_idempotent() {
        for body in [JOINED, &JOINED[..JOINED.len() - 20]] {
            let once = scrubbed(body, &["wei@acme.example"]);
            assert_eq!(scrubbed(&once, &["wei@acme.example"]), once);
        }
    }
}
