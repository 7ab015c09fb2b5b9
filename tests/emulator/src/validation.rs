//! Strict checks of create and update bodies: Gladly's schema (as JSON Schema) plus the checks
//! a schema cannot express (email syntax, readable phone numbers, one primary email).

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::error::{ErrorCode, GladlyError};
use crate::normalize::{is_valid_email, normalize_phone};

/// JSON Schema (draft 2020-12) of a create body.
pub const CREATE_SCHEMA: &str = include_str!("../../conformance/schemas/customer-create.schema.json");
/// JSON Schema (draft 2020-12) of an update body.
pub const UPDATE_SCHEMA: &str = include_str!("../../conformance/schemas/customer-update.schema.json");

static CREATE: LazyLock<Result<Validator, String>> = LazyLock::new(|| compile(CREATE_SCHEMA));
static UPDATE: LazyLock<Result<Validator, String>> = LazyLock::new(|| compile(UPDATE_SCHEMA));

fn compile(text: &str) -> Result<Validator, String> {
    let schema: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::draft202012::new(&schema).map_err(|e| e.to_string())
}

/// Checks a `POST /api/v1/customer-profiles` body; the errors are what the emulator answers with.
pub fn validate_create_body(body: &Value) -> Result<(), Vec<GladlyError>> {
    validate(&CREATE, body)
}

/// Checks a `PATCH /api/v1/customer-profiles/{id}` body; the errors are what the emulator answers with.
pub fn validate_update_body(body: &Value) -> Result<(), Vec<GladlyError>> {
    validate(&UPDATE, body)
}

fn validate(validator: &Result<Validator, String>, body: &Value) -> Result<(), Vec<GladlyError>> {
    let validator = match validator {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![GladlyError::new(
                ErrorCode::Invalid,
                format!("emulator schema does not compile: {e}"),
            )]);
        }
    };
    let mut errors: Vec<GladlyError> = validator.iter_errors(body).flat_map(convert).collect();
    // Content checks only make sense once the shape is right.
    if errors.is_empty() {
        errors = content_errors(body);
    }
    errors.dedup();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// `emails[0].original` style name of a place in the body.
fn attr_of<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else {
        format!("{base}.{field}")
    }
}

fn convert(err: ValidationError<'_>) -> Vec<GladlyError> {
    let base = attr_of(err.instance_path().segments());
    let at = |code: ErrorCode, detail: String| {
        if base.is_empty() {
            GladlyError::new(code, detail)
        } else {
            GladlyError::attr(base.clone(), code, detail)
        }
    };
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                GladlyError::attr(
                    join(&base, name),
                    ErrorCode::Invalid,
                    format!("{name} is not a known field"),
                )
            })
            .collect(),
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![GladlyError::attr(
                join(&base, name),
                ErrorCode::Blank,
                format!("{name} is required"),
            )]
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            vec![at(
                ErrorCode::Invalid,
                format!("must be of type {expected}"),
            )]
        }
        ValidationErrorKind::Enum { options } => {
            vec![at(ErrorCode::Invalid, format!("must be one of {options}"))]
        }
        ValidationErrorKind::MaxLength { limit } => {
            vec![at(
                ErrorCode::TooLong,
                format!("must have at most {limit} characters"),
            )]
        }
        ValidationErrorKind::MinLength { .. } => {
            vec![at(ErrorCode::Blank, "must not be empty".into())]
        }
        ValidationErrorKind::Pattern { .. } => vec![at(
            ErrorCode::Invalid,
            "may only hold letters, digits, '-' and '_'".into(),
        )],
        _ => vec![at(ErrorCode::Invalid, err.to_string())],
    }
}

