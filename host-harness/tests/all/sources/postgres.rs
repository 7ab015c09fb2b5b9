//! PostgreSQL against the real server: types, cursors, keys, errors without the password.

use super::*;

/// A schema of its own, dropped at the end.
struct PgSchema {
    name: String,
    client: ::postgres::Client,
}

impl PgSchema {
    fn new(tag: &str) -> PgSchema {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("hh_src_{tag}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let mut client = ::postgres::Client::connect(&pg_url(), ::postgres::NoTls)
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
            budget: InputBudget::default(),
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
        budget: InputBudget::default(),
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
        budget: InputBudget::default(),
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
        budget: InputBudget::default(),
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

#[test]
fn postgres_a_cell_over_the_default_cap_is_an_invalid_row_naming_record_column_size_and_limit() {
    let pg = PgSchema::new("cellcap");
    let items = all(&pg.cfg(
        "SELECT * FROM (VALUES (1, 'short'), (2, repeat('x', 66560)), (3, 'ok')) AS t(id, notes) ORDER BY id",
        "id",
        None,
    ));
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
fn postgres_a_row_over_the_row_cap_is_invalid_though_each_cell_fits() {
    let pg = PgSchema::new("rowcap");
    // Record 2 on the wire: int4 id (4) + 60 + 60 = 124 bytes, over 100; each cell is under 64.
    let q = "SELECT * FROM (VALUES (1, 'x', 'y'), (2, repeat('a', 60), repeat('b', 60)), (3, 'x', 'y')) AS t(id, a, b) ORDER BY id";
    let items = all(&with_budget(pg.cfg(q, "id", None), 64, 100));
    assert_eq!(keys(&items), ["1", "3"]);
    let bad = invalid(&items);
    assert_eq!((bad[0].record, bad[0].key.as_deref(), bad[0].error.field.as_deref()), (2, Some("2"), None));
    assert_eq!(
        bad[0].error.message,
        "record 2: the row is 124 bytes and exceeds the 100 bytes row limit; select fewer or shorter columns in `query`, or raise `budget.max_row_bytes` in `[source]`"
    );
}
