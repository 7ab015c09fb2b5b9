//! The deterministic id this destination gives the profiles it creates.
//!
//! A create that timed out may have succeeded; because a retry sends the same id, Gladly answers
//! 409 `taken` instead of creating a second profile, and the plugin reads back its own profile.

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

/// Marks ids minted by this plugin (and keeps them from looking like Gladly's own).
pub const PREFIX: &str = "retl-";
/// Base32 characters kept from the digest (160 bits).
const DIGEST_CHARS: usize = 32;

/// `retl-` + the first 32 characters of lowercase base32(SHA-256(sync-id, 0x00, row key)).
///
/// The NUL separator keeps (`ab`, `c`) and (`a`, `bc`) apart. The result is 37 characters of
/// `[a-z2-7-]`: URL-safe and under Gladly's 50-character limit.
pub fn create_id(sync_id: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(sync_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(key.as_bytes());
    let encoded = BASE32_NOPAD.encode(&hasher.finalize()).to_ascii_lowercase();
    let digest: String = encoded.chars().take(DIGEST_CHARS).collect();
    format!("{PREFIX}{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_url_safe_and_short() {
        let a = create_id("sync-1", "row-1");
        assert_eq!(a, create_id("sync-1", "row-1"));
        assert_eq!(a.len(), PREFIX.len() + 32);
        assert!(a.len() < 50);
        assert!(a.starts_with(PREFIX));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn inputs_are_separated() {
        assert_ne!(create_id("sync-1", "row-1"), create_id("sync-1", "row-2"));
        assert_ne!(create_id("sync-1", "row-1"), create_id("sync-2", "row-1"));
        assert_ne!(create_id("ab", "c"), create_id("a", "bc"));
    }

    #[test]
    fn known_values() {
        // Pinned: changing the formula would break idempotency for syncs already running.
        assert_eq!(create_id("s", "k"), "retl-qxrdqkemqxbsqly6znec3lz5r6mxmcjx");
        assert_eq!(
            create_id("sync-1", "row-1"),
            "retl-bpf5aqbjw6lwpmfcmk7qeoslmi562bfk"
        );
    }
}
