//! Replays the committed fuzzing corpus (corpus/<target>) through the fuzzing entry
//! points: every input a fuzzer kept, and every crash it found once fixed, stays a test.

#[path = "../../../iscsi/proto/tests/common/mod.rs"]
mod common;
use common::replay;

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
