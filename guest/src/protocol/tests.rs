//! Protocol tests against a scripted fake transport.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::api::PROFILES;
use super::*;
use crate::model::{Cell, Column, FieldMapping, Row, Setting};
use crate::settings::parse;
use crate::transport::{HttpRequest, HttpResponse, Method, TransportError, TransportErrorKind};

const BASE: &str = "https://acme.gladly.com";

type Reply = Result<HttpResponse, TransportError>;

/// Expects requests in order; panics on anything unscripted.
#[derive(Default)]
struct Fake {
    script: VecDeque<(Method, String, Reply)>,
    sent: Vec<HttpRequest>,
}

impl Fake {
    fn on(mut self, method: Method, path: &str, reply: Reply) -> Self {
        self.script.push_back((method, path.to_string(), reply));
        self
    }
    fn body(&self, i: usize) -> Value {
        self.sent[i].body.clone().unwrap()
    }
}

impl Transport for Fake {
    fn send(&mut self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let (method, path, reply) = self
            .script
            .pop_front()
            .unwrap_or_else(|| panic!("unscripted request {} {}", req.method.as_str(), req.url));
        assert_eq!(req.method, method, "method of {}", req.url);
        assert_eq!(req.url, format!("{BASE}{path}"));
        assert!(
            req.headers
                .iter()
                .all(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
        );
        self.sent.push(req);
        reply
    }
}

fn status(s: u16) -> Reply {
    Ok(HttpResponse {
        status: s,
        headers: vec![],
        body: vec![],
    })
}

fn json_reply(s: u16, body: Value) -> Reply {
    Ok(HttpResponse {
        status: s,
        headers: vec![],
        body: body.to_string().into_bytes(),
    })
}

fn created(id: &str) -> Reply {
    Ok(HttpResponse {
        status: 201,
        headers: vec![("Location".into(), format!("/api/v1/customer-profiles/{id}"))],
        body: vec![],
    })
}

/// The settings most tests run with: lookups first (`create-first = off`), the order whose
/// request sequences these tests were written for.
fn config() -> Config {
    config_with("off")
}

fn config_with(create_first: &str) -> Config {
    config_from(&[("create-first", create_first)])
}

/// The `acme` organization's settings with `extra` added.
fn config_from(extra: &[(&str, &str)]) -> Config {
    let base = [("domain", "acme"), ("username", "api@acme.com")];
    let settings: Vec<Setting> = base
        .iter()
        .chain(extra)
        .map(|(k, v)| Setting {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect();
    parse(&settings).unwrap()
}

fn plan(pairs: &[(&str, &str)]) -> Plan {
    Plan::compile(
        &pairs
            .iter()
            .map(|(s, t)| FieldMapping {
                source: s.to_string(),
                target: t.to_string(),
            })
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

fn std_plan() -> Plan {
    plan(&[("e", "email"), ("n", "name"), ("gid", "id")])
}

fn item(key: &str, email: &str, name: &str) -> SyncItem {
    SyncItem {
        row: Row {
            key: key.into(),
            columns: vec![
                Column {
                    name: "e".into(),
                    value: Cell::Text(email.into()),
                },
                Column {
                    name: "n".into(),
                    value: Cell::Text(name.into()),
                },
            ],
        },
        known_id: None,
        previous_payload: None,
    }
}

fn with_id(mut it: SyncItem, id: &str) -> SyncItem {
    it.row.columns.push(Column {
        name: "gid".into(),
        value: Cell::Text(id.into()),
    });
    it
}

fn ctx() -> BatchContext {
    BatchContext {
        sync_id: "sync-1".into(),
        attempt: 0,
    }
}

fn run(mode: SyncMode, items: &[SyncItem], fake: &mut Fake) -> Vec<RecordResult> {
    run_with(&config(), mode, items, fake)
}

fn run_with(
    config: &Config,
    mode: SyncMode,
    items: &[SyncItem],
    fake: &mut Fake,
) -> Vec<RecordResult> {
    let results = sync_batch(&ctx(), config, mode, &std_plan(), items, fake);
    assert_eq!(results.len(), items.len(), "one result per item");
    for (r, i) in results.iter().zip(items) {
        assert_eq!(r.key, i.row.key);
    }
    assert!(
        fake.script.is_empty(),
        "unused script: {:?}",
        fake.script.iter().map(|s| &s.1).collect::<Vec<_>>()
    );
    results
}

fn own_id(key: &str) -> String {
    ids::create_id("sync-1", key)
}

fn profile(id: &str, email: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "emails": [{"original": email, "normalized": email.to_lowercase()}],
           "createdAt": "2024-01-01T00:00:00Z"})
}

fn code(r: &RecordResult) -> ErrorCode {
    r.error.as_ref().unwrap().code
}

#[test]
fn insert_creates_with_deterministic_id() {
    let mut fake = Fake::default().on(Method::Post, PROFILES, created("from-location"));
    let r = run(
        SyncMode::Insert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!(r[0].outcome, Outcome::Created);
    assert_eq!(r[0].remote_id.as_deref(), Some("from-location"));
    assert_eq!(r[0].requests, 1);
    assert_eq!(
        r[0].confirmed_payload.as_deref(),
        Some(r#"{"emails":[{"original":"ann@x.io"}],"name":"Ann"}"#)
    );
    assert_eq!(
        fake.body(0),
        json!({"id": own_id("k1"), "name": "Ann", "emails": [{"original": "ann@x.io"}]})
    );
}

#[test]
fn insert_409_on_own_id_reads_back() {
    let id = own_id("k1");
    let path = format!("{PROFILES}/{id}");
    // Same data: nothing to patch.
    let mut fake = Fake::default()
        .on(
            Method::Post,
            PROFILES,
            json_reply(409, json!({"errors": [{"attr": "id", "code": "taken"}]})),
        )
        .on(
            Method::Get,
            &path,
            json_reply(200, profile(&id, "ann@x.io", "Ann")),
        );
    let r = run(
        SyncMode::Insert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Created, 2));
    assert_eq!(r[0].remote_id.as_deref(), Some(id.as_str()));

    // Different name: patch it; any 409 counts when our id exists.
    let mut fake = Fake::default()
        .on(
            Method::Post,
            PROFILES,
            json_reply(409, json!({"errors": {"attr": "emails", "code": "taken"}})),
        )
        .on(
            Method::Get,
            &path,
            json_reply(200, profile(&id, "ann@x.io", "Old")),
        )
        .on(Method::Patch, &path, status(204));
    let r = run(
        SyncMode::Insert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Created, 3));
    assert_eq!(fake.body(2), json!({"name": "Ann"}));
}

#[test]
fn insert_409_on_email_is_a_conflict() {
    let id = own_id("k1");
    let mut fake = Fake::default()
        .on(
            Method::Post,
            PROFILES,
            json_reply(
                409,
                json!({"errors": [{"attr": "emails", "code": "taken", "detail": "in use"}]}),
            ),
        )
        .on(
            Method::Get,
            &format!("{PROFILES}/{id}"),
            json_reply(404, json!({"errors": {"code": "not_exist"}})),
        );
    let r = run(
        SyncMode::Insert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!(r[0].outcome, Outcome::Failed);
    let e = r[0].error.as_ref().unwrap();
    assert_eq!(
        (e.code, e.category, e.retryable),
        (ErrorCode::Conflict, ErrorCategory::SkipRecord, false)
    );
    assert_eq!(e.api_errors[0].attr.as_deref(), Some("emails"));
    assert_eq!(e.field.as_deref(), Some("emails"));
    assert_eq!(r[0].requests, 2);
    assert_eq!(r[0].confirmed_payload, None);
}

#[test]
fn update_without_id_fails_without_requests() {
    let mut fake = Fake::default();
    let r = run(
        SyncMode::Update,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((code(&r[0]), r[0].requests), (ErrorCode::MissingField, 0));
    assert_eq!(r[0].error.as_ref().unwrap().field.as_deref(), Some("id"));
}

#[test]
fn update_reads_merges_and_patches() {
    let existing = json!({"id": "c1", "name": "Ann",
        "emails": [{"original": "old@x.io", "normalized": "old@x.io", "primary": true}],
        "phones": [{"original": "+14155552671", "normalized": "+14155552671", "type": ""}]});
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}/c1"),
            json_reply(200, existing),
        )
        .on(Method::Patch, &format!("{PROFILES}/c1"), status(204));
    let r = run(
        SyncMode::Update,
        &[with_id(item("k1", "new@x.io", "Ann"), "c1")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 2));
    assert_eq!(r[0].remote_id.as_deref(), Some("c1"));
    assert_eq!(
        fake.body(1),
        json!({"emails": [{"original": "old@x.io", "primary": true}, {"original": "new@x.io"}]})
    );
}

#[test]
fn update_uses_known_id_and_reports_unchanged() {
    let mut it = item("k1", "ann@x.io", "Ann");
    it.known_id = Some("c9".into());
    let mut fake = Fake::default().on(
        Method::Get,
        &format!("{PROFILES}/c9"),
        json_reply(200, profile("c9", "ANN@x.io", "Ann")),
    );
    let r = run(SyncMode::Update, &[it], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Unchanged, 1));
    assert!(r[0].confirmed_payload.is_some());
}

#[test]
fn previous_payload_fast_paths() {
    let base = with_id(item("k1", "ann@x.io", "Ann"), "c1");
    let payload = std_plan()
        .map_row(&config(), &base.row)
        .unwrap()
        .profile
        .canonical();

    // Same payload: nothing to send.
    let mut same = base.clone();
    same.previous_payload = Some(payload.clone());
    let mut fake = Fake::default();
    let r = run(SyncMode::Update, &[same], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Unchanged, 0));

    // Only the name changed: one PATCH, no GET.
    let mut renamed = with_id(item("k1", "ann@x.io", "Ann Lee"), "c1");
    renamed.previous_payload = Some(payload.clone());
    let mut fake = Fake::default().on(Method::Patch, &format!("{PROFILES}/c1"), status(204));
    let r = run(SyncMode::Update, &[renamed], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 1));
    assert_eq!(fake.body(0), json!({"name": "Ann Lee"}));

