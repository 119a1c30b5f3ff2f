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
//! exists to get wrong; an address index and a bound-slot bitmap
//! (`index.rs`) make them visit only the device or devices concerned.
//!
//! Host hooks ([`Host`]'s methods, and a label store's) may run with a
//! device's cell held, and must not call back into the machine at all:
//! not for the same slot, and not a call that spans slots either, since
//! H_SCM_QUERY_LOGICAL_MEM_BINDING and H_SCM_UNBIND_ALL rebuild a stale
//! index from every slot. With [`SharedSlots`] such a call waits for its
//! own cell for ever; with [`LocalSlots`] it finds the cell borrowed, and
//! a rebuild would leave that device out of the index.

use crate::config::{MachineConfig, Profile};
use crate::device::{Ctx, Device};
use crate::drc::PMEM_DRC_BASE;
use crate::hcall::*;
use crate::host::{Host, NoHost};
use crate::label::LabelStore;
use crate::rtas_error_log::EventSink;

#[cfg(feature = "std")]
mod build;
mod hotplug;
mod index;
mod slots;
#[cfg(feature = "alloc")]
mod snapshot;

#[cfg(feature = "std")]
pub use self::build::BuildError;
pub use self::hotplug::{PlugError, Released, RtasEffect, Unplug, UnplugError};
#[cfg(feature = "std")]
pub use self::slots::{InsertError, SharedSlots};
pub use self::slots::{InsertErrorKind, LocalSlots, SlotTable};
#[cfg(feature = "alloc")]
pub use self::snapshot::{
    MachineState, RestoreError, SlotState, SnapshotError, SNAPSHOT_MAGIC, SNAPSHOT_VERSION,
};

/// One hcall's handler, as the register-level entry calls it.
type Handler<S, H> = fn(&Machine<S, H>, &mut Regs) -> Option<ReturnCode>;

/// Entries in [`Machine::HANDLERS`]: H_SCM_READ_METADATA (0x3E4) to
/// H_SCM_FLUSH (0x44C), 4 apart.
const HANDLERS_LEN: usize = ((H_SCM_FLUSH - H_SCM_READ_METADATA) / 4 + 1) as usize;

/// The SCM side of a pseries machine: devices by slot, the profile and the
/// host.
#[derive(Debug)]
pub struct Machine<S, H = NoHost> {
    profile: Profile,
    /// The DRC bits the profile looks at: the low 32 in `qemu` (QEMU's
    /// `uint32_t drc_index = args[0]`), all 64 in `papr`.
    drc_mask: u64,
    /// `PMEM_DRC_BASE`, kept in the struct: a 64-bit immediate would cost
    /// its own `movabs` on every DRC check.
    drc_base: u64,
    /// `slots.slot_count()`, fixed for a table's life: one load per check.
    slot_count: u32,
    /// Devices by address, and the slots that may hold bindings.
    index: index::Index,
    slots: S,
    host: H,
}

impl<S: SlotTable> Machine<S, NoHost> {
    /// A machine with the default host ([`NoHost`]: no guest memory, no
    /// flushing) in `config`'s profile; `slots` should have `config.slots`
    /// slots.
    pub fn new(config: &MachineConfig, slots: S) -> Self {
        Machine::with_host(config, slots, NoHost)
    }
}

impl<S: SlotTable, H: Host> Machine<S, H> {
    /// A machine with a host of the VMM's, in `config`'s profile (the
    /// profile is the configuration's, given once); `slots` should have
    /// `config.slots` slots. See [`Machine::check_host`].
    pub fn with_host(config: &MachineConfig, slots: S, host: H) -> Self {
        Machine {
            profile: config.profile,
            drc_mask: match config.profile {
                Profile::Qemu => 0xFFFF_FFFF,
                Profile::Papr => u64::MAX,
            },
            drc_base: u64::from(PMEM_DRC_BASE),
            slot_count: slots.slot_count(),
            index: index::Index::new(),
            slots,
            host,
        }
    }

    /// Re-indexes the devices by address, whatever the table's generation
    /// says. Needed only for a table without a generation counter
    /// ([`LocalSlots`]) whose devices changed behind the machine's back;
    /// [`SharedSlots`] tells the machine itself, and `plug` and a release
    /// re-index any table.
    pub fn reindex(&self) {
        // Forced: a table without a counter reports the same generation
        // after a change, and the index must not take that for "fresh".
        self.index
            .rebuild_forced(&self.slots, self.slots.generation().wrapping_add(1));
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
        self.slots.with_slot(slot, |d| {
            let r = f(d);
            // The caller may have bound blocks (fault injection, a restore).
            if d.has_bind_state() {
                self.index.mark_bound(slot);
            }
            r
        })
    }

