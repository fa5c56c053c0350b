//! NVMe command and response capsules over fabrics (NVMe Base 2.0, NVMe over Fabrics 1.1):
//! the submission queue entry's common fields, where its data lies (the SGL descriptors the
//! TCP transport uses), the completion queue entry, and the Fabrics commands (Connect,
//! Property Get and Set) with Connect's data.

use crate::pdu::{CQE_LEN, SQE_LEN};

/// Status: a status code type (SCT) and status code (SC), with Do Not Retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    /// Successful completion.
    pub const SUCCESS: Status = Status(0);
    /// Invalid Command Opcode.
    pub const INVALID_OPCODE: Status = Status::generic(0x01);
    /// Invalid Field in Command.
    pub const INVALID_FIELD: Status = Status::generic(0x02);
    /// Data Transfer Error.
    pub const DATA_TRANSFER: Status = Status::generic(0x04);
    /// Internal Error.
    pub const INTERNAL: Status = Status::generic(0x06);
    /// Command Abort Requested.
    pub const ABORT_REQUESTED: Status = Status::generic(0x07);
    /// Invalid Namespace or Format.
    pub const INVALID_NS: Status = Status::generic(0x0b);
    /// Command Sequence Error.
    pub const SEQUENCE: Status = Status::generic(0x0c);
    /// Data SGL Length Invalid.
    pub const SGL_LENGTH: Status = Status::generic(0x0f);
    /// SGL Data Block Descriptor Type Invalid.
    pub const SGL_TYPE: Status = Status::generic(0x11);
    /// SGL Offset Invalid.
    pub const SGL_OFFSET: Status = Status::generic(0x16);
    /// LBA Out of Range.
    pub const LBA_RANGE: Status = Status::generic(0x80);
    /// Namespace Not Ready.
    pub const NS_NOT_READY: Status = Status::generic(0x82);
    /// Reservation Conflict.
    pub const RESERVATION_CONFLICT: Status = Status::generic(0x83);
    /// Connect: Invalid Parameters (the location is in the result).
    pub const CONNECT_INVALID_PARAM: Status = Status::specific(0x82);
    /// Connect: Invalid Host (not allowed on the subsystem).
    pub const CONNECT_INVALID_HOST: Status = Status::specific(0x84);
    /// Write Fault.
    pub const WRITE_FAULT: Status = Status::media(0x80);
    /// Unrecovered Read Error.
    pub const READ_ERROR: Status = Status::media(0x81);
    /// Compare Failure.
    pub const COMPARE_FAILED: Status = Status::media(0x85);
    /// Access Denied (writes to a write-protected namespace).
    pub const ACCESS_DENIED: Status = Status::media(0x86);

    /// Generic command status (SCT 0), Do Not Retry.
    pub const fn generic(sc: u8) -> Status {
        Status(DNR | sc as u16)
    }

    /// Command specific status (SCT 1), Do Not Retry.
    pub const fn specific(sc: u8) -> Status {
        Status(DNR | 1 << 8 | sc as u16)
    }

    /// Media and data integrity error (SCT 2), Do Not Retry.
    pub const fn media(sc: u8) -> Status {
        Status(DNR | 2 << 8 | sc as u16)
    }

    /// The status code type.
    pub fn sct(self) -> u8 {
        (self.0 >> 8 & 7) as u8
    }

    /// The status code.
    pub fn sc(self) -> u8 {
        self.0 as u8
    }
}

/// Do Not Retry.
const DNR: u16 = 1 << 14;

/// Admin command opcodes.
pub mod admin {
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0a;
    /// Asynchronous Event Request.
    pub const ASYNC_EVENT: u8 = 0x0c;
    /// Keep Alive.
    pub const KEEP_ALIVE: u8 = 0x18;
}

/// I/O command opcodes (NVM command set).
pub mod io {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Compare.
    pub const COMPARE: u8 = 0x05;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management.
    pub const DSM: u8 = 0x09;
}

/// The Fabrics command opcode; its type is byte 4.
pub const FABRICS: u8 = 0x7f;

/// Fabrics command types.
pub mod fctype {
    /// Property Set.
    pub const PROPERTY_SET: u8 = 0x00;
    /// Connect.
    pub const CONNECT: u8 = 0x01;
    /// Property Get.
    pub const PROPERTY_GET: u8 = 0x04;
}

