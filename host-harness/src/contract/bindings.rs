//! The one module that names the types `bindgen!` generates from the WIT, and converts them to
//! and from the plain types of [`crate::contract::model`] and [`crate::contract::spec`].

use crate::contract::model;
use crate::contract::spec;

/// Generated bindings (documented in the WIT itself).
#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "plugin-host-view",
    imports: { default: async },
    exports: { default: async },
    });
}

pub use generated::*;

pub use generated::exports::reverse_etl::destination::destination as guest;
pub use generated::reverse_etl::destination::host as host_iface;
pub use generated::reverse_etl::destination::types as wit;

impl From<model::Cell> for wit::Cell {
    fn from(c: model::Cell) -> Self {
        match c {
            model::Cell::Null => wit::Cell::Null,
            model::Cell::Boolean(b) => wit::Cell::Boolean(b),
            model::Cell::Integer(i) => wit::Cell::Integer(i),
            model::Cell::Float(f) => wit::Cell::Float(f),
            model::Cell::Text(s) => wit::Cell::Text(s),
            model::Cell::Timestamp(s) => wit::Cell::Timestamp(s),
            model::Cell::Json(s) => wit::Cell::Json(s),
        }
    }
}

impl From<model::Row> for wit::Row {
    fn from(r: model::Row) -> Self {
        wit::Row {
            key: r.key,
            columns: r
                .columns
                .into_iter()
                .map(|c| wit::Column { name: c.name, value: c.value.into() })
                .collect(),
        }
    }
}

impl From<&model::Row> for wit::Row {
    fn from(r: &model::Row) -> Self {
        r.clone().into()
    }
}

/// Settings to the WIT form.
pub fn settings(config: &[model::Setting]) -> Vec<wit::Setting> {
    config.iter().map(|s| wit::Setting { key: s.key.clone(), value: s.value.clone() }).collect()
}

/// Mapping to the WIT form.
pub fn mapping(mapping: &[model::FieldMapping]) -> Vec<wit::FieldMapping> {
    mapping
        .iter()
        .map(|m| wit::FieldMapping { source: m.source.clone(), target: m.target.clone() })
        .collect()
}

impl From<model::SyncMode> for wit::SyncMode {
    fn from(m: model::SyncMode) -> Self {
        match m {
            model::SyncMode::Upsert => wit::SyncMode::Upsert,
            model::SyncMode::Insert => wit::SyncMode::Insert,
            model::SyncMode::Update => wit::SyncMode::Update,
            model::SyncMode::Mirror => wit::SyncMode::Mirror,
            model::SyncMode::AudienceAdd => wit::SyncMode::AudienceAdd,
            model::SyncMode::AudienceRemove => wit::SyncMode::AudienceRemove,
            model::SyncMode::AudienceMirror => wit::SyncMode::AudienceMirror,
            model::SyncMode::AudienceUpsert => wit::SyncMode::AudienceUpsert,
        }
    }
}

impl From<wit::SyncMode> for model::SyncMode {
    fn from(m: wit::SyncMode) -> Self {
        match m {
            wit::SyncMode::Upsert => model::SyncMode::Upsert,
            wit::SyncMode::Insert => model::SyncMode::Insert,
            wit::SyncMode::Update => model::SyncMode::Update,
            wit::SyncMode::Mirror => model::SyncMode::Mirror,
            wit::SyncMode::AudienceAdd => model::SyncMode::AudienceAdd,
            wit::SyncMode::AudienceRemove => model::SyncMode::AudienceRemove,
            wit::SyncMode::AudienceMirror => model::SyncMode::AudienceMirror,
            wit::SyncMode::AudienceUpsert => model::SyncMode::AudienceUpsert,
        }
    }
}

impl From<model::SyncItem> for wit::SyncItem {
    fn from(i: model::SyncItem) -> Self {
        wit::SyncItem {
            row: i.row.into(),
            known_id: i.known_id,
            previous_payload: i.previous_payload,
        }
    }
}

impl From<model::BatchContext> for wit::BatchContext {
    fn from(c: model::BatchContext) -> Self {
        wit::BatchContext { sync_id: c.sync_id, attempt: c.attempt }
    }
}

impl From<wit::ErrorCode> for model::ErrorCode {
    fn from(c: wit::ErrorCode) -> Self {
        use model::ErrorCode as M;
        match c {
            wit::ErrorCode::InvalidConfig => M::InvalidConfig,
            wit::ErrorCode::AuthenticationFailed => M::AuthenticationFailed,
            wit::ErrorCode::PermissionDenied => M::PermissionDenied,
            wit::ErrorCode::MissingField => M::MissingField,
            wit::ErrorCode::InvalidValue => M::InvalidValue,
            wit::ErrorCode::WrongType => M::WrongType,
            wit::ErrorCode::Rejected => M::Rejected,
            wit::ErrorCode::NotFound => M::NotFound,
            wit::ErrorCode::Merged => M::Merged,
            wit::ErrorCode::Conflict => M::Conflict,
            wit::ErrorCode::AmbiguousMatch => M::AmbiguousMatch,
            wit::ErrorCode::DuplicateKey => M::DuplicateKey,
            wit::ErrorCode::RateLimited => M::RateLimited,
            wit::ErrorCode::ServerError => M::ServerError,
            wit::ErrorCode::Timeout => M::Timeout,
            wit::ErrorCode::Transport => M::Transport,
            wit::ErrorCode::UnexpectedResponse => M::UnexpectedResponse,
            wit::ErrorCode::EgressDenied => M::EgressDenied,
            wit::ErrorCode::PluginFailure => M::PluginFailure,
        }
    }
}