    /// The register-level entry for an hcall exit: `opcode` from r3, `regs`
    /// r4..r12. Returns the r3 status, or `None` (registers untouched) when
    /// the opcode is not an SCM hcall, so the VMM can route it elsewhere.
    /// Only the output registers the hcall defines are written, and none on
    /// an error. With KVM, `opcode` is `kvm_run.papr_hcall.nr` and `regs`
    /// its `args`; the status goes to `ret` ([`Regs`] shows the mapping).
    ///
    /// ```
    /// use core::cell::RefCell;
    /// use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
    /// use papr_scm::device::Device;
    /// use papr_scm::hcall::{H_SCM_READ_METADATA, H_SUCCESS};
    /// use papr_scm::label::SliceLabelStore;
    /// use papr_scm::machine::{LocalSlots, Machine};
    ///
    /// let config = MachineConfig::new(2 << 30, 8 << 30, 1);
    /// let spec = Planner::new(config)?.plug(&NvdimmConfig::new(
    ///     (256 << 20) + (128 << 10),
    ///     128 << 10,
    ///     parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?,
    /// ))?;
    /// let mut label = [0xAB; 128 << 10];
    /// let cells = [RefCell::new(Some(Device::new(spec, SliceLabelStore::new(&mut label))))];
    /// let machine = Machine::new(&config, LocalSlots::new(&cells));
    /// // H_SCM_READ_METADATA(drc, offset 0, 2 bytes): r4 = 0xABAB.
    /// let mut regs = [0x9000_0000, 0, 2, 0, 0, 0, 0, 0, 0];
    /// assert_eq!(machine.handle(H_SCM_READ_METADATA, &mut regs), Some(H_SUCCESS));
    /// assert_eq!(regs[0], 0xABAB);
    /// // Not an SCM hcall (H_PUT_TERM_CHAR): not ours, registers untouched.
    /// assert_eq!(machine.handle(0x58, &mut regs), None);
    /// # Ok::<(), papr_scm::config::ConfigError>(())
    /// ```
    #[inline]
    pub fn handle(&self, opcode: u64, regs: &mut Regs) -> Option<ReturnCode> {
        // The SCM opcodes are the multiples of 4 in [0x3E4, 0x44C]: rotating
        // the distance from the first right by 2 maps them to 0..=26 and
        // every other opcode, a misaligned one too, past the table, so one
        // compare rejects most of a guest's hcalls. The handler is called
        // through a table of function pointers (one indirect call, where a
        // `match` cost a jump table and a call), one non-inlined function
        // per hcall, so each call pays only its own handler's register
        // saves; it reads its inputs first and writes its outputs straight
        // into `regs`.
        let i = opcode.wrapping_sub(H_SCM_READ_METADATA).rotate_right(2);
        if i < HANDLERS_LEN as u64 {
            Self::HANDLERS[i as usize](self, regs)
        } else {
            None
        }
    }

    /// The handlers by `(opcode - H_SCM_READ_METADATA) / 4`; the gaps
    /// between the SCM opcodes answer "not mine".
    const HANDLERS: [Handler<S, H>; HANDLERS_LEN] = {
        const fn at(opcode: u64) -> usize {
            ((opcode - H_SCM_READ_METADATA) / 4) as usize
        }
        let mut t: [Handler<S, H>; HANDLERS_LEN] = [Self::not_scm; HANDLERS_LEN];
        t[at(H_SCM_READ_METADATA)] = Self::read_metadata::<Regs>;
        t[at(H_SCM_WRITE_METADATA)] = Self::write_metadata::<Regs>;
        t[at(H_SCM_BIND_MEM)] = Self::bind_mem::<Regs>;
        t[at(H_SCM_UNBIND_MEM)] = Self::unbind_mem::<Regs>;
        t[at(H_SCM_QUERY_BLOCK_MEM_BINDING)] = Self::query_block::<Regs>;
        t[at(H_SCM_QUERY_LOGICAL_MEM_BINDING)] = Self::query_logical::<Regs>;
        t[at(H_SCM_UNBIND_ALL)] = Self::unbind_all::<Regs>;
        t[at(H_SCM_HEALTH)] = Self::health::<Regs>;
        t[at(H_SCM_PERFORMANCE_STATS)] = Self::performance_stats::<Regs>;
        t[at(H_SCM_FLUSH)] = Self::flush::<Regs>;
        t
    };

