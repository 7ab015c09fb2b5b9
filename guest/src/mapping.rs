//! Row → Gladly profile. Pure: `map-row`, `map-rows` and `sync-batch` all go through here.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use crate::model::{
    Cell, ConfigProblem, DestError, ErrorCategory, ErrorCode, FieldMapping, MappedRecord, Row,
    SyncMode,
};
use crate::profile::{EmailEntry, PhoneEntry, Profile};
use crate::settings::{AttributeMode, Config};
use crate::spec::StandardField;
use crate::{email, phone};

/// Prefix that sends a target into `customAttributes` explicitly.
pub const CUSTOM_PREFIX: &str = "customAttributes.";

/// Where one mapped column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A standard profile field.
    Standard(StandardField),
    /// One custom attribute key.
    Custom(String),
}

/// A compiled mapping: targets resolved once, checked for duplicates and typos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    entries: Vec<(String, Target)>,
}

/// A mapped row.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The create body without `id`.
    pub profile: Profile,
    /// The mapped Gladly id, if any.
    pub id: Option<String>,
    /// First email, lower-cased: the upsert lookup value.
    pub match_value: Option<String>,
}

impl Mapped {
    /// The WIT `mapped-record` of this row.
    pub fn record(&self, key: &str) -> MappedRecord {
        MappedRecord {
            key: key.to_string(),
            payload: self.profile.canonical(),
            match_value: self.match_value.clone(),
            remote_id: self.id.clone(),
        }
    }
}

