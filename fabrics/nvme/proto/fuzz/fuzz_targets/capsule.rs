#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtarget_nvme_proto::fuzz::capsule(data));
