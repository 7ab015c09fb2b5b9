//! Keep-alive connections to a tenant's API host, shared by all of the tenant's instances.
//!
//! `wasmtime_wasi_http::default_send_request` opens a new TCP (and TLS) connection for every
//! request. Against a real Gladly host that costs a handshake per request (several round trips
//! at ~150 ms), and on loopback it is most of the host's per-request cost. The egress hook sends
//! through this pool instead: hyper-util's pooled client, rustls with the webpki roots (the same
//! trust store wasmtime-wasi-http uses), and the three wasi:http timeouts applied per request.
//!
//! Policy stays in [`crate::egress`]: a request reaches this module only after the allow-list,
//! the credential and the rate permit. Plain `http` is used only for the loopback redirect.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::egress::address::{NonPublicAddress, PublicOnlyResolver};
use hyper_util::rt::TokioExecutor;
use tower_http::timeout::{TimeoutBody, TimeoutError};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// How long an idle connection is kept for the next request. Short enough that a server's own
/// keep-alive limit (often 60 s or more) is unlikely to close it under us first.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Idle connections kept per host: enough for the largest concurrency the harness adapts to.
const MAX_IDLE_PER_HOST: usize = 64;

type PooledClient = Client<HttpsConnector<HttpConnector<PublicOnlyResolver>>, WasiBody>;

/// A lazily built connection pool (pure calls that never send a request never build one).
pub struct ConnectionPool {
    connect_timeout: Duration,
    resolver: PublicOnlyResolver,
    client: OnceLock<Result<PooledClient, String>>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool").field("connect_timeout", &self.connect_timeout).finish_non_exhaustive()
    }
}

impl ConnectionPool {
    /// A pool whose new connections must be established (TCP and TLS) within `connect_timeout`,
    /// to addresses `resolver` accepts.
    pub fn new(connect_timeout: Duration, resolver: PublicOnlyResolver) -> Self {
        ConnectionPool { connect_timeout, resolver, client: OnceLock::new() }
    }

    fn client(&self) -> Result<&PooledClient, HttpError> {
        self.client
            .get_or_init(|| build_client(self.connect_timeout, self.resolver.clone()))
            .as_ref()
            .map_err(|e| HttpError::InternalError(Some(e.clone())))
    }

    /// Send `request` (an absolute URI) and return the response once its headers arrived.
    ///
    /// Connecting plus waiting for the response head is bounded by the first-byte timeout; the
    /// body then fails with a read timeout if no frame arrives within the between-bytes timeout.
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: RequestOptions,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let client = self.client()?;
        let first_byte = options.first_byte_timeout.unwrap_or(self.connect_timeout);
        let between_bytes = options.between_bytes_timeout.unwrap_or(self.connect_timeout);
        let response = match tokio::time::timeout(first_byte, client.request(request)).await {
            Err(_) => return Err(HttpError::ConnectionReadTimeout),
            Ok(result) => result.map_err(|e| from_client_error(&e))?,
        };
        Ok(response.map(|body| {
            TimeoutBody::new(between_bytes, body).map_err(|e| from_body_error(e.as_ref())).boxed_unsync()
        }))
    }
}

fn build_client(connect_timeout: Duration, resolver: PublicOnlyResolver) -> Result<PooledClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new_with_resolver(resolver);
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(connect_timeout));
    tcp.set_nodelay(true);
    let connector = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .build(connector))
}

/// The wasi:http error for a failed request: the guest classifies timeouts, refusals and
/// everything else (all retryable) from it.
fn from_client_error(err: &hyper_util::client::legacy::Error) -> HttpError {
    if err.is_connect() {
        let refused = |e: &(dyn StdError + 'static)| {
            e.is::<NonPublicAddress>()
                || e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).is_some_and(|inner| inner.is::<NonPublicAddress>())
        };
        if source_chain(err).any(refused) {
            return HttpError::HttpRequestDenied;
        }
        let timed_out = source_chain(err).any(|e| {
            e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
                || e.to_string().contains("timed out")
        });
        return if timed_out { HttpError::ConnectionTimeout } else { HttpError::ConnectionRefused };
    }
    // The egress policy's own cap on the request body ends the request from inside: say so.
    if let Some(HttpError::HttpRequestBodySize(n)) = source_chain(err).find_map(|e| e.downcast_ref::<HttpError>()) {
        return HttpError::HttpRequestBodySize(*n);
    }
    match source_chain(err).find_map(|e| e.downcast_ref::<hyper::Error>()) {
        Some(h) => from_hyper_error(h),
        None => HttpError::HttpProtocolError,
    }
}

