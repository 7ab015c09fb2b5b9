//! One organization's customer profiles: uniqueness, merges, search and the stored shape.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value, json};

use crate::clock::rfc3339_millis;
use crate::config::CustomAttributesPatch;
use crate::index::ValueIndex;
use crate::normalize::{normalize_email, normalize_phone};

/// Most profiles a find returns.
pub(crate) const FIND_LIMIT: usize = 50;

/// Top-level fields a client may write; everything else in a body is read-only and ignored.
const WRITABLE: [&str; 7] = [
    "name",
    "image",
    "address",
    "emails",
    "phones",
    "externalCustomerId",
    "customAttributes",
];

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// A unique value is already held by another profile.
    #[error("{attr} value {value} is already used by another profile")]
    Taken {
        /// `id`, `emails` or `phones`.
        attr: &'static str,
        /// The conflicting (normalized) value.
        value: String,
    },
    /// No live profile has this id.
    #[error("no customer profile with id {0}")]
    NotFound(String),
    /// The id was merged into another profile.
    #[error("customer profile {old} now lives at {new}")]
    Moved {
        /// The requested id.
        old: String,
        /// Where the profile lives now.
        new: String,
    },
    /// The profile has open conversations and cannot be deleted.
    #[error("profile {0} still has open conversations")]
    OpenConversations(String),
    /// A value could not be normalized.
    #[error("{detail}")]
    Invalid {
        /// The field at fault.
        attr: String,
        /// Why.
        detail: String,
    },
}

/// How to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FindBy {
    /// By normalized email.
    Email(String),
    /// By E.164 phone number.
    Phone(String),
    /// By `externalCustomerId`.
    ExternalId(String),
}

#[derive(Debug, Clone)]
struct Profile {
    id: String,
    fields: Map<String, Value>,
    created_at: SystemTime,
    updated_at: SystemTime,
    created_seq: u64,
    updated_seq: u64,
    // A fresh profile stays out of search results until then (search-index lag).
    visible_at: Instant,
    open_conversations: bool,
}

impl Profile {
    fn render(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), Value::String(self.id.clone()));
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        out.insert(
            "createdAt".into(),
            Value::String(rfc3339_millis(self.created_at)),
        );
        out.insert(
            "updatedAt".into(),
            Value::String(rfc3339_millis(self.updated_at)),
        );
        Value::Object(out)
    }

    fn emails(&self) -> impl Iterator<Item = &str> {
        normalized_values(&self.fields, "emails", false)
    }

    fn mobiles(&self) -> impl Iterator<Item = &str> {
        normalized_values(&self.fields, "phones", true)
    }

    fn phones(&self) -> impl Iterator<Item = &str> {
        normalized_values(&self.fields, "phones", false)
    }

    fn external_id(&self) -> Option<&str> {
        self.fields.get("externalCustomerId").and_then(Value::as_str)
    }
}

/// The searchable values of the live profiles. Every change to a live profile's fields goes
/// through [`Indexes::remove`] before and [`Indexes::add`] after.
#[derive(Debug, Default)]
struct Indexes {
    emails: ValueIndex,
    // every phone, whatever its type (finds match any; uniqueness then checks MOBILE)
    phones: ValueIndex,
    external_ids: ValueIndex,
}

impl Indexes {
    fn add(&mut self, p: &Profile) {
        p.emails().for_each(|e| self.emails.insert(e, &p.id));
        p.phones().for_each(|n| self.phones.insert(n, &p.id));
        if let Some(x) = p.external_id() {
            self.external_ids.insert(x, &p.id);
        }
    }

    fn remove(&mut self, p: &Profile) {
        p.emails().for_each(|e| self.emails.remove(e, &p.id));
        p.phones().for_each(|n| self.phones.remove(n, &p.id));
        if let Some(x) = p.external_id() {
            self.external_ids.remove(x, &p.id);
        }
    }
}

/// The `normalized` values of a list field; for phones, optionally only MOBILE ones.
fn normalized_values<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
    mobile_only: bool,
) -> impl Iterator<Item = &'a str> {
    fields
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |item| {
            !mobile_only || item.get("type").and_then(Value::as_str) == Some("MOBILE")
        })
        .filter_map(|item| item.get("normalized").and_then(Value::as_str))
}

/// Turns a (validated) body into the stored form of its writable fields: emails and phones get
/// `normalized`, untyped phones get `type: ""`, read-only fields are dropped. With `strict` off
/// (seed data) an unreadable phone keeps its original text as normalized value.
pub(crate) fn normalize_fields(
    body: &Map<String, Value>,
    strict: bool,
) -> Result<Map<String, Value>, StoreError> {
    let mut out = Map::new();
    for key in WRITABLE {
        let Some(value) = body.get(key) else { continue };
        let stored = match key {
            "emails" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(normalize_email_entry)
                    .collect(),
            ),
            "phones" => {
                let mut list = Vec::new();
                for (i, phone) in value.as_array().into_iter().flatten().enumerate() {
                    list.push(normalize_phone_entry(i, phone, strict)?);
                }
                Value::Array(list)
            }
            _ => value.clone(),
        };
        out.insert(key.to_string(), stored);
    }
    Ok(out)
}

