//! Multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements built as text.
//!
//! One statement carries hundreds of rows, so a batch costs a handful of round
//! trips instead of one per row (the `mysql` crate's `exec_batch` sends one per
//! row). Values are written as SQL literals for the text protocol: no prepare
//! round trip, no placeholder limit; statements are cut at `MAX_STATEMENT_BYTES`
//! to stay far inside `max_allowed_packet` (16 MiB on MariaDB, 64 MiB on MySQL 8).
//! Statements that do not depend on each other's results go together as one
//! multi-statement text (`run_script`), one round trip for all of them.
//! Literal escaping relies on the session `sql_mode` set in `db.rs` (backslash
//! escapes on).

use std::fmt::Write;

use mysql::prelude::Queryable;

pub const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// The `sql_mode` every connection sets, so literals and GROUP BY rules behave
/// the same on MySQL 8 and MariaDB whatever the server default.
pub const SESSION_SQL_MODE: &str = "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";

/// Appends one row's values as SQL literals.
#[derive(Default)]
pub struct Row {
    text: String,
}

impl Row {
    fn sep(&mut self) {
        if !self.text.is_empty() {
            self.text.push(',');
        }
    }

    pub fn str(&mut self, value: &str) -> &mut Row {
        self.sep();
        push_str_literal(&mut self.text, value);
        self
    }

