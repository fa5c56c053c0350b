//! Data transfer for one command (RFC 7143 4.2.5, 11.7, 11.8): the Data-In PDUs a read is cut
//! into, and for a write the immediate and unsolicited data allowed, the R2Ts the target
//! sends for the rest, and the check of every Data-Out against them. The target negotiates
//! DataPDUInOrder and DataSequenceInOrder to Yes (it offers Yes and both are ORed), so data
//! arrives in offset order, one burst after another.

use crate::pdu::{DataOut, RESERVED_TAG};

/// Most R2Ts outstanding per command (the TPG's MaxOutstandingR2T is bounded by it).
pub const MAX_OUTSTANDING_R2T: usize = 16;

/// The negotiated values a transfer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub first_burst: u32,
    pub max_burst: u32,
    pub max_outstanding_r2t: u32,
    /// Longest data segment the target receives (its MaxRecvDataSegmentLength).
    pub max_recv_segment: u32,
    /// Longest data segment the target sends (the initiator's MaxRecvDataSegmentLength).
    pub max_xmit_segment: u32,
}

impl Limits {
    /// The limits a session's agreed parameters give.
    pub fn of(p: &crate::text::Params) -> Limits {
        Limits {
            initial_r2t: p.initial_r2t,
            immediate_data: p.immediate_data,
            first_burst: p.first_burst_length,
            max_burst: p.max_burst_length,
            max_outstanding_r2t: p.max_outstanding_r2t.clamp(1, MAX_OUTSTANDING_R2T as u32),
            max_recv_segment: p.max_recv_data_segment_length,
            max_xmit_segment: p.max_xmit_data_segment_length,
        }
    }
}

/// One Data-In PDU of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataIn {
    pub datasn: u32,
    pub offset: u32,
    pub len: u32,
    /// The last PDU of a burst (F bit).
    pub final_: bool,
    /// The last PDU of the command.
    pub last: bool,
}

/// The Data-In PDUs of a read of `len` bytes: at most `max_xmit_segment` each, a burst ending
/// (F) every `max_burst` bytes and at the end.
pub fn data_in(len: u32, l: &Limits) -> impl Iterator<Item = DataIn> {
    let seg = l.max_xmit_segment.max(512);
    let burst = l.max_burst.max(seg);
    let mut offset = 0u32;
    let mut datasn = 0u32;
    core::iter::from_fn(move || {
        if offset >= len {
            return None;
        }
        let burst_end = (offset / burst + 1).saturating_mul(burst).min(len);
        let n = seg.min(burst_end - offset);
        let pdu = DataIn {
            datasn,
            offset,
            len: n,
            final_: offset + n == burst_end,
            last: offset + n == len,
        };
        offset += n;
        datasn += 1;
        Some(pdu)
    })
}

/// Why a write's data cannot be taken: a protocol error (Reject, and at ErrorRecoveryLevel 0
/// the connection ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XferError {
    /// Immediate data with ImmediateData=No, beyond FirstBurstLength or beyond EDTL.
    Immediate,
    /// Unsolicited Data-Out with InitialR2T=Yes, after the command's F bit, or beyond the
    /// first burst.
    Unsolicited,
    /// A Target Transfer Tag that names no outstanding R2T.
    UnknownTtt,
    /// Data at an offset other than the next one expected, or past its burst.
    Offset,
    /// A DataSN other than the next one of its sequence.
    DataSn,
    /// A data segment longer than MaxRecvDataSegmentLength.
    SegmentLength,
    /// The F bit missing at the end of a burst, or set before it.
    Final,
}

/// An R2T to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct R2t {
    pub r2tsn: u32,
    pub ttt: u32,
    pub offset: u32,
    pub len: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Burst {
    ttt: u32,
    end: u32,
}

