//! The customer-profile routes against a real emulator on 127.0.0.1.

use std::time::{Duration, Instant};

use gladly_emulator::{CustomAttributesPatch, EmulatorConfig, ErrorsShape, Switches, User};
use serde_json::json;
use test_kit::emulator::{fast, start, start_with};
use test_kit::http::Client;
use test_kit::{PROFILES, profile_path};

#[tokio::test]
async fn organization_answers_with_rate_headers() {
    let em = start().await;
    let r = Client::new(&em).get("/api/v1/organization").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "acme");
    assert!(r.json()["id"].is_string());
    assert_eq!(
        r.header("ratelimit-limit-second").as_deref(),
        Some("100000")
    );
    assert!(r.header("ratelimit-remaining-second").is_some());
}

#[tokio::test]
async fn auth_failures() {
    let config = EmulatorConfig {
        users: vec![
            User::new("api@example.com", "emulator-token"),
            User::new("agent@example.com", "t2").without_api_permission(),
        ],
        ..fast()
    };
    let em = start_with(config).await;
    let c = Client::new(&em);
    assert_eq!(
        c.clone().no_auth().get("/api/v1/organization").await.status,
        401
    );
    let r = c
        .clone()
        .auth("api@example.com", "wrong")
        .get(PROFILES)
        .await;
    assert_eq!(r.status, 401);
    assert!(r.header("ratelimit-limit-second").is_some());
    assert_eq!(
        c.clone()
            .auth("agent@example.com", "t2")
            .get("/api/v1/organization")
            .await
            .status,
        403
    );
    assert_eq!(c.get("/api/v1/organization").await.status, 200);
}

#[tokio::test]
async fn create_then_get_normalizes() {
    let em = start().await;
    let c = Client::new(&em);
    let body = json!({
        "id": "cust-1",
        "name": "Martha Williams",
        "emails": [{"original": " Martha.W@Example.com", "primary": true}],
        "phones": [{"original": "(415) 555-0100", "type": "MOBILE"}, {"original": "020 7946 0958", "regionCode": "GB"}],
        "customAttributes": {"tier": "gold"}
    });
    let r = c.create(&body).await;
    assert_eq!(r.status, 201);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("location").as_deref(),
        Some("/api/v1/customer-profiles/cust-1")
    );

    let p = c.get(&profile_path("cust-1")).await;
    assert_eq!(p.status, 200);
    let p = p.json();
    assert_eq!(p["id"], "cust-1");
    assert_eq!(p["emails"][0]["normalized"], "martha.w@example.com");
    assert_eq!(p["emails"][0]["original"], " Martha.W@Example.com");
    assert_eq!(p["phones"][0]["normalized"], "+14155550100");
    assert_eq!(p["phones"][0]["type"], "MOBILE");
    assert_eq!(p["phones"][1]["normalized"], "+442079460958");
    assert_eq!(p["phones"][1]["type"], "");
    let created = p["createdAt"].as_str().unwrap();
    assert_eq!(created.len(), "2019-02-21T07:15:18.072Z".len(), "{created}");
    assert!(created.ends_with('Z') && created.as_bytes()[19] == b'.');
    assert_eq!(em.profiles("acme").len(), 1);
    assert!(em.profiles("default").is_empty());

    // Without an id the server makes one.
    let r = c.create(&json!({"name": "No Id"})).await;
    assert_eq!(r.status, 201);
    let location = r.header("location").unwrap();
    let id = location.rsplit('/').next().unwrap();
    assert_eq!(id.len(), 22);
    assert_eq!(c.get(&location).await.json()["name"], "No Id");
}

