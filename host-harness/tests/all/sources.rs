//! Sources against real files, a real SQLite database and a real PostgreSQL server
//! (`HOST_HARNESS_PG_URL`, default `postgresql://postgres@127.0.0.1:5432/test`; each test makes
//! and drops its own schema).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use host_harness::contract::model::{Cell, ErrorCode, Row};
use host_harness::source::{
    self, batches, CsvConfig, InvalidRow, JsonlConfig, PostgresConfig, SourceConfig, SourceError, SourceItem, SqliteConfig,
    TypeHint,
};
use test_kit::TempDir;
use test_kit::postgres::url as pg_url;

// ---------------------------------------------------------------------------------------------
// helpers

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn types(pairs: &[(&str, TypeHint)]) -> BTreeMap<String, TypeHint> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn csv_cfg(path: &Path, key: &str, hints: &[(&str, TypeHint)]) -> SourceConfig {
    SourceConfig::Csv(CsvConfig { path: path.to_path_buf(), primary_key: key.into(), types: types(hints), delimiter: None })
}

fn jsonl_cfg(path: &Path, key: &str, hints: &[(&str, TypeHint)]) -> SourceConfig {
    SourceConfig::Jsonl(JsonlConfig { path: path.to_path_buf(), primary_key: key.into(), types: types(hints) })
}

fn sqlite_cfg(path: &Path, query: &str, key: &str, hints: &[(&str, TypeHint)]) -> SourceConfig {
    SourceConfig::Sqlite(SqliteConfig {
        path: path.to_path_buf(),
        query: query.into(),
        primary_key: key.into(),
        types: types(hints),
        batch_size: None,
    })
}

fn all(cfg: &SourceConfig) -> Vec<SourceItem> {
    source::open(cfg).unwrap_or_else(|e| panic!("open failed: {e}")).map(|r| r.unwrap_or_else(|e| panic!("source error: {e}"))).collect()
}

fn rows(items: &[SourceItem]) -> Vec<&Row> {
    items.iter().filter_map(|i| if let SourceItem::Row(r) = i { Some(r) } else { None }).collect()
}

fn invalid(items: &[SourceItem]) -> Vec<&InvalidRow> {
    items.iter().filter_map(|i| if let SourceItem::Invalid(r) = i { Some(r) } else { None }).collect()
}

fn cell<'a>(row: &'a Row, col: &str) -> &'a Cell {
    &row.columns.iter().find(|c| c.name == col).unwrap_or_else(|| panic!("no column {col} in {row:?}")).value
}

fn open_err(cfg: &SourceConfig) -> SourceError {
    match source::open(cfg) {
        Ok(_) => panic!("open should fail"),
        Err(e) => e,
    }
}

/// The hints that make every sample file type its cells like the SQLite warehouse does.
const SAMPLE_HINTS: &[(&str, TypeHint)] = &[
    ("id", TypeHint::Integer),
    ("lifetime_value", TypeHint::Float),
    ("is_vip", TypeHint::Boolean),
    ("last_order_at", TypeHint::Timestamp),
    ("preferences", TypeHint::Json),
];

// ---------------------------------------------------------------------------------------------
// configuration

#[test]
fn config_parses_from_toml_for_every_kind() {
    #[derive(serde::Deserialize)]
    struct Doc {
        source: SourceConfig,
    }
    let csv: Doc = toml::from_str(
        r#"[source]
kind = "csv"
path = "customers.csv"
primary_key = "id"
delimiter = ";"
[source.types]
id = "integer"
is_vip = "boolean"
"#,
    )
    .unwrap();
    match &csv.source {
        SourceConfig::Csv(c) => {
            assert_eq!(c.delimiter, Some(';'));
            assert_eq!(c.types.get("is_vip"), Some(&TypeHint::Boolean));
        }
        other => panic!("{other:?}"),
    }
    let jsonl: Doc = toml::from_str("[source]\nkind = \"jsonl\"\npath = \"-\"\nprimary_key = \"id\"\n").unwrap();
    assert_eq!(jsonl.source.kind(), "jsonl");
    let sqlite: Doc = toml::from_str(
        "[source]\nkind = \"sqlite\"\npath = \"w.sqlite\"\nquery = \"SELECT * FROM customers\"\nprimary_key = \"id\"\nbatch_size = 50\n",
    )
    .unwrap();
    assert_eq!(sqlite.source.primary_key(), "id");
    let pg: Doc = toml::from_str(
        "[source]\nkind = \"postgres\"\nurl = \"postgresql://bob:hunter2@db/w\"\nquery = \"SELECT 1 AS id\"\nprimary_key = \"id\"\n[source.types]\nid = \"text\"\n",
    )
    .unwrap();
    let debug = format!("{:?}", pg.source);
    assert!(!debug.contains("hunter2"), "Debug leaks the password: {debug}");
    assert!(debug.contains("bob:***@db"), "{debug}");

    // Mistakes are named.
    let e = toml::from_str::<Doc>("[source]\nkind = \"parquet\"\npath = \"x\"\nprimary_key = \"id\"\n").err().unwrap().to_string();
    assert!(e.contains("parquet"), "{e}");
    let e = toml::from_str::<Doc>("[source]\nkind = \"csv\"\npath = \"x\"\nprimary_key = \"id\"\nqeury = \"x\"\n").err().unwrap().to_string();
    assert!(e.contains("qeury"), "{e}");
    let e = toml::from_str::<Doc>("[source]\nkind = \"sqlite\"\npath = \"x\"\nprimary_key = \"id\"\n").err().unwrap().to_string();
    assert!(e.contains("query"), "{e}");
    let e = toml::from_str::<Doc>("[source]\nkind = \"csv\"\npath = \"x\"\nprimary_key = \"id\"\n[source.types]\nid = \"int\"\n")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("int") && e.contains("integer"), "{e}");
}

