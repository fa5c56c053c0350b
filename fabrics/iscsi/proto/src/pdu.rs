//! iSCSI PDUs (RFC 7143 11): the 48-byte Basic Header Segment (BHS) of what an initiator sends,
//! decoded and checked field by field, the framing of what follows it (AHS, digests, padding),
//! and the BHS of every PDU a target sends, encoded.

/// Length of a Basic Header Segment.
pub const BHS_LEN: usize = 48;
/// Largest DataSegmentLength the 24-bit field holds.
pub const MAX_DATA_SEGMENT: u32 = (1 << 24) - 1;
/// The reserved tag: "no task" (ITT of unsolicited target PDUs, TTT of unsolicited data).
pub const RESERVED_TAG: u32 = 0xffff_ffff;
/// The one version RFC 7143 defines (VersionMax / VersionMin of a Login Request).
pub const VERSION: u8 = 0x00;

/// Opcodes (RFC 7143 11.1.1).
pub mod op {
    pub const NOP_OUT: u8 = 0x00;
    pub const SCSI_COMMAND: u8 = 0x01;
    pub const TASK_MGMT: u8 = 0x02;
    pub const LOGIN: u8 = 0x03;
    pub const TEXT: u8 = 0x04;
    pub const DATA_OUT: u8 = 0x05;
    pub const LOGOUT: u8 = 0x06;
    pub const SNACK: u8 = 0x10;
    pub const NOP_IN: u8 = 0x20;
    pub const SCSI_RESPONSE: u8 = 0x21;
    pub const TASK_MGMT_RESPONSE: u8 = 0x22;
    pub const LOGIN_RESPONSE: u8 = 0x23;
    pub const TEXT_RESPONSE: u8 = 0x24;
    pub const DATA_IN: u8 = 0x25;
    pub const LOGOUT_RESPONSE: u8 = 0x26;
    pub const R2T: u8 = 0x31;
    pub const ASYNC: u8 = 0x32;
    pub const REJECT: u8 = 0x3f;
}

/// Reject reasons (RFC 7143 11.17.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RejectReason {
    DataDigest = 0x02,
    SnackReject = 0x03,
    ProtocolError = 0x04,
    CommandNotSupported = 0x05,
    ImmediateCommand = 0x06,
    TaskInProgress = 0x07,
    InvalidDataAck = 0x08,
    InvalidPduField = 0x09,
    LongOperation = 0x0a,
    WaitingForLogout = 0x0c,
}

/// Task attributes of a SCSI Command (byte 1, bits 2-0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskAttr {
    Untagged,
    Simple,
    Ordered,
    HeadOfQueue,
    Aca,
}

/// SCSI Command (RFC 7143 11.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub final_: bool,
    pub read: bool,
    pub write: bool,
    pub attr: TaskAttr,
    pub lun: u64,
    pub edtl: u32,
    pub cmdsn: u32,
    pub exp_statsn: u32,
    pub cdb: [u8; 16],
}

/// SCSI Data-Out (RFC 7143 11.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataOut {
    pub final_: bool,
    pub lun: u64,
    pub ttt: u32,
    pub exp_statsn: u32,
    pub datasn: u32,
    pub offset: u32,
}

/// Task management functions (RFC 7143 11.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmfFunction {
    AbortTask,
    AbortTaskSet,
    ClearAca,
    ClearTaskSet,
    LogicalUnitReset,
    TargetWarmReset,
    TargetColdReset,
    TaskReassign,
}

/// Task Management Function Request (RFC 7143 11.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskMgmt {
    pub function: TmfFunction,
    pub lun: u64,
    pub referenced_tag: u32,
    pub cmdsn: u32,
    pub exp_statsn: u32,
    pub ref_cmdsn: u32,
    pub exp_datasn: u32,
}

/// Login stages (CSG / NSG, RFC 7143 11.12.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Security = 0,
    Operational = 1,
    FullFeature = 3,
}

impl Stage {
    fn from_bits(b: u8) -> Option<Stage> {
        match b {
            0 => Some(Stage::Security),
            1 => Some(Stage::Operational),
            3 => Some(Stage::FullFeature),
            _ => None,
        }
    }
}

