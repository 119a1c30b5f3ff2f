// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A machine whose host lets a second "vCPU" act in the middle of a
//! life-cycle operation, and keeps the host's view of the devices.
//!
//! Shared by `tests/support/sequence.rs` and `tests/support/lifecycle.rs`
//! (and so by the `hcall_sequence`, `lifecycle` and `snapshot` fuzz
//! targets).
//!
//! The second vCPU is one hcall armed before a reset, release, plug or
//! restore ([`Vcpu2::arm`]). It is made at the first host hook the
//! operation reaches (a bind event, a flush start, poll or forget, a
//! label sync): at once if its slot is free, else the moment the
//! operation lets go of that slot's lock, which is when a real vCPU
//! waiting for it would run (parking_lot hands a lock over to a thread
//! that has waited). A call the operation never reaches a hook for is
//! made after it. So every point where an operation drops a lock half
//! way is a point the second vCPU can act at.
//!
//! The host keeps what a VMM would believe: the blocks it has mapped per
//! slot (`bound` minus `unbound`, a block mapped twice or unmapped
//! unmapped is a panic) and the flushes its executor holds (started and
//! not yet collected or forgotten; a poll of one it does not hold is a
//! panic). [`check_host_view`] compares both with the machine.

#![allow(dead_code)]

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::{Rc, Weak};

use papr_scm::config::{DeviceSpec, Planner};
use papr_scm::device::Device;
use papr_scm::hcall::*;
use papr_scm::host::{
    BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, GuestMemoryError, StatsSource,
};
use papr_scm::label::{LabelError, LabelStore, SparseLabelStore};
use papr_scm::machine::{InsertErrorKind, Machine, SharedSlots, SlotTable};
use papr_scm::replay::SparseRam;
use papr_scm::rtas_error_log::RtcTime;
use papr_scm::transcript::Transcript;

/// The machine the models run.
pub type HookMachine = Machine<HookSlots, HookHost>;

const BLOCK: u64 = 256 << 20;

/// One hcall of the second vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The opcode.
    pub opcode: u64,
    /// r4..r12.
    pub regs: Regs,
}

/// A call the second vCPU made, and its answer.
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    /// The call.
    pub call: Call,
    /// r3.
    pub status: ReturnCode,
    /// The registers after the call.
    pub out: Regs,
}

/// The second vCPU.
#[derive(Debug, Default)]
pub struct Vcpu2 {
    machine: OnceCell<Weak<HookMachine>>,
    plan: Cell<Option<Call>>,
    deferred: Cell<Option<Call>>,
    /// Slots whose lock the machine holds now, innermost last.
    held: RefCell<Vec<u32>>,
    /// What the second vCPU did.
    pub ran: RefCell<Vec<Ran>>,
}

impl Vcpu2 {
    /// Arms `call` for the next hook point.
    pub fn arm(&self, call: Call) {
        self.plan.set(Some(call));
    }

    /// A hook point: the armed call is made now, or as soon as its slot's
    /// lock is let go.
    pub fn fire(&self) {
        let Some(c) = self.plan.take() else { return };
        if self.blocked(&c) {
            self.deferred.set(Some(c));
        } else {
            self.run(c);
        }
    }

    /// The end of an operation: a call not made yet is made now.
    pub fn finish(&self) {
        if let Some(c) = self.plan.take().or_else(|| self.deferred.take()) {
            self.run(c);
        }
    }

    /// The calls made since the last `take_ran`.
    pub fn take_ran(&self) -> Vec<Ran> {
        std::mem::take(&mut *self.ran.borrow_mut())
    }

    fn unlocked(&self) {
        if let Some(c) = self.deferred.get() {
            if !self.blocked(&c) {
                self.deferred.set(None);
                self.run(c);
            }
        }
    }

    fn machine(&self) -> Rc<HookMachine> {
        self.machine
            .get()
            .and_then(Weak::upgrade)
            .expect("the machine is alive")
    }

    /// True if the call needs a slot the machine holds now (any, for a
    /// call that spans the slots).
    fn blocked(&self, c: &Call) -> bool {
        let held = self.held.borrow();
        if held.is_empty() {
            return false;
        }
        let m = self.machine();
        let drc = match (c.opcode, c.regs[0]) {
            (H_SCM_QUERY_LOGICAL_MEM_BINDING, _) => return true,
            (H_SCM_UNBIND_ALL, H_UNBIND_SCOPE_ALL) => return true,
            (H_SCM_UNBIND_ALL, _) => c.regs[1],
            (_, drc) => drc,
        };
        m.slot_of(drc).is_some_and(|s| held.contains(&s))
    }

