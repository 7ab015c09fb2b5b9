//! The one place outbound HTTP policy lives: every request a component sends passes
//! [`EgressHooks::send_request`].
//!
//! Fail closed. The operator grants hosts for the tenant ([`crate::egress::grants`]); the
//! plugin's declared hosts can only narrow that. A request must use an allowed method, carry no
//! user information, target a reachable host by name (never a non-public literal address) over
//! `https` on port 443. The hook then builds `Host` from the checked name, attaches the tenant's
//! credential only when the host is the one it is bound to (the component never sees it), caps
//! the requests in flight and the body sizes, waits for the organization's rate permit, applies
//! timeouts clamped to the call's remaining budget, and, only when the operator allowed an
//! emulator for development, redirects the request to it after all of the checks above.
//! Requests then go out over the tenant's keep-alive connections
//! ([`crate::egress::connections`]), whose resolver refuses names that resolve to non-public
//! addresses ([`crate::egress::address`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::uri::{Authority, Scheme, Uri};
use http::{HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tokio::time::Instant;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use crate::egress::address::non_public;
use crate::egress::connections::ConnectionPool;
use crate::egress::credentials::{HostCredential, Redactor};
use crate::egress::ratelimit::{OrgLimiter, parse_retry_after};
use crate::egress::wire::on_egress_thread;

/// The environment variable that lets a redirect to a loopback emulator be used. Development
/// and tests only: it sends the tenant's real credential over plain http to whatever listens on
/// the port.
pub const ALLOW_EMULATOR_ENV: &str = "DESTINATION_HOST_ALLOW_EMULATOR";

/// Whether this process may redirect traffic to a loopback emulator.
pub fn emulator_allowed() -> bool {
    std::env::var(ALLOW_EMULATOR_ENV).is_ok_and(|v| v == "1")
}

/// Methods a destination needs; anything else (TRACE, CONNECT, custom verbs) is refused.
const ALLOWED_METHODS: [Method; 6] = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// A loopback address that stands in for the tenant's real API host (tests, local sandbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    authority: Authority,
}

impl Redirect {
    /// Parse `http://127.0.0.1:PORT` (or `localhost`, `[::1]`). Anything that is not loopback is
    /// refused: a redirect must never become a way around the allow-list. `localhost` becomes
    /// `127.0.0.1`, so the redirect never goes through a resolver.
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
        if authority.as_str().contains('@') {
            return Err(format!("endpoint {endpoint:?} must not carry user information"));
        }
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
        let authority = if host == "localhost" {
            let port = authority.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            format!("127.0.0.1{port}").parse().map_err(|_| format!("endpoint {endpoint:?} has an invalid port"))?
        } else {
            authority
        };
        Ok(Redirect { authority })
    }
}

/// Caps on what one instance's requests may hold in the host.
#[derive(Debug, Clone, Copy)]
pub struct EgressCaps {
    /// Requests in flight at once per instance.
    pub in_flight: usize,
    /// Bytes of one request body.
    pub request_bytes: usize,
    /// Bytes of one response body.
    pub response_bytes: usize,
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
    /// The hosts refused and why, newest last (bounded).
    pub denials: Mutex<Vec<String>>,
}

impl EgressStats {
    /// Mean latency to response headers so far.
    pub fn mean_latency(&self) -> Option<Duration> {
        let n = self.responses.load(Ordering::Relaxed);
        (n > 0).then(|| Duration::from_micros(self.latency_us_total.load(Ordering::Relaxed) / n))
    }

    /// Count and log one refused request.
    pub fn deny(&self, tenant: &str, host: &str, why: &str) {
        self.denied.fetch_add(1, Ordering::Relaxed);
        let line = crate::text::escape_controls(&format!("{host}: {why}"));
        tracing::warn!(tenant, "egress denied: {line}");
        let mut d = self.denials.lock().unwrap_or_else(|e| e.into_inner());
        if d.len() < 100 {
            d.push(line);
        }
    }
}

