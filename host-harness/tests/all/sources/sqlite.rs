//! SQLite: storage classes to cells, bad values, hints, open errors, streaming, batches.

use super::*;

fn sqlite_db(dir: &TempDir, name: &str, sql: &str) -> PathBuf {
    let p = dir.join(name);
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute_batch(sql).unwrap();
    p
}

#[test]
fn sqlite_type_mapping() {
    let dir = TempDir::new("sqlite");
    let p = sqlite_db(
        &dir,
        "t.sqlite",
        r#"CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, d DATE, ts DATETIME, ts2 TIMESTAMP,
                          j JSON, b BOOLEAN, anything, n TEXT);
           INSERT INTO t VALUES (1, 42, 2.5, 'hello', '2024-01-02', '2024-01-02 03:04:05', 1700000000,
                                 '{"b": 2, "a": 1}', 1, 'untyped', NULL);
           INSERT INTO t VALUES (2, -1, 0.0, '', '2024-01-03', 2460000.5, '2024-01-02T03:04:05.5+01:00',
                                 '[1]', 'false', 7, NULL);"#,
    );
    let items = all(&sqlite_cfg(&p, "SELECT * FROM t ORDER BY id", "id", &[]));
    let r = rows(&items);
    assert_eq!(r.len(), 2, "{items:?}");
    assert_eq!(r[0].key, "1");
    assert_eq!(cell(r[0], "id"), &Cell::Integer(1));
    assert_eq!(cell(r[0], "i"), &Cell::Integer(42));
    assert_eq!(cell(r[0], "r"), &Cell::Float(2.5));
    assert_eq!(cell(r[0], "s"), &Cell::Text("hello".into()));
    assert_eq!(cell(r[0], "d"), &Cell::Text("2024-01-02".into()), "DATE stays text");
    assert_eq!(cell(r[0], "ts"), &Cell::Timestamp("2024-01-02T03:04:05Z".into()));
    assert_eq!(cell(r[0], "ts2"), &Cell::Timestamp("2023-11-14T22:13:20Z".into()), "integer = Unix seconds");
    assert_eq!(cell(r[0], "j"), &Cell::Json(r#"{"a":1,"b":2}"#.into()));
    assert_eq!(cell(r[0], "b"), &Cell::Boolean(true));
    assert_eq!(cell(r[0], "anything"), &Cell::Text("untyped".into()));
    assert_eq!(cell(r[0], "n"), &Cell::Null);
    assert_eq!(cell(r[1], "s"), &Cell::Text(String::new()), "empty text is not NULL in a database");
    assert_eq!(cell(r[1], "ts"), &Cell::Timestamp("2023-02-25T00:00:00Z".into()), "real = Julian day (as SQLite's datetime())");
    assert_eq!(cell(r[1], "ts2"), &Cell::Timestamp("2024-01-02T03:04:05.5+01:00".into()));
    assert_eq!(cell(r[1], "b"), &Cell::Boolean(false));
    assert_eq!(cell(r[1], "anything"), &Cell::Integer(7), "untyped follows the value");
}

#[test]
fn sqlite_blob_and_bad_values_are_invalid_rows_naming_the_column() {
    let dir = TempDir::new("sqlite");
    let p = sqlite_db(
        &dir,
        "t.sqlite",
        r#"CREATE TABLE t (id INTEGER, photo BLOB, ts TIMESTAMP, j JSON, b BOOLEAN);
           INSERT INTO t VALUES (1, NULL, NULL, NULL, NULL);
           INSERT INTO t VALUES (2, x'89504E47', NULL, NULL, NULL);
           INSERT INTO t VALUES (3, NULL, 'last tuesday', NULL, NULL);
           INSERT INTO t VALUES (4, NULL, NULL, '{oops', NULL);
           INSERT INTO t VALUES (5, NULL, NULL, NULL, 2);
           INSERT INTO t VALUES (6, NULL, NULL, NULL, 0);"#,
    );
    let items = all(&sqlite_cfg(&p, "SELECT * FROM t ORDER BY id", "id", &[]));
    assert_eq!(rows(&items).iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["1", "6"]);
    let bad = invalid(&items);
    let s: Vec<_> = bad.iter().map(|b| (b.key.as_deref(), b.record, b.error.code, b.error.field.as_deref())).collect();
    assert_eq!(s, [
        (Some("2"), 2, ErrorCode::WrongType, Some("photo")),
        (Some("3"), 3, ErrorCode::InvalidValue, Some("ts")),
        (Some("4"), 4, ErrorCode::InvalidValue, Some("j")),
        (Some("5"), 5, ErrorCode::InvalidValue, Some("b")),
    ]);
    assert!(bad[0].error.message.contains("BLOB") && bad[0].error.message.contains("hex(photo)"), "{}", bad[0].error.message);
    assert_eq!(bad[0].location(), "record 2");
    // The fix works: cast it in the query.
    let items = all(&sqlite_cfg(&p, "SELECT id, hex(photo) AS photo FROM t WHERE id = 2", "id", &[]));
    assert_eq!(cell(rows(&items)[0], "photo"), &Cell::Text("89504E47".into()));
}

#[test]
fn sqlite_hints_override_declared_types() {
    let dir = TempDir::new("sqlite");
    let p = sqlite_db(&dir, "t.sqlite", "CREATE TABLE t (id INTEGER, vip INTEGER, seen TEXT, n REAL); INSERT INTO t VALUES (10, 1, '2024-03-04 05:06:07', 3.0);");
    let items = all(&sqlite_cfg(
        &p,
        "SELECT * FROM t",
        "id",
        &[("id", TypeHint::Text), ("vip", TypeHint::Boolean), ("seen", TypeHint::Timestamp), ("n", TypeHint::Integer)],
    ));
    let r = rows(&items);
    assert_eq!(cell(r[0], "id"), &Cell::Text("10".into()));
    assert_eq!(cell(r[0], "vip"), &Cell::Boolean(true));
    assert_eq!(cell(r[0], "seen"), &Cell::Timestamp("2024-03-04T05:06:07Z".into()));
    assert_eq!(cell(r[0], "n"), &Cell::Integer(3));
}

#[test]
fn sqlite_open_errors_name_the_fix() {
    let dir = TempDir::new("sqlite");
    let p = sqlite_db(&dir, "t.sqlite", "CREATE TABLE t (id INTEGER, a TEXT);");
    let e = open_err(&sqlite_cfg(&dir.join("nope.sqlite"), "SELECT 1", "id", &[])).to_string();
    assert!(e.contains("nope.sqlite") && e.contains("does not exist"), "{e}");
    assert!(!dir.join("nope.sqlite").exists(), "never creates a database");
    let e = open_err(&sqlite_cfg(&p, "SELECT * FROM missing", "id", &[])).to_string();
    assert!(e.contains("no such table") && e.contains("query"), "{e}");
    let e = open_err(&sqlite_cfg(&p, "SELECT * FROM t WHERE id = ?", "id", &[])).to_string();
    assert!(e.contains("parameter"), "{e}");
    let e = open_err(&sqlite_cfg(&p, "SELECT a FROM t", "id", &[])).to_string();
    assert!(e.contains("`id`") && e.contains("`a`"), "{e}");
    let e = open_err(&sqlite_cfg(&p, "SELECT id, a AS id FROM t", "id", &[])).to_string();
    assert!(e.contains("two columns named `id`"), "{e}");
    let e = open_err(&sqlite_cfg(&p, "DELETE FROM t", "id", &[])).to_string();
    assert!(e.contains("`id`") || e.contains("readonly") || e.contains("read-only"), "{e}");
}

#[test]
fn sqlite_streams_100k_rows_without_collecting() {
    let dir = TempDir::new("sqlite");
    let p = sqlite_db(
        &dir,
        "big.sqlite",
        "CREATE TABLE big (id INTEGER PRIMARY KEY, email TEXT, score REAL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO big SELECT i, 'user' || i || '@example.com', i * 0.5 FROM n;",
    );
    let cfg = SourceConfig::Sqlite(SqliteConfig {
        path: p,
        query: "SELECT * FROM big ORDER BY id".into(),
        primary_key: "id".into(),
        types: BTreeMap::new(),
        batch_size: Some(500),
        budget: InputBudget::default(),
    });
    let mut src = source::open(&cfg).unwrap();
    let (mut n, mut last) = (0u64, 0i64);
    for item in src.by_ref() {
        match item.unwrap() {
            SourceItem::Row(r) => {
                n += 1;
                if let Cell::Integer(i) = cell(&r, "id") {
                    assert!(*i > last);
                    last = *i;
                }
            }
            SourceItem::Invalid(i) => panic!("{i:?}"),
        }
    }
    assert_eq!(n, 100_000);
    assert_eq!(src.keys_seen(), 100_000);
}

#[test]
fn dropping_a_source_early_stops_its_reader() {
    let dir = TempDir::new("sqlite");
    let p = sqlite_db(
        &dir,
        "big.sqlite",
        "CREATE TABLE big (id INTEGER PRIMARY KEY);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) INSERT INTO big SELECT i FROM n;",
    );
    for _ in 0..20 {
        let mut src = source::open(&sqlite_cfg(&p, "SELECT * FROM big", "id", &[])).unwrap();
        assert!(src.next().is_some());
        drop(src); // must not block or leak a stuck thread
    }
}

#[test]
fn batches_group_items() {
    let dir = TempDir::new("batches");
    let p = dir.file("t.csv", b"id\n1\n2\n3\n4\n5\n");
    let src = source::open(&csv_cfg(&p, "id", &[])).unwrap();
    let sizes: Vec<usize> = batches(src, 2).map(|b| b.unwrap().len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
}

#[test]
fn sqlite_a_cell_over_the_default_cap_is_an_invalid_row_naming_record_column_size_and_limit() {
    let dir = TempDir::new("sqlite");
    // hex(zeroblob(n)) is 2n zeros: 66560 characters, 65 KiB.
    let p = sqlite_db(
        &dir,
        "t.sqlite",
        "CREATE TABLE t (id INTEGER, notes TEXT);
         INSERT INTO t VALUES (1, 'short'), (2, replace(hex(zeroblob(33280)), '0', 'x')), (3, 'ok');",
    );
    let items = all(&sqlite_cfg(&p, "SELECT * FROM t ORDER BY id", "id", &[]));
    assert_eq!(keys(&items), ["1", "3"], "the rows before and after are read");
    let bad = invalid(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].record, bad[0].key.as_deref(), bad[0].error.field.as_deref()), (2, Some("2"), Some("notes")));
    assert_eq!(
        bad[0].error.message,
        "record 2, column `notes`: 65 KiB exceeds the 64 KiB cell limit; shorten the value in the warehouse or leave the column out of `query` (or cut it there, e.g. `substr(col, 1, 1000)`), or raise `budget.max_cell_bytes` in `[source]`"
    );
}

#[test]
fn sqlite_a_row_over_the_row_cap_is_invalid_though_each_cell_fits() {
    let dir = TempDir::new("sqlite");
    // Record 2: id 8 bytes + 60 + 60 = 128 bytes, over 100; each cell is under 64.
    let p = sqlite_db(
        &dir,
        "t.sqlite",
        "CREATE TABLE t (id INTEGER, a TEXT, b TEXT);
         INSERT INTO t VALUES (1, 'x', 'y'), (2, printf('%60s', 'a'), printf('%60s', 'b')), (3, 'x', 'y');",
    );
    let items = all(&with_budget(sqlite_cfg(&p, "SELECT * FROM t ORDER BY id", "id", &[]), 64, 100));
    assert_eq!(keys(&items), ["1", "3"]);
    let bad = invalid(&items);
    assert_eq!((bad[0].record, bad[0].key.as_deref(), bad[0].error.field.as_deref()), (2, Some("2"), None));
    assert_eq!(
        bad[0].error.message,
        "record 2: the row is 128 bytes and exceeds the 100 bytes row limit; select fewer or shorter columns in `query`, or raise `budget.max_row_bytes` in `[source]`"
    );
}
