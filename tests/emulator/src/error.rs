//! Gladly's error body: `{"errors":[{"attr","code","detail","meta"}]}`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ErrorsShape;

/// The error codes Gladly documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A required value is missing or empty.
    Blank,
    /// A value has the wrong type, format or content.
    Invalid,
    /// The profile was merged into another one.
    Moved,
    /// A number was expected.
    NotANumber,
    /// A value must be absent.
    Present,
    /// A unique value is already used.
    Taken,
    /// A value is too long.
    TooLong,
    /// A value has the wrong length.
    WrongLength,
    /// The resource does not exist.
    NotExist,
    /// The resource cannot change in its current state.
    InvalidState,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Blank => "blank",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Moved => "moved",
            ErrorCode::NotANumber => "not_a_number",
            ErrorCode::Present => "present",
            ErrorCode::Taken => "taken",
            ErrorCode::TooLong => "too_long",
            ErrorCode::WrongLength => "wrong_length",
            ErrorCode::NotExist => "not_exist",
            ErrorCode::InvalidState => "invalid_state",
        }
    }
}

/// One entry of an error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GladlyError {
    /// The field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attr: Option<String>,
    /// What kind of error.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub detail: String,
    /// Extra data (for `moved`: `old` and `new`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub meta: Option<Value>,
}

impl GladlyError {
    /// An error without attribute or meta.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        GladlyError {
            attr: None,
            code,
            detail: detail.into(),
            meta: None,
        }
    }

    /// An error about one field.
    pub fn attr(attr: impl Into<String>, code: ErrorCode, detail: impl Into<String>) -> Self {
        GladlyError {
            attr: Some(attr.into()),
            code,
            detail: detail.into(),
            meta: None,
        }
    }

    /// Adds meta data.
    pub fn with_meta(mut self, meta: Value) -> Self {
        self.meta = Some(meta);
        self
    }
}

/// Builds the JSON error body in the configured shape.
pub fn error_body(errors: &[GladlyError], shape: ErrorsShape) -> Value {
    let list: Vec<Value> = errors
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    match shape {
        ErrorsShape::Array => serde_json::json!({ "errors": list }),
        // The object shape can carry one error only, as in some of Gladly's examples.
        ErrorsShape::Object => {
            let first = list
                .into_iter()
                .next()
                .unwrap_or_else(|| serde_json::json!({}));
            serde_json::json!({ "errors": first })
        }
    }
}

/// A JSON response with the given status and error list.
pub fn error_response(status: StatusCode, errors: &[GladlyError], shape: ErrorsShape) -> Response {
    json_response(status, &error_body(errors, shape))
}

/// A JSON response with the given status and body.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let text = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A response without body.
pub fn empty_response(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}
