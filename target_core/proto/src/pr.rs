//! Persistent reservations (SPC-4 5.13, PERSISTENT RESERVE IN / OUT): one logical unit's
//! registrations and reservation as a pure state machine, the conflict rules for other
//! commands, and the PRIN responses.
//!
//! The state is generic over the nexus identity ([`Nexus`]) and the registration list
//! ([`Regs`]), so the kernel keeps it in a `KVec` under the device's lock and the host tests
//! in a `Vec`; an NVMe host (host identifier) can be a nexus as a SCSI I_T nexus is, which is
//! how one device keeps one reservation state for both protocols. Effects on other nexuses
//! (unit attentions, aborted tasks) are reported to a callback and applied by the caller.

use super::sense::Sense;
use super::spc::Proto;
use core::marker::PhantomData;

/// PERSISTENT RESERVE IN.
pub const PERSISTENT_RESERVE_IN: u8 = 0x5e;
/// PERSISTENT RESERVE OUT.
pub const PERSISTENT_RESERVE_OUT: u8 = 0x5f;

/// PRIN service actions.
pub mod prin {
    /// READ KEYS.
    pub const READ_KEYS: u8 = 0;
    /// READ RESERVATION.
    pub const READ_RESERVATION: u8 = 1;
    /// REPORT CAPABILITIES.
    pub const REPORT_CAPABILITIES: u8 = 2;
    /// READ FULL STATUS.
    pub const READ_FULL_STATUS: u8 = 3;
}

/// PROUT service actions.
pub mod prout {
    /// REGISTER.
    pub const REGISTER: u8 = 0;
    /// RESERVE.
    pub const RESERVE: u8 = 1;
    /// RELEASE.
    pub const RELEASE: u8 = 2;
    /// CLEAR.
    pub const CLEAR: u8 = 3;
    /// PREEMPT.
    pub const PREEMPT: u8 = 4;
    /// PREEMPT AND ABORT.
    pub const PREEMPT_AND_ABORT: u8 = 5;
    /// REGISTER AND IGNORE EXISTING KEY.
    pub const REGISTER_AND_IGNORE: u8 = 6;
}

/// Length of the PROUT parameter list of every service action rtarget takes (SPC-4 6.16.3).
pub const PROUT_PARAM_LEN: usize = 24;

/// Persistent reservation types (SPC-4 table 170).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ResType {
    /// Write Exclusive.
    WriteExclusive = 1,
    /// Exclusive Access.
    ExclusiveAccess = 3,
    /// Write Exclusive – Registrants Only.
    WriteExclusiveRegistrants = 5,
    /// Exclusive Access – Registrants Only.
    ExclusiveAccessRegistrants = 6,
    /// Write Exclusive – All Registrants.
    WriteExclusiveAll = 7,
    /// Exclusive Access – All Registrants.
    ExclusiveAccessAll = 8,
}

impl ResType {
    /// The type in a TYPE field, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::WriteExclusive,
            3 => Self::ExclusiveAccess,
            5 => Self::WriteExclusiveRegistrants,
            6 => Self::ExclusiveAccessRegistrants,
            7 => Self::WriteExclusiveAll,
            8 => Self::ExclusiveAccessAll,
            _ => return None,
        })
    }

    /// Every registrant holds the reservation.
    pub const fn all_registrants(self) -> bool {
        matches!(self, Self::WriteExclusiveAll | Self::ExclusiveAccessAll)
    }

    /// Registrants that do not hold it may still write (registrants-only and all-registrants).
    pub const fn registrants_write(self) -> bool {
        !matches!(self, Self::WriteExclusive | Self::ExclusiveAccess)
    }

    /// Reads by nexuses outside the reservation conflict.
    pub const fn exclusive_access(self) -> bool {
        matches!(
            self,
            Self::ExclusiveAccess | Self::ExclusiveAccessRegistrants | Self::ExclusiveAccessAll
        )
    }
}

/// LU_SCOPE, the only scope (SPC-4 6.15.4.3).
const LU_SCOPE: u8 = 0;

/// What the state machine needs of a nexus (a SCSI I_T nexus; an NVMe host).
pub trait Nexus: Clone {
    /// The initiator port's name (its TransportID name).
    fn initiator(&self) -> &[u8];
    /// Whether `other` is reached through the same target port.
    fn same_port(&self, other: &Self) -> bool;
    /// The initiator's transport protocol (its TransportID's format).
    fn proto(&self) -> Proto;
    /// RELATIVE TARGET PORT IDENTIFIER of the target port.
    fn rtpi(&self) -> u16;
}

/// One registration (SPC-4 5.13.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration<N> {
    /// The nexus it was made through.
    pub nexus: N,
    /// Its reservation key (never 0).
    pub key: u64,
    /// ALL_TG_PT: it covers the initiator port through every target port.
    pub all_tg_pt: bool,
    /// It holds the reservation (types other than all-registrants).
    pub holder: bool,
    /// PRGENERATION when it was made (LIO's configfs shows it).
    pub generation: u32,
}

impl<N: Nexus> Registration<N> {
    /// Whether `nexus` is the nexus, or one of the nexuses, this registration covers.
    pub fn covers(&self, nexus: &N) -> bool {
        self.nexus.initiator() == nexus.initiator()
            && (self.all_tg_pt || self.nexus.same_port(nexus))
    }
}

/// The registration list's storage. `add` may fail (no memory); the caller answers then.
pub trait Regs<N>: core::ops::DerefMut<Target = [Registration<N>]> {
    /// Appends a registration; gives it back when there is no room.
    fn add(&mut self, r: Registration<N>) -> Result<(), Registration<N>>;
    /// Removes and returns registration `i` (`None` only if there is no such index).
    fn take(&mut self, i: usize) -> Option<Registration<N>>;
}

/// Unit attentions a PROUT raises on other nexuses (SPC-4 5.13.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ua {
    /// RESERVATIONS PREEMPTED (2Ah/03h): CLEAR removed the nexus's registration.
    ReservationsPreempted,
    /// RESERVATIONS RELEASED (2Ah/04h): the reservation it shared went away.
    ReservationsReleased,
    /// REGISTRATIONS PREEMPTED (2Ah/05h): PREEMPT removed its registration (and with
    /// PREEMPT AND ABORT, its tasks are to be aborted).
    RegistrationsPreempted,
}

