//! The native Rust client the host is compared with: hyper over plain TCP, one connection per
//! worker (kept alive, or opened anew for each request), basic auth as the emulator's default
//! user, the same find and write calls as the component. The naive find+write baseline of
//! `requests` is built on it (`overhead` has its own native client, over the host's pool).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use serde_json::Value;

type Body = http_body_util::Full<bytes::Bytes>;

/// One connection to the emulator, opened on the first request (and on every request unless
/// connections are reused).
struct NativeConn {
    addr: SocketAddr,
    sender: Option<hyper::client::conn::http1::SendRequest<Body>>,
}

impl NativeConn {
    async fn send(&mut self, req: http::Request<Body>, reuse: bool) -> Result<(u16, bytes::Bytes)> {
        use http_body_util::BodyExt;
        if self.sender.is_none() || !reuse {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().context("no connection")?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// One worker's client of organization `acme`.
pub struct NativeClient {
    conn: NativeConn,
    auth: Arc<str>,
    reuse: bool,
}

impl NativeClient {
    /// The profiles with this email (a find, which must answer 200).
    pub async fn find_by_email(&mut self, email: &str) -> Result<Vec<Value>> {
        let find = http::Request::get(format!("/api/v1/customer-profiles?email={}", email.replace('@', "%40")))
            .header(http::header::HOST, "acme.gladly.com")
            .header(http::header::AUTHORIZATION, &*self.auth)
            .header(http::header::ACCEPT, "application/json")
            .body(Body::default())?;
        let (status, body) = self.conn.send(find, self.reuse).await?;
        if status != 200 {
            bail!("find answered {status}");
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// Sends `profile` with the method and path of `write` (a POST or a PATCH); its status.
    pub async fn write(&mut self, write: http::request::Builder, profile: &Value) -> Result<u16> {
        let write = write
            .header(http::header::HOST, "acme.gladly.com")
            .header(http::header::AUTHORIZATION, &*self.auth)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(profile)?))?;
        let (status, _) = self.conn.send(write, self.reuse).await?;
        Ok(status)
    }
}

/// Runs `work(client, i)` for every `i` in `0..n` on `concurrency` workers, each with a client
/// of its own that `work` hands back; `reuse` keeps each worker's connection alive.
pub async fn for_each<F, Fut>(addr: SocketAddr, n: usize, concurrency: usize, reuse: bool, work: F) -> Result<()>
where
    F: Fn(NativeClient, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<NativeClient>> + Send + 'static,
{
    use base64::Engine;
    let auth: Arc<str> = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", gladly_emulator::DEFAULT_USER, gladly_emulator::DEFAULT_TOKEN))
    )
    .into();
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, work, auth) = (next.clone(), work.clone(), auth.clone());
        tasks.spawn(async move {
            let mut client = NativeClient { conn: NativeConn { addr, sender: None }, auth, reuse };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                client = work(client, i).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}
