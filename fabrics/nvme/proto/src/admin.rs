//! Admin commands a fabrics controller takes (NVMe Base 2.0 5): which ones an I/O or a
//! discovery controller runs, decoded with the data length each must move.

use crate::capsule::{admin, Sqe, Status};
use crate::identify::{cns, IDENTIFY_LEN};
use crate::log::{self, lid, GetLogPage};

/// An admin command, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admin {
    /// Identify: `cns`, for namespace `nsid` (CNS 00h and 03h) or above it (CNS 02h).
    Identify { cns: u8, nsid: u32 },
    /// Get Log Page.
    GetLogPage(GetLogPage),
    /// Set Features (the SQE says which).
    SetFeatures,
    /// Get Features (the SQE says which).
    GetFeatures,
    /// Keep Alive.
    KeepAlive,
    /// Asynchronous Event Request: completes when an event happens.
    AsyncEvent,
    /// Abort command `cid` of queue `sqid`.
    Abort { sqid: u16, cid: u16 },
}

/// Decodes an admin command for an I/O controller or a discovery controller (Identify
/// Controller, the discovery log, keep alive and asynchronous events only), with the bytes
/// its data pointer says it moves (`data_len`).
pub fn decode(sqe: &Sqe, discovery: bool, data_len: u32) -> Result<Admin, Status> {
    let cdw10 = sqe.cdw[0];
    let moves = |n: u32| {
        if data_len == n {
            Ok(())
        } else {
            Err(Status::SGL_LENGTH)
        }
    };
    let cmd = match sqe.opcode {
        admin::IDENTIFY => {
            let cns = cdw10 as u8;
            let known = if discovery {
                cns == cns::CTRL
            } else {
                matches!(
                    cns,
                    cns::NS | cns::CTRL | cns::ACTIVE_NS_LIST | cns::NS_DESC_LIST
                )
            };
            if !known {
                return Err(Status::INVALID_FIELD);
            }
            moves(IDENTIFY_LEN as u32)?;
            Admin::Identify {
                cns,
                nsid: sqe.nsid,
            }
        }
        admin::GET_LOG_PAGE => {
            let g = log::get_log_page(sqe)?;
            let known = if discovery {
                g.lid == lid::DISCOVERY
            } else {
                matches!(
                    g.lid,
                    lid::ERROR
                        | lid::SMART
                        | lid::FW_SLOT
                        | lid::CHANGED_NS
                        | lid::CMD_EFFECTS
                        | lid::ANA
                        | lid::RESERVATION
                )
            };
            if !known {
                return Err(Status::INVALID_FIELD);
            }
            moves(g.len)?;
            Admin::GetLogPage(g)
        }
        admin::SET_FEATURES => {
            moves(0)?;
            Admin::SetFeatures
        }
        admin::GET_FEATURES => {
            // Only the host identifier returns data (16 bytes).
            let n = if cdw10 as u8 == crate::features::fid::HOST_ID {
                16
            } else {
                0
            };
            moves(n)?;
            Admin::GetFeatures
        }
        admin::KEEP_ALIVE => {
            moves(0)?;
            Admin::KeepAlive
        }
        admin::ASYNC_EVENT => {
            moves(0)?;
            Admin::AsyncEvent
        }
        admin::ABORT if !discovery => {
            moves(0)?;
            Admin::Abort {
                sqid: cdw10 as u16,
                cid: (cdw10 >> 16) as u16,
            }
        }
        _ => return Err(Status::INVALID_OPCODE),
    };
    Ok(cmd)
}

/// Asynchronous event completion dword 0: type, information and the log page to read.
pub fn async_event(ty: u8, info: u8, log_page: u8) -> u32 {
    u32::from(ty & 7) | u32::from(info) << 8 | u32::from(log_page) << 16
}

/// Asynchronous events the controller sends.
pub mod aen {
    /// Notice (type 2): namespace attribute changed (read the changed namespace list).
    pub const NS_CHANGED: (u8, u8, u8) = (2, 0x00, super::lid::CHANGED_NS);
    /// Notice: ANA change (read the ANA log).
    pub const ANA_CHANGE: (u8, u8, u8) = (2, 0x03, super::lid::ANA);
    /// Notice: discovery log page change.
    pub const DISC_CHANGE: (u8, u8, u8) = (2, 0xf0, super::lid::DISCOVERY);
    /// I/O command specific (type 6): a reservation notification log entry is available.
    pub const RESERVATION: (u8, u8, u8) = (6, 0x00, super::lid::RESERVATION);

    /// The notices a controller masks once queued, until the host reads their log page
    /// without Retain Asynchronous Event (as nvmet; reservation events are not masked,
    /// as on nvmet: the Linux host never reads their log).
    #[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
    pub struct Mask(u8);

    impl Mask {
        fn bit(log_page: u8) -> u8 {
            match log_page {
                super::lid::CHANGED_NS => 1,
                super::lid::ANA => 2,
                super::lid::DISCOVERY => 4,
                _ => 0,
            }
        }

        /// Whether `ev` may be sent; if so, its kind is masked from now on.
        pub fn admit(&mut self, ev: (u8, u8, u8)) -> bool {
            let b = Self::bit(ev.2);
            let masked = self.0 & b != 0;
            self.0 |= b;
            !masked
        }

