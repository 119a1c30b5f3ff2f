// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The SCM devices of a machine, by slot, and the register-level hcall entry.
//!
//! # Locking
//!
//! A [`Machine`] needs only `&self`: each slot sits in its own cell, so
//! hcalls for different devices never wait on each other. [`SharedSlots`]
//! (with `std`) has one `Mutex` per slot and is `Sync`; [`LocalSlots`] uses
//! `RefCell` for single-threaded and `no_std` VMMs. Calls that span devices
//! (H_SCM_UNBIND_ALL over the partition, H_SCM_QUERY_LOGICAL_MEM_BINDING)
//! take the slots one at a time and never hold two, so no lock order
//! exists to get wrong. Host hooks run with the device's cell held and must
//! not call back into the machine for the same slot.

use core::cell::RefCell;

use crate::config::Profile;
use crate::device::{Ctx, Device};
use crate::drc::DrcIndex;
use crate::hcall::*;
use crate::host::{Host, NoHost};
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
}

/// Slots in caller-provided `RefCell`s: no allocation, not `Sync`.
#[derive(Debug)]
pub struct LocalSlots<'a, L> {
    cells: &'a [RefCell<Option<Device<L>>>],
}

impl<'a, L: LabelStore> LocalSlots<'a, L> {
    /// One cell per slot; `cells.len()` is the slot count.
    pub fn new(cells: &'a [RefCell<Option<Device<L>>>]) -> Self {
        LocalSlots { cells }
    }
}

impl<L: LabelStore> SlotTable for LocalSlots<'_, L> {
    type Label = L;

    fn slot_count(&self) -> u32 {
        u32::try_from(self.cells.len()).unwrap_or(u32::MAX)
    }

    fn with_slot<R>(&self, slot: u32, f: impl FnOnce(&mut Device<L>) -> R) -> Option<R> {
        let cell = self.cells.get(slot as usize)?;
        let mut dev = cell.try_borrow_mut().ok()?;
        dev.as_mut().map(f)
    }
}

#[cfg(feature = "std")]
pub use self::shared::SharedSlots;

#[cfg(feature = "std")]
mod shared {
    use std::boxed::Box;
    use std::sync::Mutex;
    use std::vec::Vec;

    use super::SlotTable;
    use crate::device::Device;
    use crate::label::LabelStore;

    /// Slots behind one `Mutex` each: `Sync`, for multi-vCPU VMMs.
    #[derive(Debug)]
    pub struct SharedSlots<L> {
        cells: Box<[Mutex<Option<Device<L>>>]>,
    }

    impl<L: LabelStore> SharedSlots<L> {
        /// `slots` empty slots.
        pub fn new(slots: u32) -> Self {
            SharedSlots {
                cells: (0..slots)
                    .map(|_| Mutex::new(None))
                    .collect::<Vec<_>>()
                    .into(),
            }
        }

        /// Puts `device` into its slot, returning what was there. A device
        /// whose slot is out of range is handed back as an error.
        pub fn insert(&self, device: Device<L>) -> Result<Option<Device<L>>, Box<Device<L>>> {
            match self.cells.get(device.spec().slot as usize) {
                Some(cell) => {
                    let mut g = cell.lock().unwrap_or_else(|e| e.into_inner());
                    Ok(g.replace(device))
                }
                None => Err(Box::new(device)),
            }
        }

        /// Takes the device out of `slot`.
        pub fn remove(&self, slot: u32) -> Option<Device<L>> {
            let cell = self.cells.get(slot as usize)?;
            cell.lock().unwrap_or_else(|e| e.into_inner()).take()
        }
    }

    impl<L: LabelStore> SlotTable for SharedSlots<L> {
        type Label = L;

        fn slot_count(&self) -> u32 {
            u32::try_from(self.cells.len()).unwrap_or(u32::MAX)
        }

        fn with_slot<R>(&self, slot: u32, f: impl FnOnce(&mut Device<L>) -> R) -> Option<R> {
            let cell = self.cells.get(slot as usize)?;
            // A handler never panics; if a host hook did, the device state is
            // still consistent between hcalls, so keep serving it.
            let mut g = cell.lock().unwrap_or_else(|e| e.into_inner());
            g.as_mut().map(f)
        }
    }
}

/// The SCM side of a pseries machine: devices by slot, the profile and the
/// host.
#[derive(Debug)]
pub struct Machine<S, H = NoHost> {
    profile: Profile,
    slots: S,
    host: H,
}

