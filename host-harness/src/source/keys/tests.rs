//! The key check with a tiny memory table, so that almost every key is in a spilled, merged run.

use super::*;

/// A checker keeping `memory_keys` in memory, spilling into `dir`.
fn tiny(dir: &test_kit::TempDir, memory_keys: usize) -> KeyChecker {
    KeyChecker::with_spill("id", SpillConfig { dir: dir.path().to_path_buf(), memory_keys })
}

/// Files in `dir`.
fn files(dir: &test_kit::TempDir) -> usize {
    std::fs::read_dir(dir.path()).unwrap().count()
}

fn code(r: Result<Result<(), RecordError>, SpillError>) -> Option<ErrorCode> {
    r.unwrap().err().map(|e| e.code)
}

#[test]
fn missing_and_duplicate() {
    let mut k = KeyChecker::new("id");
    assert_eq!(k.check(&Cell::Integer(1)).unwrap().unwrap(), "1");
    assert_eq!(k.check(&Cell::Text("a".into())).unwrap().unwrap(), "a");
    assert_eq!(k.check(&Cell::Integer(1)).unwrap().unwrap_err().code, ErrorCode::DuplicateKey);
    assert_eq!(k.check(&Cell::Null).unwrap().unwrap_err().code, ErrorCode::MissingField);
    assert_eq!(k.check(&Cell::Text("  ".into())).unwrap().unwrap_err().code, ErrorCode::MissingField);
    assert_eq!(k.len(), 2);
}

#[test]
fn a_duplicate_of_a_spilled_key_is_refused() {
    let dir = test_kit::TempDir::new("keys-spill");
    let mut k = tiny(&dir, 4);
    for i in 0..1000 {
        assert_eq!(code(k.remember(&format!("k{i}"))), None, "k{i} is new");
    }
    // 249 spills of 4 merged four at a time: far fewer files than spills, several tiers.
    let runs = k.set().run_count();
    assert!((2..=20).contains(&runs), "{runs} runs");
    assert_eq!(k.len(), 1000);
    // Keys 0..996 are only on disk now (the last 4 are in memory); every one is still a duplicate.
    for i in 0..1000 {
        assert_eq!(code(k.remember(&format!("k{i}"))), Some(ErrorCode::DuplicateKey), "k{i} repeats");
        assert!(k.contains(&format!("k{i}")).unwrap());
    }
    assert!(!k.contains("k1000").unwrap());
    assert_eq!(k.len(), 1000, "a refused key is not added twice");
}

#[test]
fn distinct_keys_are_never_refused() {
    let dir = test_kit::TempDir::new("keys-distinct");
    // 7 per run: runs and tiers of odd sizes; 30k keys make filter false positives certain, and
    // each must be cleared by the run files.
    let mut k = tiny(&dir, 7);
    let refused = (0..30_000).filter(|i| code(k.remember(&format!("customer-{i}"))).is_some()).count();
    assert_eq!(refused, 0);
    assert_eq!(k.len(), 30_000);
    let sorted: Vec<u128> = k.set().sorted().map(Result::unwrap).collect();
    assert_eq!(sorted.len(), 30_000, "every key once in the merged order");
    assert!(sorted.windows(2).all(|w| w[0] < w[1]), "ascending");
}

#[test]
fn missing_keys_are_counted_by_a_merge_join() {
    let dir = test_kit::TempDir::new("keys-missing");
    let mut source = tiny(&dir, 8);
    for i in 0..100 {
        source.remember(&format!("k{i}")).unwrap().unwrap();
    }
    let count = |state: &[String]| {
        let mut s = source.sorter();
        for key in state {
            s.push(key_hash(key)).unwrap();
        }
        source.count_missing(&mut s).unwrap()
    };
    let keys = |r: std::ops::Range<i32>| r.map(|i| format!("k{i}")).collect::<Vec<_>>();
    assert_eq!(count(&keys(50..150)), 50, "k100..k149 left the source");
    assert_eq!(count(&keys(0..100)), 0, "all still there");
    assert_eq!(count(&keys(200..237)), 37, "none there");
    assert_eq!(count(&[]), 0);
    let mut mixed = keys(0..3);
    mixed.extend(["gone".to_string(), "k99".into(), "also gone".into()]);
    assert_eq!(count(&mixed), 2);
}

#[test]
fn run_files_are_removed_with_the_set() {
    let dir = test_kit::TempDir::new("keys-cleanup");
    let mut k = tiny(&dir, 3);
    for i in 0..200 {
        k.remember(&format!("k{i}")).unwrap().unwrap();
    }
    // Merged runs' files are gone as soon as the merge is written.
    assert_eq!(files(&dir), k.set().run_count());
    assert!(files(&dir) > 0);
    let mut s = k.sorter();
    for i in 0..50 {
        s.push(key_hash(&format!("s{i}"))).unwrap();
    }
    assert_eq!(files(&dir), k.set().run_count() + s.run_count());
    drop(s);
    drop(k);
    assert_eq!(files(&dir), 0);
}

#[test]
fn a_failed_spill_is_an_error_naming_the_folder() {
    let dir = test_kit::TempDir::new("keys-nodir");
    let gone = dir.join("no-such-folder");
    let mut k = KeyChecker::with_spill("id", SpillConfig { dir: gone.clone(), memory_keys: 2 });
    k.remember("a").unwrap().unwrap();
    k.remember("b").unwrap().unwrap();
    let e = k.remember("c").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&gone.display().to_string()) && msg.contains("TMPDIR"), "{msg}");
}
