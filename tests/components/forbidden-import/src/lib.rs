//! A destination plugin that is valid except for one extra import: the world below adds
//! `wasi:sockets/tcp-create-socket` to the contract's `plugin` world, and `check-connection` calls
//! it (so the import survives linking). The host's load-time import check must refuse the
//! component, naming the import, before any function runs.
//!
//! Only meaningful as a `wasm32-wasip2` component: on other targets the crate is empty, so native
//! `cargo build --workspace` / `cargo clippy --workspace` still work.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    inline: "
        package test:forbidden-import;

        world forbidden {
            include reverse-etl:destination/plugin@0.1.0;
            import wasi:sockets/tcp-create-socket@0.2.2;
        }
    ",
    world: "test:forbidden-import/forbidden",
    with: {
        "wasi:http/outgoing-handler@0.2.2": waki::bindings::wasi::http::outgoing_handler,
        "wasi:http/types@0.2.2": waki::bindings::wasi::http::types,
        "wasi:io/error@0.2.2": waki::bindings::wasi::io::error,
        "wasi:io/poll@0.2.2": waki::bindings::wasi::io::poll,
        "wasi:io/streams@0.2.2": waki::bindings::wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.2": waki::bindings::wasi::clocks::monotonic_clock,
    },
    // Everything else (the contract's interfaces and wasi:sockets) gets fresh bindings.
    generate_all,
});

use exports::reverse_etl::destination::destination::Guest;
use reverse_etl::destination::types::{
    BatchContext, ConfigProblem, ConnectionInfo, Credential, DestinationSpec, Error, ErrorCategory,
    ErrorCode, FieldMapping, MappedRecord, ModeSupport, Outcome, RecordResult, ResolvedConfig, Row,
    RowError, Setting, SyncItem, SyncMode,
};

use wasi::sockets::network::IpAddressFamily;
use wasi::sockets::tcp_create_socket::create_tcp_socket;

struct Component;
export!(Component);

fn host(config: &[Setting]) -> String {
    config
        .iter()
        .find(|s| s.key == "host")
        .map_or_else(|| "acme.gladly.com".into(), |s| s.value.clone())
}

impl Guest for Component {
    fn spec() -> DestinationSpec {
        DestinationSpec {
            name: "forbidden-import".into(),
            title: "Forbidden import test plugin".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Imports wasi:sockets; the host must refuse to load it.".into(),
            config_fields: vec![],
            target_fields: vec![],
            accepts_custom_fields: true,
            schema_introspection: false,
            modes: vec![ModeSupport {
                mode: SyncMode::Upsert,
                supported: true,
                reason: String::new(),
            }],
            credential: Credential::None,
            suggested_rate_per_second: 1,
            suggested_timeout_ms: 1_000,
            suggested_max_retries: 0,
            suggested_concurrency: 1,
        }
    }

    fn validate_config(
        config: Vec<Setting>,
        _mode: SyncMode,
        _mapping: Vec<FieldMapping>,
    ) -> Result<ResolvedConfig, Vec<ConfigProblem>> {
        let host = host(&config);
        Ok(ResolvedConfig {
            egress_hosts: vec![host.clone()],
            base_url: format!("https://{host}"),
            rate_limit_key: host,
            username: None,
            settings: config,
        })
    }

    /// The forbidden part: a raw TCP socket, bypassing `wasi:http` and the host's egress policy.
    fn check_connection(_config: Vec<Setting>) -> Result<ConnectionInfo, Error> {
        match create_tcp_socket(IpAddressFamily::Ipv4) {
            Ok(_) => Ok(ConnectionInfo { account: None }),
            Err(e) => Err(Error {
                code: ErrorCode::Transport,
                category: ErrorCategory::RetryLater,
                message: format!("raw tcp socket refused: {e:?}"),
                field: None,
                http_status: None,
                api_errors: vec![],
                retryable: true,
                retry_after_ms: None,
            }),
        }
    }

    fn map_row(
        _config: Vec<Setting>,
        _mapping: Vec<FieldMapping>,
        row: Row,
    ) -> Result<MappedRecord, RowError> {
        Ok(MappedRecord {
            key: row.key,
            payload: "{}".into(),
            match_value: None,
            remote_id: None,
        })
    }

    fn map_rows(
        config: Vec<Setting>,
        mapping: Vec<FieldMapping>,
        rows: Vec<Row>,
    ) -> Vec<Result<MappedRecord, RowError>> {
        rows.into_iter()
            .map(|row| Self::map_row(config.clone(), mapping.clone(), row))
            .collect()
    }

    fn sync_batch(
        _context: BatchContext,
        _config: Vec<Setting>,
        _mode: SyncMode,
        _mapping: Vec<FieldMapping>,
        items: Vec<SyncItem>,
    ) -> Result<Vec<RecordResult>, Error> {
        Ok(items
            .into_iter()
            .map(|item| RecordResult {
                key: item.row.key,
                outcome: Outcome::Skipped,
                remote_id: None,
                confirmed_payload: None,
                error: None,
                requests: 0,
            })
            .collect())
    }
}
