//! The PostgreSQL the source tests read from: `HOST_HARNESS_PG_URL`, default
//! `postgresql://postgres@127.0.0.1:5432/test` (the server this project's machines run). Each test
//! makes and drops its own table or schema there.

/// The connection string of the test database.
pub fn url() -> String {
    std::env::var("HOST_HARNESS_PG_URL").unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own on the test server, dropped (with its connections) when this is dropped:
/// for tests of code that owns a fixed schema, so that parallel tests do not share it.
pub struct FreshDatabase {
    name: String,
    url: String,
}

impl FreshDatabase {
    /// Creates `t_<tag>_<unique>` on the server of [`url`].
    pub fn new(tag: &str) -> FreshDatabase {
        let name = format!("t_{tag}_{}", crate::unique("")).to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        off_runtime(|| {
            let mut admin = postgres::Client::connect(&url(), postgres::NoTls).expect("PostgreSQL on 127.0.0.1:5432");
            admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
        });
        let base = url();
        let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(&base);
        FreshDatabase { url: format!("{server}/{name}"), name }
    }

    /// Its connection string.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `f` with a client on it, on a thread of its own (the blocking client must not run
    /// on an async runtime's thread; async tests call this directly).
    pub fn with_client<R: Send>(&self, f: impl FnOnce(&mut postgres::Client) -> R + Send) -> R {
        off_runtime(|| f(&mut postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")))
    }
}

/// Runs `f` on a scoped thread: outside any async runtime.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().expect("the database thread panicked"))
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        off_runtime(|| {
            if let Ok(mut admin) = postgres::Client::connect(&url(), postgres::NoTls) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
            }
        });
    }
}