/// Folds a name for typo detection: lower case, letters and digits only.
fn fold(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The standard field a non-standard target was probably meant to be.
fn likely_meant(target: &str) -> Option<StandardField> {
    let folded = fold(target);
    let alias = match folded.as_str() {
        "phonenumber" => Some(StandardField::Phone),
        "emailaddress" => Some(StandardField::Email),
        "mobilenumber" | "mobile" => Some(StandardField::MobilePhone),
        _ => None,
    };
    alias.or_else(|| {
        StandardField::ALL
            .into_iter()
            .find(|f| fold(f.name()) == folded)
    })
}

impl Plan {
    /// Resolves and checks the targets of a mapping.
    pub fn compile(mapping: &[FieldMapping]) -> Result<Plan, Vec<ConfigProblem>> {
        let (plan, problems) = Plan::compile_partial(mapping);
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(problems)
        }
    }

    /// Like [`Plan::compile`], but also returns the plan of the entries that passed, so mode
    /// checks can still run and every problem is reported in one go.
    pub fn compile_partial(mapping: &[FieldMapping]) -> (Plan, Vec<ConfigProblem>) {
        let mut problems = Vec::new();
        let mut entries: Vec<(String, Target)> = Vec::new();
        for m in mapping {
            if m.source.trim().is_empty() {
                problems.push(ConfigProblem::new(
                    m.target.clone(),
                    format!("The mapping to `{}` has no source column.", m.target),
                    "Pick the warehouse column that feeds it, or remove the mapping.",
                ));
                continue;
            }
            let target = if let Some(f) = StandardField::from_name(&m.target) {
                Target::Standard(f)
            } else if let Some(key) = m.target.strip_prefix(CUSTOM_PREFIX) {
                if key.trim().is_empty() {
                    problems.push(ConfigProblem::new(
                        m.target.clone(),
                        "A custom attribute target needs a key after `customAttributes.`.",
                        format!("Use e.g. customAttributes.{}.", m.source),
                    ));
                    continue;
                }
                Target::Custom(key.to_string())
            } else if m.target.trim().is_empty() {
                problems.push(ConfigProblem::new(
                    m.target.clone(),
                    format!("Column `{}` is mapped to an empty target.", m.source),
                    "Name a Gladly field (email, name, phone…) or a custom attribute key.",
                ));
                continue;
            } else if let Some(meant) = likely_meant(&m.target) {
                problems.push(ConfigProblem::new(
                    m.target.clone(),
                    format!(
                        "Target `{}` looks like the standard field `{}`; as written it would \
                         become a custom attribute.",
                        m.target,
                        meant.name()
                    ),
                    format!(
                        "Use `{}` (names are case-sensitive), or `{CUSTOM_PREFIX}{}` if a custom \
                         attribute is intended.",
                        meant.name(),
                        m.target
                    ),
                ));
                continue;
            } else {
                Target::Custom(m.target.clone())
            };
            let repeatable = matches!(target, Target::Standard(f) if f.repeatable());
            if !repeatable && entries.iter().any(|(_, t)| *t == target) {
                problems.push(ConfigProblem::new(
                    m.target.clone(),
                    format!("Target `{}` is mapped from more than one column.", m.target),
                    "Keep one column for it (only email, phone and customAttributes take several).",
                ));
                continue;
            }
            entries.push((m.source.clone(), target));
        }
        (Plan { entries }, problems)
    }

    /// Whether some column is mapped to `field`.
    pub fn maps(&self, field: StandardField) -> bool {
        self.entries
            .iter()
            .any(|(_, t)| *t == Target::Standard(field))
    }

    /// Whether `email` is mapped (then every row must carry one).
    pub fn maps_email(&self) -> bool {
        self.maps(StandardField::Email)
    }

    /// Whether `id` is mapped.
    pub fn maps_id(&self) -> bool {
        self.maps(StandardField::Id)
    }

    /// Problems specific to a sync mode: the field each mode identifies customers by.
    pub fn check_mode(&self, mode: SyncMode) -> Vec<ConfigProblem> {
        match mode {
            SyncMode::Update if !self.maps_id() => vec![ConfigProblem::new(
                "id",
                "Update mode needs a primary key: a column holding the Gladly customer ID of \
                 each profile, so the plugin knows which profile to change.",
                "Map a Gladly customer ID column to `id`, or switch to upsert, which looks \
                 customers up by email.",
            )],
            SyncMode::Upsert | SyncMode::Insert if !self.maps_email() => vec![ConfigProblem::new(
                "email",
                format!(
                    "{} mode needs `email` mapped: it identifies and creates customer profiles.",
                    mode.name()
                ),
                "Map the column holding the customer's email address to `email`.",
            )],
            _ => Vec::new(),
        }
    }

    /// The configuration for one row: a mapped `phoneRegion` column overrides `default-region`.
    fn row_config<'c>(&self, config: &'c Config, row: &Row) -> Result<Cow<'c, Config>, DestError> {
        let mut out = Cow::Borrowed(config);
        for (source, target) in &self.entries {
            if *target != Target::Standard(StandardField::PhoneRegion) {
                continue;
            }
            let fail = |code, problem: &str, fix: &str| row_error(row, source, target, code, problem, fix);
            match text_only(row.cell(source)).map_err(|(code, problem, fix)| fail(code, &problem, &fix))? {
                None => {}
                Some(code) => {
                    out.to_mut().default_region = code.to_ascii_uppercase().parse().map_err(|_| {
                        fail(
                            ErrorCode::InvalidValue,
                            &format!("holds `{code}`, which is not a two-letter region code"),
                            "use ISO 3166 alpha-2 codes such as US, GB or FR",
                        )
                    })?;
                }
            }
        }
        Ok(out)
    }

    /// Maps one row. Null cells are left out; the first failing column is reported.
    pub fn map_row(&self, config: &Config, row: &Row) -> Result<Mapped, DestError> {
        let row_config = self.row_config(config, row)?;
        let config = &row_config;
        let mut profile = Profile::default();
        let mut id = None;
        let mut from_objects = Map::new();
        let mut from_columns = Map::new();
        let mut first_email_column = None;
        for (source, target) in &self.entries {
            let cell = row.cell(source);
            let fail =
                |code, problem: &str, fix: &str| row_error(row, source, target, code, problem, fix);
            match target {
                Target::Standard(field) => {
                    if *field == StandardField::Email && first_email_column.is_none() {
                        first_email_column = Some(source.clone());
                    }
                    map_standard(
                        config,
                        *field,
                        cell,
                        &mut profile,
                        &mut id,
                        &mut from_objects,
                    )
                    .map_err(|(code, problem, fix)| fail(code, &problem, &fix))?;
                }
                Target::Custom(key) => {
                    if let Some(v) = attribute_value(config.attribute_mode, cell)
                        .map_err(|(code, problem, fix)| fail(code, &problem, &fix))?
                    {
                        from_columns.insert(key.clone(), v);
                    }
                }
            }
        }
        if let (Some(column), true) = (&first_email_column, profile.emails.is_empty()) {
            return Err(row_error(
                row,
                column,
                &Target::Standard(StandardField::Email),
                ErrorCode::MissingField,
                "has no email address",
                "fill in the email column for this row, or filter such rows out of the model",
            ));
        }
        // Individually mapped columns are more specific than keys of a JSON object column.
        from_objects.extend(from_columns);
        profile.custom_attributes = from_objects;
        let match_value = profile.emails.first().map(|e| email::key(&e.original));
        Ok(Mapped {
            profile,
            id,
            match_value,
        })
    }
}