/// The data of one write.
#[derive(Clone, Copy, Debug)]
pub struct Write {
    limits: Limits,
    edtl: u32,
    /// Data received, in order: the next byte expected is at this offset.
    next: u32,
    /// DataSN expected next in the current sequence.
    datasn: u32,
    /// End of the unsolicited burst (0 when none is allowed).
    unsolicited_end: u32,
    /// Requested so far (by R2Ts or as the unsolicited burst).
    requested: u32,
    r2tsn: u32,
    /// Outstanding R2Ts in offset order, oldest first.
    bursts: [Burst; MAX_OUTSTANDING_R2T],
    outstanding: usize,
}

impl Write {
    /// A SCSI Command for a write of `edtl` bytes with `immediate` bytes in its data segment;
    /// `final_` is the command's F bit (no unsolicited Data-Out follows).
    pub fn new(
        edtl: u32,
        immediate: u32,
        final_: bool,
        mut limits: Limits,
    ) -> Result<Write, XferError> {
        limits.max_outstanding_r2t = limits
            .max_outstanding_r2t
            .clamp(1, MAX_OUTSTANDING_R2T as u32);
        if immediate > 0 && (!limits.immediate_data || immediate > limits.first_burst) {
            return Err(XferError::Immediate);
        }
        if immediate > edtl || immediate > limits.max_recv_segment {
            return Err(XferError::Immediate);
        }
        let first = limits.first_burst.min(edtl);
        // Unsolicited Data-Out may follow unless InitialR2T=Yes or the command says it is done.
        let unsolicited_end = if !limits.initial_r2t && !final_ {
            first
        } else {
            immediate
        };
        if !final_ && (limits.initial_r2t || immediate == edtl) {
            // F = 0 announces unsolicited Data-Out that may not come.
            return Err(XferError::Unsolicited);
        }
        Ok(Write {
            limits,
            edtl,
            next: immediate,
            datasn: 0,
            unsolicited_end,
            requested: unsolicited_end,
            r2tsn: 0,
            bursts: [Burst::default(); MAX_OUTSTANDING_R2T],
            outstanding: 0,
        })
    }

    /// Every byte has arrived.
    pub fn complete(&self) -> bool {
        self.next == self.edtl
    }

    /// Unsolicited Data-Out (RFC 7143 4.2.5.2) may still come for it.
    pub fn unsolicited_pending(&self) -> bool {
        self.next < self.unsolicited_end
    }

    /// Bytes received so far (all of them before `received()`).
    pub fn received(&self) -> u32 {
        self.next
    }

    /// The next R2T to send, if the window allows one; `ttt` is the tag the caller gives it
    /// (unique among the connection's outstanding R2Ts, never [`RESERVED_TAG`]).
    pub fn next_r2t(&mut self, ttt: u32) -> Option<R2t> {
        if self.requested >= self.edtl
            || self.outstanding >= self.limits.max_outstanding_r2t as usize
            // The unsolicited burst comes first.
            || self.next < self.unsolicited_end
            || ttt == RESERVED_TAG
        {
            return None;
        }
        let len = self.limits.max_burst.min(self.edtl - self.requested);
        let r = R2t {
            r2tsn: self.r2tsn,
            ttt,
            offset: self.requested,
            len,
        };
        self.bursts[self.outstanding] = Burst {
            ttt,
            end: self.requested + len,
        };
        self.outstanding += 1;
        self.requested += len;
        self.r2tsn = self.r2tsn.wrapping_add(1);
        Some(r)
    }

