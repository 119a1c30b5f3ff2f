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

use crate::config::{MachineConfig, Profile};
use crate::device::{Ctx, Device};
use crate::drc::PMEM_DRC_BASE;
use crate::hcall::*;
use crate::host::{Host, NoHost};
use crate::label::LabelStore;

#[cfg(feature = "std")]
mod build;
mod index;
mod slots;

#[cfg(feature = "std")]
pub use self::build::BuildError;
#[cfg(feature = "std")]
pub use self::slots::{InsertError, InsertErrorKind, SharedSlots};
pub use self::slots::{LocalSlots, SlotTable};

/// The SCM side of a pseries machine: devices by slot, the profile and the
/// host.
#[derive(Debug)]
pub struct Machine<S, H = NoHost> {
    profile: Profile,
    /// The DRC bits the profile looks at: the low 32 in `qemu` (QEMU's
    /// `uint32_t drc_index = args[0]`), all 64 in `papr`.
    drc_mask: u64,
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
            slot_count: slots.slot_count(),
            index: index::Index::new(),
            slots,
            host,
        }
    }

    /// Re-indexes the devices by address. Needed only for a table without a
    /// generation counter ([`LocalSlots`]) whose devices changed after the
    /// machine was made; [`SharedSlots`] tells the machine itself.
    pub fn reindex(&self) {
        self.index
            .rebuild(&self.slots, self.slots.generation().wrapping_add(1));
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
            if !d.bindings().is_empty() {
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
        // A jump table over [0x3E4, 0x418] and one compare for H_SCM_FLUSH
        // (0x44C): every other hcall, most of a guest's, is back with the
        // VMM after four instructions. One non-inlined function per hcall
        // (below), so each call pays only its own handler's register saves;
        // the inputs are read first, then the handler writes its outputs
        // straight into `regs`.
        Some(match opcode {
            H_SCM_READ_METADATA => self.read_metadata(regs),
            H_SCM_WRITE_METADATA => self.write_metadata(regs),
            H_SCM_BIND_MEM => self.bind_mem(regs),
            H_SCM_UNBIND_MEM => self.unbind_mem(regs),
            H_SCM_QUERY_BLOCK_MEM_BINDING => self.query_block(regs),
            H_SCM_QUERY_LOGICAL_MEM_BINDING => self.query_logical(regs),
            H_SCM_UNBIND_ALL => self.unbind_all(regs),
            H_SCM_HEALTH => self.health(regs),
            H_SCM_PERFORMANCE_STATS => self.performance_stats(regs),
            H_SCM_FLUSH => self.flush(regs),
            _ => return None,
        })
    }

    /// Runs one decoded hcall: the typed form of [`handle`](Self::handle),
    /// with the outputs it wrote.
    pub fn call(&self, req: Request) -> Outcome {
        let mut f = TypedFrame {
            args: req.to_regs(),
            out: Outputs::NONE,
        };
        let status = match req.opcode() {
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
        let slot = (drc & self.drc_mask).wrapping_sub(u64::from(PMEM_DRC_BASE));
        (slot < u64::from(self.slot_count)).then_some(slot as u32)
    }

    /// Runs a handler on the device `drc` names; an unknown index, a
    /// non-PMEM index or an empty slot gets H_PARAMETER (QEMU's "valid PMEM
    /// DRC" test).
    #[inline(always)]
    fn on_device(
        &self,
        drc: u64,
        f: impl FnOnce(&mut Device<S::Label>) -> ReturnCode,
    ) -> ReturnCode {
        match self.slot_of(drc) {
            Some(slot) => self.slots.with_slot(slot, f).unwrap_or(H_PARAMETER),
            None => H_PARAMETER,
        }
    }

    #[inline(never)]
    fn read_metadata(&self, f: &mut impl Frame) -> ReturnCode {
        let [drc, offset, len, ..] = *f.input();
        self.on_device(drc, |d| d.h_scm_read_metadata(offset, len, f))
    }

    #[inline(never)]
    fn write_metadata(&self, f: &mut impl Frame) -> ReturnCode {
        let [drc, offset, data, len, ..] = *f.input();
        self.on_device(drc, |d| d.h_scm_write_metadata(offset, data, len))
    }

    #[inline(never)]
    fn bind_mem(&self, f: &mut impl Frame) -> ReturnCode {
        let [drc, start, count, target, token, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| {
            let status = d.h_scm_bind_mem(ctx, start, count, target, token, f);
            // Under the device's lock, before any UNBIND_ALL can look.
            if !d.bindings().is_empty() {
                self.index.mark_bound(d.spec().slot);
            }
            status
        })
    }

    #[inline(never)]
    fn unbind_mem(&self, f: &mut impl Frame) -> ReturnCode {
        let [drc, addr, count, token, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| {
            let status = d.h_scm_unbind_mem(ctx, addr, count, token, f);
            if d.bindings().is_empty() {
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
    fn query_block(&self, f: &mut impl Frame) -> ReturnCode {
        if self.qemu_has_no_handler() {
            return H_FUNCTION;
        }
        let [drc, block, ..] = *f.input();
        self.on_device(drc, |d| d.h_scm_query_block_mem_binding(block, f))
    }

    #[inline(never)]
    fn health(&self, f: &mut impl Frame) -> ReturnCode {
        let drc = f.input()[0];
        let profile = self.profile;
        self.on_device(drc, |d| d.h_scm_health(profile, f))
    }

    #[inline(never)]
    fn performance_stats(&self, f: &mut impl Frame) -> ReturnCode {
        if self.qemu_has_no_handler() {
            return H_FUNCTION;
        }
        let [drc, buf, size, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| d.h_scm_performance_stats(ctx, buf, size, f))
    }

    #[inline(never)]
    fn flush(&self, f: &mut impl Frame) -> ReturnCode {
        let [drc, token, ..] = *f.input();
        let ctx = self.ctx();
        self.on_device(drc, |d| d.h_scm_flush(ctx, token, f))
    }

    #[inline(never)]
    fn unbind_all(&self, out: &mut impl Frame) -> ReturnCode {
        let [scope, drc, token, ..] = *out.input();
        // QEMU checks the token before the scope.
        if token != 0 {
            return H_P4;
        }
        let ctx = self.ctx();
        let unbind = |slot| {
            self.slots.with_slot(slot, |d| {
                let n = d.unbind_all(ctx);
                self.index.mark_unbound(slot);
                n
            })
        };
        let count = match scope {
            H_UNBIND_SCOPE_DRC => match self.slot_of(drc).and_then(unbind) {
                Some(n) => n,
                None => return H_P2,
            },
            // QEMU's answer counts every device's blocks (it keeps no state);
            // the papr profile visits only the slots that hold bindings.
            H_UNBIND_SCOPE_ALL if self.profile == Profile::Qemu => {
                self.index.refresh(&self.slots);
                self.index.total_blocks()
            }
            H_UNBIND_SCOPE_ALL => {
                self.index.refresh(&self.slots);
                self.index
                    .bound_slots()
                    .filter_map(unbind)
                    .fold(0u64, u64::saturating_add)
            }
            _ => return H_PARAMETER,
        };
        // The guest reads r4 as the continue token; QEMU leaves the scope
        // there, the papr profile says "done" explicitly.
        if self.profile == Profile::Papr {
            out.set_r4(0);
        }
        out.set_r5(count);
        H_SUCCESS
    }

    #[inline(never)]
    fn query_logical(&self, out: &mut impl Frame) -> ReturnCode {
        if self.qemu_has_no_handler() {
            return H_FUNCTION;
        }
        let addr = out.input()[0];
        // The one device whose range holds addr, then only its lock.
        self.index.refresh(&self.slots);
        let hit = self.index.slot_at(addr).and_then(|slot| {
            self.slots
                .with_slot(slot, |d| d.block_at(addr).map(|b| (d.spec().drc.raw(), b)))
                .flatten()
        });
        match hit {
            Some((drc, block)) => {
                out.set_r4(u64::from(drc));
                out.set_r5(block);
                H_SUCCESS
            }
            None => H_NOT_FOUND,
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

    /// A machine reset: drops every flush request (QEMU drains them first,
    /// `spapr_nvdimm_finish_flushes`; a VMM waits on its executor before
    /// calling this). Bindings survive, as they do on PowerVM across kexec,
    /// so a guest that reboots without unbinding sees H_OVERLAP and reuses
    /// them through H_SCM_QUERY_BLOCK_MEM_BINDING.
    pub fn reset(&self) {
        for slot in 0..self.slots.slot_count() {
            self.slots.with_slot(slot, |d| {
                d.reset_flushes();
                let _ = d.label_mut().flush();
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
mod tests {
    use super::*;
    use core::cell::RefCell;

    /// The machine of [`specs`] in `profile`.
    fn cfg(profile: Profile) -> MachineConfig {
        let mut m = MachineConfig::new(2 * G, 8 * G, 3);
        m.profile = profile;
        m
    }
    use crate::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Planner};
    use crate::device::{BindProgress, DeviceState, FlushRecord, StateError};
    use crate::label::{LabelError, SliceLabelStore};

    const K: u64 = 1024;
    const M: u64 = 1024 * K;
    const G: u64 = 1024 * M;
    const D0: u64 = 0x9000_0000;
    const D1: u64 = 0x9000_0001;

    /// A label store whose every access fails, like a dead backing file.
    struct Broken;
    impl LabelStore for Broken {
        fn size(&self) -> u64 {
            128 * K
        }
        fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
            Err(LabelError::OutOfRange {
                offset,
                len: buf.len(),
                size: 0,
            })
        }
        fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
            Err(LabelError::OutOfRange {
                offset,
                len: data.len(),
                size: 0,
            })
        }
        fn flush(&mut self) -> Result<(), LabelError> {
            Err(LabelError::OutOfRange {
                offset: 0,
                len: 0,
                size: 0,
            })
        }
    }

    fn specs() -> [crate::config::DeviceSpec; 2] {
        let mut p = Planner::new(MachineConfig::new(2 * G, 8 * G, 3)).unwrap();
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let a = p
            .plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))
            .unwrap();
        let mut c = NvdimmConfig::new(256 * M + 128 * K, 128 * K, uuid);
        c.kind = DeviceKind::SpaprNvdimm;
        c.readonly = true;
        c.unarmed = true;
        let b = p.plug(&c).unwrap();
        [a, b]
    }

    /// Runs `f` on a machine with a 4-block nvdimm in slot 0, a read-only
    /// 1-block spapr-nvdimm in slot 1 and an empty slot 2.
    fn with_machine(
        profile: Profile,
        f: impl FnOnce(&Machine<LocalSlots<'_, SliceLabelStore<'_>>>),
    ) {
        let [a, b] = specs();
        let (mut la, mut lb) = ([0u8; 128 * 1024], [0u8; 128 * 1024]);
        let cells = [
            RefCell::new(Some(Device::new(a, SliceLabelStore::new(&mut la)))),
            RefCell::new(Some(Device::new(b, SliceLabelStore::new(&mut lb)))),
            RefCell::new(None),
        ];
        f(&Machine::new(&cfg(profile), LocalSlots::new(&cells)));
    }

    fn both(f: impl Fn(&Machine<LocalSlots<'_, SliceLabelStore<'_>>>)) {
        with_machine(Profile::Qemu, &f);
        with_machine(Profile::Papr, &f);
    }

    fn st(o: Outcome) -> ReturnCode {
        o.status
    }

    #[test]
    fn test_read_metadata_check_order() {
        both(|m| {
            // DRC before length before range.
            assert_eq!(
                st(m.h_scm_read_metadata(0x9000_0002, u64::MAX, 3)),
                H_PARAMETER
            );
            assert_eq!(st(m.h_scm_read_metadata(D0, u64::MAX, 3)), H_P3);
            assert_eq!(st(m.h_scm_read_metadata(D0, u64::MAX, 8)), H_P2);
            assert_eq!(st(m.h_scm_read_metadata(D0, 128 * K - 8, 8)), H_SUCCESS);
            assert_eq!(m.h_scm_read_metadata(D0, 0, 8).out, Outputs::r4(0));
        });
    }

    #[test]
    fn test_write_metadata_check_order() {
        both(|m| {
            assert_eq!(
                st(m.h_scm_write_metadata(0x9000_0002, u64::MAX, u64::MAX, 3)),
                H_PARAMETER
            );
            assert_eq!(st(m.h_scm_write_metadata(D1, u64::MAX, u64::MAX, 3)), H_P4);
            assert_eq!(st(m.h_scm_write_metadata(D1, 0, 0, 1)), H_P2); // read-only
            assert_eq!(st(m.h_scm_write_metadata(D0, u64::MAX, 0, 1)), H_P2);
            assert_eq!(st(m.h_scm_write_metadata(D0, 0, 0x100, 1)), H_P2);
            assert_eq!(
                m.h_scm_write_metadata(D0, 0, 0xA1B2, 2),
                Outcome::status(H_SUCCESS)
            );
            assert_eq!(m.h_scm_read_metadata(D0, 0, 1).out.r4, Some(0xA1));
            assert_eq!(m.h_scm_read_metadata(D0, 1, 1).out.r4, Some(0xB2));
        });
    }

    #[test]
    fn test_bind_check_order() {
        both(|m| {
            assert_eq!(st(m.h_scm_bind_mem(0x9000_0002, 9, 9, 0, 1)), H_PARAMETER);
            assert_eq!(st(m.h_scm_bind_mem(D0, 9, 9, 0, 1)), H_P5);
            assert_eq!(st(m.h_scm_bind_mem(D0, 9, 9, 0, 0)), H_OVERLAP);
            assert_eq!(st(m.h_scm_bind_mem(D0, 5, 9, u64::MAX, 0)), H_P2);
            assert_eq!(st(m.h_scm_bind_mem(D0, 4, 1, u64::MAX, 0)), H_P3);
            assert_eq!(st(m.h_scm_bind_mem(D0, 1, u64::MAX, u64::MAX, 0)), H_P3);
            let o = m.h_scm_bind_mem(D0, 1, 3, u64::MAX, 0);
            assert_eq!(
                (o.status, o.out.r5, o.out.r6),
                (H_SUCCESS, Some(0x9000_0000), Some(3))
            );
        });
        with_machine(Profile::Qemu, |m| {
            assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).out.r4, None);
            assert_eq!(st(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0)), H_SUCCESS);
        });
        with_machine(Profile::Papr, |m| {
            assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).out.r4, Some(0));
            assert_eq!(st(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0)), H_OVERLAP);
            assert_eq!(
                st(m.h_scm_bind_mem(1 << 32 | D0, 0, 4, u64::MAX, 0)),
                H_PARAMETER
            );
        });
    }

    #[test]
    fn test_unbind_mem_check_order() {
        both(|m| {
            assert_eq!(st(m.h_scm_unbind_mem(0x9000_0002, 1, 0, 1)), H_PARAMETER);
            assert_eq!(st(m.h_scm_unbind_mem(D0, 1, 0, 1)), H_P4);
            assert_eq!(st(m.h_scm_unbind_mem(D0, 1, 0, 0)), H_P2);
            assert_eq!(st(m.h_scm_unbind_mem(D0, 0x8000_0000, 0, 0)), H_P3);
            assert_eq!(st(m.h_scm_unbind_mem(D0, 0x8000_0000, 1 << 36, 0)), H_P3);
            assert_eq!(
                st(m.h_scm_unbind_mem(D0, 0xFFFF_FFFF_F000_0000, 2, 0)),
                H_P3
            );
            assert_eq!(st(m.h_scm_unbind_mem(D0, 0x8000_0000, 5, 0)), H_P3);
            let o = m.h_scm_unbind_mem(D0, 0x8000_0000, 4, 0);
            assert_eq!((o.status, o.out.r5), (H_SUCCESS, Some(4)));
        });
    }

    #[test]
    fn test_unbind_all_check_order() {
        both(|m| {
            assert_eq!(st(m.h_scm_unbind_all(9, 0x9000_0002, 1)), H_P4);
            assert_eq!(st(m.h_scm_unbind_all(2, 0x9000_0002, 0)), H_P2);
            assert_eq!(st(m.h_scm_unbind_all(9, D0, 0)), H_PARAMETER);
            assert_eq!(st(m.h_scm_unbind_all(1, 0, 0)), H_SUCCESS);
        });
        with_machine(Profile::Qemu, |m| {
            assert_eq!(m.h_scm_unbind_all(1, 0, 0).out.r5, Some(5));
            assert_eq!(m.h_scm_unbind_all(2, D0, 0).out.r5, Some(4));
        });
        with_machine(Profile::Papr, |m| {
            m.h_scm_bind_mem(D0, 0, 2, u64::MAX, 0);
            m.h_scm_bind_mem(D1, 0, 1, u64::MAX, 0);
            assert_eq!(m.h_scm_unbind_all(1, 0, 0).out.r5, Some(3));
            assert_eq!(m.h_scm_unbind_all(2, D0, 0).out.r5, Some(0));
        });
    }

    #[test]
    fn test_query_calls() {
        with_machine(Profile::Qemu, |m| {
            assert_eq!(
                st(m.h_scm_query_block_mem_binding(0x9000_0002, 0)),
                H_FUNCTION
            );
            assert_eq!(
                st(m.h_scm_query_logical_mem_binding(0x8000_0000)),
                H_FUNCTION
            );
            assert_eq!(st(m.h_scm_performance_stats(D0, 0, 0)), H_FUNCTION);
        });
        with_machine(Profile::Papr, |m| {
            assert_eq!(
                st(m.h_scm_query_block_mem_binding(0x9000_0002, 9)),
                H_PARAMETER
            );
            assert_eq!(st(m.h_scm_query_block_mem_binding(D0, 4)), H_P2);
            assert_eq!(st(m.h_scm_query_block_mem_binding(D0, 0)), H_NOT_FOUND);
            m.h_scm_bind_mem(D0, 2, 2, u64::MAX, 0);
            assert_eq!(
                m.h_scm_query_block_mem_binding(D0, 3).out.r4,
                Some(0xB000_0000)
            );
            let o = m.h_scm_query_logical_mem_binding(0xA000_0001);
            assert_eq!((o.out.r4, o.out.r5), (Some(D0), Some(2)));
            assert_eq!(
                st(m.h_scm_query_logical_mem_binding(0x8000_0000)),
                H_NOT_FOUND
            );
        });
    }

    #[test]
    fn test_health() {
        with_machine(Profile::Qemu, |m| {
            assert_eq!(st(m.h_scm_health(0x9000_0002)), H_PARAMETER);
            m.with_device(0, |d| d.inject_health(HealthBits::PAPR_PMEM_HEALTH_FATAL));
            let o = m.h_scm_health(D0);
            assert_eq!((o.out.r4, o.out.r5), (Some(0), Some(1 << 63)));
            assert_eq!(m.h_scm_health(D1).out.r4, Some(1 << 63));
        });
        with_machine(Profile::Papr, |m| {
            m.with_device(0, |d| d.inject_health(HealthBits::PAPR_PMEM_HEALTH_FATAL));
            let o = m.h_scm_health(D0);
            assert_eq!((o.out.r4, o.out.r5), (Some(1 << 58), Some(0xFFE0 << 48)));
            m.with_device(0, |d| d.clear_health(HealthBits::all()));
            assert_eq!(m.h_scm_health(D0).out.r4, Some(0));
        });
    }

    #[test]
    fn test_flush_check_order() {
        both(|m| {
            assert_eq!(st(m.h_scm_flush(0x9000_0002, 0)), H_PARAMETER);
            assert_eq!(st(m.h_scm_flush(D0, 0)), H_PARAMETER); // plain nvdimm
            assert_eq!(st(m.h_scm_flush(D1, 5)), H_P2);
        });
        // The default executor finishes at once: papr answers at once, qemu
        // still says long-busy first.
        with_machine(Profile::Qemu, |m| {
            assert_eq!(
                m.h_scm_flush(D1, 0),
                Outcome::with(H_LONG_BUSY_ORDER_10_MSEC, Outputs::r4(1))
            );
            assert_eq!(st(m.h_scm_flush(D1, 1)), H_SUCCESS);
        });
        with_machine(Profile::Papr, |m| {
            assert_eq!(st(m.h_scm_flush(D1, 0)), H_SUCCESS);
            assert_eq!(st(m.h_scm_flush(D1, 1)), H_P2);
        });
    }

    #[test]
    fn test_label_store_failure_is_h_hardware() {
        let [a, mut b] = specs();
        b.readonly = false;
        b.slot = 0;
        let _ = a;
        let cells = [RefCell::new(Some(Device::new(b, Broken)))];
        for p in [Profile::Qemu, Profile::Papr] {
            let m = Machine::new(&cfg(p), LocalSlots::new(&cells));
            assert_eq!(st(m.h_scm_read_metadata(D0, 0, 8)), H_HARDWARE);
            assert_eq!(st(m.h_scm_write_metadata(D0, 0, 0, 8)), H_HARDWARE);
            // A flush whose label sync fails reports H_HARDWARE.
            let o = m.h_scm_flush(D0, 0);
            let done = if o.status.is_long_busy() {
                st(m.h_scm_flush(D0, o.out.r4.unwrap()))
            } else {
                o.status
            };
            assert_eq!(done, H_HARDWARE);
        }
    }

    #[test]
    fn test_handle_leaves_other_registers() {
        with_machine(Profile::Qemu, |m| {
            let mut r = [D0, 0, 4, u64::MAX, 0, 11, 12, 13, 14];
            assert_eq!(m.handle(H_SCM_BIND_MEM, &mut r), Some(H_SUCCESS));
            assert_eq!(r, [D0, 0x8000_0000, 4, u64::MAX, 0, 11, 12, 13, 14]);
            let mut r = [1; 9];
            assert_eq!(m.handle(0x58, &mut r), None);
            assert_eq!(r, [1; 9]);
        });
    }

    #[test]
    fn test_reentrant_refcell_is_h_parameter_not_panic() {
        with_machine(Profile::Papr, |m| {
            m.with_device(0, |_| {
                assert_eq!(st(m.h_scm_health(D0)), H_PARAMETER);
            });
        });
    }

    #[test]
    fn test_state_round_trip() {
        with_machine(Profile::Papr, |m| {
            m.h_scm_bind_mem(D0, 1, 2, u64::MAX, 0);
            m.with_device(0, |d| d.inject_health(HealthBits::PAPR_PMEM_EMPTY));
            let state = m.with_device(0, |d| d.state()).unwrap();
            let spec = m.with_device(0, |d| *d.spec()).unwrap();
            let mut buf = [0u8; 16];
            let d = Device::from_state(spec, SliceLabelStore::new(&mut buf), state).unwrap();
            assert_eq!(d.bindings().runs(), &[(1, 2)]);
            assert_eq!(d.health(Profile::Papr), HealthBits::PAPR_PMEM_EMPTY);
            let mut bad = state;
            bad.bindings = crate::device::Bindings::new();
            bad.bindings.insert(3, 2).unwrap();
            let mut buf = [0u8; 16];
            assert!(Device::from_state(spec, SliceLabelStore::new(&mut buf), bad).is_err());
        });
    }

    #[test]
    fn test_sync_labels_reports_failing_stores() {
        let [a, b] = specs();
        let mut lb = [0u8; 128 * 1024];
        let broken = [
            RefCell::new(Some(Device::new(a, Broken))),
            RefCell::new(None),
        ];
        let m = Machine::new(&cfg(Profile::Papr), LocalSlots::new(&broken));
        assert_eq!(m.sync_labels().collect::<std::vec::Vec<_>>(), [0]);
        let fine = [RefCell::new(Some(Device::new(
            b,
            SliceLabelStore::new(&mut lb),
        )))];
        let m = Machine::new(&cfg(Profile::Papr), LocalSlots::new(&fine));
        assert_eq!(m.sync_labels().count(), 0);
    }

    /// A restored bind in progress with `done > count` made the next
    /// continued bind overflow (a run of 2^64 - 4 blocks); every field that
    /// a later hcall relies on is checked on restore.
    #[test]
    fn test_restore_refuses_inconsistent_state() {
        with_machine(Profile::Papr, |m| {
            m.with_device(0, |d| d.faults_mut().bind_budget = Some(1));
            let o = m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0);
            assert_eq!(o.status, H_BUSY);
            let good = m.with_device(0, |d| d.state()).unwrap();
            let spec = m.with_device(0, |d| *d.spec()).unwrap();
            let restore = |s: DeviceState| {
                let mut buf = [0u8; 16];
                Device::from_state(spec, SliceLabelStore::new(&mut buf), s).map(|_| ())
            };
            assert_eq!(restore(good), Ok(()));
            let p = good.bind_progress.unwrap();
            for (start, count, done) in
                [(0, 4, 8), (0, 4, 4), (3, 4, 1), (u64::MAX, 4, 0), (0, 0, 0)]
            {
                let mut bad = good;
                bad.bind_progress = Some(BindProgress {
                    start,
                    count,
                    done,
                    ..p
                });
                assert!(
                    matches!(restore(bad), Err(StateError::BadBindProgress { .. })),
                    "{start} {count} {done}"
                );
            }
            let mut bad = good;
            bad.bind_progress = Some(BindProgress { done: 2, ..p });
            assert_eq!(
                restore(bad),
                Err(StateError::BindProgressNotBound { start: 0, done: 2 })
            );
            let mut bad = good;
            bad.bind_progress = Some(BindProgress { token: 0, ..p });
            assert!(restore(bad).is_err());

            let rec = FlushRecord {
                token: 1,
                result: None,
                hold: 0,
                fresh: false,
                injected: None,
            };
            let mut bad = good;
            bad.flush_token = 1;
            bad.flushes[0] = Some(rec);
            bad.flushes[5] = Some(rec);
            assert_eq!(
                restore(bad),
                Err(StateError::DuplicateFlushToken { token: 1 })
            );
            bad.flushes[5] = Some(FlushRecord { token: 2, ..rec });
            assert_eq!(restore(bad), Err(StateError::BadFlushToken { token: 2 }));

            let mut bad = good;
            bad.faults.flush_order = H_BUSY;
            assert!(matches!(
                restore(bad),
                Err(StateError::BadFault {
                    field: "flush_order",
                    ..
                })
            ));
            let mut bad = good;
            bad.faults.bind_budget = Some(0);
            assert!(matches!(
                restore(bad),
                Err(StateError::BadFault {
                    field: "bind_budget",
                    ..
                })
            ));
        });
    }

    /// The guest's request count drove a loop of up to 2^32 - 1 entries
    /// under the device lock; more entries than there are statistics is
    /// H_P3 before any guest memory is touched.
    #[test]
    fn test_performance_stats_count_is_bounded() {
        use core::cell::Cell;
        struct Mem {
            count: u32,
            accesses: Cell<u32>,
        }
        impl crate::host::GuestMemory for Mem {
            fn has_memory(&self) -> bool {
                true
            }
            fn read_guest(
                &self,
                _gpa: u64,
                buf: &mut [u8],
            ) -> Result<(), crate::host::GuestMemoryError> {
                self.accesses.set(self.accesses.get() + 1);
                buf.fill(0);
                if buf.len() == 16 {
                    buf[..8].copy_from_slice(&crate::stats::SCMSTATS_EYECATCHER);
                    buf[8..12].copy_from_slice(&crate::stats::SCMSTATS_VERSION.to_be_bytes());
                    buf[12..16].copy_from_slice(&self.count.to_be_bytes());
                } else {
                    buf.copy_from_slice(&crate::stats::STAT_IDS[0][..buf.len()]);
                }
                Ok(())
            }
            fn write_guest(
                &self,
                _gpa: u64,
                _data: &[u8],
            ) -> Result<(), crate::host::GuestMemoryError> {
                self.accesses.set(self.accesses.get() + 1);
                Ok(())
            }
        }
        impl crate::host::FlushExecutor for Mem {}
        impl crate::host::BindEvents for Mem {}
        impl crate::host::StatsSource for Mem {}
        let [a, _] = specs();
        let mut la = [0u8; 128 * 1024];
        let cells = [RefCell::new(Some(Device::new(
            a,
            SliceLabelStore::new(&mut la),
        )))];
        for (count, want, accesses) in [(u32::MAX, H_P3, 1), (17, H_P3, 1), (16, H_SUCCESS, 33)] {
            let host = Mem {
                count,
                accesses: Cell::new(0),
            };
            let m = Machine::with_host(&cfg(Profile::Papr), LocalSlots::new(&cells), host);
            let o = m.h_scm_performance_stats(D0, 0x1000, u64::MAX - 0x1000);
            assert_eq!(o.status, want, "count {count}");
            assert_eq!(m.host().accesses.get(), accesses, "count {count}");
        }
    }
}
