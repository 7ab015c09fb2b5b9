//! The PostgreSQL the source tests read from: `HOST_HARNESS_PG_URL`, default
//! `postgresql://postgres@127.0.0.1:5432/test` (the server this project's machines run). Each test
//! makes and drops its own table or schema there.

/// The connection string of the test database.
pub fn url() -> String {
    std::env::var("HOST_HARNESS_PG_URL").unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into())
}