    // The email changed: read and merge.
    let mut moved = with_id(item("k1", "ann@new.io", "Ann"), "c1");
    moved.previous_payload = Some(payload);
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}/c1"),
            json_reply(200, profile("c1", "ann@x.io", "Ann")),
        )
        .on(Method::Patch, &format!("{PROFILES}/c1"), status(204));
    let r = run(SyncMode::Update, &[moved], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 2));
}

#[test]
fn update_merged_and_not_found() {
    let mut fake = Fake::default().on(
        Method::Get,
        &format!("{PROFILES}/c1"),
        json_reply(301, json!({"errors": [{"attr": "customerId", "code": "moved", "meta": {"old": "c1", "new": "c2"}}]})),
    );
    let r = run(
        SyncMode::Update,
        &[with_id(item("k1", "ann@x.io", "Ann"), "c1")],
        &mut fake,
    );
    assert_eq!(code(&r[0]), ErrorCode::Merged);
    assert_eq!(r[0].remote_id.as_deref(), Some("c2"));
    assert!(r[0].error.as_ref().unwrap().message.contains("c2"));

    let mut it = with_id(item("k1", "ann@x.io", "Ann Lee"), "c1");
    it.previous_payload = Some(r#"{"emails":[{"original":"ann@x.io"}],"name":"Ann"}"#.into());
    let mut fake = Fake::default().on(Method::Patch, &format!("{PROFILES}/c1"), status(404));
    let r = run(SyncMode::Update, &[it], &mut fake);
    assert_eq!((code(&r[0]), r[0].requests), (ErrorCode::NotFound, 1));
}

#[test]
fn upsert_creates_when_not_found() {
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%2Btag%40x.io"),
            json_reply(200, json!([])),
        )
        .on(Method::Post, PROFILES, created(&own_id("k1")));
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "Ann+Tag@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Created, 2));
    assert_eq!(r[0].remote_id, Some(own_id("k1")));
}

