//! The guest's per-record protocol (`sync-batch`) against a transport whose every answer is
//! fuzzed: statuses, headers (`Location`, `Retry-After`…), bodies and transport failures.
//!
//! Invariants: never panics; one result per item, in order; a failed result carries an error and
//! any other result a Gladly id; requests counted match requests sent; every request goes to the
//! configured Gladly host, never carries `Authorization`, and a record never sends more than a
//! handful of requests (the state machine ends).
#![no_main]

use std::collections::VecDeque;

use gladly_destination::model::{
    BatchContext, Cell, Column, ErrorCategory, FieldMapping, Outcome, Row, Setting, SyncItem,
    SyncMode,
};
use gladly_destination::protocol::sync_batch;
use gladly_destination::transport::{
    HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind,
};
use gladly_destination::validate::validate;
use libfuzzer_sys::fuzz_target;

const BASE: &str = "https://acme.gladly.com/";
/// Far more than any record needs (find, read, create, 409 recovery, read, patch).
const MAX_REQUESTS_PER_RECORD: usize = 16;

/// One scripted answer: `!timeout msg`, `!denied msg`, `!transport msg`, or an HTTP answer as
/// `gladly_fuzz::parse_http` reads it.
fn reply(section: &[u8]) -> Result<HttpResponse, TransportError> {
    if let Some(rest) = section.strip_prefix(b"!") {
        let (kind, message) = gladly_fuzz::split_once(rest, b" ");
        let kind = match kind {
            b"timeout" => TransportErrorKind::Timeout,
            b"denied" => TransportErrorKind::Denied,
            _ => TransportErrorKind::Transport,
        };
        return Err(TransportError { kind, message: gladly_fuzz::lossy(message) });
    }
    let (status, _, headers, body) = gladly_fuzz::parse_http(section);
    Ok(HttpResponse { status, headers, body })
}

/// One item line: `key,email,phone,gladly_id,tier,known_id,previous` (empty = null; `previous`
/// `1` sends the row's own mapped payload as the one Gladly last confirmed).
fn item_fields(line: &[u8]) -> Vec<Option<String>> {
    line.split(|b| *b == b',')
        .map(|f| (!f.is_empty()).then(|| gladly_fuzz::lossy(f)))
        .chain(std::iter::repeat(None))
        .take(7)
        .collect()
}

struct Scripted {
    replies: VecDeque<Result<HttpResponse, TransportError>>,
    sent: usize,
}

impl Transport for Scripted {
    fn send(&mut self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.sent += 1;
        assert!(req.url.starts_with(BASE), "request to {}", req.url);
        assert!(req.headers.iter().all(|(k, _)| !k.eq_ignore_ascii_case("authorization")));
        self.replies.pop_front().unwrap_or(Err(TransportError {
            kind: TransportErrorKind::Transport,
            message: "script ended".into(),
        }))
    }
}

// Input: sections split by a `---` line. The first: a line with the mode (`upsert`, `insert`,
// `update`; `replace` for `custom-attributes-patch = replace`), then one line per item (at
// most 8). Every further section is the next answer of the transport; once they run out,
// every request fails as a transport error.
fuzz_target!(|data: &[u8]| {
    let mut sections = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (section, next) = gladly_fuzz::split_once(rest, b"\n---\n");
        sections.push(section);
        rest = next;
    }
    let (head, replies) = sections.split_first().map_or((&b""[..], &[][..]), |(h, r)| (*h, r));
    let (mode_line, item_lines) = gladly_fuzz::split_once(head, b"\n");
    let mode_line = gladly_fuzz::lossy(mode_line);
    let mode = if mode_line.contains("update") {
        SyncMode::Update
    } else if mode_line.contains("insert") {
        SyncMode::Insert
    } else {
        SyncMode::Upsert
    };
    let replace = mode_line.contains("replace");
    let settings = [
        ("domain", "acme"),
        ("username", "api@acme.com"),
        ("custom-attributes-patch", if replace { "replace" } else { "merge" }),
    ]
    .map(|(k, v)| Setting { key: k.into(), value: v.into() });
    let mapping = [("email", "email"), ("phone", "phone"), ("gladly_id", "id"), ("tier", "loyaltyTier")]
        .map(|(s, t)| FieldMapping { source: s.into(), target: t.into() });
    let (config, plan) = validate(&settings, mode, &mapping).expect("the fixed configuration validates");

    let items: Vec<SyncItem> = item_lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .take(8)
        .map(|line| {
            let f = item_fields(line);
            let cell = |i: usize| f[i].clone().map_or(Cell::Null, Cell::Text);
            let row = Row {
                key: f[0].clone().unwrap_or_default(),
                columns: ["email", "phone", "gladly_id", "tier"]
                    .iter()
                    .enumerate()
                    .map(|(i, name)| Column { name: (*name).into(), value: cell(i + 1) })
                    .collect(),
            };
            let previous_payload = (f[6].as_deref() == Some("1"))
                .then(|| plan.map_row(&config, &row).ok().map(|m| m.record(&row.key).payload))
                .flatten();
            SyncItem { row, known_id: f[5].clone(), previous_payload }
        })
        .collect();
    let mut transport = Scripted { replies: replies.iter().map(|r| reply(r)).collect(), sent: 0 };
    let ctx = BatchContext { sync_id: "sync-1".into(), attempt: 0 };

    let results = sync_batch(&ctx, &config, mode, &plan, &items, &mut transport);

    assert_eq!(results.len(), items.len(), "one result per item");
    let mut counted = 0usize;
    for (r, it) in results.iter().zip(&items) {
        assert_eq!(r.key, it.row.key, "results in item order");
        assert!((r.requests as usize) <= MAX_REQUESTS_PER_RECORD, "{} requests for one record", r.requests);
        counted += r.requests as usize;
        match r.outcome {
            Outcome::Failed => {
                let e = r.error.as_ref().expect("a failed record carries its error");
                assert_eq!(e.retryable, e.category == ErrorCategory::RetryLater);
            }
            Outcome::Skipped => {}
            _ => {
                assert!(r.error.is_none(), "{:?} with an error", r.outcome);
                assert!(r.remote_id.is_some(), "{:?} without a Gladly id", r.outcome);
                assert!(r.confirmed_payload.is_some());
            }
        }
    }
    assert_eq!(counted, transport.sent, "requests counted = requests sent");
});
