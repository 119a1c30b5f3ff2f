// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! PAPR hcall numbers, return codes and the SCM register conventions.
//!
//! Names follow Linux `arch/powerpc/include/asm/hvcall.h` verbatim so that a
//! reader can grep both trees. The guest passes the opcode in r3 and the
//! arguments in r4..r12; the status comes back in r3 (negative codes
//! sign-extended to 64 bits) and outputs in r4.. (PAPR "HCALL ABI",
//! Linux `Documentation/arch/powerpc/papr_hcalls.rst`).

use core::fmt;

/// The nine argument/return registers r4..r12 of an hcall; `regs[0]` is r4.
///
/// This is exactly KVM's `kvm_run.papr_hcall.args` (`__u64 args[9]`) on a
/// `KVM_EXIT_PAPR_HCALL` exit, whose `nr` is r3, the opcode; write the
/// status back to `papr_hcall.ret` with [`ReturnCode::to_reg`]:
///
/// ```
/// # struct PaprHcall { nr: u64, ret: u64, args: [u64; 9] }
/// # let mut papr_hcall = PaprHcall { nr: papr_scm::hcall::H_SCM_HEALTH, ret: 0, args: [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0] };
/// # let config = papr_scm::config::MachineConfig::new(2 << 30, 8 << 30, 0);
/// # let machine = papr_scm::machine::Machine::new(&config, papr_scm::machine::LocalSlots::<papr_scm::label::SliceLabelStore>::new(&[]));
/// // kvm_run.papr_hcall after KVM_EXIT_PAPR_HCALL:
/// if let Some(status) = machine.handle(papr_hcall.nr, &mut papr_hcall.args) {
///     papr_hcall.ret = status.to_reg();
/// } // else: not an SCM hcall, route it elsewhere
/// # assert_eq!(papr_hcall.ret, papr_scm::hcall::H_PARAMETER.to_reg());
/// ```
pub type Regs = [u64; 9];

/// H_SCM_READ_METADATA: read 1, 2, 4 or 8 label bytes into r4.
pub const H_SCM_READ_METADATA: u64 = 0x3E4;
/// H_SCM_WRITE_METADATA: write 1, 2, 4 or 8 label bytes from r6.
pub const H_SCM_WRITE_METADATA: u64 = 0x3E8;
/// H_SCM_BIND_MEM: bind SCM blocks to guest logical addresses.
pub const H_SCM_BIND_MEM: u64 = 0x3EC;
/// H_SCM_UNBIND_MEM: unbind a range of bound blocks by address.
pub const H_SCM_UNBIND_MEM: u64 = 0x3F0;
/// H_SCM_QUERY_BLOCK_MEM_BINDING: logical address of a bound block.
pub const H_SCM_QUERY_BLOCK_MEM_BINDING: u64 = 0x3F4;
/// H_SCM_QUERY_LOGICAL_MEM_BINDING: DRC index and block of an address.
pub const H_SCM_QUERY_LOGICAL_MEM_BINDING: u64 = 0x3F8;
/// H_SCM_UNBIND_ALL: unbind every block of one DRC or of the partition.
pub const H_SCM_UNBIND_ALL: u64 = 0x3FC;
/// H_SCM_HEALTH: health bitmap (r4) and valid-bits mask (r5).
pub const H_SCM_HEALTH: u64 = 0x400;
/// H_SCM_PERFORMANCE_STATS: fill an `SCMSTATS` buffer in guest memory.
pub const H_SCM_PERFORMANCE_STATS: u64 = 0x418;
/// H_SCM_FLUSH: asynchronous flush of the backing store.
pub const H_SCM_FLUSH: u64 = 0x44C;

