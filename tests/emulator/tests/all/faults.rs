//! Fault injection seen from a client.

use std::time::Duration;

use gladly_emulator::{EmulatorConfig, Fault, FaultRule, Method};
use serde_json::json;
use test_kit::emulator::{fast, start, start_with, timeout};
use test_kit::http::Client;
use test_kit::{PROFILES, profile_path};

#[tokio::test]
async fn status_faults_on_chosen_requests() {
    let em = start().await;
    em.set_faults(vec![
        FaultRule::on_requests(Fault::Status429, [1]),
        FaultRule::on_requests(Fault::Status5xx(503), [2]),
        FaultRule::on_requests(Fault::Status5xx(42), [3]),
    ]);
    let c = Client::new(&em);
    let r = c.get("/api/v1/organization").await;
    assert_eq!(r.status, 429);
    assert!(r.header("ratelimit-remaining-second").is_some());
    assert_eq!(c.get("/api/v1/organization").await.status, 503);
    assert_eq!(c.get("/api/v1/organization").await.status, 500);
    assert_eq!(c.get("/api/v1/organization").await.status, 200);
    let faults: Vec<_> = em.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults[0], Some(Fault::Status429));
    assert_eq!(faults[3], None);
}

#[tokio::test]
async fn status_faults_do_not_apply_writes() {
    let em = start_with(EmulatorConfig {
        faults: vec![FaultRule::probability(Fault::Status5xx(502), 1.0).method(Method::POST)],
        ..fast()
    })
    .await;
    let c = Client::new(&em);
    assert_eq!(c.create(&json!({"id": "a"})).await.status, 502);
    assert!(em.profiles("acme").is_empty());
    // The method filter leaves GETs alone.
    assert_eq!(c.get(&profile_path("a")).await.status, 404);
}

#[tokio::test]
async fn drop_before_apply_stores_nothing() {
    let em = start().await;
    em.set_faults(vec![
        FaultRule::on_requests(Fault::DropBeforeApply, [1]).path_prefix(PROFILES),
    ]);
    let c = Client::new(&em);
    let err = c
        .try_send("POST", PROFILES, Some(&json!({"id": "a"})))
        .await;
    assert!(err.is_err(), "expected a connection error");
    assert!(em.profiles("acme").is_empty());
    assert_eq!(em.requests()[0].status, None);
    // The retry goes through.
    assert_eq!(c.create(&json!({"id": "a"})).await.status, 201);
}

#[tokio::test]
async fn drop_after_apply_stores_the_profile() {
    let em = start().await;
    em.set_faults(vec![
        FaultRule::on_requests(Fault::DropAfterApply, [1]).method(Method::POST),
    ]);
    let c = Client::new(&em);
    let err = c
        .try_send("POST", PROFILES, Some(&json!({"id": "a", "name": "Ann"})))
        .await;
    assert!(err.is_err(), "expected a connection error, got a response");
    let stored = em.profiles("acme");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"], "Ann");
    // A blind retry of the same create now meets 409 taken: the way to know it had landed.
    let r = c.create(&json!({"id": "a", "name": "Ann"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.first_error(), (Some("id".into()), "taken".into()));
}

#[tokio::test]
async fn slow_outlasts_the_client_timeout() {
    let em = start().await;
    em.set_faults(vec![FaultRule::on_requests(
        Fault::Slow(Duration::from_millis(600)),
        [1],
    )]);
    let c = Client::new(&em);
    assert!(timeout(200, c.get("/api/v1/organization")).await.is_none());
    let r = timeout(2000, c.get("/api/v1/organization"))
        .await
        .expect("second request is not slowed");
    assert_eq!(r.status, 200);
}

/// The slow fault delays the answer, not the write: a create whose client gave up before the
/// answer came is stored all the same.
#[tokio::test]
async fn a_slow_create_is_applied_though_the_client_gave_up() {
    let em = start().await;
    em.set_faults(vec![FaultRule::on_requests(
        Fault::Slow(Duration::from_millis(1500)),
        [1],
    )]);
    let c = Client::new(&em);
    let gave_up = timeout(200, c.create(&json!({"id": "slow-1", "name": "Sam"}))).await;
    assert!(gave_up.is_none(), "the answer came before the client gave up");
    let stored = em.profiles("acme");
    assert_eq!(stored.len(), 1, "the write was applied before the delayed answer");
    assert_eq!(stored[0]["name"], "Sam");
}

#[tokio::test]
async fn malformed_body() {
    let em = start().await;
    em.set_faults(vec![FaultRule::probability(Fault::MalformedBody, 1.0)]);
    let c = Client::new(&em);
    let r = c.create(&json!({"id": "a"})).await;
    assert_eq!(r.status, 201);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    let r = c.get(&profile_path("a")).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    em.set_faults(Vec::new());
    assert_eq!(c.get(&profile_path("a")).await.status, 200);
}

async fn pattern(seed: u64) -> Vec<u16> {
    let em = start_with(EmulatorConfig {
        seed,
        faults: vec![FaultRule::probability(Fault::Status5xx(500), 0.5)],
        ..fast()
    })
    .await;
    let c = Client::new(&em);
    let mut out = Vec::new();
    for _ in 0..24 {
        out.push(c.get("/api/v1/organization").await.status);
    }
    em.shutdown().await;
    out
}

#[tokio::test]
async fn seeded_faults_are_reproducible() {
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert_ne!(a, pattern(43).await);
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
}