impl<S: SlotTable> Machine<S, NoHost> {
    /// A machine with the default host.
    pub fn new(profile: Profile, slots: S) -> Self {
        Machine {
            profile,
            slots,
            host: NoHost,
        }
    }
}

impl<S: SlotTable, H: Host> Machine<S, H> {
    /// A machine with a host of the VMM's.
    pub fn with_host(profile: Profile, slots: S, host: H) -> Self {
        Machine {
            profile,
            slots,
            host,
        }
    }

    /// The hcall profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// The slot table.
    pub fn slots(&self) -> &S {
        &self.slots
    }

    /// Runs `f` on the device in `slot` (for fault injection, snapshots and
    /// inspection); `None` if the slot is empty.
    pub fn with_device<R>(
        &self,
        slot: u32,
        f: impl FnOnce(&mut Device<S::Label>) -> R,
    ) -> Option<R> {
        self.slots.with_slot(slot, f)
    }

    /// The register-level entry for an hcall exit: `opcode` from r3, `regs`
    /// r4..r12. Returns the r3 status, or `None` (registers untouched) when
    /// the opcode is not an SCM hcall, so the VMM can route it elsewhere.
    /// Only the output registers the hcall defines are written.
    pub fn handle(&self, opcode: u64, regs: &mut Regs) -> Option<ReturnCode> {
        let req = Request::decode(opcode, regs)?;
        let outcome = self.call(req);
        outcome.out.apply(regs);
        Some(outcome.status)
    }

    /// Runs one decoded hcall.
    pub fn call(&self, req: Request) -> Outcome {
        let ctx = Ctx {
            profile: self.profile,
            host: &self.host,
        };
        let qemu = self.profile == Profile::Qemu;
        match req {
            Request::ReadMetadata { drc, offset, len } => {
                self.on_device(drc, |d| d.h_scm_read_metadata(offset, len))
            }
            Request::WriteMetadata {
                drc,
                offset,
                data,
                len,
            } => self.on_device(drc, |d| d.h_scm_write_metadata(offset, data, len)),
            Request::BindMem {
                drc,
                start,
                count,
                target,
                token,
            } => self.on_device(drc, |d| d.h_scm_bind_mem(ctx, start, count, target, token)),
            Request::UnbindMem {
                drc,
                addr,
                count,
                token,
            } => self.on_device(drc, |d| d.h_scm_unbind_mem(ctx, addr, count, token)),
            // QEMU has no handler for these: its dispatcher answers H_FUNCTION
            // before looking at any argument (spapr_hypercall).
            Request::QueryBlockMemBinding { .. }
            | Request::QueryLogicalMemBinding { .. }
            | Request::PerformanceStats { .. }
                if qemu =>
            {
                H_FUNCTION.into()
            }
            Request::QueryBlockMemBinding { drc, block } => {
                self.on_device(drc, |d| d.h_scm_query_block_mem_binding(block))
            }
            Request::QueryLogicalMemBinding { addr } => self.query_logical(addr),
            Request::UnbindAll { scope, drc, token } => self.unbind_all(ctx, scope, drc, token),
            Request::Health { drc } => self.on_device(drc, |d| d.h_scm_health(self.profile)),
            Request::PerformanceStats { drc, buf, size } => {
                self.on_device(drc, |d| d.h_scm_performance_stats(ctx, buf, size))
            }
            Request::Flush { drc, token } => self.on_device(drc, |d| d.h_scm_flush(ctx, token)),
        }
    }

    /// The slot a guest DRC index names, if it is a PMEM index of this
    /// machine; O(1).
    pub fn slot_of(&self, drc: u64) -> Option<u32> {
        let d = DrcIndex::from_reg(drc, self.profile == Profile::Papr)?;
        (d.slot() < self.slots.slot_count()).then_some(d.slot())
    }

    /// Runs a handler on the device `drc` names; an unknown index, a
    /// non-PMEM index or an empty slot gets H_PARAMETER (QEMU's "valid PMEM
    /// DRC" test).
    fn on_device(&self, drc: u64, f: impl FnOnce(&mut Device<S::Label>) -> Outcome) -> Outcome {
        self.slot_of(drc)
            .and_then(|slot| self.slots.with_slot(slot, f))
            .unwrap_or(Outcome::status(H_PARAMETER))
    }

