//! `check-connection`: one cheap authenticated call, `GET /api/v1/organization`.

use serde_json::Value;

use crate::classify::{self, Step};
use crate::model::{ConnectionInfo, DestError, ErrorCategory, ErrorCode};
use crate::settings::Config;
use crate::transport::{HttpRequest, Method, Transport};

/// Proves the domain and the credentials; the organization's name is returned when Gladly
/// gives one.
pub fn check_connection(
    config: &Config,
    transport: &mut dyn Transport,
) -> Result<ConnectionInfo, DestError> {
    let host = config.host();
    let step = Step {
        key: None,
        action: "reading /api/v1/organization",
        host: &host,
    };
    let req = HttpRequest {
        method: Method::Get,
        url: format!("{}/api/v1/organization", config.base_url()),
        headers: Vec::new(),
        body: None,
    };
    let resp = transport
        .send(req)
        .map_err(|e| classify::from_transport(&e, &step))?;
    match resp.status {
        200 => Ok(ConnectionInfo {
            account: serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("name")?.as_str().map(str::to_string)),
        }),
        404 => {
            let mut e = DestError::new(
                ErrorCode::NotFound,
                ErrorCategory::FixConfig,
                format!(
                    "Connection check: {host} has no Gladly API (HTTP 404). Fix: check the \
                     `domain` setting."
                ),
            )
            .with_field("domain");
            e.http_status = Some(404);
            Err(e)
        }
        _ => Err(classify::from_status(&resp, &step)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Setting;
    use crate::settings::parse;
    use crate::transport::{HttpResponse, TransportError, TransportErrorKind};

    struct One(Result<HttpResponse, TransportError>, Vec<HttpRequest>);

    impl Transport for One {
        fn send(&mut self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
            self.1.push(req);
            self.0.clone()
        }
    }

    fn check(
        reply: Result<HttpResponse, TransportError>,
    ) -> (Result<ConnectionInfo, DestError>, Vec<HttpRequest>) {
        let config = parse(&[
            Setting {
                key: "domain".into(),
                value: "acme.us-1".into(),
            },
            Setting {
                key: "username".into(),
                value: "api@acme.com".into(),
            },
        ])
        .unwrap();
        let mut t = One(reply, Vec::new());
        (check_connection(&config, &mut t), t.1)
    }

    fn status(s: u16, body: &str) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status: s,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn ok_with_account_name() {
        let (r, sent) = check(status(200, r#"{"id":"o1","name":"Acme Inc"}"#));
        assert_eq!(r.unwrap().account.as_deref(), Some("Acme Inc"));
        assert_eq!(
            sent[0].url,
            "https://acme.us-1.gladly.com/api/v1/organization"
        );
        assert_eq!(sent[0].method, Method::Get);
        let (r, _) = check(status(200, "not json"));
        assert_eq!(r.unwrap().account, None);
    }

    #[test]
    fn auth_and_permission() {
        let e = check(status(401, "")).0.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthenticationFailed);
        assert!(e.message.contains("username") && e.message.contains("token"));
        let e = check(status(403, "")).0.unwrap_err();
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        assert!(e.message.contains("API User"));
    }

    #[test]
    fn connection_failures_point_at_the_domain() {
        let e = check(Err(TransportError {
            kind: TransportErrorKind::Transport,
            message: "DnsError".into(),
        }))
        .0
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Transport);
        assert!(e.message.contains("domain"));
        assert_eq!(e.field.as_deref(), Some("domain"));
        let e = check(status(404, "")).0.unwrap_err();
        assert!(e.message.contains("domain"));
    }
}