impl Ua {
    /// ASC and ASCQ.
    pub const fn code(self) -> (u8, u8) {
        match self {
            Ua::ReservationsPreempted => (0x2a, 0x03),
            Ua::ReservationsReleased => (0x2a, 0x04),
            Ua::RegistrationsPreempted => (0x2a, 0x05),
        }
    }
}

/// Why a PROUT failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// RESERVATION CONFLICT status.
    Conflict,
    /// CHECK CONDITION with this sense.
    Check(Sense),
    /// No memory for a registration (the caller answers INSUFFICIENT REGISTRATION
    /// RESOURCES).
    NoRoom,
}

impl From<Sense> for Refusal {
    fn from(s: Sense) -> Self {
        Refusal::Check(s)
    }
}

/// INVALID RELEASE OF PERSISTENT RESERVATION (26h/04h).
pub const fn invalid_release() -> Sense {
    let mut s = Sense::invalid_param_field(0, None);
    s.ascq = 0x04;
    s.field = None;
    s
}

/// INSUFFICIENT REGISTRATION RESOURCES (55h/04h).
pub const fn insufficient_registration_resources() -> Sense {
    let mut s = Sense::invalid_param_field(0, None);
    s.asc = 0x55;
    s.ascq = 0x04;
    s.field = None;
    s
}

/// A logical unit's persistent reservation state.
#[derive(Debug)]
pub struct PrState<N, L> {
    /// PRGENERATION.
    pub generation: u32,
    /// The reservation's type, if one is held.
    pub reservation: Option<ResType>,
    /// The registrations, in the order they were made.
    pub regs: L,
    nexus: PhantomData<N>,
}

/// The parameter list of a PROUT (every service action but REGISTER AND MOVE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProutParams {
    /// RESERVATION KEY.
    pub key: u64,
    /// SERVICE ACTION RESERVATION KEY.
    pub sa_key: u64,
    /// SPEC_I_PT.
    pub spec_i_pt: bool,
    /// ALL_TG_PT.
    pub all_tg_pt: bool,
    /// APTPL.
    pub aptpl: bool,
}

fn be64(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |v, &x| (v << 8) | u64::from(x))
}

impl ProutParams {
    /// Decodes the 24-byte parameter list of service action `sa`. SPEC_I_PT (TransportIDs
    /// after the list) and APTPL are not supported (REPORT CAPABILITIES says so): INVALID
    /// FIELD IN PARAMETER LIST; APTPL counts only for the two REGISTER actions (SPC-4 6.16.3).
    pub fn decode(sa: u8, p: &[u8]) -> Result<Self, Sense> {
        if p.len() != PROUT_PARAM_LEN {
            return Err(Sense::param_list_length());
        }
        let flags = p[20];
        let params = ProutParams {
            key: be64(&p[0..8]),
            sa_key: be64(&p[8..16]),
            spec_i_pt: flags & 0x08 != 0,
            all_tg_pt: flags & 0x04 != 0,
            aptpl: flags & 0x01 != 0,
        };
        // SPEC_I_PT (REGISTER only) names other initiators by TransportID after the list.
        if params.spec_i_pt {
            return Err(Sense::invalid_param_field(20, Some(3)));
        }
        let register = matches!(sa, prout::REGISTER | prout::REGISTER_AND_IGNORE);
        if params.aptpl && register {
            return Err(Sense::invalid_param_field(20, Some(0)));
        }
        Ok(params)
    }
}

/// What an SPC-2 RESERVE or RELEASE does in the presence of registrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spc2 {
    /// No registration: processed as SPC-2 says.
    Proceed,
    /// GOOD without effect: the nexus holds the persistent reservation, or is a registrant of a
    /// registrants-only or all-registrants one.
    Good,
    /// RESERVATION CONFLICT.
    Conflict,
}

/// Which commands a reservation can lock out (SPC-4 table 60, SBC-4 table 13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Allowed whatever the reservation (INQUIRY, REPORT LUNS, PRIN, PROUT, ...).
    Always,
    /// Describes the logical unit (MODE SENSE, REPORT SUPPORTED OPERATION CODES, ...):
    /// conflicts only for unregistered nexuses under the exclusive-access types (LIO's reading
    /// of SPC-4's table).
    Describe,
    /// Reads the medium: conflicts under the exclusive-access types only.
    Read,
    /// Writes the medium or changes the logical unit: conflicts under every type.
    Write,
}

/// The class of a command for the conflict rules of SPC-4 table 63 and SBC-4 table 14.
/// RESERVE and RELEASE are checked by their own rules, PRIN and PROUT by the state machine.
pub fn access(cdb: &[u8]) -> Access {
    use super::cdb::{READ_10, READ_12, READ_16, READ_32, READ_6, VARIABLE_LENGTH};
    use super::command::op;
    let Some(&opcode) = cdb.first() else {
        return Access::Write;
    };
    let sa = cdb.get(1).map_or(0, |b| b & 0x1f);
    match opcode {
        op::TEST_UNIT_READY
        | op::INQUIRY
        | op::REQUEST_SENSE
        | op::REPORT_LUNS
        | op::READ_CAPACITY_10
        | op::RESERVE_6
        | op::RESERVE_10
        | op::RELEASE_6
        | op::RELEASE_10
        | PERSISTENT_RESERVE_IN
        | PERSISTENT_RESERVE_OUT => Access::Always,
        op::SERVICE_ACTION_IN_16 if sa == op::SAI_READ_CAPACITY_16 => Access::Always,
        op::MODE_SENSE_6 | op::MODE_SENSE_10 => Access::Describe,
        op::MAINTENANCE_IN if matches!(sa, op::MI_REPORT_OPCODES | op::MI_REPORT_TMFS) => {
            Access::Describe
        }
        // REPORT TARGET PORT GROUPS.
        op::MAINTENANCE_IN if sa == 0x0a => Access::Always,
        READ_6
        | READ_10
        | READ_12
        | READ_16
        | op::VERIFY_10
        | op::VERIFY_12
        | op::VERIFY_16
        | op::PRE_FETCH_10
        | op::PRE_FETCH_16
        | op::READ_DEFECT_DATA_10
        | op::READ_DEFECT_DATA_12 => Access::Read,
        op::SERVICE_ACTION_IN_16 if sa == op::SAI_GET_LBA_STATUS => Access::Read,
        VARIABLE_LENGTH if cdb.get(8..10) == Some(&READ_32.to_be_bytes()[..]) => Access::Read,
        _ => Access::Write,
    }
}

