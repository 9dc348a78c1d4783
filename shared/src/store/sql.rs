//! Multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements, built as text or
//! (for a batch's bulk, `PreparedUpsert`) prepared with bound values.
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
//!
//! Unpinned mode ([`set_unpinned_statements`], `DB_SESSIONS=unpinned`, for
//! RDS Proxy multiplexing): no prepared statements, and every text this
//! module sends is cut at [`UNPINNED_MAX_STATEMENT_BYTES`], below the 16 KB
//! over which RDS Proxy pins a session. A single row or statement longer
//! than that still goes alone (and pins); such statements are counted
//! ([`oversized_statements`]) and logged.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mysql::prelude::Queryable;
use mysql::Value;

pub const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// The statement size cap of unpinned mode: RDS Proxy pins a session for
/// any statement longer than 16 KB (16,384 bytes); this leaves room for the
/// protocol's framing.
pub const UNPINNED_MAX_STATEMENT_BYTES: usize = 16_000;

static UNPINNED: AtomicBool = AtomicBool::new(false);
static OVERSIZED: AtomicU64 = AtomicU64::new(0);

/// Process-wide: text statements of at most [`UNPINNED_MAX_STATEMENT_BYTES`]
/// instead of prepared ones and 1 MiB texts. Set once at start-up, from the
/// function's configuration (`DB_SESSIONS`); it changes how statements are
/// cut, never what they do.
pub fn set_unpinned_statements(unpinned: bool) {
    UNPINNED.store(unpinned, Ordering::Relaxed);
}

pub fn unpinned_statements() -> bool {
    UNPINNED.load(Ordering::Relaxed)
}

/// Statements sent in unpinned mode that were longer than
/// [`UNPINNED_MAX_STATEMENT_BYTES`] (a single row or query that long), since
/// the process started: each pinned its RDS Proxy session.
pub fn oversized_statements() -> u64 {
    OVERSIZED.load(Ordering::Relaxed)
}

/// The size budget of one statement text in the current mode.
fn statement_budget() -> usize {
    if unpinned_statements() {
        UNPINNED_MAX_STATEMENT_BYTES
    } else {
        MAX_STATEMENT_BYTES
    }
}

/// Counts (and logs) a statement that pins an RDS Proxy session in unpinned mode.
fn note_size(text: &str) {
    if unpinned_statements() && text.len() > UNPINNED_MAX_STATEMENT_BYTES {
        OVERSIZED.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            bytes = text.len(),
            "a statement over 16 KB: it pins this RDS Proxy session"
        );
    }
}

/// The `sql_mode` every connection sets, so literals and GROUP BY rules behave
/// the same on MySQL 8 and MariaDB whatever the server default.
pub const SESSION_SQL_MODE: &str = "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";

/// One row's values, for a text statement (`Upsert`, as SQL literals) or a
/// prepared one (`PreparedUpsert`, bound to placeholders).
#[derive(Default)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub fn str(&mut self, value: &str) -> &mut Row {
        self.bytes(value.as_bytes())
    }

    pub fn opt_str(&mut self, value: Option<&str>) -> &mut Row {
        match value {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }

    pub fn int(&mut self, value: i64) -> &mut Row {
        self.values.push(Value::Int(value));
        self
    }

    pub fn uint(&mut self, value: u64) -> &mut Row {
        self.values.push(Value::UInt(value));
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
        self.int(i64::from(value))
    }

    pub fn opt_bool(&mut self, value: Option<bool>) -> &mut Row {
        match value {
            Some(v) => self.bool(v),
            None => self.null(),
        }
    }

    pub fn bytes(&mut self, value: &[u8]) -> &mut Row {
        self.values.push(Value::Bytes(value.to_vec()));
        self
    }

    pub fn null(&mut self) -> &mut Row {
        self.values.push(Value::NULL);
        self
    }
}