fn content_errors(body: &Value) -> Vec<GladlyError> {
    let mut errors = Vec::new();
    if let Some(emails) = body.get("emails").and_then(Value::as_array) {
        let mut primaries = 0;
        for (i, email) in emails.iter().enumerate() {
            let original = email
                .get("original")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if original.trim().is_empty() {
                errors.push(GladlyError::attr(
                    format!("emails[{i}].original"),
                    ErrorCode::Blank,
                    "email address is empty",
                ));
            } else if !is_valid_email(original) {
                errors.push(GladlyError::attr(
                    format!("emails[{i}].original"),
                    ErrorCode::Invalid,
                    format!("{original:?} is not an email address"),
                ));
            }
            if email.get("primary").and_then(Value::as_bool) == Some(true) {
                primaries += 1;
            }
        }
        if primaries > 1 {
            errors.push(GladlyError::attr(
                "emails",
                ErrorCode::Invalid,
                "only one email may be primary",
            ));
        }
    }
    if let Some(phones) = body.get("phones").and_then(Value::as_array) {
        for (i, phone) in phones.iter().enumerate() {
            let original = phone
                .get("original")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let region = phone.get("regionCode").and_then(Value::as_str);
            if original.trim().is_empty() {
                errors.push(GladlyError::attr(
                    format!("phones[{i}].original"),
                    ErrorCode::Blank,
                    "phone number is empty",
                ));
            } else if let Err(why) = normalize_phone(original, region) {
                errors.push(GladlyError::attr(
                    format!("phones[{i}].original"),
                    ErrorCode::Invalid,
                    why,
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(r: Result<(), Vec<GladlyError>>) -> Vec<(String, ErrorCode)> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.attr.unwrap_or_default(), e.code))
            .collect()
    }

    #[test]
    fn schemas_compile() {
        assert!(CREATE.is_ok(), "{:?}", CREATE.as_ref().err());
        assert!(UPDATE.is_ok(), "{:?}", UPDATE.as_ref().err());
    }

    #[test]
    fn full_create_body_passes() {
        let body = json!({
            "id": "abc_DEF-123",
            "name": "Ann",
            "image": "https://example.com/a.png",
            "address": "1 Main St",
            "emails": [{"original": "Ann@Example.com", "primary": true}],
            "phones": [{"original": "4155550100", "type": "MOBILE", "smsPreference": "ON",
                        "regionCode": "US", "extension": "12", "primary": true}],
            "externalCustomerId": "x-1",
            "customAttributes": {"tier": "gold"}
        });
        assert_eq!(validate_create_body(&body), Ok(()));
    }

    #[test]
    fn create_errors_name_the_field() {
        assert_eq!(
            attrs(validate_create_body(&json!({"nmae": "x"}))),
            vec![("nmae".to_string(), ErrorCode::Invalid)]
        );
        assert_eq!(
            attrs(validate_create_body(
                &json!({"emails": [{"primary": true}]})
            )),
            vec![("emails[0].original".to_string(), ErrorCode::Blank)]
        );
        assert_eq!(
            attrs(validate_create_body(
                &json!({"phones": [{"original": "1", "type": "CELL"}]})
            )),
            vec![("phones[0].type".to_string(), ErrorCode::Invalid)]
        );
        assert_eq!(
            attrs(validate_create_body(&json!({"id": "a".repeat(50)}))),
            vec![("id".to_string(), ErrorCode::TooLong)]
        );
        assert_eq!(
            attrs(validate_create_body(&json!({"id": "a/b"}))),
            vec![("id".to_string(), ErrorCode::Invalid)]
        );
        assert_eq!(
            attrs(validate_create_body(&json!({"name": 5}))),
            vec![("name".to_string(), ErrorCode::Invalid)]
        );
        assert_eq!(
            attrs(validate_create_body(
                &json!({"emails": [{"original": "nope"}]})
            )),
            vec![("emails[0].original".to_string(), ErrorCode::Invalid)]
        );
        assert_eq!(
            attrs(validate_create_body(
                &json!({"createdAt": "2020-01-01T00:00:00Z"})
            )),
            vec![("createdAt".to_string(), ErrorCode::Invalid)]
        );
        assert!(validate_create_body(&json!([])).is_err());
    }

    #[test]
    fn update_tolerates_read_only_fields() {
        let body = json!({
            "id": "x", "createdAt": "t", "updatedAt": "t", "externalCustomerIds": {},
            "emails": [{"original": "a@b.com", "normalized": "a@b.com"}],
            "phones": [{"original": "+14155550100", "normalized": "+14155550100", "type": ""}]
        });
        assert_eq!(validate_update_body(&body), Ok(()));
        assert_eq!(
            attrs(validate_update_body(&json!({"foo": 1}))),
            vec![("foo".to_string(), ErrorCode::Invalid)]
        );
    }
}