/// Login Request (RFC 7143 11.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Login {
    pub transit: bool,
    pub continue_: bool,
    pub csg: Stage,
    /// Meaningful only with `transit`.
    pub nsg: Stage,
    pub version_max: u8,
    pub version_min: u8,
    pub isid: [u8; 6],
    pub tsih: u16,
    pub cid: u16,
    pub cmdsn: u32,
    pub exp_statsn: u32,
}

/// Text Request (RFC 7143 11.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text {
    pub final_: bool,
    pub continue_: bool,
    pub lun: u64,
    pub ttt: u32,
    pub cmdsn: u32,
    pub exp_statsn: u32,
}

/// Logout reasons (RFC 7143 11.14.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutReason {
    CloseSession,
    CloseConnection,
    RemoveConnectionForRecovery,
}

/// Logout Request (RFC 7143 11.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logout {
    pub reason: LogoutReason,
    pub cid: u16,
    pub cmdsn: u32,
    pub exp_statsn: u32,
}

/// NOP-Out (RFC 7143 11.18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NopOut {
    pub lun: u64,
    pub ttt: u32,
    pub cmdsn: u32,
    pub exp_statsn: u32,
}

/// SNACK Request (RFC 7143 11.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snack {
    pub kind: u8,
    pub lun: u64,
    pub ttt: u32,
    pub exp_statsn: u32,
    pub begrun: u32,
    pub run_length: u32,
}

/// What an initiator's PDU asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Nop(NopOut),
    Command(Command),
    TaskMgmt(TaskMgmt),
    Login(Login),
    Text(Text),
    DataOut(DataOut),
    Logout(Logout),
    Snack(Snack),
}

/// A decoded initiator BHS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub immediate: bool,
    /// TotalAHSLength, in bytes.
    pub ahs_len: usize,
    /// DataSegmentLength, without padding.
    pub data_len: u32,
    pub itt: u32,
    pub request: Request,
}

/// Why a BHS cannot be taken: the Reject to send (or, during login, a login failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: RejectReason,
    /// The BHS byte at fault, for the log.
    pub byte: u8,
}

fn refuse(reason: RejectReason, byte: u8) -> Refused {
    Refused { reason, byte }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// The opcode of a BHS (byte 0 without the I bit).
pub fn opcode(bhs: &[u8; BHS_LEN]) -> u8 {
    bhs[0] & 0x3f
}

/// DataSegmentLength of any BHS.
pub fn data_len(bhs: &[u8; BHS_LEN]) -> u32 {
    u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]])
}

/// Bytes `n` takes on the wire, padded to a multiple of four.
pub fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// AHSType of an Extended CDB (RFC 7143 11.2.1.2).
pub const AHS_EXTENDED_CDB: u8 = 1;

/// A SCSI Command's whole CDB: the BHS's 16 bytes and the rest from its Extended CDB AHS
/// (RFC 7143 11.2.1.2), into `out`; its length. Other AHS types (the bidirectional read
/// length) are skipped. `None`: an AHS runs past the segment, is empty, comes twice, or
/// the CDB does not fit in `out`.
pub fn full_cdb(cdb: &[u8; 16], ahs: &[u8], out: &mut [u8]) -> Option<usize> {
    out.get_mut(..16)?.copy_from_slice(cdb);
    let mut len = 16;
    let mut rest = ahs;
    while !rest.is_empty() {
        // AHSLength counts from the type-specific byte (byte 3) on, before padding.
        let ahs_len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let total = pad4(3 + ahs_len);
        if ahs_len == 0 || rest.len() < total {
            return None;
        }
        if rest[2] == AHS_EXTENDED_CDB {
            let ext = &rest[4..3 + ahs_len];
            if len > 16 {
                return None;
            }
            out.get_mut(16..16 + ext.len())?.copy_from_slice(ext);
            len = 16 + ext.len();
        }
        rest = &rest[total..];
    }
    Some(len)
}

/// What follows a BHS on the wire, given the digests negotiated for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    pub ahs: usize,
    pub data: usize,
    pub header_digest: bool,
    pub data_digest: bool,
}

impl Framing {
    /// The framing of `bhs` on a connection with these digests.
    pub fn of(bhs: &[u8; BHS_LEN], header_digest: bool, data_digest: bool) -> Framing {
        Framing {
            ahs: usize::from(bhs[4]) * 4,
            data: data_len(bhs) as usize,
            header_digest,
            data_digest,
        }
    }

