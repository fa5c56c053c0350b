//! Command classification: one CDB in, one [`Action`] (or the sense to fail it with) out.
//! Every check that does not need the backend happens here, so the kernel side only moves data.

use super::cdb::{cdb_len, Dir, RwCdb};
use super::sense::{Sense, SenseKey};
use super::spc::{put, ModeSense};
use super::xcopy::{RCR_COPY_STATUS, RCR_OPERATING_PARAMETERS};

/// Opcodes handled besides READ/WRITE.
pub mod op {
    /// TEST UNIT READY.
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// REQUEST SENSE.
    pub const REQUEST_SENSE: u8 = 0x03;
    /// INQUIRY.
    pub const INQUIRY: u8 = 0x12;
    /// MODE SENSE(6).
    pub const MODE_SENSE_6: u8 = 0x1a;
    /// READ CAPACITY(10).
    pub const READ_CAPACITY_10: u8 = 0x25;
    /// SYNCHRONIZE CACHE(10).
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    /// MODE SENSE(10).
    pub const MODE_SENSE_10: u8 = 0x5a;
    /// SYNCHRONIZE CACHE(16).
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    /// SERVICE ACTION IN(16).
    pub const SERVICE_ACTION_IN_16: u8 = 0x9e;
    /// REPORT LUNS.
    pub const REPORT_LUNS: u8 = 0xa0;
    /// READ CAPACITY(16), a SERVICE ACTION IN(16) service action.
    pub const SAI_READ_CAPACITY_16: u8 = 0x10;
    /// GET LBA STATUS, a SERVICE ACTION IN(16) service action.
    pub const SAI_GET_LBA_STATUS: u8 = 0x12;
    /// START STOP UNIT.
    pub const START_STOP_UNIT: u8 = 0x1b;
    /// MODE SELECT(6).
    pub const MODE_SELECT_6: u8 = 0x15;
    /// MODE SELECT(10).
    pub const MODE_SELECT_10: u8 = 0x55;
    /// RESERVE(6).
    pub const RESERVE_6: u8 = 0x16;
    /// RELEASE(6).
    pub const RELEASE_6: u8 = 0x17;
    /// RESERVE(10).
    pub const RESERVE_10: u8 = 0x56;
    /// RELEASE(10).
    pub const RELEASE_10: u8 = 0x57;
    /// PREVENT ALLOW MEDIUM REMOVAL.
    pub const PREVENT_ALLOW: u8 = 0x1e;
    /// VERIFY(10).
    pub const VERIFY_10: u8 = 0x2f;
    /// VERIFY(12).
    pub const VERIFY_12: u8 = 0xaf;
    /// VERIFY(16).
    pub const VERIFY_16: u8 = 0x8f;
    /// PRE-FETCH(10).
    pub const PRE_FETCH_10: u8 = 0x34;
    /// PRE-FETCH(16).
    pub const PRE_FETCH_16: u8 = 0x90;
    /// WRITE SAME(10).
    pub const WRITE_SAME_10: u8 = 0x41;
    /// WRITE SAME(16).
    pub const WRITE_SAME_16: u8 = 0x93;
    /// COMPARE AND WRITE.
    pub const COMPARE_AND_WRITE: u8 = 0x89;
    /// ORWRITE(16).
    pub const ORWRITE_16: u8 = 0x8b;
    /// WRITE ATOMIC(16).
    pub const WRITE_ATOMIC_16: u8 = 0x9c;
    /// WRITE AND VERIFY(10).
    pub const WRITE_VERIFY_10: u8 = 0x2e;
    /// WRITE AND VERIFY(12).
    pub const WRITE_VERIFY_12: u8 = 0xae;
    /// WRITE AND VERIFY(16).
    pub const WRITE_VERIFY_16: u8 = 0x8e;
    /// UNMAP.
    pub const UNMAP: u8 = 0x42;
    /// EXTENDED COPY (LID1 is service action 0).
    pub const EXTENDED_COPY: u8 = 0x83;
    /// RECEIVE COPY RESULTS.
    pub const RECEIVE_COPY_RESULTS: u8 = 0x84;
    /// MAINTENANCE IN.
    pub const MAINTENANCE_IN: u8 = 0xa3;
    /// REPORT SUPPORTED OPERATION CODES, a MAINTENANCE IN service action.
    pub const MI_REPORT_OPCODES: u8 = 0x0c;
    /// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, a MAINTENANCE IN service action.
    pub const MI_REPORT_TMFS: u8 = 0x0d;
    /// READ DEFECT DATA(10).
    pub const READ_DEFECT_DATA_10: u8 = 0x37;
    /// READ DEFECT DATA(12).
    pub const READ_DEFECT_DATA_12: u8 = 0xb7;
    /// SANITIZE and its service actions.
    pub const SANITIZE: u8 = 0x48;
    /// SANITIZE OVERWRITE.
    pub const SANITIZE_OVERWRITE: u8 = 0x01;
    /// SANITIZE BLOCK ERASE.
    pub const SANITIZE_BLOCK_ERASE: u8 = 0x02;
    /// SANITIZE EXIT FAILURE MODE.
    pub const SANITIZE_EXIT_FAILURE_MODE: u8 = 0x1f;
}

/// What the device must do for a command. Response-building actions carry the CDB's
/// allocation length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Transfer `blocks` blocks at `lba` from the backend (data in).
    Read {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// FUA: read from the medium, not a volatile cache.
        fua: bool,
    },
    /// Transfer `blocks` blocks at `lba` to the backend (data out).
    Write {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// FUA: the data is on stable storage before GOOD.
        fua: bool,
    },
    /// SYNCHRONIZE CACHE(10/16): `blocks` blocks from `lba`; 0 blocks means to the end.
    SyncCache {
        /// First block.
        lba: u64,
        /// Block count (0: to the end of the medium).
        blocks: u32,
    },
    /// Standard INQUIRY.
    Inquiry {
        /// Allocation length.
        alloc: u32,
    },
    /// INQUIRY with EVPD for `page`.
    Vpd {
        /// Page code.
        page: u8,
        /// Allocation length.
        alloc: u32,
    },
    /// READ CAPACITY(10).
    ReadCapacity10,
    /// READ CAPACITY(16).
    ReadCapacity16 {
        /// Allocation length.
        alloc: u32,
    },
    /// MODE SENSE(6) or (10).
    ModeSense {
        /// Decoded CDB fields.
        ms: ModeSense,
        /// Allocation length.
        alloc: u32,
    },
    /// REPORT LUNS.
    ReportLuns {
        /// Allocation length.
        alloc: u32,
    },
    /// REQUEST SENSE (fixed format).
    RequestSense {
        /// Allocation length.
        alloc: u32,
    },
    /// VERIFY(10/12/16) of `blocks` blocks at `lba`. `bytchk` 0: the medium only; 1: compare
    /// with the data-out buffer; 3: compare every block with the buffer's one block.
    Verify {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// BYTCHK.
        bytchk: u8,
    },
    /// WRITE SAME(10/16): the data-out block (or zeroes, NDOB) to `blocks` blocks at `lba`.
    WriteSame {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// UNMAP: the blocks may be deallocated if the data is zeroes.
        unmap: bool,
        /// NDOB: no data-out buffer, the block is zeroes.
        ndob: bool,
    },
    /// COMPARE AND WRITE of `blocks` blocks at `lba` (the data-out holds the compare data,
    /// then the write data).
    CompareAndWrite {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// FUA for the write.
        fua: bool,
    },
    /// WRITE ATOMIC(16): write `blocks` blocks at `lba` all or nothing.
    WriteAtomic {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// FUA for the write.
        fua: bool,
    },
    /// ORWRITE(16): OR the data-out buffer into `blocks` blocks at `lba`.
    OrWrite {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// FUA for the write.
        fua: bool,
    },
    /// WRITE AND VERIFY: write `blocks` blocks at `lba` to the medium, then (`bytchk`)
    /// read them back and compare.
    WriteVerify {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// Compare after writing.
        bytchk: bool,
    },
    /// GET LBA STATUS from `lba`.
    GetLbaStatus {
        /// Starting LBA.
        lba: u64,
        /// Allocation length.
        alloc: u32,
    },
    /// UNMAP with a parameter list of `len` bytes (at least the 8-byte header).
    Unmap {
        /// Parameter list length.
        len: u32,
    },
    /// REPORT SUPPORTED OPERATION CODES.
    ReportOpcodes {
        /// REPORTING OPTIONS, RCTD, REQUESTED OPERATION CODE and SERVICE ACTION.
        query: OpcodeQuery,
        /// Allocation length.
        alloc: u32,
    },
    /// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
    ReportTmfs {
        /// REPD: the extended 16-byte format.
        repd: bool,
        /// Allocation length.
        alloc: u32,
    },
    /// SANITIZE: OVERWRITE with a parameter list of `len` bytes, BLOCK ERASE (`len` 0) or EXIT
    /// FAILURE MODE.
    Sanitize {
        /// The service action.
        sa: u8,
        /// Parameter list length.
        len: u32,
        /// IMMED: GOOD as soon as the sanitize operation starts.
        immed: bool,
    },
    /// MODE SELECT(6/10) with a parameter list of `len` bytes.
    ModeSelect {
        /// The 10-byte form (8-byte header).
        ten: bool,
        /// Parameter list length.
        len: u32,
    },
    /// EXTENDED COPY(LID1) with a parameter list of `len` bytes (0: nothing to copy).
    ExtendedCopy {
        /// Parameter list length.
        len: u32,
    },
    /// RECEIVE COPY RESULTS, OPERATING PARAMETERS.
    CopyOperatingParameters {
        /// Allocation length.
        alloc: u32,
    },
    /// RECEIVE COPY RESULTS, COPY STATUS of the nexus's copy with this list identifier.
    CopyStatus {
        /// LIST IDENTIFIER.
        list_id: u8,
        /// Allocation length.
        alloc: u32,
    },
    /// READ DEFECT DATA(10/12): the header of an empty defect list.
    ReadDefectData {
        /// The 12-byte form (8-byte header).
        twelve: bool,
        /// REQ_PLIST, REQ_GLIST and DEFECT LIST FORMAT, as in the header's byte 1.
        lists: u8,
        /// Allocation length.
        alloc: u32,
    },
    /// PERSISTENT RESERVE IN of service action `sa`.
    PersistentReserveIn {
        /// SERVICE ACTION (`pr::prin`).
        sa: u8,
        /// Allocation length.
        alloc: u32,
    },
    /// PERSISTENT RESERVE OUT of service action `sa` with a parameter list of `len` bytes.
    PersistentReserveOut {
        /// SERVICE ACTION (`pr::prout`).
        sa: u8,
        /// SCOPE and TYPE (CDB byte 2).
        scope_type: u8,
        /// Parameter list length.
        len: u32,
    },
    /// SPC-2 RESERVE(6/10) of the whole logical unit for the issuing nexus.
    Reserve,
    /// SPC-2 RELEASE(6/10).
    Release,
    /// Nothing to do but answer GOOD (TEST UNIT READY, PRE-FETCH, START STOP UNIT with
    /// START, PREVENT ALLOW MEDIUM REMOVAL).
    Good,
}

/// REPORT SUPPORTED OPERATION CODES' request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpcodeQuery {
    /// REPORTING OPTIONS (0: all; 1: one opcode; 2: one opcode and service action; 3: either).
    pub options: u8,
    /// RCTD: add command timeouts descriptors.
    pub rctd: bool,
    /// REQUESTED OPERATION CODE.
    pub opcode: u8,
    /// REQUESTED SERVICE ACTION.
    pub sa: u16,
}