/// The ten SCM opcodes with their Linux names, in opcode order.
pub const SCM_HCALLS: [(u64, &str); 10] = [
    (H_SCM_READ_METADATA, "H_SCM_READ_METADATA"),
    (H_SCM_WRITE_METADATA, "H_SCM_WRITE_METADATA"),
    (H_SCM_BIND_MEM, "H_SCM_BIND_MEM"),
    (H_SCM_UNBIND_MEM, "H_SCM_UNBIND_MEM"),
    (
        H_SCM_QUERY_BLOCK_MEM_BINDING,
        "H_SCM_QUERY_BLOCK_MEM_BINDING",
    ),
    (
        H_SCM_QUERY_LOGICAL_MEM_BINDING,
        "H_SCM_QUERY_LOGICAL_MEM_BINDING",
    ),
    (H_SCM_UNBIND_ALL, "H_SCM_UNBIND_ALL"),
    (H_SCM_HEALTH, "H_SCM_HEALTH"),
    (H_SCM_PERFORMANCE_STATS, "H_SCM_PERFORMANCE_STATS"),
    (H_SCM_FLUSH, "H_SCM_FLUSH"),
];

/// The Linux name of an SCM opcode, or `None` for any other opcode.
pub fn hcall_name(opcode: u64) -> Option<&'static str> {
    SCM_HCALLS
        .iter()
        .find(|(op, _)| *op == opcode)
        .map(|(_, name)| *name)
}

/// The SCM opcode with this Linux name.
pub fn hcall_by_name(name: &str) -> Option<u64> {
    SCM_HCALLS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(op, _)| *op)
}

/// `H_UNBIND_SCOPE_ALL`: H_SCM_UNBIND_ALL over every SCM device.
pub const H_UNBIND_SCOPE_ALL: u64 = 1;
/// `H_UNBIND_SCOPE_DRC`: H_SCM_UNBIND_ALL over the device in r5.
pub const H_UNBIND_SCOPE_DRC: u64 = 2;

/// Target address meaning "the hypervisor chooses" (Linux `BIND_ANY_ADDR`).
pub const BIND_ANY_ADDR: u64 = u64::MAX;

/// A PAPR hcall return code, as the signed value Linux compares against.
///
/// Converts to the 64-bit register value with [`ReturnCode::to_reg`]
/// (negative codes sign-extended, so H_PARAMETER is `0xffff_ffff_ffff_fffc`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReturnCode(pub i64);

