//! JSON Lines: JSON types to cells, bad lines, hints and key checks.

use super::*;

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

#[test]
fn jsonl_a_cell_over_the_default_cap_is_an_invalid_row_naming_line_column_size_and_limit() {
    let dir = TempDir::new("jsonl");
    let p = dir.file("t.jsonl", format!("{{\"id\": 1}}\n{{\"id\": 2, \"notes\": \"{}\"}}\n{{\"id\": 3}}\n", over_default_cell()).as_bytes());
    let items = all(&jsonl_cfg(&p, "id", &[]));
    assert_eq!(keys(&items), ["1", "3"], "the rows before and after are read");
    let bad = invalid(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].line, bad[0].key.as_deref(), bad[0].error.field.as_deref()), (Some(2), Some("2"), Some("notes")));
    assert_eq!(
        bad[0].error.message,
        "line 2, column `notes`: 65 KiB exceeds the 64 KiB cell limit; shorten the value or remove the column from the file, or raise `budget.max_cell_bytes` in `[source]`"
    );
}

#[test]
fn jsonl_a_line_over_the_default_row_cap_is_one_invalid_row_and_the_next_line_is_read() {
    let dir = TempDir::new("jsonl");
    // Line 2 is exactly 8 MiB before its newline: `{"id": 2, "notes": "` (20) + x… + `"}` (2).
    let mut line = String::from("{\"id\": 2, \"notes\": \"");
    line.push_str(&"x".repeat(8 * 1024 * 1024 - 22));
    line.push_str("\"}");
    assert_eq!(line.len(), 8 * 1024 * 1024);
    let p = dir.file("t.jsonl", format!("{{\"id\": 1}}\n{line}\n{{\"id\": 3}}\n").as_bytes());
    let items = all(&jsonl_cfg(&p, "id", &[]));
    assert_eq!(keys(&items), ["1", "3"]);
    let bad = invalid(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].line, bad[0].key.as_deref(), bad[0].error.field.as_deref()), (Some(2), None, None), "never parsed: no key");
    assert_eq!(
        bad[0].error.message,
        "line 2: the row is 8 MiB and exceeds the 1 MiB row limit; shorten its values or move some columns to another file, or raise `budget.max_row_bytes` in `[source]`"
    );
}