    fn not_scm(&self, _: &mut Regs) -> Option<ReturnCode> {
        None
    }

    /// Runs one decoded hcall: the typed form of [`handle`](Self::handle),
    /// with the outputs it wrote.
    pub fn call(&self, req: Request) -> Outcome {
        let mut f = TypedFrame {
            args: req.to_regs(),
            out: Outputs::NONE,
        };
        let answer = match req.opcode() {
            H_SCM_READ_METADATA => self.read_metadata(&mut f),
            H_SCM_WRITE_METADATA => self.write_metadata(&mut f),
            H_SCM_BIND_MEM => self.bind_mem(&mut f),
            H_SCM_UNBIND_MEM => self.unbind_mem(&mut f),
            H_SCM_QUERY_BLOCK_MEM_BINDING => self.query_block(&mut f),
            H_SCM_QUERY_LOGICAL_MEM_BINDING => self.query_logical(&mut f),
            H_SCM_UNBIND_ALL => self.unbind_all(&mut f),
            H_SCM_HEALTH => self.health(&mut f),
            H_SCM_PERFORMANCE_STATS => self.performance_stats(&mut f),
            _ => self.flush(&mut f),
        };
        // Every handler answers `Some`; `None` is the entry's "not SCM".
        let status = answer.unwrap_or(H_FUNCTION);
        Outcome::with(status, f.out)
    }