    /// Offset (after the BHS) of the data segment.
    pub fn data_at(&self) -> usize {
        self.ahs + if self.header_digest { 4 } else { 0 }
    }

    /// Bytes to receive after the BHS: AHS, header digest, padded data and data digest.
    pub fn tail_len(&self) -> usize {
        let dd = if self.data_digest && self.data > 0 {
            4
        } else {
            0
        };
        self.data_at() + pad4(self.data) + dd
    }
}

/// Decodes an initiator's BHS. It checks what the BHS alone can tell: the opcode, reserved
/// values and flag combinations the RFC forbids; the session checks the rest (lengths against
/// negotiated limits, sequence numbers, tags).
pub fn parse(b: &[u8; BHS_LEN]) -> Result<Pdu, Refused> {
    let immediate = b[0] & 0x40 != 0;
    let flags = b[1];
    let lun = be64(&b[8..16]);
    let itt = be32(&b[16..20]);
    let cmdsn = be32(&b[24..28]);
    let exp_statsn = be32(&b[28..32]);
    let request = match opcode(b) {
        op::NOP_OUT => {
            if flags != 0x80 {
                return Err(refuse(RejectReason::ProtocolError, 1));
            }
            Request::Nop(NopOut {
                lun,
                ttt: be32(&b[20..24]),
                cmdsn,
                exp_statsn,
            })
        }
        op::SCSI_COMMAND => {
            let attr = match flags & 0x07 {
                0 => TaskAttr::Untagged,
                1 => TaskAttr::Simple,
                2 => TaskAttr::Ordered,
                3 => TaskAttr::HeadOfQueue,
                4 => TaskAttr::Aca,
                _ => return Err(refuse(RejectReason::InvalidPduField, 1)),
            };
            let mut cdb = [0u8; 16];
            cdb.copy_from_slice(&b[32..48]);
            Request::Command(Command {
                final_: flags & 0x80 != 0,
                read: flags & 0x40 != 0,
                write: flags & 0x20 != 0,
                attr,
                lun,
                edtl: be32(&b[20..24]),
                cmdsn,
                exp_statsn,
                cdb,
            })
        }
        op::TASK_MGMT => {
            if flags & 0x80 == 0 {
                return Err(refuse(RejectReason::ProtocolError, 1));
            }
            let function = match flags & 0x7f {
                1 => TmfFunction::AbortTask,
                2 => TmfFunction::AbortTaskSet,
                3 => TmfFunction::ClearAca,
                4 => TmfFunction::ClearTaskSet,
                5 => TmfFunction::LogicalUnitReset,
                6 => TmfFunction::TargetWarmReset,
                7 => TmfFunction::TargetColdReset,
                8 => TmfFunction::TaskReassign,
                // An unknown function is answered with "function not supported" (response 5) by
                // the session; here it is refused as a field error.
                _ => return Err(refuse(RejectReason::InvalidPduField, 1)),
            };
            Request::TaskMgmt(TaskMgmt {
                function,
                lun,
                referenced_tag: be32(&b[20..24]),
                cmdsn,
                exp_statsn,
                ref_cmdsn: be32(&b[32..36]),
                exp_datasn: be32(&b[36..40]),
            })
        }
        op::LOGIN => {
            // A Login Request is always immediate (RFC 7143 11.12).
            if !immediate {
                return Err(refuse(RejectReason::ProtocolError, 0));
            }
            let transit = flags & 0x80 != 0;
            let continue_ = flags & 0x40 != 0;
            if transit && continue_ || flags & 0x30 != 0 {
                return Err(refuse(RejectReason::ProtocolError, 1));
            }
            let csg = Stage::from_bits((flags >> 2) & 3)
                .filter(|s| *s != Stage::FullFeature)
                .ok_or(refuse(RejectReason::ProtocolError, 1))?;
            let nsg = match Stage::from_bits(flags & 3) {
                Some(s) => s,
                None if !transit => csg,
                None => return Err(refuse(RejectReason::ProtocolError, 1)),
            };
            let mut isid = [0u8; 6];
            isid.copy_from_slice(&b[8..14]);
            Request::Login(Login {
                transit,
                continue_,
                csg,
                nsg: if transit { nsg } else { csg },
                version_max: b[2],
                version_min: b[3],
                isid,
                tsih: be16(&b[14..16]),
                cid: be16(&b[20..22]),
                cmdsn,
                exp_statsn,
            })
        }
        op::TEXT => {
            let final_ = flags & 0x80 != 0;
            let continue_ = flags & 0x40 != 0;
            if final_ && continue_ || flags & 0x3f != 0 {
                return Err(refuse(RejectReason::ProtocolError, 1));
            }
            Request::Text(Text {
                final_,
                continue_,
                lun,
                ttt: be32(&b[20..24]),
                cmdsn,
                exp_statsn,
            })
        }
        op::DATA_OUT => {
            if flags & 0x7f != 0 {
                return Err(refuse(RejectReason::ProtocolError, 1));
            }
            Request::DataOut(DataOut {
                final_: flags & 0x80 != 0,
                lun,
                ttt: be32(&b[20..24]),
                exp_statsn,
                datasn: be32(&b[36..40]),
                offset: be32(&b[40..44]),
            })
        }
        op::LOGOUT => {
            if flags & 0x80 == 0 {
                return Err(refuse(RejectReason::ProtocolError, 1));
            }
            let reason = match flags & 0x7f {
                0 => LogoutReason::CloseSession,
                1 => LogoutReason::CloseConnection,
                2 => LogoutReason::RemoveConnectionForRecovery,
                _ => return Err(refuse(RejectReason::InvalidPduField, 1)),
            };
            Request::Logout(Logout {
                reason,
                cid: be16(&b[20..22]),
                cmdsn,
                exp_statsn,
            })
        }
        op::SNACK => {
            if flags & 0xf0 != 0x80 {
                return Err(refuse(RejectReason::ProtocolError, 1));
            }
            Request::Snack(Snack {
                kind: flags & 0x0f,
                lun,
                ttt: be32(&b[20..24]),
                exp_statsn,
                begrun: be32(&b[40..44]),
                run_length: be32(&b[44..48]),
            })
        }
        _ => return Err(refuse(RejectReason::CommandNotSupported, 0)),
    };
    Ok(Pdu {
        immediate,
        ahs_len: usize::from(b[4]) * 4,
        data_len: data_len(b),
        itt,
        request,
    })
}