#[test]
fn redaction_of_connection_strings() {
    use host_harness::source::redact_connection_string as r;
    assert_eq!(r("postgresql://bob:s3cret@db:5432/w"), "postgresql://bob:***@db:5432/w");
    assert_eq!(r("postgres://bob@db/w?sslmode=disable&password=s3cret"), "postgres://bob@db/w?sslmode=disable&password=***");
    assert_eq!(r("host=db user=bob password=s3cret dbname=w"), "host=db user=bob password=*** dbname=w");
    assert_eq!(r("host=db password='s3 cret' dbname=w"), "host=db password=*** dbname=w");
}

// ---------------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_sample_types_cells_by_hints() {
    let items = all(&csv_cfg(&examples().join("customers.csv"), "id", SAMPLE_HINTS));
    assert_eq!(items.len(), 20);
    assert!(invalid(&items).is_empty());
    let r = rows(&items);
    assert_eq!(r[0].key, "1");
    assert_eq!(cell(r[0], "id"), &Cell::Integer(1));
    assert!(matches!(cell(r[0], "lifetime_value"), Cell::Float(_)));
    assert!(matches!(cell(r[0], "is_vip"), Cell::Boolean(_)));
    assert!(matches!(cell(r[0], "last_order_at"), Cell::Timestamp(t) if t.ends_with('Z') && t.contains('T')));
    assert!(matches!(cell(r[0], "preferences"), Cell::Json(j) if j.starts_with('{')));
    assert!(matches!(cell(r[0], "signup_date"), Cell::Text(_)), "unhinted columns stay text");
    // id 7 has no email: an empty cell is NULL.
    assert_eq!(cell(r[6], "email"), &Cell::Null);
}

#[test]
fn csv_text_by_default_empty_is_null_and_quotes_work() {
    let dir = TempDir::new("csv");
    let p = dir.file("t.csv", "\u{feff}id,name,note\n1,\"Doe, Jane\",\"said \"\"hi\"\"\nand left\"\n2,,  \n".as_bytes());
    let items = all(&csv_cfg(&p, "id", &[]));
    let r = rows(&items);
    assert_eq!(r.len(), 2);
    assert_eq!(cell(r[0], "id"), &Cell::Text("1".into()), "BOM stripped, text by default");
    assert_eq!(cell(r[0], "name"), &Cell::Text("Doe, Jane".into()));
    assert_eq!(cell(r[0], "note"), &Cell::Text("said \"hi\"\nand left".into()));
    assert_eq!(cell(r[1], "name"), &Cell::Null);
    assert_eq!(cell(r[1], "note"), &Cell::Text("  ".into()), "only an empty cell is NULL");
}

#[test]
fn csv_every_hint() {
    let dir = TempDir::new("csv");
    let p = dir.file(
        "t.csv",
        b"id,i,f,b,t,j,s\n1,42,2.5,yes,2024-05-01 13:45:00,\"{\"\"b\"\":1, \"\"a\"\":[true]}\",007\n2,-7,3,0,2024-05-01T13:45:00+02:00,\"[1,2]\",x\n",
    );
    let hints = [
        ("i", TypeHint::Integer),
        ("f", TypeHint::Float),
        ("b", TypeHint::Boolean),
        ("t", TypeHint::Timestamp),
        ("j", TypeHint::Json),
        ("s", TypeHint::Text),
    ];
    let items = all(&csv_cfg(&p, "id", &hints));
    let r = rows(&items);
    assert_eq!(cell(r[0], "i"), &Cell::Integer(42));
    assert_eq!(cell(r[0], "f"), &Cell::Float(2.5));
    assert_eq!(cell(r[0], "b"), &Cell::Boolean(true));
    assert_eq!(cell(r[0], "t"), &Cell::Timestamp("2024-05-01T13:45:00Z".into()));
    assert_eq!(cell(r[0], "j"), &Cell::Json("{\"a\":[true],\"b\":1}".into()));
    assert_eq!(cell(r[0], "s"), &Cell::Text("007".into()));
    assert_eq!(cell(r[1], "i"), &Cell::Integer(-7));
    assert_eq!(cell(r[1], "f"), &Cell::Float(3.0));
    assert_eq!(cell(r[1], "b"), &Cell::Boolean(false));
    assert_eq!(cell(r[1], "t"), &Cell::Timestamp("2024-05-01T13:45:00+02:00".into()));
    assert_eq!(cell(r[1], "j"), &Cell::Json("[1,2]".into()));
}