/// Values as SQL literals, comma-separated. Bytes that are UTF-8 are
/// written as a string literal, others in hex: either way a text or
/// binary column receives exactly those bytes.
fn push_literals(values: &[Value], out: &mut String) {
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        match value {
            Value::NULL => out.push_str("NULL"),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::UInt(u) => {
                let _ = write!(out, "{u}");
            }
            Value::Bytes(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => push_str_literal(out, text),
                Err(_) => push_hex_literal(out, bytes),
            },
            // Row never holds other kinds.
            other => out.push_str(&other.as_sql(false)),
        }
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
    /// The row being added, as literals (kept to reuse its allocation).
    row_text: String,
    /// Statement size budget (the mode's, when the upsert was made).
    max_bytes: usize,
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
            row_text: String::new(),
            max_bytes: statement_budget(),
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
        self.add_values(&row.values);
    }

    fn add_values(&mut self, values: &[Value]) {
        self.row_text.clear();
        push_literals(values, &mut self.row_text);
        if self.rows_in_statement > 0
            && self.statement.len() + self.row_text.len() + self.tail.len() + 3 > self.max_bytes
        {
            self.close_statement();
        }
        if self.rows_in_statement == 0 {
            self.statement.push_str(&self.head);
        } else {
            self.statement.push(',');
        }
        self.statement.push('(');
        self.statement.push_str(&self.row_text);
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
            note_size(&statement);
            conn.query_drop(&statement)?;
        }
        Ok(())
    }
}

/// A multi-row upsert sent as prepared statements, its values bound. For the
/// statements of a batch's bulk (a ledger row per event): the server parses
/// a statement once per connection instead of once per execution, where
/// parsing text literals took a quarter of its time (BENCHMARKS.md).
pub struct PreparedUpsert {
    head: String,
    tail: String,
    columns: usize,
    values: Vec<Value>,
}

impl PreparedUpsert {
    /// As [`Upsert::new`].
    pub fn new(table: &str, columns: &[&str], update: &str) -> PreparedUpsert {
        assert!(
            !columns.is_empty() && columns.len() <= MAX_PREPARED_COLUMNS,
            "a prepared upsert takes 1 to {MAX_PREPARED_COLUMNS} columns"
        );
        PreparedUpsert {
            head: format!("INSERT INTO {table} ({}) VALUES ", columns.join(",")),
            tail: format!(" ON DUPLICATE KEY UPDATE {update}"),
            columns: columns.len(),
            values: Vec::new(),
        }
    }

    /// Adds a row of as many values as the upsert has columns.
    pub fn add(&mut self, row: Row) {
        assert_eq!(row.values.len(), self.columns, "one value per column");
        self.values.extend(row.values);
    }

    /// Sends the rows in statements of power-of-two sizes (so a connection's
    /// statement cache holds at most eleven texts per table) and returns the
    /// affected rows, counted as in [`Outcome::affected_rows`].
    /// In unpinned mode ([`set_unpinned_statements`]) the same rows go as
    /// text statements of at most [`UNPINNED_MAX_STATEMENT_BYTES`].
    pub fn execute(self, conn: &mut impl Queryable) -> Result<u64, mysql::Error> {
        if unpinned_statements() {
            return self.execute_as_text(conn);
        }
        let mut left = self.values.len() / self.columns;
        let mut values = self.values.into_iter();
        let mut affected_rows = 0;
        let placeholders = format!("({})", vec!["?"; self.columns].join(","));
        while left > 0 {
            let rows = 1 << left.min(MAX_PREPARED_ROWS).ilog2();
            let mut statement = self.head.clone();
            for index in 0..rows {
                if index > 0 {
                    statement.push(',');
                }
                statement.push_str(&placeholders);
            }
            statement.push_str(&self.tail);
            let params: Vec<Value> = values.by_ref().take(rows * self.columns).collect();
            affected_rows += conn.exec_iter(statement, params)?.affected_rows();
            left -= rows;
        }
        Ok(affected_rows)
    }
}

