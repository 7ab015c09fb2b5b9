//! The plain HTTP seam between the protocol and the outside world.
//!
//! `protocol.rs` talks only to this trait, so it runs natively against a scripted fake in unit
//! tests; `client.rs` implements it over wasi:http in the component.

/// HTTP methods the destination uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PATCH.
    Patch,
}

impl Method {
    /// Upper-case method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }
}

/// One outgoing request. JSON headers are added by the transport; credentials never are.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute `https://` URL of the Gladly host.
    pub url: String,
    /// Extra headers (name, value). Never `Authorization`: the host attaches it at egress.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<serde_json::Value>,
}

/// One response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (name, value), names as received.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Connect, first-byte or between-bytes timeout.
    Timeout,
    /// The host's egress policy refused the request.
    Denied,
    /// Anything else: DNS, connection refused, TLS, protocol.
    Transport,
}

/// A request that got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The underlying error text (never holds a header value).
    pub message: String,
}

/// Sends one HTTP request and waits for the whole response.
pub trait Transport {
    /// Sends `req`; an `Err` means no HTTP status was received.
    fn send(&mut self, req: HttpRequest) -> Result<HttpResponse, TransportError>;
}