/// The sequence numbers a target PDU carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sn {
    pub statsn: u32,
    pub exp_cmdsn: u32,
    pub max_cmdsn: u32,
}

/// Residual of a command (RFC 7143 11.4.5): the O and U flags with their count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residual {
    None,
    Overflow(u32),
    Underflow(u32),
}

impl Residual {
    /// The residual of a transfer of `done` bytes against the expected `edtl`.
    pub fn of(edtl: u32, wanted: u32) -> Residual {
        match wanted.cmp(&edtl) {
            core::cmp::Ordering::Equal => Residual::None,
            core::cmp::Ordering::Greater => Residual::Overflow(wanted - edtl),
            core::cmp::Ordering::Less => Residual::Underflow(edtl - wanted),
        }
    }

    /// (flag bits for byte 1: O 04h, U 02h; count)
    fn bits(self) -> (u8, u32) {
        match self {
            Residual::None => (0, 0),
            Residual::Overflow(n) => (0x04, n),
            Residual::Underflow(n) => (0x02, n),
        }
    }
}

/// What a target sends: each variant encodes to one BHS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// NOP-In: an answer to a NOP-Out (`ttt` reserved) or a ping of the target's own.
    NopIn {
        lun: u64,
        itt: u32,
        ttt: u32,
    },
    /// SCSI Response; the data segment holds the sense (SenseLength + sense data).
    Scsi {
        itt: u32,
        response: u8,
        status: u8,
        exp_datasn: u32,
        residual: Residual,
    },
    /// SCSI Data-In; with `status`, the command's status rides on the last one (S bit).
    DataIn {
        final_: bool,
        status: Option<u8>,
        lun: u64,
        itt: u32,
        datasn: u32,
        offset: u32,
        residual: Residual,
    },
    /// Ready To Transfer.
    R2t {
        lun: u64,
        itt: u32,
        ttt: u32,
        r2tsn: u32,
        offset: u32,
        length: u32,
    },
    TaskMgmt {
        itt: u32,
        response: u8,
    },
    Login {
        transit: bool,
        continue_: bool,
        csg: Stage,
        nsg: Stage,
        isid: [u8; 6],
        tsih: u16,
        itt: u32,
        class: u8,
        detail: u8,
    },
    Text {
        final_: bool,
        continue_: bool,
        lun: u64,
        itt: u32,
        ttt: u32,
    },
    Logout {
        itt: u32,
        response: u8,
        time2wait: u16,
        time2retain: u16,
    },
    /// Reject; the data segment holds the rejected BHS.
    Reject {
        reason: RejectReason,
        datasn: u32,
    },
    Async {
        lun: u64,
        event: u8,
        vcode: u8,
        params: [u16; 3],
    },
}

