//! The standalone binary prints its address and serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_listens_on_loopback() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gladly-emulator"))
        .args(["--port", "0", "--rate-limit", "5", "--seed", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("gladly-emulator listening on http://")
        .map(str::to_string);
    let result = async {
        let addr: std::net::SocketAddr = url
            .ok_or("unexpected first line")?
            .parse()
            .map_err(|_| "bad address")?;
        if !addr.ip().is_loopback() {
            return Err("not loopback");
        }
        let client = test_kit::http::Client {
            addr,
            host: "acme.gladly.com".into(),
            auth: Some(("api@example.com".into(), "emulator-token".into())),
            authorization: None,
        };
        let r = client.get("/api/v1/organization").await;
        if r.status != 200 || r.header("ratelimit-limit-second").as_deref() != Some("5") {
            return Err("unexpected answer");
        }
        Ok(())
    }
    .await;
    child.kill().unwrap();
    let _ = child.wait();
    result.unwrap();
}
