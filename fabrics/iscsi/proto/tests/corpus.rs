//! Replays the committed fuzzing corpus (corpus/<target>) through the fuzzing entry
//! points: every input a fuzzer kept, and every crash it found once fixed, stays a test.

mod common;
use common::replay;

#[test]
fn pdu_corpus() {
    let n = replay("pdu", rtarget_iscsi_proto::fuzz::pdu);
    assert!(n >= 16, "corpus/pdu has only {n} inputs");
}

#[test]
fn text_corpus() {
    let n = replay("text", rtarget_iscsi_proto::fuzz::text);
    assert!(n >= 16, "corpus/text has only {n} inputs");
}

#[test]
fn login_corpus() {
    let n = replay("login", rtarget_iscsi_proto::fuzz::login);
    assert!(n >= 8, "corpus/login has only {n} inputs");
}

#[test]
fn xfer_corpus() {
    let n = replay("xfer", rtarget_iscsi_proto::fuzz::xfer);
    assert!(n >= 4, "corpus/xfer has only {n} inputs");
}

#[test]
fn tpg_param_corpus() {
    let n = replay("tpg_param", rtarget_iscsi_proto::fuzz::tpg_param);
    assert!(n >= 4, "corpus/tpg_param has only {n} inputs");
}
