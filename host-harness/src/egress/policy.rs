//! The one place outbound HTTP policy lives: every request a component sends passes
//! [`EgressHooks::send_request`].
//!
//! Fail closed, two keys: the plugin declares the hosts it needs (`validate-config`), the
//! operator grants hosts for the tenant; only their intersection is reachable, over `https`
//! only. The hook then attaches the tenant's credentials (the component never sees them), waits
//! for the organization's rate permit, applies timeouts clamped to the call's remaining budget,
//! and, only when the operator configured it, redirects the request to a loopback emulator after
//! all of the checks above. Requests then go out over the tenant's keep-alive connections
//! ([`crate::egress::connections`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{AUTHORIZATION, HOST};
use http::uri::{Authority, Scheme, Uri};
use http::{HeaderName, HeaderValue};
use tokio::time::Instant;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use crate::egress::connections::ConnectionPool;
use crate::egress::ratelimit::{OrgLimiter, parse_retry_after};
use crate::egress::credentials::BasicCredential;

/// A loopback address that stands in for the tenant's real API host (tests, local sandbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    authority: Authority,
}

impl Redirect {
    /// Parse `http://127.0.0.1:PORT` (or `localhost`, `[::1]`). Anything that is not loopback is
    /// refused: a redirect must never become a way around the allow-list.
    pub fn parse(endpoint: &str) -> Result<Redirect, String> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| format!("endpoint {endpoint:?} is not a URL; use http://127.0.0.1:PORT"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!("endpoint {endpoint:?} must start with http:// (a local emulator)"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("endpoint {endpoint:?} has no host; use http://127.0.0.1:PORT"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
        if !loopback {
            return Err(format!(
                "endpoint {endpoint:?} is not a loopback address; only 127.0.0.1, [::1] or localhost may stand in for the API host"
            ));
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(format!("endpoint {endpoint:?} must not have a path"));
        }
        Ok(Redirect { authority })
    }
}

/// Per-request timeout settings.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connect, first-byte and between-bytes timeout for one request.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { request: Duration::from_secs(30) }
    }
}

/// What the egress hook counted for one tenant, shared with the runner for reports and for
/// adapting concurrency.
#[derive(Debug, Default)]
pub struct EgressStats {
    /// Requests sent (allowed and attempted).
    pub requests: AtomicU64,
    /// Requests refused by policy.
    pub denied: AtomicU64,
    /// 429 responses received.
    pub throttled: AtomicU64,
    /// Sum of response-header latencies, microseconds.
    pub latency_us_total: AtomicU64,
    /// Responses counted in `latency_us_total`.
    pub responses: AtomicU64,
    /// The hosts refused, newest last (bounded).
    pub denials: Mutex<Vec<String>>,
}

impl EgressStats {
    /// Mean latency to response headers so far.
    pub fn mean_latency(&self) -> Option<Duration> {
        let n = self.responses.load(Ordering::Relaxed);
        (n > 0).then(|| Duration::from_micros(self.latency_us_total.load(Ordering::Relaxed) / n))
    }
}

/// A tenant's egress policy; shared by all of the tenant's instances.
#[derive(Debug)]
pub struct EgressPolicy {
    /// The tenant's name, for logs.
    pub tenant: String,
    /// Hosts reachable: plugin-declared ∩ operator-granted, exact lowercase names.
    pub allowed_hosts: Vec<String>,
    /// Credentials attached to allowed requests.
    pub credential: Option<BasicCredential>,
    /// Loopback stand-in for the allowed hosts.
    pub redirect: Option<Redirect>,
    /// The organization's shared budget.
    pub limiter: Option<Arc<OrgLimiter>>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Counters.
    pub stats: Arc<EgressStats>,
    /// Keep-alive connections to the allowed hosts (or their loopback stand-in).
    pub connections: ConnectionPool,
}

/// Whether `host` matches an operator grant: an exact name or `*.suffix`.
pub fn host_matches(grant: &str, host: &str) -> bool {
    let grant = grant.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if grant == "*" {
        return true;
    }
    match grant.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => grant == host,
    }
}

/// The reachable hosts: those the plugin declared that the operator's grants cover. An empty
/// grant list means "exactly what the plugin declared".
pub fn intersect_hosts(declared: &[String], grants: &[String]) -> Vec<String> {
    declared
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .filter(|h| grants.is_empty() || grants.iter().any(|g| host_matches(g, h)))
        .collect()
}

/// The hooks installed in one store; `deadline` is the end of the current guest call.
pub struct EgressHooks {
    policy: Arc<EgressPolicy>,
    deadline: Instant,
}

impl EgressHooks {
    /// Hooks for one call that must finish by `deadline`.
    pub fn new(policy: Arc<EgressPolicy>, deadline: Instant) -> Self {
        EgressHooks { policy, deadline }
    }