#[test]
fn upsert_finding_its_own_created_profile_reports_created() {
    // The create of an earlier attempt was applied but its answer lost: the lookup finds the
    // profile under our own id, already up to date.
    let mut fake = Fake::default().on(
        Method::Get,
        &format!("{PROFILES}?email=ann%40x.io"),
        json_reply(200, json!([profile(&own_id("k1"), "ann@x.io", "Ann")])),
    );
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Created, 1));
    assert_eq!(r[0].remote_id, Some(own_id("k1")));
}

#[test]
fn upsert_updates_the_single_match_without_second_read() {
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([profile("c1", "ann@x.io", "Old")])),
        )
        .on(Method::Patch, &format!("{PROFILES}/c1"), status(204));
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 2));
    assert_eq!(r[0].remote_id.as_deref(), Some("c1"));
    assert_eq!(fake.body(1), json!({"name": "Ann"}));
}

#[test]
fn upsert_never_picks_among_several() {
    let mut fake = Fake::default().on(
        Method::Get,
        &format!("{PROFILES}?email=ann%40x.io"),
        json_reply(
            200,
            json!([
                profile("c1", "ann@x.io", "A"),
                profile("c2", "ann@x.io", "B")
            ]),
        ),
    );
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    let e = r[0].error.as_ref().unwrap();
    assert_eq!(e.code, ErrorCode::AmbiguousMatch);
    assert!(e.message.contains("c1") && e.message.contains("c2"));
    assert_eq!(r[0].requests, 1);
}

