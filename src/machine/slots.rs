// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Slot tables: where a machine keeps its devices, one cell per PMEM slot.

use core::cell::RefCell;

use crate::device::Device;
use crate::label::LabelStore;

/// Storage for the devices of a machine, one cell per PMEM slot.
pub trait SlotTable {
    /// The devices' label store.
    type Label: LabelStore;

    /// Number of slots (PMEM connectors).
    fn slot_count(&self) -> u32;

    /// Runs `f` on the device in `slot`; `None` if the slot is out of range,
    /// empty, or (for `RefCell` cells) already borrowed by a re-entrant call.
    fn with_slot<R>(&self, slot: u32, f: impl FnOnce(&mut Device<Self::Label>) -> R) -> Option<R>;

    /// [`with_slot`](Self::with_slot) for a slot number as wide as the
    /// guest's DRC index made it (`drc - 0x9000_0000`, unchecked): a table
    /// that overrides this makes an hcall's DRC check its one bounds check.
    #[inline]
    fn with_index<R>(
        &self,
        index: u64,
        f: impl FnOnce(&mut Device<Self::Label>) -> R,
    ) -> Option<R> {
        self.with_slot(u32::try_from(index).ok()?, f)
    }

    /// A counter that changes whenever a device is inserted or removed, so
    /// the machine knows when to re-index its devices by address. The
    /// default, 0 for ever, is for tables whose devices are in place before
    /// the machine is made ([`LocalSlots`]); call `Machine::reindex` after
    /// changing such a table.
    fn generation(&self) -> u64 {
        0
    }

    /// Puts `device` into its slot (hot-plug). The default table cannot,
    /// and hands the device back with [`InsertErrorKind::Unsupported`].
    #[allow(clippy::result_large_err)] // the device comes back by value (no heap)
    fn put(
        &self,
        device: Device<Self::Label>,
    ) -> Result<(), (InsertErrorKind, Device<Self::Label>)> {
        Err((InsertErrorKind::Unsupported, device))
    }

    /// Takes the device out of `slot` (the end of an unplug); `None` if
    /// the slot is empty or the table cannot remove devices (the default).
    fn take(&self, slot: u32) -> Option<Device<Self::Label>> {
        let _ = slot;
        None
    }
}

/// Why a slot table refused a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertErrorKind {
    /// The slot already holds a device (remove it first).
    Occupied,
    /// The slot is past the table's last slot.
    OutOfRange,
    /// The table cannot insert devices after it was built.
    Unsupported,
}

/// Slots in caller-provided `RefCell`s: no allocation, not `Sync`.
///
/// A re-entrant call for the same slot (a host hook calling back in) finds
/// the cell borrowed and answers H_PARAMETER rather than panicking.
///
/// ```
/// use core::cell::RefCell;
/// use papr_scm::device::Device;
/// use papr_scm::label::SliceLabelStore;
/// use papr_scm::machine::{LocalSlots, SlotTable};
///
/// let cells: [RefCell<Option<Device<SliceLabelStore>>>; 4] = [const { RefCell::new(None) }; 4];
/// let slots = LocalSlots::new(&cells);
/// assert_eq!(slots.slot_count(), 4);
/// assert_eq!(slots.with_slot(0, |_| ()), None); // empty
/// ```
#[derive(Debug)]
pub struct LocalSlots<'a, L> {
    cells: &'a [RefCell<Option<Device<L>>>],
    /// `cells.len()`, at most `u32::MAX`: kept so the DRC check is one load.
    count: u32,
}

impl<'a, L: LabelStore> LocalSlots<'a, L> {
    /// One cell per slot; `cells.len()` is the slot count.
    pub fn new(cells: &'a [RefCell<Option<Device<L>>>]) -> Self {
        let count = u32::try_from(cells.len()).unwrap_or(u32::MAX);
        LocalSlots {
            // Slots past u32::MAX have no DRC index: not in the table.
            cells: &cells[..count as usize],
            count,
        }
    }
}