impl From<wit::ErrorCategory> for model::ErrorCategory {
    fn from(c: wit::ErrorCategory) -> Self {
        match c {
            wit::ErrorCategory::FixConfig => model::ErrorCategory::FixConfig,
            wit::ErrorCategory::SkipRecord => model::ErrorCategory::SkipRecord,
            wit::ErrorCategory::RetryLater => model::ErrorCategory::RetryLater,
        }
    }
}

impl From<wit::Error> for model::RecordError {
    fn from(e: wit::Error) -> Self {
        model::RecordError {
            code: e.code.into(),
            category: e.category.into(),
            message: e.message,
            field: e.field,
            http_status: e.http_status,
            api_errors: e
                .api_errors
                .into_iter()
                .map(|a| model::ApiError { attr: a.attr, code: a.code, detail: a.detail })
                .collect(),
            retryable: e.retryable,
            retry_after_ms: e.retry_after_ms,
        }
    }
}

impl From<wit::MappedRecord> for model::MappedRecord {
    fn from(m: wit::MappedRecord) -> Self {
        model::MappedRecord {
            key: m.key,
            payload: m.payload,
            match_value: m.match_value,
            remote_id: m.remote_id,
        }
    }
}

impl From<wit::RowError> for model::RowError {
    fn from(e: wit::RowError) -> Self {
        model::RowError { key: e.key, error: e.error.into() }
    }
}

impl From<wit::Outcome> for model::Outcome {
    fn from(o: wit::Outcome) -> Self {
        match o {
            wit::Outcome::Created => model::Outcome::Created,
            wit::Outcome::Updated => model::Outcome::Updated,
            wit::Outcome::Unchanged => model::Outcome::Unchanged,
            wit::Outcome::Skipped => model::Outcome::Skipped,
            wit::Outcome::Failed => model::Outcome::Failed,
        }
    }
}

impl From<wit::RecordResult> for model::RecordResult {
    fn from(r: wit::RecordResult) -> Self {
        model::RecordResult {
            key: r.key,
            outcome: r.outcome.into(),
            remote_id: r.remote_id,
            confirmed_payload: r.confirmed_payload,
            error: r.error.map(Into::into),
            requests: r.requests,
        }
    }
}

impl From<wit::ResolvedConfig> for spec::ResolvedConfig {
    fn from(r: wit::ResolvedConfig) -> Self {
        spec::ResolvedConfig {
            egress_hosts: r.egress_hosts,
            base_url: r.base_url,
            rate_limit_key: r.rate_limit_key,
            username: r.username,
            settings: r
                .settings
                .into_iter()
                .map(|s| model::Setting { key: s.key, value: s.value })
                .collect(),
        }
    }
}

impl From<wit::ConfigProblem> for spec::ConfigProblem {
    fn from(p: wit::ConfigProblem) -> Self {
        spec::ConfigProblem { key: p.key, message: p.message, fix: p.fix }
    }
}

fn field_kind(k: wit::FieldKind) -> &'static str {
    match k {
        wit::FieldKind::Text => "text",
        wit::FieldKind::Email => "email",
        wit::FieldKind::Phone => "phone",
        wit::FieldKind::Url => "url",
        wit::FieldKind::RecordId => "record-id",
        wit::FieldKind::Object => "object",
    }
}

impl From<wit::DestinationSpec> for spec::Spec {
    fn from(s: wit::DestinationSpec) -> Self {
        spec::Spec {
            name: s.name,
            title: s.title,
            version: s.version,
            description: s.description,
            config_fields: s
                .config_fields
                .into_iter()
                .map(|f| spec::ConfigField {
                    key: f.key,
                    label: f.label,
                    description: f.description,
                    required: f.required,
                    default_value: f.default_value,
                    example: f.example,
                })
                .collect(),
            target_fields: s
                .target_fields
                .into_iter()
                .map(|f| spec::TargetField {
                    name: f.name,
                    kind: field_kind(f.kind).to_string(),
                    description: f.description,
                    required: f.required,
                    matchable: f.matchable,
                    repeatable: f.repeatable,
                })
                .collect(),
            accepts_custom_fields: s.accepts_custom_fields,
            schema_introspection: s.schema_introspection,
            modes: s
                .modes
                .into_iter()
                .map(|m| spec::ModeSupport { mode: m.mode.into(), supported: m.supported, reason: m.reason })
                .collect(),
            credential: match s.credential {
                wit::Credential::None => spec::Credential::None,
                wit::Credential::Basic(b) => spec::Credential::Basic {
                    username_key: b.username_key,
                    secret_description: b.secret_description,
                },
            },
            suggested_rate_per_second: s.suggested_rate_per_second,
            suggested_timeout_ms: s.suggested_timeout_ms,
            suggested_max_retries: s.suggested_max_retries,
            suggested_concurrency: s.suggested_concurrency,
        }
    }
}

impl From<wit::ConnectionInfo> for spec::ConnectionInfo {
    fn from(c: wit::ConnectionInfo) -> Self {
        spec::ConnectionInfo { account: c.account }
    }
}
