//! Get and Set Features (NVMe Base 2.0 5.21, 5.27) for a fabrics controller: the number of
//! queues, the keep alive timer, the asynchronous events reported, the volatile write cache
//! and the host identifier, as nvmet answers them. The Reservation Notification Mask, kept
//! per namespace, is [`crate::resv::NotifyMasks`].

use crate::capsule::{Sqe, Status};

/// Feature identifiers.
pub mod fid {
    /// Volatile write cache.
    pub const VOLATILE_WC: u8 = 0x06;
    /// Number of queues.
    pub const NUM_QUEUES: u8 = 0x07;
    /// Asynchronous event configuration.
    pub const ASYNC_EVENT: u8 = 0x0b;
    /// Keep alive timer.
    pub const KATO: u8 = 0x0f;
    /// Host identifier.
    pub const HOST_ID: u8 = 0x81;
    /// Reservation notification mask.
    pub const RESV_MASK: u8 = 0x82;
    /// Reservation persistence.
    pub const RESV_PERSIST: u8 = 0x83;
}

/// The asynchronous events an I/O controller takes (nvmet's `NVMET_AEN_CFG_ALL`): the five
/// SMART critical warnings, namespace attribute changed, ANA change.
pub const AEN_ALL: u32 = 0x1f | 1 << 8 | 1 << 11;
/// The one a discovery controller takes: discovery log change.
pub const AEN_DISCOVERY: u32 = 1 << 31;

/// A controller's settable features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Keep alive timeout in seconds (0: none).
    pub kato: u32,
    /// Asynchronous events enabled ([`AEN_ALL`] or [`AEN_DISCOVERY`] bits).
    pub aen: u32,
}

/// What Get Features answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Completion dword 0.
    Dword(u32),
    /// The 128-bit host identifier, as data.
    HostId,
}

/// The number of queues answer: I/O submission and completion queues, 0's based.
fn queues(max_qid: u16) -> u32 {
    let n = u32::from(max_qid.max(1) - 1);
    n << 16 | n
}

impl Features {
    /// Set Features for a controller of up to `max_qid` I/O queues (a discovery controller
    /// takes only the keep alive timer and its event). Returns completion dword 0.
    pub fn set(&mut self, sqe: &Sqe, max_qid: u16, discovery: bool) -> Result<u32, Status> {
        let cdw11 = sqe.cdw[1];
        let fid = sqe.cdw[0] as u8;
        if discovery && !matches!(fid, fid::KATO | fid::ASYNC_EVENT) {
            return Err(Status::INVALID_FIELD);
        }
        match fid {
            fid::NUM_QUEUES => {
                if cdw11 & 0xffff == 0xffff || cdw11 >> 16 == 0xffff {
                    return Err(Status::INVALID_FIELD);
                }
                Ok(queues(max_qid))
            }
            fid::KATO => {
                self.kato = cdw11.div_ceil(1000);
                Ok(self.kato)
            }
            fid::ASYNC_EVENT => {
                let allowed = if discovery { AEN_DISCOVERY } else { AEN_ALL };
                if cdw11 & !allowed != 0 {
                    return Err(Status::INVALID_FIELD);
                }
                self.aen = cdw11;
                Ok(cdw11)
            }
            // The host identifier comes with Connect over fabrics.
            fid::HOST_ID => Err(Status::SEQUENCE),
            // Nothing persists through a power loss here.
            fid::RESV_PERSIST if cdw11 & 1 == 0 => Ok(0),
            _ => Err(Status::INVALID_FIELD),
        }
    }

    /// Get Features (current values).
    pub fn get(&self, sqe: &Sqe, max_qid: u16, vwc: bool) -> Result<Value, Status> {
        match sqe.cdw[0] as u8 {
            fid::VOLATILE_WC => Ok(Value::Dword(u32::from(vwc))),
            fid::NUM_QUEUES => Ok(Value::Dword(queues(max_qid))),
            fid::KATO => Ok(Value::Dword(self.kato.saturating_mul(1000))),
            fid::ASYNC_EVENT => Ok(Value::Dword(self.aen)),
            fid::RESV_PERSIST => Ok(Value::Dword(0)),
            // Only the extended (128-bit) host identifier.
            fid::HOST_ID if sqe.cdw[1] & 1 != 0 => Ok(Value::HostId),
            _ => Err(Status::INVALID_FIELD),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqe(cdw10: u32, cdw11: u32) -> Sqe {
        let mut raw = [0u8; 64];
        raw[40..44].copy_from_slice(&cdw10.to_le_bytes());
        raw[44..48].copy_from_slice(&cdw11.to_le_bytes());
        Sqe::decode(&raw)
    }

    #[test]
    fn set_and_get() {
        let mut f = Features::default();
        assert_eq!(f.set(&sqe(0x07, 0x0003_0003), 9, false), Ok(0x0008_0008));
        assert_eq!(
            f.set(&sqe(0x07, 0xffff), 9, false),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(f.get(&sqe(0x07, 0), 1, true), Ok(Value::Dword(0)));
        assert_eq!(f.set(&sqe(0x0f, 15001), 9, false), Ok(16));
        assert_eq!(f.kato, 16);
        assert_eq!(f.get(&sqe(0x0f, 0), 9, true), Ok(Value::Dword(16000)));
        // SMART warnings, namespace attribute and ANA notices on an I/O controller; the
        // discovery log change only on a discovery controller.
        assert_eq!(f.set(&sqe(0x0b, 0x1f | 1 << 8), 9, false), Ok(0x11f));
        assert_eq!(
            f.set(&sqe(0x0b, 1 << 31), 9, false),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            f.set(&sqe(0x0b, 1 << 9), 9, false),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(f.get(&sqe(0x0b, 0), 9, true), Ok(Value::Dword(0x11f)));
        let mut d = Features::default();
        assert_eq!(d.set(&sqe(0x0b, 1 << 31), 0, true), Ok(1 << 31));
        assert_eq!(
            d.set(&sqe(0x0b, 1 << 8), 0, true),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(d.set(&sqe(0x0f, 5000), 0, true), Ok(5));
        assert_eq!(d.set(&sqe(0x07, 0), 0, true), Err(Status::INVALID_FIELD));
        // Reservation persistence.
        assert_eq!(f.set(&sqe(0x83, 0), 9, false), Ok(0));
        assert_eq!(f.set(&sqe(0x83, 1), 9, false), Err(Status::INVALID_FIELD));
        assert_eq!(f.get(&sqe(0x83, 0), 9, false), Ok(Value::Dword(0)));
        assert_eq!(f.get(&sqe(0x06, 0), 9, false), Ok(Value::Dword(0)));
        assert_eq!(f.get(&sqe(0x81, 1), 9, true), Ok(Value::HostId));
        assert_eq!(f.get(&sqe(0x81, 0), 9, true), Err(Status::INVALID_FIELD));
        assert_eq!(f.set(&sqe(0x81, 1), 9, false), Err(Status::SEQUENCE));
        assert_eq!(f.set(&sqe(0x02, 0), 9, false), Err(Status::INVALID_FIELD));
    }
}