/// What the checks need to know about the device and the command's data buffer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Capacity in blocks.
    pub blocks: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Largest READ/WRITE in blocks (VPD B0h MAXIMUM TRANSFER LENGTH).
    pub max_transfer: u32,
    /// DPO and FUA are supported (`emulate_fua_write`, MODE SENSE's DPOFUA): with or without a
    /// write cache, as every backend honours FUA (LIO ties them to WCE). Without it, both bits
    /// are refused, as SBC-4 and libiscsi's tests expect of a DPOFUA 0 device.
    pub dpofua: bool,
    /// READ and WRITE accept RDPROTECT / WRPROTECT: the device stores protection information
    /// and the nexus can carry it. (Other commands refuse protection fields.)
    pub pi: bool,
    /// Logical block provisioning (READ and WRITE do not need it: left at its default).
    pub thin: Thin,
    /// COMPARE AND WRITE enabled (`emulate_caw`).
    pub caw: bool,
    /// Atomic write limits (READ and WRITE do not need them: left at their default).
    pub atomic: AtomicLimits,
    /// Third-party copy enabled (`emulate_3pc`): EXTENDED COPY and RECEIVE COPY RESULTS.
    pub three_pc: bool,
    /// The device stores protection information: EXTENDED COPY, which does not keep the
    /// tuples, is not offered. (The other commands that change data keep them.)
    pub pi_store: bool,
    /// Reservations are emulated (`emulate_pr`): PERSISTENT RESERVE IN / OUT, RESERVE and
    /// RELEASE are commands of the device.
    pub reservations: bool,
    /// The nexus sees type 2 protection (the device has it and the nexus carries tuples):
    /// READ(32) and WRITE(32) are its commands, and the shorter READ and WRITE take no
    /// protection field (SBC-4 4.22.2.4).
    pub type2: bool,
}

/// Atomic write limits in blocks (`attrib/atomic_*`, VPD B0h bytes 44-63); `max_len` 0: the
/// device has no atomic writes and WRITE ATOMIC(16) is not a command of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtomicLimits {
    /// MAXIMUM ATOMIC TRANSFER LENGTH.
    pub max_len: u32,
    /// ATOMIC ALIGNMENT: the LBA must be a multiple of it (0: any).
    pub alignment: u32,
    /// ATOMIC TRANSFER LENGTH GRANULARITY (0: any).
    pub granularity: u32,
    /// MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY.
    pub max_with_boundary: u32,
    /// MAXIMUM ATOMIC BOUNDARY SIZE.
    pub max_boundary: u32,
}

/// Logical block provisioning and WRITE SAME limits (`attrib/emulate_tpu`, `emulate_tpws`,
/// `max_unmap_*`, `max_write_same_len`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Thin {
    /// UNMAP is enabled (TPU).
    pub tpu: bool,
    /// WRITE SAME with UNMAP is enabled (TPWS).
    pub tpws: bool,
    /// Deallocated blocks read back as zeroes (LBPRZ).
    pub lbprz: bool,
    /// MAXIMUM UNMAP LBA COUNT.
    pub max_unmap_lba_count: u32,
    /// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
    pub max_unmap_desc_count: u32,
    /// MAXIMUM WRITE SAME LENGTH in blocks (0: WRITE SAME is refused).
    pub max_write_same: u32,
}

/// INVALID FIELD IN COMMAND INFORMATION UNIT (0Eh/03h): the data buffer does not match the
/// transfer length of a WRITE.
pub const fn invalid_field_in_iu() -> Sense {
    Sense {
        key: SenseKey::IllegalRequest,
        asc: 0x0e,
        ascq: 0x03,
        field: None,
        info: None,
    }
}

fn be16(b: &[u8]) -> u32 {
    u32::from(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A command the device server implements: the single table that [`parse`] dispatches from
/// and REPORT SUPPORTED OPERATION CODES reports, so the two cannot disagree.
#[derive(Debug)]
pub struct OpInfo {
    /// OPERATION CODE.
    pub opcode: u8,
    /// SERVICE ACTION, for opcodes that have them (CDB byte 1, bits 4-0; bytes 8-9 of a
    /// VARIABLE LENGTH CDB).
    pub sa: Option<u16>,
    /// CDB USAGE DATA (SPC-4 6.35.3): the CDB with a one in every bit the command looks at.
    /// Its length is the CDB's.
    pub usage: &'static [u8],
    /// Decodes and checks the CDB.
    pub decode: fn(&[u8], &Limits, u32) -> Result<Action, Sense>,
    /// The device setting the command depends on.
    pub needs: Needs,
}

/// A command that exists only when a device setting enables it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Always there.
    Nothing,
    /// `emulate_tpu` (UNMAP).
    Tpu,
    /// `emulate_caw` (COMPARE AND WRITE).
    Caw,
    /// Atomic writes from the medium (WRITE ATOMIC).
    Atomic,
    /// `emulate_3pc` (EXTENDED COPY, RECEIVE COPY RESULTS).
    ThreePc,
    /// Type 2 protection (READ(32), WRITE(32)).
    Type2,
    /// `emulate_pr` (PERSISTENT RESERVE IN / OUT, RESERVE, RELEASE).
    Reservations,
}

impl Needs {
    /// Whether a device with these limits implements the command.
    pub fn met(self, dev: &Limits) -> bool {
        match self {
            Needs::Nothing => true,
            Needs::Tpu => dev.thin.tpu,
            Needs::Caw => dev.caw,
            Needs::Atomic => dev.atomic.max_len != 0,
            Needs::ThreePc => dev.three_pc && !dev.pi_store,
            Needs::Type2 => dev.type2,
            Needs::Reservations => dev.reservations,
        }
    }
}

const fn info(
    opcode: u8,
    sa: Option<u16>,
    usage: &'static [u8],
    decode: fn(&[u8], &Limits, u32) -> Result<Action, Sense>,
) -> OpInfo {
    OpInfo {
        opcode,
        sa,
        usage,
        decode,
        needs: Needs::Nothing,
    }
}

const fn only_with(needs: Needs, i: OpInfo) -> OpInfo {
    OpInfo { needs, ..i }
}

use super::cdb::{
    READ_10, READ_12, READ_16, READ_32, READ_6, VARIABLE_LENGTH, WRITE_10, WRITE_12, WRITE_16,
    WRITE_32, WRITE_6,
};
use super::pr::{prin, prout, PERSISTENT_RESERVE_IN as PR_IN, PERSISTENT_RESERVE_OUT as PR_OUT};

/// CDB usage data of READ(32) and WRITE(32) (DPO, FUA, the LBA, the expected tags, the length).
macro_rules! usage32 {
    ($sa:expr) => {
        &[
            VARIABLE_LENGTH,
            0x07,
            0,
            0,
            0,
            0,
            0x3f,
            0x18,
            0,
            $sa,
            0xf8,
            0,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
        ]
    };
}

/// Every implemented command, by opcode and service action. CDB usage data as LIO reports it
/// where LIO implements the command.
#[rustfmt::skip]
pub static COMMANDS: &[OpInfo] = &[
    info(op::TEST_UNIT_READY, None, &[0x00, 0, 0, 0, 0, 0x07], good),
    info(op::REQUEST_SENSE, None, &[0x03, 0x01, 0, 0, 0xff, 0x07], request_sense),
    info(READ_6, None, &[READ_6, 0x1f, 0xff, 0xff, 0xff, 0x07], read_write),
    info(WRITE_6, None, &[WRITE_6, 0x1f, 0xff, 0xff, 0xff, 0x07], read_write),
    info(op::MODE_SELECT_6, None, &[0x15, 0x11, 0, 0, 0xff, 0x07], mode_select),
    only_with(Needs::Reservations, info(op::RESERVE_6, None, &[0x16, 0, 0, 0, 0, 0x07], reserve_release)),
    only_with(Needs::Reservations, info(op::RELEASE_6, None, &[0x17, 0, 0, 0, 0, 0x07], reserve_release)),
    info(op::INQUIRY, None, &[0x12, 0x01, 0xff, 0xff, 0xff, 0x07], inquiry),
    info(op::MODE_SENSE_6, None, &[0x1a, 0x08, 0xff, 0xff, 0xff, 0x07], mode_sense),
    info(op::START_STOP_UNIT, None, &[0x1b, 0x01, 0x00, 0x0f, 0xf7, 0x07], start_stop),
    info(op::PREVENT_ALLOW, None, &[0x1e, 0x00, 0x00, 0x00, 0x03, 0x07], prevent_allow),
    info(op::READ_CAPACITY_10, None, &[0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0x07], read_capacity10),
    info(READ_10, None, &[READ_10, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07], read_write),
    info(WRITE_10, None, &[WRITE_10, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07], read_write),
    info(op::WRITE_VERIFY_10, None, &[0x2e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07], write_verify),
    info(op::VERIFY_10, None, &[0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07], verify),
    info(op::WRITE_SAME_10, None, &[0x41, 0xe8, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07], write_same),
    only_with(Needs::Tpu, info(op::UNMAP, None, &[0x42, 0x00, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0x07], unmap)),
    info(op::PRE_FETCH_10, None, &[0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07], pre_fetch),
    info(op::SYNCHRONIZE_CACHE_10, None, &[0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07], sync_cache),
    info(op::SANITIZE, Some(op::SANITIZE_OVERWRITE as u16), &[0x48, 0xa1, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], sanitize),
    only_with(Needs::Tpu, info(op::SANITIZE, Some(op::SANITIZE_BLOCK_ERASE as u16), &[0x48, 0xa2, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], sanitize)),
    info(op::SANITIZE, Some(op::SANITIZE_EXIT_FAILURE_MODE as u16), &[0x48, 0xbf, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], sanitize),
    info(op::READ_DEFECT_DATA_10, None, &[0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0x07], read_defect_data),
    info(op::MODE_SELECT_10, None, &[0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], mode_select),
    only_with(Needs::Reservations, info(op::RESERVE_10, None, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0x07], reserve_release)),
    only_with(Needs::Reservations, info(op::RELEASE_10, None, &[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0x07], reserve_release)),
    only_with(Needs::Reservations, info(PR_IN, Some(prin::READ_KEYS as u16), &[PR_IN, prin::READ_KEYS, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], persistent_reserve_in)),
    only_with(Needs::Reservations, info(PR_IN, Some(prin::READ_RESERVATION as u16), &[PR_IN, prin::READ_RESERVATION, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], persistent_reserve_in)),
    only_with(Needs::Reservations, info(PR_IN, Some(prin::REPORT_CAPABILITIES as u16), &[PR_IN, prin::REPORT_CAPABILITIES, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], persistent_reserve_in)),
    only_with(Needs::Reservations, info(PR_IN, Some(prin::READ_FULL_STATUS as u16), &[PR_IN, prin::READ_FULL_STATUS, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07], persistent_reserve_in)),
    only_with(Needs::Reservations, info(PR_OUT, Some(prout::REGISTER as u16), &[PR_OUT, prout::REGISTER, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], persistent_reserve_out)),
    only_with(Needs::Reservations, info(PR_OUT, Some(prout::RESERVE as u16), &[PR_OUT, prout::RESERVE, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], persistent_reserve_out)),
    only_with(Needs::Reservations, info(PR_OUT, Some(prout::RELEASE as u16), &[PR_OUT, prout::RELEASE, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], persistent_reserve_out)),
    only_with(Needs::Reservations, info(PR_OUT, Some(prout::CLEAR as u16), &[PR_OUT, prout::CLEAR, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], persistent_reserve_out)),
    only_with(Needs::Reservations, info(PR_OUT, Some(prout::PREEMPT as u16), &[PR_OUT, prout::PREEMPT, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], persistent_reserve_out)),
    only_with(Needs::Reservations, info(PR_OUT, Some(prout::PREEMPT_AND_ABORT as u16), &[PR_OUT, prout::PREEMPT_AND_ABORT, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], persistent_reserve_out)),
    only_with(Needs::Reservations, info(PR_OUT, Some(prout::REGISTER_AND_IGNORE as u16), &[PR_OUT, prout::REGISTER_AND_IGNORE, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], persistent_reserve_out)),
    info(op::MODE_SENSE_10, None, &[0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x07], mode_sense),
    info(READ_16, None, &[READ_16, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], read_write),
    info(WRITE_16, None, &[WRITE_16, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], read_write),
    only_with(Needs::Caw, info(op::COMPARE_AND_WRITE, None, &[0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x3f, 0x07], compare_and_write)),
    info(op::ORWRITE_16, None, &[0x8b, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], orwrite),
    info(op::WRITE_VERIFY_16, None, &[0x8e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], write_verify),
    info(op::VERIFY_16, None, &[0x8f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], verify),
    info(op::PRE_FETCH_16, None, &[0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], pre_fetch),
    info(op::SYNCHRONIZE_CACHE_16, None, &[0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], sync_cache),
    info(op::WRITE_SAME_16, None, &[0x93, 0xe9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], write_same),
    only_with(Needs::Atomic, info(op::WRITE_ATOMIC_16, None, &[0x9c, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07], write_atomic)),
    info(op::SERVICE_ACTION_IN_16, Some(op::SAI_READ_CAPACITY_16 as u16), &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07], read_capacity16),
    info(op::SERVICE_ACTION_IN_16, Some(op::SAI_GET_LBA_STATUS as u16), &[0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07], get_lba_status),
    only_with(Needs::ThreePc, info(op::EXTENDED_COPY, Some(0), &[0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07], extended_copy)),
    only_with(Needs::ThreePc, info(op::RECEIVE_COPY_RESULTS, Some(RCR_COPY_STATUS as u16), &[0x84, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07], receive_copy_results)),
    only_with(Needs::ThreePc, info(op::RECEIVE_COPY_RESULTS, Some(RCR_OPERATING_PARAMETERS as u16), &[0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07], receive_copy_results)),
    info(op::REPORT_LUNS, None, &[0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07], report_luns),
    info(op::MAINTENANCE_IN, Some(op::MI_REPORT_OPCODES as u16), &[0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07], report_opcodes),
    info(op::MAINTENANCE_IN, Some(op::MI_REPORT_TMFS as u16), &[0xa3, 0x0d, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07], report_tmfs),
    info(READ_12, None, &[READ_12, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07], read_write),
    info(WRITE_12, None, &[WRITE_12, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07], read_write),
    info(op::WRITE_VERIFY_12, None, &[0xae, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07], write_verify),
    info(op::VERIFY_12, None, &[0xaf, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07], verify),
    info(op::READ_DEFECT_DATA_12, None, &[0xb7, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07], read_defect_data),
    only_with(Needs::Type2, info(VARIABLE_LENGTH, Some(READ_32), usage32!(READ_32 as u8), read_write)),
    only_with(Needs::Type2, info(VARIABLE_LENGTH, Some(WRITE_32), usage32!(WRITE_32 as u8), read_write)),
];

