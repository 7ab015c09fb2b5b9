//! Plain host-side types that mirror the WIT contract.
//!
//! Only `bindings` knows the generated types; everything else in the harness speaks these, so
//! sources, state and the planner compile and test without wasmtime in the picture.

use serde::{Deserialize, Serialize};

/// One typed warehouse cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Cell {
    /// SQL NULL or an empty cell.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A whole number.
    Integer(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Text(String),
    /// A point in time as RFC 3339 text.
    Timestamp(String),
    /// A JSON document as text.
    Json(String),
}

impl Cell {
    /// The cell as text, as a primary key or a log line shows it; `None` for NULL.
    pub fn as_key_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Boolean(b) => Some(b.to_string()),
            Cell::Integer(i) => Some(i.to_string()),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Text(s) | Cell::Timestamp(s) | Cell::Json(s) => Some(s.clone()),
        }
    }
}

/// One named cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Value.
    pub value: Cell,
}

/// One warehouse row with its record key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The primary-key value as text.
    pub key: String,
    /// The cells.
    pub columns: Vec<Column>,
}

/// A non-secret configuration entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// Column → destination field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldMapping {
    /// Warehouse column.
    pub source: String,
    /// Destination field.
    pub target: String,
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// Find, then update or create.
    Upsert,
    /// Create only.
    Insert,
    /// Update by the destination's id.
    Update,
    /// Make the destination equal to the model.
    Mirror,
    /// Audience add.
    AudienceAdd,
    /// Audience remove.
    AudienceRemove,
    /// Audience mirror.
    AudienceMirror,
    /// Audience upsert.
    AudienceUpsert,
}

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCategory {
    /// Change the configuration, mapping or credentials.
    FixConfig,
    /// The record's data is rejected.
    SkipRecord,
    /// Transient; retry later.
    RetryLater,
}

/// Stable error code (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Invalid configuration.
    InvalidConfig,
    /// 401.
    AuthenticationFailed,
    /// 403.
    PermissionDenied,
    /// A required field is empty.
    MissingField,
    /// A value does not parse.
    InvalidValue,
    /// A cell of the wrong type.
    WrongType,
    /// 400 from the API.
    Rejected,
    /// The record to update does not exist.
    NotFound,
    /// The record was merged into another.
    Merged,
    /// 409 uniqueness conflict.
    Conflict,
    /// Several matches.
    AmbiguousMatch,
    /// Key repeated in the input.
    DuplicateKey,
    /// 429.
    RateLimited,
    /// 5xx.
    ServerError,
    /// Timed out.
    Timeout,
    /// Connection failed.
    Transport,
    /// Unreadable response.
    UnexpectedResponse,
    /// Egress policy denied the request.
    EgressDenied,
    /// The plugin trapped, panicked or hit a limit.
    PluginFailure,
}

impl ErrorCategory {
    /// The category as its stable kebab-case label (as serialized).
    pub fn label(self) -> &'static str {
        match self {
            ErrorCategory::FixConfig => "fix-config",
            ErrorCategory::SkipRecord => "skip-record",
            ErrorCategory::RetryLater => "retry-later",
        }
    }
}

impl ErrorCode {
    /// The code as its stable kebab-case label.
    pub fn label(self) -> &'static str {
        match self {
            ErrorCode::InvalidConfig => "invalid-config",
            ErrorCode::AuthenticationFailed => "authentication-failed",
            ErrorCode::PermissionDenied => "permission-denied",
            ErrorCode::MissingField => "missing-field",
            ErrorCode::InvalidValue => "invalid-value",
            ErrorCode::WrongType => "wrong-type",
            ErrorCode::Rejected => "rejected",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Merged => "merged",
            ErrorCode::Conflict => "conflict",
            ErrorCode::AmbiguousMatch => "ambiguous-match",
            ErrorCode::DuplicateKey => "duplicate-key",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::ServerError => "server-error",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Transport => "transport",
            ErrorCode::UnexpectedResponse => "unexpected-response",
            ErrorCode::EgressDenied => "egress-denied",
            ErrorCode::PluginFailure => "plugin-failure",
        }
    }
}

/// The API's own error detail.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiError {
    /// Field blamed.
    pub attr: Option<String>,
    /// API code.
    pub code: Option<String>,
    /// API message.
    pub detail: Option<String>,
}

/// A structured error from the plugin or the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordError {
    /// Stable code.
    pub code: ErrorCode,
    /// What to do about it.
    pub category: ErrorCategory,
    /// Human sentence; never a secret.
    pub message: String,
    /// Config key, target or column at fault.
    pub field: Option<String>,
    /// HTTP status behind it.
    pub http_status: Option<u16>,
    /// API error detail.
    pub api_errors: Vec<ApiError>,
    /// Whether a retry may succeed.
    pub retryable: bool,
    /// Server-requested wait, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl RecordError {
    /// A host-made error with no HTTP detail.
    pub fn host(code: ErrorCode, category: ErrorCategory, message: impl Into<String>) -> Self {
        RecordError {
            code,
            category,
            message: message.into(),
            field: None,
            http_status: None,
            api_errors: Vec::new(),
            retryable: category == ErrorCategory::RetryLater,
            retry_after_ms: None,
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.label(), self.message)
    }
}

impl std::error::Error for RecordError {}

/// A row mapped by the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedRecord {
    /// Row key.
    pub key: String,
    /// Canonical JSON of the destination record.
    pub payload: String,
    /// The lookup value (the email for Gladly).
    pub match_value: Option<String>,
    /// The destination id when mapped.
    pub remote_id: Option<String>,
}

/// A row the plugin could not map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowError {
    /// Row key.
    pub key: String,
    /// Why.
    pub error: RecordError,
}

/// One record handed to `sync-batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncItem {
    /// The row.
    pub row: Row,
    /// The id state knows for it.
    pub known_id: Option<String>,
    /// The payload last confirmed for it.
    pub previous_payload: Option<String>,
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Nothing to change.
    Unchanged,
    /// Deliberately not written.
    Skipped,
    /// Failed.
    Failed,
}

/// The result for one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordResult {
    /// Row key.
    pub key: String,
    /// What happened.
    pub outcome: Outcome,
    /// Destination id.
    pub remote_id: Option<String>,
    /// Payload the destination now holds.
    pub confirmed_payload: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<RecordError>,
    /// Requests spent.
    pub requests: u32,
}

impl RecordResult {
    /// The host's result for a record that failed with `error` without a request of its own
    /// (the whole call failed, or the record was found to be the one that breaks it).
    pub fn failed(key: &str, error: RecordError) -> Self {
        RecordResult {
            key: key.to_string(),
            outcome: Outcome::Failed,
            remote_id: None,
            confirmed_payload: None,
            error: Some(error),
            requests: 0,
        }
    }
}

/// Per-call facts from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchContext {
    /// Stable id of the configured sync.
    pub sync_id: String,
    /// Attempt number, 0 first.
    pub attempt: u32,
}
