// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The small traits through which a VMM plugs its host into the hcall
//! handlers, each with a no-op or simple default.
//!
//! A VMM implements the ones it cares about on its own host type and writes
//! an empty `impl` for the rest; [`Host`] is then implemented automatically.
//! All methods take `&self` so that hcalls on different vCPUs can share the
//! host; use interior mutability where state is needed.

use thiserror::Error;

use crate::rtas_error_log::{EventSource, RtcTime};

/// A guest memory access failed (address not backed by guest RAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("guest memory: {len} bytes at {gpa:#x} are not accessible")]
pub struct GuestMemoryError {
    /// Guest-physical address of the access.
    pub gpa: u64,
    /// Its length.
    pub len: usize,
}

/// Guest RAM, for the H_SCM_PERFORMANCE_STATS buffer.
///
/// The default has no memory: [`has_memory`](Self::has_memory) is false and
/// every access fails, so PERFORMANCE_STATS answers H_UNSUPPORTED, which
/// Linux takes quietly as "no statistics" (no sysfs file, no PMU), rather
/// than advertising a buffer size and failing every read. A host that
/// implements the accesses says so with `has_memory`. With the `vm-memory`
/// feature, [`VmMemory`] adapts any `vm_memory::GuestMemory`.
///
/// The name is this crate's: a VMM that also imports
/// `vm_memory::GuestMemory` uses the adapter, or imports this one as
/// `papr_scm::host::GuestMemory as ScmGuestMemory`. Renaming it would make
/// every other host trait read differently for one collision.
pub trait GuestMemory {
    /// Whether the accesses below reach guest RAM. Answer true when you
    /// implement them; the default accesses always fail.
    fn has_memory(&self) -> bool {
        false
    }

    /// Reads `buf.len()` bytes at guest-physical `gpa`.
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        let _ = buf;
        Err(GuestMemoryError {
            gpa,
            len: buf.len(),
        })
    }

    /// Writes `data` at guest-physical `gpa`.
    fn write_guest(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        Err(GuestMemoryError {
            gpa,
            len: data.len(),
        })
    }
}

/// Where a flush of a device's backing store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStatus {
    /// Still running: the guest is told to retry with its token.
    Pending,
    /// Finished; `false` means the backing store reported an error (the
    /// guest gets H_HARDWARE, QEMU's answer when `fdatasync` fails).
    Done(bool),
}

/// Flushes a device's data to stable storage for H_SCM_FLUSH.
///
/// The data region is mapped by the VMM, so only the VMM can flush it
/// (QEMU: `fdatasync` on the backend, or a libpmem persist). The default
/// completes at once with success and flushes nothing, and says so with
/// [`flushes_data`](Self::flushes_data): a machine with a device that needs
/// H_SCM_FLUSH refuses such a host at build time
/// ([`crate::machine::BuildError::NoFlushExecutor`]).
///
/// # Tokens
///
/// The machine names every flush by `(slot, token)`. A slot's tokens only
/// grow across reset and restore, and the machine calls
/// [`forget_flush`](Self::forget_flush) for every record it drops, so an
/// executor that keys its results by `(slot, token)` and frees them there
/// (or when a poll collects them) never answers one request with
/// another's result. With `std`,
/// [`FileFlusher`] is QEMU's executor: `fdatasync` of the backing file on a
/// worker thread.
pub trait FlushExecutor {
    /// Whether [`start_flush`](Self::start_flush) really makes the data
    /// durable. Answer true when you implement the flush; the default does
    /// nothing.
    fn flushes_data(&self) -> bool {
        false
    }

    /// Starts a flush of slot `slot` for the guest's request `token`.
    fn start_flush(&self, slot: u32, token: u64) -> FlushStatus {
        let _ = (slot, token);
        FlushStatus::Done(true)
    }

    /// Polls a flush that [`start_flush`](Self::start_flush) left pending.
    fn poll_flush(&self, slot: u32, token: u64) -> FlushStatus {
        let _ = (slot, token);
        FlushStatus::Done(true)
    }

    /// papr-scm dropped its record of the flush `token` of `slot` (a reset, a release or a
    /// restore): the guest can no longer poll it, so the executor may forget its result.
    fn forget_flush(&self, slot: u32, token: u64) {
        let _ = (slot, token);
    }