/// The table entry for `cdb`: `Err` with INVALID COMMAND OPERATION CODE, or INVALID FIELD IN
/// CDB at the service action when the opcode has service actions but not this one.
pub fn lookup(cdb: &[u8], dev: &Limits) -> Result<&'static OpInfo, Sense> {
    let &opcode = cdb.first().ok_or(Sense::invalid_opcode())?;
    let (sa, sa_field) = if opcode == VARIABLE_LENGTH {
        (cdb.get(8..10).map(|b| be16(b) as u16), (8, None))
    } else {
        (cdb.get(1).map(|b| u16::from(b & 0x1f)), (1, Some(4)))
    };
    let mut has_sa = false;
    for d in COMMANDS
        .iter()
        .filter(|d| d.opcode == opcode && d.needs.met(dev))
    {
        match d.sa {
            None => return Ok(d),
            Some(s) if Some(s) == sa => return Ok(d),
            Some(_) => has_sa = true,
        }
    }
    Err(if has_sa {
        Sense::invalid_cdb_field(sa_field.0, sa_field.1)
    } else {
        Sense::invalid_opcode()
    })
}

/// Classifies `cdb`, whose data buffer holds `data_len` bytes.
pub fn parse(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    // READ and WRITE first: the I/O path does not walk the table.
    if let Some(rw) = RwCdb::decode(cdb)? {
        return parse_rw(&rw, dev, data_len);
    }
    let d = lookup(cdb, dev)?;
    if cdb.len() < d.usage.len() {
        return Err(Sense::invalid_cdb_field(cdb.len() as u16, None));
    }
    (d.decode)(cdb, dev, data_len)
}

fn be64(b: &[u8]) -> u64 {
    b[..8].iter().fold(0, |v, &x| (v << 8) | u64::from(x))
}

fn good(_: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    Ok(Action::Good)
}

fn read_write(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    match RwCdb::decode(cdb)? {
        Some(rw) => parse_rw(&rw, dev, data_len),
        None => Err(Sense::invalid_opcode()),
    }
}

fn inquiry(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    let alloc = be16(&cdb[3..5]);
    if cdb[1] & 0x01 != 0 {
        Ok(Action::Vpd {
            page: cdb[2],
            alloc,
        })
    } else if cdb[2] != 0 {
        Err(Sense::invalid_cdb_field(2, None))
    } else {
        Ok(Action::Inquiry { alloc })
    }
}

fn read_capacity10(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    if cdb[8] & 0x01 == 0 && cdb[2..6] != [0; 4] {
        return Err(Sense::invalid_cdb_field(2, None));
    }
    Ok(Action::ReadCapacity10)
}

fn read_capacity16(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    Ok(Action::ReadCapacity16 {
        alloc: be32(&cdb[10..14]),
    })
}

fn mode_sense(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    let alloc = if cdb[0] == op::MODE_SENSE_6 {
        u32::from(cdb[4])
    } else {
        be16(&cdb[7..9])
    };
    Ok(Action::ModeSense {
        ms: ModeSense::decode(cdb),
        alloc,
    })
}

fn report_luns(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    Ok(Action::ReportLuns {
        alloc: be32(&cdb[6..10]),
    })
}

fn request_sense(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    if cdb[1] & 0x01 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(0)));
    }
    Ok(Action::RequestSense {
        alloc: u32::from(cdb[4]),
    })
}

/// LBA and block count of a 10-, 12- or 16-byte CDB laid out like READ's.
fn lba_and_count(cdb: &[u8]) -> (u64, u32) {
    match cdb.len() {
        10 => (u64::from(be32(&cdb[2..6])), be16(&cdb[7..9])),
        12 => (u64::from(be32(&cdb[2..6])), be32(&cdb[6..10])),
        _ => (be64(&cdb[2..10]), be32(&cdb[10..14])),
    }
}

fn check_range(lba: u64, blocks: u32, dev: &Limits) -> Result<(), Sense> {
    match lba.checked_add(u64::from(blocks)) {
        Some(end) if end <= dev.blocks => Ok(()),
        _ => Err(Sense::lba_out_of_range()),
    }
}

fn sync_cache(cdb: &[u8], dev: &Limits, _: u32) -> Result<Action, Sense> {
    let (lba, blocks) = lba_and_count(&cdb[..cdb_len(cdb[0]).unwrap_or(10)]);
    if blocks > 0 {
        check_range(lba, blocks, dev)?;
    }
    Ok(Action::SyncCache { lba, blocks })
}

/// PRE-FETCH(10/16): nothing to stage in advance; the range must exist. GOOD, not CONDITION
/// MET: SBC-4 asks for CONDITION MET only when the cache will hold the whole range.
fn pre_fetch(cdb: &[u8], dev: &Limits, _: u32) -> Result<Action, Sense> {
    let (lba, blocks) = lba_and_count(&cdb[..cdb_len(cdb[0]).unwrap_or(10)]);
    check_range(lba, blocks, dev)?;
    Ok(Action::Good)
}

fn verify(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    let (lba, blocks) = lba_and_count(&cdb[..cdb_len(cdb[0]).unwrap_or(10)]);
    let vrprotect = cdb[1] >> 5;
    // Protection information is checked by READ and WRITE only.
    if vrprotect != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(7)));
    }
    let bytchk = (cdb[1] >> 1) & 0x03;
    if bytchk == 2 {
        return Err(Sense::invalid_cdb_field(1, Some(2)));
    }
    check_range(lba, blocks, dev)?;
    if blocks > dev.max_transfer && bytchk != 0 {
        return Err(Sense::invalid_cdb_field(
            if cdb.len() == 16 { 10 } else { 7 },
            None,
        ));
    }
    let need = match bytchk {
        0 => 0,
        1 => u64::from(blocks) * u64::from(dev.block_size),
        _ => u64::from(dev.block_size),
    };
    if bytchk != 0 && blocks > 0 && need != u64::from(data_len) {
        return Err(invalid_field_in_iu());
    }
    Ok(Action::Verify {
        lba,
        blocks,
        bytchk,
    })
}

/// Largest MODE SELECT parameter list: a header, a long block descriptor and every page.
pub const MODE_SELECT_MAX: u32 = 512;

/// MODE SELECT(6/10): page format only (PF); SP is accepted, as the settings are the device's
/// attributes, which targetcli saves.
fn mode_select(cdb: &[u8], _: &Limits, data_len: u32) -> Result<Action, Sense> {
    let ten = cdb[0] == op::MODE_SELECT_10;
    let len = if ten {
        be16(&cdb[7..9])
    } else {
        u32::from(cdb[4])
    };
    if len > 0 && cdb[1] & 0x10 == 0 {
        return Err(Sense::invalid_cdb_field(1, Some(4)));
    }
    if len > MODE_SELECT_MAX || data_len < len {
        return Err(Sense::invalid_cdb_field(if ten { 7 } else { 4 }, None));
    }
    Ok(Action::ModeSelect { ten, len })
}

/// SANITIZE (SBC-4 5.30): without IMMED the command ends when the medium is sanitized. AUSE
/// is taken (no sanitize operation fails into a failure mode to leave). OVERWRITE carries an
/// initialization pattern of 1 to one block's bytes; the others carry nothing.
fn sanitize(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    let sa = cdb[1] & 0x1f;
    if cdb[1] & 0x40 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(6)));
    }
    if let Some(i) = (2..7).find(|&i| cdb[i] != 0) {
        return Err(Sense::invalid_cdb_field(i as u16, None));
    }
    let len = be16(&cdb[7..9]);
    let fits = match sa {
        op::SANITIZE_OVERWRITE => (5..=dev.block_size + 4).contains(&len),
        _ => len == 0,
    };
    if !fits || data_len < len {
        return Err(Sense::invalid_cdb_field(7, None));
    }
    Ok(Action::Sanitize {
        sa,
        len,
        immed: cdb[1] & 0x80 != 0,
    })
}

/// A SANITIZE OVERWRITE parameter list, checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Overwrite {
    /// Invert the pattern between passes.
    pub invert: bool,
    /// How many passes (1 to 31).
    pub passes: u8,
}

/// Checks a SANITIZE OVERWRITE parameter list (the CDB's length already checked): an
/// OVERWRITE COUNT, no TEST, and an INITIALIZATION PATTERN LENGTH of what follows, at most a
/// block. The pattern is `params[4..]`.
pub fn sanitize_overwrite(params: &[u8], block_size: u32) -> Result<Overwrite, Sense> {
    let Some(hdr) = params.get(..4) else {
        return Err(Sense::param_list_length());
    };
    if hdr[0] & 0x60 != 0 {
        return Err(Sense::invalid_param_field(0, Some(6)));
    }
    let passes = hdr[0] & 0x1f;
    if passes == 0 {
        return Err(Sense::invalid_param_field(0, Some(4)));
    }
    if hdr[1] != 0 {
        return Err(Sense::invalid_param_field(1, None));
    }
    let pattern = be16(&hdr[2..4]);
    if pattern == 0 || pattern > block_size || pattern as usize != params.len() - 4 {
        return Err(Sense::invalid_param_field(2, None));
    }
    Ok(Overwrite {
        invert: hdr[0] & 0x80 != 0,
        passes,
    })
}

/// One block of the initialization `pattern` repeated (inverted when asked), as an overwrite
/// pass writes it.
pub fn fill_pattern(block: &mut [u8], pattern: &[u8], invert: bool) {
    if pattern.is_empty() {
        return;
    }
    for (b, p) in block.iter_mut().zip(pattern.iter().cycle()) {
        *b = if invert { !p } else { *p };
    }
}

/// SPC-2 RESERVE and RELEASE, 6 and 10 bytes: the whole logical unit only. Third-party
/// reservations (3RDPTY, LONGID) and the obsolete extent fields are refused.
fn reserve_release(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    if cdb[1] != 0 {
        return Err(Sense::invalid_cdb_field(1, None));
    }
    Ok(match cdb[0] {
        op::RESERVE_6 | op::RESERVE_10 => Action::Reserve,
        _ => Action::Release,
    })
}

/// PERSISTENT RESERVE IN (SPC-4 6.15): the service action's response is built from the
/// device's state.
fn persistent_reserve_in(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    Ok(Action::PersistentReserveIn {
        sa: cdb[1] & 0x1f,
        alloc: be16(&cdb[7..9]),
    })
}

/// PERSISTENT RESERVE OUT (SPC-4 6.16): the parameter list is checked once it has arrived;
/// one shorter than 24 bytes is PARAMETER LIST LENGTH ERROR (as LIO; the state machine
/// wants exactly 24).
fn persistent_reserve_out(cdb: &[u8], _: &Limits, data_len: u32) -> Result<Action, Sense> {
    let len = be32(&cdb[5..9]);
    if (len as usize) < super::pr::PROUT_PARAM_LEN {
        return Err(Sense::param_list_length());
    }
    if data_len < len {
        return Err(Sense::param_list_length());
    }
    Ok(Action::PersistentReserveOut {
        sa: cdb[1] & 0x1f,
        scope_type: cdb[2],
        len,
    })
}

