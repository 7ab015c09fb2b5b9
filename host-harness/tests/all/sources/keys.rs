//! Key checks: duplicate and missing keys are invalid rows, never sent.

use super::*;

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
        k.check(&Cell::Integer(i64::from(i))).unwrap().unwrap();
    }
    assert_eq!(k.len(), 200_000);
    assert_eq!(k.check(&Cell::Text("199999".into())).unwrap().unwrap_err().code, ErrorCode::DuplicateKey);
    assert_eq!(k.check(&Cell::Text("0".into())).unwrap().unwrap_err().code, ErrorCode::DuplicateKey, "a spilled key");
}
