//! Secrets the host holds for a tenant. They never enter the component, never appear in a
//! `Debug` or `Display`, and are read only from the environment or a file (never the command
//! line, where `ps` would show them).

use std::path::PathBuf;

use serde::Deserialize;

/// A secret value; prints as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that attaches it to a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// An environment variable's name.
    Env(String),
    /// A file whose first line is the secret.
    File(PathBuf),
}

/// Why a secret could not be read. Names the variable or file, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// The variable is unset or empty.
    #[error("the environment variable {0} is not set; export it with the API token (never put the token in the config file or on the command line)")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("cannot read the secret file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is empty.
    #[error("the secret file {0} is empty; put the API token on its first line")]
    EmptyFile(String),
}

impl SecretRef {
    /// Read the secret.
    pub fn read(&self) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                _ => Err(SecretError::MissingEnv(name.clone())),
            },
            SecretRef::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                    path: path.display().to_string(),
                    reason: e.kind().to_string(),
                })?;
                let first = text.lines().next().unwrap_or("").trim();
                if first.is_empty() {
                    return Err(SecretError::EmptyFile(path.display().to_string()));
                }
                Ok(Secret::new(first))
            }
        }
    }

    /// Whether the secret is available, without reading it into a value.
    pub fn is_available(&self) -> bool {
        self.read().is_ok()
    }
}

/// HTTP Basic credentials: a username and a secret token.
#[derive(Clone, Debug)]
pub struct BasicCredential {
    /// The username (an email for Gladly); not secret.
    pub username: String,
    /// The token.
    pub token: Secret,
}

impl BasicCredential {
    /// The `Authorization` header value.
    pub fn header_value(&self) -> String {
        use base64::Engine as _;
        let raw = format!("{}:{}", self.username, self.token.expose());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// A credential bound to the one API host it may be sent to: the host the validated config
/// resolved as its base URL (https, port 443). Every other host, granted or not, gets no
/// credential.
#[derive(Clone, Debug)]
pub struct HostCredential {
    /// The lowercase host name.
    pub host: String,
    /// The credential.
    pub basic: BasicCredential,
}

/// Removes a tenant's secret, in every form the host sends it, from text a plugin produced (a
/// server that echoes request headers hands the Basic value to the guest).
#[derive(Clone, Default)]
pub struct Redactor {
    /// The secret's forms, longest first, so a form containing another is replaced whole.
    forms: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.forms.len())
    }
}

impl Redactor {
    /// A redactor with nothing to remove (no credential).
    pub fn none() -> Self {
        Redactor::default()
    }

    /// The forms of `credential`: the token, and the Basic value with and without padding, in
    /// the standard and the URL-safe alphabet.
    pub fn of(credential: &BasicCredential) -> Self {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let token = credential.token.expose();
        let raw = format!("{}:{token}", credential.username);
        let mut forms = vec![token.to_string()];
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(&raw));
        }
        forms.retain(|f| !f.is_empty());
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Redactor { forms }
    }

    /// Whether `text` holds any form of the secret.
    pub fn finds_secret(&self, text: &str) -> bool {
        self.forms.iter().any(|f| text.contains(f.as_str()))
    }

    /// `text` with every form of the secret replaced by `[redacted]`.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut out = std::borrow::Cow::Borrowed(text);
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(form.as_str(), "[redacted]"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("tok-123");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let c = BasicCredential { username: "a@b.co".into(), token: s };
        assert!(!format!("{c:?}").contains("tok-123"));
    }

    #[test]
    fn reads_from_file_first_line() {
        let dir = std::env::temp_dir().join(format!("secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "abc\nignored\n").unwrap();
        assert_eq!(SecretRef::File(f.clone()).read().unwrap().expose(), "abc");
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(SecretRef::File(f).read(), Err(SecretError::EmptyFile(_))));
    }

    #[test]
    fn missing_env_names_the_variable() {
        let e = SecretRef::Env("SURELY_UNSET_VAR_4242".into()).read().unwrap_err();
        assert!(e.to_string().contains("SURELY_UNSET_VAR_4242"));
    }

    #[test]
    fn basic_header() {
        let c = BasicCredential { username: "api@example.com".into(), token: Secret::new("t") };
        assert_eq!(c.header_value(), "Basic YXBpQGV4YW1wbGUuY29tOnQ=");
    }
}