        /// Log page `lid` is being read (`rae`: Retain Asynchronous Event): unmasks its event.
        pub fn read(&mut self, lid: u8, rae: bool) {
            if !rae {
                self.0 &= !Self::bit(lid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_masked_until_their_log_is_read() {
        let mut m = aen::Mask::default();
        assert!(m.admit(aen::DISC_CHANGE));
        assert!(!m.admit(aen::DISC_CHANGE));
        // Each kind masks alone.
        assert!(m.admit(aen::NS_CHANGED));
        assert!(m.admit(aen::ANA_CHANGE));
        assert!(!m.admit(aen::ANA_CHANGE));
        // Reservation notifications are never masked.
        assert!(m.admit(aen::RESERVATION) && m.admit(aen::RESERVATION));
        // Reading with RAE set, or another page, keeps the mask.
        m.read(lid::DISCOVERY, true);
        m.read(lid::SMART, false);
        assert!(!m.admit(aen::DISC_CHANGE));
        m.read(lid::DISCOVERY, false);
        assert!(m.admit(aen::DISC_CHANGE));
        assert!(!m.admit(aen::NS_CHANGED));
        m.read(lid::CHANGED_NS, false);
        m.read(lid::ANA, false);
        assert!(m.admit(aen::NS_CHANGED) && m.admit(aen::ANA_CHANGE));
    }

    fn sqe(opcode: u8, nsid: u32, cdw10: u32) -> Sqe {
        let mut raw = [0u8; 64];
        raw[0] = opcode;
        raw[4..8].copy_from_slice(&nsid.to_le_bytes());
        raw[40..44].copy_from_slice(&cdw10.to_le_bytes());
        Sqe::decode(&raw)
    }

    #[test]
    fn io_controller() {
        assert_eq!(
            decode(&sqe(admin::IDENTIFY, 0, 1), false, 4096),
            Ok(Admin::Identify { cns: 1, nsid: 0 })
        );
        assert_eq!(
            decode(&sqe(admin::IDENTIFY, 3, 3), false, 4096),
            Ok(Admin::Identify { cns: 3, nsid: 3 })
        );
        assert_eq!(
            decode(&sqe(admin::IDENTIFY, 0, 1), false, 512),
            Err(Status::SGL_LENGTH)
        );
        assert_eq!(
            decode(&sqe(admin::IDENTIFY, 0, 8), false, 4096),
            Err(Status::INVALID_FIELD)
        );
        // SMART, 512 bytes (NUMDL 127).
        let smart = decode(
            &sqe(admin::GET_LOG_PAGE, u32::MAX, 2 | 127 << 16),
            false,
            512,
        )
        .unwrap();
        assert!(matches!(smart, Admin::GetLogPage(g) if g.lid == 2 && g.len == 512));
        assert_eq!(
            decode(&sqe(admin::GET_LOG_PAGE, 0, 0x70 | 255 << 16), false, 1024),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            decode(&sqe(admin::KEEP_ALIVE, 0, 0), false, 0),
            Ok(Admin::KeepAlive)
        );
        assert_eq!(
            decode(&sqe(admin::ABORT, 0, 1 | 7 << 16), false, 0),
            Ok(Admin::Abort { sqid: 1, cid: 7 })
        );
        assert_eq!(
            decode(&sqe(admin::GET_FEATURES, 0, 0x81), false, 16),
            Ok(Admin::GetFeatures)
        );
        assert_eq!(
            decode(&sqe(admin::GET_FEATURES, 0, 0x07), false, 16),
            Err(Status::SGL_LENGTH)
        );
        assert_eq!(
            decode(&sqe(0x10, 0, 0), false, 0),
            Err(Status::INVALID_OPCODE)
        );
    }

    #[test]
    fn discovery_controller() {
        assert!(decode(&sqe(admin::IDENTIFY, 0, 1), true, 4096).is_ok());
        assert_eq!(
            decode(&sqe(admin::IDENTIFY, 1, 0), true, 4096),
            Err(Status::INVALID_FIELD)
        );
        let disc = decode(&sqe(admin::GET_LOG_PAGE, 0, 0x70 | 255 << 16), true, 1024).unwrap();
        assert!(matches!(disc, Admin::GetLogPage(g) if g.lid == 0x70 && g.len == 1024));
        assert_eq!(
            decode(&sqe(admin::GET_LOG_PAGE, 0, 2 | 127 << 16), true, 512),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            decode(&sqe(admin::ASYNC_EVENT, 0, 0), true, 0),
            Ok(Admin::AsyncEvent)
        );
        assert_eq!(
            decode(&sqe(admin::ABORT, 0, 0), true, 0),
            Err(Status::INVALID_OPCODE)
        );
        assert_eq!(
            async_event(aen::NS_CHANGED.0, aen::NS_CHANGED.1, aen::NS_CHANGED.2),
            0x0004_0002
        );
        assert_eq!(
            async_event(aen::DISC_CHANGE.0, aen::DISC_CHANGE.1, aen::DISC_CHANGE.2),
            0x0070_f002
        );
    }
}
