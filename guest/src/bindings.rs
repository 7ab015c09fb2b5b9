//! The component boundary: the only module that names the types wit-bindgen generates.
//!
//! It converts WIT values to the plain types of [`crate::model`], calls the plain logic and
//! converts back. The
//! wasi:http interfaces are mapped onto waki's own bindings so `client.rs` and the world share
//! one set of resource types.

// Generated code: its items are documented in the WIT, not here.
#![allow(missing_docs)]

wit_bindgen::generate!({
    path: "../wit/v0.1.0",
    world: "plugin",
    with: {
        "wasi:http/outgoing-handler@0.2.2": waki::bindings::wasi::http::outgoing_handler,
        "wasi:http/types@0.2.2": waki::bindings::wasi::http::types,
        "wasi:io/error@0.2.2": waki::bindings::wasi::io::error,
        "wasi:io/poll@0.2.2": waki::bindings::wasi::io::poll,
        "wasi:io/streams@0.2.2": waki::bindings::wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.2": waki::bindings::wasi::clocks::monotonic_clock,
    },
});

use exports::reverse_etl::destination::destination::Guest;
use reverse_etl::destination::host::{self as wit_host, Level};
use reverse_etl::destination::types as w;

use crate::client::WakiTransport;
use crate::model as p;
use crate::spec::{self, Credential, FieldKind};
use crate::validate::{self, invalid_config};
use crate::{connection, protocol, settings};

/// Writes one line to the host's log (the host prefixes the tenant). Never pass a secret.
pub fn log(level: Level, message: &str) {
    wit_host::log(level, message);
}

/// The exported component.
struct Component;

export!(Component);

// ---- WIT → plain ----

fn cell(c: w::Cell) -> p::Cell {
    match c {
        w::Cell::Null => p::Cell::Null,
        w::Cell::Boolean(b) => p::Cell::Boolean(b),
        w::Cell::Integer(i) => p::Cell::Integer(i),
        w::Cell::Float(f) => p::Cell::Float(f),
        w::Cell::Text(s) => p::Cell::Text(s),
        w::Cell::Timestamp(s) => p::Cell::Timestamp(s),
        w::Cell::Json(s) => p::Cell::Json(s),
    }
}

fn row(r: w::Row) -> p::Row {
    p::Row {
        key: r.key,
        columns: r
            .columns
            .into_iter()
            .map(|c| p::Column {
                name: c.name,
                value: cell(c.value),
            })
            .collect(),
    }
}

fn settings_in(s: Vec<w::Setting>) -> Vec<p::Setting> {
    s.into_iter()
        .map(|s| p::Setting {
            key: s.key,
            value: s.value,
        })
        .collect()
}

fn mapping_in(m: Vec<w::FieldMapping>) -> Vec<p::FieldMapping> {
    m.into_iter()
        .map(|m| p::FieldMapping {
            source: m.source,
            target: m.target,
        })
        .collect()
}

fn mode_in(m: w::SyncMode) -> p::SyncMode {
    match m {
        w::SyncMode::Upsert => p::SyncMode::Upsert,
        w::SyncMode::Insert => p::SyncMode::Insert,
        w::SyncMode::Update => p::SyncMode::Update,
        w::SyncMode::Mirror => p::SyncMode::Mirror,
        w::SyncMode::AudienceAdd => p::SyncMode::AudienceAdd,
        w::SyncMode::AudienceRemove => p::SyncMode::AudienceRemove,
        w::SyncMode::AudienceMirror => p::SyncMode::AudienceMirror,
        w::SyncMode::AudienceUpsert => p::SyncMode::AudienceUpsert,
    }
}

// ---- plain → WIT ----

fn mode_out(m: p::SyncMode) -> w::SyncMode {
    match m {
        p::SyncMode::Upsert => w::SyncMode::Upsert,
        p::SyncMode::Insert => w::SyncMode::Insert,
        p::SyncMode::Update => w::SyncMode::Update,
        p::SyncMode::Mirror => w::SyncMode::Mirror,
        p::SyncMode::AudienceAdd => w::SyncMode::AudienceAdd,
        p::SyncMode::AudienceRemove => w::SyncMode::AudienceRemove,
        p::SyncMode::AudienceMirror => w::SyncMode::AudienceMirror,
        p::SyncMode::AudienceUpsert => w::SyncMode::AudienceUpsert,
    }
}

fn category(c: p::ErrorCategory) -> w::ErrorCategory {
    match c {
        p::ErrorCategory::FixConfig => w::ErrorCategory::FixConfig,
        p::ErrorCategory::SkipRecord => w::ErrorCategory::SkipRecord,
        p::ErrorCategory::RetryLater => w::ErrorCategory::RetryLater,
    }
}

