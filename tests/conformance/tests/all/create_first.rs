//! Create-first upserts (`create-first = auto`, the default): what a first sync costs by what
//! the organization already holds, counted in the emulator's request log. Batches hold 20 rows
//! (the default `batch_size`); what an instance learned carries into the next batch it serves.

use conformance::{JobSpec, Rows, Session};
use serde_json::json;

/// The methods the emulator received, in order.
fn methods(s: &Session) -> Vec<String> {
    s.requests().into_iter().map(|r| r.method).collect()
}

/// Into an organization holding none of the customers, every row costs its one POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_into_an_empty_organization_costs_one_request_per_row() {
    let s = Session::start(Session::fast_emulator()).await;
    let spec = JobSpec::new("upsert")
        .sync_id("cf-empty")
        .people_mapping()
        .rows(Rows::people("cf", 40));
    let report = s.run_ok(&s.job(&spec)).await;
    assert_eq!(report.counts.created, 40, "{}", report.summary());
    assert_eq!(methods(&s), vec!["POST"; 40], "{}", s.transcript());
    assert_eq!(s.profiles().len(), 40);
}

/// Into an organization that already holds every customer (older names), with one sender (so
/// one instance serves both 20-row batches): the first row meets a taken email (POST, lookup,
/// PATCH: 3 requests), and what that taught the instance carries into the second batch, so the
/// other 39 rows are looked up first (2 each): 81 requests for 40 rows, every customer updated in
/// place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_into_an_organization_holding_every_customer_switches_to_lookups() {
    let mut limits = conformance::job::quick_limits();
    limits.insert("max_concurrency".into(), toml::Value::Integer(1));
    let s = Session::with_limits(Session::fast_emulator(), limits).await;
    for i in 1..=40 {
        s.seed(json!({"name": "Old name", "emails": [{"original": format!("held{i}@example.com")}]}));
    }
    let before = s.profiles();
    let spec = JobSpec::new("upsert").sync_id("cf-held").people_mapping().rows(Rows::people("held", 40));
    let report = s.run_ok(&s.job(&spec)).await;
    assert_eq!((report.counts.updated, report.counts.created), (40, 0), "{}", report.summary());
    assert_eq!(s.requests().len(), 81, "{}", s.transcript());
    assert_eq!(methods(&s).iter().filter(|m| *m == "POST").count(), 1, "{}", s.transcript());
    assert_eq!(s.profiles().len(), 40, "no customer was duplicated");
    assert_eq!(s.profile_by_email("held7@example.com")["name"], json!("Person 7"));
    s.assert_invariants(&before);
}

/// `create-first = off` restores lookup-first: a new customer costs a lookup and a POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_create_first_off_every_new_customer_is_looked_up_first() {
    let s = Session::start(Session::fast_emulator()).await;
    let spec = JobSpec::new("upsert")
        .sync_id("cf-off")
        .people_mapping()
        .setting("create-first", "off")
        .rows(Rows::people("off", 10));
    let report = s.run_ok(&s.job(&spec)).await;
    assert_eq!(report.counts.created, 10, "{}", report.summary());
    assert_eq!(
        methods(&s),
        ["GET", "POST"].repeat(10),
        "{}",
        s.transcript()
    );
}

/// Gladly does not keep the external customer id unique, so a POST cannot tell that a customer
/// with that id exists: a job matching on it looks up first (both keys, then the POST), and
/// the customer another tool created under that id is updated, not duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_on_the_external_id_always_looks_up_first() {
    let s = Session::start(Session::fast_emulator()).await;
    let held = s
        .seed(json!({"externalCustomerId": "ext-1", "emails": [{"original": "old1@example.com"}]}));
    let spec = JobSpec::new("upsert")
        .sync_id("cf-ext")
        .map("id", "externalCustomerId")
        .people_mapping()
        .setting("match-on", "externalCustomerId,email")
        .rows(Rows::csv(
            "id,email,name\next-1,new1@example.com,Ann\next-2,new2@example.com,Bob\n",
        ));
    let report = s.run_ok(&s.job(&spec)).await;
    assert_eq!(
        (report.counts.updated, report.counts.created),
        (1, 1),
        "{}",
        report.summary()
    );
    // ext-1: lookup by external id finds it, PATCH; ext-2: two lookups, then the POST.
    assert_eq!(
        methods(&s),
        ["GET", "PATCH", "GET", "GET", "POST"],
        "{}",
        s.transcript()
    );
    assert_eq!(s.profiles().len(), 2);
    assert_eq!(s.profile_by_email("new1@example.com")["id"], json!(held));
}
