//! [`Transport`] over wasi:http through `waki`: the only module that names waki.
//!
//! Credentials are never set here: the host attaches `Authorization` at egress (and refuses a
//! guest-set one), so the plugin cannot read or leak the token. Timeouts are the host's too.

use waki::bindings::wasi::http::types::http_error_code;
use waki::bindings::wasi::io::streams::StreamError;
use waki::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use waki::{Client, ErrorCode};

use crate::transport::{
    HttpRequest, HttpResponse, Method, Transport, TransportError, TransportErrorKind,
};

/// Sends requests with the component's `wasi:http/outgoing-handler` import.
#[derive(Default)]
pub struct WakiTransport {
    client: Client,
}

/// Maps a wasi:http error code to our three kinds, keeping its text.
fn from_code(code: &ErrorCode) -> TransportError {
    let kind = match code {
        ErrorCode::DnsTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => TransportErrorKind::Timeout,
        ErrorCode::HttpRequestDenied => TransportErrorKind::Denied,
        _ => TransportErrorKind::Transport,
    };
    TransportError {
        kind,
        message: format!("{code:?}"),
    }
}

/// Classifies a waki error: a wasi:http error code when one is inside, else plain transport.
fn from_anyhow(err: &anyhow::Error) -> TransportError {
    if let Some(code) = err.downcast_ref::<ErrorCode>() {
        return from_code(code);
    }
    let stream_code = match err.downcast_ref::<StreamError>() {
        Some(StreamError::LastOperationFailed(io)) => http_error_code(io),
        _ => None,
    };
    if let Some(code) = stream_code {
        return from_code(&code);
    }
    TransportError {
        kind: TransportErrorKind::Transport,
        message: err.to_string(),
    }
}

fn invalid(what: &str) -> TransportError {
    TransportError {
        kind: TransportErrorKind::Transport,
        message: format!("the request could not be built: {what}"),
    }
}

impl Transport for WakiTransport {
    fn send(&mut self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let builder = match req.method {
            Method::Get => self.client.get(&req.url),
            Method::Post => self.client.post(&req.url),
            Method::Patch => self.client.patch(&req.url),
        };
        let mut builder = builder.header(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &req.headers {
            let name = HeaderName::try_from(name.as_str()).map_err(|_| invalid("header name"))?;
            if name == AUTHORIZATION {
                // The host owns credentials; a guest-set Authorization would be refused.
                continue;
            }
            let value =
                HeaderValue::try_from(value.as_str()).map_err(|_| invalid("header value"))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            // Every body goes with its length: a strict front end answers 411 to a chunked
            // body. A GET carries neither length nor type.
            let body = body.to_string();
            builder = builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .header(CONTENT_LENGTH, HeaderValue::from(body.len()))
                .body(body);
        }
        let resp = builder.send().map_err(|e| from_anyhow(&e))?;
        let status = resp.status_code();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // waki reports body-stream failures as text only, so a between-bytes timeout while
        // reading the body surfaces as a (retryable) transport error.
        let body = resp.body().map_err(|e| from_anyhow(&e))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}