fn normalize_email_entry(entry: &Value) -> Value {
    let original = entry
        .get("original")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut e = Map::new();
    e.insert("original".into(), json!(original));
    e.insert("normalized".into(), json!(normalize_email(original)));
    if let Some(p) = entry.get("primary") {
        e.insert("primary".into(), p.clone());
    }
    Value::Object(e)
}

fn normalize_phone_entry(index: usize, entry: &Value, strict: bool) -> Result<Value, StoreError> {
    let original = entry
        .get("original")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let region = entry.get("regionCode").and_then(Value::as_str);
    let normalized = match normalize_phone(original, region) {
        Ok(n) => n,
        Err(detail) if strict => {
            return Err(StoreError::Invalid {
                attr: format!("phones[{index}].original"),
                detail,
            });
        }
        Err(_) => original.trim().to_string(),
    };
    let mut p = Map::new();
    p.insert("original".into(), json!(original));
    p.insert("normalized".into(), json!(normalized));
    for key in ["regionCode", "extension", "primary", "smsPreference"] {
        if let Some(v) = entry.get(key) {
            p.insert(key.into(), v.clone());
        }
    }
    let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
    p.insert("type".into(), json!(kind));
    Ok(Value::Object(p))
}

/// What an id refers to.
enum Resolved<'a> {
    Live(&'a Profile),
    Moved(String),
    Missing,
}

/// The profiles of one organization.
#[derive(Debug, Default)]
pub(crate) struct OrgStore {
    profiles: HashMap<String, Profile>,
    // merged-away id -> id it was merged into (may chain)
    merged: HashMap<String, String>,
    indexes: Indexes,
    seq: u64,
}

impl OrgStore {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Whether an id is in use, counting ids merged away (they still redirect).
    pub(crate) fn id_in_use(&self, id: &str) -> bool {
        self.profiles.contains_key(id) || self.merged.contains_key(id)
    }