    /// Checks one Data-Out of `len` bytes and takes it; the caller then copies its data to
    /// the command's buffer at `d.offset`.
    pub fn data_out(&mut self, d: &DataOut, len: u32) -> Result<(), XferError> {
        if len > self.limits.max_recv_segment {
            return Err(XferError::SegmentLength);
        }
        let end = if d.ttt == RESERVED_TAG {
            if self.next >= self.unsolicited_end {
                return Err(XferError::Unsolicited);
            }
            self.unsolicited_end
        } else {
            match self.bursts[..self.outstanding].first() {
                Some(b) if b.ttt == d.ttt && self.next >= self.unsolicited_end => b.end,
                _ => return Err(XferError::UnknownTtt),
            }
        };
        if d.offset != self.next || d.offset.checked_add(len).is_none_or(|e| e > end) {
            return Err(XferError::Offset);
        }
        if d.datasn != self.datasn {
            return Err(XferError::DataSn);
        }
        let at_end = d.offset + len == end;
        if d.final_ != at_end {
            return Err(XferError::Final);
        }
        self.next += len;
        self.datasn = self.datasn.wrapping_add(1);
        if at_end {
            // A new sequence: DataSN starts again.
            self.datasn = 0;
            if d.ttt != RESERVED_TAG {
                self.bursts.copy_within(1..self.outstanding, 0);
                self.outstanding -= 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            initial_r2t: true,
            immediate_data: true,
            first_burst: 65536,
            max_burst: 262144,
            max_outstanding_r2t: 1,
            max_recv_segment: 8192,
            max_xmit_segment: 262144,
        }
    }

    fn dout(ttt: u32, datasn: u32, offset: u32, final_: bool) -> DataOut {
        DataOut {
            final_,
            lun: 0,
            ttt,
            exp_statsn: 0,
            datasn,
            offset,
        }
    }

    #[test]
    fn reads_are_cut_by_segment_and_burst() {
        let l = Limits {
            max_xmit_segment: 8192,
            max_burst: 16384,
            ..limits()
        };
        let v: Vec<_> = data_in(40000, &l).collect();
        let got: Vec<_> = v
            .iter()
            .map(|d| (d.datasn, d.offset, d.len, d.final_, d.last))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 8192, false, false),
                (1, 8192, 8192, true, false),
                (2, 16384, 8192, false, false),
                (3, 24576, 8192, true, false),
                (4, 32768, 7232, true, true),
            ]
        );
        assert_eq!(data_in(0, &l).count(), 0);
        assert_eq!(data_in(512, &limits()).count(), 1);
    }

    #[test]
    fn open_iscsi_write_with_immediate_data_then_r2t() {
        // InitialR2T=Yes, ImmediateData=Yes: 8 KiB immediate, the rest by R2T.
        let mut w = Write::new(65536, 8192, true, limits()).unwrap();
        let r = w.next_r2t(0x100).unwrap();
        assert_eq!((r.r2tsn, r.offset, r.len), (0, 8192, 57344));
        assert_eq!(w.next_r2t(0x101), None, "MaxOutstandingR2T=1");
        for i in 0..7 {
            w.data_out(&dout(0x100, i, 8192 * (i + 1), i == 6), 8192)
                .unwrap();
        }
        assert!(w.complete());
        assert_eq!(w.next_r2t(0x102), None);
    }

    #[test]
    fn unsolicited_data_pending_until_its_burst_is_in() {
        let mut l = limits();
        l.initial_r2t = false;
        let mut w = Write::new(4096, 512, false, l).unwrap();
        assert!(w.unsolicited_pending());
        let end = l.first_burst.min(4096);
        w.data_out(&dout(RESERVED_TAG, 0, 512, false), 512).unwrap();
        let mut at = 1024;
        let mut sn = 1;
        while at < end {
            let n = (end - at).min(l.max_recv_segment);
            w.data_out(&dout(RESERVED_TAG, sn, at, at + n == end), n)
                .unwrap();
            at += n;
            sn += 1;
        }
        assert!(!w.unsolicited_pending());
        // InitialR2T=Yes: nothing unsolicited beyond the immediate data.
        let w = Write::new(4096, 512, true, limits()).unwrap();
        assert!(!w.unsolicited_pending());
    }

    #[test]
    fn unsolicited_data_and_several_r2ts() {
        let l = Limits {
            initial_r2t: false,
            first_burst: 16384,
            max_burst: 16384,
            max_outstanding_r2t: 2,
            ..limits()
        };
        let mut w = Write::new(65536, 4096, false, l).unwrap();
        // The unsolicited burst comes before any R2T.
        assert_eq!(w.next_r2t(1), None);
        w.data_out(&dout(RESERVED_TAG, 0, 4096, false), 8192)
            .unwrap();
        assert_eq!(
            w.data_out(&dout(RESERVED_TAG, 1, 12288, false), 4096),
            Err(XferError::Final)
        );
        w.data_out(&dout(RESERVED_TAG, 1, 12288, true), 4096)
            .unwrap();
        assert_eq!(
            w.data_out(&dout(RESERVED_TAG, 0, 16384, true), 4096),
            Err(XferError::Unsolicited)
        );
        let a = w.next_r2t(1).unwrap();
        let b = w.next_r2t(2).unwrap();
        assert_eq!(
            (a.offset, a.len, b.offset, b.len, b.r2tsn),
            (16384, 16384, 32768, 16384, 1)
        );
        assert_eq!(w.next_r2t(3), None);
        // In order: the second R2T's data may not come first.
        assert_eq!(
            w.data_out(&dout(2, 0, 32768, false), 8192),
            Err(XferError::UnknownTtt)
        );
        w.data_out(&dout(1, 0, 16384, false), 8192).unwrap();
        assert_eq!(
            w.data_out(&dout(1, 2, 24576, true), 8192),
            Err(XferError::DataSn)
        );
        w.data_out(&dout(1, 1, 24576, true), 8192).unwrap();
        let c = w.next_r2t(3).unwrap();
        assert_eq!((c.offset, c.len, c.r2tsn), (49152, 16384, 2));
        w.data_out(&dout(2, 0, 32768, false), 8192).unwrap();
        assert_eq!(
            w.data_out(&dout(2, 1, 40960, true), 8193),
            Err(XferError::SegmentLength)
        );
        assert_eq!(
            w.data_out(&dout(2, 1, 36864, true), 8192),
            Err(XferError::Offset)
        );
        w.data_out(&dout(2, 1, 40960, true), 8192).unwrap();
        w.data_out(&dout(3, 0, 49152, false), 8192).unwrap();
        assert_eq!(
            w.data_out(&dout(3, 1, 57344, true), 8192 + 4),
            Err(XferError::SegmentLength)
        );
        w.data_out(&dout(3, 1, 57344, true), 8192).unwrap();
        assert!(w.complete());
    }

    #[test]
    fn bad_commands() {
        let l = limits();
        let no_imm = Limits {
            immediate_data: false,
            ..l
        };
        assert_eq!(
            Write::new(4096, 512, true, no_imm).unwrap_err(),
            XferError::Immediate
        );
        assert_eq!(
            Write::new(512, 1024, true, l).unwrap_err(),
            XferError::Immediate
        );
        assert_eq!(
            Write::new(1 << 20, 65536 + 512, true, l).unwrap_err(),
            XferError::Immediate
        );
        // F = 0 with InitialR2T=Yes announces unsolicited data that may not be sent.
        assert_eq!(
            Write::new(4096, 0, false, l).unwrap_err(),
            XferError::Unsolicited
        );
        // Unsolicited Data-Out with InitialR2T=Yes.
        let mut w = Write::new(4096, 0, true, l).unwrap();
        assert_eq!(
            w.data_out(&dout(RESERVED_TAG, 0, 0, true), 4096),
            Err(XferError::Unsolicited)
        );
        assert_eq!(
            w.data_out(&dout(7, 0, 0, true), 4096),
            Err(XferError::UnknownTtt)
        );
        assert_eq!(w.next_r2t(RESERVED_TAG), None);
        // A whole write in immediate data needs no R2T.
        let mut w = Write::new(4096, 4096, true, l).unwrap();
        assert!(w.complete());
        assert_eq!(w.next_r2t(1), None);
    }
}
