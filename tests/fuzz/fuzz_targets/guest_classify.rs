//! The guest's response classification: arbitrary HTTP statuses, headers (`Retry-After` and
//! others) and bodies, and transport failures, into structured errors.
//!
//! Input: an HTTP answer as `gladly_fuzz::parse_http` reads it (`STATUS key`, header lines, a
//! blank line, the body); the rest of the status line is the record key (none when empty). The
//! same body, as text, is also the message of a transport failure of kind `STATUS % 3`.
//!
//! Invariants: never panics; the code follows the status; `retryable` follows the category; no
//! header value reaches the message (the message is the same without the headers);
//! `Retry-After` is read only for 429 and 5xx; and the message is bounded by a constant plus a
//! small multiple of what it was built from. There is no absolute cap: a long Gladly `detail`
//! is repeated in full (see the report in docs/SECURITY.md).
#![no_main]

use gladly_destination::classify::{self, Step};
use gladly_destination::model::{ErrorCategory, ErrorCode};
use gladly_destination::transport::{HttpResponse, TransportError, TransportErrorKind};
use libfuzzer_sys::fuzz_target;

const ACTIONS: &[&str] = &["creating the profile", "looking the customer up by email", "updating the profile", "checking the connection"];

fn expected_code(status: u16) -> ErrorCode {
    match status {
        401 => ErrorCode::AuthenticationFailed,
        403 => ErrorCode::PermissionDenied,
        429 => ErrorCode::RateLimited,
        400 | 422 => ErrorCode::Rejected,
        301 => ErrorCode::Merged,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        408 => ErrorCode::Timeout,
        500..=599 => ErrorCode::ServerError,
        400..=499 => ErrorCode::Rejected,
        _ => ErrorCode::UnexpectedResponse,
    }
}

fuzz_target!(|data: &[u8]| {
    let (status, key, headers, body) = gladly_fuzz::parse_http(data);
    let resp = HttpResponse { status, headers, body };
    let key = (!key.is_empty()).then_some(key);
    let action = ACTIONS[data.len() % ACTIONS.len()];
    let host = "acme.gladly.com";
    let step = Step { key: key.as_deref(), action, host };
    let key_len = key.as_deref().map_or(0, str::len);

    // Gladly's error list and the merge target never panic, whatever the body.
    let errors = classify::parse_errors(&resp.body);
    let _ = classify::moved_to(&errors);
    let retry_after = classify::retry_after_ms(&resp);

    let e = classify::from_status(&resp, &step);
    assert_eq!(e.code, expected_code(resp.status), "status {}", resp.status);
    assert_eq!(e.http_status, Some(resp.status));
    assert_eq!(e.retryable, e.category == ErrorCategory::RetryLater);
    if matches!(resp.status, 429 | 500..=599) {
        assert_eq!(e.retry_after_ms, retry_after);
    } else {
        assert_eq!(e.retry_after_ms, None, "Retry-After is read only for 429 and 5xx");
    }
    if let (Some(ms), Some(v)) = (retry_after, resp.header("retry-after")) {
        if let Ok(secs) = v.trim().parse::<u64>() {
            assert_eq!(ms, secs.saturating_mul(1000));
        }
    }
    // 401, 403 and 429 bodies are undocumented and never parsed.
    if matches!(resp.status, 401 | 403 | 429) {
        assert!(e.api_errors.is_empty());
    }
    // No header value ever enters a message: the error is the same without the headers.
    let bare = HttpResponse { headers: Vec::new(), ..resp.clone() };
    assert_eq!(e.message, classify::from_status(&bare, &step).message, "a header changed the message");
    // Bounded by what it was built from (JSON unescaping only shrinks text; an entry without a
    // code, `{}`, reads as "error; ").
    let bound = 1024 + key_len + action.len() + 3 * resp.body.len();
    assert!(e.message.len() <= bound, "message of {} bytes > {bound}", e.message.len());

    let kind = match status % 3 {
        0 => TransportErrorKind::Timeout,
        1 => TransportErrorKind::Denied,
        _ => TransportErrorKind::Transport,
    };
    let terr = TransportError { kind, message: gladly_fuzz::lossy(&resp.body) };
    let t = classify::from_transport(&terr, &step);
    assert_eq!(t.http_status, None);
    assert_eq!(t.retryable, t.category == ErrorCategory::RetryLater);
    match kind {
        TransportErrorKind::Timeout => assert_eq!(t.code, ErrorCode::Timeout),
        TransportErrorKind::Denied => {
            assert_eq!(t.code, ErrorCode::EgressDenied);
            assert_eq!(t.field.as_deref(), Some("domain"));
        }
        TransportErrorKind::Transport => assert_eq!(t.code, ErrorCode::Transport),
    }
    let bound = 1024 + key_len + action.len() + 2 * host.len() + terr.message.len();
    assert!(t.message.len() <= bound, "transport message of {} bytes > {bound}", t.message.len());

    let u = classify::unexpected(resp.status, &step, "status");
    assert_eq!(u.code, ErrorCode::UnexpectedResponse);
    assert!(u.retryable);
});