    fn ctx(&self) -> Ctx<'_, H> {
        Ctx {
            profile: self.profile,
            host: &self.host,
        }
    }

    /// The slot a guest DRC index names, if it is a PMEM index of this
    /// machine: one subtraction and one compare. PMEM indexes are
    /// `0x9000_0000 + slot` (QEMU `SPAPR_DR_CONNECTOR_TYPE_SHIFT` 28, type 9);
    /// the `qemu` profile looks at the low 32 bits only, as QEMU's
    /// `uint32_t drc_index = args[0]` does, `papr` at all 64.
    #[inline(always)]
    pub fn slot_of(&self, drc: u64) -> Option<u32> {
        let slot = self.slot_index(drc);
        (slot < u64::from(self.slot_count)).then_some(slot as u32)
    }

    /// The slot `drc` would name, unchecked: the table's bounds check
    /// ([`SlotTable::with_index`]) is the compare.
    #[inline(always)]
    fn slot_index(&self, drc: u64) -> u64 {
        (drc & self.drc_mask).wrapping_sub(self.drc_base)
    }

    /// Runs a handler on the device `drc` names; an unknown index, a
    /// non-PMEM index or an empty slot gets H_PARAMETER (QEMU's "valid PMEM
    /// DRC" test). The same test as [`slot_of`](Self::slot_of), with the
    /// table's own bounds check as its compare.
    #[inline(always)]
    fn on_device(
        &self,
        drc: u64,
        f: impl FnOnce(&mut Device<S::Label>) -> ReturnCode,
    ) -> Option<ReturnCode> {
        let index = self.slot_index(drc);
        Some(self.slots.with_index(index, f).unwrap_or(H_PARAMETER))
    }

    #[inline(never)]
    fn read_metadata<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, offset, len, ..] = *f.input();
        // Linux reads its label area 8 bytes a call (papr_scm_meta_get):
        // that size alone is handled here, the others a jump away, so this
        // path holds no call and saves no register.
        if len != 8 {
            return self.read_metadata_sized(f);
        }
        self.on_device(drc, |d| d.h_scm_read_metadata(offset, 8, f))
    }

    /// H_SCM_READ_METADATA of 1, 2 or 4 bytes, or of a bad length.
    #[cold]
    #[inline(never)]
    fn read_metadata_sized<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, offset, len, ..] = *f.input();
        self.on_device(drc, |d| d.h_scm_read_metadata(offset, len, f))
    }

    #[inline(never)]
    fn write_metadata<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, offset, data, len, ..] = *f.input();
        // As for reads: Linux writes 8 bytes a call (papr_scm_meta_set).
        if len != 8 {
            return self.write_metadata_sized(f);
        }
        self.on_device(drc, |d| d.h_scm_write_metadata(offset, data, 8))
    }

    /// H_SCM_WRITE_METADATA of 1, 2 or 4 bytes, or of a bad length.
    #[cold]
    #[inline(never)]
    fn write_metadata_sized<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, offset, data, len, ..] = *f.input();
        self.on_device(drc, |d| d.h_scm_write_metadata(offset, data, len))
    }

    #[inline(never)]
    fn bind_mem<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, start, count, target, token, ..] = *f.input();
        let ctx = self.ctx();
        let index = self.slot_index(drc);
        // Linux's whole-device bind here; every other request (and a bad
        // DRC) a jump away, so this path holds no call.
        let done = self.slots.with_index(index, |d| {
            let status = d.bind_mem_at_once(ctx, start, count, target, token, f);
            // Under the device's lock, before any UNBIND_ALL can look.
            if status.is_some() && self.profile == Profile::Papr {
                self.index.mark_bound(index as u32);
            }
            status
        });
        match done {
            Some(Some(status)) => Some(status),
            _ => self.bind_mem_steps(f),
        }
    }

    /// H_SCM_BIND_MEM in full (continue tokens, overlaps, faults, errors).
    #[inline(never)]
    fn bind_mem_steps<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, start, count, target, token, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| {
            let status = d.bind_mem_steps(ctx, start, count, target, token, f);
            // Under the device's lock, before any UNBIND_ALL can look.
            if d.has_bind_state() {
                self.index.mark_bound(d.spec().slot);
            }
            status
        })
    }

    #[inline(never)]
    fn unbind_mem<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, addr, count, token, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| {
            let status = d.h_scm_unbind_mem(ctx, addr, count, token, f);
            if !d.has_bind_state() {
                self.index.mark_unbound(d.spec().slot);
            }
            status
        })
    }

    /// QEMU has no handler for the QUERY calls and PERFORMANCE_STATS: its
    /// dispatcher answers H_FUNCTION before looking at any argument
    /// (`spapr_hypercall`).
    #[inline(always)]
    fn qemu_has_no_handler(&self) -> bool {
        self.profile == Profile::Qemu
    }

    #[inline(never)]
    fn query_block<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        if self.qemu_has_no_handler() {
            return Some(H_FUNCTION);
        }
        let [drc, block, ..] = *f.input();
        self.on_device(drc, |d| d.h_scm_query_block_mem_binding(block, f))
    }

    #[inline(never)]
    fn health<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let drc = f.input()[0];
        let profile = self.profile;
        self.on_device(drc, |d| d.h_scm_health(profile, f))
    }

    #[inline(never)]
    fn performance_stats<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        if self.qemu_has_no_handler() {
            return Some(H_FUNCTION);
        }
        let [drc, buf, size, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| d.h_scm_performance_stats(ctx, buf, size, f))
    }

    #[inline(never)]
    fn flush<F: Frame>(&self, f: &mut F) -> Option<ReturnCode> {
        let [drc, token, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| d.h_scm_flush(ctx, token, f))
    }

    #[inline(never)]
    fn unbind_all<F: Frame>(&self, out: &mut F) -> Option<ReturnCode> {
        let [scope, drc, token, ..] = *out.input();
        // QEMU checks the token before the scope.
        if token != 0 {
            return Some(H_P4);
        }
        let count = match scope {
            H_UNBIND_SCOPE_DRC => match self.unbind_index(drc) {
                Some(n) => n,
                None => return Some(H_P2),
            },
            // QEMU's answer counts every device's blocks (it keeps no state).
            H_UNBIND_SCOPE_ALL if self.profile == Profile::Qemu => {
                self.index.refresh(&self.slots);
                self.index.total_blocks()
            }
            H_UNBIND_SCOPE_ALL => self.unbind_partition(),
            _ => return Some(H_PARAMETER),
        };
        // The guest reads r4 as the continue token; QEMU leaves the scope
        // there, the papr profile says "done" explicitly.
        if self.profile == Profile::Papr {
            out.set_r4(0);
        }
        out.set_r5(count);
        Some(H_SUCCESS)
    }

    /// Unbinds every block of the device `drc` names; `None` if there is
    /// none. Out of line, so that the partition walk's registers are not
    /// saved on this path (Linux's, at every driver removal).
    #[inline(never)]
    fn unbind_index(&self, drc: u64) -> Option<u64> {
        let index = self.slot_index(drc);
        let ctx = self.ctx();
        self.slots.with_index(index, |d| {
            let n = d.unbind_all(ctx);
            self.index.mark_unbound(index as u32);
            n
        })
    }

    /// Unbinds every block of the device in `slot`; `None` if it is empty.
    #[inline(always)]
    fn unbind_slot(&self, slot: u32) -> Option<u64> {
        let ctx = self.ctx();
        self.slots.with_slot(slot, |d| {
            let n = d.unbind_all(ctx);
            self.index.mark_unbound(slot);
            n
        })
    }

    /// H_SCM_UNBIND_ALL over the partition in the `papr` profile, which
    /// visits only the slots that hold bindings. Out of line: the bitmap
    /// walk would otherwise make the one-DRC call (Linux's, at every driver
    /// removal) save every register the walk needs.
    #[inline(never)]
    fn unbind_partition(&self) -> u64 {
        self.index.refresh(&self.slots);
        self.index
            .bound_slots()
            .filter_map(|slot| self.unbind_slot(slot))
            .fold(0u64, u64::saturating_add)
    }

    #[inline(never)]
    fn query_logical<F: Frame>(&self, out: &mut F) -> Option<ReturnCode> {
        if self.qemu_has_no_handler() {
            return Some(H_FUNCTION);
        }
        // After a plug or unplug, the index is rebuilt first (out of line).
        if !self.index.is_fresh(&self.slots) {
            return self.query_logical_reindexed(out);
        }
        Some(self.query_logical_indexed(out))
    }

    #[cold]
    #[inline(never)]
    fn query_logical_reindexed<F: Frame>(&self, out: &mut F) -> Option<ReturnCode> {
        self.index.refresh(&self.slots);
        Some(self.query_logical_indexed(out))
    }

    #[inline(always)]
    fn query_logical_indexed<F: Frame>(&self, out: &mut F) -> ReturnCode {
        let addr = out.input()[0];
        // The one device whose range holds addr, then only its lock; the
        // outputs are written under it (no result carried out of the cell).
        let found = self.index.slot_at(addr).and_then(|slot| {
            self.slots.with_index(slot.into(), |d| {
                let block = d.block_at(addr)?;
                out.set_r4(u64::from(d.spec().drc.raw()));
                out.set_r5(block);
                Some(())
            })
        });
        match found {
            Some(Some(())) => H_SUCCESS,
            _ => H_NOT_FOUND,
        }
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

    /// A system reset (the guest reboots; QEMU `spapr_machine_reset`):
    /// what a fresh boot expects. Every binding is released (the host's
    /// [`BindEvents::unbound`](crate::host::BindEvents::unbound) for each
    /// run) and a bind in progress forgotten; every flush request is
    /// dropped (QEMU drains its workers first, `spapr_nvdimm_finish_flushes`:
    /// a VMM waits on its executor before calling this); labels are made
    /// durable; the connectors are reset (`spapr_drc_reset`: a device whose
    /// unplug was pending leaves, handed to `released`) and papr-scm's own
    /// queue emptied, back to the EPOW source until the next CAS (a VMM's
    /// queue is the VMM's to reset, [`EventSink::queue`]). Health and
    /// injected faults belong to the device and stay.
    ///
    /// A kexec is not a reset: the VMM calls nothing, the bindings survive,
    /// and the second kernel's probe meets H_OVERLAP and reuses them through
    /// H_SCM_QUERY_BLOCK_MEM_BINDING, as on PowerVM (Linux 3a855b7ac7d5).
    pub fn reset<E: EventSink + ?Sized>(
        &self,
        events: &mut E,
        released: impl FnMut(Released<S::Label>),
    ) {
        if let Some(queue) = events.queue() {
            queue.reset();
        }
        self.reset_connectors(released);
        self.reset_devices();
    }

    /// The devices' part of [`reset`](Self::reset), one slot at a time
    /// under its lock. A label store whose sync fails marks its device
    /// PAPR_PMEM_SHUTDOWN_DIRTY, as a flush that fails does: the labels
    /// may not have reached stable storage, the next boot's H_SCM_HEALTH
    /// says so (`papr` profile), and the VMM sees it in
    /// [`Device::health`]; discarded, the error was lost for good (a later
    /// sync of the same file may succeed).
    fn reset_devices(&self) {
        let ctx = self.ctx();
        for slot in 0..self.slots.slot_count() {
            self.slots.with_slot(slot, |d| {
                if d.has_bind_state() {
                    d.unbind_all(ctx);
                }
                self.index.mark_unbound(slot);
                d.reset_flushes(ctx);
                if d.label_mut().flush().is_err() {
                    d.inject_health(crate::hcall::HealthBits::PAPR_PMEM_SHUTDOWN_DIRTY);
                }
            });
        }
    }

    /// Makes every device's label writes durable (`LabelStore::flush`).
    /// The defined point for a plain `nvdimm`, which has no flush hcall: a
    /// VMM calls it when it pauses, snapshots or shuts the guest down.
    /// Returns the slots whose store failed.
    pub fn sync_labels(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.slots.slot_count()).filter(|&slot| {
            self.slots
                .with_slot(slot, |d| d.label_mut().flush().is_err())
                == Some(true)
        })
    }
}

#[cfg(test)]
mod tests;