macro_rules! return_codes {
    ($($(#[$doc:meta])* $name:ident = $val:expr;)*) => {
        $( $(#[$doc])* pub const $name: ReturnCode = ReturnCode($val); )*
        /// Every return code this crate names, with its Linux name.
        pub const RETURN_CODES: &[(ReturnCode, &str)] = &[ $( ($name, stringify!($name)), )* ];
    };
}

return_codes! {
    /// Success.
    H_SUCCESS = 0;
    /// Busy: re-issue the call (with the continue token where there is one).
    H_BUSY = 1;
    /// Resource closed.
    H_CLOSED = 2;
    /// Not available.
    H_NOT_AVAILABLE = 3;
    /// Constrained.
    H_CONSTRAINED = 4;
    /// Partial success; H_SCM_PERFORMANCE_STATS puts the unknown stat id in r4.
    H_PARTIAL = 5;
    /// In progress.
    H_IN_PROGRESS = 14;
    /// Page registered.
    H_PAGE_REGISTERED = 15;
    /// Partial store.
    H_PARTIAL_STORE = 16;
    /// Pending.
    H_PENDING = 17;
    /// Continue.
    H_CONTINUE = 18;
    /// Busy, retry after about 1 ms.
    H_LONG_BUSY_ORDER_1_MSEC = 9900;
    /// Busy, retry after about 10 ms (QEMU's pending-flush answer).
    H_LONG_BUSY_ORDER_10_MSEC = 9901;
    /// Busy, retry after about 100 ms.
    H_LONG_BUSY_ORDER_100_MSEC = 9902;
    /// Busy, retry after about 1 s.
    H_LONG_BUSY_ORDER_1_SEC = 9903;
    /// Busy, retry after about 10 s.
    H_LONG_BUSY_ORDER_10_SEC = 9904;
    /// Busy, retry after about 100 s.
    H_LONG_BUSY_ORDER_100_SEC = 9905;
    /// Hardware error.
    H_HARDWARE = -1;
    /// Function not implemented.
    H_FUNCTION = -2;
    /// Privileged call from problem state.
    H_PRIVILEGE = -3;
    /// Bad parameter (for SCM: a bad DRC index).
    H_PARAMETER = -4;
    /// Bad mode.
    H_BAD_MODE = -5;
    /// PTEG full.
    H_PTEG_FULL = -6;
    /// Not found.
    H_NOT_FOUND = -7;
    /// Reserved DABR.
    H_RESERVED_DABR = -8;
    /// No memory.
    H_NO_MEM = -9;
    /// Not authorised (PowerVM: performance collection disabled on the HMC).
    H_AUTHORITY = -10;
    /// Permission denied.
    H_PERMISSION = -11;
    /// Dropped.
    H_DROPPED = -12;
    /// Bad source parameter.
    H_SOURCE_PARM = -13;
    /// Bad destination parameter.
    H_DEST_PARM = -14;
    /// Bad remote parameter.
    H_REMOTE_PARM = -15;
    /// Resource error.
    H_RESOURCE = -16;
    /// Bad adapter parameter.
    H_ADAPTER_PARM = -17;
    /// Operation aborted.
    H_ABORTED = -54;
    /// Bad parameter 2.
    H_P2 = -55;
    /// Bad parameter 3.
    H_P3 = -56;
    /// Bad parameter 4.
    H_P4 = -57;
    /// Bad parameter 5.
    H_P5 = -58;
    /// Bad parameter 6.
    H_P6 = -59;
    /// Bad parameter 7.
    H_P7 = -60;
    /// Bad parameter 8.
    H_P8 = -61;
    /// Bad parameter 9.
    H_P9 = -62;
    /// No operation performed.
    H_NOOP = -63;
    /// Request too big.
    H_TOO_BIG = -64;
    /// Unsupported.
    H_UNSUPPORTED = -67;
    /// Overlap (for SCM bind: the DRC is already bound).
    H_OVERLAP = -68;
    /// Interrupted.
    H_INTERRUPT = -69;
    /// Bad data.
    H_BAD_DATA = -70;
    /// Wrong state.
    H_STATE = -75;
    /// In use.
    H_IN_USE = -77;
}

impl ReturnCode {
    /// The value the hypervisor puts in r3 (two's complement, sign-extended).
    pub const fn to_reg(self) -> u64 {
        self.0 as u64
    }

    /// The return code a 64-bit r3 value carries.
    pub const fn from_reg(reg: u64) -> Self {
        ReturnCode(reg as i64)
    }

    /// True for the `H_LONG_BUSY_ORDER_*` range 9900..=9905 (`H_IS_LONG_BUSY`).
    pub const fn is_long_busy(self) -> bool {
        self.0 >= 9900 && self.0 <= 9905
    }

    /// The guest's sleep hint for a long-busy code (`get_longbusy_msecs`).
    pub const fn long_busy_msecs(self) -> u64 {
        match self.0 {
            9901 => 10,
            9902 => 100,
            9903 => 1_000,
            9904 => 10_000,
            9905 => 100_000,
            _ => 1,
        }
    }

    /// The Linux name of the code, if it has one.
    pub fn name(self) -> Option<&'static str> {
        RETURN_CODES
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
    }

    /// The code with this Linux name.
    pub fn by_name(name: &str) -> Option<Self> {
        RETURN_CODES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| *c)
    }
}

impl fmt::Debug for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// PAPR bit `n` of a 64-bit register: IBM numbering, bit 0 is the MSB.
pub const fn ppc_bit(n: u32) -> u64 {
    1u64 << (63 - n)
}

bitflags::bitflags! {
    /// The H_SCM_HEALTH bitmap, in PAPR bit numbering (bit n = `1 << (63 - n)`),
    /// named as in Linux `include/linux/papr_scm.h`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct HealthBits: u64 {
        /// Bit 0: contents will not persist (QEMU: `unarmed=on`).
        const PAPR_PMEM_UNARMED = ppc_bit(0);
        /// Bit 1: the last shutdown/save did not complete.
        const PAPR_PMEM_SHUTDOWN_DIRTY = ppc_bit(1);
        /// Bit 2: contents restored from the previous IPL.
        const PAPR_PMEM_SHUTDOWN_CLEAN = ppc_bit(2);
        /// Bit 3: nothing was restored from the previous IPL.
        const PAPR_PMEM_EMPTY = ppc_bit(3);
        /// Bit 4: remaining life critically low.
        const PAPR_PMEM_HEALTH_CRITICAL = ppc_bit(4);
        /// Bit 5: the device will be garded off at the next IPL.
        const PAPR_PMEM_HEALTH_FATAL = ppc_bit(5);
        /// Bit 6: platform health prevents persistence.
        const PAPR_PMEM_HEALTH_UNHEALTHY = ppc_bit(6);
        /// Bit 7: may fail to persist under some conditions.
        const PAPR_PMEM_HEALTH_NON_CRITICAL = ppc_bit(7);
        /// Bit 8: contents are encrypted.
        const PAPR_PMEM_ENCRYPTED = ppc_bit(8);
        /// Bit 9: scrubbed and locked.
        const PAPR_PMEM_SCRUBBED_AND_LOCKED = ppc_bit(9);
        /// Bit 10: the last save failed (not consumed by papr_scm).
        const PAPR_PMEM_SAVE_FAILED = ppc_bit(10);
    }
}

/// The register outputs of one hcall: only the registers it defines.
///
/// Registers left `None` keep the guest's input value, which is what QEMU
/// does (its handlers write `args[i]` only for their outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outputs {
    /// r4, if written.
    pub r4: Option<u64>,
    /// r5, if written.
    pub r5: Option<u64>,
    /// r6, if written.
    pub r6: Option<u64>,
}