#[test]
fn upsert_known_id_gone_falls_back_to_email() {
    let mut it = item("k1", "ann@x.io", "Ann");
    it.known_id = Some("dead".into());
    let mut fake = Fake::default()
        .on(Method::Get, &format!("{PROFILES}/dead"), status(404))
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([profile("c1", "ann@x.io", "Ann")])),
        );
    let r = run(SyncMode::Upsert, &[it], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Unchanged, 2));
    assert_eq!(r[0].remote_id.as_deref(), Some("c1"));
}

#[test]
fn upsert_known_id_is_updated_directly() {
    let mut it = item("k1", "ann@x.io", "Ann");
    it.known_id = Some("c1".into());
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}/c1"),
            json_reply(200, profile("c1", "ann@x.io", "Old")),
        )
        .on(Method::Patch, &format!("{PROFILES}/c1"), status(204));
    let r = run(SyncMode::Upsert, &[it], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 2));
}

#[test]
fn upsert_own_id_taken_continues_as_update() {
    let id = own_id("k1");
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([])),
        )
        .on(
            Method::Post,
            PROFILES,
            json_reply(409, json!({"errors": [{"attr": "id", "code": "taken"}]})),
        )
        .on(
            Method::Get,
            &format!("{PROFILES}/{id}"),
            json_reply(200, profile(&id, "ann@x.io", "Ann")),
        );
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Created, 3));
}

#[test]
fn upsert_email_race_finds_again_once() {
    let id = own_id("k1");
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([])),
        )
        .on(
            Method::Post,
            PROFILES,
            json_reply(
                409,
                json!({"errors": [{"attr": "emails", "code": "taken"}]}),
            ),
        )
        .on(Method::Get, &format!("{PROFILES}/{id}"), status(404))
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([profile("c7", "ann@x.io", "Other")])),
        )
        .on(Method::Patch, &format!("{PROFILES}/c7"), status(204));
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 5));
    assert_eq!(r[0].remote_id.as_deref(), Some("c7"));

    // Still not findable (search lag): a retryable conflict.
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([])),
        )
        .on(
            Method::Post,
            PROFILES,
            json_reply(
                409,
                json!({"errors": [{"attr": "emails", "code": "taken"}]}),
            ),
        )
        .on(Method::Get, &format!("{PROFILES}/{id}"), status(404))
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([])),
        );
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    let e = r[0].error.as_ref().unwrap();
    assert_eq!((e.code, e.retryable), (ErrorCode::Conflict, true));
}

