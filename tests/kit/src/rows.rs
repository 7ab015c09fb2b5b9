//! Generated source rows: numbered people as CSV text, in the two shapes the tests use.

/// A header line and `n` lines made by `line(i)` (i from 1).
fn numbered(header: &str, n: usize, line: impl Fn(usize) -> String) -> String {
    let mut s = format!("{header}\n");
    for i in 1..=n {
        s.push_str(&line(i));
        s.push('\n');
    }
    s
}

/// `n` people as CSV `id,email,name`: keys `{prefix}-{i}`, emails `{prefix}{i}@example.com`,
/// names `{name} {i}`.
pub fn people(prefix: &str, n: usize, name: &str) -> String {
    numbered("id,email,name", n, |i| format!("{prefix}-{i},{prefix}{i}@example.com,{name} {i}"))
}

/// `n` rows as CSV `id,name,email` with keys `r1`…`rn`, names `Person {i}` and emails
/// `person{i}@example.com`.
pub fn simple(n: usize) -> String {
    numbered("id,name,email", n, |i| format!("r{i},Person {i},person{i}@example.com"))
}
