// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! papr-scm's host traits over the VMM's callbacks: the label store of one
//! device, the host (guest memory, flush executor, bind hooks, clock) and
//! the event sink. Each holds the callbacks it calls, copied when the
//! device or machine is made, so no call looks anything up.

use core::ffi::c_void;
use core::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::vec::Vec;

use papr_scm::drc::DrcIndex;
use papr_scm::host::{
    BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, GuestMemoryError, StatsSource,
};
use papr_scm::label::{LabelError, LabelStore};
use papr_scm::rtas_error_log::{EventSink, HotplugAction, QueueFull, RtcTime};
use papr_scm::transcript::Directive;

use crate::types::{papr_scm_callbacks, papr_scm_rtc_time};

/// `papr_scm_callbacks.label_read`, once checked present.
type LabelReadFn = unsafe extern "C" fn(*mut c_void, u32, u64, *mut u8, usize) -> core::ffi::c_int;
/// `papr_scm_callbacks.label_write`, once checked present.
type LabelWriteFn =
    unsafe extern "C" fn(*mut c_void, u32, u64, *const u8, usize) -> core::ffi::c_int;
/// `papr_scm_callbacks.flush_start` and `flush_poll`.
type FlushFn = unsafe extern "C" fn(*mut c_void, u32, u64) -> u32;

/// `CHost::state`: a trace is open (guest memory and flush answers are
/// recorded, hcalls take the slow path).
pub(crate) const TRACING: u8 = 1;
/// `CHost::state`: a panic was caught; every entry but free refuses.
pub(crate) const BROKEN: u8 = 2;

#[cfg(feature = "test-hooks")]
pub(crate) static PANIC_NEXT_LABEL_ACCESS: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// The label area of one device, through `label_read` / `label_write`.
///
/// `pmem=on` backends persist every write (`label_flush` after it, QEMU's
/// `pmem_persist` in `nvdimm_write_label`); others make writes durable on
/// [`LabelStore::flush`]: when an H_SCM_FLUSH starts, at a reset and when
/// the device leaves (papr-scm's `Durability` policy, DESIGN.md "Label
/// durability").
#[derive(Debug)]
pub(crate) struct CLabel {
    opaque: *mut c_void,
    read: LabelReadFn,
    write: LabelWriteFn,
    flush: Option<unsafe extern "C" fn(*mut c_void, u32) -> core::ffi::c_int>,
    slot: u32,
    size: u64,
    every_write: bool,
}

impl CLabel {
    /// The store of the device `spec` places; `None` without the two
    /// required callbacks (checked when the machine is made).
    pub(crate) fn new(
        cb: &papr_scm_callbacks,
        spec: &papr_scm::config::DeviceSpec,
    ) -> Option<Self> {
        Some(CLabel {
            opaque: cb.opaque,
            read: cb.label_read?,
            write: cb.label_write?,
            flush: cb.label_flush,
            slot: spec.slot,
            size: spec.layout.label_size(),
            every_write: spec.pmem,
        })
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), LabelError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(LabelError::OutOfRange {
                offset,
                len,
                size: self.size,
            }),
        }
    }

    #[inline(always)]
    fn test_hook(&self) {
        #[cfg(feature = "test-hooks")]
        if PANIC_NEXT_LABEL_ACCESS.swap(false, Ordering::Relaxed) {
            panic!(
                "test hook: a panic inside the label callback path of slot {}",
                self.slot
            );
        }
    }
}

/// A callback's non-zero status as a label error (no allocation: a simple
/// `io::Error` holds only its kind).
fn failed() -> LabelError {
    LabelError::Io(std::io::ErrorKind::Other.into())
}

