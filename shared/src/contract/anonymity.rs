//! The asker of an anonymous question is never stored, forwarded or logged
//! (EVENTS.md): every copy of a body that is kept anyway (a malformed line, a
//! conflicting copy, a refused event, a dead-letter message) goes through
//! [`without_anonymous_asker`] first.

use std::borrow::Cow;

use serde_json::Value;

/// What stands where an anonymous asker's id was.
pub const REMOVED_ASKER: &str = "(removed: anonymous asker)";

/// `body` with the asker of an anonymous question removed; the very bytes
/// when there is none. Hostile input is read as what it might be:
/// - a JSON document of type `QuestionAsked` whose `data.anonymous` is
///   anything but `false` loses `data.viewerId`;
/// - a body that is not JSON but mentions `anonymous` has the value of every
///   `"viewerId"` it holds replaced, as no reader can tell whose it is.
pub fn without_anonymous_asker(body: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memmem::find(body, b"anonymous").is_none()
        || memchr::memmem::find(body, b"viewerId").is_none()
    {
        return Cow::Borrowed(body);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut document) => {
            if remove_asker(&mut document) {
                Cow::Owned(document.to_string().into_bytes())
            } else {
                Cow::Borrowed(body)
            }
        }
        Err(_) => blank_viewer_ids(body),
    }
}

/// Removes `data.viewerId` of an anonymous `QuestionAsked`; true if it did.
fn remove_asker(document: &mut Value) -> bool {
    let Some(object) = document.as_object_mut() else {
        return false;
    };
    if object.get("type").and_then(Value::as_str) != Some("QuestionAsked") {
        return false;
    }
    let Some(data) = object.get_mut("data").and_then(Value::as_object_mut) else {
        return false;
    };
    if data.get("anonymous") == Some(&Value::Bool(false)) {
        return false;
    }
    data.remove("viewerId").is_some()
}

/// The text with the value of every `"viewerId": "…"` replaced.
fn blank_viewer_ids(body: &[u8]) -> Cow<'_, [u8]> {
    replace_string_values(body, b"viewerId", |_| {
        Some(REMOVED_ASKER.as_bytes().to_vec())
    })
}

/// `body`, read as text that may not be JSON, with the string value of
/// every `"key"` (blanks and a colon after it, then a string) replaced by
/// what `replace` makes of its raw bytes between the quotes (`None` keeps
/// it). The value's end is the next quote not escaped by a backslash, or
/// the end of the body. The very bytes when nothing is replaced.
pub(super) fn replace_string_values<'b>(
    body: &'b [u8],
    key: &[u8],
    mut replace: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Cow<'b, [u8]> {
    let mut quoted_key = Vec::with_capacity(key.len() + 2);
    quoted_key.push(b'"');
    quoted_key.extend_from_slice(key);
    quoted_key.push(b'"');
    let mut out = Vec::new();
    let mut rest = body;
    let mut changed = false;
    while let Some(at) = memchr::memmem::find(rest, &quoted_key) {
        let after_key = at + quoted_key.len();
        out.extend_from_slice(&rest[..after_key]);
        rest = &rest[after_key..];
        let value_start = rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b':'))
            .unwrap_or(rest.len());
        if rest.get(value_start) != Some(&b'"') {
            continue;
        }
        let mut end = value_start + 1;
        while end < rest.len() && rest[end] != b'"' {
            end += if rest[end] == b'\\' { 2 } else { 1 };
        }
        let value = &rest[value_start + 1..end.min(rest.len())];
        let Some(replacement) = replace(value) else {
            continue;
        };
        out.extend_from_slice(&rest[..value_start]);
        out.push(b'"');
        out.extend_from_slice(&replacement);
        out.push(b'"');
        rest = &rest[(end + 1).min(rest.len())..];
        changed = true;
    }
    if !changed {
        return Cow::Borrowed(body);
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(body: &str) -> String {
        String::from_utf8(without_anonymous_asker(body.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn an_anonymous_askers_id_is_removed_from_any_copy() {
        // A malformed version: still JSON, still an anonymous question.
        let bad_version = r#"{"streamId": "p", "version": "x", "type": "QuestionAsked", "data": {"questionId": "q", "viewerId": "u-secret", "text": "t", "anonymous": true}}"#;
        assert!(!scrubbed(bad_version).contains("u-secret"));
        assert!(scrubbed(bad_version).contains("\"questionId\":\"q\""));
        // `anonymous` that is not a boolean counts as anonymous.
        let odd =
            r#"{"type": "QuestionAsked", "data": {"viewerId": "u-secret", "anonymous": "yes"}}"#;
        assert!(!scrubbed(odd).contains("u-secret"));
        // Not JSON at all.
        let broken =
            r#"{"type": "QuestionAsked", "data": {"viewerId" : "u-\"secret", "anonymous": true"#;
        let out = scrubbed(broken);
        assert!(!out.contains("secret"), "{out}");
        assert!(out.contains(REMOVED_ASKER));
    }

    #[test]
    fn other_bodies_are_left_as_they_are() {
        for body in [
            r#"{"type": "QuestionAsked", "data": {"viewerId": "u-1", "text": "t", "anonymous": false}}"#,
            r#"{"type": "QuestionUpvoted", "data": {"viewerId": "u-1", "anonymous": true}}"#,
            r#"{"type": "ViewerJoined", "data": {"viewerId": "u-1"}}"#,
            "{broken",
        ] {
            assert!(matches!(
                without_anonymous_asker(body.as_bytes()),
                Cow::Borrowed(_)
            ));
        }
    }
}