/// EXTENDED COPY(LID1): the parameter list is checked once it has arrived
/// (`xcopy::parse_list`).
fn extended_copy(cdb: &[u8], _: &Limits, data_len: u32) -> Result<Action, Sense> {
    let len = be32(&cdb[10..14]);
    if data_len < len {
        return Err(Sense::invalid_cdb_field(10, None));
    }
    Ok(Action::ExtendedCopy { len })
}

/// RECEIVE COPY RESULTS: COPY STATUS of a list identifier, or OPERATING PARAMETERS (whose
/// LIST IDENTIFIER must be 0).
fn receive_copy_results(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    let alloc = be32(&cdb[10..14]);
    if cdb[1] & 0x1f == RCR_COPY_STATUS {
        return Ok(Action::CopyStatus {
            list_id: cdb[2],
            alloc,
        });
    }
    if cdb[2] != 0 {
        return Err(Sense::invalid_cdb_field(2, None));
    }
    Ok(Action::CopyOperatingParameters { alloc })
}

/// Whether a command from another nexus is executed while an SPC-2 reservation is held
/// (SPC-2 5.5.1, as LIO: INQUIRY, RELEASE, REPORT LUNS, REQUEST SENSE).
pub fn passes_reservation(opcode: u8) -> bool {
    matches!(
        opcode,
        op::INQUIRY | op::RELEASE_6 | op::RELEASE_10 | op::REPORT_LUNS | op::REQUEST_SENSE
    )
}

/// Whether a command runs while a SANITIZE does (SBC-4 4.33; the others get NOT READY,
/// SANITIZE IN PROGRESS).
pub fn runs_while_sanitizing(opcode: u8) -> bool {
    matches!(opcode, op::INQUIRY | op::REPORT_LUNS | op::REQUEST_SENSE)
}

/// A SANITIZE OVERWRITE's progress in 65536ths (SPC-4 4.4.2.4.4, what REQUEST SENSE reports):
/// `passes` passes over `end` bytes, `left` of them still to go (the current one included),
/// `next` bytes of the current one written.
pub fn sanitize_progress(passes: u8, left: u8, next: u64, end: u64) -> u16 {
    if passes == 0 {
        return 0;
    }
    // next * 65536 / end, in 64 bits: media past 128 TiB counted in 128 KiB units.
    let shift = if end > 1 << 47 { 17 } else { 0 };
    let (next, end) = (next.min(end) >> shift, (end >> shift).max(1));
    let this_pass = (next * 65536 / end).min(65535);
    let done = u64::from(passes.saturating_sub(left)) * 65536 + this_pass;
    (done / u64::from(passes)).min(65535) as u16
}

/// START STOP UNIT on a disk that is always ready: START=1 (with or without IMMED) and the
/// power conditions are accepted; stopping (START=0) and loading or ejecting (LOEJ) are not
/// supported, as in LIO.
fn start_stop(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    let power_condition = cdb[4] >> 4;
    if !matches!(power_condition, 0 | 1 | 2 | 3 | 7 | 0xa | 0xb) {
        return Err(Sense::invalid_cdb_field(4, Some(7)));
    }
    if power_condition == 0 {
        if cdb[4] & 0x02 != 0 {
            return Err(Sense::invalid_cdb_field(4, Some(1)));
        }
        if cdb[4] & 0x01 == 0 {
            return Err(Sense::invalid_cdb_field(4, Some(0)));
        }
    }
    Ok(Action::Good)
}

/// READ DEFECT DATA(10/12): a virtual medium has no defects, so each list asked for is valid
/// and empty, in any of the address formats (short and long block, bytes from index,
/// physical sector: SBC-4 6.2); the reserved and vendor-specific formats are refused.
fn read_defect_data(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    let twelve = cdb[0] == op::READ_DEFECT_DATA_12;
    let at = if twelve { 1 } else { 2 };
    let lists = cdb[at] & 0x1f;
    if !matches!(lists & 0x07, 0 | 3 | 4 | 5) {
        return Err(Sense::invalid_cdb_field(at as u16, Some(2)));
    }
    Ok(Action::ReadDefectData {
        twelve,
        lists,
        alloc: if twelve {
            be32(&cdb[6..10])
        } else {
            be16(&cdb[7..9])
        },
    })
}

/// READ DEFECT DATA's parameter data: the 4-byte (10) or 8-byte (12) header of an empty list,
/// PLISTV / GLISTV set for the lists asked for, the format echoed; its length.
pub fn defect_data(twelve: bool, lists: u8) -> ([u8; 8], usize) {
    let mut b = [0u8; 8];
    b[1] = lists & 0x1f;
    (b, if twelve { 8 } else { 4 })
}

/// PREVENT ALLOW MEDIUM REMOVAL: the medium is not removable, so there is nothing to lock;
/// PREVENT 0 and 1 are accepted (SBC-4 5.15), the reserved values 2 and 3 are not.
fn prevent_allow(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    if cdb[4] & 0x03 > 1 {
        return Err(Sense::invalid_cdb_field(4, Some(1)));
    }
    Ok(Action::Good)
}

/// Transfer checks shared by ORWRITE and WRITE AND VERIFY: PROTECT field, range, transfer
/// length, a data-out buffer of exactly the blocks.
fn check_write(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<(u64, u32), Sense> {
    let (lba, blocks) = lba_and_count(&cdb[..cdb_len(cdb[0]).unwrap_or(10)]);
    if cdb[1] >> 5 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(7)));
    }
    check_range(lba, blocks, dev)?;
    if blocks > dev.max_transfer {
        return Err(Sense::invalid_cdb_field(
            if cdb.len() == 16 { 10 } else { 7 },
            None,
        ));
    }
    if u64::from(data_len) != u64::from(blocks) * u64::from(dev.block_size) {
        return Err(invalid_field_in_iu());
    }
    Ok((lba, blocks))
}

/// ORWRITE(16) (SBC-4 5.9).
fn orwrite(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    if !dev.dpofua && cdb[1] & 0x18 != 0 {
        return Err(Sense::invalid_cdb_field(
            1,
            Some(if cdb[1] & 0x10 != 0 { 4 } else { 3 }),
        ));
    }
    let (lba, blocks) = check_write(cdb, dev, data_len)?;
    Ok(Action::OrWrite {
        lba,
        blocks,
        fua: cdb[1] & 0x08 != 0,
    })
}

/// WRITE ATOMIC(16) (SBC-4 5.48): the transfer length is bytes 12-13, after the ATOMIC
/// BOUNDARY; checked against the atomic limits as LIO's `sbc_check_atomic` does.
fn write_atomic(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    if !dev.dpofua && cdb[1] & 0x18 != 0 {
        return Err(Sense::invalid_cdb_field(
            1,
            Some(if cdb[1] & 0x10 != 0 { 4 } else { 3 }),
        ));
    }
    if cdb[1] >> 5 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(7)));
    }
    let lba = be64(&cdb[2..10]);
    let boundary = u32::from(u16::from_be_bytes([cdb[10], cdb[11]]));
    let blocks = u32::from(u16::from_be_bytes([cdb[12], cdb[13]]));
    // The range first, as libiscsi's WriteAtomic16.BeyondEol expects of transfers longer
    // than the atomic limit (SBC-4 orders neither check first; LIO checks the limits first).
    check_range(lba, blocks, dev)?;
    let a = &dev.atomic;
    let (length_ok, boundary_ok) = if boundary != 0 {
        (blocks <= a.max_with_boundary, boundary <= a.max_boundary)
    } else {
        (blocks <= a.max_len, true)
    };
    let multiple = |v: u64, of: u32| of == 0 || v.is_multiple_of(u64::from(of));
    if !boundary_ok || !multiple(boundary.into(), a.granularity) {
        return Err(Sense::invalid_cdb_field(10, None));
    }
    if !length_ok || !multiple(blocks.into(), a.granularity) {
        return Err(Sense::invalid_cdb_field(12, None));
    }
    if !multiple(lba, a.alignment) {
        return Err(Sense::invalid_cdb_field(2, None));
    }
    if u64::from(data_len) != u64::from(blocks) * u64::from(dev.block_size) {
        return Err(invalid_field_in_iu());
    }
    Ok(Action::WriteAtomic {
        lba,
        blocks,
        fua: cdb[1] & 0x08 != 0,
    })
}

/// WRITE AND VERIFY(10/12/16) (SBC-4 5.53): BYTCHK 0 or 1.
fn write_verify(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    let bytchk = (cdb[1] >> 1) & 0x03;
    if bytchk > 1 {
        return Err(Sense::invalid_cdb_field(1, Some(2)));
    }
    let (lba, blocks) = check_write(cdb, dev, data_len)?;
    Ok(Action::WriteVerify {
        lba,
        blocks,
        bytchk: bytchk == 1,
    })
}

/// Largest COMPARE AND WRITE in blocks (VPD B0h MAXIMUM COMPARE AND WRITE LENGTH), as LIO.
pub const MAX_COMPARE_AND_WRITE: u32 = 1;

/// COMPARE AND WRITE (SBC-4 5.3).
fn compare_and_write(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    if cdb[1] >> 5 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(7)));
    }
    if !dev.dpofua && cdb[1] & 0x18 != 0 {
        return Err(Sense::invalid_cdb_field(
            1,
            Some(if cdb[1] & 0x10 != 0 { 4 } else { 3 }),
        ));
    }
    let lba = be64(&cdb[2..10]);
    let blocks = u32::from(cdb[13]);
    if blocks > MAX_COMPARE_AND_WRITE {
        return Err(Sense::invalid_cdb_field(13, None));
    }
    check_range(lba, blocks, dev)?;
    if u64::from(data_len) != 2 * u64::from(blocks) * u64::from(dev.block_size) {
        return Err(Sense::invalid_cdb_field(13, None));
    }
    Ok(Action::CompareAndWrite {
        lba,
        blocks,
        fua: cdb[1] & 0x08 != 0,
    })
}

/// GET LBA STATUS (SBC-4 5.6).
fn get_lba_status(cdb: &[u8], dev: &Limits, _: u32) -> Result<Action, Sense> {
    let lba = be64(&cdb[2..10]);
    if lba >= dev.blocks {
        return Err(Sense::lba_out_of_range());
    }
    Ok(Action::GetLbaStatus {
        lba,
        alloc: be32(&cdb[10..14]),
    })
}

/// GET LBA STATUS parameter data: one descriptor, `blocks` blocks from `lba` that are all
/// mapped or all deallocated (PROVISIONING STATUS 0 or 1).
pub fn lba_status_data(lba: u64, blocks: u32, mapped: bool) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[3] = 20;
    b[8..16].copy_from_slice(&lba.to_be_bytes());
    b[16..20].copy_from_slice(&blocks.to_be_bytes());
    b[20] = u8::from(!mapped);
    b
}

/// WRITE SAME(10/16) (SBC-4 5.50, 5.51).
fn write_same(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    let (lba, blocks) = lba_and_count(&cdb[..cdb_len(cdb[0]).unwrap_or(10)]);
    let (count_field, sixteen) = if cdb[0] == op::WRITE_SAME_16 {
        (10, true)
    } else {
        (7, false)
    };
    if cdb[1] >> 5 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(7)));
    }
    // ANCHOR: anchored blocks are not supported (ANC_SUP 0).
    if cdb[1] & 0x10 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(4)));
    }
    let unmap = cdb[1] & 0x08 != 0;
    if unmap && !dev.thin.tpws {
        return Err(Sense::invalid_cdb_field(1, Some(3)));
    }
    let ndob = sixteen && cdb[1] & 0x01 != 0;
    // WSNZ 0: a count of zero writes from the LBA to the end of the medium.
    let blocks = if blocks == 0 {
        if lba >= dev.blocks {
            return Err(Sense::lba_out_of_range());
        }
        u32::try_from(dev.blocks - lba).unwrap_or(u32::MAX)
    } else {
        blocks
    };
    if blocks > dev.thin.max_write_same {
        return Err(Sense::invalid_cdb_field(count_field, None));
    }
    check_range(lba, blocks, dev)?;
    let want = if ndob { 0 } else { dev.block_size };
    if data_len != want {
        return Err(invalid_field_in_iu());
    }
    Ok(Action::WriteSame {
        lba,
        blocks,
        unmap,
        ndob,
    })
}