#[test]
fn upsert_phone_conflict_fails() {
    let id = own_id("k1");
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([])),
        )
        .on(
            Method::Post,
            PROFILES,
            json_reply(
                409,
                json!({"errors": [{"attr": "phones", "code": "taken"}]}),
            ),
        )
        .on(Method::Get, &format!("{PROFILES}/{id}"), status(404));
    let r = run(
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        &mut fake,
    );
    assert_eq!((code(&r[0]), r[0].requests), (ErrorCode::Conflict, 3));
    assert!(!r[0].error.as_ref().unwrap().retryable);
}

#[test]
fn auth_failure_fails_the_rest_fast() {
    let mut fake = Fake::default().on(Method::Post, PROFILES, created("a")).on(
        Method::Post,
        PROFILES,
        status(401),
    );
    let items = [
        item("k1", "a@x.io", "A"),
        item("k2", "b@x.io", "B"),
        item("k3", "c@x.io", "C"),
        item("k4", "d@x.io", "D"),
    ];
    let r = run(SyncMode::Insert, &items, &mut fake);
    assert_eq!(r[0].outcome, Outcome::Created);
    assert_eq!(code(&r[1]), ErrorCode::AuthenticationFailed);
    assert_eq!(r[1].requests, 1);
    for later in &r[2..] {
        assert_eq!(code(later), ErrorCode::AuthenticationFailed);
        assert_eq!(
            later.error.as_ref().unwrap().category,
            ErrorCategory::FixConfig
        );
        assert_eq!(later.requests, 0);
        assert!(later.error.as_ref().unwrap().message.contains(&later.key));
    }
    assert_eq!(fake.sent.len(), 2);

    let mut fake = Fake::default().on(
        Method::Get,
        &format!("{PROFILES}?email=a%40x.io"),
        status(403),
    );
    let r = run(SyncMode::Upsert, &items[..2], &mut fake);
    assert_eq!(code(&r[0]), ErrorCode::PermissionDenied);
    assert_eq!(
        (code(&r[1]), r[1].requests),
        (ErrorCode::PermissionDenied, 0)
    );
}

#[test]
fn mapping_errors_and_duplicates_do_not_stop_the_batch() {
    let mut fake = Fake::default().on(Method::Post, PROFILES, created("b"));
    let items = [
        item("k1", "not-an-email", "A"),
        item("k2", "b@x.io", "B"),
        item("k2", "b@x.io", "B"),
    ];
    let r = run(SyncMode::Insert, &items, &mut fake);
    assert_eq!(
        (r[0].outcome, code(&r[0]), r[0].requests),
        (Outcome::Failed, ErrorCode::InvalidValue, 0)
    );
    assert_eq!(r[1].outcome, Outcome::Created);
    assert_eq!((code(&r[2]), r[2].requests), (ErrorCode::DuplicateKey, 0));
}