#[test]
fn csv_bad_hinted_value_is_an_invalid_row_and_streaming_goes_on() {
    let dir = TempDir::new("csv");
    let p = dir.file("t.csv", b"id,amount,when\n1,10,2024-01-01\n2,ten,2024-01-02\n3,30,not a date\n4,40,2024-01-04\n");
    let items = all(&csv_cfg(&p, "id", &[("amount", TypeHint::Integer), ("when", TypeHint::Timestamp)]));
    assert_eq!(items.len(), 4);
    let bad = invalid(&items);
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].key.as_deref(), Some("2"));
    assert_eq!(bad[0].line, Some(3));
    assert_eq!(bad[0].error.code, ErrorCode::InvalidValue);
    assert_eq!(bad[0].error.field.as_deref(), Some("amount"));
    assert!(bad[0].error.message.contains("line 3") && bad[0].error.message.contains("`amount`"), "{}", bad[0].error.message);
    assert!(!bad[0].error.retryable);
    assert_eq!(bad[1].error.field.as_deref(), Some("when"));
    assert_eq!(rows(&items).iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["1", "4"]);
}

#[test]
fn csv_non_utf8_names_line_and_column_and_keeps_streaming() {
    let dir = TempDir::new("csv");
    let mut bytes = b"id,name,city\n1,Ann,Oslo\n2,Ren".to_vec();
    bytes.push(0xE9); // Latin-1 é
    bytes.extend_from_slice(b"e,Lyon\n3,Bob,Rome\n4,Cy,Nice\n");
    let p = dir.file("latin1.csv", &bytes);
    let items = all(&csv_cfg(&p, "id", &[]));
    assert_eq!(items.len(), 4, "rows before and after the bad one are delivered");
    let bad = invalid(&items);
    assert_eq!(bad.len(), 1);
    let b = bad[0];
    assert_eq!(b.line, Some(3));
    assert_eq!(b.key.as_deref(), Some("2"), "the key cell itself is valid, so it is reported");
    assert_eq!(b.error.field.as_deref(), Some("name"));
    let m = &b.error.message;
    assert!(m.contains("line 3") && m.contains("`name`") && m.contains("UTF-8") && m.contains("re-encode"), "{m}");
    assert_eq!(rows(&items).iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["1", "3", "4"]);
    // As a model RowError it keeps the key.
    assert_eq!(b.clone().into_row_error().key, "2");
}

#[test]
fn csv_non_utf8_in_the_header_is_an_error_with_the_fix() {
    let dir = TempDir::new("csv");
    let p = dir.file("h.csv", b"id,na\xefme\n1,x\n");
    let e = open_err(&csv_cfg(&p, "id", &[])).to_string();
    assert!(e.contains("UTF-8") && e.contains("iconv"), "{e}");
}

#[test]
fn csv_wrong_field_count_is_an_invalid_row() {
    let dir = TempDir::new("csv");
    let p = dir.file("t.csv", b"id,a\n1,x\n2,y,z\n3,w\n");
    let items = all(&csv_cfg(&p, "id", &[]));
    let bad = invalid(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, Some(3));
    assert!(bad[0].error.message.contains("3 fields") && bad[0].error.message.contains("header has 2"), "{}", bad[0].error.message);
    assert_eq!(bad[0].clone().into_row_error().key, "#line 3");
    assert_eq!(rows(&items).len(), 2);
}

#[test]
fn csv_open_errors_name_the_fix() {
    let dir = TempDir::new("csv");
    let e = open_err(&csv_cfg(&dir.join("missing.csv"), "id", &[])).to_string();
    assert!(e.contains("missing.csv") && e.contains("exists"), "{e}");
    let p = dir.file("t.csv", b"ID,email\n1,a@example.com\n");
    let e = open_err(&csv_cfg(&p, "id", &[])).to_string();
    assert!(e.contains("`id`") && e.contains("`ID`, `email`") && e.contains("primary_key"), "{e}");
    let e = open_err(&csv_cfg(&p, "ID", &[("emial", TypeHint::Text)])).to_string();
    assert!(e.contains("`emial`") && e.contains("types"), "{e}");
    let p = dir.file("dup.csv", b"id,a,a\n1,2,3\n");
    assert!(open_err(&csv_cfg(&p, "id", &[])).to_string().contains("twice"));
    let p = dir.file("empty.csv", b"");
    assert!(open_err(&csv_cfg(&p, "id", &[])).to_string().contains("empty"));
    let bad_delim = SourceConfig::Csv(CsvConfig { path: p.clone(), primary_key: "id".into(), types: BTreeMap::new(), delimiter: Some('→') });
    assert!(open_err(&bad_delim).to_string().contains("ASCII"));
}

#[test]
fn csv_other_delimiter() {
    let dir = TempDir::new("csv");
    let p = dir.file("t.csv", b"id;name\n1;a,b\n");
    let cfg = SourceConfig::Csv(CsvConfig { path: p, primary_key: "id".into(), types: BTreeMap::new(), delimiter: Some(';') });
    let items = all(&cfg);
    assert_eq!(cell(rows(&items)[0], "name"), &Cell::Text("a,b".into()));
}