impl<N: Nexus, L: Regs<N>> PrState<N, L> {
    /// No registration, no reservation.
    pub const fn new(regs: L) -> Self {
        PrState {
            generation: 0,
            reservation: None,
            regs,
            nexus: PhantomData,
        }
    }

    /// The registration covering `nexus`.
    pub fn registration(&self, nexus: &N) -> Option<usize> {
        self.regs.iter().position(|r| r.covers(nexus))
    }

    /// Whether `nexus` holds the reservation.
    fn holds(&self, reg: Option<usize>) -> bool {
        match (self.reservation, reg) {
            (Some(t), Some(i)) => t.all_registrants() || self.regs[i].holder,
            _ => false,
        }
    }

    /// Whether a command of class `access` from `nexus` meets RESERVATION CONFLICT.
    pub fn conflicts(&self, nexus: &N, access: Access) -> bool {
        let Some(ty) = self.reservation else {
            return false;
        };
        if access == Access::Always {
            return false;
        }
        let reg = self.registration(nexus);
        if self.holds(reg) {
            return false;
        }
        if access == Access::Describe {
            return ty.exclusive_access() && reg.is_none();
        }
        if access == Access::Read && !ty.exclusive_access() {
            return false;
        }
        // Registrants-only and all-registrants types let every registrant in.
        !(ty.registrants_write() && reg.is_some())
    }

    /// What an SPC-2 RESERVE or RELEASE from `nexus` does while registrations may exist
    /// (SPC-4 5.13.3, CRH 1).
    pub fn spc2(&self, nexus: &N) -> Spc2 {
        match self.registration(nexus) {
            Some(i) if self.holds(Some(i)) => Spc2::Good,
            Some(_) if self.reservation.is_some_and(|t| t.registrants_write()) => Spc2::Good,
            Some(_) => Spc2::Conflict,
            None if self.regs.is_empty() => Spc2::Proceed,
            None => Spc2::Conflict,
        }
    }

    /// Drops the reservation and every registration flag of holding.
    fn release(&mut self) {
        self.reservation = None;
        for r in self.regs.iter_mut() {
            r.holder = false;
        }
    }

    /// Removes registration `i`; releases the reservation if it went with it. The registrants
    /// left behind by a released registrants-only reservation get RESERVATIONS RELEASED (an
    /// all-registrants one goes with its last registrant).
    fn unregister(&mut self, i: usize, ua: &mut impl FnMut(&Registration<N>, Ua)) {
        let Some(gone) = self.regs.take(i) else {
            return;
        };
        let Some(ty) = self.reservation else {
            return;
        };
        let released = if ty.all_registrants() {
            self.regs.is_empty()
        } else {
            gone.holder
        };
        if released {
            self.release();
            if ty.registrants_write() && !ty.all_registrants() {
                for r in self.regs.iter() {
                    ua(r, Ua::ReservationsReleased);
                }
            }
        }
    }

    /// Drops the registrations `gone` picks (their nexus cannot reach the logical unit any
    /// more), releasing the reservation if its holder is among them, as an unregistering
    /// would, but without unit attentions or a new generation: no PROUT did it (LIO drops a
    /// node's registrations when its LUN mapping goes).
    pub fn forget(&mut self, gone: impl Fn(&Registration<N>) -> bool) {
        for i in (0..self.regs.len()).rev() {
            if gone(&self.regs[i]) {
                self.unregister(i, &mut |_, _| ());
            }
        }
    }

    /// Runs a PERSISTENT RESERVE OUT of `sa` with TYPE and SCOPE byte `scope_type` from
    /// `nexus`. `ua` is called for each registration that another nexus must hear of (it may
    /// already be gone from the list).
    pub fn prout(
        &mut self,
        nexus: &N,
        sa: u8,
        scope_type: u8,
        p: &ProutParams,
        mut ua: impl FnMut(&Registration<N>, Ua),
    ) -> Result<(), Refusal> {
        let reg = self.registration(nexus);
        match sa {
            prout::REGISTER | prout::REGISTER_AND_IGNORE => {
                let ignore = sa == prout::REGISTER_AND_IGNORE;
                match reg {
                    None if !ignore && p.key != 0 => Err(Refusal::Conflict),
                    None if p.sa_key == 0 => Ok(()),
                    // An ALL_TG_PT registration would cover a nexus of the initiator that is
                    // registered through another port.
                    None if p.all_tg_pt
                        && self
                            .regs
                            .iter()
                            .any(|r| r.nexus.initiator() == nexus.initiator()) =>
                    {
                        Err(Refusal::Conflict)
                    }
                    None => {
                        let r = Registration {
                            nexus: nexus.clone(),
                            key: p.sa_key,
                            all_tg_pt: p.all_tg_pt,
                            holder: false,
                            generation: self.generation,
                        };
                        self.regs.add(r).map_err(|_| Refusal::NoRoom)?;
                        self.generation = self.generation.wrapping_add(1);
                        Ok(())
                    }
                    Some(i) if !ignore && self.regs[i].key != p.key => Err(Refusal::Conflict),
                    Some(i) => {
                        if p.sa_key == 0 {
                            self.unregister(i, &mut ua);
                        } else {
                            self.regs[i].key = p.sa_key;
                            self.regs[i].generation = self.generation;
                        }
                        self.generation = self.generation.wrapping_add(1);
                        Ok(())
                    }
                }
            }
            prout::RESERVE
            | prout::RELEASE
            | prout::CLEAR
            | prout::PREEMPT
            | prout::PREEMPT_AND_ABORT => {
                let Some(i) = reg else {
                    return Err(Refusal::Conflict);
                };
                if self.regs[i].key != p.key {
                    return Err(Refusal::Conflict);
                }
                match sa {
                    prout::RESERVE => self.reserve(i, scope_type),
                    prout::RELEASE => self.release_by(i, scope_type, &mut ua),
                    prout::CLEAR => {
                        self.clear(i, &mut ua);
                        Ok(())
                    }
                    _ => self.preempt(i, scope_type, p.sa_key, &mut ua),
                }
            }
            _ => Err(Sense::invalid_cdb_field(1, Some(4)).into()),
        }
    }

