//! What the component says about itself (`spec`) and the connection check, as a platform
//! rendering an "add destination" form would use them.

use conformance::gladly_emulator::{DEFAULT_TOKEN, DEFAULT_USER, EmulatorConfig, User};
use conformance::host_harness::error::HostError;
use conformance::host_harness::contract::model::SyncMode;
use conformance::host_harness::contract::spec::Credential;
use conformance::{JobSpec, Session, component};

async fn spec() -> conformance::host_harness::contract::spec::Spec {
    let s = Session::start(Session::fast_emulator()).await;
    s.harness.spec(&component::require_component()).await.expect("spec() answers")
}

/// The target fields, their kinds and which of them identify a customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_lists_the_gladly_target_fields() {
    let spec = spec().await;
    let names: Vec<&str> = spec.target_fields.iter().map(|f| f.name.as_str()).collect();
    for want in ["id", "name", "email", "phone", "mobilePhone", "address", "image", "externalCustomerId", "phoneRegion"] {
        assert!(names.contains(&want), "target {want} missing from {names:?}");
    }
    let email = spec.target_fields.iter().find(|f| f.name == "email").expect("email");
    assert!(email.matchable, "email identifies customers: {email:?}");
    assert!(spec.accepts_custom_fields, "any other target becomes a custom attribute");
}

/// Upsert, insert and update are supported; mirror and every audience mode are refused, each
/// with a reason a person can read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_lists_supported_and_refused_modes_with_reasons() {
    let spec = spec().await;
    let support = |m: SyncMode| spec.modes.iter().find(|s| s.mode == m).unwrap_or_else(|| panic!("{m:?} not listed"));
    for m in [SyncMode::Upsert, SyncMode::Insert, SyncMode::Update] {
        assert!(support(m).supported, "{m:?}");
    }
    assert!(support(SyncMode::Mirror).reason.contains("delet"), "{:?}", support(SyncMode::Mirror));
    for m in [SyncMode::AudienceAdd, SyncMode::AudienceRemove, SyncMode::AudienceMirror, SyncMode::AudienceUpsert] {
        let s = support(m);
        assert!(!s.supported, "{m:?}");
        assert!(s.reason.contains("audience"), "{s:?}");
    }
}

/// Basic credentials (username setting + token secret), Gladly's 10/s and the vendor's 30 s
/// timeout and 3 retries as suggestions, and the settings of the form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_names_credentials_rate_timeout_and_settings() {
    let spec = spec().await;
    assert!(matches!(spec.credential, Credential::Basic { .. }), "{:?}", spec.credential);
    assert_eq!(spec.suggested_rate_per_second, 10);
    assert_eq!(spec.suggested_timeout_ms, 30_000);
    assert_eq!(spec.suggested_max_retries, 3);
    let keys: Vec<&str> = spec.config_fields.iter().map(|f| f.key.as_str()).collect();
    for want in ["domain", "username", "sandbox", "default-region", "custom-attribute-values", "custom-attributes-patch"] {
        assert!(keys.contains(&want), "{want} missing from {keys:?}");
    }
    assert!(spec.config_fields.iter().all(|f| !f.description.is_empty()));
}

async fn check(config: EmulatorConfig, spec: JobSpec) -> Result<(), HostError> {
    let s = Session::start(config).await;
    let tenant = s.prepare(&s.job(&spec)).await?;
    let r = s.harness.check(&tenant).await.map(|_| ());
    let requests = s.requests();
    assert_eq!(requests.len(), 1, "one cheap call:\n{}", s.transcript());
    assert_eq!(requests[0].path, "/api/v1/organization");
    r
}

fn upsert() -> JobSpec {
    JobSpec::new("upsert").map("email", "email")
}

/// The connection check: one `GET /api/v1/organization`; 401 says to check username and
/// token, 403 names the missing API User permission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connection_reports_ok_401_and_403() {
    check(Session::fast_emulator(), upsert()).await.expect("valid credentials pass");

    let e = check(Session::fast_emulator(), upsert().token("wrong")).await.expect_err("a wrong token fails");
    let msg = e.to_string();
    assert!(msg.contains("401") && msg.contains("username") && msg.contains("token"), "{msg}");

    let no_api = EmulatorConfig { users: vec![User::new(DEFAULT_USER, DEFAULT_TOKEN).without_api_permission()], ..Session::fast_emulator() };
    let e = check(no_api, upsert()).await.expect_err("a user without the permission fails");
    let msg = e.to_string();
    assert!(msg.contains("403") && msg.contains("API User permission"), "{msg}");
}

/// `validate-config` reports every problem at once, each naming its key, before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_lists_every_problem_and_sends_nothing() {
    let s = Session::start(Session::fast_emulator()).await;
    let spec = JobSpec::new("update")
        .setting("domain", "https://acme.gladly.com/")
        .setting("username", "not-an-email")
        .setting("default-region", "XX")
        .map("email", "email");
    let e = match s.run(&s.job(&spec)).await {
        Err(e) => e.to_string(),
        Ok(r) => panic!("an invalid job ran: {}", r.summary()),
    };
    for key in ["domain", "username", "default-region", "id"] {
        assert!(e.contains(key), "{key} not named in: {e}");
    }
    assert!(s.requests().is_empty());
}