/// Child side of `csv_and_jsonl_read_standard_input`: reads `-` and prints what it got.
#[test]
fn stdin_child() {
    let Ok(kind) = std::env::var("HH_SOURCES_STDIN_KIND") else { return };
    let cfg = if kind == "csv" {
        csv_cfg(Path::new("-"), "id", &[("n", TypeHint::Integer)])
    } else {
        jsonl_cfg(Path::new("-"), "id", &[])
    };
    let src = source::open(&cfg).unwrap();
    println!("\nDESCRIBE {}", src.describe());
    for item in src {
        match item.unwrap() {
            SourceItem::Row(r) => println!("ROW {} {:?}", r.key, cell(&r, "n")),
            SourceItem::Invalid(i) => println!("INVALID {}", i.location()),
        }
    }
}

#[test]
fn csv_and_jsonl_read_standard_input() {
    use std::io::Write;
    for (kind, input) in [("csv", "id,n\n1,10\n2,x\n3,30\n"), ("jsonl", "{\"id\":1,\"n\":10}\n{\"id\":2,\"n\":\n{\"id\":3,\"n\":30}\n")] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["sources::stdin_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("HH_SOURCES_STDIN_KIND", kind)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("ROW") || l.starts_with("INVALID") || l.starts_with("DESCRIBE")).collect();
        let expected_describe = if kind == "csv" { "DESCRIBE CSV on standard input" } else { "DESCRIBE JSON Lines on standard input" };
        let bad_line = if kind == "csv" { "INVALID line 3" } else { "INVALID line 2" };
        assert_eq!(lines, [expected_describe, "ROW 1 Integer(10)", bad_line, "ROW 3 Integer(30)"], "{kind}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// keys

#[test]
fn duplicate_and_missing_keys_are_invalid_rows_never_sent() {
    let dir = TempDir::new("keys");
    let p = dir.file("k.csv", b"id,v\n1,a\n2,b\n1,c\n,d\n   ,e\n3,f\n2,g\n");
    let items = all(&csv_cfg(&p, "id", &[]));
    assert_eq!(items.len(), 7);
    assert_eq!(rows(&items).iter().map(|r| (r.key.as_str(), cell(r, "v").clone())).collect::<Vec<_>>(), [
        ("1", Cell::Text("a".into())),
        ("2", Cell::Text("b".into())),
        ("3", Cell::Text("f".into()))
    ]);
    let bad = invalid(&items);
    let summary: Vec<_> = bad.iter().map(|b| (b.line, b.key.as_deref(), b.error.code, b.error.field.as_deref())).collect();
    assert_eq!(summary, [
        (Some(4), Some("1"), ErrorCode::DuplicateKey, Some("id")),
        (Some(5), None, ErrorCode::MissingField, Some("id")),
        (Some(6), None, ErrorCode::MissingField, Some("id")),
        (Some(8), Some("2"), ErrorCode::DuplicateKey, Some("id")),
    ]);
    assert!(bad[0].error.message.contains("duplicate key") && bad[0].error.message.contains("line 4"), "{}", bad[0].error.message);
    assert!(bad[1].error.message.contains("missing key"), "{}", bad[1].error.message);
}

#[test]
fn a_key_of_an_invalid_row_still_counts_for_duplicates() {
    let dir = TempDir::new("keys");
    let p = dir.file("k.csv", b"id,n\n1,x\n1,2\n");
    let items = all(&csv_cfg(&p, "id", &[("n", TypeHint::Integer)]));
    let bad = invalid(&items);
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].error.code, ErrorCode::InvalidValue);
    assert_eq!(bad[1].error.code, ErrorCode::DuplicateKey);
}

#[test]
fn key_checker_stays_small_for_many_keys() {
    let mut k = source::KeyChecker::new("id");
    for i in 0..200_000u32 {
        k.check(&Cell::Integer(i64::from(i))).unwrap();
    }
    assert_eq!(k.len(), 200_000);
    assert_eq!(k.check(&Cell::Text("199999".into())).unwrap_err().code, ErrorCode::DuplicateKey);
}

// ---------------------------------------------------------------------------------------------
// JSON Lines

#[test]
fn jsonl_type_mapping() {
    let dir = TempDir::new("jsonl");
    let p = dir.file(
        "t.jsonl",
        br#"{"id": 1, "n": null, "b": true, "i": -5, "f": 2.5, "s": "x", "o": {"z": 1, "a": [1, "two"]}, "arr": [3, 1], "big": 18446744073709551615}
{"id": 2, "extra": "only here"}
"#,
    );
    let items = all(&jsonl_cfg(&p, "id", &[]));
    let r = rows(&items);
    assert_eq!(r.len(), 2);
    assert_eq!(cell(r[0], "id"), &Cell::Integer(1));
    assert_eq!(cell(r[0], "n"), &Cell::Null);
    assert_eq!(cell(r[0], "b"), &Cell::Boolean(true));
    assert_eq!(cell(r[0], "i"), &Cell::Integer(-5));
    assert_eq!(cell(r[0], "f"), &Cell::Float(2.5));
    assert_eq!(cell(r[0], "s"), &Cell::Text("x".into()));
    assert_eq!(cell(r[0], "o"), &Cell::Json(r#"{"a":[1,"two"],"z":1}"#.into()));
    assert_eq!(cell(r[0], "arr"), &Cell::Json("[3,1]".into()));
    assert_eq!(cell(r[0], "big"), &Cell::Text("18446744073709551615".into()), "past i64: exact text");
    let names: Vec<_> = r[0].columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "n", "b", "i", "f", "s", "o", "arr", "big"], "file order");
    assert_eq!(cell(r[1], "b"), &Cell::Null, "a missing field is NULL");
    assert_eq!(cell(r[1], "extra"), &Cell::Text("only here".into()));
}

#[test]
fn jsonl_bad_lines_name_their_line_and_streaming_goes_on() {
    let dir = TempDir::new("jsonl");
    let mut bytes = b"{\"id\": 1}\n\n{\"id\": 2, \"x\": \n[1, 2]\n\"text\"\n{\"id\": 3, \"name\": \"Ren".to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(b"e\"}\r\n{\"id\": 4}\n{\"id\": null}\n{\"id\": 1}\n");
    let p = dir.file("t.jsonl", &bytes);
    let items = all(&jsonl_cfg(&p, "id", &[]));
    assert_eq!(rows(&items).iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["1", "4"]);
    let bad = invalid(&items);
    let lines: Vec<_> = bad.iter().map(|b| (b.line, b.error.code)).collect();
    assert_eq!(lines, [
        (Some(3), ErrorCode::InvalidValue),
        (Some(4), ErrorCode::InvalidValue),
        (Some(5), ErrorCode::InvalidValue),
        (Some(6), ErrorCode::InvalidValue),
        (Some(8), ErrorCode::MissingField),
        (Some(9), ErrorCode::DuplicateKey),
    ]);
    assert!(bad[0].error.message.contains("line 3") && bad[0].error.message.contains("not valid JSON"), "{}", bad[0].error.message);
    assert!(bad[1].error.message.contains("found an array"), "{}", bad[1].error.message);
    assert!(bad[3].error.message.contains("UTF-8") && bad[3].error.message.contains("re-encode"), "{}", bad[3].error.message);
}

#[test]
fn jsonl_hints_and_key_check() {
    let dir = TempDir::new("jsonl");
    let p = dir.file("t.jsonl", b"{\"id\": \"a\", \"when\": \"2024-02-03\", \"vip\": 1}\n");
    let items = all(&jsonl_cfg(&p, "id", &[("when", TypeHint::Timestamp), ("vip", TypeHint::Boolean)]));
    let r = rows(&items);
    assert_eq!(cell(r[0], "when"), &Cell::Timestamp("2024-02-03T00:00:00Z".into()));
    assert_eq!(cell(r[0], "vip"), &Cell::Boolean(true));
    let e = open_err(&jsonl_cfg(&p, "uid", &[])).to_string();
    assert!(e.contains("`uid`") && e.contains("`id`"), "{e}");
    // An empty file is an empty source.
    let empty = dir.file("e.jsonl", b"");
    assert!(all(&jsonl_cfg(&empty, "id", &[])).is_empty());
}

// ---------------------------------------------------------------------------------------------
// SQLite

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

// ---------------------------------------------------------------------------------------------
// the sample warehouse

fn warehouse_rows(conn: &rusqlite::Connection) -> Vec<Vec<rusqlite::types::Value>> {
    let mut stmt = conn.prepare("SELECT * FROM customers ORDER BY id").unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn warehouse_sqlite_is_built_from_warehouse_sql() {
    let sql = std::fs::read_to_string(examples().join("warehouse.sql")).unwrap();
    let rebuilt = rusqlite::Connection::open_in_memory().unwrap();
    rebuilt.execute_batch(&sql).unwrap();
    let committed =
        rusqlite::Connection::open_with_flags(examples().join("warehouse.sqlite"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let schema = |c: &rusqlite::Connection| -> String {
        c.query_row("SELECT sql FROM sqlite_master WHERE name = 'customers'", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(schema(&rebuilt), schema(&committed), "rebuild: rm -f examples/warehouse.sqlite && sqlite3 examples/warehouse.sqlite < examples/warehouse.sql");
    let (a, b) = (warehouse_rows(&rebuilt), warehouse_rows(&committed));
    assert_eq!(a.len(), 200);
    assert_eq!(a, b, "examples/warehouse.sqlite is stale; rebuild it from warehouse.sql");
}

#[test]
fn warehouse_reads_typed_with_its_bad_rows() {
    let items = all(&sqlite_cfg(&examples().join("warehouse.sqlite"), "SELECT * FROM customers ORDER BY id", "id", &[]));
    assert_eq!(items.len(), 200);
    assert!(invalid(&items).is_empty(), "bad data is the destination's to reject, not the source's");
    let r = rows(&items);
    let first = r[0];
    assert_eq!(cell(first, "id"), &Cell::Integer(1));
    assert!(matches!(cell(first, "full_name"), Cell::Text(_)));
    assert!(matches!(cell(first, "lifetime_value"), Cell::Float(_)));
    assert!(matches!(cell(first, "signup_date"), Cell::Text(d) if d.len() == 10));
    assert!(matches!(cell(first, "is_vip"), Cell::Boolean(_)));
    assert!(matches!(cell(first, "preferences"), Cell::Json(_)));
    assert!(r.iter().any(|row| matches!(cell(row, "last_order_at"), Cell::Timestamp(t) if t.ends_with('Z'))));
    assert!(r.iter().any(|row| cell(row, "last_order_at") == &Cell::Null));
    // The deliberately bad rows are there.
    let by_id = |id: &str| *r.iter().find(|row| row.key == id).unwrap();
    assert_eq!(cell(by_id("7"), "email"), &Cell::Null);
    assert!(matches!(cell(by_id("14"), "email"), Cell::Text(e) if !e.contains('@')));
    assert_eq!(cell(by_id("19"), "phone"), &Cell::Text("call after 5pm".into()));
    for row in &r {
        if let Cell::Text(e) = cell(row, "email") {
            if e.contains('@') {
                let domain = e.rsplit('@').next().unwrap().to_ascii_lowercase();
                assert!(["example.com", "example.org", "example.net"].contains(&domain.as_str()), "{e}");
            }
        }
    }
}

#[test]
fn sample_csv_and_jsonl_equal_the_warehouse_rows() {
    let db = all(&sqlite_cfg(&examples().join("warehouse.sqlite"), "SELECT * FROM customers WHERE id <= 20 ORDER BY id", "id", &[]));
    let csv = all(&csv_cfg(&examples().join("customers.csv"), "id", SAMPLE_HINTS));
    let jsonl = all(&jsonl_cfg(&examples().join("customers.jsonl"), "id", SAMPLE_HINTS));
    assert_eq!(db.len(), 20);
    assert_eq!(csv, db, "customers.csv differs from the warehouse");
    assert_eq!(jsonl, db, "customers.jsonl differs from the warehouse");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A schema of its own, dropped at the end.
struct PgSchema {
    name: String,
    client: postgres::Client,
}

impl PgSchema {
    fn new(tag: &str) -> PgSchema {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("hh_src_{tag}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let mut client = postgres::Client::connect(&pg_url(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is needed for this test: {e}", source::redact_connection_string(&pg_url())));
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name};")).unwrap();
        PgSchema { name, client }
    }
    fn exec(&mut self, sql: &str) {
        let sql = sql.replace("{s}", &self.name);
        self.client.batch_execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    fn cfg(&self, query: &str, key: &str, batch: Option<usize>) -> SourceConfig {
        SourceConfig::Postgres(PostgresConfig {
            url: Some(pg_url()),
            url_env: None,
            query: query.replace("{s}", &self.name),
            primary_key: key.into(),
            types: BTreeMap::new(),
            batch_size: batch,
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = self.client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

#[test]
fn postgres_type_mapping() {
    let mut pg = PgSchema::new("types");
    pg.exec(
        r#"CREATE TYPE {s}.tier AS ENUM ('bronze', 'gold');
           CREATE DOMAIN {s}.email AS text;
           CREATE TABLE {s}.t (
             id int4 PRIMARY KEY, small int2, big int8, f4 float4, f8 float8, num numeric(12,4), num2 numeric,
             flag bool, name text, code varchar(10), ch char(3), d date, ts timestamp, tstz timestamptz,
             j json, jb jsonb, u uuid, tier {s}.tier, mail {s}.email);
           INSERT INTO {s}.t VALUES
             (1, -3, 9007199254740993, 0.1, 2.25, 1234.5, -0.000123, true, 'Zoë', 'AB-1', 'x', '2024-02-29',
              '2024-05-01 13:45:07.25', '2024-05-01 13:45:07+02', '{"b": 1, "a": [1, 2]}', '{"b": 1, "a": null}',
              'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'gold', 'z@example.com'),
             (2, NULL, NULL, NULL, NULL, NULL, 10000000000000000000000.5, NULL, NULL, NULL, NULL, '1999-12-31',
              '1970-01-01 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL);"#,
    );
    let items = all(&pg.cfg("SELECT * FROM {s}.t ORDER BY id", "id", None));
    let r = rows(&items);
    assert_eq!(r.len(), 2, "{items:?}");
    let a = r[0];
    assert_eq!(a.key, "1");
    assert_eq!(cell(a, "id"), &Cell::Integer(1));
    assert_eq!(cell(a, "small"), &Cell::Integer(-3));
    assert_eq!(cell(a, "big"), &Cell::Integer(9_007_199_254_740_993));
    assert_eq!(cell(a, "f4"), &Cell::Float(0.1));
    assert_eq!(cell(a, "f8"), &Cell::Float(2.25));
    assert_eq!(cell(a, "num"), &Cell::Text("1234.5000".into()), "numeric is exact text");
    assert_eq!(cell(a, "num2"), &Cell::Text("-0.000123".into()));
    assert_eq!(cell(a, "flag"), &Cell::Boolean(true));
    assert_eq!(cell(a, "name"), &Cell::Text("Zoë".into()));
    assert_eq!(cell(a, "code"), &Cell::Text("AB-1".into()));
    assert_eq!(cell(a, "ch"), &Cell::Text("x  ".into()));
    assert_eq!(cell(a, "d"), &Cell::Text("2024-02-29".into()));
    assert_eq!(cell(a, "ts"), &Cell::Timestamp("2024-05-01T13:45:07.250000Z".into()));
    assert_eq!(cell(a, "tstz"), &Cell::Timestamp("2024-05-01T11:45:07Z".into()));
    assert_eq!(cell(a, "j"), &Cell::Json(r#"{"a":[1,2],"b":1}"#.into()));
    assert_eq!(cell(a, "jb"), &Cell::Json(r#"{"a":null,"b":1}"#.into()));
    assert_eq!(cell(a, "u"), &Cell::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()));
    assert_eq!(cell(a, "tier"), &Cell::Text("gold".into()), "enums are text");
    assert_eq!(cell(a, "mail"), &Cell::Text("z@example.com".into()), "domains map as their base type");
    let b = r[1];
    for col in ["small", "big", "f4", "f8", "num", "flag", "name", "tstz", "j", "jb", "u", "tier", "mail"] {
        assert_eq!(cell(b, col), &Cell::Null, "{col}");
    }
    assert_eq!(cell(b, "num2"), &Cell::Text("10000000000000000000000.5".into()));
    assert_eq!(cell(b, "d"), &Cell::Text("1999-12-31".into()));
    assert_eq!(cell(b, "ts"), &Cell::Timestamp("1970-01-01T00:00:00Z".into()));
    let names: Vec<_> = a.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[..3], ["id", "small", "big"]);
}

#[test]
fn postgres_numeric_text_matches_the_server() {
    let mut pg = PgSchema::new("numeric");
    pg.exec("CREATE TABLE {s}.n (id int PRIMARY KEY, v numeric);");
    let values = ["0", "0.0", "1", "-1", "10000", "12345678.9", "0.00001", "-0.5", "99999999999999999999.000000000001", "1e-20", "NaN", "123.4500"];
    for (i, v) in values.iter().enumerate() {
        pg.exec(&format!("INSERT INTO {{s}}.n VALUES ({i}, '{v}'::numeric);"));
    }
    let expected: Vec<String> = {
        let q = format!("SELECT v::text FROM {}.n ORDER BY id", pg.name);
        pg.client.query(&q, &[]).unwrap().iter().map(|r| r.get::<_, String>(0)).collect()
    };
    let items = all(&pg.cfg("SELECT * FROM {s}.n ORDER BY id", "id", None));
    let got: Vec<String> = rows(&items).iter().map(|r| match cell(r, "v") {
        Cell::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    }).collect();
    assert_eq!(got, expected);
}

#[test]
fn postgres_unsupported_type_names_column_type_and_fix() {
    let mut pg = PgSchema::new("unsupported");
    pg.exec("CREATE TABLE {s}.t (id int PRIMARY KEY, blob bytea, span interval); INSERT INTO {s}.t VALUES (1, '\\x00ff', '1 day');");
    let e = open_err(&pg.cfg("SELECT * FROM {s}.t", "id", None));
    match &e {
        SourceError::UnsupportedType { column, type_name } => {
            assert_eq!(column, "blob");
            assert_eq!(type_name, "bytea");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("cast it in the query") && e.to_string().contains("blob::text"), "{e}");
    // The fix works.
    let items = all(&pg.cfg("SELECT id, encode(blob, 'hex') AS blob, span::text AS span FROM {s}.t", "id", None));
    let r = rows(&items);
    assert_eq!(cell(r[0], "blob"), &Cell::Text("00ff".into()));
    assert_eq!(cell(r[0], "span"), &Cell::Text("1 day".into()));
}

#[test]
fn postgres_streams_through_a_cursor_in_chunks() {
    let pg = PgSchema::new("stream");
    // 10 001 rows fetched 7 at a time: many round trips, and a last short chunk.
    let items: Vec<SourceItem> = source::open(&pg.cfg(
        "SELECT g AS id, 'user' || g || '@example.com' AS email FROM generate_series(1, 10001) AS g ORDER BY g",
        "id",
        Some(7),
    ))
    .unwrap()
    .map(Result::unwrap)
    .collect();
    assert_eq!(items.len(), 10_001);
    assert_eq!(rows(&items).last().unwrap().key, "10001");
    // Exact multiple of the chunk size.
    let n = source::open(&pg.cfg("SELECT g AS id FROM generate_series(1, 70) AS g", "id", Some(7))).unwrap().count();
    assert_eq!(n, 70);
    // Empty result.
    let n = source::open(&pg.cfg("SELECT g AS id FROM generate_series(1, 0) AS g", "id", Some(7))).unwrap().count();
    assert_eq!(n, 0);
}

#[test]
fn postgres_keys_values_and_infinity() {
    let mut pg = PgSchema::new("keys");
    pg.exec(
        "CREATE TABLE {s}.t (id text, ts timestamptz, f float8);
         INSERT INTO {s}.t VALUES ('a', now(), 1), ('b', 'infinity', 2), ('a', now(), 3), (NULL, now(), 4), ('c', now(), 'NaN');",
    );
    let items = all(&pg.cfg("SELECT * FROM {s}.t ORDER BY f", "id", None));
    assert_eq!(rows(&items).iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a"]);
    let bad = invalid(&items);
    let s: Vec<_> = bad.iter().map(|b| (b.key.as_deref(), b.error.code, b.error.field.as_deref())).collect();
    assert_eq!(s, [
        (Some("b"), ErrorCode::InvalidValue, Some("ts")),
        (Some("a"), ErrorCode::DuplicateKey, Some("id")),
        (None, ErrorCode::MissingField, Some("id")),
        (Some("c"), ErrorCode::InvalidValue, Some("f")),
    ]);
    assert!(bad[0].error.message.contains("infinity"), "{}", bad[0].error.message);
}

#[test]
fn postgres_errors_name_the_fix_and_hide_the_password() {
    let pg = PgSchema::new("errors");
    let e = open_err(&pg.cfg("SELECT * FROM {s}.missing", "id", None)).to_string();
    assert!(e.contains("does not exist") && e.contains("query"), "{e}");
    let e = open_err(&pg.cfg("SELECT 1 AS x", "id", None)).to_string();
    assert!(e.contains("`id`") && e.contains("`x`"), "{e}");
    let e = open_err(&pg.cfg("SELECT $1::int AS id", "id", None)).to_string();
    assert!(e.contains("parameter"), "{e}");
    // Read-only transaction: writes are refused, and the table is untouched.
    let mut pg = pg;
    pg.exec("CREATE TABLE {s}.w (id int);");
    let e = match source::open(&pg.cfg("INSERT INTO {s}.w VALUES (1) RETURNING id", "id", None)) {
        Err(e) => e.to_string(),
        Ok(mut src) => match src.next() {
            Some(Err(e)) => e.to_string(),
            other => panic!("a write went through: {other:?}"),
        },
    };
    assert!(e.contains("read-only"), "{e}");
    let q = format!("SELECT count(*) FROM {}.w", pg.name);
    assert_eq!(pg.client.query_one(&q, &[]).unwrap().get::<_, i64>(0), 0);

    // Nothing listens on port 1: the error names the server without the password.
    let cfg = SourceConfig::Postgres(PostgresConfig {
        url: Some("postgresql://bob:hunter2@127.0.0.1:1/test".into()),
        url_env: None,
        query: "SELECT 1 AS id".into(),
        primary_key: "id".into(),
        types: BTreeMap::new(),
        batch_size: None,
    });
    let e = open_err(&cfg);
    let text = format!("{e} {e:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("bob@127.0.0.1:1/test"), "{text}");
    // A bad string does not echo the password either.
    let cfg = SourceConfig::Postgres(PostgresConfig {
        url: Some("host=127.0.0.1 password=hunter2 port=notaport".into()),
        url_env: None,
        query: "SELECT 1 AS id".into(),
        primary_key: "id".into(),
        types: BTreeMap::new(),
        batch_size: None,
    });
    let text = open_err(&cfg).to_string();
    assert!(!text.contains("hunter2") && text.contains("port"), "{text}");
    // url_env names a missing variable.
    let cfg = SourceConfig::Postgres(PostgresConfig {
        url: None,
        url_env: Some("HH_TEST_SURELY_UNSET_VAR".into()),
        query: "SELECT 1 AS id".into(),
        primary_key: "id".into(),
        types: BTreeMap::new(),
        batch_size: None,
    });
    assert!(open_err(&cfg).to_string().contains("HH_TEST_SURELY_UNSET_VAR"));
}

#[test]
fn postgres_reads_the_sample_warehouse_like_sqlite() {
    // Load the same customers into PostgreSQL with native types; the rows must match SQLite's.
    let mut pg = PgSchema::new("warehouse");
    pg.exec(
        "CREATE TABLE {s}.customers (id int PRIMARY KEY, full_name text, email text, phone text, address text, country text,
          loyalty_tier text, lifetime_value float8, signup_date date, last_order_at timestamp, is_vip bool, preferences jsonb);",
    );
    let db = all(&sqlite_cfg(&examples().join("warehouse.sqlite"), "SELECT * FROM customers ORDER BY id", "id", &[]));
    let insert = format!("INSERT INTO {}.customers VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::text::date,$10::text::timestamp,$11,$12::text::jsonb)", pg.name);
    let stmt = pg.client.prepare(&insert).unwrap();
    for r in rows(&db) {
        let text = |c: &str| match cell(r, c) {
            Cell::Null => None,
            other => other.as_key_text(),
        };
        let id = match cell(r, "id") { Cell::Integer(i) => *i as i32, _ => unreachable!() };
        let ltv = match cell(r, "lifetime_value") { Cell::Float(f) => *f, _ => unreachable!() };
        let vip = matches!(cell(r, "is_vip"), Cell::Boolean(true));
        let ts = text("last_order_at").map(|t| t.trim_end_matches('Z').replace('T', " "));
        pg.client
            .execute(&stmt, &[&id, &text("full_name"), &text("email"), &text("phone"), &text("address"), &text("country"),
                &text("loyalty_tier"), &ltv, &text("signup_date"), &ts, &vip, &text("preferences")])
            .unwrap();
    }
    let from_pg = all(&pg.cfg("SELECT * FROM {s}.customers ORDER BY id", "id", Some(64)));
    assert_eq!(from_pg, db);
}