impl Outputs {
    /// No output register written.
    pub const NONE: Outputs = Outputs {
        r4: None,
        r5: None,
        r6: None,
    };

    /// Only r4 written.
    pub const fn r4(v: u64) -> Self {
        Outputs {
            r4: Some(v),
            r5: None,
            r6: None,
        }
    }

    /// Writes the defined outputs into `regs` (r4 is `regs[0]`).
    pub fn apply(&self, regs: &mut Regs) {
        if let Some(v) = self.r4 {
            regs[0] = v;
        }
        if let Some(v) = self.r5 {
            regs[1] = v;
        }
        if let Some(v) = self.r6 {
            regs[2] = v;
        }
    }
}

/// Where a handler writes its output registers: the register file itself
/// on the hcall path (r4 is `regs[0]`), or [`Outputs`] for the typed calls,
/// which record which registers were written. A handler writes its outputs
/// only once it knows the call succeeds (or is pending): an error writes
/// none, as in QEMU.
pub trait OutRegs {
    /// Writes r4.
    fn set_r4(&mut self, v: u64);
    /// Writes r5.
    fn set_r5(&mut self, v: u64);
    /// Writes r6.
    fn set_r6(&mut self, v: u64);
}

impl OutRegs for Regs {
    #[inline(always)]
    fn set_r4(&mut self, v: u64) {
        self[0] = v;
    }
    #[inline(always)]
    fn set_r5(&mut self, v: u64) {
        self[1] = v;
    }
    #[inline(always)]
    fn set_r6(&mut self, v: u64) {
        self[2] = v;
    }
}

impl OutRegs for Outputs {
    #[inline]
    fn set_r4(&mut self, v: u64) {
        self.r4 = Some(v);
    }
    #[inline]
    fn set_r5(&mut self, v: u64) {
        self.r5 = Some(v);
    }
    #[inline]
    fn set_r6(&mut self, v: u64) {
        self.r6 = Some(v);
    }
}

/// An hcall's registers as a handler sees them: the inputs r4..r12 and a
/// place for the outputs. On the hcall path both are the guest's register
/// file itself (one pointer, no copy); the typed calls use [`TypedFrame`],
/// which records the outputs apart from the inputs.
pub trait Frame: OutRegs {
    /// r4..r12 as the guest passed them.
    fn input(&self) -> &Regs;
}