/// Encodes `r` with the sequence numbers `sn` and DataSegmentLength `data_len` into `b`.
/// StatSN is carried only by the PDUs that carry status (and NOP-In, Text, Login, Logout,
/// Reject, Async, R2T, where RFC 7143 puts the current StatSN without advancing it).
pub fn encode(r: &Response, sn: Sn, data_len: u32, b: &mut [u8; BHS_LEN]) {
    *b = [0; BHS_LEN];
    let put32 =
        |b: &mut [u8; BHS_LEN], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let len = data_len.min(MAX_DATA_SEGMENT).to_be_bytes();
    b[5..8].copy_from_slice(&len[1..]);
    put32(b, 24, sn.statsn);
    put32(b, 28, sn.exp_cmdsn);
    put32(b, 32, sn.max_cmdsn);
    match *r {
        Response::NopIn { lun, itt, ttt } => {
            b[0] = op::NOP_IN;
            b[1] = 0x80;
            b[8..16].copy_from_slice(&lun.to_be_bytes());
            put32(b, 16, itt);
            put32(b, 20, ttt);
        }
        Response::Scsi {
            itt,
            response,
            status,
            exp_datasn,
            residual,
        } => {
            let (flags, count) = residual.bits();
            b[0] = op::SCSI_RESPONSE;
            b[1] = 0x80 | flags;
            b[2] = response;
            b[3] = status;
            put32(b, 16, itt);
            put32(b, 36, exp_datasn);
            put32(b, 44, count);
        }
        Response::DataIn {
            final_,
            status,
            lun,
            itt,
            datasn,
            offset,
            residual,
        } => {
            b[0] = op::DATA_IN;
            b[1] = if final_ { 0x80 } else { 0 };
            if let Some(s) = status {
                let (flags, count) = residual.bits();
                b[1] |= 0x81 | flags;
                b[3] = s;
                put32(b, 44, count);
            } else {
                // StatSN is reserved without status.
                put32(b, 24, 0);
            }
            b[8..16].copy_from_slice(&lun.to_be_bytes());
            put32(b, 16, itt);
            put32(b, 20, RESERVED_TAG);
            put32(b, 36, datasn);
            put32(b, 40, offset);
        }
        Response::R2t {
            lun,
            itt,
            ttt,
            r2tsn,
            offset,
            length,
        } => {
            b[0] = op::R2T;
            b[1] = 0x80;
            b[8..16].copy_from_slice(&lun.to_be_bytes());
            put32(b, 16, itt);
            put32(b, 20, ttt);
            put32(b, 36, r2tsn);
            put32(b, 40, offset);
            put32(b, 44, length);
        }
        Response::TaskMgmt { itt, response } => {
            b[0] = op::TASK_MGMT_RESPONSE;
            b[1] = 0x80;
            b[2] = response;
            put32(b, 16, itt);
        }
        Response::Login {
            transit,
            continue_,
            csg,
            nsg,
            isid,
            tsih,
            itt,
            class,
            detail,
        } => {
            b[0] = op::LOGIN_RESPONSE;
            b[1] = (csg as u8) << 2;
            if transit {
                b[1] |= 0x80 | nsg as u8;
            }
            if continue_ {
                b[1] |= 0x40;
            }
            b[2] = VERSION;
            b[3] = VERSION;
            b[8..14].copy_from_slice(&isid);
            b[14..16].copy_from_slice(&tsih.to_be_bytes());
            put32(b, 16, itt);
            b[36] = class;
            b[37] = detail;
        }
        Response::Text {
            final_,
            continue_,
            lun,
            itt,
            ttt,
        } => {
            b[0] = op::TEXT_RESPONSE;
            b[1] = if final_ { 0x80 } else { 0 } | if continue_ { 0x40 } else { 0 };
            b[8..16].copy_from_slice(&lun.to_be_bytes());
            put32(b, 16, itt);
            put32(b, 20, ttt);
        }
        Response::Logout {
            itt,
            response,
            time2wait,
            time2retain,
        } => {
            b[0] = op::LOGOUT_RESPONSE;
            b[1] = 0x80;
            b[2] = response;
            put32(b, 16, itt);
            b[40..42].copy_from_slice(&time2wait.to_be_bytes());
            b[42..44].copy_from_slice(&time2retain.to_be_bytes());
        }
        Response::Reject { reason, datasn } => {
            b[0] = op::REJECT;
            b[1] = 0x80;
            b[2] = reason as u8;
            put32(b, 16, RESERVED_TAG);
            put32(b, 36, datasn);
        }
        Response::Async {
            lun,
            event,
            vcode,
            params,
        } => {
            b[0] = op::ASYNC;
            b[1] = 0x80;
            b[8..16].copy_from_slice(&lun.to_be_bytes());
            put32(b, 16, RESERVED_TAG);
            b[36] = event;
            b[37] = vcode;
            for (i, p) in params.iter().enumerate() {
                b[38 + 2 * i..40 + 2 * i].copy_from_slice(&p.to_be_bytes());
            }
        }
    }
}

