//! Replays the committed fuzzing corpus (corpus/<target>) through the fuzzing entry
//! points: every input a fuzzer kept, and every crash it found once fixed, stays a test.

use std::fs;
use std::path::Path;

fn replay(dir: &str, run: fn(&[u8])) -> usize {
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

#[test]
fn pdu_corpus() {
    let n = replay("pdu", rtarget_nvme_proto::fuzz::pdu);
    assert!(n >= 8, "corpus/pdu has only {n} inputs");
}

#[test]
fn capsule_corpus() {
    let n = replay("capsule", rtarget_nvme_proto::fuzz::capsule);
    assert!(n >= 8, "corpus/capsule has only {n} inputs");
}