    fn deny(&self, host: &str, why: &str) -> HttpError {
        let p = &self.policy;
        p.stats.denied.fetch_add(1, Ordering::Relaxed);
        let line = format!("{host}: {why}");
        tracing::warn!(tenant = %p.tenant, "egress denied: {line}");
        let mut d = p.stats.denials.lock().unwrap_or_else(|e| e.into_inner());
        if d.len() < 100 {
            d.push(line);
        }
        HttpError::HttpRequestDenied
    }

    /// Check the request against the policy; on success return the host it targets.
    fn check(&self, uri: &Uri) -> Result<String, HttpError> {
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        if !self.policy.allowed_hosts.iter().any(|h| *h == host) {
            return Err(self.deny(
                &host,
                &format!("not an allowed host for this tenant (allowed: {})", self.policy.allowed_hosts.join(", ")),
            ));
        }
        if uri.scheme() != Some(&Scheme::HTTPS) {
            return Err(self.deny(&host, "only https is allowed"));
        }
        if uri.port_u16().is_some_and(|p| p != 443) {
            return Err(self.deny(&host, "only the default https port is allowed"));
        }
        Ok(host)
    }

    fn options(&self, guest: Option<RequestOptions>) -> Result<RequestOptions, HttpError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpError::ConnectionTimeout);
        }
        let cap = self.policy.timeouts.request.min(remaining);
        let clamp = |d: Option<Duration>| Some(d.map_or(cap, |d| d.min(cap)));
        let g = guest.unwrap_or_default();
        Ok(RequestOptions {
            connect_timeout: clamp(g.connect_timeout),
            first_byte_timeout: clamp(g.first_byte_timeout),
            between_bytes_timeout: clamp(g.between_bytes_timeout),
        })
    }
}

fn header_u64(headers: &http::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        // The host owns credentials: a component may not set its own.
        Arc::new(|name: &HeaderName| {
            name == AUTHORIZATION
                || name.as_str().eq_ignore_ascii_case("proxy-authorization")
                || DEFAULT_FORBIDDEN_HEADERS.contains(name)
        })
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let checked = self.check(request.uri()).and_then(|host| Ok((host, self.options(options)?)));
        let policy = self.policy.clone();
        Box::new(async move {
            let (host, options) = checked?;

            let headers = request.headers_mut();
            headers.remove(AUTHORIZATION);
            if let Some(cred) = &policy.credential {
                let mut value = HeaderValue::from_str(&cred.header_value())
                    .map_err(|_| HttpError::InternalError(Some("credential is not a valid header".into())))?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            if let Some(redirect) = &policy.redirect {
                // Keep the real Host header so the emulator knows which organization is meant.
                let host_header = HeaderValue::from_str(&host)
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?;
                request.headers_mut().insert(HOST, host_header);
                let mut parts = request.uri().clone().into_parts();
                parts.scheme = Some(Scheme::HTTP);
                parts.authority = Some(redirect.authority.clone());
                *request.uri_mut() = Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
            }

            if let Some(limiter) = &policy.limiter {
                limiter.acquire().await;
            }
            policy.stats.requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let response = policy.connections.send(request, options).await?;
            let elapsed = started.elapsed();
            policy.stats.latency_us_total.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
            policy.stats.responses.fetch_add(1, Ordering::Relaxed);

            let status = response.status().as_u16();
            let h = response.headers();
            let retry_after = h.get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            let remaining = header_u64(h, "ratelimit-remaining-second");
            if status == 429 {
                policy.stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(limiter) = &policy.limiter {
                limiter.observe(status, retry_after, remaining);
            }
            // The pool drives its connections on its own tasks: nothing is left for the caller to
            // await once the response head is here.
            Ok((response, Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants() {
        assert!(host_matches("*.gladly.com", "acme.gladly.com"));
        assert!(!host_matches("*.gladly.com", "gladly.com.evil.io"));
        assert!(host_matches("acme.gladly.com", "ACME.gladly.com"));
        assert!(!host_matches("acme.gladly.com", "other.gladly.com"));
        let declared = vec!["acme.gladly.com".to_string()];
        assert_eq!(intersect_hosts(&declared, &[]), declared);
        assert_eq!(intersect_hosts(&declared, &["*.gladly.qa".into()]), Vec::<String>::new());
    }

    #[test]
    fn redirect_only_loopback() {
        assert!(Redirect::parse("http://127.0.0.1:8080").is_ok());
        assert!(Redirect::parse("http://localhost:1").is_ok());
        assert!(Redirect::parse("http://[::1]:9").is_ok());
        assert!(Redirect::parse("http://10.0.0.1:80").unwrap_err().contains("loopback"));
        assert!(Redirect::parse("https://127.0.0.1:80").is_err());
        assert!(Redirect::parse("http://127.0.0.1:80/x").is_err());
    }
}
