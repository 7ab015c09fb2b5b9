//! The customer-profile API routes.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::config::ErrorsShape;
use crate::error::{ErrorCode, GladlyError, empty_response, error_response, json_response};
use crate::normalize::{is_e164, is_valid_email, normalize_email};
use crate::state::Shared;
use crate::store::{FindBy, StoreError, normalize_fields};
use crate::validation::{validate_create_body, validate_update_body};

/// The organization a request is for, put into the request's extensions by the server.
#[derive(Debug, Clone)]
pub(crate) struct Org(pub(crate) String);

const PROFILES: &str = "/api/v1/customer-profiles";

/// The API router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/organization", get(organization))
        .route(PROFILES, get(find).post(create))
        .route(
            "/api/v1/customer-profiles/{id}",
            get(get_profile).patch(update).delete(delete),
        )
        .merge(crate::hostile::routes())
        .fallback(no_route)
        .with_state(shared)
}

type St = State<Arc<Shared>>;

async fn organization(Extension(Org(org)): Extension<Org>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "id": format!("org-{org}"),
            "name": org,
            "gladlyUrl": format!("https://{org}.gladly.com"),
        }),
    )
}

async fn create(
    State(s): St,
    Extension(Org(org)): Extension<Org>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let switches = s.switches();
    let shape = switches.errors_shape;
    let value = match parse_json(&headers, &body) {
        Ok(v) => v,
        Err(e) => return bad_request(e, shape),
    };
    if let Err(errors) = validate_create_body(&value) {
        return error_response(StatusCode::BAD_REQUEST, &errors, shape);
    }
    let Some(obj) = value.as_object() else {
        return bad_request(
            GladlyError::new(ErrorCode::Invalid, "body must be a JSON object"),
            shape,
        );
    };
    let fields = match normalize_fields(obj, true) {
        Ok(f) => f,
        Err(e) => return store_error(e, shape),
    };
    let wanted = obj.get("id").and_then(Value::as_str).map(str::to_string);
    let visible_at = Instant::now() + switches.index_lag;
    let result = s.with_org(&org, |store| {
        let id = wanted.unwrap_or_else(|| s.generate_id(store));
        store
            .create(id.clone(), fields, SystemTime::now(), visible_at)
            .map(|()| id)
    });
    match result {
        Ok(id) => {
            let mut resp = empty_response(StatusCode::CREATED);
            if let Ok(v) = HeaderValue::from_str(&format!("{PROFILES}/{id}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Err(e) => store_error(e, shape),
    }
}

async fn find(
    State(s): St,
    Extension(Org(org)): Extension<Org>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let shape = s.switches().errors_shape;
    let [(key, value)] = params.as_slice() else {
        return bad_request(
            GladlyError::new(
                ErrorCode::Invalid,
                "search needs exactly one of email, phoneNumber or externalCustomerId",
            ),
            shape,
        );
    };
    let by = match key.as_str() {
        "email" if is_valid_email(value) => FindBy::Email(normalize_email(value)),
        "email" => {
            return bad_request(
                GladlyError::attr(
                    "email",
                    ErrorCode::Invalid,
                    format!("{value:?} is not an email address"),
                ),
                shape,
            );
        }
        // An unescaped '+' arrives as a space: refusing it catches clients that forget to escape.
        "phoneNumber" if is_e164(value) => FindBy::Phone(value.clone()),
        "phoneNumber" => {
            return bad_request(
                GladlyError::attr(
                    "phoneNumber",
                    ErrorCode::Invalid,
                    format!("{value:?} is not an E.164 number (is '+' escaped as %2B?)"),
                ),
                shape,
            );
        }
        "externalCustomerId" if !value.is_empty() => FindBy::ExternalId(value.clone()),
        "externalCustomerId" => {
            return bad_request(
                GladlyError::attr("externalCustomerId", ErrorCode::Blank, "value is empty"),
                shape,
            );
        }
        other => {
            return bad_request(
                GladlyError::attr(
                    other,
                    ErrorCode::Invalid,
                    format!("{other} is not a search parameter"),
                ),
                shape,
            );
        }
    };
    let found = s.with_org(&org, |store| store.find(&by, Instant::now()));
    json_response(StatusCode::OK, &Value::Array(found))
}

async fn get_profile(
    State(s): St,
    Extension(Org(org)): Extension<Org>,
    Path(id): Path<String>,
) -> Response {
    let shape = s.switches().errors_shape;
    match s.with_org(&org, |store| store.get(&id)) {
        Ok(profile) => json_response(StatusCode::OK, &profile),
        Err(e) => store_error(e, shape),
    }
}

async fn update(
    State(s): St,
    Extension(Org(org)): Extension<Org>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let switches = s.switches();
    let shape = switches.errors_shape;
    let value = match parse_json(&headers, &body) {
        Ok(v) => v,
        Err(e) => return bad_request(e, shape),
    };
    if let Err(errors) = validate_update_body(&value) {
        return error_response(StatusCode::BAD_REQUEST, &errors, shape);
    }
    let Some(obj) = value.as_object() else {
        return bad_request(
            GladlyError::new(ErrorCode::Invalid, "body must be a JSON object"),
            shape,
        );
    };
    let patch = match normalize_fields(obj, true) {
        Ok(f) => f,
        Err(e) => return store_error(e, shape),
    };
    let mode = switches.custom_attributes_patch;
    match s.with_org(&org, |store| {
        store.update(&id, patch, mode, SystemTime::now())
    }) {
        Ok(()) => empty_response(StatusCode::NO_CONTENT),
        Err(e) => store_error(e, shape),
    }
}

async fn delete(
    State(s): St,
    Extension(Org(org)): Extension<Org>,
    Path(id): Path<String>,
) -> Response {
    let shape = s.switches().errors_shape;
    match s.with_org(&org, |store| store.delete(&id)) {
        Ok(()) => empty_response(StatusCode::NO_CONTENT),
        Err(e) => store_error(e, shape),
    }
}

async fn no_route(State(s): St) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &[GladlyError::new(ErrorCode::NotExist, "no such resource")],
        s.switches().errors_shape,
    )
}

fn bad_request(error: GladlyError, shape: ErrorsShape) -> Response {
    error_response(StatusCode::BAD_REQUEST, &[error], shape)
}

/// Reads a JSON body, insisting on the JSON content type Gladly asks clients to send.
fn parse_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, GladlyError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(GladlyError::new(
            ErrorCode::Invalid,
            format!("Content-Type must be application/json, got {content_type:?}"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GladlyError::new(ErrorCode::Blank, "request body is empty"));
    }
    serde_json::from_slice(body).map_err(|e| {
        GladlyError::new(
            ErrorCode::Invalid,
            format!("request body is not valid JSON: {e}"),
        )
    })
}

/// Maps a store failure to Gladly's status and error body.
fn store_error(err: StoreError, shape: ErrorsShape) -> Response {
    let detail = err.to_string();
    match err {
        StoreError::Taken { attr, value } => error_response(
            StatusCode::CONFLICT,
            &[GladlyError::attr(attr, ErrorCode::Taken, detail)
                .with_meta(json!({ "value": value }))],
            shape,
        ),
        StoreError::NotFound(_) => error_response(
            StatusCode::NOT_FOUND,
            &[GladlyError::new(ErrorCode::NotExist, detail)],
            shape,
        ),
        StoreError::Moved { old, new } => {
            let error = GladlyError::attr("customerId", ErrorCode::Moved, detail)
                .with_meta(json!({ "old": old, "new": new }));
            let mut resp = error_response(StatusCode::MOVED_PERMANENTLY, &[error], shape);
            if let Ok(v) = HeaderValue::from_str(&format!("{PROFILES}/{new}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        StoreError::OpenConversations(_) => error_response(
            StatusCode::BAD_REQUEST,
            &[GladlyError::attr(
                "conversation",
                ErrorCode::InvalidState,
                detail,
            )],
            shape,
        ),
        StoreError::Invalid { attr, detail } => error_response(
            StatusCode::BAD_REQUEST,
            &[GladlyError::attr(attr, ErrorCode::Invalid, detail)],
            shape,
        ),
    }
}