/// UNMAP (SBC-4 5.31); the parameter list is checked by [`unmap_header`] and
/// [`unmap_descriptor`] once it has arrived.
fn unmap(cdb: &[u8], _: &Limits, data_len: u32) -> Result<Action, Sense> {
    if cdb[1] & 0x01 != 0 {
        return Err(Sense::invalid_cdb_field(1, Some(0)));
    }
    let len = be16(&cdb[7..9]);
    if len != 0 && len < 8 {
        return Err(Sense::param_list_length());
    }
    if data_len < len {
        return Err(invalid_field_in_iu());
    }
    Ok(Action::Unmap { len })
}

/// The number of block descriptors an UNMAP parameter list of `len` bytes carries, from its
/// 8-byte header.
pub fn unmap_header(hdr: &[u8; 8], len: u32, dev: &Limits) -> Result<u32, Sense> {
    let data_len = be16(&hdr[0..2]);
    let desc_len = be16(&hdr[2..4]);
    // The lengths count the bytes after themselves; shorter lists than the header claims are
    // a PARAMETER LIST LENGTH ERROR, as are descriptors cut short.
    if data_len + 2 > len || desc_len + 8 > len || desc_len % 16 != 0 {
        return Err(Sense::param_list_length());
    }
    let n = desc_len / 16;
    if n > dev.thin.max_unmap_desc_count {
        return Err(Sense::invalid_param_field(2, None));
    }
    Ok(n)
}

/// Descriptor `i` (16 bytes at 8 + 16 i) of an UNMAP parameter list: its LBA and count.
pub fn unmap_descriptor(desc: &[u8; 16], i: u32, dev: &Limits) -> Result<(u64, u32), Sense> {
    let lba = be64(&desc[0..8]);
    let blocks = be32(&desc[8..12]);
    if blocks > dev.thin.max_unmap_lba_count {
        return Err(Sense::invalid_param_field((8 + 16 * i + 8) as u16, None));
    }
    check_range(lba, blocks, dev)?;
    Ok((lba, blocks))
}

fn report_opcodes(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    let query = OpcodeQuery {
        options: cdb[2] & 0x07,
        rctd: cdb[2] & 0x80 != 0,
        opcode: cdb[3],
        sa: be16(&cdb[4..6]) as u16,
    };
    if query.options > 3 {
        return Err(Sense::invalid_cdb_field(2, Some(2)));
    }
    Ok(Action::ReportOpcodes {
        query,
        alloc: be32(&cdb[6..10]),
    })
}

fn report_tmfs(cdb: &[u8], _: &Limits, _: u32) -> Result<Action, Sense> {
    Ok(Action::ReportTmfs {
        repd: cdb[2] & 0x80 != 0,
        alloc: be32(&cdb[6..10]),
    })
}

/// Nominal and recommended command timeouts reported with RCTD, in seconds (0: none given).
const TIMEOUTS_DESCRIPTOR: [u8; 12] = [0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// REPORT SUPPORTED OPERATION CODES' parameter data, built from [`COMMANDS`] into `buf`;
/// returns the full length (which may exceed `buf.len()`). `Err`: the query names an opcode
/// with service actions without one (option 1) or without service actions with one (2).
pub fn report_opcodes_data(q: &OpcodeQuery, dev: &Limits, buf: &mut [u8]) -> Result<usize, Sense> {
    let commands = COMMANDS.iter().filter(|d| d.needs.met(dev));
    if q.options == 0 {
        let mut at = 4;
        for d in commands {
            let sa = d.sa.unwrap_or(0).to_be_bytes();
            let flags = (u8::from(q.rctd) << 1) | u8::from(d.sa.is_some());
            let len = (d.usage.len() as u16).to_be_bytes();
            at = put(
                buf,
                at,
                &[d.opcode, 0, sa[0], sa[1], 0, flags, len[0], len[1]],
            );
            if q.rctd {
                at = put(buf, at, &TIMEOUTS_DESCRIPTOR);
            }
        }
        put(buf, 0, &((at - 4) as u32).to_be_bytes());
        return Ok(at);
    }
    let mut found = None;
    for d in commands.filter(|d| d.opcode == q.opcode) {
        match (q.options, d.sa) {
            (1, Some(_)) | (2, None) => return Err(Sense::invalid_cdb_field(2, Some(2))),
            (1, None) => found = Some(d),
            (_, sa) if sa.unwrap_or(0) == q.sa => found = Some(d),
            _ => {}
        }
        if found.is_some() {
            break;
        }
    }
    let ctdp = u8::from(q.rctd) << 7;
    Ok(match found {
        // SUPPORT 001b: not supported.
        None => put(buf, 0, &[0, ctdp | 0x01, 0, 0]),
        Some(d) => {
            let len = (d.usage.len() as u16).to_be_bytes();
            // SUPPORT 011b: supported as the standard says.
            let at = put(buf, 0, &[0, ctdp | 0x03, len[0], len[1]]);
            let at = put(buf, at, d.usage);
            if q.rctd {
                put(buf, at, &TIMEOUTS_DESCRIPTOR)
            } else {
                at
            }
        }
    })
}

/// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS' parameter data (SPC-4 6.36): ABORT TASK, ABORT
/// TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, I_T NEXUS RESET; QUERY TASK and the other
/// SAM-5 queries are not implemented. Four bytes, or sixteen with REPD.
pub fn report_tmfs_data(repd: bool) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    b[0] = 0x80 | 0x40 | 0x10 | 0x08; // ATS, ATSS, CTSS, LURS
    b[1] = 0x01; // ITNRS
    if repd {
        b[3] = 0x0c; // ADDITIONAL DATA LENGTH
        (b, 16)
    } else {
        (b, 4)
    }
}

/// Checks a decoded READ or WRITE against the device and its data buffer.
pub fn parse_rw(rw: &RwCdb, dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    // The 32-byte forms exist only with type 2 protection, which refuses protection fields
    // in the shorter ones (SBC-4 4.22.2.4).
    let long = rw.cdb_len == 32;
    if long != dev.type2 && (long || rw.protect != 0) {
        return Err(Sense::invalid_opcode());
    }
    if !dev.dpofua && (rw.dpo || rw.fua) {
        let bit = if rw.dpo { 4 } else { 3 };
        return Err(Sense::invalid_cdb_field(rw.flags_field(), Some(bit)));
    }
    rw.check(dev.blocks, dev.max_transfer, dev.pi)?;
    let need = u64::from(rw.blocks) * u64::from(dev.block_size);
    match rw.dir {
        // More data asked for than the buffer holds; a shorter request leaves a residual.
        Dir::Read if need > u64::from(data_len) => {
            Err(Sense::invalid_cdb_field(rw.length_field(), None))
        }
        Dir::Read => Ok(Action::Read {
            lba: rw.lba,
            blocks: rw.blocks,
            fua: rw.fua,
        }),
        Dir::Write if need != u64::from(data_len) => Err(invalid_field_in_iu()),
        Dir::Write => Ok(Action::Write {
            lba: rw.lba,
            blocks: rw.blocks,
            fua: rw.fua,
        }),
    }
}

/// The blocks of data a WRITE, WRITE AND VERIFY or ORWRITE CDB carries: what a buffer of
/// another length is refused against, with the difference as its residual (LIO's
/// `target_cmd_size_check`). `None` for other commands.
pub fn write_blocks(cdb: &[u8]) -> Option<u32> {
    match RwCdb::decode(cdb) {
        Ok(Some(rw)) => matches!(rw.dir, Dir::Write).then_some(rw.blocks),
        Ok(None) => match cdb[0] {
            op::WRITE_VERIFY_10 | op::WRITE_VERIFY_12 | op::WRITE_VERIFY_16 | op::ORWRITE_16 => {
                let len = cdb_len(cdb[0])?;
                Some(lba_and_count(cdb.get(..len)?).1)
            }
            _ => None,
        },
        Err(_) => None,
    }
}

/// Sets the transfer length of a WRITE, WRITE AND VERIFY or ORWRITE CDB to `blocks` (1 to
/// what the CDB asked): the command its buffer carries when the fabric fits a transfer to it.
/// False for another command, a malformed one, or `blocks` out of that range.
pub fn set_write_blocks(cdb: &mut [u8], blocks: u32) -> bool {
    if blocks == 0 || write_blocks(cdb).is_none_or(|n| blocks > n) {
        return false;
    }
    // The form's length comes from the opcode: a fabric may pad the CDB (iSCSI's 16 bytes).
    let field = match (cdb[0], cdb_len(cdb[0])) {
        (WRITE_6, _) => 4..5,
        (VARIABLE_LENGTH, _) => 28..32,
        (_, Some(10)) => 7..9,
        (_, Some(12)) => 6..10,
        (_, Some(16)) => 10..14,
        _ => return false,
    };
    let n = field.len();
    cdb[field].copy_from_slice(&blocks.to_be_bytes()[4 - n..]);
    true
}

/// Whether a command is executed even though a unit attention is pending for its nexus
/// (SPC-4 5.14: INQUIRY, REPORT LUNS and REQUEST SENSE).
pub fn passes_unit_attention(opcode: u8) -> bool {
    matches!(opcode, op::INQUIRY | op::REPORT_LUNS | op::REQUEST_SENSE)
}