/// Login status classes and details (RFC 7143 11.13.5).
pub mod login_status {
    pub const SUCCESS: (u8, u8) = (0x00, 0x00);
    pub const AUTH_FAILED: (u8, u8) = (0x02, 0x01);
    pub const FORBIDDEN: (u8, u8) = (0x02, 0x02);
    pub const NOT_FOUND: (u8, u8) = (0x02, 0x03);
    pub const TARGET_REMOVED: (u8, u8) = (0x02, 0x04);
    pub const UNSUPPORTED_VERSION: (u8, u8) = (0x02, 0x05);
    pub const TOO_MANY_CONNECTIONS: (u8, u8) = (0x02, 0x06);
    pub const MISSING_PARAMETER: (u8, u8) = (0x02, 0x07);
    pub const NO_SESSION_SPANNING: (u8, u8) = (0x02, 0x08);
    pub const SESSION_TYPE_UNSUPPORTED: (u8, u8) = (0x02, 0x09);
    pub const SESSION_DOES_NOT_EXIST: (u8, u8) = (0x02, 0x0a);
    pub const INVALID_DURING_LOGIN: (u8, u8) = (0x02, 0x0b);
    /// Initiator error (0200h): the generic protocol error.
    pub const INITIATOR_ERROR: (u8, u8) = (0x02, 0x00);
    pub const TARGET_ERROR: (u8, u8) = (0x03, 0x00);
    pub const SERVICE_UNAVAILABLE: (u8, u8) = (0x03, 0x01);
    pub const OUT_OF_RESOURCES: (u8, u8) = (0x03, 0x02);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bhs(opcode: u8, flags: u8) -> [u8; BHS_LEN] {
        let mut b = [0u8; BHS_LEN];
        b[0] = opcode;
        b[1] = flags;
        b
    }

    #[test]
    fn extended_cdb() {
        let cdb: [u8; 16] = core::array::from_fn(|i| i as u8);
        let mut out = [0u8; 32];
        assert_eq!(full_cdb(&cdb, &[], &mut out), Some(16));
        // A 32-byte CDB: AHSLength 17 (the reserved byte and 16 more), 20 bytes on the wire.
        let mut ahs = [0u8; 20];
        ahs[..4].copy_from_slice(&[0, 17, AHS_EXTENDED_CDB, 0]);
        for (k, b) in ahs[4..].iter_mut().enumerate() {
            *b = 16 + k as u8;
        }
        assert_eq!(full_cdb(&cdb, &ahs, &mut out), Some(32));
        assert!(out.iter().enumerate().all(|(k, &b)| b == k as u8));
        // Past the segment, empty, twice, too long for the buffer.
        assert_eq!(full_cdb(&cdb, &ahs[..16], &mut out), None);
        assert_eq!(full_cdb(&cdb, &[0, 0, 1, 0], &mut out), None);
        let mut twice = [0u8; 40];
        twice[..20].copy_from_slice(&ahs);
        twice[20..].copy_from_slice(&ahs);
        assert_eq!(full_cdb(&cdb, &twice, &mut out), None);
        assert_eq!(full_cdb(&cdb, &ahs, &mut [0u8; 24]), None);
        // A bidirectional read length AHS (type 2) is skipped.
        let mut both = [0u8; 28];
        both[..8].copy_from_slice(&[0, 5, 2, 0, 0, 0, 2, 0]);
        both[8..].copy_from_slice(&ahs);
        assert_eq!(full_cdb(&cdb, &both, &mut out), Some(32));
    }

