//! Reading customer profiles as the emulator returns them (JSON values), for assertions.

use serde_json::Value;

/// A profile's emails, normalized (trimmed, lower-cased).
pub fn emails(profile: &Value) -> Vec<String> {
    list(profile, "emails")
        .iter()
        .filter_map(|e| e.get("normalized").or_else(|| e.get("original")).and_then(Value::as_str))
        .map(|s| s.trim().to_lowercase())
        .collect()
}

/// A profile's email `original`s, as stored.
pub fn email_originals(profile: &Value) -> Vec<String> {
    list(profile, "emails").iter().filter_map(|e| e.get("original").and_then(Value::as_str)).map(str::to_string).collect()
}

/// A profile's phone `original`s, as stored: what the client sent. Tests compare them with
/// hand-written E.164 numbers; the emulator's `normalized` comes from the same phone crate as
/// the component's, so it would agree with a wrong normalization.
pub fn phones(profile: &Value) -> Vec<String> {
    list(profile, "phones")
        .iter()
        .filter_map(|e| e.get("original").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn list<'a>(profile: &'a Value, key: &str) -> &'a [Value] {
    profile.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The profiles holding `email` (compared normalized).
pub fn with_email<'a>(profiles: &'a [Value], email: &str) -> Vec<&'a Value> {
    let wanted = email.trim().to_lowercase();
    profiles.iter().filter(|p| emails(p).contains(&wanted)).collect()
}

/// A profile's id.
pub fn id(profile: &Value) -> &str {
    profile.get("id").and_then(Value::as_str).unwrap_or("")
}
