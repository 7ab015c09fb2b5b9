//! The per-record insert / update / upsert state machine over a [`Transport`].
//!
//! Rules it keeps: exactly one result per item, in order; a record's failure stays that record's;
//! after a credential or egress failure the rest of the batch fails fast without requests; no
//! sleeping and no retrying (the host retries records marked retryable); creates carry a
//! deterministic id so a retried create is recognised (409 on our own id) instead of duplicated.
//!
//! The Gladly calls themselves (paths, encoding, what each status means) are in `api`.

mod api;

use std::collections::BTreeSet;

use serde_json::Value;

use crate::classify;
use crate::ids;
use crate::mapping::{Mapped, Plan};
use crate::matching::MatchKey;
use crate::merge;
use crate::model::{
    BatchContext, DestError, ErrorCategory, ErrorCode, Outcome, RecordResult, SyncItem, SyncMode,
};
use crate::profile::Profile;
use crate::settings::{AttributePatch, Config};
use crate::transport::Transport;
use crate::upsert_order::{self, Recent};
use api::{Api, Failure, Fetch, Update, location_id};

/// A record that ended well: what happened and the Gladly id.
struct Done {
    outcome: Outcome,
    id: String,
}

/// The end of a create.
enum Create {
    Created(String),
    /// 409 not caused by our own id: another profile holds a unique value.
    Conflict(DestError),
}

/// Reads the profile when not yet read, then PATCHes only what differs. With a confirmed
/// previous payload and unchanged emails/phones, no read is needed at all.
fn update_by_id(
    api: &mut Api,
    id: &str,
    desired: &Profile,
    previous: Option<&Profile>,
    prefetched: Option<Profile>,
) -> Result<Update, DestError> {
    let current = match prefetched {
        Some(p) => p,
        None => {
            if let Some(patch) = previous
                .and_then(|p| merge::patch_against_previous(p, desired, api.merges_attributes))
            {
                if patch.is_empty() {
                    return Ok(Update::Done(Outcome::Unchanged));
                }
                return api.patch(id, patch);
            }
            match api.get(id)? {
                Fetch::Found(p) => p,
                Fetch::Gone(f) => return Ok(Update::Gone(f)),
            }
        }
    };
    let patch = merge::patch_against_read(&current, desired);
    if patch.is_empty() {
        return Ok(Update::Done(Outcome::Unchanged));
    }
    api.patch(id, patch)
}

/// The answer to a POST of the profile with our deterministic id.
enum Posted {
    Created(String),
    /// 409: a unique value (our id, an email, a mobile phone) is already held.
    Taken(DestError),
}

fn post_with_id(api: &mut Api, id: &str, desired: &Profile) -> Result<Posted, Failure> {
    let mut body = desired.to_value();
    if let Value::Object(map) = &mut body {
        map.insert("id".to_string(), Value::String(id.to_string()));
    }
    let resp = api.post(body)?;
    let step = api.step("creating the profile");
    match resp.status {
        200 | 201 => Ok(Posted::Created(
            location_id(&resp).unwrap_or_else(|| id.to_string()),
        )),
        409 => Ok(Posted::Taken(classify::from_status(&resp, &step))),
        _ => Err(classify::from_status(&resp, &step).into()),
    }
}

/// After a 409: if a profile holds our own id, an earlier attempt created it and its answer was
/// lost, so it is brought up to date and reported as created; otherwise the conflict stands.
fn own_earlier_create(
    api: &mut Api,
    id: &str,
    desired: &Profile,
    conflict: DestError,
) -> Result<Create, Failure> {
    match api.get(id)? {
        Fetch::Found(p) => match update_by_id(api, id, desired, None, Some(p))? {
            Update::Done(_) => Ok(Create::Created(id.to_string())),
            Update::Gone(f) => Err(f),
        },
        Fetch::Gone(f) if f.error.code == ErrorCode::NotFound => Ok(Create::Conflict(conflict)),
        Fetch::Gone(f) => Err(f),
    }
}