impl<L: LabelStore> SlotTable for LocalSlots<'_, L> {
    type Label = L;

    #[inline]
    fn slot_count(&self) -> u32 {
        self.count
    }

    #[inline]
    fn with_slot<R>(&self, slot: u32, f: impl FnOnce(&mut Device<L>) -> R) -> Option<R> {
        self.with_index(slot.into(), f)
    }

    // Always inlined: each hcall's handler then holds its cell check and
    // borrow itself, with no call and no result returned through memory.
    #[inline(always)]
    fn with_index<R>(&self, index: u64, f: impl FnOnce(&mut Device<L>) -> R) -> Option<R> {
        let cell = self.cells.get(usize::try_from(index).ok()?)?;
        let mut dev = cell.try_borrow_mut().ok()?;
        dev.as_mut().map(f)
    }

    fn put(&self, device: Device<L>) -> Result<(), (InsertErrorKind, Device<L>)> {
        let Some(cell) = self.cells.get(device.spec().slot as usize) else {
            return Err((InsertErrorKind::OutOfRange, device));
        };
        match cell.try_borrow_mut() {
            Ok(mut c) if c.is_none() => {
                *c = Some(device);
                Ok(())
            }
            _ => Err((InsertErrorKind::Occupied, device)),
        }
    }

    fn take(&self, slot: u32) -> Option<Device<L>> {
        self.cells.get(slot as usize)?.try_borrow_mut().ok()?.take()
    }
}

#[cfg(feature = "std")]
pub use self::shared::{InsertError, SharedSlots};

#[cfg(feature = "std")]
mod shared {
    use std::boxed::Box;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::vec::Vec;

    // parking_lot: a lock and an unlock are one atomic each, without std's
    // poison bookkeeping (a thread-local read per lock) on every hcall.
    use parking_lot::Mutex;

    use thiserror::Error;

    use super::{InsertErrorKind, SlotTable};
    use crate::device::Device;
    use crate::label::LabelStore;