    fn reserve(&mut self, me: usize, scope_type: u8) -> Result<(), Refusal> {
        let ty = scope_and_type(scope_type)?;
        match self.reservation {
            None => {
                self.reservation = Some(ty);
                self.regs[me].holder = true;
                Ok(())
            }
            // Reserving again what it holds is no change; any other type conflicts.
            Some(held) if self.holds(Some(me)) && held == ty => Ok(()),
            Some(_) => Err(Refusal::Conflict),
        }
    }

    fn release_by(
        &mut self,
        me: usize,
        scope_type: u8,
        ua: &mut impl FnMut(&Registration<N>, Ua),
    ) -> Result<(), Refusal> {
        let Some(held) = self.reservation else {
            return Ok(());
        };
        if !self.holds(Some(me)) {
            return Ok(());
        }
        if scope_type >> 4 != LU_SCOPE || ResType::from_code(scope_type & 0x0f) != Some(held) {
            return Err(invalid_release().into());
        }
        self.release();
        if held.registrants_write() {
            for (j, r) in self.regs.iter().enumerate() {
                if j != me {
                    ua(r, Ua::ReservationsReleased);
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self, me: usize, ua: &mut impl FnMut(&Registration<N>, Ua)) {
        for j in (0..self.regs.len()).rev() {
            match self.regs.take(j) {
                Some(r) if j != me => ua(&r, Ua::ReservationsPreempted),
                _ => (),
            }
        }
        self.reservation = None;
        self.generation = self.generation.wrapping_add(1);
    }

    /// PREEMPT (and PREEMPT AND ABORT: the caller aborts the tasks of the nexuses that get
    /// REGISTRATIONS PREEMPTED).
    fn preempt(
        &mut self,
        me: usize,
        scope_type: u8,
        sa_key: u64,
        ua: &mut impl FnMut(&Registration<N>, Ua),
    ) -> Result<(), Refusal> {
        let holder_key = match self.reservation {
            Some(t) if !t.all_registrants() => self.regs.iter().find(|r| r.holder).map(|r| r.key),
            _ => None,
        };
        let all = self.reservation.is_some_and(|t| t.all_registrants());
        // Preempting the reservation: of its holder's key, or of all registrants with key 0.
        let takes_reservation = (all && sa_key == 0) || holder_key == Some(sa_key);
        if !takes_reservation && sa_key == 0 {
            return Err(Sense::invalid_param_field(8, None).into());
        }
        let new_type = if takes_reservation {
            Some(scope_and_type(scope_type)?)
        } else {
            None
        };
        let mut me = me;
        let mut removed = 0;
        for j in (0..self.regs.len()).rev() {
            // Taking the reservation keeps the preemptor's registration; otherwise its own goes
            // too if it has the key (SPC-4 5.13.11.4.3, as LIO), without a unit attention.
            let victim = if takes_reservation {
                j != me && (all || self.regs[j].key == sa_key)
            } else {
                self.regs[j].key == sa_key
            };
            if victim {
                match self.regs.take(j) {
                    Some(r) if j != me => ua(&r, Ua::RegistrationsPreempted),
                    _ => (),
                }
                removed += 1;
                if j < me {
                    me -= 1;
                }
            }
        }
        if !takes_reservation && removed == 0 {
            return Err(Refusal::Conflict);
        }
        // An all-registrants reservation goes with its last registrant.
        if all && self.regs.is_empty() {
            self.release();
        }
        if let Some(ty) = new_type {
            let old = self.reservation;
            self.release();
            self.reservation = Some(ty);
            self.regs[me].holder = true;
            // A changed type is a released reservation for the registrants kept.
            if old != Some(ty) {
                for (k, r) in self.regs.iter().enumerate() {
                    if k != me {
                        ua(r, Ua::ReservationsReleased);
                    }
                }
            }
        }
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    /// PRIN READ KEYS into `out`; returns the full length (the caller truncates).
    pub fn read_keys(&self, out: &mut [u8]) -> usize {
        let mut w = Writer::new(out);
        w.put(&self.generation.to_be_bytes());
        w.put(&((self.regs.len() * 8) as u32).to_be_bytes());
        for r in self.regs.iter() {
            w.put(&r.key.to_be_bytes());
        }
        w.at
    }

    /// PRIN READ RESERVATION.
    pub fn read_reservation(&self, out: &mut [u8]) -> usize {
        let mut w = Writer::new(out);
        w.put(&self.generation.to_be_bytes());
        let Some(ty) = self.reservation else {
            w.put(&0u32.to_be_bytes());
            return w.at;
        };
        w.put(&16u32.to_be_bytes());
        // An all-registrants reservation's key is 0 (SPC-4 6.15.3.3.2).
        let key = match ty.all_registrants() {
            true => 0,
            false => self.regs.iter().find(|r| r.holder).map_or(0, |r| r.key),
        };
        w.put(&key.to_be_bytes());
        w.put(&[0, 0, 0, 0, 0, (LU_SCOPE << 4) | ty as u8, 0, 0]);
        w.at
    }

    /// PRIN READ FULL STATUS: one descriptor per registration, with its TransportID.
    pub fn read_full_status(&self, out: &mut [u8]) -> usize {
        let mut w = Writer::new(out);
        w.put(&self.generation.to_be_bytes());
        w.put(&[0; 4]);
        for (i, r) in self.regs.iter().enumerate() {
            let mut tid = [0u8; TRANSPORT_ID_MAX];
            let tid_len = transport_id(r.nexus.proto(), r.nexus.initiator(), &mut tid);
            w.put(&r.key.to_be_bytes());
            w.put(&[0; 4]);
            let holder = self.holds(Some(i));
            w.put(&[u8::from(r.all_tg_pt) << 1 | u8::from(holder)]);
            let st = match (holder, self.reservation) {
                (true, Some(ty)) => (LU_SCOPE << 4) | ty as u8,
                _ => 0,
            };
            w.put(&[st, 0, 0, 0, 0]);
            let rtpi = if r.all_tg_pt { 0 } else { r.nexus.rtpi() };
            w.put(&rtpi.to_be_bytes());
            w.put(&(tid_len as u32).to_be_bytes());
            w.put(&tid[..tid_len]);
        }
        let len = (w.at - 8) as u32;
        if let Some(b) = w.out.get_mut(4..8) {
            b.copy_from_slice(&len.to_be_bytes());
        }
        w.at
    }
}

/// PRIN REPORT CAPABILITIES (SPC-4 6.15.4): CRH, ATP_C, TMV with ALLOW COMMANDS 001b, and
/// the six types; no SPEC_I_PT and no APTPL.
pub fn report_capabilities() -> [u8; 8] {
    [0, 8, 0x14, 0x90, 0xea, 0x01, 0, 0]
}

/// The largest TransportID rtarget builds: iSCSI's name (up to 223 bytes), its ISID
/// separator and identifier, the NUL and padding.
pub const TRANSPORT_ID_MAX: usize = 4 + 256;

/// The TransportID of `initiator` under `proto` (SPC-4 7.6.4) into `out`; its length.
pub fn transport_id(proto: Proto, initiator: &[u8], out: &mut [u8; TRANSPORT_ID_MAX]) -> usize {
    match proto {
        Proto::Fcp | Proto::Sas => {
            // The 16 hex digits of a `naa.` (SAS) or `fc.`/colon-separated (FC) name.
            let mut addr = [0u8; 8];
            let mut n = 0;
            let name = initiator
                .strip_prefix(b"naa.")
                .or_else(|| initiator.strip_prefix(b"fc."))
                .unwrap_or(initiator);
            for &c in name {
                let Some(v) = (c as char).to_digit(16) else {
                    continue;
                };
                if n < 16 {
                    addr[n / 2] |= (v as u8) << if n % 2 == 0 { 4 } else { 0 };
                }
                n += 1;
            }
            out[0] = proto as u8;
            let at = if proto == Proto::Sas { 4 } else { 8 };
            out[at..at + 8].copy_from_slice(&addr);
            24
        }
        Proto::Iscsi => {
            let name = &initiator[..initiator.len().min(TRANSPORT_ID_MAX - 5)];
            // The name, NUL-terminated, padded to a multiple of 4, at least 20 bytes.
            let len = (name.len() + 1).next_multiple_of(4).max(20);
            out[0] = Proto::Iscsi as u8;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            out[4..4 + name.len()].copy_from_slice(name);
            4 + len
        }
    }
}

/// A TYPE and SCOPE byte's reservation type: LU_SCOPE and a known type, or INVALID FIELD IN
/// CDB at byte 2.
fn scope_and_type(scope_type: u8) -> Result<ResType, Sense> {
    if scope_type >> 4 != LU_SCOPE {
        return Err(Sense::invalid_cdb_field(2, Some(7)));
    }
    ResType::from_code(scope_type & 0x0f).ok_or(Sense::invalid_cdb_field(2, Some(3)))
}

/// Writes a response into a buffer that may be shorter than it; counts the full length.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Writer { out, at: 0 }
    }

    fn put(&mut self, b: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..) {
            let n = dst.len().min(b.len());
            dst[..n].copy_from_slice(&b[..n]);
        }
        self.at += b.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nexus: initiator name and target port number.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct It(&'static [u8], u16);

    impl Nexus for It {
        fn initiator(&self) -> &[u8] {
            self.0
        }
        fn same_port(&self, other: &Self) -> bool {
            self.1 == other.1
        }
        fn proto(&self) -> Proto {
            Proto::Sas
        }
        fn rtpi(&self) -> u16 {
            self.1
        }
    }

    struct List(Vec<Registration<It>>);

    impl core::ops::Deref for List {
        type Target = [Registration<It>];
        fn deref(&self) -> &Self::Target {
            &self.0
        }
    }
    impl core::ops::DerefMut for List {
        fn deref_mut(&mut self) -> &mut Self::Target {
            &mut self.0
        }
    }
    impl Regs<It> for List {
        fn add(&mut self, r: Registration<It>) -> Result<(), Registration<It>> {
            self.0.push(r);
            Ok(())
        }
        fn take(&mut self, i: usize) -> Option<Registration<It>> {
            (i < self.0.len()).then(|| self.0.remove(i))
        }
    }

    const A: It = It(b"naa.6001405000000001", 1);
    const B: It = It(b"naa.6001405000000002", 1);
    const C: It = It(b"naa.6001405000000003", 1);
    const A2: It = It(b"naa.6001405000000001", 2);

    type State = PrState<It, List>;
    type Uas = Vec<(&'static [u8], Ua)>;

    fn state() -> State {
        PrState::new(List(Vec::new()))
    }

    fn params(key: u64, sa_key: u64) -> ProutParams {
        ProutParams {
            key,
            sa_key,
            spec_i_pt: false,
            all_tg_pt: false,
            aptpl: false,
        }
    }

    fn out(
        s: &mut State,
        n: &It,
        sa: u8,
        ty: u8,
        key: u64,
        sa_key: u64,
    ) -> (Result<(), Refusal>, Uas) {
        let mut uas = Vec::new();
        let r = s.prout(n, sa, ty, &params(key, sa_key), |r, u| {
            uas.push((r.nexus.0, u))
        });
        (r, uas)
    }

    fn ok(s: &mut State, n: &It, sa: u8, ty: u8, key: u64, sa_key: u64) -> Uas {
        let (r, uas) = out(s, n, sa, ty, key, sa_key);
        assert_eq!(
            r,
            Ok(()),
            "sa {sa} type {ty} key {key:#x} sa_key {sa_key:#x}"
        );
        uas
    }

    fn register(s: &mut State, n: &It, key: u64) {
        ok(s, n, prout::REGISTER, 0, 0, key);
    }

    #[test]
    fn register_change_and_unregister() {
        let mut s = state();
        // Unregistered with a nonzero key: conflict; zero keys: nothing happens.
        assert_eq!(
            out(&mut s, &A, prout::REGISTER, 0, 5, 6).0,
            Err(Refusal::Conflict)
        );
        ok(&mut s, &A, prout::REGISTER, 0, 0, 0);
        assert_eq!(s.generation, 0);
        register(&mut s, &A, 0xa);
        assert_eq!(s.generation, 1);
        // The wrong key conflicts; IGNORE does not look at it.
        assert_eq!(
            out(&mut s, &A, prout::REGISTER, 0, 0xb, 0xc).0,
            Err(Refusal::Conflict)
        );
        ok(&mut s, &A, prout::REGISTER_AND_IGNORE, 0, 0x99, 0xc);
        assert_eq!(s.regs[0].key, 0xc);
        ok(&mut s, &A, prout::REGISTER, 0, 0xc, 0);
        assert!(s.regs.is_empty());
        assert_eq!(s.generation, 3);
        // A registration is per I_T nexus unless ALL_TG_PT.
        register(&mut s, &A, 1);
        assert_eq!(s.registration(&A2), None);
        let all = ProutParams {
            all_tg_pt: true,
            ..params(0, 2)
        };
        // ALL_TG_PT may not cover a nexus registered through another port.
        assert_eq!(
            s.prout(&A2, prout::REGISTER, 0, &all, |_, _| ()),
            Err(Refusal::Conflict)
        );
        ok(&mut s, &A, prout::REGISTER, 0, 1, 0);
        s.prout(&A2, prout::REGISTER, 0, &all, |_, _| ()).unwrap();
        assert_eq!(s.registration(&A), Some(0));
        assert_eq!(s.registration(&It(b"naa.6001405000000001", 7)), Some(0));
    }

    #[test]
    fn reserve_release_and_conflicts() {
        let mut s = state();
        register(&mut s, &A, 0xa);
        register(&mut s, &B, 0xb);
        // Unregistered, wrong key, bad scope or type.
        assert_eq!(
            out(&mut s, &C, prout::RESERVE, 1, 0, 0).0,
            Err(Refusal::Conflict)
        );
        assert_eq!(
            out(&mut s, &A, prout::RESERVE, 1, 0xb, 0).0,
            Err(Refusal::Conflict)
        );
        assert_eq!(
            out(&mut s, &A, prout::RESERVE, 0x11, 0xa, 0).0,
            Err(Refusal::Check(Sense::invalid_cdb_field(2, Some(7))))
        );
        assert_eq!(
            out(&mut s, &A, prout::RESERVE, 2, 0xa, 0).0,
            Err(Refusal::Check(Sense::invalid_cdb_field(2, Some(3))))
        );
        ok(&mut s, &A, prout::RESERVE, 1, 0xa, 0);
        assert_eq!(s.generation, 2);
        ok(&mut s, &A, prout::RESERVE, 1, 0xa, 0);
        assert_eq!(
            out(&mut s, &A, prout::RESERVE, 3, 0xa, 0).0,
            Err(Refusal::Conflict)
        );
        assert_eq!(
            out(&mut s, &B, prout::RESERVE, 1, 0xb, 0).0,
            Err(Refusal::Conflict)
        );
        // Write Exclusive: everyone reads, only the holder writes.
        assert!(!s.conflicts(&A, Access::Write));
        assert!(s.conflicts(&B, Access::Write));
        assert!(!s.conflicts(&C, Access::Read));
        assert!(!s.conflicts(&C, Access::Always));
        // A non-holder's RELEASE does nothing; the holder's with another type is refused.
        ok(&mut s, &B, prout::RELEASE, 1, 0xb, 0);
        assert_eq!(s.reservation, Some(ResType::WriteExclusive));
        assert_eq!(
            out(&mut s, &A, prout::RELEASE, 3, 0xa, 0).0,
            Err(Refusal::Check(invalid_release()))
        );
        assert!(ok(&mut s, &A, prout::RELEASE, 1, 0xa, 0).is_empty());
        assert_eq!(s.reservation, None);
        assert!(!s.conflicts(&B, Access::Write));
    }

    #[test]
    fn each_type_locks_out_whom_it_should() {
        // (type, registered non-holder read/write conflict, unregistered read/write conflict)
        let table = [
            (1, (false, true), (false, true)),
            (3, (true, true), (true, true)),
            (5, (false, false), (false, true)),
            (6, (false, false), (true, true)),
            (7, (false, false), (false, true)),
            (8, (false, false), (true, true)),
        ];
        for (ty, reg, unreg) in table {
            let mut s = state();
            register(&mut s, &A, 0xa);
            register(&mut s, &B, 0xb);
            ok(&mut s, &A, prout::RESERVE, ty, 0xa, 0);
            assert!(!s.conflicts(&A, Access::Write) && !s.conflicts(&A, Access::Read));
            assert_eq!(
                (
                    s.conflicts(&B, Access::Read),
                    s.conflicts(&B, Access::Write)
                ),
                reg,
                "type {ty}"
            );
            assert_eq!(
                (
                    s.conflicts(&C, Access::Read),
                    s.conflicts(&C, Access::Write)
                ),
                unreg,
                "type {ty}"
            );
            assert_eq!(
                s.conflicts(&C, Access::Describe),
                ResType::from_code(ty).unwrap().exclusive_access(),
                "type {ty}"
            );
            assert!(!s.conflicts(&B, Access::Describe));
        }
    }

    #[test]
    fn release_of_registrants_only_tells_the_others() {
        let mut s = state();
        register(&mut s, &A, 0xa);
        register(&mut s, &B, 0xb);
        register(&mut s, &C, 0xc);
        ok(&mut s, &A, prout::RESERVE, 5, 0xa, 0);
        let uas = ok(&mut s, &A, prout::RELEASE, 5, 0xa, 0);
        assert_eq!(
            uas,
            vec![
                (B.0, Ua::ReservationsReleased),
                (C.0, Ua::ReservationsReleased)
            ]
        );
        // The holder unregistering releases it too.
        ok(&mut s, &B, prout::RESERVE, 6, 0xb, 0);
        let uas = ok(&mut s, &B, prout::REGISTER, 0, 0xb, 0);
        assert_eq!(
            uas,
            vec![
                (A.0, Ua::ReservationsReleased),
                (C.0, Ua::ReservationsReleased)
            ]
        );
        assert_eq!(s.reservation, None);
        // An all-registrants reservation stays until its last registrant goes.
        ok(&mut s, &C, prout::RESERVE, 7, 0xc, 0);
        assert!(ok(&mut s, &C, prout::REGISTER, 0, 0xc, 0).is_empty());
        assert_eq!(s.reservation, Some(ResType::WriteExclusiveAll));
        assert!(!s.conflicts(&A, Access::Write) && s.conflicts(&C, Access::Write));
        ok(&mut s, &A, prout::REGISTER, 0, 0xa, 0);
        assert_eq!(s.reservation, None);
    }

    #[test]
    fn spc2_reserve_beside_registrations() {
        let mut s = state();
        assert_eq!(s.spc2(&A), Spc2::Proceed);
        register(&mut s, &A, 0xa);
        register(&mut s, &B, 0xb);
        assert_eq!(s.spc2(&C), Spc2::Conflict);
        assert_eq!(s.spc2(&A), Spc2::Conflict);
        ok(&mut s, &A, prout::RESERVE, 1, 0xa, 0);
        assert_eq!(s.spc2(&A), Spc2::Good);
        assert_eq!(s.spc2(&B), Spc2::Conflict);
        ok(&mut s, &A, prout::RELEASE, 1, 0xa, 0);
        ok(&mut s, &A, prout::RESERVE, 5, 0xa, 0);
        assert_eq!(s.spc2(&B), Spc2::Good);
    }

    #[test]
    fn forgetting_a_port_releases_its_holder() {
        let mut s = state();
        register(&mut s, &A, 0xa);
        register(&mut s, &B, 0xb);
        ok(&mut s, &B, prout::RESERVE, 5, 0xb, 0);
        let g = s.generation;
        s.forget(|r| r.nexus.0 == B.0);
        assert_eq!((s.regs.len(), s.reservation, s.generation), (1, None, g));
    }

    #[test]
    fn clear_removes_everything() {
        let mut s = state();
        register(&mut s, &A, 0xa);
        register(&mut s, &B, 0xb);
        ok(&mut s, &B, prout::RESERVE, 3, 0xb, 0);
        assert_eq!(
            out(&mut s, &C, prout::CLEAR, 0, 0, 0).0,
            Err(Refusal::Conflict)
        );
        let g = s.generation;
        let uas = ok(&mut s, &A, prout::CLEAR, 0, 0xa, 0);
        assert_eq!(uas, vec![(B.0, Ua::ReservationsPreempted)]);
        assert!(s.regs.is_empty() && s.reservation.is_none());
        assert_eq!(s.generation, g + 1);
    }

    #[test]
    fn preempt() {
        let mut s = state();
        register(&mut s, &A, 0xa);
        register(&mut s, &B, 0xb);
        register(&mut s, &C, 0xb);
        // Without a reservation: removes the registrations of the key; none: conflict; 0: invalid.
        assert_eq!(
            out(&mut s, &A, prout::PREEMPT, 1, 0xa, 0x77).0,
            Err(Refusal::Conflict)
        );
        assert_eq!(
            out(&mut s, &A, prout::PREEMPT, 1, 0xa, 0).0,
            Err(Refusal::Check(Sense::invalid_param_field(8, None)))
        );
        ok(&mut s, &B, prout::RESERVE, 1, 0xb, 0);
        // Preempting the holder's key moves the reservation, with the new type.
        let uas = ok(&mut s, &A, prout::PREEMPT_AND_ABORT, 3, 0xa, 0xb);
        assert_eq!(
            uas,
            vec![
                (C.0, Ua::RegistrationsPreempted),
                (B.0, Ua::RegistrationsPreempted)
            ]
        );
        assert_eq!(s.reservation, Some(ResType::ExclusiveAccess));
        assert_eq!(s.regs.len(), 1);
        assert!(s.regs[0].holder);
        assert!(s.conflicts(&B, Access::Read));
        // A non-holder key just removes registrations, the reservation stays.
        register(&mut s, &B, 0xb);
        ok(&mut s, &A, prout::PREEMPT, 5, 0xa, 0xb);
        assert_eq!(s.reservation, Some(ResType::ExclusiveAccess));
        // All registrants with key 0: everyone else goes, the preemptor holds the new type.
        register(&mut s, &B, 0xb);
        register(&mut s, &C, 0xc);
        ok(&mut s, &A, prout::RELEASE, 3, 0xa, 0);
        ok(&mut s, &C, prout::RESERVE, 8, 0xc, 0);
        let uas = ok(&mut s, &B, prout::PREEMPT, 1, 0xb, 0);
        assert_eq!(
            uas,
            vec![
                (C.0, Ua::RegistrationsPreempted),
                (A.0, Ua::RegistrationsPreempted)
            ]
        );
        assert_eq!(s.reservation, Some(ResType::WriteExclusive));
        assert!(s.regs.len() == 1 && s.regs[0].holder && s.regs[0].nexus == B);
    }

    #[test]
    fn command_classes() {
        assert_eq!(access(&[0x12, 0, 0, 0, 0x60, 0]), Access::Always);
        assert_eq!(access(&[0x9e, 0x10]), Access::Always);
        assert_eq!(access(&[0x9e, 0x12]), Access::Read);
        assert_eq!(access(&[0x28, 0]), Access::Read);
        assert_eq!(access(&[0x2a, 0]), Access::Write);
        assert_eq!(access(&[0x1a, 0]), Access::Describe);
        assert_eq!(access(&[0xa3, 0x0c]), Access::Describe);
        assert_eq!(access(&[0xa3, 0x0a]), Access::Always);
        assert_eq!(access(&[0xa3, 0x05]), Access::Write);
        assert_eq!(access(&[0x35, 0]), Access::Write);
        let mut r32 = [0u8; 32];
        r32[0] = 0x7f;
        r32[9] = 0x09;
        assert_eq!(access(&r32), Access::Read);
        r32[9] = 0x0b;
        assert_eq!(access(&r32), Access::Write);
        assert_eq!(access(&[]), Access::Write);
    }

    #[test]
    fn prin_data() {
        let mut s = state();
        let mut buf = [0u8; 64];
        assert_eq!(s.read_keys(&mut buf), 8);
        assert_eq!(buf[..8], [0; 8]);
        register(&mut s, &A, 0x1122);
        register(&mut s, &B, 0x3344);
        assert_eq!(s.read_keys(&mut buf), 24);
        assert_eq!(buf[..8], [0, 0, 0, 2, 0, 0, 0, 16]);
        assert_eq!(buf[14..16], [0x11, 0x22]);
        assert_eq!(buf[22..24], [0x33, 0x44]);
        // Truncated: the full length is still counted.
        let mut short = [0u8; 12];
        assert_eq!(s.read_keys(&mut short), 24);
        assert_eq!(s.read_reservation(&mut buf), 8);
        assert_eq!(buf[4..8], [0; 4]);
        ok(&mut s, &B, prout::RESERVE, 6, 0x3344, 0);
        assert_eq!(s.read_reservation(&mut buf), 24);
        assert_eq!(buf[4..8], [0, 0, 0, 16]);
        assert_eq!(buf[14..16], [0x33, 0x44]);
        assert_eq!(buf[21], 0x06);
        let mut full = [0u8; 128];
        let n = s.read_full_status(&mut full);
        assert_eq!(n, 8 + 2 * (24 + 24));
        assert_eq!(full[4..8], [0, 0, 0, 96]);
        // B's descriptor: holder, type 6, rtpi 1, SAS TransportID.
        let d = &full[8 + 48..];
        assert_eq!(d[12], 0x01);
        assert_eq!(d[13], 0x06);
        assert_eq!(d[18..20], [0, 1]);
        assert_eq!(d[20..24], [0, 0, 0, 24]);
        assert_eq!(d[24], 0x06);
        assert_eq!(d[28..36], [0x60, 0x01, 0x40, 0x50, 0, 0, 0, 0x02]);
        assert_eq!(report_capabilities()[4..6], [0xea, 0x01]);
    }

    /// Random PROUT sequences from four nexuses (one initiator through two ports) keep the
    /// state's invariants.
    #[test]
    fn random_sequences_keep_the_invariants() {
        let nexuses = [A, B, C, A2];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut s = state();
            let mut generation = 0;
            for _ in 0..200 {
                let who = &nexuses[next(4) as usize];
                let sa = next(8) as u8;
                let ty = [0, 1, 2, 3, 5, 6, 7, 8, 0x11][next(9) as usize];
                let p = ProutParams {
                    key: next(4),
                    sa_key: next(4),
                    spec_i_pt: false,
                    all_tg_pt: next(4) == 0,
                    aptpl: false,
                };
                let before = (s.generation, s.reservation, s.regs.0.clone());
                let r = s.prout(who, sa, ty, &p, |_, _| ());
                assert!(s.generation >= generation, "the generation only grows");
                if r.is_err() {
                    let after = (s.generation, s.reservation, s.regs.0.clone());
                    assert_eq!(before, after, "a refused PROUT changes nothing");
                }
                generation = s.generation;
                assert!(s.regs.iter().all(|r| r.key != 0));
                for n in &nexuses {
                    assert!(
                        s.regs.iter().filter(|r| r.covers(n)).count() <= 1,
                        "one registration per nexus"
                    );
                }
                let holders = s.regs.iter().filter(|r| r.holder).count();
                match s.reservation {
                    None => assert_eq!(holders, 0),
                    Some(t) if t.all_registrants() => assert!(!s.regs.is_empty()),
                    Some(_) => assert_eq!(holders, 1),
                }
                for n in &nexuses {
                    let i = s.registration(n);
                    if s.holds(i) {
                        assert!(!s.conflicts(n, Access::Write) && !s.conflicts(n, Access::Read));
                    }
                }
            }
        }
    }

    #[test]
    fn transport_ids() {
        let mut t = [0u8; TRANSPORT_ID_MAX];
        assert_eq!(
            transport_id(Proto::Iscsi, b"iqn.1994-05.com.redhat:x", &mut t),
            4 + 28
        );
        assert_eq!(t[..4], [0x05, 0, 0, 28]);
        assert_eq!(&t[4..28], b"iqn.1994-05.com.redhat:x");
        assert_eq!(t[28], 0);
        let mut t = [0u8; TRANSPORT_ID_MAX];
        assert_eq!(transport_id(Proto::Fcp, b"fc.21000024ff314c48", &mut t), 24);
        assert_eq!(t[8..16], [0x21, 0, 0, 0x24, 0xff, 0x31, 0x4c, 0x48]);
    }

    #[test]
    fn parameter_list() {
        let mut p = [0u8; 24];
        p[7] = 1;
        p[15] = 2;
        p[20] = 0x04;
        let d = ProutParams::decode(prout::REGISTER, &p).unwrap();
        assert!(d.key == 1 && d.sa_key == 2 && d.all_tg_pt && !d.aptpl);
        assert_eq!(
            ProutParams::decode(prout::REGISTER, &p[..23]),
            Err(Sense::param_list_length())
        );
        p[20] = 0x08;
        assert_eq!(
            ProutParams::decode(prout::REGISTER, &p),
            Err(Sense::invalid_param_field(20, Some(3)))
        );
        p[20] = 0x01;
        assert_eq!(
            ProutParams::decode(prout::REGISTER, &p),
            Err(Sense::invalid_param_field(20, Some(0)))
        );
        // APTPL means nothing to the other service actions.
        assert!(ProutParams::decode(prout::RESERVE, &p).is_ok_and(|d| d.aptpl));
    }

    #[test]
    fn preempt_without_the_reservation_takes_the_preemptors_own_key_too() {
        let mut s = state();
        register(&mut s, &A, 0xa);
        register(&mut s, &B, 0xa);
        let uas = ok(&mut s, &A, prout::PREEMPT, 1, 0xa, 0xa);
        assert_eq!(uas, vec![(B.0, Ua::RegistrationsPreempted)]);
        assert!(s.regs.is_empty());
    }
}