/// POSTs the profile with our deterministic id; a 409 is checked against that id
/// ([`own_earlier_create`]).
fn create(api: &mut Api, id: &str, desired: &Profile) -> Result<Create, Failure> {
    match post_with_id(api, id, desired)? {
        Posted::Created(id) => Ok(Create::Created(id)),
        Posted::Taken(conflict) => own_earlier_create(api, id, desired, conflict),
    }
}

/// An error a later attempt may get past (Gladly's search can lag a create by seconds).
fn retry_later(mut e: DestError) -> DestError {
    e.category = ErrorCategory::RetryLater;
    e.retryable = true;
    e
}

/// Updates a profile found by a match key (already read: no second GET).
fn update_found(api: &mut Api, found: Profile, desired: &Profile) -> Result<Done, Failure> {
    let Some(id) = found.id.clone().filter(|i| !i.is_empty()) else {
        return Err(classify::unexpected(
            200,
            &api.step("looking the customer up"),
            "a profile without an id",
        )
        .into());
    };
    match update_by_id(api, &id, desired, None, Some(found))? {
        Update::Done(outcome) => Ok(Done { outcome, id }),
        Update::Gone(f) => {
            // It vanished between the lookup and the update: a new lookup may succeed.
            Err(Failure {
                error: retry_later(f.error),
                remote_id: f.remote_id,
            })
        }
    }
}

fn ambiguous(api: &Api, key: MatchKey, found: &[Profile]) -> Failure {
    let ids: Vec<&str> = found.iter().filter_map(|p| p.id.as_deref()).collect();
    DestError::new(
        ErrorCode::AmbiguousMatch,
        ErrorCategory::SkipRecord,
        format!(
            "Record `{}`: {} Gladly profiles have this row's {} (ids: {}); none was picked. \
             Fix: merge the duplicate profiles in Gladly, or map `id` to choose one.",
            api.key,
            found.len(),
            key.label(),
            ids.join(", ")
        ),
    )
    .with_field(key.name())
    .into()
}

/// Looks the customer up by each `match-on` key in turn. The first key with a value on the row
/// that finds exactly one profile decides; several profiles on one key are an ambiguous match,
/// never a pick; `None` when no key found anyone.
fn find_by_match_keys(
    api: &mut Api,
    keys: &[MatchKey],
    desired: &Profile,
) -> Result<Option<Profile>, Failure> {
    for key in keys {
        let Some(value) = key.value(desired) else {
            continue;
        };
        let mut found = api.find(*key, &value)?;
        if found.len() > 1 {
            return Err(ambiguous(api, *key, &found));
        }
        if let Some(profile) = found.pop() {
            return Ok(Some(profile));
        }
    }
    Ok(None)
}

fn insert(api: &mut Api, ctx: &BatchContext, mapped: &Mapped) -> Result<Done, Failure> {
    let id = ids::create_id(&ctx.sync_id, &api.key);
    match create(api, &id, &mapped.profile)? {
        Create::Created(id) => Ok(Done {
            outcome: Outcome::Created,
            id,
        }),
        Create::Conflict(e) => Err(e.into()),
    }
}

fn previous(item: &SyncItem) -> Option<Profile> {
    item.previous_payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
}

fn update(api: &mut Api, item: &SyncItem, mapped: &Mapped) -> Result<Done, Failure> {
    let Some(id) = mapped.id.clone().or_else(|| item.known_id.clone()) else {
        return Err(DestError::new(
            ErrorCode::MissingField,
            ErrorCategory::SkipRecord,
            format!(
                "Record `{}`: no Gladly customer id: the column mapped to `id` is empty and the \
                 host holds no id for this key. Fix: fill in the Gladly customer id, or use \
                 upsert to find customers by email.",
                api.key
            ),
        )
        .with_field("id")
        .into());
    };
    match update_by_id(api, &id, &mapped.profile, previous(item).as_ref(), None)? {
        Update::Done(outcome) => Ok(Done { outcome, id }),
        Update::Gone(f) => Err(f),
    }
}

/// Whether every attribute Gladly blamed in a conflict is a phone (then a new lookup by email
/// cannot help).
fn conflict_on_phone_only(e: &DestError) -> bool {
    let attrs: Vec<String> = e
        .api_errors
        .iter()
        .filter_map(|a| a.attr.as_deref().map(str::to_ascii_lowercase))
        .collect();
    !attrs.is_empty() && attrs.iter().all(|a| a.contains("phone"))
}

