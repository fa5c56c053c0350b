//! The NVMe status of a command the core ended with SCSI sense data or status: the core's
//! backends and checks speak SCSI (sense key, additional sense code and qualifier), and the
//! NVMe fabric answers with the status an NVMe controller gives for the same condition.

use crate::capsule::Status;

/// "Sanitize In Progress".
pub const SANITIZE_IN_PROGRESS: Status = Status::generic(0x1d);
/// End-to-end guard, application tag and reference tag check errors.
pub const GUARD_CHECK: Status = Status::media(0x82);
/// End-to-end application tag check error.
pub const APP_TAG_CHECK: Status = Status::media(0x83);
/// End-to-end reference tag check error.
pub const REF_TAG_CHECK: Status = Status::media(0x84);

/// Do Not Retry.
const DNR: u16 = 1 << 14;
/// SAM status RESERVATION CONFLICT.
const RESERVATION_CONFLICT: u8 = 0x18;
/// SAM status CHECK CONDITION.
const CHECK_CONDITION: u8 = 0x02;
/// SAM status BUSY.
const BUSY: u8 = 0x08;
/// SAM status TASK SET FULL.
const TASK_SET_FULL: u8 = 0x28;

/// The NVMe status for SAM `status` with sense key `key`, `asc` and `ascq` (the sense only
/// counts with CHECK CONDITION).
pub fn from_scsi(status: u8, key: u8, asc: u8, ascq: u8) -> Status {
    // Worth a retry: the host retries a status without Do Not Retry.
    let retry = Status(Status::INTERNAL.0 & !DNR);
    match status {
        0 => return Status::SUCCESS,
        RESERVATION_CONFLICT => return Status::RESERVATION_CONFLICT,
        CHECK_CONDITION => (),
        // BUSY, TASK SET FULL: only for now.
        BUSY | TASK_SET_FULL => return retry,
        _ => return Status::INTERNAL,
    }
    match (key, asc, ascq) {
        (0x05, 0x21, 0x00) => Status::LBA_RANGE,
        // A Release of another type than the reservation's (INVALID RELEASE OF PERSISTENT
        // RESERVATION): nvmet's Reservation Conflict.
        (0x05, 0x26, 0x04) => Status::RESERVATION_CONFLICT,
        // INSUFFICIENT REGISTRATION RESOURCES: no memory.
        (0x05, 0x55, 0x04) => Status::INTERNAL,
        (0x05, 0x20, _) => Status::INVALID_OPCODE,
        (0x05, 0x25, _) => Status::INVALID_NS,
        (0x05, _, _) => Status::INVALID_FIELD,
        (0x07, 0x27, _) => crate::nvm::WRITE_PROTECTED,
        (0x02, 0x04, 0x1b) => SANITIZE_IN_PROGRESS,
        // A backend's I/O error (as LIO reports it): nvmet's status for EIO.
        (0x02, 0x08, 0x00) => Status::INTERNAL,
        // Not ready for now: worth a retry (no DNR).
        (0x02, _, _) => Status(Status::NS_NOT_READY.0 & !DNR),
        (0x03, 0x11, _) => Status::READ_ERROR,
        (0x03, _, _) => Status::WRITE_FAULT,
        (0x0e, 0x1d, _) => Status::COMPARE_FAILED,
        (0x0b, 0x10, 0x01) => GUARD_CHECK,
        (0x0b, 0x10, 0x02) => APP_TAG_CHECK,
        (0x0b, 0x10, 0x03) => REF_TAG_CHECK,
        (0x0b, _, _) => Status::ABORT_REQUESTED,
        // A unit attention: the condition is reported once; the command may go again.
        (0x06, _, _) => retry,
        _ => Status::INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert_eq!(from_scsi(0, 0x05, 0x21, 0), Status::SUCCESS);
        assert_eq!(from_scsi(0x18, 0, 0, 0), Status::RESERVATION_CONFLICT);
        assert_eq!(from_scsi(0x02, 0x05, 0x21, 0), Status::LBA_RANGE);
        assert_eq!(from_scsi(0x02, 0x05, 0x24, 0), Status::INVALID_FIELD);
        assert_eq!(
            from_scsi(0x02, 0x05, 0x26, 0x04),
            Status::RESERVATION_CONFLICT
        );
        assert_eq!(from_scsi(0x02, 0x05, 0x55, 0x04), Status::INTERNAL);
        assert_eq!(from_scsi(0x02, 0x07, 0x27, 0), crate::nvm::WRITE_PROTECTED);
        assert_eq!(from_scsi(0x02, 0x02, 0x04, 0x1b), SANITIZE_IN_PROGRESS);
        // The core's backend I/O failure (NOT READY, 08h/00h, as LIO); other NOT READY.
        assert_eq!(from_scsi(0x02, 0x02, 0x08, 0x00), Status::INTERNAL);
        assert_eq!(from_scsi(0x02, 0x02, 0x04, 0x01), Status(0x82));
        assert_eq!(from_scsi(0x02, 0x0e, 0x1d, 0), Status::COMPARE_FAILED);
        assert_eq!(from_scsi(0x02, 0x0b, 0x10, 0x03), REF_TAG_CHECK);
        assert_eq!(from_scsi(0x02, 0x04, 0x44, 0), Status::INTERNAL);
        assert_eq!(from_scsi(0x08, 0, 0, 0), Status(0x06));
        assert_eq!(from_scsi(0x28, 0, 0, 0), Status(0x06));
        assert_eq!(from_scsi(0x02, 0x06, 0x29, 0), Status(0x06));
        assert_eq!(from_scsi(0x40, 0, 0, 0), Status::INTERNAL);
        assert_eq!((GUARD_CHECK.sct(), GUARD_CHECK.sc()), (2, 0x82));
    }
}
