//! Updates across runs: what a second run sends once the host remembers what Gladly confirmed.

use conformance::gladly_emulator::{CustomAttributesPatch, EmulatorConfig, Switches};
use conformance::{JobSpec, Rows, Session};
use serde_json::json;

/// Two runs changing a mapped custom attribute, against an emulator whose PATCH treats
/// `customAttributes` as `patch` says, with the component's `custom-attributes-patch` set to
/// `setting` (`None`: left at its default).
/// Returns the attributes at the end and the methods the second run sent.
async fn attributes_after_two_runs(
    patch: CustomAttributesPatch,
    setting: Option<&str>,
) -> (serde_json::Value, Vec<String>) {
    let switches = Switches { custom_attributes_patch: patch, ..Switches::default() };
    let s = Session::start(EmulatorConfig { switches, ..Session::fast_emulator() }).await;
    s.seed(json!({"id": "agent-owned", "emails": [{"original": "ola@example.com"}],
        "customAttributes": {"loyalty": "12", "plan": "bronze"}}));
    let before = s.profiles();
    let mut spec = JobSpec::new("upsert").sync_id("attrs").map("email", "email").map("plan", "plan");
    if let Some(setting) = setting {
        spec = spec.setting("custom-attributes-patch", setting);
    }
    let mut second_run = Vec::new();
    for plan in ["silver", "gold"] {
        let sent_before = s.requests().len();
        let spec = spec.clone().rows(Rows::csv(&format!("id,email,plan\n1,ola@example.com,{plan}\n")));
        let report = s.run_ok(&s.job(&spec)).await;
        assert!(report.failures.is_empty(), "{:#?}", report.failures);
        assert_eq!(report.counts.updated, 1, "{}", report.summary());
        second_run = s.requests().into_iter().skip(sent_before).map(|r| r.method).collect();
    }
    s.assert_invariants(&before);
    (s.profile_by_email("ola@example.com")["customAttributes"].clone(), second_run)
}

/// A second run changing only a mapped custom attribute keeps the keys agents own, whether
/// Gladly merges `customAttributes` on PATCH or replaces it whole (emulator switch), once the
/// component's `custom-attributes-patch` says which. Where PATCH merges it costs one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_keeps_foreign_custom_attributes_under_merge() {
    let (attributes, second_run) = attributes_after_two_runs(CustomAttributesPatch::Merge, Some("merge")).await;
    assert_eq!(attributes, json!({"loyalty": "12", "plan": "gold"}));
    assert_eq!(second_run, ["PATCH"], "a known id and a merging PATCH need no read");
}

/// See [`second_run_keeps_foreign_custom_attributes_under_merge`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_keeps_foreign_custom_attributes_under_replace() {
    let (attributes, second_run) = attributes_after_two_runs(CustomAttributesPatch::Replace, Some("replace")).await;
    assert_eq!(attributes, json!({"loyalty": "12", "plan": "gold"}));
    assert_eq!(second_run, ["GET", "PATCH"], "where PATCH replaces the map, the profile is read first");
}

/// With the component's settings left at their defaults, an organization whose PATCH replaces
/// `customAttributes` keeps the attribute an agent set across two runs: the default assumes the
/// stricter server and reads the profile before changing an attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_settings_keep_an_agent_attribute_against_a_replacing_org() {
    let (attributes, second_run) = attributes_after_two_runs(CustomAttributesPatch::Replace, None).await;
    assert_eq!(attributes, json!({"loyalty": "12", "plan": "gold"}));
    assert_eq!(second_run, ["GET", "PATCH"], "the default reads the profile before changing an attribute");
}

/// A second run changing only the name of a known profile costs one request (the PATCH), and
/// an unchanged row costs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_sends_only_what_changed() {
    let s = Session::start(Session::fast_emulator()).await;
    let spec = JobSpec::new("upsert").sync_id("cheap").people_mapping();
    let report = s.run_ok(&s.job(&spec.clone().rows(Rows::people("cheap", 3)))).await;
    assert_eq!(report.counts.created, 3, "{}", report.summary());
    let first = s.requests().len();
    let rows = Rows::csv("id,email,name\ncheap-1,cheap1@example.com,Renamed\ncheap-2,cheap2@example.com,Person 2\ncheap-3,cheap3@example.com,Person 3\n");
    let report = s.run_ok(&s.job(&spec.rows(rows))).await;
    assert_eq!(report.counts.updated, 1, "{}", report.summary());
    assert_eq!(report.counts.unchanged, 2, "{}", report.summary());
    let second: Vec<_> = s.requests().into_iter().skip(first).collect();
    assert_eq!(second.len(), 1, "{}", s.transcript());
    assert_eq!(second[0].method, "PATCH");
    assert_eq!(second[0].body, Some(json!({"name": "Renamed"})));
    assert_eq!(s.profile_by_email("cheap1@example.com")["name"], "Renamed");
    s.assert_invariants(&[]);
}