    fn unbind_all(&self, ctx: Ctx<'_, H>, scope: u64, drc: u64, token: u64) -> Outcome {
        // QEMU checks the token before the scope.
        if token != 0 {
            return H_P4.into();
        }
        let count = match scope {
            H_UNBIND_SCOPE_DRC => {
                let n = self
                    .slot_of(drc)
                    .and_then(|slot| self.slots.with_slot(slot, |d| d.unbind_all(ctx)));
                match n {
                    Some(n) => n,
                    None => return H_P2.into(),
                }
            }
            H_UNBIND_SCOPE_ALL => (0..self.slots.slot_count())
                .filter_map(|slot| self.slots.with_slot(slot, |d| d.unbind_all(ctx)))
                .fold(0u64, u64::saturating_add),
            _ => return H_PARAMETER.into(),
        };
        // The guest reads r4 as the continue token; QEMU leaves the scope
        // there, the papr profile says "done" explicitly.
        let r4 = match self.profile {
            Profile::Qemu => None,
            Profile::Papr => Some(0),
        };
        Outcome::with(
            H_SUCCESS,
            Outputs {
                r4,
                r5: Some(count),
                r6: None,
            },
        )
    }

    fn query_logical(&self, addr: u64) -> Outcome {
        for slot in 0..self.slots.slot_count() {
            let hit = self
                .slots
                .with_slot(slot, |d| d.block_at(addr).map(|b| (d.spec().drc.raw(), b)))
                .flatten();
            if let Some((drc, block)) = hit {
                return Outcome::with(
                    H_SUCCESS,
                    Outputs {
                        r4: Some(u64::from(drc)),
                        r5: Some(block),
                        r6: None,
                    },
                );
            }
        }
        H_NOT_FOUND.into()
    }

    /// H_SCM_READ_METADATA as a typed call.
    pub fn h_scm_read_metadata(&self, drc: u64, offset: u64, len: u64) -> Outcome {
        self.call(Request::ReadMetadata { drc, offset, len })
    }

    /// H_SCM_WRITE_METADATA as a typed call.
    pub fn h_scm_write_metadata(&self, drc: u64, offset: u64, data: u64, len: u64) -> Outcome {
        self.call(Request::WriteMetadata {
            drc,
            offset,
            data,
            len,
        })
    }

    /// H_SCM_BIND_MEM as a typed call.
    pub fn h_scm_bind_mem(
        &self,
        drc: u64,
        start: u64,
        count: u64,
        target: u64,
        token: u64,
    ) -> Outcome {
        self.call(Request::BindMem {
            drc,
            start,
            count,
            target,
            token,
        })
    }

    /// H_SCM_UNBIND_MEM as a typed call.
    pub fn h_scm_unbind_mem(&self, drc: u64, addr: u64, count: u64, token: u64) -> Outcome {
        self.call(Request::UnbindMem {
            drc,
            addr,
            count,
            token,
        })
    }

    /// H_SCM_QUERY_BLOCK_MEM_BINDING as a typed call.
    pub fn h_scm_query_block_mem_binding(&self, drc: u64, block: u64) -> Outcome {
        self.call(Request::QueryBlockMemBinding { drc, block })
    }

    /// H_SCM_QUERY_LOGICAL_MEM_BINDING as a typed call.
    pub fn h_scm_query_logical_mem_binding(&self, addr: u64) -> Outcome {
        self.call(Request::QueryLogicalMemBinding { addr })
    }

    /// H_SCM_UNBIND_ALL as a typed call.
    pub fn h_scm_unbind_all(&self, scope: u64, drc: u64, token: u64) -> Outcome {
        self.call(Request::UnbindAll { scope, drc, token })
    }

    /// H_SCM_HEALTH as a typed call.
    pub fn h_scm_health(&self, drc: u64) -> Outcome {
        self.call(Request::Health { drc })
    }

    /// H_SCM_PERFORMANCE_STATS as a typed call.
    pub fn h_scm_performance_stats(&self, drc: u64, buf: u64, size: u64) -> Outcome {
        self.call(Request::PerformanceStats { drc, buf, size })
    }

    /// H_SCM_FLUSH as a typed call.
    pub fn h_scm_flush(&self, drc: u64, token: u64) -> Outcome {
        self.call(Request::Flush { drc, token })
    }

    /// A machine reset: drops every flush request (QEMU drains them first,
    /// `spapr_nvdimm_finish_flushes`; a VMM waits on its executor before
    /// calling this). Bindings survive, as they do on PowerVM across kexec,
    /// so a guest that reboots without unbinding sees H_OVERLAP and reuses
    /// them through H_SCM_QUERY_BLOCK_MEM_BINDING.
    pub fn reset(&self) {
        for slot in 0..self.slots.slot_count() {
            self.slots.with_slot(slot, |d| d.reset_flushes());
        }
    }
}
