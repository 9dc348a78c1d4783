//! The viewer list as CSV (ANALYTICS.md §7): the header and one line per
//! row, written as each row is read (no row is held).

use std::fmt::Write;

use super::answers::ViewerRow;

/// The header line, CRLF included.
pub const VIEWER_CSV_HEADER: &str = "viewerId,name,email,department,country,device,sessions,watchSeconds,firstJoinedAt,lastSeenAt,pollsAnswered,surveysSubmitted,questionsAsked,upvotesGiven,engagementScore\r\n";

/// Appends a text field: a `'` before a leading `=`, `+`, `-`, `@`, tab or
/// CR (no spreadsheet runs it as a formula), then quoted when it holds a
/// comma, a double quote, CR or LF, its quotes doubled; `None` is empty.
fn push_text(out: &mut String, text: Option<&str>) {
    let Some(text) = text else { return };
    let guard = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = text.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if guard {
        out.push('\'');
    }
    if quote {
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Appends one row's line, CRLF included.
pub fn push_viewer_csv(out: &mut String, row: &ViewerRow) {
    push_text(out, Some(&row.viewer_id));
    for text in [
        row.name.as_deref(),
        row.email.as_deref(),
        row.department.as_deref(),
        Some(row.country.as_str()),
    ] {
        out.push(',');
        push_text(out, text);
    }
    // The device is one of a few fixed words, and times and numbers never
    // need quoting.
    let _ = write!(
        out,
        ",{},{},{},{},{},{},{},{},{},{}\r\n",
        row.device,
        row.sessions,
        row.watch_seconds,
        row.first_joined_at,
        row.last_seen_at,
        row.polls_answered,
        row.surveys_submitted,
        row.questions_asked,
        row.upvotes_given,
        row.engagement_score
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: Option<&str>) -> String {
        let mut out = String::new();
        push_text(&mut out, value);
        out
    }

    #[test]
    fn fields_are_guarded_then_quoted() {
        assert_eq!(text(None), "");
        assert_eq!(text(Some("")), "");
        assert_eq!(text(Some("Zoë")), "Zoë");
        assert_eq!(text(Some("a,b")), "\"a,b\"");
        assert_eq!(text(Some("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(text(Some("two\nlines")), "\"two\nlines\"");
        assert_eq!(text(Some("cr\r")), "\"cr\r\"");
        for formula in ["=1+1", "+33 1", "-2", "@SUM(A1)", "\tx"] {
            assert_eq!(text(Some(formula)), format!("'{formula}"));
        }
        // Guarded and quoted: the guard goes inside the quotes.
        assert_eq!(
            text(Some("=HYPERLINK(\"x\",\"y\")")),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(text(Some("\r=1")), "\"'\r=1\"");
        // Only a leading character counts.
        assert_eq!(text(Some("a=b-c")), "a=b-c");
    }
}