/// Fixed-format NO SENSE, what REQUEST SENSE returns when nothing is pending.
pub const NO_SENSE: [u8; 18] = [0x70, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdb::{READ_10, READ_16, WRITE_10};
    extern crate std;
    use crate::sense::FieldPointer;
    use std::vec;
    use std::vec::Vec;

    const DEV: Limits = Limits {
        blocks: 1024,
        block_size: 512,
        max_transfer: 0xffff_fff8,
        dpofua: true,
        pi: false,
        thin: Thin {
            tpu: true,
            tpws: true,
            lbprz: true,
            max_unmap_lba_count: 0x2000,
            max_unmap_desc_count: 2,
            max_write_same: 0xffff,
        },
        caw: true,
        reservations: true,
        atomic: AtomicLimits {
            max_len: 16,
            alignment: 2,
            granularity: 2,
            max_with_boundary: 0,
            max_boundary: 0,
        },
        three_pc: true,
        pi_store: false,
        type2: false,
    };

    #[test]
    fn set_write_blocks_shortens_the_transfer() {
        let mut w10 = [WRITE_10, 0, 0, 0, 0, 9, 0, 0, 2, 0];
        assert!(set_write_blocks(&mut w10, 1));
        assert_eq!(write_blocks(&w10), Some(1));
        assert!(!set_write_blocks(&mut w10, 2));
        assert!(!set_write_blocks(&mut w10, 0));
        let mut w6 = [0x0a, 0, 0, 1, 0, 0];
        assert!(set_write_blocks(&mut w6, 255));
        assert_eq!(write_blocks(&w6), Some(255));
        let mut wv16 = [0u8; 16];
        wv16[0] = op::WRITE_VERIFY_16;
        wv16[13] = 3;
        assert!(set_write_blocks(&mut wv16, 2));
        assert_eq!(write_blocks(&wv16), Some(2));
        let mut w12 = [0u8; 12];
        w12[0] = crate::cdb::WRITE_12;
        w12[9] = 8;
        assert!(set_write_blocks(&mut w12, 7));
        assert_eq!(write_blocks(&w12), Some(7));
        let mut read = [READ_10, 0, 0, 0, 0, 9, 0, 0, 2, 0];
        assert!(!set_write_blocks(&mut read, 1));
        // A WRITE(10) padded to 16 bytes, as iSCSI carries it.
        let mut padded = [0u8; 16];
        padded[..10].copy_from_slice(&[WRITE_10, 0, 0, 0, 0, 9, 0, 0, 2, 0]);
        assert!(set_write_blocks(&mut padded, 1));
        assert_eq!(padded[..10], [WRITE_10, 0, 0, 0, 0, 9, 0, 0, 1, 0]);
        assert_eq!(write_blocks(&padded), Some(1));
    }

    #[test]
    fn write_blocks_of_data_cdbs() {
        assert_eq!(
            write_blocks(&[WRITE_10, 0, 0, 0, 0, 9, 0, 0, 2, 0]),
            Some(2)
        );
        assert_eq!(write_blocks(&[READ_10, 0, 0, 0, 0, 9, 0, 0, 2, 0]), None);
        assert_eq!(write_blocks(&[0x0a, 0, 0, 1, 0, 0]), Some(256));
        let mut wv16 = [0u8; 16];
        wv16[0] = op::WRITE_VERIFY_16;
        wv16[13] = 3;
        assert_eq!(write_blocks(&wv16), Some(3));
        assert_eq!(write_blocks(&wv16[..10]), None);
        assert_eq!(write_blocks(&[op::INQUIRY, 0, 0, 0, 36, 0]), None);
    }

    #[test]
    fn a_device_with_protection_information_offers_every_command_but_extended_copy() {
        let pi = Limits {
            pi_store: true,
            ..DEV
        };
        let mut buf = [0u8; 2048];
        let all = |dev: &Limits, buf: &mut [u8]| {
            let q = OpcodeQuery {
                options: 0,
                rctd: false,
                opcode: 0,
                sa: 0,
            };
            let n = report_opcodes_data(&q, dev, buf).unwrap();
            buf[4..n].chunks(8).map(|d| d[0]).collect::<Vec<u8>>()
        };
        let plain = all(&DEV, &mut buf);
        let listed = all(&pi, &mut buf);
        for opcode in [0x83, 0x84] {
            assert!(plain.contains(&opcode), "{opcode:#x} offered without PI");
            assert!(!listed.contains(&opcode), "{opcode:#x} offered with PI");
            let mut cdb = [0u8; 16];
            cdb[0] = opcode;
            assert_eq!(parse(&cdb, &pi, 0), Err(Sense::invalid_opcode()));
        }
        for opcode in [
            0x28, 0x2a, 0x88, 0x8a, 0x2f, 0x35, 0x2e, 0x41, 0x42, 0x89, 0x8b, 0x8e, 0x93, 0xae,
        ] {
            assert!(
                listed.contains(&opcode),
                "{opcode:#x} still offered with PI"
            );
        }
    }

    #[test]
    fn extended_copy_and_receive_copy_results() {
        let xcopy = |len: u32| {
            let mut c = [0u8; 16];
            c[0] = op::EXTENDED_COPY;
            c[10..14].copy_from_slice(&len.to_be_bytes());
            c
        };
        assert_eq!(
            parse(&xcopy(92), &DEV, 92),
            Ok(Action::ExtendedCopy { len: 92 })
        );
        assert_eq!(
            parse(&xcopy(92), &DEV, 16),
            Err(Sense::invalid_cdb_field(10, None))
        );
        let mut lid4 = xcopy(0);
        lid4[1] = 0x01;
        assert_eq!(
            parse(&lid4, &DEV, 0),
            Err(Sense::invalid_cdb_field(1, Some(4)))
        );
        let off = Limits {
            three_pc: false,
            ..DEV
        };
        assert_eq!(parse(&xcopy(0), &off, 0), Err(Sense::invalid_opcode()));
        let mut rcr = [0u8; 16];
        rcr[0] = op::RECEIVE_COPY_RESULTS;
        rcr[1] = RCR_OPERATING_PARAMETERS;
        rcr[13] = 64;
        assert_eq!(
            parse(&rcr, &DEV, 64),
            Ok(Action::CopyOperatingParameters { alloc: 64 })
        );
        rcr[2] = 1;
        assert_eq!(
            parse(&rcr, &DEV, 64),
            Err(Sense::invalid_cdb_field(2, None))
        );
        rcr[1] = RCR_COPY_STATUS;
        assert_eq!(
            parse(&rcr, &DEV, 64),
            Ok(Action::CopyStatus {
                list_id: 1,
                alloc: 64
            })
        );
        rcr[1] = 0x04; // FAILED SEGMENT DETAILS
        assert_eq!(
            parse(&rcr, &DEV, 64),
            Err(Sense::invalid_cdb_field(1, Some(4)))
        );
        assert_eq!(parse(&rcr, &off, 64), Err(Sense::invalid_opcode()));
    }

    #[test]
    fn reads_and_writes() {
        assert_eq!(
            parse(&[READ_10, 0, 0, 0, 0, 8, 0, 0, 2, 0], &DEV, 1024),
            Ok(Action::Read {
                lba: 8,
                blocks: 2,
                fua: false
            })
        );
        assert_eq!(
            parse(&[WRITE_10, 0, 0, 0, 3, 0xff, 0, 0, 1, 0], &DEV, 512),
            Ok(Action::Write {
                lba: 1023,
                blocks: 1,
                fua: false
            })
        );
        // A shorter read than the buffer is fine (the rest is residual).
        assert!(parse(&[READ_10, 0, 0, 0, 0, 0, 0, 0, 1, 0], &DEV, 4096).is_ok());
    }

    #[test]
    fn out_of_range_and_oversized() {
        assert_eq!(
            parse(&[READ_10, 0, 0, 0, 4, 0, 0, 0, 1, 0], &DEV, 512).unwrap_err(),
            Sense::lba_out_of_range()
        );
        let s = parse(&[READ_10, 0, 0, 0, 0, 0, 0, 0, 8, 0], &DEV, 512).unwrap_err();
        assert_eq!((s.asc, s.field.unwrap().byte), (0x24, 7));
        let mut c16 = [0u8; 16];
        c16[0] = READ_16;
        c16[10..14].copy_from_slice(&0x1000u32.to_be_bytes());
        let s = parse(
            &c16,
            &Limits {
                max_transfer: 0x800,
                blocks: 1 << 20,
                ..DEV
            },
            u32::MAX,
        )
        .unwrap_err();
        assert_eq!(s.field.unwrap().byte, 10);
        assert_eq!(
            parse(&[WRITE_10, 0, 0, 0, 0, 0, 0, 0, 2, 0], &DEV, 512).unwrap_err(),
            invalid_field_in_iu()
        );
    }

    #[test]
    fn dpo_and_fua_follow_dpofua() {
        assert_eq!(
            parse(&[WRITE_10, 0x08, 0, 0, 0, 0, 0, 0, 1, 0], &DEV, 512),
            Ok(Action::Write {
                lba: 0,
                blocks: 1,
                fua: true
            })
        );
        assert!(parse(&[READ_10, 0x1a, 0, 0, 0, 0, 0, 0, 1, 0], &DEV, 512).is_ok());
        let no = Limits {
            dpofua: false,
            ..DEV
        };
        let s = parse(&[WRITE_10, 0x08, 0, 0, 0, 0, 0, 0, 1, 0], &no, 512).unwrap_err();
        assert_eq!(s.field.unwrap().bit, Some(3));
        let s = parse(&[READ_10, 0x10, 0, 0, 0, 0, 0, 0, 1, 0], &no, 512).unwrap_err();
        assert_eq!(s.field.unwrap().bit, Some(4));
    }

    #[test]
    fn inquiry_and_vpd() {
        assert_eq!(
            parse(&[0x12, 0, 0, 0, 96, 0], &DEV, 96),
            Ok(Action::Inquiry { alloc: 96 })
        );
        assert_eq!(
            parse(&[0x12, 1, 0x83, 1, 0, 0], &DEV, 256),
            Ok(Action::Vpd {
                page: 0x83,
                alloc: 256
            })
        );
        assert_eq!(
            parse(&[0x12, 0, 0x83, 0, 96, 0], &DEV, 96)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            2
        );
    }

    #[test]
    fn capacity_and_service_actions() {
        assert_eq!(
            parse(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &DEV, 8),
            Ok(Action::ReadCapacity10)
        );
        assert_eq!(
            parse(&[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], &DEV, 8)
                .unwrap_err()
                .asc,
            0x24
        );
        let mut c = [0u8; 16];
        c[0] = 0x9e;
        c[1] = 0x10;
        c[13] = 32;
        assert_eq!(
            parse(&c, &DEV, 32),
            Ok(Action::ReadCapacity16 { alloc: 32 })
        );
        c[1] = 0x13;
        assert_eq!(
            parse(&c, &DEV, 32).unwrap_err().field.unwrap(),
            FieldPointer {
                in_cdb: true,
                byte: 1,
                bit: Some(4)
            }
        );
    }

    #[test]
    fn unit_attention_pass_through() {
        assert!(passes_unit_attention(op::INQUIRY));
        assert!(passes_unit_attention(op::REPORT_LUNS));
        assert!(passes_unit_attention(op::REQUEST_SENSE));
        assert!(!passes_unit_attention(op::TEST_UNIT_READY));
        assert!(!passes_unit_attention(READ_10));
    }

    #[test]
    fn misc_commands() {
        assert_eq!(parse(&[0; 6], &DEV, 0), Ok(Action::Good));
        assert_eq!(
            parse(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &DEV, 0),
            Ok(Action::SyncCache { lba: 0, blocks: 0 })
        );
        let mut c = [0u8; 16];
        c[0] = 0x91;
        c[9] = 7;
        c[13] = 3;
        assert_eq!(
            parse(&c, &DEV, 0),
            Ok(Action::SyncCache { lba: 7, blocks: 3 })
        );
        assert_eq!(
            parse(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], &DEV, 256),
            Ok(Action::ReportLuns { alloc: 256 })
        );
        assert_eq!(
            parse(&[0x03, 0, 0, 0, 18, 0], &DEV, 18),
            Ok(Action::RequestSense { alloc: 18 })
        );
        assert_eq!(
            parse(&[0x03, 1, 0, 0, 18, 0], &DEV, 18).unwrap_err().asc,
            0x24
        );
    }

    #[test]
    fn type2_takes_protection_in_the_32_byte_cdbs_only() {
        let t2 = Limits {
            type2: true,
            pi: true,
            ..DEV
        };
        let mut r32 = [0u8; 32];
        r32[0] = 0x7f;
        r32[7] = 0x18;
        r32[9] = 0x09;
        r32[10] = 0x20;
        r32[31] = 1;
        assert_eq!(
            parse(&r32, &t2, 512),
            Ok(Action::Read {
                lba: 0,
                blocks: 1,
                fua: false
            })
        );
        // Without type 2, READ(32) is not a command; with it, READ(10) takes no RDPROTECT.
        let t1 = Limits { pi: true, ..DEV };
        assert_eq!(parse(&r32, &t1, 512), Err(Sense::invalid_opcode()));
        let r10 = [READ_10, 0x20, 0, 0, 0, 0, 0, 0, 1, 0];
        assert!(parse(&r10, &t1, 512).is_ok());
        assert_eq!(parse(&r10, &t2, 512), Err(Sense::invalid_opcode()));
        let plain = [READ_10, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert!(parse(&plain, &t2, 512).is_ok());
        // RDPROTECT without protection carried points at byte 10.
        let no_pi = Limits { pi: false, ..t2 };
        assert_eq!(
            parse(&r32, &no_pi, 512).unwrap_err().field.unwrap().byte,
            10
        );
    }

    #[test]
    fn read_defect_data_reports_empty_lists() {
        let ten = [0x37, 0, 0x18, 0, 0, 0, 0, 0, 32, 0];
        assert_eq!(
            parse(&ten, &DEV, 32),
            Ok(Action::ReadDefectData {
                twelve: false,
                lists: 0x18,
                alloc: 32
            })
        );
        assert_eq!(defect_data(false, 0x18), ([0, 0x18, 0, 0, 0, 0, 0, 0], 4));
        let twelve = [0xb7, 0x05, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(
            parse(&twelve, &DEV, 256),
            Ok(Action::ReadDefectData {
                twelve: true,
                lists: 0x05,
                alloc: 256
            })
        );
        assert_eq!(defect_data(true, 0x05).1, 8);
        // Reserved formats: the pointer names the field.
        for f in [1, 2, 6, 7] {
            let e = parse(&[0x37, 0, f, 0, 0, 0, 0, 0, 32, 0], &DEV, 32).unwrap_err();
            assert_eq!(e.field.unwrap().byte, 2);
        }
    }

    #[test]
    fn unknown_and_truncated() {
        assert_eq!(
            parse(&[0xff, 0, 0, 0, 0, 0], &DEV, 0),
            Err(Sense::invalid_opcode())
        );
        assert_eq!(parse(&[0x5a, 0, 0x3f], &DEV, 0).unwrap_err().asc, 0x24);
        assert_eq!(parse(&[], &DEV, 0), Err(Sense::invalid_opcode()));
    }

    #[test]
    fn table_is_consistent() {
        let type2 = Limits { type2: true, ..DEV };
        for d in COMMANDS {
            assert_eq!(d.usage[0], d.opcode);
            let mut cdb = [0u8; 32];
            cdb[0] = d.opcode;
            if d.opcode == VARIABLE_LENGTH {
                assert_eq!(d.usage.len(), 32);
                let sa = d.sa.unwrap();
                assert_eq!(be16(&d.usage[8..10]) as u16, sa);
                cdb[8..10].copy_from_slice(&sa.to_be_bytes());
                assert!(lookup(&cdb, &DEV).is_err());
            } else {
                assert_eq!(Some(d.usage.len()), cdb_len(d.opcode), "{:#x}", d.opcode);
                if let Some(sa) = d.sa {
                    assert_eq!(u16::from(d.usage[1] & 0x1f), sa);
                }
                cdb[1] = d.sa.unwrap_or(0) as u8;
            }
            assert!(core::ptr::eq(lookup(&cdb, &type2).unwrap(), d));
        }
        // VARIABLE LENGTH CDBs: another service action on a type 2 device points at bytes 8-9.
        let mut other = [0u8; 32];
        other[0] = VARIABLE_LENGTH;
        other[9] = 0x0d;
        assert_eq!(
            lookup(&other, &type2).unwrap_err(),
            Sense::invalid_cdb_field(8, None)
        );
        // An opcode with service actions, but not this one: the pointer names the SA field.
        assert_eq!(
            lookup(&[0xa3, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &DEV).unwrap_err(),
            Sense::invalid_cdb_field(1, Some(4))
        );
        assert_eq!(lookup(&[0xee], &DEV).unwrap_err(), Sense::invalid_opcode());
    }

    fn rsoc(options: u8, rctd: bool, opcode: u8, sa: u16) -> Result<Vec<u8>, Sense> {
        let q = OpcodeQuery {
            options,
            rctd,
            opcode,
            sa,
        };
        let mut buf = [0u8; 4096];
        // Every command of the table: type 2 adds the 32-byte ones.
        let dev = Limits { type2: true, ..DEV };
        let n = report_opcodes_data(&q, &dev, &mut buf)?;
        Ok(buf[..n].to_vec())
    }

    #[test]
    fn report_supported_opcodes() {
        let all = rsoc(0, false, 0, 0).unwrap();
        assert_eq!(all.len(), 4 + 8 * COMMANDS.len());
        assert_eq!(be32(&all[..4]) as usize, all.len() - 4);
        // READ CAPACITY(16) is listed with its service action.
        assert!(all[4..]
            .chunks(8)
            .any(|c| c[0] == 0x9e && c[3] == 0x10 && c[5] == 0x01 && c[7] == 16));
        // So is READ(32), with its two-byte service action.
        assert!(all[4..]
            .chunks(8)
            .any(|c| c[0] == 0x7f && c[2..4] == [0, 9] && c[5] == 0x01 && c[7] == 32));
        let w32 = rsoc(2, false, 0x7f, 0x0b).unwrap();
        assert_eq!(
            (&w32[..4], w32[4], w32[13]),
            (&[0, 0x03, 0, 32][..], 0x7f, 0x0b)
        );
        let timed = rsoc(0, true, 0, 0).unwrap();
        assert_eq!(timed.len(), 4 + 20 * COMMANDS.len());
        assert_eq!(timed[4 + 5], 0x02);
        // One command: READ(10)'s usage data.
        let one = rsoc(1, false, READ_10, 0).unwrap();
        assert_eq!(&one[..4], &[0, 0x03, 0, 10]);
        assert_eq!(one[4], READ_10);
        assert_eq!(one.len(), 14);
        // Unsupported opcode: SUPPORT 001b.
        assert_eq!(rsoc(1, false, 0xee, 0).unwrap(), vec![0, 0x01, 0, 0]);
        // Option 1 on an opcode with service actions, option 2 on one without: refused.
        assert!(rsoc(1, false, 0x9e, 0x10).is_err());
        assert!(rsoc(2, false, READ_10, 0).is_err());
        let rc16 = rsoc(2, true, 0x9e, 0x10).unwrap();
        assert_eq!(&rc16[..4], &[0, 0x83, 0, 16]);
        assert_eq!(rc16.len(), 4 + 16 + 12);
        assert_eq!(rsoc(2, false, 0x9e, 0x11).unwrap(), vec![0, 0x01, 0, 0]);
        // Through parse: bad REPORTING OPTIONS.
        let cdb = [0xa3, 0x0c, 0x05, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(parse(&cdb, &DEV, 256).unwrap_err().field.unwrap().byte, 2);
    }

    #[test]
    fn report_supported_tmfs() {
        let (b, n) = report_tmfs_data(false);
        assert_eq!((n, b[0], b[1]), (4, 0xd8, 0x01));
        assert_eq!(report_tmfs_data(true).1, 16);
        assert_eq!(
            parse(&[0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 16, 0, 0], &DEV, 16),
            Ok(Action::ReportTmfs {
                repd: true,
                alloc: 16
            })
        );
    }

    #[test]
    fn verify_prefetch_start_stop_prevent() {
        let v10 = |flags: u8, lba: u8, n: u8, data: u32| {
            parse(&[0x2f, flags, 0, 0, 0, lba, 0, 0, n, 0], &DEV, data)
        };
        assert_eq!(
            v10(0, 1, 2, 0),
            Ok(Action::Verify {
                lba: 1,
                blocks: 2,
                bytchk: 0
            })
        );
        assert!(v10(0x02, 0, 2, 1024).is_ok());
        assert_eq!(v10(0x02, 0, 2, 512).unwrap_err(), invalid_field_in_iu());
        assert!(v10(0x06, 0, 2, 512).is_ok());
        assert_eq!(
            v10(0x04, 0, 2, 1024).unwrap_err().field.unwrap().bit,
            Some(2)
        );
        assert_eq!(v10(0x20, 0, 1, 0).unwrap_err().field.unwrap().bit, Some(7));
        let mut v16 = [0u8; 16];
        v16[0] = 0x8f;
        v16[8] = 0x03;
        v16[9] = 0xff;
        v16[13] = 4;
        assert_eq!(parse(&v16, &DEV, 0).unwrap_err(), Sense::lba_out_of_range());
        let mut p16 = [0u8; 16];
        p16[0] = 0x90;
        p16[8] = 0x03;
        p16[9] = 0xfc;
        p16[13] = 4;
        assert_eq!(parse(&p16, &DEV, 0), Ok(Action::Good));
        p16[13] = 5;
        assert_eq!(parse(&p16, &DEV, 0).unwrap_err(), Sense::lba_out_of_range());
        assert_eq!(
            parse(&[0x34, 0, 0, 0, 3, 0xff, 0, 0, 1, 0], &DEV, 0),
            Ok(Action::Good)
        );
        let ssu = |b4: u8| parse(&[0x1b, 0, 0, 0, b4, 0], &DEV, 0);
        assert_eq!(ssu(0x01), Ok(Action::Good));
        assert_eq!(ssu(0x00).unwrap_err().field.unwrap().bit, Some(0));
        assert_eq!(ssu(0x03).unwrap_err().field.unwrap().bit, Some(1));
        assert_eq!(ssu(0x30), Ok(Action::Good));
        assert_eq!(ssu(0x50).unwrap_err().field.unwrap().bit, Some(7));
        assert_eq!(parse(&[0x1e, 0, 0, 0, 1, 0], &DEV, 0), Ok(Action::Good));
        assert!(parse(&[0x1e, 0, 0, 0, 2, 0], &DEV, 0).is_err());
    }

    #[test]
    fn thin_provisioning_commands() {
        let plain = Limits {
            thin: Thin::default(),
            ..DEV
        };
        // UNMAP exists only with emulate_tpu, in dispatch and in the opcode report alike.
        let unmap = [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0];
        assert_eq!(
            parse(&unmap, &plain, 24).unwrap_err(),
            Sense::invalid_opcode()
        );
        assert_eq!(parse(&unmap, &DEV, 24), Ok(Action::Unmap { len: 24 }));
        let q = OpcodeQuery {
            options: 1,
            rctd: false,
            opcode: 0x42,
            sa: 0,
        };
        let mut b = [0u8; 64];
        report_opcodes_data(&q, &plain, &mut b).unwrap();
        assert_eq!(b[1], 0x01);
        report_opcodes_data(&q, &DEV, &mut b).unwrap();
        assert_eq!(b[1], 0x03);
        assert_eq!(
            parse(&[0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0], &DEV, 4).unwrap_err(),
            Sense::param_list_length()
        );
        assert_eq!(
            parse(&[0x42, 1, 0, 0, 0, 0, 0, 0, 0, 0], &DEV, 0)
                .unwrap_err()
                .field
                .unwrap()
                .bit,
            Some(0)
        );
        // Header and descriptors.
        assert_eq!(unmap_header(&[0, 22, 0, 16, 0, 0, 0, 0], 24, &DEV), Ok(1));
        assert_eq!(
            unmap_header(&[0, 38, 0, 32, 0, 0, 0, 0], 24, &DEV),
            Err(Sense::param_list_length())
        );
        assert_eq!(
            unmap_header(&[0, 54, 0, 48, 0, 0, 0, 0], 56, &DEV)
                .unwrap_err()
                .asc,
            0x26
        );
        let d = |lba: u64, n: u32| {
            let mut x = [0u8; 16];
            x[..8].copy_from_slice(&lba.to_be_bytes());
            x[8..12].copy_from_slice(&n.to_be_bytes());
            x
        };
        assert_eq!(unmap_descriptor(&d(1000, 24), 0, &DEV), Ok((1000, 24)));
        assert_eq!(
            unmap_descriptor(&d(1000, 25), 0, &DEV),
            Err(Sense::lba_out_of_range())
        );
        let big = unmap_descriptor(&d(0, 0x2001), 1, &DEV).unwrap_err();
        assert_eq!((big.asc, big.field.unwrap().byte), (0x26, 32));
        // WRITE SAME.
        let ws10 = |flags: u8, n: u8| [0x41, flags, 0, 0, 0, 0, 0, 0, n, 0];
        assert_eq!(
            parse(&ws10(0, 8), &DEV, 512),
            Ok(Action::WriteSame {
                lba: 0,
                blocks: 8,
                unmap: false,
                ndob: false
            })
        );
        // Zero blocks: to the end of the medium, within MAXIMUM WRITE SAME LENGTH.
        let ws10_at = |lba: u32, n: u8| {
            let mut c = ws10(0, n);
            c[2..6].copy_from_slice(&lba.to_be_bytes());
            c
        };
        assert_eq!(
            parse(&ws10_at(1000, 0), &DEV, 512),
            Ok(Action::WriteSame {
                lba: 1000,
                blocks: 24,
                unmap: false,
                ndob: false
            })
        );
        assert_eq!(
            parse(&ws10_at(1023, 0), &DEV, 512)
                .map(|a| matches!(a, Action::WriteSame { blocks: 1, .. })),
            Ok(true)
        );
        for lba in [1024, 1025, u32::MAX] {
            assert_eq!(
                parse(&ws10_at(lba, 0), &DEV, 512),
                Err(Sense::lba_out_of_range())
            );
        }
        let short = Limits {
            thin: Thin {
                max_write_same: 16,
                ..DEV.thin
            },
            ..DEV
        };
        assert_eq!(
            parse(&ws10_at(1000, 0), &short, 512)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            7
        );
        assert!(parse(&ws10_at(1008, 0), &short, 512).is_ok());
        assert_eq!(
            parse(&ws10(0x10, 1), &DEV, 512)
                .unwrap_err()
                .field
                .unwrap()
                .bit,
            Some(4)
        );
        assert_eq!(
            parse(&ws10(0x08, 1), &plain, 512)
                .unwrap_err()
                .field
                .unwrap()
                .bit,
            Some(3)
        );
        assert_eq!(
            parse(&ws10(0, 1), &DEV, 1024).unwrap_err(),
            invalid_field_in_iu()
        );
        assert_eq!(
            parse(&ws10(0, 1), &plain, 512)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            7
        );
        let mut ws16 = [0u8; 16];
        ws16[0] = 0x93;
        ws16[1] = 0x09;
        ws16[13] = 16;
        assert_eq!(
            parse(&ws16, &DEV, 0),
            Ok(Action::WriteSame {
                lba: 0,
                blocks: 16,
                unmap: true,
                ndob: true
            })
        );
        ws16[9] = 0xf8;
        ws16[8] = 0x03;
        assert_eq!(
            parse(&ws16, &DEV, 0).unwrap_err(),
            Sense::lba_out_of_range()
        );
    }

    #[test]
    fn get_lba_status() {
        let mut c = [0u8; 16];
        c[0] = 0x9e;
        c[1] = 0x12;
        c[9] = 10;
        c[13] = 24;
        assert_eq!(
            parse(&c, &DEV, 24),
            Ok(Action::GetLbaStatus { lba: 10, alloc: 24 })
        );
        c[8] = 4;
        assert_eq!(parse(&c, &DEV, 24).unwrap_err(), Sense::lba_out_of_range());
        let d = lba_status_data(10, 7, false);
        assert_eq!(&d[..4], &[0, 0, 0, 20]);
        assert_eq!((d[15], d[19], d[20]), (10, 7, 1));
    }

    #[test]
    fn compare_and_write() {
        let caw = |flags: u8, lba: u8, n: u8, data: u32, dev: &Limits| {
            let mut c = [0u8; 16];
            c[0] = 0x89;
            c[1] = flags;
            c[9] = lba;
            c[13] = n;
            parse(&c, dev, data)
        };
        assert_eq!(
            caw(0, 5, 1, 1024, &DEV),
            Ok(Action::CompareAndWrite {
                lba: 5,
                blocks: 1,
                fua: false
            })
        );
        assert_eq!(
            caw(0, 5, 2, 2048, &DEV).unwrap_err().field.unwrap().byte,
            13
        );
        assert_eq!(
            caw(0, 5, 1, 2048, &DEV).unwrap_err().field.unwrap().byte,
            13
        );
        assert_eq!(
            caw(0x08, 5, 1, 1024, &DEV),
            Ok(Action::CompareAndWrite {
                lba: 5,
                blocks: 1,
                fua: true
            })
        );
        let no = Limits {
            dpofua: false,
            ..DEV
        };
        assert_eq!(
            caw(0x08, 5, 1, 1024, &no).unwrap_err().field.unwrap().bit,
            Some(3)
        );
        assert_eq!(
            caw(0, 5, 0, 0, &DEV),
            Ok(Action::CompareAndWrite {
                lba: 5,
                blocks: 0,
                fua: false
            })
        );
        let off = Limits { caw: false, ..DEV };
        assert_eq!(
            caw(0, 5, 1, 1024, &off).unwrap_err(),
            Sense::invalid_opcode()
        );
    }

    #[test]
    fn write_atomic_checks_the_atomic_limits() {
        let wa = |flags: u8, lba: u8, boundary: u8, n: u8| {
            let mut c = [0u8; 16];
            c[0] = op::WRITE_ATOMIC_16;
            c[1] = flags;
            c[9] = lba;
            c[11] = boundary;
            c[13] = n;
            c
        };
        assert_eq!(
            parse(&wa(0x08, 4, 0, 2), &DEV, 1024),
            Ok(Action::WriteAtomic {
                lba: 4,
                blocks: 2,
                fua: true
            })
        );
        let field = |c: [u8; 16], data: u32| parse(&c, &DEV, data).unwrap_err().field.unwrap().byte;
        // Longer than MAXIMUM ATOMIC TRANSFER LENGTH, or not a multiple of the granularity.
        assert_eq!(field(wa(0, 0, 0, 18), 18 * 512), 12);
        assert_eq!(field(wa(0, 0, 0, 3), 3 * 512), 12);
        // Misaligned LBA; a boundary the device does not support.
        assert_eq!(field(wa(0, 1, 0, 2), 1024), 2);
        assert_eq!(field(wa(0, 0, 2, 2), 1024), 10);
        assert_eq!(
            parse(&wa(0, 0, 0, 2), &DEV, 512).unwrap_err(),
            invalid_field_in_iu()
        );
        assert_eq!(
            parse(&wa(0, 254, 0, 2), &Limits { blocks: 255, ..DEV }, 1024).unwrap_err(),
            Sense::lba_out_of_range()
        );
        // Beyond the end and longer than the atomic limit: the range is checked first.
        assert_eq!(
            parse(&wa(0, 250, 0, 18), &Limits { blocks: 255, ..DEV }, 18 * 512).unwrap_err(),
            Sense::lba_out_of_range()
        );
        // A device without atomic writes has no such command, and does not report one.
        let none = Limits {
            atomic: AtomicLimits::default(),
            ..DEV
        };
        assert_eq!(
            parse(&wa(0, 0, 0, 2), &none, 1024).unwrap_err(),
            Sense::invalid_opcode()
        );
        assert!(lookup(&[op::WRITE_ATOMIC_16], &none).is_err());
    }

    #[test]
    fn orwrite_and_write_verify() {
        let mut c = [0u8; 16];
        c[0] = 0x8b;
        c[9] = 4;
        c[13] = 2;
        assert_eq!(
            parse(&c, &DEV, 1024),
            Ok(Action::OrWrite {
                lba: 4,
                blocks: 2,
                fua: false
            })
        );
        assert_eq!(parse(&c, &DEV, 512).unwrap_err(), invalid_field_in_iu());
        c[1] = 0x20;
        assert_eq!(
            parse(&c, &DEV, 1024).unwrap_err().field.unwrap().bit,
            Some(7)
        );
        let wv =
            |flags: u8, n: u8, data: u32| parse(&[0x2e, flags, 0, 0, 0, 1, 0, 0, n, 0], &DEV, data);
        assert_eq!(
            wv(0x02, 2, 1024),
            Ok(Action::WriteVerify {
                lba: 1,
                blocks: 2,
                bytchk: true
            })
        );
        assert_eq!(
            wv(0, 2, 1024),
            Ok(Action::WriteVerify {
                lba: 1,
                blocks: 2,
                bytchk: false
            })
        );
        assert_eq!(wv(0x04, 2, 1024).unwrap_err().field.unwrap().bit, Some(2));
        assert_eq!(
            wv(0, 0, 0),
            Ok(Action::WriteVerify {
                lba: 1,
                blocks: 0,
                bytchk: false
            })
        );
    }

    #[test]
    fn reserve_and_release() {
        assert_eq!(parse(&[0x16, 0, 0, 0, 0, 0], &DEV, 0), Ok(Action::Reserve));
        assert_eq!(
            parse(&[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0], &DEV, 0),
            Ok(Action::Release)
        );
        assert_eq!(
            parse(&[0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0], &DEV, 0)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            1
        );
        assert!(passes_reservation(0x12) && passes_reservation(0x17) && !passes_reservation(0x00));
    }

    #[test]
    fn sanitize_cdb() {
        let cdb = |b1: u8, len: u16| {
            let l = len.to_be_bytes();
            [0x48, b1, 0, 0, 0, 0, 0, l[0], l[1], 0]
        };
        let ok = |sa, len| {
            Ok(Action::Sanitize {
                sa,
                len,
                immed: false,
            })
        };
        assert_eq!(parse(&cdb(0x01, 516), &DEV, 516), ok(1, 516));
        assert_eq!(
            parse(&cdb(0x82, 0), &DEV, 0),
            Ok(Action::Sanitize {
                sa: 2,
                len: 0,
                immed: true
            })
        );
        assert_eq!(parse(&cdb(0x21, 5), &DEV, 5), ok(1, 5));
        assert_eq!(parse(&cdb(0x02, 0), &DEV, 0), ok(2, 0));
        assert_eq!(parse(&cdb(0x1f, 0), &DEV, 0), ok(0x1f, 0));
        // Overwrite needs a header and 1 to 512 bytes of pattern; the others no list.
        for len in [0, 4, 517] {
            assert_eq!(
                parse(&cdb(0x01, len), &DEV, u32::from(len)),
                Err(Sense::invalid_cdb_field(7, None))
            );
        }
        assert_eq!(
            parse(&cdb(0x02, 8), &DEV, 8),
            Err(Sense::invalid_cdb_field(7, None))
        );
        assert_eq!(
            parse(&cdb(0x01, 516), &DEV, 100),
            Err(Sense::invalid_cdb_field(7, None))
        );
        // No crypto erase, no other service action; reserved bits refused.
        for sa in [0x00, 0x03, 0x04, 0x1e] {
            assert_eq!(
                parse(&cdb(sa, 0), &DEV, 0),
                Err(Sense::invalid_cdb_field(1, Some(4)))
            );
        }
        assert_eq!(
            parse(&cdb(0x42, 0), &DEV, 0),
            Err(Sense::invalid_cdb_field(1, Some(6)))
        );
        let mut reserved = cdb(0x02, 0);
        reserved[4] = 4;
        assert_eq!(
            parse(&reserved, &DEV, 0),
            Err(Sense::invalid_cdb_field(4, None))
        );
        // BLOCK ERASE only on a thin device.
        let thick = Limits {
            thin: Thin::default(),
            ..DEV
        };
        assert_eq!(
            parse(&cdb(0x02, 0), &thick, 0),
            Err(Sense::invalid_cdb_field(1, Some(4)))
        );
    }

    #[test]
    fn sanitize_progress_counts_passes() {
        let end = 64 << 20;
        assert_eq!(sanitize_progress(1, 1, 0, end), 0);
        assert_eq!(sanitize_progress(1, 1, end / 2, end), 32768);
        assert_eq!(sanitize_progress(2, 1, 0, end), 32768);
        assert_eq!(sanitize_progress(2, 1, end, end), 65535);
        assert_eq!(sanitize_progress(3, 3, end / 3, end) / 1000, 7);
        // Tiny and huge media, and nonsense, stay in range.
        assert_eq!(sanitize_progress(1, 1, 1, 1), 65535);
        assert_eq!(sanitize_progress(1, 1, 0, 0), 0);
        assert_eq!(sanitize_progress(1, 1, 1 << 62, u64::MAX), 16384);
        assert_eq!(sanitize_progress(31, 1, u64::MAX, u64::MAX), 65535);
        assert_eq!(sanitize_progress(0, 0, 5, 10), 0);
        assert_eq!(sanitize_progress(2, 5, 5, 10), 16384);
    }

    #[test]
    fn sanitize_overwrite_params() {
        let list = |b0: u8, pattern: &[u8], len: u16| {
            let mut v = vec![b0, 0];
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(pattern);
            v
        };
        assert_eq!(
            sanitize_overwrite(&list(0x81, &[0xaa; 512], 512), 512),
            Ok(Overwrite {
                invert: true,
                passes: 1
            })
        );
        assert_eq!(
            sanitize_overwrite(&list(0x03, &[1, 2, 3, 4], 4), 512).map(|o| o.passes),
            Ok(3)
        );
        let bad = |l: &[u8]| sanitize_overwrite(l, 512).unwrap_err().field.unwrap().byte;
        assert_eq!(bad(&list(0x00, &[0xaa; 512], 512)), 0); // no pass
        assert_eq!(bad(&list(0x21, &[0xaa; 4], 4)), 0); // TEST
        assert_eq!(bad(&list(0x01, &[], 0)), 2); // no pattern
        assert_eq!(bad(&list(0x01, &[0; 516], 516)), 2); // more than a block
        assert_eq!(bad(&list(0x01, &[0; 512], 500)), 2); // not what follows
        let mut reserved = list(0x01, &[1], 1);
        reserved[1] = 1;
        assert_eq!(bad(&reserved), 1);
        let mut block = [0u8; 8];
        fill_pattern(&mut block, &[1, 2, 3], false);
        assert_eq!(block, [1, 2, 3, 1, 2, 3, 1, 2]);
        fill_pattern(&mut block, &[0x0f], true);
        assert_eq!(block, [0xf0; 8]);
    }

    #[test]
    fn mode_select_cdb() {
        assert_eq!(
            parse(&[0x15, 0x10, 0, 0, 24, 0], &DEV, 24),
            Ok(Action::ModeSelect {
                ten: false,
                len: 24
            })
        );
        assert_eq!(
            parse(&[0x15, 0x00, 0, 0, 24, 0], &DEV, 24)
                .unwrap_err()
                .field
                .unwrap()
                .bit,
            Some(4)
        );
        assert_eq!(
            parse(&[0x15, 0x00, 0, 0, 0, 0], &DEV, 0),
            Ok(Action::ModeSelect { ten: false, len: 0 })
        );
        assert_eq!(
            parse(&[0x55, 0x11, 0, 0, 0, 0, 0, 0, 28, 0], &DEV, 28),
            Ok(Action::ModeSelect { ten: true, len: 28 })
        );
        assert!(parse(&[0x55, 0x10, 0, 0, 0, 0, 0, 4, 0, 0], &DEV, 1024).is_err());
    }

    /// Every CDB of every length made of one repeated byte classifies without panicking.
    #[test]
    fn never_panics_on_garbage() {
        for op in 0..=255u8 {
            for fill in [0u8, 0x5a, 0xff] {
                for len in 0..=16 {
                    let mut c = [fill; 16];
                    if len > 0 {
                        c[0] = op;
                    }
                    let _ = parse(&c[..len], &DEV, 4096);
                }
            }
        }
    }
}
