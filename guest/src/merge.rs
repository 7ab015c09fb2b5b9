//! What to PATCH: merged email/phone arrays and the top-level fields that differ.
//!
//! Gladly replaces `emails` and `phones` whole on PATCH, so sending only the warehouse's values
//! would drop addresses agents added. We keep every existing entry and append ours that are not
//! there yet, comparing emails case-insensitively and phones by E.164. Nothing is ever removed.

use serde_json::{Map, Value};

use crate::email;
use crate::phone;
use crate::profile::{EmailEntry, PhoneEntry, Profile};

/// The existing emails plus ours not already present; `None` when nothing was added.
pub fn merge_emails(existing: &[EmailEntry], ours: &[EmailEntry]) -> Option<Vec<EmailEntry>> {
    let mut keys: Vec<String> = existing
        .iter()
        .map(|e| email::key(e.normalized.as_deref().unwrap_or(&e.original)))
        .collect();
    let mut merged: Vec<EmailEntry> = existing.iter().map(EmailEntry::for_write).collect();
    for e in ours {
        let key = email::key(&e.original);
        if !keys.contains(&key) {
            keys.push(key);
            merged.push(e.for_write());
        }
    }
    (merged.len() > existing.len()).then_some(merged)
}

/// The existing phones plus ours not already present (by E.164); `None` when nothing was added.
pub fn merge_phones(existing: &[PhoneEntry], ours: &[PhoneEntry]) -> Option<Vec<PhoneEntry>> {
    let mut keys: Vec<String> = existing
        .iter()
        .map(|p| {
            phone::existing_key(
                &p.original,
                p.normalized.as_deref(),
                p.region_code.as_deref(),
            )
        })
        .collect();
    let mut merged: Vec<PhoneEntry> = existing.iter().map(PhoneEntry::for_write).collect();
    for p in ours {
        // Ours are E.164 already (mapping normalized them).
        if !keys.contains(&p.original) {
            keys.push(p.original.clone());
            merged.push(p.for_write());
        }
    }
    (merged.len() > existing.len()).then_some(merged)
}

/// Whether any of our attributes is missing or different in `base`.
fn attributes_differ(base: &Map<String, Value>, ours: &Map<String, Value>) -> bool {
    ours.iter().any(|(k, v)| base.get(k) != Some(v))
}