    /// Whether [`start_flush`](Self::start_flush) for `slot` really makes
    /// its data durable: [`flushes_data`](Self::flushes_data) by default.
    /// An executor with a table of slots answers false past its table, so
    /// a machine refuses a device there that needs H_SCM_FLUSH
    /// ([`crate::machine::BuildError::NoFlushExecutor`],
    /// [`crate::machine::PlugError::NoFlushExecutor`]) instead of
    /// completing its flushes with nothing synced.
    fn flushes_slot(&self, slot: u32) -> bool {
        let _ = slot;
        self.flushes_data()
    }
}

/// Called when the guest binds or unbinds blocks (`papr` profile only; in
/// the `qemu` profile the region is mapped at plug time and bind keeps no
/// state). A VMM that maps lazily maps and unmaps here.
pub trait BindEvents {
    /// `blocks` blocks starting at guest address `addr` are now bound.
    fn bound(&self, slot: u32, addr: u64, blocks: u64) {
        let _ = (slot, addr, blocks);
    }

    /// `blocks` blocks starting at guest address `addr` are now unbound.
    fn unbound(&self, slot: u32, addr: u64, blocks: u64) {
        let _ = (slot, addr, blocks);
    }
}

/// Values for H_SCM_PERFORMANCE_STATS.
///
/// The default reports `MemLife ` (life remaining, percent) as 100 and every
/// other statistic as 0.
pub trait StatsSource {
    /// The value of statistic `id` (one of [`crate::stats::STAT_IDS`]) of
    /// slot `slot`.
    fn stat(&self, slot: u32, id: &[u8; 8]) -> u64 {
        let _ = slot;
        crate::stats::default_stat(id)
    }
}

/// The VMM's part of a hotplug event: the interrupt and the clock.
///
/// papr-scm queues the event and answers `check-exception`; raising the
/// event source's interrupt (XICS or XIVE) and the guest's time of day
/// are the VMM's. The defaults raise nothing and stamp 0000-00-00.
pub trait EventSignal {
    /// Pulses the interrupt of `source`: an event is waiting there (after a
    /// plug or unplug request, and again after a `check-exception` or
    /// `event-scan` that left events queued, as QEMU does for its
    /// edge-triggered sources).
    fn pulse(&self, source: EventSource) {
        let _ = source;
    }

    /// The guest's time of day, for the event's BCD stamp.
    fn guest_time(&self) -> RtcTime {
        RtcTime::default()
    }
}

/// Everything the hcall and RTAS handlers need from the host.
///
/// The machine calls these with a device's cell held (a bind event, a
/// flush start or poll, under the slot's lock): a host must not call back
/// into the machine from them (see the `machine` module's locking notes).
pub trait Host: GuestMemory + FlushExecutor + BindEvents + StatsSource + EventSignal {}

impl<T: GuestMemory + FlushExecutor + BindEvents + StatsSource + EventSignal + ?Sized> Host for T {}

/// A host with every default: no guest memory (PERFORMANCE_STATS answers
/// H_UNSUPPORTED), no flushing (a device needing H_SCM_FLUSH is refused at
/// build time), no bind hooks, default statistics. For `no_std` VMMs whose
/// devices are plain NVDIMMs, and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoHost;

impl GuestMemory for NoHost {}
impl FlushExecutor for NoHost {}
impl BindEvents for NoHost {}
impl StatsSource for NoHost {}
impl EventSignal for NoHost {}

#[cfg(feature = "std")]
mod file_flusher;
#[cfg(feature = "std")]
pub use file_flusher::{FileFlusher, FlusherError};
#[cfg(feature = "vm-memory")]
mod vm_memory;
#[cfg(feature = "vm-memory")]
pub use self::vm_memory::VmMemory;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_no_host_defaults() {
        let h = NoHost;
        let mut b = [0u8; 4];
        assert_eq!(
            h.read_guest(0x1000, &mut b),
            Err(GuestMemoryError {
                gpa: 0x1000,
                len: 4
            })
        );
        assert!(h.write_guest(0, &b).is_err());
        assert!(!h.has_memory() && !h.flushes_data());
        assert_eq!(h.start_flush(0, 1), FlushStatus::Done(true));
        assert_eq!(h.poll_flush(0, 1), FlushStatus::Done(true));
        h.forget_flush(0, 1);
        h.bound(0, 0, 1);
        h.unbound(0, 0, 1);
        assert_eq!(h.stat(0, b"MemLife "), 100);
        assert_eq!(h.stat(0, b"CtlResCt"), 0);
    }
}