#[test]
fn transient_failures_are_retryable() {
    let timeout = Err(TransportError {
        kind: TransportErrorKind::Timeout,
        message: "ConnectionReadTimeout".into(),
    });
    let limited = Ok(HttpResponse {
        status: 429,
        headers: vec![("Retry-After".into(), "2".into())],
        body: b"slow down".to_vec(),
    });
    let mut fake = Fake::default()
        .on(Method::Post, PROFILES, timeout)
        .on(Method::Post, PROFILES, limited)
        .on(Method::Post, PROFILES, status(502));
    let items = [
        item("k1", "a@x.io", "A"),
        item("k2", "b@x.io", "B"),
        item("k3", "c@x.io", "C"),
    ];
    let r = run(SyncMode::Insert, &items, &mut fake);
    assert_eq!(code(&r[0]), ErrorCode::Timeout);
    assert_eq!(code(&r[1]), ErrorCode::RateLimited);
    assert_eq!(r[1].error.as_ref().unwrap().retry_after_ms, Some(2000));
    assert_eq!(code(&r[2]), ErrorCode::ServerError);
    assert!(
        r.iter()
            .all(|x| x.error.as_ref().unwrap().retryable && x.requests == 1)
    );

    let mut fake = Fake::default().on(
        Method::Get,
        &format!("{PROFILES}?email=d%40x.io"),
        json_reply(200, json!({"not": "an array"})),
    );
    let r = run(SyncMode::Upsert, &[item("k4", "d@x.io", "D")], &mut fake);
    let e = r[0].error.as_ref().unwrap();
    assert_eq!((e.code, e.retryable), (ErrorCode::UnexpectedResponse, true));
}

#[test]
fn egress_denial_stops_the_batch() {
    let denied = Err(TransportError {
        kind: TransportErrorKind::Denied,
        message: "HttpRequestDenied".into(),
    });
    let mut fake = Fake::default().on(Method::Post, PROFILES, denied);
    let r = run(
        SyncMode::Insert,
        &[item("k1", "a@x.io", "A"), item("k2", "b@x.io", "B")],
        &mut fake,
    );
    assert_eq!(code(&r[0]), ErrorCode::EgressDenied);
    assert!(
        r[0].error
            .as_ref()
            .unwrap()
            .message
            .contains("acme.gladly.com")
    );
    assert_eq!((code(&r[1]), r[1].requests), (ErrorCode::EgressDenied, 0));
}

#[test]
fn ids_in_paths_are_encoded() {
    let mut fake = Fake::default().on(Method::Get, &format!("{PROFILES}/a%2Fb%20c"), status(404));
    let r = run(
        SyncMode::Update,
        &[with_id(item("k1", "a@x.io", "A"), "a/b c")],
        &mut fake,
    );
    assert_eq!(code(&r[0]), ErrorCode::NotFound);
}

#[test]
fn upsert_fast_path_on_a_merged_id_falls_back_to_email() {
    let mut it = item("k1", "ann@x.io", "Ann Lee");
    it.known_id = Some("old".into());
    it.previous_payload = Some(r#"{"emails":[{"original":"ann@x.io"}],"name":"Ann"}"#.into());
    let moved = json!({"errors": [{"attr": "customerId", "code": "moved", "meta": {"old": "old", "new": "c2"}}]});
    let mut fake = Fake::default()
        .on(
            Method::Patch,
            &format!("{PROFILES}/old"),
            json_reply(301, moved.clone()),
        )
        .on(
            Method::Get,
            &format!("{PROFILES}?email=ann%40x.io"),
            json_reply(200, json!([profile("c2", "ann@x.io", "Ann")])),
        )
        .on(Method::Patch, &format!("{PROFILES}/c2"), status(204));
    let r = run(SyncMode::Upsert, &[it.clone()], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 3));
    assert_eq!(r[0].remote_id.as_deref(), Some("c2"));

    // In update mode the same answer is a failure naming the survivor.
    let mut fake = Fake::default().on(
        Method::Patch,
        &format!("{PROFILES}/old"),
        json_reply(301, moved),
    );
    let r = run(SyncMode::Update, &[it], &mut fake);
    assert_eq!(
        (code(&r[0]), r[0].remote_id.as_deref()),
        (ErrorCode::Merged, Some("c2"))
    );
}

// Create-first upserts (`create-first = auto`, the default).

fn taken(attr: &str) -> Reply {
    json_reply(409, json!({"errors": [{"attr": attr, "code": "taken"}]}))
}

fn find_email(email: &str) -> String {
    format!("{PROFILES}?email={}", email.replace('@', "%40"))
}