impl Frame for Regs {
    #[inline(always)]
    fn input(&self) -> &Regs {
        self
    }
}

/// A [`Frame`] for typed calls: the inputs, and the outputs written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypedFrame {
    /// r4..r12.
    pub args: Regs,
    /// What the handler wrote.
    pub out: Outputs,
}

impl OutRegs for TypedFrame {
    #[inline]
    fn set_r4(&mut self, v: u64) {
        self.out.r4 = Some(v);
    }
    #[inline]
    fn set_r5(&mut self, v: u64) {
        self.out.r5 = Some(v);
    }
    #[inline]
    fn set_r6(&mut self, v: u64) {
        self.out.r6 = Some(v);
    }
}

impl Frame for TypedFrame {
    #[inline]
    fn input(&self) -> &Regs {
        &self.args
    }
}

/// The result of one SCM hcall: the r3 status and the output registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The status for r3.
    pub status: ReturnCode,
    /// The output registers the call defines.
    pub out: Outputs,
}

impl Outcome {
    /// A status with no output register.
    pub const fn status(status: ReturnCode) -> Self {
        Outcome {
            status,
            out: Outputs::NONE,
        }
    }

    /// A status with outputs.
    pub const fn with(status: ReturnCode, out: Outputs) -> Self {
        Outcome { status, out }
    }
}

impl From<ReturnCode> for Outcome {
    fn from(rc: ReturnCode) -> Self {
        Outcome::status(rc)
    }
}

/// One SCM hcall with its arguments, decoded from the registers.
///
/// DRC indexes stay raw 64-bit values here: which bits count depends on the
/// profile (QEMU keeps only the low 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// H_SCM_READ_METADATA (r4 drc, r5 offset, r6 length).
    ReadMetadata {
        /// DRC index.
        drc: u64,
        /// Byte offset in the label area.
        offset: u64,
        /// 1, 2, 4 or 8.
        len: u64,
    },
    /// H_SCM_WRITE_METADATA (r4 drc, r5 offset, r6 data, r7 length).
    WriteMetadata {
        /// DRC index.
        drc: u64,
        /// Byte offset in the label area.
        offset: u64,
        /// The bytes as a big-endian integer of `len` bytes.
        data: u64,
        /// 1, 2, 4 or 8.
        len: u64,
    },
    /// H_SCM_BIND_MEM (r4 drc, r5 first block, r6 count, r7 target, r8 token).
    BindMem {
        /// DRC index.
        drc: u64,
        /// First block.
        start: u64,
        /// Number of blocks.
        count: u64,
        /// Target address; [`BIND_ANY_ADDR`] lets the hypervisor choose.
        target: u64,
        /// Continue token, 0 for a new request.
        token: u64,
    },
    /// H_SCM_UNBIND_MEM (r4 drc, r5 address, r6 count, r7 token).
    UnbindMem {
        /// DRC index.
        drc: u64,
        /// Guest address of the first block.
        addr: u64,
        /// Number of blocks.
        count: u64,
        /// Continue token.
        token: u64,
    },
    /// H_SCM_QUERY_BLOCK_MEM_BINDING (r4 drc, r5 block).
    QueryBlockMemBinding {
        /// DRC index.
        drc: u64,
        /// Block index.
        block: u64,
    },
    /// H_SCM_QUERY_LOGICAL_MEM_BINDING (r4 address).
    QueryLogicalMemBinding {
        /// Guest address.
        addr: u64,
    },
    /// H_SCM_UNBIND_ALL (r4 scope, r5 drc, r6 token).
    UnbindAll {
        /// [`H_UNBIND_SCOPE_ALL`] or [`H_UNBIND_SCOPE_DRC`].
        scope: u64,
        /// DRC index (scope DRC only).
        drc: u64,
        /// Continue token.
        token: u64,
    },
    /// H_SCM_HEALTH (r4 drc).
    Health {
        /// DRC index.
        drc: u64,
    },
    /// H_SCM_PERFORMANCE_STATS (r4 drc, r5 buffer address, r6 buffer size).
    PerformanceStats {
        /// DRC index.
        drc: u64,
        /// Guest-physical buffer address, 0 for the size query.
        buf: u64,
        /// Buffer size, 0 for the size query.
        size: u64,
    },
    /// H_SCM_FLUSH (r4 drc, r5 token).
    Flush {
        /// DRC index.
        drc: u64,
        /// Continue token, 0 for a new request.
        token: u64,
    },
}