fn upsert(
    api: &mut Api,
    ctx: &BatchContext,
    config: &Config,
    item: &SyncItem,
    mapped: &Mapped,
    create_first: bool,
    recent: &mut Recent,
) -> Result<Done, Failure> {
    let keys = config.match_on.as_slice();
    let mut create_first = create_first;
    if let Some(id) = mapped.id.clone().or_else(|| item.known_id.clone()) {
        match update_by_id(api, &id, &mapped.profile, previous(item).as_ref(), None)? {
            Update::Done(outcome) => return Ok(Done { outcome, id }),
            // Deleted or merged since: look the customer up by the match keys instead. A merge
            // (the likelier cause) leaves the customer under another profile, where a create
            // would only meet a 409: look up first.
            Update::Gone(_) => create_first = false,
        }
    }
    if keys.iter().all(|k| k.value(&mapped.profile).is_none()) {
        let names: Vec<&str> = keys.iter().map(|k| k.name()).collect();
        return Err(DestError::new(
            ErrorCode::MissingField,
            ErrorCategory::SkipRecord,
            format!(
                "Record `{}`: no value to look the customer up by (match-on: {}). Fix: fill in \
                 one of those columns for this row.",
                api.key,
                names.join(", ")
            ),
        )
        .with_field(names.first().copied().unwrap_or("email"))
        .into());
    }
    let id = ids::create_id(&ctx.sync_id, &api.key);
    if create_first && recent.prefers_create() {
        return create_then_find(api, &id, keys, &mapped.profile, recent);
    }
    let found = find_by_match_keys(api, keys, &mapped.profile)?;
    if create_first {
        recent.observe(found.is_some());
    }
    if let Some(profile) = found {
        return update_match(api, &id, profile, &mapped.profile);
    }
    match create(api, &id, &mapped.profile)? {
        Create::Created(id) => Ok(Done {
            outcome: Outcome::Created,
            id,
        }),
        Create::Conflict(e) if conflict_on_phone_only(&e) => Err(e.into()),
        Create::Conflict(e) => {
            // Someone created a profile with this email after our lookup: find it once more.
            let email = MatchKey::Email.value(&mapped.profile).unwrap_or_default();
            let mut again = api.find(MatchKey::Email, &email)?;
            if again.len() > 1 {
                return Err(ambiguous(api, MatchKey::Email, &again));
            }
            match again.pop() {
                Some(profile) => update_found(api, profile, &mapped.profile),
                // Gladly's search can lag a create by seconds; a later attempt will see it.
                None => Err(retry_later(e).into()),
            }
        }
    }
}

/// Updates the profile a match key found. Our own create id with nothing left to change means an
/// earlier attempt created it and its answer was lost (or the run was killed before recording
/// it): that is reported as the create it was.
fn update_match(
    api: &mut Api,
    own_id: &str,
    found: Profile,
    desired: &Profile,
) -> Result<Done, Failure> {
    let done = update_found(api, found, desired)?;
    if done.id == own_id && done.outcome == Outcome::Unchanged {
        return Ok(Done {
            outcome: Outcome::Created,
            ..done
        });
    }
    Ok(done)
}

/// Create-first upsert: POST with our deterministic id; a 409 means a unique value (the email, a
/// mobile phone, or our own id from an earlier attempt) is held, so the customer is looked up by
/// the match keys and updated, exactly as a lookup-first upsert would have.
fn create_then_find(
    api: &mut Api,
    own_id: &str,
    keys: &[MatchKey],
    desired: &Profile,
    recent: &mut Recent,
) -> Result<Done, Failure> {
    let conflict = match post_with_id(api, own_id, desired)? {
        Posted::Created(id) => {
            recent.observe(false);
            return Ok(Done {
                outcome: Outcome::Created,
                id,
            });
        }
        Posted::Taken(conflict) => conflict,
    };
    let found = find_by_match_keys(api, keys, desired)?;
    recent.observe(
        found
            .as_ref()
            .is_some_and(|p| p.id.as_deref() != Some(own_id)),
    );
    if let Some(profile) = found {
        return update_match(api, own_id, profile, desired);
    }
    // No profile has the match value: our own id may hold it (the find index lags a create by
    // seconds), or the value Gladly refused is another one.
    match own_earlier_create(api, own_id, desired, conflict)? {
        Create::Created(id) => Ok(Done {
            outcome: Outcome::Created,
            id,
        }),
        Create::Conflict(e) if conflict_on_phone_only(&e) => Err(e.into()),
        // Held by a profile the find does not return yet: a later attempt will see it.
        Create::Conflict(e) => Err(retry_later(e).into()),
    }
}

