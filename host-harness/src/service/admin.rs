//! The admin API (axum): syncs and their last runs, triggering, pausing, run reports and their
//! failed rows, Prometheus metrics, liveness and readiness. Every answer is JSON except
//! `/metrics`; every refusal says why, and a refused request changes nothing.
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | 200 while the process serves (no token needed) |
//! | `GET /readyz` | 200 once the job folder is read, 503 while shutting down (no token needed) |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /syncs` | every sync with its phase, schedule and last run; unusable job files |
//! | `GET /syncs/{id}` | one sync |
//! | `POST /syncs/{id}/run` | queue a run now (202; 409 when queued, running or paused) |
//! | `POST /syncs/{id}/pause`, `…/resume` | stop or restart scheduled and triggered runs |
//! | `GET /syncs/{id}/runs` | the sync's recent runs from its state |
//! | `GET /syncs/{id}/runs/{run}` | one run's report |
//! | `GET /syncs/{id}/runs/{run}/failures` | that run's failed rows |

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::service::Service;
use crate::service::registry::{Refused, SetPausedError};
use crate::service::runner::report_path;
use crate::state::State as SyncStateDb;
use crate::state::postgres::PgState;

/// How many runs `GET /syncs/{id}/runs` lists.
pub const RUNS_LISTED: usize = 50;

/// An error answer: a status and a message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        let status = match r {
            Refused::NotFound(_) => StatusCode::NOT_FOUND,
            Refused::AlreadyQueued(_) | Refused::AlreadyRunning(_) | Refused::Paused(_) => StatusCode::CONFLICT,
        };
        ApiError(status, r.to_string())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, format!("{}; a run is named by its number, e.g. /syncs/customers/runs/12", r.body_text()))
    }
}

type Svc = State<Arc<Service>>;

/// The router, with the token check in front of every route but the probes.
pub fn router(svc: Arc<Service>) -> Router {
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/syncs", get(list))
        .route("/syncs/{id}", get(one))
        .route("/syncs/{id}/run", post(trigger))
        .route("/syncs/{id}/pause", post(pause))
        .route("/syncs/{id}/resume", post(resume))
        .route("/syncs/{id}/runs", get(runs))
        .route("/syncs/{id}/runs/{run}", get(report))
        .route("/syncs/{id}/runs/{run}/failures", get(failures))
        .route_layer(middleware::from_fn_with_state(svc.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route; see GET /syncs".into()) })
        .with_state(svc)
}

async fn require_token(State(svc): Svc, req: Request, next: Next) -> Response {
    let given = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if svc.token.admits(given) {
        next.run(req).await
    } else {
        let mut r = ApiError(StatusCode::UNAUTHORIZED, "missing or wrong admin token: send Authorization: Bearer <token>".into()).into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        r
    }
}

async fn readyz(State(svc): Svc) -> Response {
    if svc.is_ready() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "not ready: starting or shutting down".into()).into_response()
    }
}

async fn metrics(State(svc): Svc) -> Response {
    let text = svc.metrics.render(svc.registry.queued(), svc.registry.running());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn list(State(svc): Svc) -> Json<Value> {
    let (syncs, problems) = svc.registry.snapshot();
    Json(json!({ "syncs": syncs, "invalid_files": problems }))
}

async fn one(State(svc): Svc, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let view = svc.registry.view(&id).ok_or(Refused::NotFound(id))?;
    Ok(Json(json!(view)))
}

async fn trigger(State(svc): Svc, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    svc.trigger(&id)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": id }))))
}

async fn pause(State(svc): Svc, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_paused(&svc, &id, true)
}

async fn resume(State(svc): Svc, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_paused(&svc, &id, false)
}

fn set_paused(svc: &Service, id: &str, paused: bool) -> Result<Json<Value>, ApiError> {
    match svc.registry.set_paused(id, paused) {
        Ok(view) => Ok(Json(json!(view))),
        Err(SetPausedError::Refused(r)) => Err(r.into()),
        Err(SetPausedError::Write(e)) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

async fn runs(State(svc): Svc, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let job = svc.registry.job(&id).ok_or_else(|| Refused::NotFound(id.clone()))?;
    if let Some(c) = &svc.coordinator {
        // Every worker's runs of the sync, from the shared database.
        let url = c.config.url.clone();
        let listed = tokio::task::spawn_blocking(move || SyncStateDb::open_postgres(&url, None).and_then(|s| s.sync(&id).runs(RUNS_LISTED)))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("reading runs failed: {e}")))?
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        return Ok(Json(json!({ "runs": listed })));
    }
    let file = job.sync.state_dir.join(crate::state::STATE_FILE);
    if !file.exists() {
        return Ok(Json(json!({ "runs": [] })));
    }
    // SQLite blocks: off the async workers.
    let listed = tokio::task::spawn_blocking(move || SyncStateDb::open(&job.sync.state_dir).and_then(|s| s.sync(&id).runs(RUNS_LISTED)))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("reading runs failed: {e}")))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "runs": listed })))
}

async fn read_report(svc: &Service, run: Result<Path<(String, i64)>, PathRejection>) -> Result<Value, ApiError> {
    let Path((id, run)) = run?;
    let job = svc.registry.job(&id).ok_or_else(|| Refused::NotFound(id.clone()))?;
    let missing = || ApiError(StatusCode::NOT_FOUND, format!("no report of run {run} of sync {id:?} (see GET /syncs/{id}/runs)"));
    let text = match &svc.coordinator {
        None => tokio::fs::read(report_path(&job, run)).await.map_err(|_| missing())?,
        Some(c) => {
            let (url, sync) = (c.config.url.clone(), id.clone());
            tokio::task::spawn_blocking(move || PgState::open(&url, None).and_then(|pg| pg.report(&sync, run)))
                .await
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the report failed: {e}")))?
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .ok_or_else(missing)?
                .into_bytes()
        }
    };
    let report: Value = serde_json::from_slice(&text).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("the report of run {run} is damaged: {e}")))?;
    if report["sync_id"] != json!(id) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("run {run} is not a run of sync {id:?}")));
    }
    Ok(report)
}

async fn report(State(svc): Svc, run: Result<Path<(String, i64)>, PathRejection>) -> Result<Json<Value>, ApiError> {
    Ok(Json(read_report(&svc, run).await?))
}

async fn failures(State(svc): Svc, run: Result<Path<(String, i64)>, PathRejection>) -> Result<Json<Value>, ApiError> {
    let mut report = read_report(&svc, run).await?;
    Ok(Json(json!({ "failures": report["failures"].take() })))
}
