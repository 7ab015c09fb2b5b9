//! Gladly response or transport failure → structured error with code, category and fix.
//!
//! One place decides what the host should do about every failure. Bodies of 401, 403 and 429
//! are undocumented and never parsed; no header value ever enters a message.

use serde_json::Value;

use crate::model::{ApiError, DestError, ErrorCategory, ErrorCode};
use crate::transport::{HttpResponse, TransportError, TransportErrorKind};

/// One entry of Gladly's `errors`, with its `meta` (e.g. `new` of a merged profile).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GladlyError {
    /// Field Gladly blamed.
    pub attr: Option<String>,
    /// Gladly's code (`taken`, `invalid`, `moved`…).
    pub code: Option<String>,
    /// Gladly's message.
    pub detail: Option<String>,
    /// Extra detail.
    pub meta: Option<Value>,
}

impl GladlyError {
    fn api_error(&self) -> ApiError {
        ApiError {
            attr: self.attr.clone(),
            code: self.code.clone(),
            detail: self.detail.clone(),
        }
    }
}

/// Where a request was made, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The row key, or `None` outside a record (connection check).
    pub key: Option<&'a str>,
    /// What was being done, e.g. "creating the profile".
    pub action: &'a str,
    /// The Gladly host.
    pub host: &'a str,
}

impl Step<'_> {
    fn prefix(&self) -> String {
        match self.key {
            Some(k) => format!("Record `{k}`"),
            None => "Connection check".to_string(),
        }
    }
}

/// Error entries kept from one response: a server's answer is untrusted, and a message built
/// from it must not grow with the body.
const MAX_ERRORS: usize = 20;
/// Characters kept of one entry's `attr`, `code` or `detail`.
const MAX_ERROR_TEXT: usize = 300;

/// `s` cut to [`MAX_ERROR_TEXT`] characters, with `…` when cut.
fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

/// Parses `{"errors": [...]}`, also tolerating `{"errors": {...}}` (seen in Gladly's examples).
/// Keeps at most [`MAX_ERRORS`] entries, each text at most [`MAX_ERROR_TEXT`] characters.
pub fn parse_errors(body: &[u8]) -> Vec<GladlyError> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let entries = match value.get("errors") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => Vec::new(),
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(bounded);
    entries
        .into_iter()
        .filter(|e| e.is_object())
        .take(MAX_ERRORS)
        .map(|e| GladlyError {
            attr: text(e, "attr"),
            code: text(e, "code"),
            detail: text(e, "detail"),
            meta: e.get("meta").cloned(),
        })
        .collect()
}

/// The surviving id named by a 301 `moved` error (`meta.new`).
pub fn moved_to(errors: &[GladlyError]) -> Option<String> {
    errors
        .iter()
        .filter_map(|e| e.meta.as_ref()?.get("new")?.as_str())
        .map(str::to_string)
        .next()
}

/// `Retry-After` in milliseconds, from its delta-seconds form.
pub fn retry_after_ms(resp: &HttpResponse) -> Option<u64> {
    let v = resp.header("retry-after")?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    // Fractional seconds are not standard but cost nothing to honour; HTTP dates are ignored
    // (the guest has no wall clock).
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1000.0).ceil() as u64)
}

fn summary(errors: &[GladlyError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let mut s = String::new();
            if let Some(a) = &e.attr {
                s.push_str(a);
                s.push_str(": ");
            }
            s.push_str(e.code.as_deref().unwrap_or("error"));
            if let Some(d) = &e.detail {
                s.push_str(" (");
                s.push_str(d);
                s.push(')');
            }
            s
        })
        .collect();
    if parts.is_empty() {
        "no detail given".to_string()
    } else {
        parts.join("; ")
    }
}

fn error(
    code: ErrorCode,
    category: ErrorCategory,
    status: Option<u16>,
    message: String,
    errors: &[GladlyError],
) -> DestError {
    let mut e = DestError::new(code, category, message);
    e.http_status = status;
    e.api_errors = errors.iter().map(GladlyError::api_error).collect();
    e.field = errors.iter().find_map(|g| g.attr.clone());
    e
}

