//! Routes a hostile or careless API server could have, behind the same rate limit and
//! authentication as the real ones, so the host's defences can be tested against them:
//!
//! - `GET /_hostile/echo-headers`: the request's headers as the body, one `name: value` per line
//!   (a server that hands the `Authorization` value back to the plugin);
//! - `GET /_hostile/hold/{ms}`: answers after `ms` milliseconds (keeps requests in flight);
//! - `GET /_hostile/status/{code}?retry_after=V`: that status, with `Retry-After: V` verbatim
//!   (`1e20`, an HTTP date far in the future, garbage);
//! - `GET /_hostile/bytes/{n}`: a body of `n` bytes (at most 64 MiB);
//! - `POST /_hostile/sink`: takes any body and says how many bytes arrived.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::body::Bytes;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The hostile routes, merged into the API router.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/_hostile/echo-headers", get(echo_headers))
        .route("/_hostile/hold/{ms}", get(hold))
        .route("/_hostile/status/{code}", get(status))
        .route("/_hostile/bytes/{n}", get(bytes))
        .route("/_hostile/sink", post(sink))
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

async fn echo_headers(headers: HeaderMap) -> Response {
    let body: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    text(StatusCode::OK, body)
}

async fn hold(Path(ms): Path<u64>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    text(StatusCode::OK, "held".into())
}

async fn status(Path(code): Path<u16>, Query(q): Query<HashMap<String, String>>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = text(status, format!("status {code}"));
    if let Some(v) = q.get("retry_after").and_then(|v| HeaderValue::from_str(v).ok()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn bytes(Path(n): Path<usize>) -> Response {
    text(StatusCode::OK, "x".repeat(n.min(64 << 20)))
}

async fn sink(body: Bytes) -> Response {
    text(StatusCode::OK, format!("received {}", body.len()))
}