/// A submission queue entry's common fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sqe {
    /// Opcode.
    pub opcode: u8,
    /// FUSE (bits 0-1) and PSDT (bits 6-7).
    pub flags: u8,
    /// Command identifier.
    pub cid: u16,
    /// Namespace identifier.
    pub nsid: u32,
    /// The data pointer's SGL descriptor.
    pub sgl: Sgl,
    /// Command dwords 10 to 15.
    pub cdw: [u32; 6],
}

/// An SGL descriptor (16 bytes at byte 24 of the SQE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sgl {
    /// Address, or for in-capsule data its offset in the capsule's data.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Descriptor type (high nibble) and subtype (low nibble).
    pub ty: u8,
}

/// SGL identifiers the TCP transport uses.
pub mod sgl {
    /// Data Block, Offset: data in the command capsule.
    pub const IN_CAPSULE: u8 = 0x01;
    /// Transport SGL Data Block, transport specific: data moved by R2T/H2CData or C2HData.
    pub const TRANSPORT: u8 = 0x5a;
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Sqe {
    /// Decodes the common fields.
    pub fn decode(b: &[u8; SQE_LEN]) -> Sqe {
        Sqe {
            opcode: b[0],
            flags: b[1],
            cid: u16::from_le_bytes([b[2], b[3]]),
            nsid: le32(b, 4),
            sgl: Sgl {
                addr: u64::from_le_bytes(core::array::from_fn(|i| b[24 + i])),
                len: le32(b, 32),
                ty: b[39],
            },
            cdw: core::array::from_fn(|i| le32(b, 40 + 4 * i)),
        }
    }

    /// Whether the command transfers data to the controller (bit 0 of the opcode, or of a
    /// Fabrics command's type) or from it (bit 1).
    pub fn direction(&self) -> (bool, bool) {
        let code = if self.opcode == FABRICS {
            self.nsid as u8
        } else {
            self.opcode
        };
        (code & 1 != 0, code & 2 != 0)
    }
}

/// Where a command's data lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// No data.
    None,
    /// `len` bytes in the capsule, from the start of its data.
    InCapsule(u32),
    /// `len` bytes moved by the transport (R2T and H2CData, or C2HData).
    Remote(u32),
}

/// How much data a command may move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// In-capsule data: the port's `param_inline_data_size` on I/O queues; admin queues and
    /// Fabrics commands always take [`ADMIN_IN_CAPSULE`].
    pub in_capsule: u32,
    /// Any transfer (MDTS).
    pub transfer: u32,
}

/// In-capsule data the Linux host sends on the admin queue and with Fabrics commands,
/// whatever IOCCSZ says.
pub const ADMIN_IN_CAPSULE: u32 = 8192;

/// Checks a command's data pointer: FUSE must be 0 and PSDT must say SGL (fabrics use no
/// PRPs); the descriptor is an in-capsule Data Block at offset 0 for `in_capsule` bytes that
/// arrived with the capsule, for a write only, or a transport Data Block, each within `limits`.
pub fn transfer(sqe: &Sqe, in_capsule: u32, limits: &Limits) -> Result<Transfer, Status> {
    if sqe.flags & 0x03 != 0 {
        return Err(Status::INVALID_FIELD);
    }
    if sqe.sgl.len == 0 {
        // Nothing to move; nvmet accepts any descriptor type with no length.
        return if in_capsule == 0 {
            Ok(Transfer::None)
        } else {
            Err(Status::SGL_LENGTH)
        };
    }
    if sqe.flags >> 6 != 1 {
        return Err(Status::INVALID_FIELD);
    }
    match sqe.sgl.ty {
        sgl::IN_CAPSULE => {
            if !sqe.direction().0 {
                return Err(Status::INVALID_FIELD);
            }
            // More than the queue takes in a capsule: nvmet's status.
            if sqe.sgl.addr != 0 || in_capsule > limits.in_capsule {
                return Err(Status::SGL_OFFSET);
            }
            if sqe.sgl.len != in_capsule {
                return Err(Status::SGL_LENGTH);
            }
            Ok(Transfer::InCapsule(in_capsule))
        }
        sgl::TRANSPORT if sqe.sgl.len > limits.transfer => Err(Status::SGL_LENGTH),
        sgl::TRANSPORT if in_capsule == 0 => Ok(Transfer::Remote(sqe.sgl.len)),
        sgl::TRANSPORT => Err(Status::SGL_LENGTH),
        _ => Err(Status::SGL_TYPE),
    }
}

