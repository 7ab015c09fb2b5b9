//! One test per scenario folder under `tests/conformance/scenarios/` (each runs the component in the host
//! against the emulator, compares with the folder's `expected.json` and checks every invariant
//! of `conformance::checks::all`), and a test that no folder lacks its test.

use conformance::scenario;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                scenario::run(stringify!($name)).await;
            }
        )*

        /// Every scenario this file runs.
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

scenarios! {
    ambiguous_email_match,
    array_merge_keeps_existing_contacts,
    auth_user_without_api_permission,
    auth_wrong_token,
    bad_rows_bad_phone,
    bad_rows_duplicate_keys,
    bad_rows_empty_input,
    bad_rows_huge_values,
    bad_rows_missing_email,
    bad_rows_non_utf8_csv,
    bad_rows_wrong_types,
    conflict_email_taken_on_update,
    conflict_mobile_phone_taken_on_create,
    domain_cluster_accepted,
    domain_full_url,
    domain_other_host,
    domain_sandbox_host_typed,
    domain_whole_host_typed,
    domain_with_path,
    domain_with_port,
    email_trimmed_and_validated,
    insert_creates_only,
    mapping_custom_attributes_as_strings,
    mapping_custom_attributes_typed,
    mapping_standard_fields,
    merged_profile_update_mode,
    merged_profile_upsert_falls_back_to_email,
    mode_audience_add_refused,
    mode_audience_mirror_refused,
    mode_audience_remove_refused,
    mode_audience_upsert_refused,
    mode_mirror_refused,
    phone_default_region_and_row_region,
    phone_e164_default_region_us,
    sandbox_false_production_host,
    sandbox_true,
    switch_custom_attributes_merge,
    switch_custom_attributes_replace,
    switch_errors_as_array,
    switch_errors_as_object,
    switch_index_lag_after_create,
    switch_retry_after_false,
    switch_retry_after_true,
    update_by_gladly_id,
    update_requires_gladly_id,
    upsert_requires_email_mapping,
    mapping_target_typo_refused,
    match_on_ambiguous_external_id,
    match_on_ambiguous_phone,
    match_on_external_id_updates_a_changed_email,
    match_on_falls_through_to_the_next_key,
    match_on_no_match_creates,
    match_on_phone_finds_a_mobile_written_differently,
    match_on_unmapped_key_refused,
    upsert_creates_and_updates,
}

#[test]
fn every_scenario_folder_has_a_test() {
    let folders = scenario::scenario_names();
    let missing: Vec<&String> = folders.iter().filter(|f| !LISTED.contains(&f.as_str())).collect();
    assert!(missing.is_empty(), "scenario folders without a test in tests/conformance/tests/all/scenarios.rs: {missing:?}");
    let stale: Vec<&&str> = LISTED.iter().filter(|n| !folders.iter().any(|f| f == *n)).collect();
    assert!(stale.is_empty(), "tests naming a scenario folder that does not exist: {stale:?}");
    assert!(folders.len() >= 40, "only {} scenario folders found in {}", folders.len(), scenario::scenarios_dir().display());
}

#[test]
fn every_scenario_folder_loads() {
    for name in scenario::scenario_names() {
        let sc = scenario::Scenario::load(&name);
        assert!(sc.job.description.is_some(), "{name}/job.toml has no description");
    }
}