fn code(c: p::ErrorCode) -> w::ErrorCode {
    use p::ErrorCode as P;
    use w::ErrorCode as W;
    match c {
        P::InvalidConfig => W::InvalidConfig,
        P::AuthenticationFailed => W::AuthenticationFailed,
        P::PermissionDenied => W::PermissionDenied,
        P::MissingField => W::MissingField,
        P::InvalidValue => W::InvalidValue,
        P::WrongType => W::WrongType,
        P::Rejected => W::Rejected,
        P::NotFound => W::NotFound,
        P::Merged => W::Merged,
        P::Conflict => W::Conflict,
        P::AmbiguousMatch => W::AmbiguousMatch,
        P::DuplicateKey => W::DuplicateKey,
        P::RateLimited => W::RateLimited,
        P::ServerError => W::ServerError,
        P::Timeout => W::Timeout,
        P::Transport => W::Transport,
        P::UnexpectedResponse => W::UnexpectedResponse,
        P::EgressDenied => W::EgressDenied,
        P::PluginFailure => W::PluginFailure,
    }
}

fn error(e: p::DestError) -> w::Error {
    w::Error {
        code: code(e.code),
        category: category(e.category),
        message: e.message,
        field: e.field,
        http_status: e.http_status,
        api_errors: e
            .api_errors
            .into_iter()
            .map(|a| w::ApiError {
                attr: a.attr,
                code: a.code,
                detail: a.detail,
            })
            .collect(),
        retryable: e.retryable,
        retry_after_ms: e.retry_after_ms,
    }
}

fn problems(ps: Vec<p::ConfigProblem>) -> Vec<w::ConfigProblem> {
    ps.into_iter()
        .map(|p| w::ConfigProblem {
            key: p.key,
            message: p.message,
            fix: p.fix,
        })
        .collect()
}

fn kind(k: FieldKind) -> w::FieldKind {
    match k {
        FieldKind::Text => w::FieldKind::Text,
        FieldKind::Email => w::FieldKind::Email,
        FieldKind::Phone => w::FieldKind::Phone,
        FieldKind::Url => w::FieldKind::Url,
        FieldKind::RecordId => w::FieldKind::RecordId,
        FieldKind::Object => w::FieldKind::Object,
    }
}

fn outcome(o: p::Outcome) -> w::Outcome {
    match o {
        p::Outcome::Created => w::Outcome::Created,
        p::Outcome::Updated => w::Outcome::Updated,
        p::Outcome::Unchanged => w::Outcome::Unchanged,
        p::Outcome::Skipped => w::Outcome::Skipped,
        p::Outcome::Failed => w::Outcome::Failed,
    }
}

fn mapped_record(r: p::MappedRecord) -> w::MappedRecord {
    w::MappedRecord {
        key: r.key,
        payload: r.payload,
        match_value: r.match_value,
        remote_id: r.remote_id,
    }
}

fn row_error(e: p::RowError) -> w::RowError {
    w::RowError {
        key: e.key,
        error: error(e.error),
    }
}

fn spec_out(s: spec::DestinationSpec) -> w::DestinationSpec {
    w::DestinationSpec {
        name: s.name,
        title: s.title,
        version: s.version,
        description: s.description,
        config_fields: s
            .config_fields
            .into_iter()
            .map(|c| w::ConfigField {
                key: c.key,
                label: c.label,
                description: c.description,
                required: c.required,
                default_value: c.default_value,
                example: c.example,
            })
            .collect(),
        target_fields: s
            .target_fields
            .into_iter()
            .map(|t| w::TargetField {
                name: t.name,
                kind: kind(t.kind),
                description: t.description,
                required: t.required,
                matchable: t.matchable,
                repeatable: t.repeatable,
            })
            .collect(),
        accepts_custom_fields: s.accepts_custom_fields,
        schema_introspection: s.schema_introspection,
        modes: s
            .modes
            .into_iter()
            .map(|m| w::ModeSupport {
                mode: mode_out(m.mode),
                supported: m.supported,
                reason: m.reason,
            })
            .collect(),
        credential: match s.credential {
            Credential::None => w::Credential::None,
            Credential::Basic {
                username_key,
                secret_description,
            } => w::Credential::Basic(w::BasicCredential {
                username_key,
                secret_description,
            }),
        },
        suggested_rate_per_second: s.suggested_rate_per_second,
        suggested_timeout_ms: s.suggested_timeout_ms,
        suggested_max_retries: s.suggested_max_retries,
        suggested_concurrency: s.suggested_concurrency,
    }
}

