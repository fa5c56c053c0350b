//! rtarget's NVMe/TCP protocol logic (NVMe over Fabrics with the NVMe/TCP transport binding).
//! Each module depends only on `core`, so the same files are compiled into the kernel fabric
//! (by `#[path]`) and tested and fuzzed here.
#![cfg_attr(not(test), no_std)]

pub mod admin;
pub mod capsule;
pub mod features;
pub mod fuzz;
pub mod identify;
pub mod log;
pub mod nvm;
pub mod pdu;
pub mod regs;
pub mod resv;
pub mod status;