impl LabelStore for CLabel {
    fn size(&self) -> u64 {
        self.size
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
        self.check(offset, buf.len())?;
        self.test_hook();
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the
        // call; `read` and `opaque` are the VMM's, under the header's
        // callback contract; the range lies inside the label area.
        match unsafe { (self.read)(self.opaque, self.slot, offset, buf.as_mut_ptr(), buf.len()) } {
            0 => Ok(()),
            _ => Err(failed()),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
        self.check(offset, data.len())?;
        self.test_hook();
        // SAFETY: `data` is valid for reads of `data.len()` bytes for the
        // call; the callback contract as for `read`.
        if unsafe { (self.write)(self.opaque, self.slot, offset, data.as_ptr(), data.len()) } != 0 {
            return Err(failed());
        }
        if self.every_write {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LabelError> {
        let Some(f) = self.flush else { return Ok(()) };
        // SAFETY: the callback contract; no pointer is passed but opaque.
        match unsafe { f(self.opaque, self.slot) } {
            0 => Ok(()),
            _ => Err(failed()),
        }
    }
}

/// The machine's host: guest memory, the flush executor, bind hooks and
/// the guest's clock through the callbacks, and what a trace records.
#[derive(Debug)]
pub(crate) struct CHost {
    cb: papr_scm_callbacks,
    /// Guest RAM is `[0, ram_size)`. papr-scm's buffers (PERFORMANCE_STATS,
    /// RTAS work areas and event buffers) are the guest's RAM: Linux
    /// allocates them with kmalloc and in the RMA. An access that leaves RAM
    /// (into device memory, where the NVDIMMs are mapped) is refused before
    /// the callback, so the answer does not depend on what the VMM maps
    /// there and a trace replays against papr-scm's model of the guest.
    ram_size: u64,
    /// [`TRACING`] and [`BROKEN`].
    pub(crate) state: AtomicU8,
    /// With a trace open: the guest memory and flush answers of the call
    /// in progress (`mem` lines, `expect-mem` lines, `flush-status` lines).
    touched: Mutex<Vec<Directive>>,
}

impl CHost {
    pub(crate) fn new(cb: papr_scm_callbacks, ram_size: u64) -> Self {
        CHost {
            cb,
            ram_size,
            state: AtomicU8::new(0),
            touched: Mutex::new(Vec::new()),
        }
    }

    /// The callbacks.
    pub(crate) fn callbacks(&self) -> &papr_scm_callbacks {
        &self.cb
    }

    /// Whether `len` bytes at `gpa` lie wholly in guest RAM.
    fn in_ram(&self, gpa: u64, len: usize) -> bool {
        gpa.checked_add(len as u64)
            .is_some_and(|end| end <= self.ram_size)
    }

    #[inline(always)]
    fn tracing(&self) -> bool {
        self.state.load(Ordering::Relaxed) & TRACING != 0
    }

    fn touch(&self, d: Directive) {
        self.touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(d);
    }

    /// Takes what the call in progress touched.
    pub(crate) fn take_touched(&self) -> Vec<Directive> {
        core::mem::take(&mut *self.touched.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The event sink over `event_push` / `event_withdraw`.
    pub(crate) fn events(&self) -> CEvents {
        CEvents {
            opaque: self.cb.opaque,
            push: self.cb.event_push,
            withdraw: self.cb.event_withdraw,
        }
    }
}

impl GuestMemory for CHost {
    fn has_memory(&self) -> bool {
        self.cb.guest_read.is_some() && self.cb.guest_write.is_some()
    }

    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        let err = GuestMemoryError {
            gpa,
            len: buf.len(),
        };
        let f = self.cb.guest_read.ok_or(err)?;
        if !self.in_ram(gpa, buf.len()) {
            return Err(err);
        }
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the
        // call; the callback contract.
        if unsafe { f(self.cb.opaque, gpa, buf.as_mut_ptr(), buf.len()) } != 0 {
            return Err(err);
        }
        if self.tracing() {
            self.touch(Directive::Mem {
                addr: gpa,
                bytes: buf.to_vec(),
            });
        }
        Ok(())
    }

    fn write_guest(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        let err = GuestMemoryError {
            gpa,
            len: data.len(),
        };
        let f = self.cb.guest_write.ok_or(err)?;
        if !self.in_ram(gpa, data.len()) {
            return Err(err);
        }
        // SAFETY: `data` is valid for reads of `data.len()` bytes for the
        // call; the callback contract.
        if unsafe { f(self.cb.opaque, gpa, data.as_ptr(), data.len()) } != 0 {
            return Err(err);
        }
        if self.tracing() {
            self.touch(Directive::ExpectMem {
                addr: gpa,
                bytes: data.to_vec(),
            });
        }
        Ok(())
    }
}

/// A `papr_scm_flush_status` as papr-scm's; an unknown value is a failure
/// (the guest is told its data may not be durable, not that it is).
fn flush_status(v: u32) -> FlushStatus {
    match v {
        0 => FlushStatus::Pending,
        1 => FlushStatus::Done(true),
        _ => FlushStatus::Done(false),
    }
}

impl CHost {
    fn flush_call(&self, f: Option<FlushFn>, slot: u32, token: u64) -> FlushStatus {
        // Only a device that needs H_SCM_FLUSH starts one, and such a
        // device is refused without both callbacks: a missing one fails.
        let status = match f {
            // SAFETY: the callback contract; no pointer is passed but opaque.
            Some(f) => flush_status(unsafe { f(self.cb.opaque, slot, token) }),
            None => FlushStatus::Done(false),
        };
        if self.tracing() {
            self.touch(Directive::FlushStatus {
                slot,
                token,
                status,
            });
        }
        status
    }
}

impl FlushExecutor for CHost {
    fn flushes_data(&self) -> bool {
        self.cb.flush_start.is_some() && self.cb.flush_poll.is_some()
    }

    fn start_flush(&self, slot: u32, token: u64) -> FlushStatus {
        self.flush_call(self.cb.flush_start, slot, token)
    }

    fn poll_flush(&self, slot: u32, token: u64) -> FlushStatus {
        self.flush_call(self.cb.flush_poll, slot, token)
    }

    fn forget_flush(&self, slot: u32, token: u64) {
        if let Some(f) = self.cb.flush_forget {
            // SAFETY: the callback contract; no pointer is passed but opaque.
            unsafe { f(self.cb.opaque, slot, token) }
        }
    }
}

impl BindEvents for CHost {
    fn bound(&self, slot: u32, addr: u64, blocks: u64) {
        if let Some(f) = self.cb.bound {
            // SAFETY: the callback contract; no pointer is passed but opaque.
            unsafe { f(self.cb.opaque, slot, addr, blocks) }
        }
    }

    fn unbound(&self, slot: u32, addr: u64, blocks: u64) {
        if let Some(f) = self.cb.unbound {
            // SAFETY: the callback contract; no pointer is passed but opaque.
            unsafe { f(self.cb.opaque, slot, addr, blocks) }
        }
    }
}

// The default statistics (MemLife 100, the rest 0), as replay answers.
impl StatsSource for CHost {}

impl EventSignal for CHost {
    // The VMM's queue raises its own interrupt: no `pulse`.

    fn guest_time(&self) -> RtcTime {
        let Some(f) = self.cb.guest_time else {
            return RtcTime::default();
        };
        let mut t = papr_scm_rtc_time::default();
        // SAFETY: `t` is a valid, aligned papr_scm_rtc_time for the call;
        // the callback contract.
        unsafe { f(self.cb.opaque, &mut t) };
        RtcTime {
            year: t.year,
            month: t.month,
            day: t.day,
            hour: t.hour,
            minute: t.minute,
            second: t.second,
        }
    }
}

/// The VMM's event queue, through `event_push` / `event_withdraw`.
#[derive(Debug)]
pub(crate) struct CEvents {
    opaque: *mut c_void,
    push: Option<unsafe extern "C" fn(*mut c_void, u32, u32) -> core::ffi::c_int>,
    withdraw: Option<unsafe extern "C" fn(*mut c_void, u32)>,
}

impl CEvents {
    /// Whether the VMM gave a queue at all.
    pub(crate) fn present(&self) -> bool {
        self.push.is_some()
    }
}

impl EventSink for CEvents {
    fn push(
        &mut self,
        action: HotplugAction,
        drc: DrcIndex,
        _time: RtcTime,
    ) -> Result<(), QueueFull> {
        let f = self.push.ok_or(QueueFull)?;
        // SAFETY: the callback contract; no pointer is passed but opaque.
        match unsafe { f(self.opaque, action as u32, drc.raw()) } {
            0 => Ok(()),
            _ => Err(QueueFull),
        }
    }

    /// The VMM drops the events; how many is its own business (0 here).
    fn withdraw(&mut self, drc: DrcIndex) -> usize {
        if let Some(f) = self.withdraw {
            // SAFETY: the callback contract; no pointer is passed but opaque.
            unsafe { f(self.opaque, drc.raw()) }
        }
        0
    }
}