impl PreparedUpsert {
    /// What [`PreparedUpsert::execute`] does in unpinned mode: the same rows
    /// as text statements of at most [`UNPINNED_MAX_STATEMENT_BYTES`] (a row
    /// longer than that alone), counted the same way.
    pub fn execute_as_text(self, conn: &mut impl Queryable) -> Result<u64, mysql::Error> {
        let mut upsert = Upsert {
            head: self.head,
            tail: self.tail,
            statement: String::new(),
            rows_in_statement: 0,
            ready: Vec::new(),
            row_text: String::new(),
            max_bytes: UNPINNED_MAX_STATEMENT_BYTES,
        };
        for row in self.values.chunks(self.columns) {
            upsert.add_values(row);
        }
        let mut affected_rows = 0;
        for statement in upsert.take_statements() {
            note_size(&statement);
            affected_rows += conn.query_iter(&statement)?.affected_rows();
        }
        Ok(affected_rows)
    }
}

/// Rows per prepared statement at most (a power of two), and columns, so that
/// its placeholders stay under the protocol's 65,535.
const MAX_PREPARED_ROWS: usize = 1024;
const MAX_PREPARED_COLUMNS: usize = 63;

/// What one statement of a script did.
pub struct Outcome {
    /// As the server counts them for an upsert: 1 per inserted row, 2 per
    /// updated one, 0 per duplicate left unchanged.
    pub affected_rows: u64,
    /// The rows of a `SELECT`; empty otherwise.
    pub rows: Vec<mysql::Row>,
}

/// Runs statements in order, as few multi-statement texts as fit
/// `MAX_STATEMENT_BYTES` (in unpinned mode `UNPINNED_MAX_STATEMENT_BYTES`;
/// one round trip each), and returns one outcome per
/// statement. The server stops at the first failing statement; its error is
/// returned. Statements must not end with `;`.
pub fn run_script(
    conn: &mut impl Queryable,
    statements: &[String],
) -> Result<Vec<Outcome>, mysql::Error> {
    let budget = statement_budget();
    let mut outcomes = Vec::with_capacity(statements.len());
    let mut text = String::new();
    let mut start = 0;
    while start < statements.len() {
        let mut end = start;
        text.clear();
        while end < statements.len()
            && (end == start || text.len() + 1 + statements[end].len() <= budget)
        {
            if end > start {
                text.push(';');
            }
            text.push_str(&statements[end]);
            end += 1;
        }
        note_size(&text);
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
        let mut text = String::new();
        push_literals(&row.values, &mut text);
        assert_eq!(text, "'a',-3,NULL,1,X'00ff',NULL");
    }

    #[test]
    fn unpinned_upserts_cut_statements_under_16_kb() {
        let mut upsert = Upsert {
            max_bytes: UNPINNED_MAX_STATEMENT_BYTES,
            ..Upsert::new("t", &["k", "v"], "v = VALUES(v)")
        };
        for k in 0..2_000 {
            let mut row = Row::default();
            row.int(k).str(&"x".repeat(40));
            upsert.add(&row);
        }
        // One row longer than the cap goes alone.
        let mut long = Row::default();
        long.int(-1).str(&"y".repeat(20_000));
        upsert.add(&long);
        let statements = upsert.take_statements();
        let (long, short): (Vec<&String>, Vec<&String>) = statements
            .iter()
            .partition(|s| s.len() > UNPINNED_MAX_STATEMENT_BYTES);
        assert_eq!(long.len(), 1);
        assert!(long[0].starts_with("INSERT INTO t (k,v) VALUES (-1,'yyy"));
        assert!(short.len() >= 6, "{} statements", short.len());
        let rows: usize = short.iter().map(|s| s.matches(",'xxx").count()).sum();
        assert_eq!(rows, 2_000);
        assert!(short
            .iter()
            .all(|s| s.ends_with(" ON DUPLICATE KEY UPDATE v = VALUES(v)")));
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
