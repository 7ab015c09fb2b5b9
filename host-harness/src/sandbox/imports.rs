//! The load-time import check: a component may import only what a destination needs.

/// Interfaces a destination may import, by prefix of the import name (the version follows `@`).
///
/// wasi:http to reach its API, wasi:io/clocks/random that wasi:http and Rust's runtime need, the
/// standard streams (captured and prefixed by the host), the contract's `host` logging, and the
/// few interfaces Rust's `wasm32-wasip2` runtime links even when unused (environment and exit;
/// the host gives them an empty environment and no filesystem preopens).
pub const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:http/outgoing-handler@",
    "wasi:http/types@",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/terminal-",
    "reverse-etl:destination/host@",
    "reverse-etl:destination/types@",
];

/// The first import outside the allowlist, if any.
pub fn first_forbidden<'a>(imports: impl IntoIterator<Item = &'a str>) -> Option<String> {
    imports
        .into_iter()
        .find(|name| !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_destination_set_and_names_the_first_other() {
        let ok = ["wasi:http/outgoing-handler@0.2.2", "wasi:io/streams@0.2.2", "reverse-etl:destination/host@0.1.0"];
        assert_eq!(first_forbidden(ok), None);
        let bad = ["wasi:io/streams@0.2.2", "wasi:sockets/tcp@0.2.2", "wasi:filesystem/types@0.2.2"];
        assert_eq!(first_forbidden(bad).as_deref(), Some("wasi:sockets/tcp@0.2.2"));
        assert!(first_forbidden(["wasi:filesystem/preopens@0.2.0"]).is_some());
    }
}