    #[test]
    fn scsi_command_fields() {
        let mut b = bhs(op::SCSI_COMMAND, 0xa1);
        b[4] = 1;
        b[5..8].copy_from_slice(&[0, 0x02, 0x00]);
        b[8..16].copy_from_slice(&[0, 3, 0, 0, 0, 0, 0, 0]);
        b[16..20].copy_from_slice(&7u32.to_be_bytes());
        b[20..24].copy_from_slice(&4096u32.to_be_bytes());
        b[24..28].copy_from_slice(&100u32.to_be_bytes());
        b[28..32].copy_from_slice(&55u32.to_be_bytes());
        b[32] = 0x2a;
        let p = parse(&b).unwrap();
        assert_eq!(
            (p.immediate, p.ahs_len, p.data_len, p.itt),
            (false, 4, 512, 7)
        );
        let Request::Command(c) = p.request else {
            panic!("{p:?}")
        };
        assert!(c.final_ && c.write && !c.read);
        assert_eq!(c.attr, TaskAttr::Simple);
        assert_eq!(
            (c.lun, c.edtl, c.cmdsn, c.exp_statsn, c.cdb[0]),
            (3 << 48, 4096, 100, 55, 0x2a)
        );
        b[1] = 0x85;
        assert_eq!(parse(&b).unwrap_err().reason, RejectReason::InvalidPduField);
    }

    #[test]
    fn unknown_opcodes_and_target_opcodes_are_not_supported() {
        for o in [
            0x07,
            0x0f,
            0x1c,
            0x1e,
            op::NOP_IN,
            op::SCSI_RESPONSE,
            op::REJECT,
            0x3e,
        ] {
            assert_eq!(
                parse(&bhs(o, 0x80)).unwrap_err().reason,
                RejectReason::CommandNotSupported,
                "{o:#x}"
            );
        }
    }

    #[test]
    fn login_stages_and_flags() {
        let mut b = bhs(0x40 | op::LOGIN, 0x87);
        b[8..14].copy_from_slice(&[0x80, 1, 2, 3, 4, 5]);
        b[20..22].copy_from_slice(&9u16.to_be_bytes());
        let Request::Login(l) = parse(&b).unwrap().request else {
            panic!()
        };
        assert!(l.transit && !l.continue_);
        assert_eq!(
            (l.csg, l.nsg, l.cid),
            (Stage::Operational, Stage::FullFeature, 9)
        );
        assert_eq!(l.isid, [0x80, 1, 2, 3, 4, 5]);
        // Not immediate, T and C together, CSG 3, CSG 2, NSG 2 with T: protocol errors.
        for (o, f) in [
            (op::LOGIN, 0x87),
            (0x43, 0xc7),
            (0x43, 0x8f),
            (0x43, 0x08),
            (0x43, 0x82),
        ] {
            let mut b = bhs(o, f);
            b[0] = o;
            assert_eq!(
                parse(&b).unwrap_err().reason,
                RejectReason::ProtocolError,
                "{o:#x} {f:#x}"
            );
        }
        // Without T, NSG is not looked at.
        let Request::Login(l) = parse(&bhs(0x43, 0x02)).unwrap().request else {
            panic!()
        };
        assert_eq!((l.csg, l.nsg), (Stage::Security, Stage::Security));
    }