    pub fn opt_str(&mut self, value: Option<&str>) -> &mut Row {
        match value {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }

    pub fn int(&mut self, value: i64) -> &mut Row {
        self.sep();
        let _ = write!(self.text, "{value}");
        self
    }

    pub fn uint(&mut self, value: u64) -> &mut Row {
        self.sep();
        let _ = write!(self.text, "{value}");
        self
    }

    pub fn opt_int(&mut self, value: Option<i64>) -> &mut Row {
        match value {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub fn opt_uint(&mut self, value: Option<u64>) -> &mut Row {
        match value {
            Some(v) => self.uint(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, value: bool) -> &mut Row {
        self.sep();
        self.text.push_str(if value { "TRUE" } else { "FALSE" });
        self
    }

    pub fn opt_bool(&mut self, value: Option<bool>) -> &mut Row {
        match value {
            Some(v) => self.bool(v),
            None => self.null(),
        }
    }

    pub fn bytes(&mut self, value: &[u8]) -> &mut Row {
        self.sep();
        push_hex_literal(&mut self.text, value);
        self
    }

    pub fn null(&mut self) -> &mut Row {
        self.sep();
        self.text.push_str("NULL");
        self
    }
}

/// `'…'` with MySQL's backslash escapes.
pub fn push_str_literal(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

pub fn str_literal(value: &str) -> String {
    let mut out = String::new();
    push_str_literal(&mut out, value);
    out
}

/// `X'…'`, for binary values (hashes, raw bodies that may not be UTF-8).
pub fn push_hex_literal(out: &mut String, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(value.len() * 2 + 3);
    out.push_str("X'");
    for b in value {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out.push('\'');
}

/// A multi-row upsert into one table: rows are added one by one and sent in
/// as few statements as the size budget allows.
pub struct Upsert {
    head: String,
    tail: String,
    statement: String,
    rows_in_statement: usize,
    /// Complete statements not sent yet.
    ready: Vec<String>,
}

impl Upsert {
    /// `update` is the `ON DUPLICATE KEY UPDATE` clause's assignments; it
    /// decides how a new row merges into an existing one.
    pub fn new(table: &str, columns: &[&str], update: &str) -> Upsert {
        Upsert {
            head: format!("INSERT INTO {table} ({}) VALUES ", columns.join(",")),
            tail: format!(" ON DUPLICATE KEY UPDATE {update}"),
            statement: String::new(),
            rows_in_statement: 0,
            ready: Vec::new(),
        }
    }

    /// Adds a row, sending the statement first if the row would overflow it.
    pub fn push(&mut self, conn: &mut impl Queryable, row: &Row) -> Result<(), mysql::Error> {
        self.add(row);
        self.send_ready(conn)
    }

    /// Sends what is left.
    pub fn flush(&mut self, conn: &mut impl Queryable) -> Result<(), mysql::Error> {
        self.close_statement();
        self.send_ready(conn)
    }

    /// Adds a row without sending anything; see `take_statements`.
    pub fn add(&mut self, row: &Row) {
        if self.rows_in_statement > 0
            && self.statement.len() + row.text.len() + self.tail.len() + 3 > MAX_STATEMENT_BYTES
        {
            self.close_statement();
        }
        if self.rows_in_statement == 0 {
            self.statement.push_str(&self.head);
        } else {
            self.statement.push(',');
        }
        self.statement.push('(');
        self.statement.push_str(&row.text);
        self.statement.push(')');
        self.rows_in_statement += 1;
    }

    /// The complete statements of the rows added so far, for a script that
    /// runs them with others in one round trip.
    pub fn take_statements(&mut self) -> Vec<String> {
        self.close_statement();
        std::mem::take(&mut self.ready)
    }

    fn close_statement(&mut self) {
        if self.rows_in_statement > 0 {
            self.statement.push_str(&self.tail);
            self.ready.push(std::mem::take(&mut self.statement));
            self.rows_in_statement = 0;
        }
    }

    fn send_ready(&mut self, conn: &mut impl Queryable) -> Result<(), mysql::Error> {
        for statement in std::mem::take(&mut self.ready) {
            conn.query_drop(&statement)?;
        }
        Ok(())
    }
}

/// What one statement of a script did.
pub struct Outcome {
    /// As the server counts them for an upsert: 1 per inserted row, 2 per
    /// updated one, 0 per duplicate left unchanged.
    pub affected_rows: u64,
    /// The rows of a `SELECT`; empty otherwise.
    pub rows: Vec<mysql::Row>,
}

/// Runs statements in order, as few multi-statement texts as fit
/// `MAX_STATEMENT_BYTES` (one round trip each), and returns one outcome per
/// statement. The server stops at the first failing statement; its error is
/// returned. Statements must not end with `;`.
pub fn run_script(
    conn: &mut impl Queryable,
    statements: &[String],
) -> Result<Vec<Outcome>, mysql::Error> {
    let mut outcomes = Vec::with_capacity(statements.len());
    let mut text = String::new();
    let mut start = 0;
    while start < statements.len() {
        let mut end = start;
        text.clear();
        while end < statements.len()
            && (end == start || text.len() + 1 + statements[end].len() <= MAX_STATEMENT_BYTES)
        {
            if end > start {
                text.push(';');
            }
            text.push_str(&statements[end]);
            end += 1;
        }
        let mut result = conn.query_iter(&text)?;
        // Every result set is read: a failing statement's error only shows
        // in its own set, and dropping the result would hide it.
        while let Some(set) = result.iter() {
            let affected_rows = set.affected_rows();
            let rows = set.collect::<Result<Vec<_>, _>>()?;
            outcomes.push(Outcome {
                affected_rows,
                rows,
            });
        }
        drop(result);
        if outcomes.len() != end {
            // A statement with several result sets (a CALL): not for scripts.
            return Err(mysql::Error::DriverError(
                mysql::DriverError::UnexpectedPacket,
            ));
        }
        start = end;
    }
    Ok(outcomes)
}

/// Merge rules for `ON DUPLICATE KEY UPDATE`, written once. MySQL and MariaDB
/// evaluate assignments left to right, each seeing the columns already
/// assigned, so a value guarded by a version must be assigned before the
/// version itself.
pub mod merge {
    /// The smaller non-NULL of the stored and the new value.
    pub fn least(col: &str) -> String {
        format!("{col} = LEAST(COALESCE({col}, VALUES({col})), COALESCE(VALUES({col}), {col}))")
    }

    /// The greater non-NULL of the stored and the new value.
    pub fn greatest(col: &str) -> String {
        format!("{col} = GREATEST(COALESCE({col}, VALUES({col})), COALESCE(VALUES({col}), {col}))")
    }

    /// Takes the new value when the new row's `version` is lower ("lowest
    /// version wins"); assign before `least(version)`.
    pub fn if_lower(col: &str, version: &str) -> String {
        format!(
            "{col} = IF(VALUES({version}) IS NOT NULL AND ({version} IS NULL OR VALUES({version}) < {version}), VALUES({col}), {col})"
        )
    }

    /// Takes the new value when the new row's `version` is higher ("highest
    /// version wins"); assign before `greatest(version)`.
    pub fn if_higher(col: &str, version: &str) -> String {
        format!(
            "{col} = IF(VALUES({version}) IS NOT NULL AND ({version} IS NULL OR VALUES({version}) > {version}), VALUES({col}), {col})"
        )
    }

    /// Keeps the stored row: for rows keyed by an event identity, whose
    /// content cannot change.
    pub fn keep(col: &str) -> String {
        format!("{col} = {col}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_what_mysql_needs() {
        assert_eq!(str_literal("it's a \\ test\n\0"), r"'it\'s a \\ test\n\0'");
        assert_eq!(str_literal("🙂 שלום"), "'🙂 שלום'");
    }

    #[test]
    fn rows_join_values_with_commas() {
        let mut row = Row::default();
        row.str("a")
            .int(-3)
            .null()
            .bool(true)
            .bytes(&[0, 255])
            .opt_int(None);
        assert_eq!(row.text, "'a',-3,NULL,TRUE,X'00ff',NULL");
    }

    #[test]
    fn merge_rules_assign_values_before_versions() {
        assert_eq!(
            merge::least("a"),
            "a = LEAST(COALESCE(a, VALUES(a)), COALESCE(VALUES(a), a))"
        );
        assert!(merge::if_higher("t", "v").contains("VALUES(v) > v"));
    }
}