/// Ann's row (`k1`) upserted alone with `create-first = auto`.
fn upsert_ann_creating_first(fake: &mut Fake) -> RecordResult {
    run_with(
        &config_with("auto"),
        SyncMode::Upsert,
        &[item("k1", "ann@x.io", "Ann")],
        fake,
    )
    .remove(0)
}

/// Ann's POST meets a 409 blaming `attr`, and neither the lookup by email nor our own id finds
/// a profile.
fn taken_by_nobody_findable(attr: &str) -> RecordResult {
    let id = own_id("k1");
    let mut fake = Fake::default()
        .on(Method::Post, PROFILES, taken(attr))
        .on(
            Method::Get,
            &find_email("ann@x.io"),
            json_reply(200, json!([])),
        )
        .on(Method::Get, &format!("{PROFILES}/{id}"), status(404));
    upsert_ann_creating_first(&mut fake)
}

#[test]
fn create_first_creates_each_new_customer_with_one_request() {
    let mut fake = Fake::default()
        .on(Method::Post, PROFILES, created(&own_id("k1")))
        .on(Method::Post, PROFILES, created(&own_id("k2")));
    let items = [item("k1", "ann@x.io", "Ann"), item("k2", "bob@x.io", "Bob")];
    let r = run_with(&config_with("auto"), SyncMode::Upsert, &items, &mut fake);
    let got: Vec<_> = r.iter().map(|r| (r.outcome, r.requests)).collect();
    assert_eq!(got, vec![(Outcome::Created, 1), (Outcome::Created, 1)]);
    assert_eq!(fake.body(0)["id"], json!(own_id("k1")));
}

#[test]
fn create_first_meeting_a_taken_email_updates_the_customer_who_holds_it() {
    let mut fake = Fake::default()
        .on(Method::Post, PROFILES, taken("emails"))
        .on(
            Method::Get,
            &find_email("ann@x.io"),
            json_reply(200, json!([profile("c7", "ann@x.io", "Old")])),
        )
        .on(Method::Patch, &format!("{PROFILES}/c7"), status(204));
    let r = upsert_ann_creating_first(&mut fake);
    assert_eq!(
        (r.outcome, r.requests, r.remote_id.as_deref()),
        (Outcome::Updated, 3, Some("c7"))
    );
    assert_eq!(fake.body(2)["name"], json!("Ann"));
}

#[test]
fn after_an_existing_customer_the_batch_looks_up_first_until_new_ones_dominate() {
    let mut fake = Fake::default()
        // k1: created first, but Ann exists.
        .on(Method::Post, PROFILES, taken("emails"))
        .on(
            Method::Get,
            &find_email("ann@x.io"),
            json_reply(200, json!([profile("c1", "ann@x.io", "Old")])),
        )
        .on(Method::Patch, &format!("{PROFILES}/c1"), status(204))
        // k2: 1 of 1 existed, so looked up first; Bob is new.
        .on(
            Method::Get,
            &find_email("bob@x.io"),
            json_reply(200, json!([])),
        )
        .on(Method::Post, PROFILES, created(&own_id("k2")))
        // k3: 1 of 2 existed (half), still looked up first; Cy is new.
        .on(
            Method::Get,
            &find_email("cy@x.io"),
            json_reply(200, json!([])),
        )
        .on(Method::Post, PROFILES, created(&own_id("k3")))
        // k4: 1 of 3 existed: created first again.
        .on(Method::Post, PROFILES, created(&own_id("k4")));
    let items = [
        item("k1", "ann@x.io", "Ann"),
        item("k2", "bob@x.io", "Bob"),
        item("k3", "cy@x.io", "Cy"),
        item("k4", "dee@x.io", "Dee"),
    ];
    let r = run_with(&config_with("auto"), SyncMode::Upsert, &items, &mut fake);
    let got: Vec<_> = r.iter().map(|r| (r.outcome, r.requests)).collect();
    assert_eq!(
        got,
        vec![
            (Outcome::Updated, 3),
            (Outcome::Created, 2),
            (Outcome::Created, 2),
            (Outcome::Created, 1)
        ]
    );
}

