//! Gladly customer-profile types (the OpenAPI `Customer` schema) and canonical JSON.
//!
//! The same types read Gladly's responses and write our bodies, so only known fields round-trip:
//! read-only response fields (`createdAt`, `externalCustomerIds`…) are dropped on purpose.

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A customer profile as sent to or read from `/api/v1/customer-profiles`.
///
/// Fields are declared in the byte order of their JSON names, here and in the entry types:
/// serialized as is, a profile is already its canonical JSON ([`Profile::canonical`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Address, one string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Organization-specific attributes.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        serialize_with = "sorted_map",
        skip_serializing_if = "Map::is_empty"
    )]
    pub custom_attributes: Map<String, Value>,
    /// Email addresses.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub emails: Vec<EmailEntry>,
    /// Caller's id for the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_customer_id: Option<String>,
    /// Gladly customer id (only in create bodies and responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone numbers.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub phones: Vec<PhoneEntry>,
}

/// One entry of `emails`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailEntry {
    /// Server-computed normalized form (responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized: Option<String>,
    /// The address as entered.
    pub original: String,
    /// Preferred address flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// One entry of `phones`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneEntry {
    /// Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Server-computed E.164 form (responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized: Option<String>,
    /// The number as entered (ours: E.164).
    pub original: String,
    /// Preferred phone flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Region used to read `original`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_code: Option<String>,
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

    /// Canonical JSON of the profile: object keys in byte order at every depth, no whitespace.
    /// It is the stored payload and the fingerprint's input, so its bytes must never change for
    /// the same profile. Written straight from the fields (declared in that order), without an
    /// intermediate JSON value: this runs for every row of every sync (BENCHMARKS.md, Planning).
    pub fn canonical(&self) -> String {
        // Plain structs with string keys: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `customAttributes` with its keys in byte order at every depth, whatever order the map keeps
/// (serde_json's `preserve_order`, if any crate in the build turned it on, keeps insertion order).
fn sorted_map<S: Serializer>(map: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = s.serialize_map(Some(entries.len()))?;
    for (k, v) in entries {
        out.serialize_entry(k, &Sorted(v))?;
    }
    out.end()
}

/// A JSON value serialized with object keys in byte order, without copying it.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => sorted_map(map, s),
            Value::Array(items) => s.collect_seq(items.iter().map(Sorted)),
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_nested_attribute_keys() {
        let p = Profile {
            custom_attributes: json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": "x y"}})
                .as_object()
                .unwrap()
                .clone(),
            ..Default::default()
        };
        assert_eq!(
            p.canonical(),
            r#"{"customAttributes":{"a":{"c":"x y","d":[{"y":2,"z":1}]},"b":1}}"#
        );
    }

    /// Every field set: the bytes a stored payload (and so every fingerprint) was made of before
    /// the canonical form was written straight from the fields. Changing them would make every
    /// row of every existing state look changed.
    #[test]
    fn canonical_bytes_of_a_full_profile() {
        let p = Profile {
            address: Some("1 Main St".into()),
            custom_attributes: json!({"tier": "gold", "ltv": "12.5"}).as_object().unwrap().clone(),
            emails: vec![EmailEntry {
                normalized: Some("a@x.io".into()),
                original: "A@x.io".into(),
                primary: Some(true),
            }],
            external_customer_id: Some("c-1".into()),
            id: Some("abc".into()),
            image: Some("https://x.io/a.png".into()),
            name: Some("Ann".into()),
            phones: vec![PhoneEntry {
                extension: Some("12".into()),
                normalized: Some("+14155552671".into()),
                original: "+14155552671".into(),
                primary: Some(false),
                region_code: Some("US".into()),
                sms_preference: Some("ON".into()),
                kind: Some("MOBILE".into()),
            }],
        };
        assert_eq!(
            p.canonical(),
            concat!(
                r#"{"address":"1 Main St","customAttributes":{"ltv":"12.5","tier":"gold"},"#,
                r#""emails":[{"normalized":"a@x.io","original":"A@x.io","primary":true}],"#,
                r#""externalCustomerId":"c-1","id":"abc","image":"https://x.io/a.png","name":"Ann","#,
                r#""phones":[{"extension":"12","normalized":"+14155552671","original":"+14155552671","#,
                r#""primary":false,"regionCode":"US","smsPreference":"ON","type":"MOBILE"}]}"#
            )
        );
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