/// A tenant's egress policy; shared by all of the tenant's instances.
#[derive(Debug)]
pub struct EgressPolicy {
    /// The tenant's name, for logs.
    pub tenant: String,
    /// Hosts reachable: plugin-declared ∩ operator-granted, exact lowercase names.
    pub allowed_hosts: Vec<String>,
    /// The credential and the one host it is attached to.
    pub credential: Option<HostCredential>,
    /// Removes the credential from anything the plugin says.
    pub redactor: Redactor,
    /// Loopback stand-in for the allowed hosts (development only).
    pub redirect: Option<Redirect>,
    /// The organization's shared budget.
    pub limiter: Option<Arc<OrgLimiter>>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Per-instance caps.
    pub caps: EgressCaps,
    /// Counters.
    pub stats: Arc<EgressStats>,
    /// Keep-alive connections to the allowed hosts (or their loopback stand-in).
    pub connections: ConnectionPool,
}

/// The hooks installed in one store; `deadline` is the end of the current guest call (moved on
/// for each call of an instance that serves several).
pub struct EgressHooks {
    policy: Arc<EgressPolicy>,
    deadline: Instant,
    /// Requests of this instance waiting for their response head.
    in_flight: Arc<AtomicUsize>,
}

/// Releases one in-flight slot when the request it counts ends, however it ends.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EgressHooks {
    /// Hooks for one call that must finish by `deadline`.
    pub fn new(policy: Arc<EgressPolicy>, deadline: Instant) -> Self {
        EgressHooks { policy, deadline, in_flight: Arc::new(AtomicUsize::new(0)) }
    }

    /// The end of the current call.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Start a new call that must finish by `deadline`.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// The policy these hooks apply.
    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    fn deny(&self, host: &str, why: &str) -> HttpError {
        self.policy.stats.deny(&self.policy.tenant, host, why);
        HttpError::HttpRequestDenied
    }

    /// Check the request against the policy; on success return the host it targets.
    fn check(&self, request: &http::Request<WasiBody>) -> Result<String, HttpError> {
        let uri = request.uri();
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        if !ALLOWED_METHODS.contains(request.method()) {
            return Err(self.deny(&host, &format!("the method {} is not allowed (allowed: GET, HEAD, POST, PUT, PATCH, DELETE)", request.method())));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(self.deny(&host, "user information in the URL is not allowed"));
        }
        if let Some(why) = host.trim_start_matches('[').trim_end_matches(']').parse().ok().and_then(non_public) {
            return Err(self.deny(&host, &format!("the address is {why}")));
        }
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
        let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.policy.caps.request_bytes as u64) {
            return Err(HttpError::HttpRequestBodySize(declared));
        }
        Ok(host)
    }

    /// Take one in-flight slot, or refuse when the instance already has its cap in flight.
    fn admit(&self, host: &str) -> Result<InFlight, HttpError> {
        let cap = self.policy.caps.in_flight;
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let slot = InFlight(self.in_flight.clone());
        if before >= cap {
            return Err(self.deny(host, &format!("{cap} requests of this instance are already in flight ([limits] in_flight_requests)")));
        }
        Ok(slot)
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

/// `body` failing with `too_big` once more than `cap` bytes went through it.
fn capped(body: WasiBody, cap: usize, too_big: fn(u64) -> HttpError) -> WasiBody {
    Limited::new(body, cap)
        .map_err(move |e| match e.downcast::<HttpError>() {
            Ok(inner) => *inner,
            Err(e) if e.is::<LengthLimitError>() => too_big(cap as u64),
            Err(_) => HttpError::HttpProtocolError,
        })
        .boxed_unsync()
}

/// A body read whole whose length the plugin did not declare: one data frame, no size hint,
/// so the connection frames it as the plugin did (chunked).
struct LengthUnknown(Option<bytes::Bytes>);

impl hyper::body::Body for LengthUnknown {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(hyper::body::Frame::data(b))))
    }
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
        // The host owns credentials and the Host header: a component may not set its own.
        Arc::new(|name: &HeaderName| {
            name == AUTHORIZATION
                || name == HOST
                || name.as_str().eq_ignore_ascii_case("proxy-authorization")
                || DEFAULT_FORBIDDEN_HEADERS.contains(name)
        })
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let checked = self
            .check(&request)
            .and_then(|host| Ok((self.admit(&host)?, host)))
            .and_then(|(slot, host)| Ok((slot, host, self.options(options)?)));
        let policy = self.policy.clone();
        Box::new(async move {
            let (slot, host, options) = checked?;
            let caps = policy.caps;
            // The whole body is read before anything is sent. Handed to the connection as a
            // stream, a body with a `Content-Length` is dropped by the client as soon as that
            // many bytes went out, and the guest's closing flush could then find its stream
            // closed although the request succeeded. Read whole (bodies are capped), it goes
            // out with its length, and the rate permit is taken only once it is ready.
            let (parts, body) = request.into_parts();
            let body = capped(body, caps.request_bytes, |n| HttpError::HttpRequestBodySize(Some(n)));
            let read_for = options.first_byte_timeout.unwrap_or(policy.timeouts.request);
            let bytes = match tokio::time::timeout(read_for, body.collect()).await {
                Ok(collected) => collected?.to_bytes(),
                Err(_) => return Err(HttpError::ConnectionWriteTimeout),
            };
            // The plugin's framing is kept: a body it sent without a length still goes chunked.
            let body = if parts.headers.contains_key(CONTENT_LENGTH) || bytes.is_empty() {
                Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
            } else {
                LengthUnknown(Some(bytes)).boxed_unsync()
            };
            let mut request = http::Request::from_parts(parts, body);

            let headers = request.headers_mut();
            headers.remove(AUTHORIZATION);
            // Host is always the checked name, whatever the URL's authority looked like.
            headers.insert(HOST, HeaderValue::from_str(&host).map_err(|_| HttpError::HttpRequestUriInvalid)?);
            if let Some(cred) = policy.credential.as_ref().filter(|c| c.host == host) {
                let mut value = HeaderValue::from_str(&cred.basic.header_value())
                    .map_err(|_| HttpError::InternalError(Some("credential is not a valid header".into())))?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            if let Some(redirect) = &policy.redirect {
                let mut parts = request.uri().clone().into_parts();
                parts.scheme = Some(Scheme::HTTP);
                parts.authority = Some(redirect.authority.clone());
                *request.uri_mut() = Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
            }

            // The permit and the write it releases go together, on the egress thread.
            let on_wire = policy.clone();
            let (response, elapsed) = on_egress_thread(async move {
                if let Some(limiter) = &on_wire.limiter {
                    limiter.acquire_leased().await.map_err(|lapsed| HttpError::InternalError(Some(lapsed.to_string())))?;
                }
                on_wire.stats.requests.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let response = on_wire.connections.send(request, options).await?;
                Ok::<_, HttpError>((response, started.elapsed()))
            })
            .await??;
            drop(slot);
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
            let response = response.map(|b| capped(b, caps.response_bytes, |n| HttpError::HttpResponseBodySize(Some(n))));
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
    fn redirect_only_loopback() {
        assert!(Redirect::parse("http://127.0.0.1:8080").is_ok());
        assert_eq!(Redirect::parse("http://localhost:1").unwrap().authority.as_str(), "127.0.0.1:1");
        assert!(Redirect::parse("http://[::1]:9").is_ok());
        assert!(Redirect::parse("http://10.0.0.1:80").unwrap_err().contains("loopback"));
        assert!(Redirect::parse("https://127.0.0.1:80").is_err());
        assert!(Redirect::parse("http://127.0.0.1:80/x").is_err());
        assert!(Redirect::parse("http://u:p@127.0.0.1:80").is_err());
    }
}
