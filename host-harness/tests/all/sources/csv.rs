//! CSV: type hints, encoding errors, framing errors, open errors, delimiters, standard input.

use super::*;

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
    let bad_delim = SourceConfig::Csv(CsvConfig { path: p.clone(), primary_key: "id".into(), types: BTreeMap::new(), delimiter: Some('→'), budget: InputBudget::default() });
    assert!(open_err(&bad_delim).to_string().contains("ASCII"));
}

#[test]
fn csv_other_delimiter() {
    let dir = TempDir::new("csv");
    let p = dir.file("t.csv", b"id;name\n1;a,b\n");
    let cfg = SourceConfig::Csv(CsvConfig { path: p, primary_key: "id".into(), types: BTreeMap::new(), delimiter: Some(';'), budget: InputBudget::default() });
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
            .args(["sources::csv::stdin_child", "--exact", "--nocapture", "--test-threads=1"])
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

#[test]
fn csv_a_cell_over_the_default_cap_is_an_invalid_row_naming_line_column_size_and_limit() {
    let dir = TempDir::new("csv");
    let p = dir.file("t.csv", format!("id,name,notes\n1,Ann,short\n2,Bob,{}\n3,Cy,ok\n", over_default_cell()).as_bytes());
    let items = all(&csv_cfg(&p, "id", &[]));
    assert_eq!(keys(&items), ["1", "3"], "the rows before and after are read");
    let bad = invalid(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].line, bad[0].key.as_deref(), bad[0].error.field.as_deref()), (Some(3), Some("2"), Some("notes")));
    assert_eq!(
        bad[0].error.message,
        "line 3, column `notes`: 65 KiB exceeds the 64 KiB cell limit; shorten the value or remove the column from the file, or raise `budget.max_cell_bytes` in `[source]`"
    );
}

#[test]
fn csv_a_record_over_the_row_cap_is_invalid_though_each_cell_fits() {
    let dir = TempDir::new("csv");
    // Record 2's fields: "2" + 60 + 60 = 121 bytes, over 100; each cell is under 64.
    let wide = "y".repeat(60);
    let p = dir.file("t.csv", format!("id,a,b\n1,x,y\n2,{wide},{wide}\n3,x,y\n").as_bytes());
    let items = all(&with_budget(csv_cfg(&p, "id", &[]), 64, 100));
    assert_eq!(keys(&items), ["1", "3"]);
    let bad = invalid(&items);
    assert_eq!((bad[0].line, bad[0].key.as_deref(), bad[0].error.field.as_deref()), (Some(3), Some("2"), None));
    assert_eq!(
        bad[0].error.message,
        "line 3: the row is 121 bytes and exceeds the 100 bytes row limit; shorten its values or move some columns to another file, or raise `budget.max_row_bytes` in `[source]`"
    );
}