impl Request {
    /// Decodes an SCM hcall; `None` for any other opcode. Registers past the
    /// call's own arguments are ignored: the guest leaves junk there.
    pub fn decode(opcode: u64, r: &Regs) -> Option<Self> {
        Some(match opcode {
            H_SCM_READ_METADATA => Request::ReadMetadata {
                drc: r[0],
                offset: r[1],
                len: r[2],
            },
            H_SCM_WRITE_METADATA => Request::WriteMetadata {
                drc: r[0],
                offset: r[1],
                data: r[2],
                len: r[3],
            },
            H_SCM_BIND_MEM => Request::BindMem {
                drc: r[0],
                start: r[1],
                count: r[2],
                target: r[3],
                token: r[4],
            },
            H_SCM_UNBIND_MEM => Request::UnbindMem {
                drc: r[0],
                addr: r[1],
                count: r[2],
                token: r[3],
            },
            H_SCM_QUERY_BLOCK_MEM_BINDING => Request::QueryBlockMemBinding {
                drc: r[0],
                block: r[1],
            },
            H_SCM_QUERY_LOGICAL_MEM_BINDING => Request::QueryLogicalMemBinding { addr: r[0] },
            H_SCM_UNBIND_ALL => Request::UnbindAll {
                scope: r[0],
                drc: r[1],
                token: r[2],
            },
            H_SCM_HEALTH => Request::Health { drc: r[0] },
            H_SCM_PERFORMANCE_STATS => Request::PerformanceStats {
                drc: r[0],
                buf: r[1],
                size: r[2],
            },
            H_SCM_FLUSH => Request::Flush {
                drc: r[0],
                token: r[1],
            },
            _ => return None,
        })
    }

    /// The input registers r4.. of this request (the inverse of
    /// [`decode`](Self::decode)).
    pub const fn to_regs(&self) -> Regs {
        let mut r = [0u64; 9];
        match *self {
            Request::ReadMetadata { drc, offset, len } => {
                r[0] = drc;
                r[1] = offset;
                r[2] = len;
            }
            Request::WriteMetadata {
                drc,
                offset,
                data,
                len,
            } => {
                r[0] = drc;
                r[1] = offset;
                r[2] = data;
                r[3] = len;
            }
            Request::BindMem {
                drc,
                start,
                count,
                target,
                token,
            } => {
                r[0] = drc;
                r[1] = start;
                r[2] = count;
                r[3] = target;
                r[4] = token;
            }
            Request::UnbindMem {
                drc,
                addr,
                count,
                token,
            } => {
                r[0] = drc;
                r[1] = addr;
                r[2] = count;
                r[3] = token;
            }
            Request::QueryBlockMemBinding { drc, block } => {
                r[0] = drc;
                r[1] = block;
            }
            Request::QueryLogicalMemBinding { addr } => r[0] = addr,
            Request::UnbindAll { scope, drc, token } => {
                r[0] = scope;
                r[1] = drc;
                r[2] = token;
            }
            Request::Health { drc } => r[0] = drc,
            Request::PerformanceStats { drc, buf, size } => {
                r[0] = drc;
                r[1] = buf;
                r[2] = size;
            }
            Request::Flush { drc, token } => {
                r[0] = drc;
                r[1] = token;
            }
        }
        r
    }