/// Top-level text fields we set that differ from `base`.
fn scalar_changes(base: &Profile, desired: &Profile, patch: &mut Map<String, Value>) {
    let fields = [
        ("name", &base.name, &desired.name),
        ("image", &base.image, &desired.image),
        ("address", &base.address, &desired.address),
        (
            "externalCustomerId",
            &base.external_customer_id,
            &desired.external_customer_id,
        ),
    ];
    for (name, old, new) in fields {
        if let Some(new) = new.as_ref().filter(|n| old.as_ref() != Some(*n)) {
            patch.insert(name.to_string(), Value::String(new.clone()));
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    // Plain structs with string keys always serialize.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The PATCH body against the profile as read from Gladly; empty when nothing differs.
///
/// `customAttributes` is sent as the full intended map (existing keys plus ours) because Gladly
/// does not document whether it merges or replaces the object.
pub fn patch_against_read(current: &Profile, desired: &Profile) -> Map<String, Value> {
    let mut patch = Map::new();
    scalar_changes(current, desired, &mut patch);
    if let Some(emails) = merge_emails(&current.emails, &desired.emails) {
        patch.insert("emails".to_string(), to_value(&emails));
    }
    if let Some(phones) = merge_phones(&current.phones, &desired.phones) {
        patch.insert("phones".to_string(), to_value(&phones));
    }
    if attributes_differ(&current.custom_attributes, &desired.custom_attributes) {
        let mut full = current.custom_attributes.clone();
        full.extend(desired.custom_attributes.clone());
        patch.insert("customAttributes".to_string(), Value::Object(full));
    }
    patch
}

/// The PATCH body against the payload Gladly last confirmed, when no read is needed: only when
/// our emails and phones are exactly those confirmed (so the arrays need no merge). `None`
/// means a read is needed; an empty map means nothing changed.
///
/// A changed custom attribute needs no read when the organization merges `customAttributes`
/// on PATCH (`merges_attributes`): our map is sent and its other keys stay. Where PATCH
/// replaces the map whole, the profile's other keys are unknown without a read and would be
/// lost, so a read is needed (shown by the conformance test
/// `updates::second_run_keeps_foreign_custom_attributes_under_replace`).
pub fn patch_against_previous(
    previous: &Profile,
    desired: &Profile,
    merges_attributes: bool,
) -> Option<Map<String, Value>> {
    let attributes_changed =
        attributes_differ(&previous.custom_attributes, &desired.custom_attributes);
    if previous.emails != desired.emails
        || previous.phones != desired.phones
        || (attributes_changed && !merges_attributes)
    {
        return None;
    }
    let mut patch = Map::new();
    scalar_changes(previous, desired, &mut patch);
    if attributes_changed {
        patch.insert(
            "customAttributes".to_string(),
            Value::Object(desired.custom_attributes.clone()),
        );
    }
    Some(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn em(s: &str) -> EmailEntry {
        EmailEntry {
            original: s.into(),
            ..Default::default()
        }
    }

    fn ph(s: &str, kind: Option<&str>) -> PhoneEntry {
        PhoneEntry {
            original: s.into(),
            region_code: Some("US".into()),
            kind: kind.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn emails_merge_case_insensitively() {
        let existing = vec![EmailEntry {
            original: "Ann@X.io".into(),
            normalized: Some("ann@x.io".into()),
            primary: Some(true),
        }];
        assert_eq!(merge_emails(&existing, &[em("ann@x.io")]), None);
        let merged = merge_emails(&existing, &[em("ann@x.io"), em("b@y.io")]).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].original, "Ann@X.io");
        assert_eq!(merged[0].primary, Some(true));
        assert_eq!(merged[0].normalized, None);
        assert_eq!(merged[1].original, "b@y.io");
    }

    #[test]
    fn phones_merge_by_e164() {
        let existing = vec![PhoneEntry {
            original: "(415) 555-2671".into(),
            kind: Some(String::new()),
            ..Default::default()
        }];
        assert_eq!(
            merge_phones(&existing, &[ph("+14155552671", Some("MOBILE"))]),
            None
        );
        let merged = merge_phones(&existing, &[ph("+14155550000", None)]).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].kind, None, "empty type is not written back");
    }

    #[test]
    fn patch_only_changed_fields() {
        let current: Profile = serde_json::from_value(json!({
            "id": "c1", "name": "Ann", "address": "old",
            "emails": [{"original": "a@x.io", "normalized": "a@x.io"}],
            "customAttributes": {"other": "keep", "tier": "silver"}
        }))
        .unwrap();
        let desired = Profile {
            name: Some("Ann".into()),
            address: Some("new".into()),
            emails: vec![em("A@x.io")],
            custom_attributes: serde_json::from_value(json!({"tier": "gold"})).unwrap(),
            ..Default::default()
        };
        let patch = patch_against_read(&current, &desired);
        assert_eq!(
            Value::Object(patch),
            json!({"address": "new", "customAttributes": {"other": "keep", "tier": "gold"}})
        );
        let same = Profile {
            address: Some("old".into()),
            custom_attributes: Map::new(),
            ..desired
        };
        assert!(patch_against_read(&current, &same).is_empty());
    }

    #[test]
    fn previous_fast_path() {
        let previous = Profile {
            name: Some("Ann".into()),
            emails: vec![em("a@x.io")],
            custom_attributes: serde_json::from_value(json!({"tier": "silver", "n": "1"})).unwrap(),
            ..Default::default()
        };
        let mut desired = previous.clone();
        assert_eq!(
            patch_against_previous(&previous, &desired, true),
            Some(Map::new())
        );
        desired.name = Some("Ann Lee".into());
        let patch = patch_against_previous(&previous, &desired, true).unwrap();
        assert_eq!(Value::Object(patch), json!({"name": "Ann Lee"}));
        // A changed custom attribute: one PATCH with our map where the organization merges it,
        // a read first where PATCH replaces the map whole.
        let mut changed = desired.clone();
        changed
            .custom_attributes
            .insert("tier".into(), json!("gold"));
        let patch = patch_against_previous(&previous, &changed, true).unwrap();
        assert_eq!(
            Value::Object(patch),
            json!({"name": "Ann Lee", "customAttributes": {"tier": "gold", "n": "1"}})
        );
        assert_eq!(patch_against_previous(&previous, &changed, false), None);
        desired.emails.push(em("b@x.io"));
        assert_eq!(patch_against_previous(&previous, &desired, true), None);
    }
}