/// Maps rows with a parsed config and compiled mapping; a bad config fails every row alike.
fn map_rows(
    config: Vec<w::Setting>,
    fields: Vec<w::FieldMapping>,
    rows: Vec<w::Row>,
) -> Vec<Result<w::MappedRecord, w::RowError>> {
    let prepared = match (
        settings::parse(&settings_in(config)),
        crate::mapping::Plan::compile(&mapping_in(fields)),
    ) {
        (Ok(c), Ok(p)) => Ok((c, p)),
        (c, p) => {
            let mut all = c.err().unwrap_or_default();
            all.extend(p.err().unwrap_or_default());
            Err(invalid_config(&all))
        }
    };
    rows.into_iter()
        .map(|r| {
            let r = row(r);
            let result = match &prepared {
                Ok((c, plan)) => plan.map_row(c, &r).map(|m| m.record(&r.key)),
                Err(e) => Err(e.clone()),
            };
            result
                .map(mapped_record)
                .map_err(|error| row_error(p::RowError { key: r.key, error }))
        })
        .collect()
}

impl Guest for Component {
    fn spec() -> w::DestinationSpec {
        spec_out(spec::spec())
    }

    fn validate_config(
        config: Vec<w::Setting>,
        mode: w::SyncMode,
        fields: Vec<w::FieldMapping>,
    ) -> Result<w::ResolvedConfig, Vec<w::ConfigProblem>> {
        match validate::validate(&settings_in(config), mode_in(mode), &mapping_in(fields)) {
            Ok((c, _)) => {
                let r = c.resolved();
                Ok(w::ResolvedConfig {
                    egress_hosts: r.egress_hosts,
                    base_url: r.base_url,
                    rate_limit_key: r.rate_limit_key,
                    username: r.username,
                    settings: r
                        .settings
                        .into_iter()
                        .map(|s| w::Setting {
                            key: s.key,
                            value: s.value,
                        })
                        .collect(),
                })
            }
            Err(ps) => Err(problems(ps)),
        }
    }

    fn check_connection(config: Vec<w::Setting>) -> Result<w::ConnectionInfo, w::Error> {
        let c = settings::parse(&settings_in(config)).map_err(|ps| error(invalid_config(&ps)))?;
        let mut transport = WakiTransport::default();
        connection::check_connection(&c, &mut transport)
            .map(|i| w::ConnectionInfo { account: i.account })
            .map_err(error)
    }

    fn map_row(
        config: Vec<w::Setting>,
        fields: Vec<w::FieldMapping>,
        r: w::Row,
    ) -> Result<w::MappedRecord, w::RowError> {
        let key = r.key.clone();
        map_rows(config, fields, vec![r])
            .into_iter()
            .next()
            .unwrap_or_else(|| {
                // map_rows yields one result per row; this only keeps the guest panic-free.
                Err(row_error(p::RowError {
                    key,
                    error: p::DestError::new(
                        p::ErrorCode::PluginFailure,
                        p::ErrorCategory::RetryLater,
                        "internal: no mapping result",
                    ),
                }))
            })
    }

    fn map_rows(
        config: Vec<w::Setting>,
        fields: Vec<w::FieldMapping>,
        rows: Vec<w::Row>,
    ) -> Vec<Result<w::MappedRecord, w::RowError>> {
        map_rows(config, fields, rows)
    }

    fn sync_batch(
        context: w::BatchContext,
        config: Vec<w::Setting>,
        mode: w::SyncMode,
        fields: Vec<w::FieldMapping>,
        items: Vec<w::SyncItem>,
    ) -> Result<Vec<w::RecordResult>, w::Error> {
        let mode = mode_in(mode);
        let (c, plan) = validate::validate(&settings_in(config), mode, &mapping_in(fields))
            .map_err(|ps| error(invalid_config(&ps)))?;
        let ctx = p::BatchContext {
            sync_id: context.sync_id,
            attempt: context.attempt,
        };
        let items: Vec<p::SyncItem> = items
            .into_iter()
            .map(|i| p::SyncItem {
                row: row(i.row),
                known_id: i.known_id,
                previous_payload: i.previous_payload,
            })
            .collect();
        let mut transport = WakiTransport::default();
        let results = protocol::sync_batch(&ctx, &c, mode, &plan, &items, &mut transport);
        let failed = results
            .iter()
            .filter(|r| r.outcome == p::Outcome::Failed)
            .count();
        let requests: u64 = results.iter().map(|r| u64::from(r.requests)).sum();
        log(
            Level::Debug,
            &format!(
                "sync-batch {} attempt {}: {} records, {} failed, {} requests to {}",
                mode.name(),
                ctx.attempt,
                results.len(),
                failed,
                requests,
                c.host()
            ),
        );
        Ok(results
            .into_iter()
            .map(|r| w::RecordResult {
                key: r.key,
                outcome: outcome(r.outcome),
                remote_id: r.remote_id,
                confirmed_payload: r.confirmed_payload,
                error: r.error.map(error),
                requests: r.requests,
            })
            .collect())
    }
}