    fn run(&self, c: Call) {
        let m = self.machine();
        let mut out = c.regs;
        let status = m.handle(c.opcode, &mut out).unwrap_or(H_FUNCTION);
        self.ran.borrow_mut().push(Ran {
            call: c,
            status,
            out,
        });
    }
}

/// A sparse label store whose sync is a hook point.
#[derive(Debug)]
pub struct HookLabel {
    inner: SparseLabelStore,
    vcpu: Rc<Vcpu2>,
}

impl HookLabel {
    /// An empty label area for `spec`.
    pub fn new(spec: &DeviceSpec, vcpu: &Rc<Vcpu2>) -> Self {
        HookLabel {
            inner: SparseLabelStore::new(spec.layout.label_size()),
            vcpu: Rc::clone(vcpu),
        }
    }
}

impl LabelStore for HookLabel {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
        self.inner.read(offset, buf)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
        self.inner.write(offset, data)
    }
    fn flush(&mut self) -> Result<(), LabelError> {
        self.vcpu.fire();
        self.inner.flush()
    }
}

/// `SharedSlots` that tell the second vCPU which slot the machine holds.
#[derive(Debug)]
pub struct HookSlots {
    inner: SharedSlots<HookLabel>,
    vcpu: Rc<Vcpu2>,
}

impl SlotTable for HookSlots {
    type Label = HookLabel;

    fn slot_count(&self) -> u32 {
        self.inner.slot_count()
    }

    fn with_slot<R>(&self, slot: u32, f: impl FnOnce(&mut Device<HookLabel>) -> R) -> Option<R> {
        self.vcpu.held.borrow_mut().push(slot);
        let r = self.inner.with_slot(slot, f);
        self.vcpu.held.borrow_mut().pop();
        self.vcpu.unlocked();
        r
    }

    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    fn put(&self, device: Device<HookLabel>) -> Result<(), (InsertErrorKind, Device<HookLabel>)> {
        self.inner.put(device)
    }

    fn take(&self, slot: u32) -> Option<Device<HookLabel>> {
        self.inner.take(slot)
    }
}

/// The host: sparse RAM, flushes pending until polled, and the VMM's view.
#[derive(Debug)]
pub struct HookHost {
    /// Guest RAM.
    pub ram: SparseRam,
    /// The second vCPU.
    pub vcpu: Rc<Vcpu2>,
    /// Block numbers (guest address / 256 MiB) mapped, by slot.
    pub mapped: RefCell<BTreeMap<u32, BTreeSet<u64>>>,
    /// Flush tokens the executor holds, by slot.
    pub live: RefCell<BTreeMap<u32, BTreeSet<u64>>>,
    /// Blocks reported unbound, by slot, since the last `take_unbound`.
    pub unbound: RefCell<BTreeMap<u32, u64>>,
    /// The guest's clock.
    pub clock: Cell<RtcTime>,
}

impl HookHost {
    /// Blocks reported unbound per slot since the last call.
    pub fn take_unbound(&self) -> BTreeMap<u32, u64> {
        std::mem::take(&mut *self.unbound.borrow_mut())
    }
}

impl GuestMemory for HookHost {
    fn has_memory(&self) -> bool {
        true
    }
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        self.ram.read_guest(gpa, buf)
    }
    fn write_guest(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        self.ram.write_guest(gpa, data)
    }
}

impl FlushExecutor for HookHost {
    fn flushes_data(&self) -> bool {
        true
    }
    fn start_flush(&self, slot: u32, token: u64) -> FlushStatus {
        self.live
            .borrow_mut()
            .entry(slot)
            .or_default()
            .insert(token);
        self.vcpu.fire();
        FlushStatus::Pending
    }
    fn poll_flush(&self, slot: u32, token: u64) -> FlushStatus {
        let held = self
            .live
            .borrow_mut()
            .get_mut(&slot)
            .is_some_and(|s| s.remove(&token));
        assert!(
            held,
            "slot {slot}: polled flush {token}, which the executor does not hold"
        );
        self.vcpu.fire();
        FlushStatus::Done(true)
    }
    fn forget_flush(&self, slot: u32, token: u64) {
        if let Some(s) = self.live.borrow_mut().get_mut(&slot) {
            s.remove(&token);
        }
        self.vcpu.fire();
    }
}