#[test]
fn what_one_batch_learned_decides_the_next_batch_of_the_same_sync() {
    let mut fake = Fake::default()
        .on(Method::Post, PROFILES, taken("emails"))
        .on(
            Method::Get,
            &find_email("ann@x.io"),
            json_reply(200, json!([profile("c1", "ann@x.io", "Old")])),
        )
        .on(Method::Patch, &format!("{PROFILES}/c1"), status(204));
    upsert_ann_creating_first(&mut fake);
    // Same instance (thread), next batch: Bob is looked up first.
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &find_email("bob@x.io"),
            json_reply(200, json!([profile("c2", "bob@x.io", "Old")])),
        )
        .on(Method::Patch, &format!("{PROFILES}/c2"), status(204));
    let r = run_with(
        &config_with("auto"),
        SyncMode::Upsert,
        &[item("k2", "bob@x.io", "Bob")],
        &mut fake,
    );
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Updated, 2));
}

#[test]
fn create_first_meeting_its_own_earlier_create_reports_created() {
    let id = own_id("k1");
    let mut fake = Fake::default().on(Method::Post, PROFILES, taken("id")).on(
        Method::Get,
        &find_email("ann@x.io"),
        json_reply(200, json!([profile(&id, "ann@x.io", "Ann")])),
    );
    let r = upsert_ann_creating_first(&mut fake);
    assert_eq!(
        (r.outcome, r.requests, r.remote_id.as_deref()),
        (Outcome::Created, 2, Some(id.as_str()))
    );
}

#[test]
fn create_first_finds_its_own_create_by_id_while_the_search_lags() {
    let id = own_id("k1");
    let mut fake = Fake::default()
        .on(Method::Post, PROFILES, taken("id"))
        .on(
            Method::Get,
            &find_email("ann@x.io"),
            json_reply(200, json!([])),
        )
        .on(
            Method::Get,
            &format!("{PROFILES}/{id}"),
            json_reply(200, profile(&id, "ann@x.io", "Ann")),
        );
    let r = upsert_ann_creating_first(&mut fake);
    assert_eq!((r.outcome, r.requests), (Outcome::Created, 3));
}

#[test]
fn create_first_with_a_taken_email_nobody_can_be_found_by_is_retried_later() {
    let r = taken_by_nobody_findable("emails");
    let e = r.error.as_ref().unwrap();
    assert_eq!(
        (e.code, e.retryable, r.requests),
        (ErrorCode::Conflict, true, 3)
    );
}

#[test]
fn create_first_with_a_phone_held_by_another_customer_fails_the_row() {
    let r = taken_by_nobody_findable("phones");
    let e = r.error.as_ref().unwrap();
    assert_eq!(
        (e.code, e.retryable, r.requests),
        (ErrorCode::Conflict, false, 3)
    );
}

#[test]
fn a_match_on_the_external_id_always_looks_up_first() {
    let config = config_from(&[("match-on", "externalCustomerId,email")]);
    let plan = plan(&[("e", "email"), ("n", "name"), ("x", "externalCustomerId")]);
    let mut it = item("k1", "ann@x.io", "Ann");
    it.row.columns.push(Column {
        name: "x".into(),
        value: Cell::Text("W-1".into()),
    });
    let mut fake = Fake::default()
        .on(
            Method::Get,
            &format!("{PROFILES}?externalCustomerId=W-1"),
            json_reply(200, json!([])),
        )
        .on(
            Method::Get,
            &find_email("ann@x.io"),
            json_reply(200, json!([])),
        )
        .on(Method::Post, PROFILES, created(&own_id("k1")));
    let r = sync_batch(&ctx(), &config, SyncMode::Upsert, &plan, &[it], &mut fake);
    assert_eq!((r[0].outcome, r[0].requests), (Outcome::Created, 3));
}