/// Classifies an HTTP response the step did not expect.
pub fn from_status(resp: &HttpResponse, step: &Step) -> DestError {
    use ErrorCategory::{FixConfig, RetryLater, SkipRecord};
    let status = resp.status;
    let s = Some(status);
    let p = step.prefix();
    let a = step.action;
    match status {
        401 => error(
            ErrorCode::AuthenticationFailed,
            FixConfig,
            s,
            format!(
                "{p}: Gladly refused the credentials (HTTP 401) while {a}. Fix: check that \
                 `username` is the email address of an active Gladly API user and that the API \
                 token is correct; regenerate the token if needed."
            ),
            &[],
        ),
        403 => error(
            ErrorCode::PermissionDenied,
            FixConfig,
            s,
            format!(
                "{p}: the Gladly user is not allowed to do this (HTTP 403) while {a}. Fix: enable \
                 the API User permission for that user in Gladly."
            ),
            &[],
        ),
        429 => {
            let mut e = error(
                ErrorCode::RateLimited,
                RetryLater,
                s,
                format!(
                    "{p}: Gladly's rate limit was reached (HTTP 429) while {a}; retry later. \
                     Fix: if it persists, lower the sync rate or ask Gladly for a higher limit."
                ),
                &[],
            );
            e.retry_after_ms = retry_after_ms(resp);
            e
        }
        _ => {
            let errors = parse_errors(&resp.body);
            let detail = summary(&errors);
            match status {
                400 | 422 => error(
                    ErrorCode::Rejected,
                    SkipRecord,
                    s,
                    format!(
                        "{p}: Gladly rejected the data (HTTP {status}) while {a}: {detail}. Fix: \
                         correct the named field in the source row, or leave the row out."
                    ),
                    &errors,
                ),
                301 => {
                    let new = moved_to(&errors);
                    let mut e = error(
                        ErrorCode::Merged,
                        SkipRecord,
                        s,
                        match &new {
                            Some(n) => format!(
                                "{p}: the Gladly profile was merged into profile `{n}` (HTTP \
                                 301) while {a}. Fix: use `{n}` as this row's Gladly customer id."
                            ),
                            None => format!(
                                "{p}: the Gladly profile was merged into another one (HTTP 301) \
                                 while {a}. Fix: look up the surviving profile's id in Gladly."
                            ),
                        },
                        &errors,
                    );
                    e.field = Some("id".to_string());
                    e
                }
                404 => {
                    let mut e = error(
                        ErrorCode::NotFound,
                        SkipRecord,
                        s,
                        format!(
                            "{p}: Gladly has no such customer profile (HTTP 404) while {a}. Fix: \
                             check the Gladly customer id of this row, or use upsert to find \
                             profiles by email."
                        ),
                        &errors,
                    );
                    e.field = Some("id".to_string());
                    e
                }
                409 => error(
                    ErrorCode::Conflict,
                    SkipRecord,
                    s,
                    format!(
                        "{p}: Gladly reports a uniqueness conflict (HTTP 409) while {a}: \
                         {detail}. Fix: another profile already holds this email or mobile \
                         phone; merge the profiles in Gladly or correct the source row."
                    ),
                    &errors,
                ),
                408 => error(
                    ErrorCode::Timeout,
                    RetryLater,
                    s,
                    format!("{p}: Gladly timed out (HTTP 408) while {a}; retry later."),
                    &errors,
                ),
                500..=599 => {
                    let mut e = error(
                        ErrorCode::ServerError,
                        RetryLater,
                        s,
                        format!(
                            "{p}: Gladly failed (HTTP {status}) while {a}; retry later. Fix: \
                             none needed unless it persists."
                        ),
                        &errors,
                    );
                    e.retry_after_ms = retry_after_ms(resp);
                    e
                }
                400..=499 => error(
                    ErrorCode::Rejected,
                    SkipRecord,
                    s,
                    format!(
                        "{p}: Gladly refused the request (HTTP {status}) while {a}: {detail}. \
                         Fix: check the row's values."
                    ),
                    &errors,
                ),
                _ => unexpected(status, step, &format!("status {status}")),
            }
        }
    }
}

/// A response whose status or body this step cannot use (retryable: it may be transient).
pub fn unexpected(status: u16, step: &Step, what: &str) -> DestError {
    let mut e = DestError::new(
        ErrorCode::UnexpectedResponse,
        ErrorCategory::RetryLater,
        format!(
            "{}: Gladly's answer while {} could not be used ({what}); retry later.",
            step.prefix(),
            step.action
        ),
    );
    e.http_status = Some(status);
    e
}