impl BindEvents for HookHost {
    fn bound(&self, slot: u32, addr: u64, blocks: u64) {
        {
            let mut m = self.mapped.borrow_mut();
            let set = m.entry(slot).or_default();
            for b in addr / BLOCK..addr / BLOCK + blocks {
                assert!(set.insert(b), "slot {slot}: block {b:#x} mapped twice");
            }
        }
        self.vcpu.fire();
    }
    fn unbound(&self, slot: u32, addr: u64, blocks: u64) {
        {
            let mut m = self.mapped.borrow_mut();
            let set = m.entry(slot).or_default();
            for b in addr / BLOCK..addr / BLOCK + blocks {
                assert!(
                    set.remove(&b),
                    "slot {slot}: block {b:#x} unmapped, never mapped"
                );
            }
            *self.unbound.borrow_mut().entry(slot).or_default() += blocks;
        }
        self.vcpu.fire();
    }
}

impl StatsSource for HookHost {}

impl EventSignal for HookHost {
    fn guest_time(&self) -> RtcTime {
        self.clock.get()
    }
}

/// The machine a configuration describes, its planner, and the specs of
/// its devices.
pub fn build(config: &str) -> (Rc<HookMachine>, Planner, Vec<DeviceSpec>) {
    let t = Transcript::parse(config).unwrap();
    let (mc, specs) = t.plan().unwrap();
    let (planner, _) = t.planner().unwrap();
    let vcpu = Rc::new(Vcpu2::default());
    let slots = HookSlots {
        inner: SharedSlots::new(mc.slots),
        vcpu: Rc::clone(&vcpu),
    };
    for spec in &specs {
        assert!(slots
            .inner
            .insert(Device::new(*spec, HookLabel::new(spec, &vcpu)))
            .is_ok());
    }
    let host = HookHost {
        ram: SparseRam::new(mc.ram_size),
        vcpu: Rc::clone(&vcpu),
        mapped: RefCell::default(),
        live: RefCell::default(),
        unbound: RefCell::default(),
        clock: Cell::default(),
    };
    let m = Rc::new(Machine::with_host(&mc, slots, host));
    m.check_host().unwrap();
    vcpu.machine.set(Rc::downgrade(&m)).unwrap();
    (m, planner, specs)
}

/// A device for `spec` with an empty label area, for a plug.
pub fn device(m: &HookMachine, spec: &DeviceSpec) -> Device<HookLabel> {
    Device::new(*spec, HookLabel::new(spec, &m.host().vcpu))
}

/// The models look at the devices through the slot table, never through
/// `Machine::with_device`, which marks a slot bound as a caller's fault
/// injection may need and so would hide a missing mark.
///
/// The host's view agrees with the machine: the blocks mapped are the
/// blocks bound (none for an empty slot), and the flushes the executor
/// holds are the requests the machine still waits on.
pub fn check_host_view(m: &HookMachine) {
    for slot in 0..m.slots().slot_count() {
        let dev = m.slots().with_slot(slot, |d| {
            let base = d.spec().addr / BLOCK;
            let bound: BTreeSet<u64> = d
                .bindings()
                .runs()
                .iter()
                .flat_map(|&(s, n)| base + s..base + s + n)
                .collect();
            let waiting: BTreeSet<u64> = d
                .state()
                .flushes
                .iter()
                .flatten()
                .filter(|r| r.result.is_none())
                .map(|r| r.token)
                .collect();
            (bound, waiting)
        });
        let (bound, waiting) = dev.unwrap_or_default();
        let host = m.host();
        let mapped = host.mapped.borrow().get(&slot).cloned().unwrap_or_default();
        assert_eq!(
            mapped, bound,
            "slot {slot}: the host's mappings are not the bindings"
        );
        let live = host.live.borrow().get(&slot).cloned().unwrap_or_default();
        assert_eq!(
            live, waiting,
            "slot {slot}: the executor's flushes are not the machine's"
        );
    }
}