    /// A refused insert, handing the device back.
    #[derive(Error)]
    #[error("slot {slot}: {}", match .kind {
        InsertErrorKind::Occupied => "already holds a device",
        InsertErrorKind::OutOfRange => "is past the last slot of the table",
        InsertErrorKind::Unsupported => "cannot take devices after it was built",
    })]
    pub struct InsertError<L> {
        /// The device's slot.
        pub slot: u32,
        /// Why.
        pub kind: InsertErrorKind,
        /// The device, untouched.
        pub device: Box<Device<L>>,
    }

    impl<L> core::fmt::Debug for InsertError<L> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("InsertError")
                .field("slot", &self.slot)
                .field("kind", &self.kind)
                .finish_non_exhaustive()
        }
    }

    /// Slots behind one mutex each (`parking_lot`): `Sync`, for multi-vCPU
    /// VMMs; vCPUs on different devices never wait on each other.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
    /// use papr_scm::device::Device;
    /// use papr_scm::hcall::{H_SCM_HEALTH, H_SUCCESS};
    /// use papr_scm::label::VecLabelStore;
    /// use papr_scm::machine::{Machine, SharedSlots};
    ///
    /// let config = MachineConfig::new(2 << 30, 8 << 30, 4);
    /// let mut planner = Planner::new(config)?;
    /// let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
    /// let spec = planner.plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))?;
    /// let slots = SharedSlots::new(config.slots);
    /// slots.insert(Device::new(spec, VecLabelStore::new(128 << 10)))?;
    /// // A second device for slot 0 is refused, not swapped in.
    /// assert!(slots.insert(Device::new(spec, VecLabelStore::new(128 << 10))).is_err());
    ///
    /// let machine = Arc::new(Machine::new(&config, slots));
    /// let vcpu = {
    ///     let m = Arc::clone(&machine);
    ///     std::thread::spawn(move || {
    ///         let mut regs = [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0];
    ///         m.handle(H_SCM_HEALTH, &mut regs)
    ///     })
    /// };
    /// assert_eq!(vcpu.join().unwrap(), Some(H_SUCCESS));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub struct SharedSlots<L> {
        cells: Box<[Mutex<Option<Device<L>>>]>,
        /// Bumped by every insert and remove.
        generation: AtomicU64,
    }

    /// Threads parking_lot's table is known to be sized for.
    static RESERVED: AtomicUsize = AtomicUsize::new(0);

    impl<L: LabelStore> SharedSlots<L> {
        /// Sizes parking_lot's process-wide table of waiting threads for
        /// `threads` threads at once, so that no vCPU allocates when it
        /// first waits for a busy slot.
        ///
        /// A slot's lock costs no allocation, but the first time a thread
        /// waits on any `parking_lot` lock, parking_lot records the thread
        /// and grows its table to three buckets per thread alive (two
        /// allocations each time it grows; it never shrinks). Call this
        /// with the number of vCPU threads (and any other thread that
        /// makes hcalls) before starting them: it runs `threads` short
        /// threads that each wait once, all alive together. Later calls
        /// for as many threads or fewer do nothing.
        pub fn reserve_waiters(threads: usize) {
            if RESERVED.load(Ordering::Acquire) >= threads {
                return;
            }
            let all = std::sync::Arc::new(std::sync::Barrier::new(threads));
            let helpers: Vec<_> = (0..threads)
                .map(|_| {
                    let all = std::sync::Arc::clone(&all);
                    std::thread::spawn(move || {
                        // A wait with no time to wait: parking_lot records
                        // the thread (and grows its table) first.
                        let m = Mutex::new(());
                        let mut g = m.lock();
                        parking_lot::Condvar::new().wait_for(&mut g, std::time::Duration::ZERO);
                        drop(g);
                        // Every helper recorded at once: the table fits them all.
                        all.wait();
                    })
                })
                .collect();
            for h in helpers {
                let _ = h.join();
            }
            RESERVED.fetch_max(threads, Ordering::AcqRel);
        }

        /// `slots` empty slots.
        pub fn new(slots: u32) -> Self {
            SharedSlots {
                cells: (0..slots)
                    .map(|_| Mutex::new(None))
                    .collect::<Vec<_>>()
                    .into(),
                generation: AtomicU64::new(0),
            }
        }

        /// Puts `device` into its slot. An occupied slot or one past the
        /// table is refused and the device handed back: replacing a device
        /// the guest may still use is a remove, then an insert.
        pub fn insert(&self, device: Device<L>) -> Result<(), InsertError<L>> {
            let slot = device.spec().slot;
            let Some(cell) = self.cells.get(slot as usize) else {
                return Err(InsertError {
                    slot,
                    kind: InsertErrorKind::OutOfRange,
                    device: Box::new(device),
                });
            };
            let mut g = cell.lock();
            if g.is_some() {
                return Err(InsertError {
                    slot,
                    kind: InsertErrorKind::Occupied,
                    device: Box::new(device),
                });
            }
            *g = Some(device);
            self.generation.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }

        /// Takes the device out of `slot`.
        pub fn remove(&self, slot: u32) -> Option<Device<L>> {
            let cell = self.cells.get(slot as usize)?;
            let d = cell.lock().take();
            if d.is_some() {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            d
        }
    }

    impl<L: LabelStore> SlotTable for SharedSlots<L> {
        type Label = L;

        #[inline]
        fn slot_count(&self) -> u32 {
            u32::try_from(self.cells.len()).unwrap_or(u32::MAX)
        }

        #[inline]
        fn with_slot<R>(&self, slot: u32, f: impl FnOnce(&mut Device<L>) -> R) -> Option<R> {
            self.with_index(slot.into(), f)
        }

        // Always inlined, as for `LocalSlots`.
        #[inline(always)]
        fn with_index<R>(&self, index: u64, f: impl FnOnce(&mut Device<L>) -> R) -> Option<R> {
            let cell = self.cells.get(usize::try_from(index).ok()?)?;
            // No poisoning: a handler never panics, and if a host hook did,
            // the device state is still consistent between hcalls.
            cell.lock().as_mut().map(f)
        }

        #[inline]
        fn generation(&self) -> u64 {
            self.generation.load(Ordering::Acquire)
        }

        fn put(&self, device: Device<L>) -> Result<(), (InsertErrorKind, Device<L>)> {
            self.insert(device).map_err(|e| (e.kind, *e.device))
        }

        fn take(&self, slot: u32) -> Option<Device<L>> {
            self.remove(slot)
        }
    }
}