/// A completion queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    /// Command specific result (dwords 0 and 1).
    pub result: u64,
    /// Submission queue head pointer.
    pub sqhd: u16,
    /// Submission queue identifier.
    pub sqid: u16,
    /// The command's identifier.
    pub cid: u16,
    /// Status.
    pub status: Status,
}

impl Cqe {
    /// Encodes it (the phase bit is 0: fabrics have no phase).
    pub fn encode(&self) -> [u8; CQE_LEN] {
        let mut b = [0u8; CQE_LEN];
        b[..8].copy_from_slice(&self.result.to_le_bytes());
        b[8..10].copy_from_slice(&self.sqhd.to_le_bytes());
        b[10..12].copy_from_slice(&self.sqid.to_le_bytes());
        b[12..14].copy_from_slice(&self.cid.to_le_bytes());
        b[14..16].copy_from_slice(&(self.status.0 << 1).to_le_bytes());
        b
    }
}

/// A Connect command's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Queue to create: 0 for the admin queue.
    pub qid: u16,
    /// Queue size, 0's based.
    pub sqsize: u16,
    /// Connect attributes (bit 2: disable SQ flow control).
    pub cattr: u8,
    /// Keep alive timeout in milliseconds (admin queue).
    pub kato: u32,
}

/// Where Connect's SQSIZE lies, as an Invalid Parameters result gives it.
pub const SQSIZE_AT: u64 = 44;

/// An Invalid Parameters result naming byte `at` of Connect's data.
pub fn connect_data_error(at: u16) -> u64 {
    1 << 16 | u64::from(at)
}

/// Length of Connect's data.
pub const CONNECT_DATA_LEN: u32 = 1024;
/// Length of an NQN field (NUL padded).
pub const NQN_LEN: usize = 256;

/// Decodes a Connect command: record format 0 only, with its 1024 bytes of data in the
/// capsule. An error's result carries the offending field's location (byte, then attribute:
/// 0 for the command, 1 for its data), as Connect's Invalid Parameters status wants.
pub fn connect(sqe: &Sqe) -> Result<Connect, (Status, u64)> {
    let recfmt = sqe.cdw[0] as u16;
    if recfmt != 0 {
        return Err((Status::specific(0x80), 0));
    }
    if sqe.sgl.len != CONNECT_DATA_LEN {
        return Err((Status::SGL_LENGTH, 0));
    }
    let c = Connect {
        qid: (sqe.cdw[0] >> 16) as u16,
        sqsize: sqe.cdw[1] as u16,
        cattr: (sqe.cdw[1] >> 16) as u8,
        kato: sqe.cdw[2],
    };
    if c.sqsize == 0 {
        return Err((Status::CONNECT_INVALID_PARAM, SQSIZE_AT));
    }
    Ok(c)
}

/// Connect's data: the host identifier, the controller asked for and both NQNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectData<'a> {
    /// Host identifier.
    pub hostid: [u8; 16],
    /// Controller ID: 0xFFFF for any (dynamic), else the admin queue's controller.
    pub cntlid: u16,
    /// The subsystem's NQN.
    pub subnqn: &'a [u8],
    /// The host's NQN.
    pub hostnqn: &'a [u8],
}

/// Decodes Connect's data: the NQNs must be NUL terminated within their fields and not empty.
/// An error gives the offending byte offset in the data.
pub fn connect_data(d: &[u8]) -> Result<ConnectData<'_>, u16> {
    if d.len() < CONNECT_DATA_LEN as usize {
        return Err(0);
    }
    let nqn = |at: usize| {
        let f = &d[at..at + NQN_LEN];
        match f.iter().position(|&c| c == 0) {
            Some(n) if n > 0 => Ok(&f[..n]),
            _ => Err(at as u16),
        }
    };
    Ok(ConnectData {
        hostid: core::array::from_fn(|i| d[i]),
        cntlid: u16::from_le_bytes([d[16], d[17]]),
        subnqn: nqn(256)?,
        hostnqn: nqn(512)?,
    })
}

