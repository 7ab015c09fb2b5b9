//! The Gladly customer-profile calls one record needs: paths and their encoding, and what each
//! status means for a read, a lookup, a PATCH and a POST.
//!
//! [`Api`] counts every request it sends and turns transport failures and unexpected statuses
//! into structured errors through [`crate::classify`]; which calls to make, in which order, is
//! the state machine's business in the parent module.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::classify::{self, Step};
use crate::matching::MatchKey;
use crate::model::{DestError, Outcome};
use crate::profile::Profile;
use crate::transport::{HttpRequest, HttpResponse, Method, Transport};

/// The customer-profile collection.
pub(super) const PROFILES: &str = "/api/v1/customer-profiles";

/// Characters left as-is in a query value or path segment (RFC 3986 unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// A record that failed, with the id to report when one is known (a merged profile's survivor).
pub(super) struct Failure {
    pub(super) error: DestError,
    pub(super) remote_id: Option<String>,
}

impl From<DestError> for Failure {
    fn from(error: DestError) -> Self {
        Failure {
            error,
            remote_id: None,
        }
    }
}

/// A profile read by id.
pub(super) enum Fetch {
    Found(Profile),
    /// 404, or 301 merged (with the survivor as `remote_id`).
    Gone(Failure),
}

/// The end of the update path.
pub(super) enum Update {
    Done(Outcome),
    /// The id no longer names a profile (404, merged): upsert falls back to email.
    Gone(Failure),
}

/// Gladly calls for one record; counts every request sent.
pub(super) struct Api<'a> {
    pub(super) transport: &'a mut dyn Transport,
    pub(super) base: String,
    pub(super) host: String,
    pub(super) key: String,
    pub(super) requests: u32,
    /// Whether the organization's PATCH merges `customAttributes` (no read needed to change one).
    pub(super) merges_attributes: bool,
}

impl Api<'_> {
    pub(super) fn step<'s>(&'s self, action: &'s str) -> Step<'s> {
        Step {
            key: Some(&self.key),
            action,
            host: &self.host,
        }
    }

    fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        action: &str,
    ) -> Result<HttpResponse, DestError> {
        self.requests = self.requests.saturating_add(1);
        let req = HttpRequest {
            method,
            url: format!("{}{path}", self.base),
            headers: Vec::new(),
            body,
        };
        self.transport
            .send(req)
            .map_err(|e| classify::from_transport(&e, &self.step(action)))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        resp: &HttpResponse,
        action: &str,
    ) -> Result<T, DestError> {
        serde_json::from_slice(&resp.body).map_err(|e| {
            classify::unexpected(
                resp.status,
                &self.step(action),
                &format!("invalid JSON: {e}"),
            )
        })
    }

    pub(super) fn get(&mut self, id: &str) -> Result<Fetch, DestError> {
        let action = "reading the profile";
        let resp = self.send(
            Method::Get,
            &format!("{PROFILES}/{}", encode(id)),
            None,
            action,
        )?;
        match resp.status {
            200 => Ok(Fetch::Found(self.parse(&resp, action)?)),
            301 => {
                let error = classify::from_status(&resp, &self.step(action));
                let remote_id = classify::moved_to(&classify::parse_errors(&resp.body));
                Ok(Fetch::Gone(Failure { error, remote_id }))
            }
            404 => Ok(Fetch::Gone(
                classify::from_status(&resp, &self.step(action)).into(),
            )),
            _ => Err(classify::from_status(&resp, &self.step(action))),
        }
    }

    /// Gladly's find by one key: every profile it returns.
    pub(super) fn find(&mut self, key: MatchKey, value: &str) -> Result<Vec<Profile>, DestError> {
        let action = format!("looking the customer up by {}", key.label());
        let path = format!("{PROFILES}?{}={}", key.query(), encode(value));
        let resp = self.send(Method::Get, &path, None, &action)?;
        match resp.status {
            200 => self.parse(&resp, &action),
            _ => Err(classify::from_status(&resp, &self.step(&action))),
        }
    }

    pub(super) fn patch(
        &mut self,
        id: &str,
        body: Map<String, Value>,
    ) -> Result<Update, DestError> {
        let action = "updating the profile";
        let path = format!("{PROFILES}/{}", encode(id));
        let resp = self.send(Method::Patch, &path, Some(Value::Object(body)), action)?;
        match resp.status {
            200 | 204 => Ok(Update::Done(Outcome::Updated)),
            // Gladly documents 404 for a merged id on PATCH; a 301 is handled like GET's.
            301 => Ok(Update::Gone(Failure {
                error: classify::from_status(&resp, &self.step(action)),
                remote_id: classify::moved_to(&classify::parse_errors(&resp.body)),
            })),
            404 => Ok(Update::Gone(
                classify::from_status(&resp, &self.step(action)).into(),
            )),
            _ => Err(classify::from_status(&resp, &self.step(action))),
        }
    }

    pub(super) fn post(&mut self, body: Value) -> Result<HttpResponse, DestError> {
        self.send(Method::Post, PROFILES, Some(body), "creating the profile")
    }
}

/// The id in a `Location: /api/v1/customer-profiles/{id}` header.
pub(super) fn location_id(resp: &HttpResponse) -> Option<String> {
    let loc = resp.header("location")?;
    let path = loc.split(['?', '#']).next().unwrap_or_default();
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let id = percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .ok()?;
    (!id.is_empty()).then(|| id.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_ids() {
        let resp = |loc: &str| HttpResponse {
            status: 201,
            headers: vec![("location".into(), loc.into())],
            body: vec![],
        };
        assert_eq!(
            location_id(&resp("/api/v1/customer-profiles/abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            location_id(&resp(
                "https://acme.gladly.com/api/v1/customer-profiles/abc/"
            ))
            .as_deref(),
            Some("abc")
        );
        assert_eq!(
            location_id(&resp("/api/v1/customer-profiles/a%2Db?x=1")).as_deref(),
            Some("a-b")
        );
        assert_eq!(location_id(&HttpResponse::default()), None);
    }
}