type CellProblem = (ErrorCode, String, String);

fn wrong_type(cell: &Cell, expected: &str) -> CellProblem {
    (
        ErrorCode::WrongType,
        format!(
            "holds a {} value where {expected} is needed",
            cell.type_name()
        ),
        format!("map a column of {expected}, or cast the column in the model"),
    )
}

/// Trimmed text; `None` for blank text.
fn text(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Text, or a whole number written as text (ids often live in integer columns).
fn text_or_integer(cell: &Cell, expected: &str) -> Result<Option<String>, CellProblem> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Text(s) => Ok(text(s)),
        Cell::Integer(i) => Ok(Some(i.to_string())),
        other => Err(wrong_type(other, expected)),
    }
}

fn text_only(cell: &Cell) -> Result<Option<String>, CellProblem> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Text(s) => Ok(text(s)),
        other => Err(wrong_type(other, "text")),
    }
}

fn map_standard(
    config: &Config,
    field: StandardField,
    cell: &Cell,
    profile: &mut Profile,
    id: &mut Option<String>,
    attributes: &mut Map<String, Value>,
) -> Result<(), CellProblem> {
    match field {
        StandardField::Id => *id = text_or_integer(cell, "a Gladly customer id")?,
        StandardField::Name => profile.name = text_only(cell)?,
        StandardField::Address => profile.address = text_only(cell)?,
        StandardField::ExternalCustomerId => {
            profile.external_customer_id = text_or_integer(cell, "text")?;
        }
        StandardField::Image => {
            if let Some(u) = text_only(cell)? {
                let ok = url::Url::parse(&u)
                    .map(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err((
                        ErrorCode::InvalidValue,
                        "is not an http(s) URL".to_string(),
                        "put a full image URL such as https://example.com/avatar.png in the \
                         column"
                            .to_string(),
                    ));
                }
                profile.image = Some(u);
            }
        }
        StandardField::Email => {
            if let Some(raw) = text_only(cell)? {
                let original = email::validate(&raw).map_err(|e| {
                    (
                        ErrorCode::InvalidValue,
                        format!("is not a valid email address ({e})"),
                        "correct the address in the source data".to_string(),
                    )
                })?;
                let key = email::key(&original);
                if !profile
                    .emails
                    .iter()
                    .any(|e| email::key(&e.original) == key)
                {
                    profile.emails.push(EmailEntry {
                        original,
                        ..Default::default()
                    });
                }
            }
        }
        StandardField::Phone
        | StandardField::MobilePhone
        | StandardField::HomePhone
        | StandardField::OfficePhone => {
            if let Some(raw) = text_or_integer(cell, "a phone number as text")? {
                let p = phone::normalize(&raw, config.default_region).map_err(|e| {
                    (
                        ErrorCode::InvalidValue,
                        format!("is not a usable phone number: {e}"),
                        format!(
                            "write it with + and the country code, or set default-region to \
                             the number's region (now {})",
                            config.default_region.as_ref()
                        ),
                    )
                })?;
                if !profile.phones.iter().any(|q| q.original == p.e164) {
                    profile.phones.push(PhoneEntry {
                        original: p.e164,
                        region_code: Some(p.region),
                        extension: p.extension,
                        kind: phone_type(field).map(str::to_string),
                        ..Default::default()
                    });
                }
            }
        }
        // Read before the other fields, in `row_config`.
        StandardField::PhoneRegion => {}
        StandardField::CustomAttributes => {
            let object = match cell {
                Cell::Null => return Ok(()),
                Cell::Json(s) | Cell::Text(s) => match serde_json::from_str::<Value>(s) {
                    Ok(Value::Object(o)) => o,
                    Ok(Value::Null) => return Ok(()),
                    Ok(_) | Err(_) if matches!(cell, Cell::Text(_)) => {
                        return Err(wrong_type(cell, "a JSON object"));
                    }
                    Ok(other) => {
                        return Err((
                            ErrorCode::WrongType,
                            format!(
                                "holds JSON {} where a JSON object is needed",
                                json_kind(&other)
                            ),
                            "make the column a JSON object of attribute names to values"
                                .to_string(),
                        ));
                    }
                    Err(e) => {
                        return Err((
                            ErrorCode::InvalidValue,
                            format!("is not valid JSON ({e})"),
                            "fix the JSON in the source data".to_string(),
                        ));
                    }
                },
                other => return Err(wrong_type(other, "a JSON object")),
            };
            for (k, v) in object {
                if let Some(v) = json_attribute(config.attribute_mode, v) {
                    attributes.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

fn phone_type(field: StandardField) -> Option<&'static str> {
    match field {
        StandardField::MobilePhone => Some("MOBILE"),
        StandardField::HomePhone => Some("HOME"),
        StandardField::OfficePhone => Some("OFFICE"),
        _ => None,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "text",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A number as text without float noise: `3.0` → `3`, `2.5` → `2.5`.
fn number_text(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() => f.to_string(),
        _ => n.to_string(),
    }
}

/// One value taken from a JSON object column; `None` drops a null.
fn json_attribute(mode: AttributeMode, v: Value) -> Option<Value> {
    match (mode, v) {
        (_, Value::Null) => None,
        (AttributeMode::Typed, v) => Some(v),
        (AttributeMode::String, Value::String(s)) => Some(Value::String(s)),
        (AttributeMode::String, Value::Number(n)) => Some(Value::String(number_text(&n))),
        (AttributeMode::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        // Nested values have no flat form: send their JSON text.
        (AttributeMode::String, nested) => Some(Value::String(nested.to_string())),
    }
}

/// The value of one custom-attribute column; `None` for a null cell.
fn attribute_value(mode: AttributeMode, cell: &Cell) -> Result<Option<Value>, CellProblem> {
    let non_finite = || {
        (
            ErrorCode::InvalidValue,
            "holds a number that is not finite".to_string(),
            "replace NaN or infinity in the source data".to_string(),
        )
    };
    Ok(match (mode, cell) {
        (_, Cell::Null) => None,
        (_, Cell::Text(s)) | (_, Cell::Timestamp(s)) => Some(Value::String(s.clone())),
        (AttributeMode::String, Cell::Boolean(b)) => Some(Value::String(b.to_string())),
        (AttributeMode::Typed, Cell::Boolean(b)) => Some(Value::Bool(*b)),
        (AttributeMode::String, Cell::Integer(i)) => Some(Value::String(i.to_string())),
        (AttributeMode::Typed, Cell::Integer(i)) => Some(Value::from(*i)),
        (AttributeMode::String, Cell::Float(f)) => {
            if !f.is_finite() {
                return Err(non_finite());
            }
            Some(Value::String(f.to_string()))
        }
        (AttributeMode::Typed, Cell::Float(f)) => {
            Some(Value::Number(Number::from_f64(*f).ok_or_else(non_finite)?))
        }
        (_, Cell::Json(s)) => {
            let v: Value = serde_json::from_str(s).map_err(|e| {
                (
                    ErrorCode::InvalidValue,
                    format!("is not valid JSON ({e})"),
                    "fix the JSON in the source data".to_string(),
                )
            })?;
            json_attribute(mode, v)
        }
    })
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Standard(f) => f.name().to_string(),
        Target::Custom(k) => format!("{CUSTOM_PREFIX}{k}"),
    }
}

fn row_error(
    row: &Row,
    column: &str,
    target: &Target,
    code: ErrorCode,
    problem: &str,
    fix: &str,
) -> DestError {
    DestError::new(
        code,
        ErrorCategory::SkipRecord,
        format!(
            "Row `{}`: column `{column}` (mapped to `{}`) {problem}. Fix: {fix}.",
            row.key,
            target_name(target)
        ),
    )
    .with_field(column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, Setting};
    use crate::settings::parse;

    fn config(mode: &str) -> Config {
        parse(&[
            Setting {
                key: "domain".into(),
                value: "acme".into(),
            },
            Setting {
                key: "username".into(),
                value: "api@acme.com".into(),
            },
            Setting {
                key: "custom-attribute-values".into(),
                value: mode.into(),
            },
        ])
        .unwrap()
    }

    fn plan(pairs: &[(&str, &str)]) -> Plan {
        Plan::compile(
            &pairs
                .iter()
                .map(|(s, t)| FieldMapping {
                    source: s.to_string(),
                    target: t.to_string(),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn row(cells: Vec<(&str, Cell)>) -> Row {
        Row {
            key: "k1".into(),
            columns: cells
                .into_iter()
                .map(|(n, v)| Column {
                    name: n.into(),
                    value: v,
                })
                .collect(),
        }
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    #[test]
    fn maps_standard_fields() {
        let p = plan(&[
            ("gid", "id"),
            ("n", "name"),
            ("e1", "email"),
            ("e2", "email"),
            ("p", "phone"),
            ("m", "mobilePhone"),
            ("a", "address"),
            ("img", "image"),
            ("x", "externalCustomerId"),
        ]);
        let r = row(vec![
            ("gid", text("cust-1")),
            ("n", text(" Ann Lee ")),
            ("e1", text(" Ann@Example.com")),
            ("e2", text("ann@work.example")),
            ("p", text("(415) 555-2671")),
            ("m", text("+49 151 23456789")),
            ("a", text("1 Main St")),
            ("img", text("https://img.example/a.png")),
            ("x", Cell::Integer(42)),
        ]);
        let m = p.map_row(&config("string"), &r).unwrap();
        assert_eq!(m.id.as_deref(), Some("cust-1"));
        assert_eq!(m.match_value.as_deref(), Some("ann@example.com"));
        let rec = m.record("k1");
        assert_eq!(rec.remote_id.as_deref(), Some("cust-1"));
        assert_eq!(
            rec.payload,
            concat!(
                r#"{"address":"1 Main St","emails":[{"original":"Ann@Example.com"},{"original":"ann@work.example"}],"#,
                r#""externalCustomerId":"42","image":"https://img.example/a.png","name":"Ann Lee","#,
                r#""phones":[{"original":"+14155552671","regionCode":"US"},{"original":"+4915123456789","regionCode":"DE","type":"MOBILE"}]}"#
            )
        );
    }

    #[test]
    fn a_phone_region_column_reads_national_numbers_in_that_region() {
        let p = plan(&[("e", "email"), ("c", "phoneRegion"), ("p", "phone")]);
        let uk = row(vec![("e", text("a@x.io")), ("c", text("gb")), ("p", text("020 7946 0227"))]);
        let m = p.map_row(&config("string"), &uk).unwrap();
        let payload = m.record("k").payload;
        assert!(payload.contains(r#"{"original":"+442079460227","regionCode":"GB"}"#), "{payload}");
        assert!(!payload.contains("phoneRegion"), "the region column is not sent: {payload}");
        let none = row(vec![("e", text("a@x.io")), ("c", Cell::Null), ("p", text("(415) 555-2671"))]);
        assert!(p.map_row(&config("string"), &none).unwrap().record("k").payload.contains("+14155552671"));
        let bad = row(vec![("e", text("a@x.io")), ("c", text("Britain")), ("p", text("020 7946 0227"))]);
        let e = p.map_row(&config("string"), &bad).unwrap_err();
        assert!(e.message.contains("`c`") && e.message.contains("region code"), "{}", e.message);
    }

    #[test]
    fn nulls_are_omitted_and_duplicates_collapse() {
        let p = plan(&[
            ("e1", "email"),
            ("e2", "email"),
            ("n", "name"),
            ("p1", "phone"),
            ("p2", "phone"),
        ]);
        let r = row(vec![
            ("e1", text("a@x.io")),
            ("e2", text("A@X.io")),
            ("n", Cell::Null),
            ("p1", text("+14155552671")),
            ("p2", Cell::Integer(4155552671)),
        ]);
        let m = p.map_row(&config("string"), &r).unwrap();
        assert_eq!(m.profile.emails.len(), 1);
        assert_eq!(m.profile.phones.len(), 1);
        assert_eq!(m.profile.name, None);
        assert!(!m.record("k1").payload.contains("null"));
    }

    #[test]
    fn custom_attributes_string_mode() {
        let p = plan(&[
            ("e", "email"),
            ("obj", "customAttributes"),
            ("tier", "tier"),
            ("n", "customAttributes.count"),
            ("f", "score"),
            ("b", "vip"),
            ("t", "since"),
            ("j", "nested"),
            ("whole", "whole"),
        ]);
        let r = row(vec![
            ("e", text("a@x.io")),
            ("obj", Cell::Json(r#"{"albums": 6, "ratio": 2.5, "whole": 9.0, "ok": true, "gone": null, "deep": {"a": [1]}, "tier": "silver"}"#.into())),
            ("tier", text("gold")), ("n", Cell::Integer(7)), ("f", Cell::Float(3.0)),
            ("b", Cell::Boolean(false)), ("t", Cell::Timestamp("2024-01-02T03:04:05Z".into())),
            ("j", Cell::Json(r#"{"x":1}"#.into())), ("whole", Cell::Float(2.25)),
        ]);
        let m = p.map_row(&config("string"), &r).unwrap();
        let attrs = serde_json::to_value(&m.profile.custom_attributes).unwrap();
        assert_eq!(
            attrs,
            serde_json::json!({
                "albums": "6", "ratio": "2.5", "whole": "2.25", "ok": "true",
                "deep": "{\"a\":[1]}", "tier": "gold", "count": "7", "score": "3",
                "vip": "false", "since": "2024-01-02T03:04:05Z", "nested": "{\"x\":1}"
            })
        );
    }

    #[test]
    fn custom_attributes_typed_mode() {
        let p = plan(&[
            ("e", "email"),
            ("obj", "customAttributes"),
            ("n", "count"),
            ("b", "vip"),
            ("f", "score"),
        ]);
        let r = row(vec![
            ("e", text("a@x.io")),
            ("obj", text(r#"{"albums": 6}"#)),
            ("n", Cell::Integer(7)),
            ("b", Cell::Boolean(true)),
            ("f", Cell::Float(1.5)),
        ]);
        let m = p.map_row(&config("typed"), &r).unwrap();
        assert_eq!(
            serde_json::to_value(&m.profile.custom_attributes).unwrap(),
            serde_json::json!({"albums": 6, "count": 7, "vip": true, "score": 1.5})
        );
    }

    fn err(pairs: &[(&str, &str)], cells: Vec<(&str, Cell)>) -> DestError {
        plan(pairs)
            .map_row(&config("string"), &row(cells))
            .unwrap_err()
    }

    #[test]
    fn row_errors_name_row_column_and_fix() {
        let e = err(&[("e", "email")], vec![("e", Cell::Null)]);
        assert_eq!(e.code, ErrorCode::MissingField);
        assert_eq!(e.field.as_deref(), Some("e"));
        assert!(
            e.message.contains("`k1`") && e.message.contains("`e`") && e.message.contains("Fix:")
        );
        assert_eq!(e.category, ErrorCategory::SkipRecord);
        assert!(!e.retryable);

        let e = err(&[("e", "email")], vec![("e", text("   "))]);
        assert_eq!(e.code, ErrorCode::MissingField);
        let e = err(&[("e", "email")], vec![("e", text("not-an-email"))]);
        assert_eq!(e.code, ErrorCode::InvalidValue);
        let e = err(
            &[("e", "email"), ("p", "phone")],
            vec![("e", text("a@x.io")), ("p", text("call me"))],
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidValue, Some("p"))
        );
        let e = err(
            &[("e", "email"), ("n", "name")],
            vec![("e", text("a@x.io")), ("n", Cell::Boolean(true))],
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::WrongType, Some("n"))
        );
        let e = err(
            &[("e", "email"), ("o", "customAttributes")],
            vec![("e", text("a@x.io")), ("o", text("plain"))],
        );
        assert_eq!(e.code, ErrorCode::WrongType);
        let e = err(
            &[("e", "email"), ("o", "customAttributes")],
            vec![("e", text("a@x.io")), ("o", Cell::Json("[1]".into()))],
        );
        assert_eq!(e.code, ErrorCode::WrongType);
        let e = err(
            &[("e", "email"), ("o", "customAttributes")],
            vec![("e", text("a@x.io")), ("o", Cell::Json("{".into()))],
        );
        assert_eq!(e.code, ErrorCode::InvalidValue);
        let e = err(
            &[("e", "email"), ("i", "image")],
            vec![("e", text("a@x.io")), ("i", text("not a url"))],
        );
        assert_eq!(e.code, ErrorCode::InvalidValue);
        let e = err(
            &[("e", "email"), ("f", "score")],
            vec![("e", text("a@x.io")), ("f", Cell::Float(f64::NAN))],
        );
        assert_eq!(e.code, ErrorCode::InvalidValue);
    }

    #[test]
    fn email_optional_when_not_mapped() {
        let p = plan(&[("gid", "id"), ("n", "name")]);
        let m = p
            .map_row(
                &config("string"),
                &row(vec![("gid", Cell::Integer(5)), ("n", text("Ann"))]),
            )
            .unwrap();
        assert_eq!(m.id.as_deref(), Some("5"));
        assert_eq!(m.match_value, None);
    }

    fn compile_err(pairs: &[(&str, &str)]) -> Vec<ConfigProblem> {
        Plan::compile(
            &pairs
                .iter()
                .map(|(s, t)| FieldMapping {
                    source: s.to_string(),
                    target: t.to_string(),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap_err()
    }

    #[test]
    fn compile_rejects_duplicates_and_typos() {
        let p = compile_err(&[("a", "name"), ("b", "name")]);
        assert_eq!(p[0].key, "name");
        let p = compile_err(&[("a", "tier"), ("b", "customAttributes.tier")]);
        assert_eq!(p.len(), 1);
        let p = compile_err(&[
            ("a", "Email"),
            ("b", "phone_number"),
            ("c", "external_customer_id"),
        ]);
        assert_eq!(p.len(), 3);
        assert!(p[0].fix.contains("`email`"));
        assert!(p[1].fix.contains("`phone`"));
        assert!(p[2].fix.contains("`externalCustomerId`"));
        let p = compile_err(&[("a", "customAttributes.")]);
        assert_eq!(p.len(), 1);
        let p = compile_err(&[("", "name")]);
        assert_eq!(p.len(), 1);
        // repeatable targets are fine
        assert!(
            Plan::compile(&[
                FieldMapping {
                    source: "a".into(),
                    target: "email".into()
                },
                FieldMapping {
                    source: "b".into(),
                    target: "email".into()
                },
                FieldMapping {
                    source: "c".into(),
                    target: "phone".into()
                },
                FieldMapping {
                    source: "d".into(),
                    target: "phone".into()
                },
                FieldMapping {
                    source: "e".into(),
                    target: "Email_Verified_At".into()
                },
            ])
            .is_ok()
        );
    }
}
