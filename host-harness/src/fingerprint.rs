//! Fingerprints: what the planner compares and the state stores.
//!
//! `SHA-256("gladly-harness-fp/1" ‖ len ‖ mapping fingerprint ‖ len ‖ component version ‖
//! payload)`, truncated to 16 bytes (lengths as u64 little-endian, so fields cannot run into each
//! other). The payload is the plugin's canonical JSON, so equal records give equal fingerprints.
//! Because the mapping fingerprint and the component version are hashed in, changing either
//! changes every fingerprint: every record is re-sent once, and the planner says why.
//!
//! A leaf module: the planner ([`crate::sync::plan`]) computes fingerprints and the state
//! ([`crate::state`]) stores them, and neither needs the other to do so.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::contract::model::{FieldMapping, Setting, SyncMode};

/// The 16-byte fingerprint of a mapped record in its mapping/version context.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    /// From exactly 16 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Fingerprint> {
        <[u8; 16]>::try_from(b).ok().map(Fingerprint)
    }

    /// Lowercase hex (32 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From 32 hex characters.
    pub fn from_hex(s: &str) -> Option<Fingerprint> {
        hex::decode(s).ok().and_then(|b| Fingerprint::from_slice(&b))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

const DOMAIN: &[u8] = b"gladly-harness-fp/1";

/// Fingerprints payloads for one mapping fingerprint and component version (the context is
/// hashed once, then cloned per payload).
#[derive(Clone)]
pub struct Fingerprinter {
    prefix: Sha256,
}

impl Fingerprinter {
    /// A fingerprinter for this context.
    pub fn new(mapping_fingerprint: &str, component_version: &str) -> Self {
        let mut prefix = Sha256::new();
        prefix.update(DOMAIN);
        for part in [mapping_fingerprint, component_version] {
            prefix.update((part.len() as u64).to_le_bytes());
            prefix.update(part.as_bytes());
        }
        Fingerprinter { prefix }
    }

    /// The fingerprint of a canonical payload.
    pub fn fingerprint(&self, payload: &str) -> Fingerprint {
        let mut h = self.prefix.clone();
        h.update(payload.as_bytes());
        let d = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        Fingerprint(out)
    }
}

/// The fingerprint of one payload in its context (see the module docs).
pub fn fingerprint(payload: &str, mapping_fingerprint: &str, component_version: &str) -> Fingerprint {
    Fingerprinter::new(mapping_fingerprint, component_version).fingerprint(payload)
}

/// A fingerprint (32 hex characters) of everything besides the row that shapes what is sent:
/// the mode, the mapping and the non-secret settings, each in a canonical order, so reordering
/// them changes nothing. Never pass secrets here (they would not leak — it is a hash — but a
/// rotated token would then re-send everything).
pub fn mapping_fingerprint(mode: SyncMode, mapping: &[FieldMapping], settings: &[Setting]) -> String {
    let mut m: Vec<(&str, &str)> = mapping.iter().map(|f| (f.target.as_str(), f.source.as_str())).collect();
    m.sort_unstable();
    let mut s: Vec<(&str, &str)> = settings.iter().map(|x| (x.key.as_str(), x.value.as_str())).collect();
    s.sort_unstable();
    let doc = serde_json::json!({ "mode": mode, "mapping": m, "settings": s });
    let d = Sha256::digest(doc.to_string().as_bytes());
    hex::encode(&d[..16])
}
