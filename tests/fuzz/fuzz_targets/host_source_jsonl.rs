//! The host's JSON Lines source, through `host_harness::source::open` on a file holding the fuzz
//! input. The first byte picks the type hints; the rest is the file.
//!
//! Invariants (see `gladly_fuzz::read_all`): never panics, every line is a row, an invalid row
//! or blank, an error ends the source, the reader ends.
#![no_main]

use host_harness::source::{JsonlConfig, SourceConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((pick, file)) = data.split_first() else { return };
    let path = gladly_fuzz::scratch("in.jsonl");
    std::fs::write(&path, file).expect("write the scratch file");
    let cfg = SourceConfig::Jsonl(JsonlConfig { path: path.clone(), primary_key: "id".into(), types: gladly_fuzz::hints(*pick) });
    gladly_fuzz::read_all(&cfg, file);
});