fn failed(key: &str, error: DestError, remote_id: Option<String>, requests: u32) -> RecordResult {
    RecordResult {
        key: key.to_string(),
        outcome: Outcome::Failed,
        remote_id,
        confirmed_payload: None,
        error: Some(error),
        requests,
    }
}

/// Writes one record.
fn sync_record(
    ctx: &BatchContext,
    config: &Config,
    mode: SyncMode,
    plan: &Plan,
    item: &SyncItem,
    transport: &mut dyn Transport,
    recent: &mut Recent,
) -> RecordResult {
    let key = item.row.key.as_str();
    let mapped = match plan.map_row(config, &item.row) {
        Ok(m) => m,
        Err(e) => return failed(key, e, None, 0),
    };
    let mut api = Api {
        transport,
        base: config.base_url(),
        host: config.host(),
        key: key.to_string(),
        requests: 0,
        merges_attributes: config.attribute_patch == AttributePatch::Merge,
    };
    let result = match mode {
        SyncMode::Insert => insert(&mut api, ctx, &mapped),
        SyncMode::Update => update(&mut api, item, &mapped),
        SyncMode::Upsert => {
            let create_first = upsert_order::create_is_safe(
                config.create_first,
                &config.match_on,
                &mapped.profile,
            );
            upsert(&mut api, ctx, config, item, &mapped, create_first, recent)
        }
        // validate-config refuses these before any record is attempted.
        other => Err(DestError::new(
            ErrorCode::InvalidConfig,
            ErrorCategory::FixConfig,
            format!("Sync mode {} is not supported by Gladly.", other.name()),
        )
        .into()),
    };
    match result {
        Ok(done) => RecordResult {
            key: key.to_string(),
            outcome: done.outcome,
            remote_id: Some(done.id),
            confirmed_payload: Some(mapped.profile.canonical()),
            error: None,
            requests: api.requests,
        },
        Err(f) => failed(key, f.error, f.remote_id, api.requests),
    }
}

/// Writes a batch: one result per item, in order.
pub fn sync_batch(
    ctx: &BatchContext,
    config: &Config,
    mode: SyncMode,
    plan: &Plan,
    items: &[SyncItem],
    transport: &mut dyn Transport,
) -> Vec<RecordResult> {
    let mut results = Vec::with_capacity(items.len());
    let mut fatal: Option<DestError> = None;
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut recent = upsert_order::recall(&ctx.sync_id);
    for item in items {
        let key = item.row.key.as_str();
        if let Some(cause) = &fatal {
            let mut e = cause.clone();
            e.message = format!("Record `{key}` not attempted: {}", cause.message);
            results.push(failed(key, e, None, 0));
            continue;
        }
        if !seen.insert(key) {
            let e = DestError::new(
                ErrorCode::DuplicateKey,
                ErrorCategory::SkipRecord,
                format!(
                    "Record `{key}` appears more than once in this batch; only the first was \
                     written. Fix: make the model's primary key unique."
                ),
            );
            results.push(failed(key, e, None, 0));
            continue;
        }
        let result = sync_record(ctx, config, mode, plan, item, transport, &mut recent);
        if let Some(e) = result.error.as_ref().filter(|e| e.is_batch_fatal()) {
            fatal = Some(e.clone());
        }
        results.push(result);
    }
    upsert_order::remember(&ctx.sync_id, recent);
    results
}

#[cfg(test)]
mod tests;
