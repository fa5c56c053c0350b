//! The corpus replay shared by the protocol crates' `tests/corpus.rs` (the NVMe crate
//! includes this file by path).

use std::fs;
use std::path::Path;

/// Runs every input of `corpus/<dir>` through `run`; returns how many there were.
pub fn replay(dir: &str, run: fn(&[u8])) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(dir);
    let mut n = 0;
    for entry in fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let file = entry.unwrap().path();
        let data = fs::read(&file).unwrap();
        let r = std::panic::catch_unwind(|| run(&data));
        assert!(r.is_ok(), "{} fails", file.display());
        n += 1;
    }
    n
}
