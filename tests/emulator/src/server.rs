//! The HTTP server: a hand-rolled accept loop over hyper, so that a fault can close a
//! connection with no response at all, and the per-request pipeline around the routes
//! (recording, latency, faults, rate limit, auth).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::auth::{self, AuthOutcome};
use crate::faults::Fault;
use crate::lock;
use crate::org::org_from_host;
use crate::ratelimit::RateState;
use crate::recorder::RecordedRequest;
use crate::routes::Org;
use crate::state::Shared;

/// Largest request body read; more is refused.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Accepts connections until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, shared.clone(), router.clone(), stop.clone()));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // A handler that must drop the connection signals here; dropping the connection future
    // closes the socket before any response byte is written.
    let kill = Arc::new(Notify::new());
    let kill_for_service = kill.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let router = router.clone();
        let kill = kill_for_service.clone();
        async move { Ok::<_, Infallible>(handle(shared, router, kill, req).await) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!("connection ended: {e}");
            }
        }
        _ = kill.notified() => tracing::debug!("connection dropped by fault injection"),
        _ = stop.changed() => {}
    }
}

/// Closes the current connection without answering; never returns.
async fn drop_connection(kill: &Notify) -> Response {
    kill.notify_one();
    std::future::pending::<Response>().await
}

async fn handle(
    shared: Arc<Shared>,
    router: Router,
    kill: Arc<Notify>,
    req: Request<Incoming>,
) -> Response {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host());
    let org = org_from_host(host);
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let ordinal = shared.next_ordinal();
    // A strict front end refuses a body whose length it is not told up front.
    let chunked_body = parts.headers.get(header::CONTENT_LENGTH).is_none()
        && parts.headers.get(header::TRANSFER_ENCODING).is_some();
    if chunked_body && !shared.switches().accept_chunked_bodies {
        shared.recorder.push(RecordedRequest {
            ordinal,
            at: shared.recorder.since_start(arrived),
            method: parts.method.to_string(),
            path: path.clone(),
            org: org.clone(),
            status: None,
            body: None,
            headers: header_list(&parts.headers),
            fault: None,
        });
        shared.recorder.finish(ordinal, Some(411));
        return plain(StatusCode::LENGTH_REQUIRED, "a request body needs Content-Length");
    }
    let fault = lock(&shared.faults).decide(&parts.method, parts.uri.path());
    let bytes = to_bytes(Body::new(body), MAX_BODY).await;
    shared.recorder.push(RecordedRequest {
        ordinal,
        at: shared.recorder.since_start(arrived),
        method: parts.method.to_string(),
        path,
        org: org.clone(),
        status: None,
        body: bytes
            .as_ref()
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok()),
        headers: header_list(&parts.headers),
        fault: fault.clone(),
    });
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            let resp = plain(
                StatusCode::BAD_REQUEST,
                &format!("could not read the request body: {e}"),
            );
            shared
                .recorder
                .finish(ordinal, Some(resp.status().as_u16()));
            return resp;
        }
    };

    // The limit is counted when a request arrives, as an API gateway in front of the server
    // does; the latency is the server's own time to answer. Requests answered by an injected
    // 429, 5xx or dropped connection never reach the limiter.
    let counts = !matches!(fault, Some(Fault::DropBeforeApply | Fault::Status429 | Fault::Status5xx(_)));
    let verdict = counts.then(|| shared.limiter.check(&org, Instant::now()));

    let latency = shared.latency(ordinal);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let is_create =
        parts.method == http::Method::POST && parts.uri.path() == "/api/v1/customer-profiles";
    let mut resp = match &fault {
        Some(Fault::DropBeforeApply) => {
            shared.recorder.finish(ordinal, None);
            return drop_connection(&kill).await;
        }
        Some(Fault::Status429) => {
            let state = shared.limiter.peek(&org, Instant::now());
            too_many(&shared, state)
        }
        Some(Fault::Status5xx(code)) => {
            let status = StatusCode::from_u16(*code)
                .ok()
                .filter(StatusCode::is_server_error)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = plain(status, "injected server error");
            rate_headers(&mut r, shared.limiter.peek(&org, Instant::now()));
            r
        }
        _ => {
            let request = Request::from_parts(parts, Body::from(bytes));
            let verdict = verdict.unwrap_or_else(|| shared.limiter.check(&org, Instant::now()));
            normal(&shared, router, request, org, verdict).await
        }
    };

    // A slow answer is slow after the write: a client that gives up meanwhile has still had its
    // write applied, as a real server does (the hardest case for exactly-once).
    if let Some(Fault::Slow(delay)) = &fault {
        tokio::time::sleep(*delay).await;
    }

    match fault {
        Some(Fault::DropAfterApply) => {
            shared.recorder.finish(ordinal, None);
            return drop_connection(&kill).await;
        }
        Some(Fault::MalformedBody) => {
            let status = if is_create {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut garbled =
                Response::new(Body::from("{\"errors\": [ {\"id\": \u{fffd}<html>oops"));
            *garbled.status_mut() = status;
            garbled.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            for name in ["ratelimit-limit-second", "ratelimit-remaining-second"] {
                if let Some(v) = resp.headers().get(name) {
                    garbled.headers_mut().insert(name, v.clone());
                }
            }
            resp = garbled;
        }
        _ => {}
    }
    shared
        .recorder
        .finish(ordinal, Some(resp.status().as_u16()));
    resp
}

/// The limiter's verdict (counted on arrival), then auth, then the routes.
async fn normal(
    shared: &Shared,
    router: Router,
    mut request: Request<Body>,
    org: String,
    state: RateState,
) -> Response {
    if !state.allowed {
        return too_many(shared, state);
    }
    let mut resp = match auth::check(request.headers(), &org, &shared.users) {
        AuthOutcome::Unauthorized => {
            let mut r = plain(StatusCode::UNAUTHORIZED, "missing or invalid credentials");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gladly\""),
            );
            r
        }
        AuthOutcome::Forbidden => plain(
            StatusCode::FORBIDDEN,
            "the user lacks the API User permission",
        ),
        AuthOutcome::Allowed => {
            request.extensions_mut().insert(Org(org));
            match router.oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    };
    rate_headers(&mut resp, state);
    resp
}

fn too_many(shared: &Shared, state: RateState) -> Response {
    let mut r = plain(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
    rate_headers(&mut r, state);
    let switches = shared.switches();
    let retry_after = switches
        .retry_after_secs
        .or(switches.retry_after_on_429.then_some(state.retry_after_secs));
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

fn rate_headers(resp: &mut Response, state: RateState) {
    let h = resp.headers_mut();
    h.insert("ratelimit-limit-second", HeaderValue::from(state.limit));
    h.insert(
        "ratelimit-remaining-second",
        HeaderValue::from(state.remaining),
    );
}

/// A plain-text answer: Gladly does not document 401/403/429/5xx bodies, so clients must not parse them.
fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}
