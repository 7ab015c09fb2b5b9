//! Gladly customer-profile types (the OpenAPI `Customer` schema) and canonical JSON.
//!
//! The same types read Gladly's responses and write our bodies, so only known fields round-trip:
//! read-only response fields (`createdAt`, `externalCustomerIds`…) are dropped on purpose.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A customer profile as sent to or read from `/api/v1/customer-profiles`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Gladly customer id (only in create bodies and responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Address, one string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Email addresses.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub emails: Vec<EmailEntry>,
    /// Phone numbers.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub phones: Vec<PhoneEntry>,
    /// Caller's id for the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_customer_id: Option<String>,
    /// Organization-specific attributes.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub custom_attributes: Map<String, Value>,
}

/// One entry of `emails`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailEntry {
    /// The address as entered.
    pub original: String,
    /// Server-computed normalized form (responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized: Option<String>,
    /// Preferred address flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// One entry of `phones`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneEntry {
    /// The number as entered (ours: E.164).
    pub original: String,
    /// Server-computed E.164 form (responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized: Option<String>,
    /// Region used to read `original`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_code: Option<String>,
    /// Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Preferred phone flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// ON, OFF or FORBIDDEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_preference: Option<String>,
    /// HOME, MOBILE or OFFICE; absent (or `""` in responses) when untyped.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl EmailEntry {
    /// The entry as we write it back: without the server-only `normalized`.
    pub fn for_write(&self) -> EmailEntry {
        EmailEntry {
            normalized: None,
            ..self.clone()
        }
    }
}

impl PhoneEntry {
    /// The entry as we write it back: without `normalized` and without an empty `type`, which
    /// are response artifacts outside the request schema.
    pub fn for_write(&self) -> PhoneEntry {
        PhoneEntry {
            normalized: None,
            kind: self.kind.clone().filter(|k| !k.is_empty()),
            ..self.clone()
        }
    }
}

/// Gladly may send `null` for an empty collection; read it as empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Profile {
    /// The profile as a JSON value (no nulls, empty collections omitted).
    pub fn to_value(&self) -> Value {
        // Serializing these plain structs with string keys cannot fail; Null is unreachable.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Canonical JSON of the profile.
    pub fn canonical(&self) -> String {
        canonical(&self.to_value())
    }
}

/// Canonical JSON: object keys sorted at every depth, no whitespace.
///
/// Keys are sorted explicitly so the result stays stable even if another crate in the build
/// turns on serde_json's `preserve_order` feature.
pub fn canonical(value: &Value) -> String {
    let mut v = value.clone();
    sort_keys(&mut v);
    v.to_string()
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_is_sorted_and_compact() {
        let v = json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": "x y"}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"c":"x y","d":[{"y":2,"z":1}]},"b":1}"#
        );
        assert_eq!(canonical(&v), canonical(&v.clone()));
    }

    #[test]
    fn profile_omits_absent_fields() {
        let p = Profile {
            name: Some("Ann".into()),
            emails: vec![EmailEntry {
                original: "a@x.io".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            p.canonical(),
            r#"{"emails":[{"original":"a@x.io"}],"name":"Ann"}"#
        );
    }

    #[test]
    fn reads_gladly_responses() {
        let body = json!({
            "id": "abc", "name": "Ann", "createdAt": "2019-02-21T07:15:18Z",
            "emails": [{"original": "A@x.io", "normalized": "a@x.io", "primary": true}],
            "phones": [{"original": "4155552671", "normalized": "+14155552671", "type": "",
                        "regionCode": "US", "smsPreference": "OFF"}],
            "customAttributes": null,
            "externalCustomerIds": {"ABC": "1"}
        });
        let p: Profile = serde_json::from_value(body).unwrap();
        assert_eq!(p.id.as_deref(), Some("abc"));
        assert!(p.custom_attributes.is_empty());
        let phone = p.phones[0].for_write();
        assert_eq!(phone.kind, None);
        assert_eq!(phone.normalized, None);
        assert_eq!(phone.sms_preference.as_deref(), Some("OFF"));
        assert_eq!(p.emails[0].for_write().primary, Some(true));
    }
}