#[tokio::test]
async fn create_validation_errors() {
    let em = start().await;
    let c = Client::new(&em);
    for (body, attr, code) in [
        (json!({"id": "has space"}), "id", "invalid"),
        (json!({"id": "x".repeat(50)}), "id", "too_long"),
        (
            json!({"favouriteColour": "blue"}),
            "favouriteColour",
            "invalid",
        ),
        (
            json!({"emails": [{"primary": true}]}),
            "emails[0].original",
            "blank",
        ),
        (
            json!({"emails": [{"original": "not-an-email"}]}),
            "emails[0].original",
            "invalid",
        ),
        (
            json!({"phones": [{"original": "4155550100", "smsPreference": "MAYBE"}]}),
            "phones[0].smsPreference",
            "invalid",
        ),
        (
            json!({"customAttributes": "gold"}),
            "customAttributes",
            "invalid",
        ),
    ] {
        let r = c.create(&body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(
            r.first_error(),
            (Some(attr.to_string()), code.to_string()),
            "{body}"
        );
    }
    // Forty-nine characters is the longest id.
    assert_eq!(c.create(&json!({"id": "x".repeat(49)})).await.status, 201);
    // A body that is not JSON, or not sent as JSON.
    let r = c.try_send("POST", PROFILES, None).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(em.profiles("acme").len() == 1);
}

#[tokio::test]
async fn conflicts_on_id_email_and_mobile() {
    let em = start().await;
    let c = Client::new(&em);
    let first = json!({"id": "a", "emails": [{"original": "ann@example.com"}],
        "phones": [{"original": "+14155550100", "type": "MOBILE"}, {"original": "+14155550111", "type": "HOME"}]});
    assert_eq!(c.create(&first).await.status, 201);

    let r = c.create(&json!({"id": "a"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.first_error(), (Some("id".into()), "taken".into()));

    let r = c
        .create(&json!({"emails": [{"original": "ANN@example.com "}]}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.first_error(), (Some("emails".into()), "taken".into()));

    let r = c
        .create(&json!({"phones": [{"original": "415-555-0100", "type": "MOBILE"}]}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.first_error(), (Some("phones".into()), "taken".into()));

    // HOME, OFFICE and untyped numbers may repeat across profiles.
    let r = c.create(&json!({"id": "b", "phones": [{"original": "+14155550111"}, {"original": "+14155550100", "type": "HOME"}]})).await;
    assert_eq!(r.status, 201);
    // PATCH runs into the same rule.
    let r = c
        .patch(
            &profile_path("b"),
            &json!({"emails": [{"original": "ann@example.com"}]}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.first_error(), (Some("emails".into()), "taken".into()));
    // Another organization has its own store.
    let other = Client::new(&em).host("other.us-1.gladly.qa");
    assert_eq!(other.create(&first).await.status, 201);
    assert_eq!(em.profiles("other").len(), 1);
}

#[tokio::test]
async fn find_by_each_identifier() {
    let em = start().await;
    let c = Client::new(&em);
    c.create(&json!({"id": "a", "emails": [{"original": "Ann@Example.com"}], "externalCustomerId": "ext-1",
        "phones": [{"original": "+14155550111", "type": "HOME"}]})).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    c.create(&json!({"id": "b", "phones": [{"original": "4155550111"}]}))
        .await;

    let r = c
        .get("/api/v1/customer-profiles?email=ann%40EXAMPLE.com")
        .await;
    assert_eq!(r.status, 200);
    let found = r.json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], "a");
    assert_eq!(found[0]["externalCustomerId"], "ext-1");

    let r = c
        .get("/api/v1/customer-profiles?phoneNumber=%2B14155550111")
        .await;
    let ids: Vec<_> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("b"), json!("a")], "newest updatedAt first");
    // Updating a moves it to the front.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        c.patch(&profile_path("a"), &json!({"name": "Ann"}))
            .await
            .status,
        204
    );
    let r = c
        .get("/api/v1/customer-profiles?phoneNumber=%2B14155550111")
        .await;
    assert_eq!(r.json()[0]["id"], "a");

    let r = c
        .get("/api/v1/customer-profiles?externalCustomerId=ext-1")
        .await;
    assert_eq!(r.json()[0]["id"], "a");
    let r = c
        .get("/api/v1/customer-profiles?email=nobody%40example.com")
        .await;
    assert_eq!((r.status, r.json()), (200, json!([])));

    for bad in [
        "/api/v1/customer-profiles",
        "/api/v1/customer-profiles?email=a%40b.com&externalCustomerId=x",
        "/api/v1/customer-profiles?email=not-an-email",
        "/api/v1/customer-profiles?phoneNumber=+14155550111",
        "/api/v1/customer-profiles?name=Ann",
    ] {
        assert_eq!(c.get(bad).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn find_returns_at_most_fifty() {
    let em = start().await;
    for i in 0..55 {
        em.insert_profile("acme", json!({"id": format!("p{i}"), "phones": [{"original": "+14155550123", "type": "HOME"}]}));
    }
    let r = Client::new(&em)
        .get("/api/v1/customer-profiles?phoneNumber=%2B14155550123")
        .await;
    let found = r.json();
    let ids: Vec<String> = found.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    let expected: Vec<String> = (5..55).rev().map(|i| format!("p{i}")).collect();
    assert_eq!(ids, expected, "the 50 newest, newest first; p0 to p4 left out");
}

#[tokio::test]
async fn merged_profile_moves() {
    let em = start().await;
    let c = Client::new(&em);
    c.create(&json!({"id": "old", "emails": [{"original": "old@example.com"}]}))
        .await;
    c.create(&json!({"id": "new", "emails": [{"original": "new@example.com"}]}))
        .await;
    em.merge_profiles("acme", "old", "new");

    let r = c.get(&profile_path("old")).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/api/v1/customer-profiles/new")
    );
    let e = &r.json()["errors"][0];
    assert_eq!(e["code"], "moved");
    assert_eq!(e["meta"], json!({"old": "old", "new": "new"}));

    assert_eq!(
        c.patch(&profile_path("old"), &json!({"name": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(c.delete(&profile_path("old")).await.status, 404);
    let merged = c.get(&profile_path("new")).await.json();
    assert_eq!(merged["emails"].as_array().unwrap().len(), 2);
    let r = c
        .get("/api/v1/customer-profiles?email=old%40example.com")
        .await;
    assert_eq!(r.json()[0]["id"], "new");

    let r = c.get(&profile_path("never")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.first_error().1, "not_exist");
}

#[tokio::test]
async fn patch_replaces_arrays_and_keeps_other_fields() {
    let em = start().await;
    let c = Client::new(&em);
    c.create(&json!({"id": "a", "name": "Ann", "address": "1 Main St",
        "emails": [{"original": "one@example.com"}, {"original": "two@example.com"}],
        "phones": [{"original": "+14155550100", "type": "MOBILE"}]}))
        .await;

    let r = c
        .patch(
            &profile_path("a"),
            &json!({"emails": [{"original": "three@example.com"}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let p = c.get(&profile_path("a")).await.json();
    assert_eq!(
        p["emails"],
        json!([{"original": "three@example.com", "normalized": "three@example.com"}])
    );
    assert_eq!(p["name"], "Ann");
    assert_eq!(p["address"], "1 Main St");
    assert_eq!(p["phones"].as_array().unwrap().len(), 1);
    assert!(p["updatedAt"].as_str().unwrap() >= p["createdAt"].as_str().unwrap());

    // A profile as read can be sent back whole.
    let mut back = p.clone();
    back["name"] = json!("Ann B");
    assert_eq!(c.patch(&profile_path("a"), &back).await.status, 204);
    assert_eq!(c.get(&profile_path("a")).await.json()["name"], "Ann B");

    // An email freed by the first PATCH can be used by another profile.
    assert_eq!(
        c.create(&json!({"emails": [{"original": "one@example.com"}]}))
            .await
            .status,
        201
    );

    let r = c.patch(&profile_path("a"), &json!({"nickname": "A"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.first_error(), (Some("nickname".into()), "invalid".into()));
    assert_eq!(
        c.patch(&profile_path("nobody"), &json!({"name": "x"}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn custom_attributes_merge_or_replace() {
    for (mode, expected) in [
        (
            CustomAttributesPatch::Merge,
            json!({"a": "1", "b": "20", "c": "3"}),
        ),
        (CustomAttributesPatch::Replace, json!({"b": "20", "c": "3"})),
    ] {
        let config = EmulatorConfig {
            switches: Switches {
                custom_attributes_patch: mode,
                ..Switches::default()
            },
            ..fast()
        };
        let em = start_with(config).await;
        let c = Client::new(&em);
        c.create(&json!({"id": "a", "customAttributes": {"a": "1", "b": "2"}}))
            .await;
        c.patch(
            &profile_path("a"),
            &json!({"customAttributes": {"b": "20", "c": "3"}}),
        )
        .await;
        assert_eq!(
            c.get(&profile_path("a")).await.json()["customAttributes"],
            expected,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn errors_as_object_switch() {
    let config = EmulatorConfig {
        switches: Switches {
            errors_shape: ErrorsShape::Object,
            ..Switches::default()
        },
        ..fast()
    };
    let em = start_with(config).await;
    let r = Client::new(&em).get(&profile_path("missing")).await;
    assert_eq!(r.status, 404);
    let body = r.json();
    assert!(body["errors"].is_object(), "{body}");
    assert_eq!(body["errors"]["code"], "not_exist");

    em.set_switches(Switches::default());
    let r = Client::new(&em).get(&profile_path("missing")).await;
    assert!(r.json()["errors"].is_array());
}

#[tokio::test]
async fn index_lag_hides_new_profiles_from_find() {
    let config = EmulatorConfig {
        switches: Switches {
            index_lag: Duration::from_millis(300),
            ..Switches::default()
        },
        ..fast()
    };
    let em = start_with(config).await;
    let c = Client::new(&em);
    c.create(&json!({"id": "a", "emails": [{"original": "lag@example.com"}]}))
        .await;
    let find = "/api/v1/customer-profiles?email=lag%40example.com";
    assert_eq!(c.get(find).await.json(), json!([]));
    // GET by id does not go through the index.
    assert_eq!(c.get(&profile_path("a")).await.status, 200);
    // The unique constraint holds while the index lags.
    assert_eq!(
        c.create(&json!({"emails": [{"original": "lag@example.com"}]}))
            .await
            .status,
        409
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(c.get(find).await.json()[0]["id"], "a");
}

#[tokio::test]
async fn delete_and_open_conversations() {
    let em = start().await;
    let c = Client::new(&em);
    c.create(&json!({"id": "a"})).await;
    em.set_open_conversations("acme", "a", true);
    let r = c.delete(&profile_path("a")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.first_error(),
        (Some("conversation".into()), "invalid_state".into())
    );
    em.set_open_conversations("acme", "a", false);
    let r = c.delete(&profile_path("a")).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(c.get(&profile_path("a")).await.status, 404);
    assert_eq!(c.delete(&profile_path("a")).await.status, 404);
}

#[tokio::test]
async fn rate_limit_per_org_with_headers() {
    let em = gladly_emulator::Emulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let c = Client::new(&em);
    // A fresh emulator's first window lasts a full second: 11 local requests fit easily.
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..11 {
        let r = c.get("/api/v1/organization").await;
        statuses.push(r.status);
        last = Some(r);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    let last = last.unwrap();
    assert_eq!(last.status, 429);
    assert_eq!(last.header("ratelimit-limit-second").as_deref(), Some("10"));
    assert_eq!(
        last.header("ratelimit-remaining-second").as_deref(),
        Some("0")
    );
    assert_eq!(last.header("retry-after"), None);
    // Another organization has its own budget.
    assert_eq!(
        c.clone()
            .host("other.gladly.com")
            .get("/api/v1/organization")
            .await
            .status,
        200
    );
    let recorded = em.requests();
    assert_eq!(recorded.iter().filter(|r| r.status == Some(429)).count(), 1);
    // The next window starts afresh.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(c.get("/api/v1/organization").await.status, 200);
}

#[tokio::test]
async fn retry_after_switch() {
    let config = EmulatorConfig {
        rate_limit_per_second: 1,
        switches: Switches {
            retry_after_on_429: true,
            ..Switches::default()
        },
        ..EmulatorConfig::default()
    };
    let em = gladly_emulator::Emulator::start(config).await.unwrap();
    let c = Client::new(&em);
    assert_eq!(c.get("/api/v1/organization").await.status, 200);
    let r = c.get("/api/v1/organization").await;
    assert_eq!(r.status, 429);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(secs >= 1);
}

#[tokio::test]
async fn requests_are_recorded() {
    let em = start().await;
    let c = Client::new(&em);
    c.create(&json!({"id": "a", "name": "Ann"})).await;
    Client::new(&em)
        .host(&em.addr().to_string())
        .get("/api/v1/organization")
        .await;
    let log = em.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, PROFILES);
    assert_eq!(log[0].org, "acme");
    assert_eq!(log[0].status, Some(201));
    assert_eq!(log[0].body, Some(json!({"id": "a", "name": "Ann"})));
    assert_eq!(log[0].header("content-type"), Some("application/json"));
    assert_eq!(log[1].org, "default");
    assert!(log[1].at >= log[0].at);
    em.clear_requests();
    assert!(em.requests().is_empty());
}

#[tokio::test]
async fn latency_delays_answers() {
    let em = start().await;
    em.set_latency(Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(
        Client::new(&em).get("/api/v1/organization").await.status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(150));
    em.set_latency(Duration::ZERO);
}

#[tokio::test]
async fn captured_bodies_can_be_validated() {
    let em = start().await;
    Client::new(&em)
        .create(&json!({"name": "Ann", "emails": [{"original": "a@example.com"}]}))
        .await;
    for r in em.requests() {
        gladly_emulator::validate_create_body(r.body.as_ref().unwrap()).unwrap();
    }
    assert!(
        gladly_emulator::validate_update_body(&json!({"phones": [{"type": "MOBILE"}]})).is_err()
    );
    em.shutdown().await;
}

/// A POST whose body is chunked (no `Content-Length`), written by hand on a raw connection;
/// returns the status line.
async fn post_chunked(base_url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base_url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"name":"Chunky"}"#;
    let request = format!(
        "POST /api/v1/customer-profiles HTTP/1.1\r\nhost: acme.gladly.com\r\nauthorization: {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        test_kit::emulator::basic_auth("api@example.com", "emulator-token"),
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_chunked_body_is_refused_with_411_by_default() {
    let em = start().await;
    assert_eq!(post_chunked(&em.base_url()).await, "HTTP/1.1 411 Length Required");
    assert!(em.profiles("acme").is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_chunked_body_is_accepted_when_the_switch_allows_it() {
    let config = EmulatorConfig {
        switches: Switches { accept_chunked_bodies: true, ..Switches::default() },
        ..fast()
    };
    let em = start_with(config).await;
    assert_eq!(post_chunked(&em.base_url()).await, "HTTP/1.1 201 Created");
    assert_eq!(em.profiles("acme").len(), 1);
}
