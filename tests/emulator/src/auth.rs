//! HTTP Basic authentication against the configured API users.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::config::User;

/// The result of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    /// Known user with the API permission.
    Allowed,
    /// No credentials, or credentials no user of this org has (401).
    Unauthorized,
    /// Known user lacking the API permission (403).
    Forbidden,
}

/// Checks the Basic credentials of a request for `org`.
pub(crate) fn check(headers: &HeaderMap, org: &str, users: &[User]) -> AuthOutcome {
    let Some((name, token)) = basic_credentials(headers) else {
        return AuthOutcome::Unauthorized;
    };
    let user = users.iter().find(|u| {
        u.email.eq_ignore_ascii_case(&name)
            && u.token == token
            && (u.orgs.is_empty() || u.orgs.iter().any(|o| o.eq_ignore_ascii_case(org)))
    });
    match user {
        None => AuthOutcome::Unauthorized,
        Some(u) if !u.has_api_permission => AuthOutcome::Forbidden,
        Some(_) => AuthOutcome::Allowed,
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, token) = text.split_once(':')?;
    Some((name.to_string(), token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(user: &str, pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn outcomes() {
        let users = vec![
            User::new("a@x.com", "t"),
            User::new("b@x.com", "u").without_api_permission(),
            User::new("c@x.com", "v").in_orgs(["acme"]),
        ];
        assert_eq!(
            check(&HeaderMap::new(), "o", &users),
            AuthOutcome::Unauthorized
        );
        assert_eq!(
            check(&headers("a@x.com", "t"), "o", &users),
            AuthOutcome::Allowed
        );
        assert_eq!(
            check(&headers("a@x.com", "bad"), "o", &users),
            AuthOutcome::Unauthorized
        );
        assert_eq!(
            check(&headers("b@x.com", "u"), "o", &users),
            AuthOutcome::Forbidden
        );
        assert_eq!(
            check(&headers("c@x.com", "v"), "acme", &users),
            AuthOutcome::Allowed
        );
        assert_eq!(
            check(&headers("c@x.com", "v"), "other", &users),
            AuthOutcome::Unauthorized
        );
    }
}
