//! SQL building (`shared::store`): the text and the prepared multi-row
//! upserts store exactly the same bytes, and count only the rows they insert.

use crate::helpers::TestDb;
use mysql::prelude::Queryable;
use shared::store::{merge, run_script, PreparedUpsert, Row, Upsert};

const COLUMNS: &[&str] = &["k", "s", "b", "n", "u", "flag"];

fn create_table(test: &TestDb, table: &str) {
    test.conn()
        .query_drop(format!(
            "CREATE TABLE {table} (k BIGINT NOT NULL PRIMARY KEY, s TEXT NULL, b VARBINARY(64) NULL, \
             n BIGINT NULL, u BIGINT UNSIGNED NULL, flag BOOLEAN NULL)"
        ))
        .unwrap();
}

/// Row `k` of a table of awkward values: quotes, backslashes, NUL, control
/// characters, non-Latin text, bytes that are not UTF-8, extremes and NULLs.
fn row(k: i64) -> Row {
    let texts = [
        "it's",
        "back\\slash",
        "nul\0byte",
        "line\nbreak\r\u{1a}",
        "🙂 שלום",
        "",
    ];
    let bytes: [&[u8]; 4] = [&[0, 255, 39, 92], b"plain", &[0xc3, 0x28], &[]];
    let mut row = Row::default();
    row.int(k)
        .opt_str((k % 7 != 0).then_some(texts[k as usize % texts.len()]))
        .bytes(bytes[k as usize % bytes.len()])
        .opt_int((k % 5 != 0).then_some(if k % 2 == 0 { i64::MIN + k } else { -k }))
        .opt_uint((k % 3 != 0).then_some(u64::MAX - k as u64))
        .opt_bool((k % 4 != 0).then_some(k % 8 == 1));
    row
}

/// A stored row: key, text and bytes in hex, the numbers as stored.
type Stored = (
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<u64>,
    Option<i64>,
);

fn contents(test: &TestDb, table: &str) -> Vec<Stored> {
    test.rows(&format!(
        "SELECT k, HEX(s), HEX(b), n, u, flag FROM {table} ORDER BY k"
    ))
}

fn prepared(rows: impl Iterator<Item = i64>) -> PreparedUpsert {
    let mut upsert = PreparedUpsert::new("prepared", COLUMNS, &merge::keep("k"));
    for k in rows {
        upsert.add(row(k));
    }
    upsert
}

#[test]
fn a_prepared_upsert_stores_what_the_text_upsert_stores_for_any_row_count() {
    let test = TestDb::new();
    create_table(&test, "prepared");
    create_table(&test, "text");
    // 1,100 rows: statements of 1,024, 64, 8 and 4 rows.
    let affected = prepared(0..1100).execute(&mut test.conn()).unwrap();
    assert_eq!(affected, 1100);
    let mut upsert = Upsert::new("text", COLUMNS, &merge::keep("k"));
    for k in 0..1100 {
        upsert.add(&row(k));
    }
    run_script(&mut test.conn(), &upsert.take_statements()).unwrap();
    let stored = contents(&test, "prepared");
    assert_eq!(stored.len(), 1100);
    assert_eq!(stored, contents(&test, "text"));
    // The awkward values arrived intact, not merely equally mangled.
    let (_, s, b, n, u, flag) = &stored[1];
    assert_eq!(s.as_deref(), Some(hex(b"back\\slash").as_str()));
    assert_eq!(b.as_deref(), Some(hex(b"plain").as_str()));
    assert_eq!((*n, *u, *flag), (Some(-1), Some(u64::MAX - 1), Some(1)));
    assert_eq!(stored[2].2.as_deref(), Some("C328"));
}

#[test]
fn a_prepared_upsert_counts_only_the_rows_it_inserted() {
    let test = TestDb::new();
    create_table(&test, "prepared");
    assert_eq!(prepared(0..300).execute(&mut test.conn()).unwrap(), 300);
    // Rows already there are kept unchanged and count nothing.
    assert_eq!(prepared(250..1300).execute(&mut test.conn()).unwrap(), 1000);
    assert_eq!(
        prepared(std::iter::empty())
            .execute(&mut test.conn())
            .unwrap(),
        0
    );
    assert_eq!(test.count("SELECT COUNT(*) FROM prepared"), 1300);
}

#[test]
fn the_unpinned_text_path_stores_and_counts_what_the_prepared_one_does() {
    // DB_SESSIONS=unpinned sends a prepared upsert's rows as text statements
    // under 16 KB (RDS Proxy pins a session for prepared statements and for
    // statements over 16 KB): the same bytes stored, the same rows counted.
    let test = TestDb::new();
    create_table(&test, "prepared");
    let mut text = test.conn();
    text.query_drop("CREATE TABLE text LIKE prepared").unwrap();
    assert_eq!(prepared(0..1100).execute(&mut test.conn()).unwrap(), 1100);
    let as_text = |rows: std::ops::Range<i64>, conn: &mut mysql::PooledConn| {
        let mut upsert = PreparedUpsert::new("text", COLUMNS, &merge::keep("k"));
        for k in rows {
            upsert.add(row(k));
        }
        upsert.execute_as_text(conn).unwrap()
    };
    let prepares_before: (String, u64) = text
        .query_first("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")
        .unwrap()
        .unwrap();
    assert_eq!(as_text(0..1100, &mut text), 1100);
    assert_eq!(contents(&test, "text"), contents(&test, "prepared"));
    assert_eq!(
        as_text(250..1300, &mut text),
        200,
        "only the new rows count"
    );
    let prepares_after: (String, u64) = text
        .query_first("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")
        .unwrap()
        .unwrap();
    assert_eq!(prepares_after.1, prepares_before.1, "no statement prepared");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
