//! The bundled sample warehouse: the SQLite file, the SQL it is built from, and the CSV and JSON Lines copies agree.

use super::*;

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
