//! Everything a plugin says is untrusted text: log lines, stdio, error messages, remote ids and
//! payloads. Before the host logs, stores, reports or prints any of it, this module bounds its
//! size, escapes control characters (so no plugin can forge a log line under another tenant's
//! name or drive a terminal), and removes the tenant's secret in every form the host knows.

use crate::contract::model::{ErrorCategory, ErrorCode, RecordError, RecordResult};
use crate::egress::credentials::Redactor;
pub use crate::text::{escape_controls, truncate};

/// Longest error message or log line kept, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 2048;
/// Longest field name, API error code or other short label kept, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Longest remote id accepted (Gladly's ids are 22 characters).
pub const MAX_REMOTE_ID_BYTES: usize = 256;
/// Largest confirmed payload stored (a Gladly profile is a few KiB).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// API error details kept per record.
pub const MAX_API_ERRORS: usize = 20;

/// Guest text made safe to log, store and print: secrets removed, controls escaped, bounded.
pub fn clean(redactor: &Redactor, text: &str, cap: usize) -> String {
    truncate(&escape_controls(&redactor.redact(text)), cap)
}

/// Clean every text field of a plugin's error in place.
pub fn clean_error(redactor: &Redactor, e: &mut RecordError) {
    e.message = clean(redactor, &e.message, MAX_MESSAGE_BYTES);
    if let Some(f) = e.field.as_mut() {
        *f = clean(redactor, f, MAX_LABEL_BYTES);
    }
    e.api_errors.truncate(MAX_API_ERRORS);
    for a in &mut e.api_errors {
        a.code = a.code.as_deref().map(|s| clean(redactor, s, MAX_LABEL_BYTES));
        a.attr = a.attr.as_deref().map(|s| clean(redactor, s, MAX_LABEL_BYTES));
        a.detail = a.detail.as_deref().map(|s| clean(redactor, s, MAX_MESSAGE_BYTES));
    }
}

/// Clean one `sync-batch` result in place. A remote id that is oversized, contains control
/// characters or carries the secret is not an id: the record fails as a plugin failure instead
/// of storing it. An oversized or secret-bearing payload is dropped (the host then keeps the
/// payload it mapped itself).
pub fn clean_result(redactor: &Redactor, r: &mut RecordResult) {
    if let Some(e) = r.error.as_mut() {
        clean_error(redactor, e);
    }
    if let Some(p) = &r.confirmed_payload
        && (p.len() > MAX_PAYLOAD_BYTES || redactor.finds_secret(p))
    {
        r.confirmed_payload = None;
    }
    let bad_id = r.remote_id.as_deref().and_then(|id| {
        if id.len() > MAX_REMOTE_ID_BYTES {
            Some(format!("is {} bytes long (limit {MAX_REMOTE_ID_BYTES})", id.len()))
        } else if id.chars().any(char::is_control) {
            Some("contains control characters".to_string())
        } else if redactor.finds_secret(id) {
            Some("contains the tenant's secret".to_string())
        } else {
            None
        }
    });
    if let Some(why) = bad_id {
        let e = RecordError::host(
            ErrorCode::PluginFailure,
            ErrorCategory::SkipRecord,
            format!("row {}: the plugin returned a remote id that {why}; the plugin must be fixed", clean(redactor, &r.key, MAX_LABEL_BYTES)),
        );
        *r = RecordResult { requests: r.requests, ..RecordResult::failed(&r.key, e) };
    }
}

/// The per-call budget of `host.log`: bytes accepted, then one marker, then silence.
#[derive(Debug)]
pub struct LogBudget {
    left: usize,
    exhausted: bool,
}

impl LogBudget {
    /// A budget of `bytes` per call.
    pub fn new(bytes: usize) -> Self {
        LogBudget { left: bytes, exhausted: false }
    }

    /// The line to log for `message`, the marker once the budget runs out, or nothing after.
    pub fn admit(&mut self, redactor: &Redactor, message: &str) -> Option<String> {
        if self.exhausted {
            return None;
        }
        let line = clean(redactor, message, MAX_MESSAGE_BYTES);
        if line.len() > self.left {
            self.exhausted = true;
            return Some("[log budget of this call used up ([limits] log_bytes_per_call); further plugin log lines dropped]".into());
        }
        self.left -= line.len();
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::{ApiError, Outcome};
    use crate::egress::credentials::{BasicCredential, Secret};

    fn redactor() -> Redactor {
        Redactor::of(&BasicCredential { username: "api@acme.com".into(), token: Secret::new("tok-SECRET-1") })
    }

    #[test]
    fn a_newline_cannot_start_a_forged_line() {
        assert_eq!(
            clean(&Redactor::none(), "ok\n2026-12-02T00:00:00Z INFO tenant=other: hi\r", 100),
            "ok\\n2026-12-02T00:00:00Z INFO tenant=other: hi\\r"
        );
    }

    #[test]
    fn the_token_and_its_basic_form_are_redacted() {
        // base64("api@acme.com:tok-SECRET-1") = YXBpQGFjbWUuY29tOnRvay1TRUNSRVQtMQ==
        let r = redactor();
        assert_eq!(
            clean(&r, "Authorization: Basic YXBpQGFjbWUuY29tOnRvay1TRUNSRVQtMQ== t=tok-SECRET-1", 200),
            "Authorization: Basic [redacted] t=[redacted]"
        );
    }

    #[test]
    fn a_remote_id_that_is_too_long_fails_the_record() {
        let mut r = RecordResult {
            key: "k1".into(),
            outcome: Outcome::Created,
            remote_id: Some("x".repeat(300)),
            confirmed_payload: Some("{}".into()),
            error: None,
            requests: 1,
        };
        clean_result(&redactor(), &mut r);
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(r.remote_id, None);
        let e = r.error.unwrap();
        assert_eq!(e.code, ErrorCode::PluginFailure);
        assert_eq!(e.message, "row k1: the plugin returned a remote id that is 300 bytes long (limit 256); the plugin must be fixed");
    }

    #[test]
    fn api_error_details_are_bounded_and_cleaned() {
        let mut e = RecordError::host(ErrorCode::Rejected, ErrorCategory::SkipRecord, "bad");
        e.api_errors = (0..30).map(|_| ApiError { attr: Some("a\nb".into()), code: None, detail: None }).collect();
        clean_error(&redactor(), &mut e);
        assert_eq!(e.api_errors.len(), 20);
        assert_eq!(e.api_errors[0].attr.as_deref(), Some("a\\nb"));
    }

    #[test]
    fn the_log_budget_ends_with_one_marker() {
        let mut b = LogBudget::new(10);
        let r = Redactor::none();
        assert_eq!(b.admit(&r, "12345").as_deref(), Some("12345"));
        assert_eq!(b.admit(&r, "1234").as_deref(), Some("1234"));
        assert!(b.admit(&r, "123").unwrap().starts_with("[log budget of this call used up"));
        assert_eq!(b.admit(&r, "1"), None);
    }
}