/// Controller properties (the fabrics stand-in for PCIe registers).
pub mod prop {
    /// Controller Capabilities (8 bytes).
    pub const CAP: u32 = 0x00;
    /// Version.
    pub const VS: u32 = 0x08;
    /// Controller Configuration.
    pub const CC: u32 = 0x14;
    /// Controller Status.
    pub const CSTS: u32 = 0x1c;
    /// NVM Subsystem Reset (not supported here).
    pub const NSSR: u32 = 0x20;
}

/// A Property Get or Set: its offset, size (4 or 8 bytes) and, for a set, the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property {
    /// Offset of the property.
    pub offset: u32,
    /// Eight bytes wide (else four).
    pub wide: bool,
    /// Property Set's value.
    pub value: u64,
}

/// Decodes a Property Get or Set from its raw SQE (the fields overlap the data pointer).
pub fn property(b: &[u8; SQE_LEN]) -> Result<Property, Status> {
    let attrib = b[40] & 0x07;
    if attrib > 1 {
        return Err(Status::INVALID_FIELD);
    }
    Ok(Property {
        offset: le32(b, 44),
        wide: attrib == 1,
        value: u64::from_le_bytes(core::array::from_fn(|i| b[48 + i])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqe_bytes(opcode: u8, flags: u8, sgl_ty: u8, addr: u64, len: u32) -> [u8; SQE_LEN] {
        let mut b = [0u8; SQE_LEN];
        b[0] = opcode;
        b[1] = flags;
        b[2..4].copy_from_slice(&0x1234u16.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&addr.to_le_bytes());
        b[32..36].copy_from_slice(&len.to_le_bytes());
        b[39] = sgl_ty;
        b[40..44].copy_from_slice(&7u32.to_le_bytes());
        b[60..64].copy_from_slice(&9u32.to_le_bytes());
        b
    }

    #[test]
    fn decode_sqe() {
        let s = Sqe::decode(&sqe_bytes(io::WRITE, 0x40, sgl::TRANSPORT, 0, 8192));
        assert_eq!((s.opcode, s.cid, s.nsid), (io::WRITE, 0x1234, 1));
        assert_eq!(
            s.sgl,
            Sgl {
                addr: 0,
                len: 8192,
                ty: 0x5a
            }
        );
        assert_eq!(s.cdw, [7, 0, 0, 0, 0, 9]);
        assert_eq!(s.direction(), (true, false));
    }

    #[test]
    fn transfers() {
        let lim = Limits {
            in_capsule: 8192,
            transfer: 1 << 20,
        };
        let t = |op, flags, ty, addr, len, inc| {
            transfer(
                &Sqe::decode(&sqe_bytes(op, flags, ty, addr, len)),
                inc,
                &lim,
            )
        };
        // Beyond the queue's in-capsule data, or the largest transfer.
        assert_eq!(
            t(io::WRITE, 0x40, sgl::IN_CAPSULE, 0, 8196, 8196),
            Err(Status::SGL_OFFSET)
        );
        assert_eq!(
            t(io::READ, 0x40, sgl::TRANSPORT, 0, (1 << 20) + 4, 0),
            Err(Status::SGL_LENGTH)
        );
        assert_eq!(
            t(io::WRITE, 0x40, sgl::IN_CAPSULE, 0, 4096, 4096),
            Ok(Transfer::InCapsule(4096))
        );
        assert_eq!(
            t(io::WRITE, 0x40, sgl::TRANSPORT, 0, 1 << 20, 0),
            Ok(Transfer::Remote(1 << 20))
        );
        assert_eq!(
            t(io::READ, 0x40, sgl::TRANSPORT, 0, 4096, 0),
            Ok(Transfer::Remote(4096))
        );
        assert_eq!(t(io::FLUSH, 0x00, 0, 0, 0, 0), Ok(Transfer::None));
        // Reads never carry in-capsule data; offsets and lengths must match what came.
        assert_eq!(
            t(io::READ, 0x40, sgl::IN_CAPSULE, 0, 4096, 4096),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            t(io::WRITE, 0x40, sgl::IN_CAPSULE, 8, 4096, 4096),
            Err(Status::SGL_OFFSET)
        );
        assert_eq!(
            t(io::WRITE, 0x40, sgl::IN_CAPSULE, 0, 8192, 4096),
            Err(Status::SGL_LENGTH)
        );
        assert_eq!(
            t(io::WRITE, 0x40, sgl::TRANSPORT, 0, 8192, 4096),
            Err(Status::SGL_LENGTH)
        );
        assert_eq!(t(io::FLUSH, 0x00, 0, 0, 0, 512), Err(Status::SGL_LENGTH));
        // PRPs, fused commands, other descriptor types.
        assert_eq!(
            t(io::WRITE, 0x00, sgl::TRANSPORT, 0, 4096, 0),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            t(io::WRITE, 0x41, sgl::TRANSPORT, 0, 4096, 0),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(t(io::WRITE, 0x40, 0x00, 0, 4096, 0), Err(Status::SGL_TYPE));
        assert_eq!(t(io::WRITE, 0x40, 0x20, 0, 4096, 0), Err(Status::SGL_TYPE));
    }

    #[test]
    fn cqe() {
        let c = Cqe {
            result: 0x1_0000_0002,
            sqhd: 3,
            sqid: 4,
            cid: 0xabcd,
            status: Status::LBA_RANGE,
        };
        assert_eq!(
            c.encode(),
            [2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 4, 0, 0xcd, 0xab, 0x00, 0x81]
        );
        assert_eq!((Status::LBA_RANGE.sct(), Status::LBA_RANGE.sc()), (0, 0x80));
        assert_eq!(
            (Status::COMPARE_FAILED.sct(), Status::COMPARE_FAILED.sc()),
            (2, 0x85)
        );
        assert_eq!(
            Cqe {
                status: Status::SUCCESS,
                ..c
            }
            .encode()[14..],
            [0, 0]
        );
    }

    #[test]
    fn connect_command_and_data() {
        let mut b = sqe_bytes(FABRICS, 0x40, sgl::IN_CAPSULE, 0, 1024);
        b[4] = fctype::CONNECT;
        b[40..44].copy_from_slice(&(5u32 << 16).to_le_bytes());
        b[44..48].copy_from_slice(&(127u32 | 4 << 16).to_le_bytes());
        b[48..52].copy_from_slice(&15000u32.to_le_bytes());
        let s = Sqe::decode(&b);
        let lim = Limits {
            in_capsule: ADMIN_IN_CAPSULE,
            transfer: 1 << 20,
        };
        assert_eq!(transfer(&s, 1024, &lim), Ok(Transfer::InCapsule(1024)));
        assert_eq!(
            connect(&s),
            Ok(Connect {
                qid: 5,
                sqsize: 127,
                cattr: 4,
                kato: 15000
            })
        );
        b[40] = 1;
        assert_eq!(
            connect(&Sqe::decode(&b)).unwrap_err().0,
            Status::specific(0x80)
        );
        b[40] = 0;
        b[44] = 0;
        assert_eq!(
            connect(&Sqe::decode(&b)),
            Err((Status::CONNECT_INVALID_PARAM, SQSIZE_AT))
        );
        assert_eq!(connect_data_error(512), 0x1_0200);

        let mut d = [0u8; 1024];
        d[..16].copy_from_slice(&[0x11; 16]);
        d[16..18].copy_from_slice(&0xffffu16.to_le_bytes());
        d[256..256 + 9].copy_from_slice(b"nqn.a:sub");
        d[512..512 + 10].copy_from_slice(b"nqn.b:host");
        let c = connect_data(&d).unwrap();
        assert_eq!(
            (c.hostid, c.cntlid, c.subnqn, c.hostnqn),
            ([0x11; 16], 0xffff, &b"nqn.a:sub"[..], &b"nqn.b:host"[..])
        );
        assert_eq!(connect_data(&d[..1000]), Err(0));
        d[512..768].fill(b'x');
        assert_eq!(connect_data(&d), Err(512));
        d[256] = 0;
        assert_eq!(connect_data(&d), Err(256));
    }

    #[test]
    fn properties() {
        let mut b = [0u8; SQE_LEN];
        b[40] = 1;
        b[44] = prop::CAP as u8;
        assert_eq!(
            property(&b),
            Ok(Property {
                offset: 0,
                wide: true,
                value: 0
            })
        );
        b[40] = 0;
        b[44] = prop::CC as u8;
        b[48] = 0x01;
        b[50] = 0x46;
        assert_eq!(
            property(&b),
            Ok(Property {
                offset: 0x14,
                wide: false,
                value: 0x46_0001
            })
        );
        b[40] = 2;
        assert_eq!(property(&b), Err(Status::INVALID_FIELD));
    }
}