fn from_body_error(err: &(dyn StdError + Send + Sync + 'static)) -> HttpError {
    if err.is::<TimeoutError>() {
        return HttpError::ConnectionReadTimeout;
    }
    match err.downcast_ref::<hyper::Error>() {
        Some(h) => from_hyper_error(h),
        None => HttpError::HttpProtocolError,
    }
}

fn from_hyper_error(err: &hyper::Error) -> HttpError {
    if err.is_timeout() {
        HttpError::ConnectionReadTimeout
    } else if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        HttpError::ConnectionTerminated
    } else if err.is_parse() {
        HttpError::HttpProtocolError
    } else {
        HttpError::ConnectionTerminated
    }
}

fn source_chain<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback HTTP/1.1 server that counts connections and answers each request with
    /// `respond` (raw bytes written after the request head was read).
    async fn server(respond: &'static [&'static [u8]], pause: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            for (i, part) in respond.iter().enumerate() {
                                if i > 0 {
                                    tokio::time::sleep(pause).await;
                                }
                                if socket.write_all(part).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        (url, connections)
    }

    fn resolver() -> PublicOnlyResolver {
        PublicOnlyResolver::new("test".into(), Arc::default())
    }

    fn get(url: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
        http::Request::get(url).body(body).unwrap()
    }

    fn options(secs: u64) -> RequestOptions {
        let d = Some(Duration::from_secs(secs));
        RequestOptions { connect_timeout: d, first_byte_timeout: d, between_bytes_timeout: d }
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        const OK: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"];
        let (url, connections) = server(OK, Duration::ZERO).await;
        let pool = ConnectionPool::new(Duration::from_secs(5), resolver());
        for _ in 0..5 {
            let response = pool.send(get(&url), options(5)).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1, "five requests, one connection");
    }

    #[tokio::test]
    async fn a_stalled_body_fails_with_a_read_timeout() {
        const STALL: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nok", b"ok"];
        let (url, _) = server(STALL, Duration::from_secs(30)).await;
        let pool = ConnectionPool::new(Duration::from_secs(5), resolver());
        let mut opts = options(5);
        opts.between_bytes_timeout = Some(Duration::from_millis(200));
        let response = pool.send(get(&url), opts).await.unwrap();
        let err = response.into_body().collect().await.unwrap_err();
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
    }

    #[tokio::test]
    async fn no_response_head_fails_with_the_first_byte_timeout() {
        const NOTHING: &[&[u8]] = &[b""];
        let (url, _) = server(NOTHING, Duration::ZERO).await;
        let pool = ConnectionPool::new(Duration::from_secs(5), resolver());
        let mut opts = options(5);
        opts.first_byte_timeout = Some(Duration::from_millis(200));
        let err = pool.send(get(&url), opts).await.unwrap_err();
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_before_connecting() {
        let stats = Arc::new(crate::egress::EgressStats::default());
        let pool = ConnectionPool::new(Duration::from_secs(5), PublicOnlyResolver::new("t1".into(), stats.clone()));
        let err = pool.send(get("http://localhost:9/"), options(5)).await.unwrap_err();
        assert!(matches!(err, HttpError::HttpRequestDenied), "{err:?}");
        let denials = stats.denials.lock().unwrap().clone();
        assert_eq!(denials.len(), 1);
        assert!(denials[0].starts_with("localhost: localhost resolved to "), "{denials:?}");
        assert!(denials[0].ends_with(", a loopback address; only public addresses are reachable"), "{denials:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connection_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let pool = ConnectionPool::new(Duration::from_secs(5), resolver());
        let err = pool.send(get(&url), options(5)).await.unwrap_err();
        assert!(matches!(err, HttpError::ConnectionRefused), "{err:?}");
    }
}
