//! rtarget's iSCSI protocol logic (RFC 7143). Each module depends only on `core`, so the same
//! files are compiled into the kernel fabric (by `#[path]`) and tested and fuzzed here.
#![cfg_attr(not(test), no_std)]

pub mod chap;
pub mod fuzz;
pub mod login;
pub mod pdu;
pub mod portal;
pub mod serial;
pub mod text;
pub mod tpg_param;
pub mod xfer;
