//! Who may use the admin API. Bound to loopback it is open unless a token is set; bound to any
//! other address it refuses to start without one. With a token, every route but the probes needs
//! `Authorization: Bearer <token>`, compared in constant time.

use std::net::SocketAddr;

use subtle::ConstantTimeEq;

/// The variable an admin token can come from.
pub const ADMIN_TOKEN_ENV: &str = "DESTINATION_HOST_ADMIN_TOKEN";

/// The shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 24;

/// The admin token, if any. Its `Debug` never shows it.
#[derive(Clone, Default)]
pub struct AdminToken(Option<String>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "AdminToken(set)" } else { "AdminToken(none)" })
    }
}

impl AdminToken {
    /// The token from `file` (first line) or else from [`ADMIN_TOKEN_ENV`], checked against
    /// where the API listens.
    pub fn resolve(file: Option<&std::path::Path>, env: Option<String>, listen: SocketAddr) -> Result<AdminToken, String> {
        let token = match file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read the admin token file {}: {e}", f.display()))?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            ),
            None => env.map(|t| t.trim().to_string()),
        };
        if let Some(t) = &token
            && t.len() < MIN_TOKEN_LEN
        {
            return Err(format!("the admin token is shorter than {MIN_TOKEN_LEN} characters; generate a longer one (e.g. `openssl rand -hex 24`)"));
        }
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(format!(
                "the admin API would listen on {listen}, which is not loopback, without a token; set {ADMIN_TOKEN_ENV} or --admin-token-file, or listen on 127.0.0.1"
            ));
        }
        Ok(AdminToken(token))
    }

    /// Whether an `Authorization` header value lets the request through.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.0 else { return true };
        let Some(given) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) else { return false };
        given.ct_eq(expected.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_without_a_token_is_open_and_elsewhere_refused() {
        let open = AdminToken::resolve(None, None, addr("127.0.0.1:8686")).unwrap();
        assert!(open.admits(None));
        let err = AdminToken::resolve(None, None, addr("0.0.0.0:8686")).unwrap_err();
        assert!(err.starts_with("the admin API would listen on 0.0.0.0:8686, which is not loopback, without a token"), "{err}");
    }

    #[test]
    fn a_token_must_be_given_exactly() {
        let t = AdminToken::resolve(None, Some(TOKEN.into()), addr("0.0.0.0:8686")).unwrap();
        assert!(t.admits(Some(format!("Bearer {TOKEN}").as_bytes())));
        assert!(!t.admits(None));
        assert!(!t.admits(Some(TOKEN.as_bytes())), "no scheme");
        assert!(!t.admits(Some(format!("Bearer {TOKEN}x").as_bytes())));
        assert!(!t.admits(Some(b"Bearer ")));
        assert_eq!(format!("{t:?}"), "AdminToken(set)");
    }

    #[test]
    fn a_short_token_is_refused() {
        let err = AdminToken::resolve(None, Some("short".into()), addr("127.0.0.1:1")).unwrap_err();
        assert!(err.starts_with("the admin token is shorter than 24 characters"), "{err}");
    }
}
