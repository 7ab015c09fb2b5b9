//! A bare HTTP/1 client for talking to the emulator directly (as an agent or another system
//! would): one connection per request, so a dropped connection shows up as an error of exactly
//! that request.

use std::net::SocketAddr;

use gladly_emulator::{DEFAULT_TOKEN, DEFAULT_USER, Emulator};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::emulator::{PROFILES, basic_auth};

/// A response.
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }

    /// `(attr, code)` of the first error of an array-shaped error body.
    pub fn first_error(&self) -> (Option<String>, String) {
        let v = self.json();
        let e = &v["errors"][0];
        (e["attr"].as_str().map(str::to_string), e["code"].as_str().unwrap().to_string())
    }
}

/// Where requests go, with which `Host` and which Basic credentials.
#[derive(Clone)]
pub struct Client {
    /// The server's address.
    pub addr: SocketAddr,
    /// The `Host` header (selects the organization).
    pub host: String,
    /// Basic auth user and token; `None` sends no `Authorization`.
    pub auth: Option<(String, String)>,
    /// An `Authorization` value sent as it is (instead of Basic auth).
    pub authorization: Option<String>,
}

impl Client {
    /// The emulator's default user on `acme.gladly.com`.
    pub fn new(em: &Emulator) -> Self {
        Client { addr: em.addr(), host: "acme.gladly.com".into(), auth: Some((DEFAULT_USER.into(), DEFAULT_TOKEN.into())), authorization: None }
    }

    /// Any HTTP server on `addr` (an admin API), without credentials.
    pub fn at(addr: SocketAddr) -> Self {
        Client { addr, host: addr.to_string(), auth: None, authorization: None }
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.auth = None;
        self.authorization = Some(format!("Bearer {token}"));
        self
    }

    /// Another `Host`.
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.into();
        self
    }

    /// Other credentials.
    pub fn auth(mut self, user: &str, token: &str) -> Self {
        self.auth = Some((user.into(), token.into()));
        self
    }

    /// No credentials.
    pub fn no_auth(mut self) -> Self {
        self.auth = None;
        self
    }

    /// Sends one request on a fresh connection; `Err` when no response came.
    pub async fn try_send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Resp, String> {
        let stream = TcpStream::connect(self.addr).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(path).header("host", &self.host).header("accept", "application/json");
        if let Some((u, t)) = &self.auth {
            req = req.header("authorization", basic_auth(u, t));
        }
        if let Some(a) = &self.authorization {
            req = req.header("authorization", a);
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(v).unwrap()))
            }
            None => Full::new(Bytes::new()),
        };
        let resp = sender.send_request(req.body(body).unwrap()).await.map_err(|e| format!("request failed: {e}"))?;
        let (parts, incoming) = resp.into_parts();
        let body = incoming.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Resp { status: parts.status.as_u16(), headers: parts.headers, body: body.to_vec() })
    }

    /// Sends one request; panics when no response came.
    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.try_send(method, path, body).await.unwrap()
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send("PATCH", path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    /// Creates a customer profile.
    pub async fn create(&self, body: &Value) -> Resp {
        self.post(PROFILES, body).await
    }
}