    fn resolve(&self, id: &str) -> Resolved<'_> {
        if let Some(p) = self.profiles.get(id) {
            return Resolved::Live(p);
        }
        let mut current = id;
        // Bounded walk: merge chains are short, and a cycle must not hang a request.
        for _ in 0..64 {
            match self.merged.get(current) {
                Some(next) => {
                    if self.profiles.contains_key(next) {
                        return Resolved::Moved(next.clone());
                    }
                    current = next;
                }
                None => return Resolved::Missing,
            }
        }
        Resolved::Missing
    }

    /// Refuses emails and MOBILE phones that another profile already holds.
    fn check_unique(
        &self,
        fields: &Map<String, Value>,
        except: Option<&str>,
    ) -> Result<(), StoreError> {
        for e in normalized_values(fields, "emails", false) {
            if self.indexes.emails.ids(e).any(|id| Some(id) != except) {
                return Err(StoreError::Taken {
                    attr: "emails",
                    value: e.to_string(),
                });
            }
        }
        for m in normalized_values(fields, "phones", true) {
            let held_as_mobile = self
                .indexes
                .phones
                .ids(m)
                .filter(|id| Some(*id) != except)
                .filter_map(|id| self.profiles.get(id))
                .any(|p| p.mobiles().any(|x| x == m));
            if held_as_mobile {
                return Err(StoreError::Taken {
                    attr: "phones",
                    value: m.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Adds a profile; `fields` come from [`normalize_fields`].
    pub(crate) fn create(
        &mut self,
        id: String,
        fields: Map<String, Value>,
        now: SystemTime,
        visible_at: Instant,
    ) -> Result<(), StoreError> {
        if self.id_in_use(&id) {
            return Err(StoreError::Taken {
                attr: "id",
                value: id,
            });
        }
        self.check_unique(&fields, None)?;
        self.put(id, fields, now, visible_at);
        Ok(())
    }

    /// Adds or overwrites a profile without any check (seed data).
    pub(crate) fn put(
        &mut self,
        id: String,
        fields: Map<String, Value>,
        now: SystemTime,
        visible_at: Instant,
    ) {
        let seq = self.next_seq();
        self.merged.remove(&id);
        if let Some(old) = self.profiles.remove(&id) {
            self.indexes.remove(&old);
        }
        let profile = Profile {
            id: id.clone(),
            fields,
            created_at: now,
            updated_at: now,
            created_seq: seq,
            updated_seq: seq,
            visible_at,
            open_conversations: false,
        };
        self.indexes.add(&profile);
        self.profiles.insert(id, profile);
    }

    /// The profiles matching a search, visible at `now`, newest update first, at most [`FIND_LIMIT`].
    pub(crate) fn find(&self, by: &FindBy, now: Instant) -> Vec<Value> {
        let ids = match by {
            FindBy::Email(e) => self.indexes.emails.ids(e),
            FindBy::Phone(n) => self.indexes.phones.ids(n),
            FindBy::ExternalId(x) => self.indexes.external_ids.ids(x),
        };
        let mut hits: Vec<&Profile> = ids
            .filter_map(|id| self.profiles.get(id))
            .filter(|p| p.visible_at <= now)
            .collect();
        hits.sort_by_key(|p| std::cmp::Reverse((p.updated_at, p.updated_seq)));
        hits.into_iter()
            .take(FIND_LIMIT)
            .map(Profile::render)
            .collect()
    }

    /// One profile as the API returns it.
    pub(crate) fn get(&self, id: &str) -> Result<Value, StoreError> {
        match self.resolve(id) {
            Resolved::Live(p) => Ok(p.render()),
            Resolved::Moved(new) => Err(StoreError::Moved {
                old: id.to_string(),
                new,
            }),
            Resolved::Missing => Err(StoreError::NotFound(id.to_string())),
        }
    }

    /// Applies a PATCH; `patch` comes from [`normalize_fields`]. A merged id is not found.
    pub(crate) fn update(
        &mut self,
        id: &str,
        patch: Map<String, Value>,
        custom_attributes: CustomAttributesPatch,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let Some(current) = self.profiles.get(id) else {
            return Err(StoreError::NotFound(id.to_string()));
        };
        let mut fields = current.fields.clone();
        for (key, value) in patch {
            match (
                key.as_str(),
                custom_attributes,
                fields.get_mut("customAttributes"),
            ) {
                ("customAttributes", CustomAttributesPatch::Merge, Some(Value::Object(stored))) => {
                    if let Value::Object(new) = value {
                        stored.extend(new);
                    }
                }
                _ => {
                    fields.insert(key, value);
                }
            }
        }
        self.check_unique(&fields, Some(id))?;
        let seq = self.next_seq();
        if let Some(p) = self.profiles.get_mut(id) {
            self.indexes.remove(p);
            p.fields = fields;
            self.indexes.add(p);
            p.updated_at = now.max(p.updated_at);
            p.updated_seq = seq;
        }
        Ok(())
    }

    /// Removes a profile unless it has open conversations. A merged id is not found.
    pub(crate) fn delete(&mut self, id: &str) -> Result<(), StoreError> {
        match self.profiles.get(id) {
            None => Err(StoreError::NotFound(id.to_string())),
            Some(p) if p.open_conversations => Err(StoreError::OpenConversations(id.to_string())),
            Some(_) => {
                if let Some(p) = self.profiles.remove(id) {
                    self.indexes.remove(&p);
                }
                Ok(())
            }
        }
    }

    /// Merges `from` into `into` the way an agent merge would: `into` keeps its values and gains
    /// the emails, phones, attributes and fields it lacked; `from` then redirects to `into`.
    pub(crate) fn merge(&mut self, from: &str, into: &str, now: SystemTime) -> bool {
        if from == into || !self.profiles.contains_key(into) {
            return false;
        }
        let Some(src) = self.profiles.remove(from) else {
            return false;
        };
        self.indexes.remove(&src);
        let seq = self.next_seq();
        if let Some(dst) = self.profiles.get_mut(into) {
            self.indexes.remove(dst);
            for list in ["emails", "phones"] {
                let have: HashSet<String> = normalized_values(&dst.fields, list, false)
                    .map(str::to_string)
                    .collect();
                let extra: Vec<Value> = src
                    .fields
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|item| {
                        item.get("normalized")
                            .and_then(Value::as_str)
                            .is_some_and(|n| !have.contains(n))
                    })
                    .cloned()
                    .collect();
                if !extra.is_empty() {
                    let entry = dst.fields.entry(list).or_insert_with(|| json!([]));
                    if let Value::Array(items) = entry {
                        items.extend(extra);
                    }
                }
            }
            if let Some(Value::Object(src_attrs)) = src.fields.get("customAttributes") {
                let entry = dst
                    .fields
                    .entry("customAttributes")
                    .or_insert_with(|| json!({}));
                if let Value::Object(dst_attrs) = entry {
                    for (k, v) in src_attrs {
                        dst_attrs.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            for key in ["name", "image", "address", "externalCustomerId"] {
                if let Some(v) = src.fields.get(key) {
                    dst.fields.entry(key).or_insert_with(|| v.clone());
                }
            }
            self.indexes.add(dst);
            dst.open_conversations |= src.open_conversations;
            dst.updated_at = now.max(dst.updated_at);
            dst.updated_seq = seq;
        }
        self.merged.insert(from.to_string(), into.to_string());
        true
    }

    /// Sets the open-conversations flag; false when there is no such profile.
    pub(crate) fn set_open_conversations(&mut self, id: &str, open: bool) -> bool {
        match self.profiles.get_mut(id) {
            Some(p) => {
                p.open_conversations = open;
                true
            }
            None => false,
        }
    }

    /// Every live profile, oldest first.
    pub(crate) fn all(&self) -> Vec<Value> {
        let mut list: Vec<&Profile> = self.profiles.values().collect();
        list.sort_by_key(|p| p.created_seq);
        list.into_iter().map(Profile::render).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Map<String, Value> {
        normalize_fields(v.as_object().unwrap(), true).unwrap()
    }

    #[test]
    fn uniqueness_and_merge() {
        let now = SystemTime::now();
        let t = Instant::now();
        let mut s = OrgStore::default();
        s.create(
            "a".into(),
            fields(json!({"emails":[{"original":"X@y.com"}],
            "phones":[{"original":"4155550100","type":"MOBILE"}, {"original":"4155550199"}]})),
            now,
            t,
        )
        .unwrap();
        let e = s.create(
            "b".into(),
            fields(json!({"emails":[{"original":"x@Y.com "}]})),
            now,
            t,
        );
        assert_eq!(
            e,
            Err(StoreError::Taken {
                attr: "emails",
                value: "x@y.com".into()
            })
        );
        let e = s.create(
            "b".into(),
            fields(json!({"phones":[{"original":"+14155550100","type":"MOBILE"}]})),
            now,
            t,
        );
        assert!(matches!(e, Err(StoreError::Taken { attr: "phones", .. })));
        // A HOME phone may be shared.
        s.create(
            "b".into(),
            fields(json!({"phones":[{"original":"+14155550199","type":"HOME"}]})),
            now,
            t,
        )
        .unwrap();
        assert_eq!(s.find(&FindBy::Phone("+14155550199".into()), t).len(), 2);
        assert!(s.merge("b", "a", now));
        assert_eq!(
            s.get("b"),
            Err(StoreError::Moved {
                old: "b".into(),
                new: "a".into()
            })
        );
        assert_eq!(
            s.update("b", Map::new(), CustomAttributesPatch::Merge, now),
            Err(StoreError::NotFound("b".into()))
        );
        assert!(matches!(
            s.create("b".into(), Map::new(), now, t),
            Err(StoreError::Taken { attr: "id", .. })
        ));
        let a = s.get("a").unwrap();
        assert_eq!(a["phones"][1]["type"], "");
        assert_eq!(a["phones"].as_array().unwrap().len(), 2);
    }

    /// Finds and uniqueness follow every change: an update, a merge, a delete, an overwrite.
    #[test]
    fn searches_follow_updates_merges_and_deletes() {
        let now = SystemTime::now();
        let t = Instant::now();
        let by_email = |s: &OrgStore, e: &str| -> Vec<String> {
            s.find(&FindBy::Email(e.into()), t)
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect()
        };
        let mut s = OrgStore::default();
        s.create("a".into(), fields(json!({"emails":[{"original":"old@y.com"}], "externalCustomerId":"x1"})), now, t)
            .unwrap();
        s.update("a", fields(json!({"emails":[{"original":"new@y.com"}]})), CustomAttributesPatch::Merge, now)
            .unwrap();
        assert!(by_email(&s, "old@y.com").is_empty(), "the replaced email is no longer found");
        assert_eq!(by_email(&s, "new@y.com"), ["a"]);
        assert_eq!(s.find(&FindBy::ExternalId("x1".into()), t).len(), 1);
        // The freed email can be taken by another profile; the held one cannot.
        s.create("b".into(), fields(json!({"emails":[{"original":"old@y.com"}]})), now, t).unwrap();
        assert!(s.create("c".into(), fields(json!({"emails":[{"original":"NEW@y.com"}]})), now, t).is_err());
        // A merge moves b's email to a.
        assert!(s.merge("b", "a", now));
        assert_eq!(by_email(&s, "old@y.com"), ["a"]);
        // A delete frees everything the profile held.
        s.delete("a").unwrap();
        assert!(by_email(&s, "old@y.com").is_empty() && by_email(&s, "new@y.com").is_empty());
        assert!(s.find(&FindBy::ExternalId("x1".into()), t).is_empty());
        s.create("c".into(), fields(json!({"emails":[{"original":"new@y.com"}]})), now, t).unwrap();
        // Seeding over an existing id replaces what it was found by.
        s.put("c".into(), fields(json!({"emails":[{"original":"seed@y.com"}]})), now, t);
        assert!(by_email(&s, "new@y.com").is_empty());
        assert_eq!(by_email(&s, "seed@y.com"), ["c"]);
    }
}
