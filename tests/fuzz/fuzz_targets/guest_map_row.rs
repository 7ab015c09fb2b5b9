//! The guest's row mapping: arbitrary rows (any column names and cells: huge, lossily decoded
//! non-UTF-8, control characters) through a fixed, realistic mapping, as `map-row` runs it.
//!
//! Invariants: never panics; every row is either a mapped record (valid JSON payload, at least
//! one valid email, E.164 phones, the lookup value is the first email lower-cased) or a row
//! error (a skip-record code naming a mapped column, its message starting with the row key and
//! bounded by the row's size).
#![no_main]

use gladly_destination::email;
use gladly_destination::model::{
    Cell, Column, ErrorCategory, ErrorCode, FieldMapping, Row, Setting, SyncMode,
};
use gladly_destination::validate::validate;
use libfuzzer_sys::fuzz_target;

/// The mapping under test: (source column, target). Every standard field, repeated emails and
/// phones, a JSON-object column, explicit and implicit custom attributes.
const MAPPING: &[(&str, &str)] = &[
    ("email", "email"),
    ("work_email", "email"),
    ("phone", "phone"),
    ("mobile", "mobilePhone"),
    ("home", "homePhone"),
    ("office", "officePhone"),
    ("region", "phoneRegion"),
    ("full_name", "name"),
    ("address", "address"),
    ("avatar", "image"),
    ("customer_id", "externalCustomerId"),
    ("gladly_id", "id"),
    ("attrs", "customAttributes"),
    ("tier", "loyaltyTier"),
    ("ltv", "customAttributes.lifetimeValue"),
    ("signed_up", "signupDate"),
];

/// Up to 1 MiB: a value `*N*rest` is `rest` repeated N times.
const HUGE: usize = 1 << 20;

/// One cell line: `<type><column>=<value>`. Types: `t` text, `s` timestamp, `j` JSON, `i`
/// integer, `f` float, `b` boolean, `n` null; any other first byte is text under a column named
/// with it. Text is decoded lossily (as a non-UTF-8 source hands it over); `\n` in a value is a
/// line break.
fn cell_line(line: &[u8]) -> Column {
    let (ty, rest) = match line.split_first() {
        Some((t, r)) if b"tsjifbn".contains(t) => (*t, r),
        _ => (b't', line),
    };
    let (name, value) = gladly_fuzz::split_once(rest, b"=");
    let mut text = gladly_fuzz::lossy(value).replace("\\n", "\n");
    if let Some(spec) = text.strip_prefix('*') {
        if let Some((n, unit)) = spec.split_once('*') {
            let n: usize = n.parse().unwrap_or(0);
            text = unit.repeat(n.min(HUGE / unit.len().max(1)));
        }
    }
    let value = match ty {
        b's' => Cell::Timestamp(text),
        b'j' => Cell::Json(text),
        b'i' => text.trim().parse().map_or(Cell::Text(text), Cell::Integer),
        b'f' => text.trim().parse().map_or(Cell::Text(text), Cell::Float),
        b'b' => Cell::Boolean(text.starts_with('t')),
        b'n' => Cell::Null,
        _ => Cell::Text(text),
    };
    Column { name: gladly_fuzz::lossy(name), value }
}

fn setting(key: &str, value: &str) -> Setting {
    Setting { key: key.into(), value: value.into() }
}

// Input: line 1 is the settings (`typed` and/or `region=XX`, space separated), line 2 the row
// key, every further line one cell (see [`cell_line`]).
fuzz_target!(|data: &[u8]| {
    let (first, rest) = gladly_fuzz::split_once(data, b"\n");
    let (key_line, cells) = gladly_fuzz::split_once(rest, b"\n");
    let options = gladly_fuzz::lossy(first);
    let typed = options.split(' ').any(|o| o == "typed");
    let region = options.split(' ').find_map(|o| o.strip_prefix("region="));
    let mut settings = vec![
        setting("domain", "acme"),
        setting("username", "api@acme.com"),
        setting("custom-attribute-values", if typed { "typed" } else { "string" }),
    ];
    if let Some(r) = region {
        settings.push(setting("default-region", r));
    }
    let mapping: Vec<FieldMapping> = MAPPING
        .iter()
        .map(|(s, t)| FieldMapping { source: (*s).into(), target: (*t).into() })
        .collect();
    // A fuzzed default region may be refused: that is validation's business, not mapping's.
    let Ok((config, plan)) = validate(&settings, SyncMode::Upsert, &mapping) else {
        assert!(region.is_some(), "the fixed configuration must validate");
        return;
    };

    let key = gladly_fuzz::lossy(key_line);
    let columns: Vec<Column> = cells.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(cell_line).collect();
    let row = Row { key: key.clone(), columns };
    let row_bytes: usize = key.len()
        + row
            .columns
            .iter()
            .map(|c| {
                c.name.len()
                    + match &c.value {
                        Cell::Text(s) | Cell::Timestamp(s) | Cell::Json(s) => s.len(),
                        _ => 32,
                    }
            })
            .sum::<usize>();

    match plan.map_row(&config, &row) {
        Ok(mapped) => {
            let record = mapped.record(&key);
            assert_eq!(record.key, key);
            let payload: serde_json::Value =
                serde_json::from_str(&record.payload).expect("the payload is JSON");
            assert!(payload.is_object(), "the payload is a JSON object");
            assert!(payload.get("id").is_none(), "the create body carries no id");
            // Email is mapped, so every mapped row has one, each valid and distinct.
            assert!(!mapped.profile.emails.is_empty(), "a mapped row has an email");
            for e in &mapped.profile.emails {
                assert_eq!(email::validate(&e.original).as_deref(), Ok(e.original.as_str()));
            }
            let first = &mapped.profile.emails[0].original;
            assert_eq!(record.match_value.as_deref(), Some(email::key(first).as_str()));
            for p in &mapped.profile.phones {
                assert!(p.original.starts_with('+'), "phone {:?} is E.164", p.original);
                assert!(p.original[1..].bytes().all(|b| b.is_ascii_digit()));
            }
            if let Some(image) = &mapped.profile.image {
                assert!(image.trim() == image && !image.is_empty());
            }
            if let Some(id) = &mapped.id {
                assert!(!id.trim().is_empty());
            }
        }
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::MissingField | ErrorCode::InvalidValue | ErrorCode::WrongType
                ),
                "row error code {:?}",
                e.code
            );
            assert_eq!(e.category, ErrorCategory::SkipRecord);
            assert!(!e.retryable);
            assert_eq!(e.http_status, None);
            let field = e.field.as_deref().expect("a row error names its column");
            assert!(MAPPING.iter().any(|(s, _)| *s == field), "column {field:?} is mapped");
            assert!(e.message.starts_with(&format!("Row `{key}`: column `{field}`")));
            // The message repeats at most the row's own text, plus fixed wording.
            assert!(
                e.message.len() <= 2048 + 2 * row_bytes,
                "message of {} bytes for a row of {row_bytes}",
                e.message.len()
            );
        }
    }
});
