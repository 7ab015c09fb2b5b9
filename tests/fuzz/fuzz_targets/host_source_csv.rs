//! The host's CSV source, through `host_harness::source::open` on a file holding the fuzz input.
//! The first byte picks the type hints, the second the delimiter; the rest is the file.
//!
//! Invariants (see `gladly_fuzz::read_all`): never panics, every record is a row or an invalid
//! row, an error ends the source, the reader ends.
#![no_main]

use host_harness::source::{CsvConfig, SourceConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pick, delim, file) = match data {
        [p, d, rest @ ..] => (*p, *d, rest),
        _ => return,
    };
    let path = gladly_fuzz::scratch("in.csv");
    std::fs::write(&path, file).expect("write the scratch file");
    let mut types = gladly_fuzz::hints(pick);
    // Hints on columns the header lacks are refused at open: keep the check, but not always.
    if pick & 0x80 == 0 {
        types.clear();
    }
    let delimiter = match delim % 4 {
        0 => None,
        1 => Some(';'),
        2 => Some('\t'),
        _ => Some(char::from(delim)),
    };
    let cfg = SourceConfig::Csv(CsvConfig { path: path.clone(), primary_key: "id".into(), types, delimiter });
    gladly_fuzz::read_all(&cfg, file);
});
