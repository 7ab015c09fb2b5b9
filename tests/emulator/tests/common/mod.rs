//! A bare HTTP/1 client for the tests: one connection per request, so a dropped
//! connection shows up as an error of exactly that request.
#![allow(dead_code)]

use std::time::Duration;

use axum::body::{Body, to_bytes};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gladly_emulator::{DEFAULT_TOKEN, DEFAULT_USER, Emulator, EmulatorConfig};
use http::{HeaderMap, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// `(attr, code)` of the first error of an array-shaped error body.
    pub fn first_error(&self) -> (Option<String>, String) {
        let v = self.json();
        let e = &v["errors"][0];
        (
            e["attr"].as_str().map(str::to_string),
            e["code"].as_str().unwrap().to_string(),
        )
    }
}

#[derive(Clone)]
pub struct Client {
    pub addr: std::net::SocketAddr,
    pub host: String,
    pub auth: Option<(String, String)>,
}

impl Client {
    pub fn new(em: &Emulator) -> Self {
        Client {
            addr: em.addr(),
            host: "acme.gladly.com".into(),
            auth: Some((DEFAULT_USER.into(), DEFAULT_TOKEN.into())),
        }
    }

    pub fn host(mut self, host: &str) -> Self {
        self.host = host.into();
        self
    }

    pub fn auth(mut self, user: &str, token: &str) -> Self {
        self.auth = Some((user.into(), token.into()));
        self
    }

    pub fn no_auth(mut self) -> Self {
        self.auth = None;
        self
    }

    /// Sends one request on a fresh connection; Err when no response came.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("accept", "application/json");
        if let Some((u, t)) = &self.auth {
            req = req.header(
                "authorization",
                format!("Basic {}", STANDARD.encode(format!("{u}:{t}"))),
            );
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(v).unwrap())
            }
            None => Body::empty(),
        };
        let resp = sender
            .send_request(req.body(body).unwrap())
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let (parts, incoming) = resp.into_parts();
        let body = to_bytes(Body::new(incoming), usize::MAX)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.to_vec(),
        })
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.try_send(method, path, body).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send("PATCH", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    pub async fn create(&self, body: &Value) -> Resp {
        self.post("/api/v1/customer-profiles", body).await
    }
}

/// A config whose rate limit stays out of the way.
pub fn fast() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit_per_second: 100_000,
        ..EmulatorConfig::default()
    }
}

/// An emulator with [`fast`] settings.
pub async fn start() -> Emulator {
    start_with(fast()).await
}

pub async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.unwrap()
}

pub const PROFILES: &str = "/api/v1/customer-profiles";

pub fn profile_path(id: &str) -> String {
    format!("{PROFILES}/{id}")
}

pub async fn timeout<F: std::future::Future>(ms: u64, f: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_millis(ms), f)
        .await
        .ok()
}
