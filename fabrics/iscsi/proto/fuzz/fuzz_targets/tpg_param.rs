#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtarget_iscsi_proto::fuzz::tpg_param(data));