/// Classifies a request that got no HTTP response.
pub fn from_transport(err: &TransportError, step: &Step) -> DestError {
    let p = step.prefix();
    let (a, h, m) = (step.action, step.host, &err.message);
    match err.kind {
        TransportErrorKind::Timeout => DestError::new(
            ErrorCode::Timeout,
            ErrorCategory::RetryLater,
            format!(
                "{p}: {h} did not answer in time while {a} ({m}); retry later. Fix: if timeouts \
                 persist, sync off-peak or in smaller batches."
            ),
        ),
        TransportErrorKind::Denied => DestError::new(
            ErrorCode::EgressDenied,
            ErrorCategory::FixConfig,
            format!(
                "{p}: the host's egress policy refused the request to {h} while {a}. Fix: allow \
                 {h} for this tenant, or correct the `domain` setting."
            ),
        )
        .with_field("domain"),
        TransportErrorKind::Transport => DestError::new(
            ErrorCode::Transport,
            ErrorCategory::RetryLater,
            format!(
                "{p}: could not reach {h} while {a} ({m}). Fix: check that the `domain` setting \
                 names your Gladly organization; retry if the network was down."
            ),
        )
        .with_field("domain"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".into(), "7".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    const STEP: Step = Step {
        key: Some("row-9"),
        action: "creating the profile",
        host: "acme.gladly.com",
    };

    fn check(status: u16, code: ErrorCode, category: ErrorCategory, retryable: bool) -> DestError {
        let e = from_status(&resp(status, ""), &STEP);
        assert_eq!(
            (e.code, e.category, e.retryable),
            (code, category, retryable),
            "status {status}"
        );
        assert_eq!(e.http_status, Some(status));
        assert!(
            e.message.contains("`row-9`") && e.message.contains("Fix"),
            "{}",
            e.message
        );
        e
    }

    #[test]
    fn every_status() {
        use ErrorCategory::*;
        check(400, ErrorCode::Rejected, SkipRecord, false);
        check(401, ErrorCode::AuthenticationFailed, FixConfig, false);
        check(403, ErrorCode::PermissionDenied, FixConfig, false);
        check(404, ErrorCode::NotFound, SkipRecord, false);
        check(409, ErrorCode::Conflict, SkipRecord, false);
        let e = check(429, ErrorCode::RateLimited, RetryLater, true);
        assert_eq!(e.retry_after_ms, Some(7000));
        assert!(!e.message.contains('7'), "no header value in the message");
        check(500, ErrorCode::ServerError, RetryLater, true);
        check(503, ErrorCode::ServerError, RetryLater, true);
        check(301, ErrorCode::Merged, SkipRecord, false);
        assert_eq!(
            from_status(&resp(302, ""), &STEP).code,
            ErrorCode::UnexpectedResponse
        );
        assert!(from_status(&resp(302, ""), &STEP).retryable);
        assert_eq!(from_status(&resp(408, ""), &STEP).code, ErrorCode::Timeout);
    }

    #[test]
    fn a_huge_error_body_gives_a_bounded_message() {
        let entry = format!(r#"{{"attr":"name","code":"invalid","detail":"{}"}}"#, "d".repeat(10_000));
        let body = format!(r#"{{"errors":[{}]}}"#, vec![entry; 100].join(","));
        let errors = parse_errors(body.as_bytes());
        assert_eq!(errors.len(), 20);
        assert_eq!(errors[0].detail.as_deref(), Some(format!("{}…", "d".repeat(300)).as_str()));
    }

    #[test]
    fn gladly_detail_in_both_forms() {
        let e = from_status(
            &resp(
                400,
                r#"{"errors":[{"attr":"emails.0.original","code":"invalid","detail":"bad email"}]}"#,
            ),
            &STEP,
        );
        assert_eq!(e.field.as_deref(), Some("emails.0.original"));
        assert_eq!(e.api_errors[0].code.as_deref(), Some("invalid"));
        assert!(e.message.contains("bad email"));
        let e = from_status(
            &resp(404, r#"{"errors":{"code":"not_exist","detail":"gone"}}"#),
            &STEP,
        );
        assert_eq!(e.api_errors.len(), 1);
        assert_eq!(e.api_errors[0].code.as_deref(), Some("not_exist"));
        let e = from_status(
            &resp(409, r#"{"errors":[{"attr":"id","code":"taken"}]}"#),
            &STEP,
        );
        assert_eq!(e.api_errors[0].attr.as_deref(), Some("id"));
        assert!(parse_errors(b"not json").is_empty());
        assert!(parse_errors(br#"{"errors": "x"}"#).is_empty());
    }

    #[test]
    fn auth_bodies_are_not_parsed() {
        let e = from_status(
            &resp(
                401,
                r#"{"errors":[{"attr":"secret","detail":"token abc"}]}"#,
            ),
            &STEP,
        );
        assert!(e.api_errors.is_empty());
        assert!(!e.message.contains("abc"));
    }

    #[test]
    fn merged_names_the_survivor() {
        let body =
            r#"{"errors":[{"attr":"customerId","code":"moved","meta":{"old":"a","new":"b-2"}}]}"#;
        let e = from_status(&resp(301, body), &STEP);
        assert!(e.message.contains("`b-2`"));
        assert_eq!(
            moved_to(&parse_errors(body.as_bytes())).as_deref(),
            Some("b-2")
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut r = resp(429, "");
        r.headers = vec![("retry-after".into(), "1.5".into())];
        assert_eq!(retry_after_ms(&r), Some(1500));
        r.headers = vec![("Retry-After".into(), "Wed, 21 Oct 2015 07:28:00 GMT".into())];
        assert_eq!(retry_after_ms(&r), None);
        r.headers.clear();
        assert_eq!(retry_after_ms(&r), None);
    }

    #[test]
    fn transport_kinds() {
        let t = |kind| {
            from_transport(
                &TransportError {
                    kind,
                    message: "boom".into(),
                },
                &STEP,
            )
        };
        let e = t(TransportErrorKind::Timeout);
        assert_eq!((e.code, e.retryable), (ErrorCode::Timeout, true));
        let e = t(TransportErrorKind::Denied);
        assert_eq!(
            (e.code, e.category, e.retryable),
            (ErrorCode::EgressDenied, ErrorCategory::FixConfig, false)
        );
        assert!(e.message.contains("acme.gladly.com"));
        let e = t(TransportErrorKind::Transport);
        assert_eq!((e.code, e.retryable), (ErrorCode::Transport, true));
        assert!(e.message.contains("domain"));
    }
}