    /// The opcode of this request.
    pub const fn opcode(&self) -> u64 {
        match self {
            Request::ReadMetadata { .. } => H_SCM_READ_METADATA,
            Request::WriteMetadata { .. } => H_SCM_WRITE_METADATA,
            Request::BindMem { .. } => H_SCM_BIND_MEM,
            Request::UnbindMem { .. } => H_SCM_UNBIND_MEM,
            Request::QueryBlockMemBinding { .. } => H_SCM_QUERY_BLOCK_MEM_BINDING,
            Request::QueryLogicalMemBinding { .. } => H_SCM_QUERY_LOGICAL_MEM_BINDING,
            Request::UnbindAll { .. } => H_SCM_UNBIND_ALL,
            Request::Health { .. } => H_SCM_HEALTH,
            Request::PerformanceStats { .. } => H_SCM_PERFORMANCE_STATS,
            Request::Flush { .. } => H_SCM_FLUSH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_return_code_sign_extends() {
        assert_eq!(H_PARAMETER.to_reg(), 0xFFFF_FFFF_FFFF_FFFC);
        assert_eq!(H_FUNCTION.to_reg(), 0xFFFF_FFFF_FFFF_FFFE);
        assert_eq!(H_P2.to_reg(), (-55i64) as u64);
        assert_eq!(ReturnCode::from_reg(0xFFFF_FFFF_FFFF_FFBC), H_OVERLAP);
        assert_eq!(H_LONG_BUSY_ORDER_10_MSEC.to_reg(), 9901);
    }

    #[test]
    fn test_names_round_trip() {
        for (code, name) in RETURN_CODES {
            assert_eq!(ReturnCode::by_name(name), Some(*code));
            assert_eq!(code.name(), Some(*name));
        }
        for (op, name) in SCM_HCALLS {
            assert_eq!(hcall_by_name(name), Some(op));
            assert_eq!(hcall_name(op), Some(name));
        }
        assert_eq!(hcall_name(0x58), None);
    }

    #[test]
    fn test_decode_ignores_junk_registers() {
        // H_SCM_HEALTH as the real guest made it: r5..r9 hold junk.
        let regs = [0x9000_0001, 0xc000_0000_011d_5600, 1, 0, 0x40, 4, 9, 9, 9];
        assert_eq!(
            Request::decode(H_SCM_HEALTH, &regs),
            Some(Request::Health { drc: 0x9000_0001 })
        );
        assert_eq!(Request::decode(0x58, &regs), None);
        assert_eq!(Request::decode(H_SCM_HEALTH + 1, &regs), None);
        for (op, _) in SCM_HCALLS {
            assert_eq!(Request::decode(op, &regs).unwrap().opcode(), op);
        }
    }

    #[test]
    fn test_long_busy() {
        assert!(H_LONG_BUSY_ORDER_1_MSEC.is_long_busy());
        assert!(H_LONG_BUSY_ORDER_100_SEC.is_long_busy());
        assert!(!H_BUSY.is_long_busy());
        assert!(!ReturnCode(9906).is_long_busy());
        assert_eq!(H_LONG_BUSY_ORDER_1_SEC.long_busy_msecs(), 1000);
    }

    #[test]
    fn test_health_bits_ibm_numbering() {
        assert_eq!(HealthBits::PAPR_PMEM_UNARMED.bits(), 0x8000_0000_0000_0000);
        assert_eq!(
            HealthBits::PAPR_PMEM_SHUTDOWN_DIRTY.bits(),
            0x4000_0000_0000_0000
        );
        assert_eq!(
            HealthBits::PAPR_PMEM_SCRUBBED_AND_LOCKED.bits(),
            0x0040_0000_0000_0000
        );
        // The example in Linux papr_hcalls.rst: bits 0, 1 and 5.
        let doc = HealthBits::from_bits_retain(0xC400_0000_0000_0000);
        assert!(doc.contains(
            HealthBits::PAPR_PMEM_UNARMED
                | HealthBits::PAPR_PMEM_SHUTDOWN_DIRTY
                | HealthBits::PAPR_PMEM_HEALTH_FATAL
        ));
    }

    #[test]
    fn test_outputs_only_touch_defined_registers() {
        let mut regs: Regs = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        Outputs {
            r4: None,
            r5: Some(50),
            r6: Some(60),
        }
        .apply(&mut regs);
        assert_eq!(regs, [1, 50, 60, 4, 5, 6, 7, 8, 9]);
    }
}
