//! The migration runner (`shared::store::migrate`) against a real server:
//! idempotent, checksummed, refusing a changed or a newer history, and safe
//! with concurrent runners.

use crate::helpers::TestDb;
use mysql::prelude::Queryable;
use shared::store::migrate::{self, Migration};

#[test]
fn migrating_twice_changes_nothing_the_second_time() {
    let test = TestDb::new();
    let again = migrate::run(&test.db).expect("second run");
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.already_applied, migrate::embedded().unwrap().len());
    assert_eq!(test.count("SELECT COUNT(*) FROM dim_date"), 47482);
}

#[test]
fn a_changed_applied_migration_is_refused() {
    let test = TestDb::new();
    let mut migrations = migrate::embedded().unwrap();
    migrations[0] = Migration::new(&migrations[0].name, "CREATE TABLE tampered (x INT);").unwrap();
    let err = migrate::run_migrations(&test.db, &migrations).unwrap_err();
    assert!(
        err.to_string().contains("was changed after it was applied"),
        "{err}"
    );
    assert_eq!(test.count("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tampered'"), 0);
}

#[test]
fn a_new_migration_is_applied_once_and_recorded() {
    let test = TestDb::new();
    let mut migrations = migrate::embedded().unwrap();
    let next = migrations.last().unwrap().version + 1;
    migrations.push(
        Migration::new(
            &format!("{next:04}_extra.sql"),
            "CREATE TABLE extra (x INT);\nINSERT INTO extra VALUES (1);\n",
        )
        .unwrap(),
    );
    let report = migrate::run_migrations(&test.db, &migrations).unwrap();
    assert_eq!(report.applied, vec![format!("{next:04}_extra.sql")]);
    let report = migrate::run_migrations(&test.db, &migrations).unwrap();
    assert!(report.applied.is_empty());
    assert_eq!(test.count("SELECT COUNT(*) FROM extra"), 1);
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let test = TestDb::new();
    test.conn()
        .query_drop("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future.sql', 'x')")
        .unwrap();
    let err = migrate::run(&test.db).unwrap_err();
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

#[test]
fn concurrent_runners_apply_each_migration_once() {
    let test = TestDb::new();
    // A fresh database of its own, migrated by two runners at once.
    let fresh = TestDb::new();
    fresh
        .conn()
        .query_drop("DROP TABLE IF EXISTS schema_migrations")
        .unwrap();
    drop(test);
    let name = fresh.name.clone();
    let tables: Vec<String> = fresh.rows(&format!(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '{name}' AND table_name <> 'schema_migrations'"
    ));
    for table in tables {
        fresh
            .conn()
            .query_drop(format!("DROP TABLE `{table}`"))
            .unwrap();
    }
    std::thread::scope(|s| {
        let a = s.spawn(|| migrate::run(&fresh.db));
        let b = s.spawn(|| migrate::run(&fresh.db));
        let (a, b) = (a.join().unwrap().unwrap(), b.join().unwrap().unwrap());
        assert_eq!(
            a.applied.len() + b.applied.len(),
            migrate::embedded().unwrap().len()
        );
    });
    assert_eq!(fresh.count("SELECT COUNT(*) FROM dim_date"), 47482);
}
