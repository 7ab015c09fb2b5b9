//! Plain mirrors of the WIT types the logic needs.
//!
//! The logic never names wit-bindgen types, so it compiles and unit-tests natively; `bindings`
//! converts between these and the generated types field by field.

/// One typed warehouse cell.
#[derive(Debug, Clone, PartialEq)]
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
    /// A point in time, RFC 3339 text.
    Timestamp(String),
    /// A JSON document, as text.
    Json(String),
}

impl Cell {
    /// The cell's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Boolean(_) => "boolean",
            Cell::Integer(_) => "integer",
            Cell::Float(_) => "float",
            Cell::Text(_) => "text",
            Cell::Timestamp(_) => "timestamp",
            Cell::Json(_) => "json",
        }
    }
}

/// One named cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Warehouse column name.
    pub name: String,
    /// Its value.
    pub value: Cell,
}

/// One warehouse row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The model's primary-key value, as text.
    pub key: String,
    /// The row's cells.
    pub columns: Vec<Column>,
}

impl Row {
    /// The cell of the named column; a column the row does not carry reads as null.
    pub fn cell(&self, name: &str) -> &Cell {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map_or(&Cell::Null, |c| &c.value)
    }
}

/// One non-secret configuration entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Configuration key.
    pub key: String,
    /// Value, as text.
    pub value: String,
}

/// Which column feeds which destination field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    /// Warehouse column name.
    pub source: String,
    /// Destination field name.
    pub target: String,
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Find by email; update the match or create.
    Upsert,
    /// Create only.
    Insert,
    /// Update only, by Gladly customer id.
    Update,
    /// Make Gladly equal to the model (unsupported).
    Mirror,
    /// Audience add (unsupported).
    AudienceAdd,
    /// Audience remove (unsupported).
    AudienceRemove,
    /// Audience mirror (unsupported).
    AudienceMirror,
    /// Audience upsert (unsupported).
    AudienceUpsert,
}

impl SyncMode {
    /// Every mode, in WIT order.
    pub const ALL: [SyncMode; 8] = [
        SyncMode::Upsert,
        SyncMode::Insert,
        SyncMode::Update,
        SyncMode::Mirror,
        SyncMode::AudienceAdd,
        SyncMode::AudienceRemove,
        SyncMode::AudienceMirror,
        SyncMode::AudienceUpsert,
    ];

    /// The WIT name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Upsert => "upsert",
            SyncMode::Insert => "insert",
            SyncMode::Update => "update",
            SyncMode::Mirror => "mirror",
            SyncMode::AudienceAdd => "audience-add",
            SyncMode::AudienceRemove => "audience-remove",
            SyncMode::AudienceMirror => "audience-mirror",
            SyncMode::AudienceUpsert => "audience-upsert",
        }
    }
}

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// Configuration, mapping or credentials must change.
    FixConfig,
    /// This record's data is rejected.
    SkipRecord,
    /// Transient; retry later.
    RetryLater,
}

/// Bounded, stable error code (mirrors the WIT enum one to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Invalid configuration.
    InvalidConfig,
    /// HTTP 401.
    AuthenticationFailed,
    /// HTTP 403.
    PermissionDenied,
    /// A required field has no value.
    MissingField,
    /// A value could not be parsed.
    InvalidValue,
    /// A cell has a type the field cannot take.
    WrongType,
    /// HTTP 400.
    Rejected,
    /// The record to update does not exist.
    NotFound,
    /// The record was merged into another one.
    Merged,
    /// HTTP 409.
    Conflict,
    /// Several records matched.
    AmbiguousMatch,
    /// The record key appears twice in the input.
    DuplicateKey,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// Timed out.
    Timeout,
    /// Connection failed.
    Transport,
    /// The response could not be understood.
    UnexpectedResponse,
    /// The egress policy denied the request.
    EgressDenied,
    /// The plugin failed.
    PluginFailure,
}

/// One entry of Gladly's `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiError {
    /// The field Gladly blamed.
    pub attr: Option<String>,
    /// Gladly's error code (`taken`, `invalid`…).
    pub code: Option<String>,
    /// Gladly's message.
    pub detail: Option<String>,
}

/// A structured error (the WIT `error` record).
#[derive(Debug, Clone, PartialEq)]
pub struct DestError {
    /// Stable code.
    pub code: ErrorCode,
    /// What the caller should do.
    pub category: ErrorCategory,
    /// Sentence for humans; never holds a secret or a header value.
    pub message: String,
    /// Config key, mapping target or column at fault.
    pub field: Option<String>,
    /// HTTP status that caused it.
    pub http_status: Option<u16>,
    /// Gladly's error detail.
    pub api_errors: Vec<ApiError>,
    /// Whether retrying the same record may succeed.
    pub retryable: bool,
    /// How long Gladly asked to wait, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl DestError {
    /// An error with no HTTP context; `retryable` follows the category.
    pub fn new(code: ErrorCode, category: ErrorCategory, message: impl Into<String>) -> Self {
        DestError {
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

    /// The same error blaming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Whether no later record of the batch can succeed either (credentials, egress).
    pub fn is_batch_fatal(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::AuthenticationFailed | ErrorCode::PermissionDenied | ErrorCode::EgressDenied
        )
    }
}

/// One problem with a configuration or mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Config key or mapping target at fault.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub fix: String,
}

impl ConfigProblem {
    /// Builds a problem.
    pub fn new(key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigProblem {
            key: key.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// What `validate-config` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    /// The one Gladly host requests go to.
    pub egress_hosts: Vec<String>,
    /// `https://{host}`.
    pub base_url: String,
    /// Gladly's rate limit is per organization: the host name.
    pub rate_limit_key: String,
    /// Username for the Basic credential.
    pub username: Option<String>,
    /// Every setting, defaults filled in.
    pub settings: Vec<Setting>,
}

/// A row mapped to a Gladly profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRecord {
    /// The row key.
    pub key: String,
    /// Canonical JSON of the create body, without `id`.
    pub payload: String,
    /// First normalized email.
    pub match_value: Option<String>,
    /// The mapped Gladly customer id, if any.
    pub remote_id: Option<String>,
}

/// A row that cannot be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// The row key.
    pub key: String,
    /// Why.
    pub error: DestError,
}

/// One record to write.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncItem {
    /// The warehouse row.
    pub row: Row,
    /// The Gladly id the host's state holds for this key.
    pub known_id: Option<String>,
    /// The payload Gladly last confirmed for this key.
    pub previous_payload: Option<String>,
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A profile was created.
    Created,
    /// A profile was changed.
    Updated,
    /// Nothing needed to change.
    Unchanged,
    /// Deliberately not written.
    Skipped,
    /// Writing failed.
    Failed,
}

/// The result for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordResult {
    /// The row key.
    pub key: String,
    /// What happened.
    pub outcome: Outcome,
    /// Gladly's customer id, when known.
    pub remote_id: Option<String>,
    /// The payload Gladly now holds, when confirmed.
    pub confirmed_payload: Option<String>,
    /// Why it failed.
    pub error: Option<DestError>,
    /// HTTP requests spent on it.
    pub requests: u32,
}

/// Per-call facts from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchContext {
    /// Stable id of the configured sync.
    pub sync_id: String,
    /// Attempt number, 0 for the first.
    pub attempt: u32,
}

/// What `check-connection` learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The organization name, when Gladly says it.
    pub account: Option<String>,
}