    #[test]
    fn other_requests() {
        assert!(matches!(
            parse(&bhs(op::TASK_MGMT, 0x85)).unwrap().request,
            Request::TaskMgmt(TaskMgmt {
                function: TmfFunction::LogicalUnitReset,
                ..
            })
        ));
        assert!(parse(&bhs(op::TASK_MGMT, 0x80)).is_err());
        assert!(parse(&bhs(op::TASK_MGMT, 0x05)).is_err());
        assert!(matches!(
            parse(&bhs(op::NOP_OUT, 0x80)).unwrap().request,
            Request::Nop(_)
        ));
        assert!(parse(&bhs(op::NOP_OUT, 0x00)).is_err());
        assert!(matches!(
            parse(&bhs(op::DATA_OUT, 0x80)).unwrap().request,
            Request::DataOut(DataOut { final_: true, .. })
        ));
        assert!(parse(&bhs(op::DATA_OUT, 0x81)).is_err());
        assert!(parse(&bhs(op::TEXT, 0xc0)).is_err());
        assert!(matches!(
            parse(&bhs(op::TEXT, 0x40)).unwrap().request,
            Request::Text(Text {
                continue_: true,
                ..
            })
        ));
        assert!(matches!(
            parse(&bhs(op::LOGOUT, 0x81)).unwrap().request,
            Request::Logout(Logout {
                reason: LogoutReason::CloseConnection,
                ..
            })
        ));
        assert!(parse(&bhs(op::LOGOUT, 0x83)).is_err());
        assert!(parse(&bhs(op::SNACK, 0x40)).is_err());
    }

    #[test]
    fn framing() {
        let mut b = bhs(op::SCSI_COMMAND, 0x80);
        b[4] = 2;
        b[5..8].copy_from_slice(&[0, 0, 5]);
        let f = Framing::of(&b, true, true);
        assert_eq!((f.data_at(), f.tail_len()), (12, 12 + 8 + 4));
        let f = Framing::of(&b, false, false);
        assert_eq!((f.data_at(), f.tail_len()), (8, 16));
        b[5..8].copy_from_slice(&[0, 0, 0]);
        // No data: no data digest.
        assert_eq!(Framing::of(&b, true, true).tail_len(), 12);
        b[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(Framing::of(&b, false, false).tail_len(), 8 + (1 << 24));
    }

    #[test]
    fn responses() {
        let sn = Sn {
            statsn: 1,
            exp_cmdsn: 2,
            max_cmdsn: 33,
        };
        let mut b = [0u8; BHS_LEN];
        encode(
            &Response::Scsi {
                itt: 9,
                response: 0,
                status: 2,
                exp_datasn: 0,
                residual: Residual::of(4096, 512),
            },
            sn,
            20,
            &mut b,
        );
        assert_eq!(&b[..8], &[0x21, 0x82, 0, 2, 0, 0, 0, 20]);
        assert_eq!(
            &b[16..36],
            &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 33]
        );
        assert_eq!(&b[44..48], &3584u32.to_be_bytes());
        encode(
            &Response::DataIn {
                final_: true,
                status: Some(0),
                lun: 1 << 48,
                itt: 9,
                datasn: 3,
                offset: 8192,
                residual: Residual::of(512, 1024),
            },
            sn,
            512,
            &mut b,
        );
        assert_eq!(&b[..8], &[0x25, 0x85, 0, 0, 0, 0, 2, 0]);
        assert_eq!(&b[20..28], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
        assert_eq!(&b[36..48], &[0, 0, 0, 3, 0, 0, 0x20, 0, 0, 0, 2, 0]);
        encode(
            &Response::DataIn {
                final_: false,
                status: None,
                lun: 0,
                itt: 9,
                datasn: 0,
                offset: 0,
                residual: Residual::None,
            },
            sn,
            512,
            &mut b,
        );
        assert_eq!((b[1], &b[24..28]), (0x00, &[0u8, 0, 0, 0][..]));
        encode(
            &Response::Login {
                transit: true,
                continue_: false,
                csg: Stage::Operational,
                nsg: Stage::FullFeature,
                isid: [0x80, 0, 0, 0, 0, 1],
                tsih: 0x1234,
                itt: 0,
                class: 0,
                detail: 0,
            },
            sn,
            0,
            &mut b,
        );
        assert_eq!(&b[..4], &[0x23, 0x87, 0, 0]);
        assert_eq!(&b[8..16], &[0x80, 0, 0, 0, 0, 1, 0x12, 0x34]);
        encode(
            &Response::Reject {
                reason: RejectReason::ProtocolError,
                datasn: 0,
            },
            sn,
            48,
            &mut b,
        );
        assert_eq!(&b[..8], &[0x3f, 0x80, 4, 0, 0, 0, 0, 48]);
        assert_eq!(&b[16..20], &[0xff; 4]);
    }
}
