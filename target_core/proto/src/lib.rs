//! rtarget's pure protocol logic. Each module depends only on `core`, so the same files are
//! compiled into the kernel crates (by `#[path]`) and tested here on the host.
#![cfg_attr(not(test), no_std)]

pub mod cdb;
pub mod command;
pub mod pi;
pub mod pr;
pub mod sense;
pub mod spc;
pub mod xcopy;
