// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of plugs, unplugs, RTAS calls (well-formed or not),
//! CAS, resets, snapshots and restores, interleaved with the guest's
//! hcalls, against a machine, checked after every step against a model of
//! which slots hold a device; a second vCPU may act in the middle of any
//! life-cycle step (`tests/support/interleave.rs`).
//!
//! Shared by `tests/lifecycle_sequence.rs` (proptest, every `cargo test`)
//! and the `lifecycle` fuzz target (`#[path]`-included there).
//!
//! Checked: nothing panics; a call papr-scm declines leaves its returns
//! untouched and one it answers writes only `nret` words; a device is in a
//! slot exactly when the model says (plugs, immediate releases, releases by
//! RTAS and at reset); an hcall on an empty slot is H_PARAMETER and on a
//! plugged one is not; no connector is UNUSABLE with an unplug pending; an
//! event check-exception delivers parses as a PMEM "HP" section for a slot
//! papr-scm knows; the queue never exceeds its bound; a device leaves with
//! nothing bound; the host's mappings are the bindings and its executor's
//! flushes the machine's (whatever the second vCPU did half way); a
//! partition-wide UNBIND_ALL unbinds every bound block; a flush token the
//! machine holds polls to its end; a restore is taken exactly when the
//! snapshot has the machine's devices.

#![allow(dead_code)]

#[path = "interleave.rs"]
mod interleave;

use std::rc::Rc;

use papr_scm::config::{parse_uuid, DeviceKind, NvdimmConfig, Planner, Profile};
use papr_scm::device::Device;
use papr_scm::drc::DrcState;
use papr_scm::guest::parse_hotplug_section;
use papr_scm::hcall::*;
use papr_scm::host::GuestMemory;
use papr_scm::machine::{MachineState, RtasEffect, SlotTable, Unplug};
use papr_scm::rtas::RtasService;
use papr_scm::rtas_error_log::{EventQueue, EVENT_QUEUE_LEN};

use interleave::{Call, HookLabel, HookMachine};

const SLOTS: u32 = 3;
/// Where the work area and the event buffer go in guest RAM.
const WA: u32 = 0x3000;
const BUF: u32 = 0x5000;

fn config(profile: Profile) -> String {
    format!(
        "machine ram=2G maxmem=8G slots={SLOTS} profile={}\n\
         nvdimm slot=0 size=256M+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n",
        profile.name()
    )
}

/// One step.
#[derive(Debug, Clone)]
pub enum Step {
    /// The VMM plugs a device into `slot`.
    Plug(u32),
    /// The VMM asks for `slot`'s device.
    Unplug(u32),
    /// An RTAS call with its argument words and return count.
    Rtas(RtasService, Vec<u32>, usize),
    /// The guest writes the DRC index of `slot` into the work area.
    WorkArea(u32),
    /// CAS, with or without the dedicated hot-plug source.
    Cas(bool),
    /// A machine reset.
    Reset,
    /// The guest binds the whole device in the slot.
    Bind(u32),
    /// The guest starts a flush of the slot's device.
    Flush(u32),
    /// The guest polls the newest flush the slot's device holds.
    Poll(u32),
    /// H_SCM_UNBIND_ALL of the slot's DRC, or of the partition (`None`).
    UnbindAll(Option<u32>),
    /// The guest writes 8 label bytes of the slot's device.
    WriteLabel(u32),
    /// The VMM takes a snapshot.
    Snapshot,
    /// The VMM restores the last snapshot.
    Restore,
    /// The next life-cycle step has a second vCPU make this call half way.
    Vcpu2(u64, Regs),
}

/// A per-device call of the second vCPU, from two bytes.
fn vcpu2_call(sel: u8, v: u8) -> Step {
    let drc = 0x9000_0000 + u64::from(v % SLOTS as u8);
    let (opcode, regs) = match sel % 6 {
        0 => (H_SCM_BIND_MEM, [drc, 0, 1, u64::MAX, 0]),
        1 => (H_SCM_UNBIND_ALL, [H_UNBIND_SCOPE_DRC, drc, 0, 0, 0]),
        2 => (H_SCM_FLUSH, [drc, 0, 0, 0, 0]),
        3 => (H_SCM_FLUSH, [drc, u64::from(v >> 2) % 4 + 1, 0, 0, 0]),
        4 => (H_SCM_WRITE_METADATA, [drc, 8, 0xabcd, 8, 0]),
        _ => (H_SCM_HEALTH, [drc, 0, 0, 0, 0]),
    };
    let mut r = [0u64; 9];
    r[..5].copy_from_slice(&regs);
    Step::Vcpu2(opcode, r)
}

/// Reads steps out of fuzzer bytes, biased towards meaningful words.
pub fn decode(mut data: &[u8]) -> (Profile, Vec<Step>) {
    let mut byte = || -> Option<u8> {
        let (&b, rest) = data.split_first()?;
        data = rest;
        Some(b)
    };
    let profile = match byte() {
        Some(b) if b & 1 == 1 => Profile::Qemu,
        _ => Profile::Papr,
    };
    let mut steps = Vec::new();
    // A word: a PMEM index, a sensor type, a state, an address, or raw.
    let word = |byte: &mut dyn FnMut() -> Option<u8>| -> Option<u32> {
        let sel = byte()?;
        let v = byte()?;
        Some(match sel % 8 {
            0 => 0x9000_0000 + u32::from(v % 5),
            1 => [9001, 9002, 9003, 9004][usize::from(v % 4)],
            2 => u32::from(v % 4),
            3 => WA,
            4 => BUF,
            5 => [0x1000_0000, 0x4000_0000, 0x5000_0000, 0][usize::from(v % 4)],
            6 => 0x8000_0000 | u32::from(v),
            _ => u32::from_le_bytes([v, byte()?, byte()?, byte()?]),
        })
    };
    while let Some(kind) = byte() {
        if kind >= 200 {
            let slot = |b: Option<u8>| u32::from(b.unwrap_or(0)) % (SLOTS + 1);
            let step = match (kind - 200) % 8 {
                0 => Step::Bind(slot(byte())),
                1 => Step::Flush(slot(byte())),
                2 => Step::Poll(slot(byte())),
                3 => Step::UnbindAll(byte().and_then(|b| (b < 128).then(|| u32::from(b) % SLOTS))),
                4 => Step::WriteLabel(slot(byte())),
                5 => Step::Snapshot,
                6 => Step::Restore,
                _ => {
                    let (Some(sel), Some(v)) = (byte(), byte()) else {
                        break;
                    };
                    vcpu2_call(sel, v)
                }
            };
            steps.push(step);
            continue;
        }
        let step = match kind % 10 {
            0 => Step::Plug(u32::from(byte().unwrap_or(1)) % (SLOTS + 1)),
            1 => Step::Unplug(u32::from(byte().unwrap_or(1)) % (SLOTS + 1)),
            2 => Step::WorkArea(u32::from(byte().unwrap_or(1)) % (SLOTS + 2)),
            3 => Step::Cas(byte().unwrap_or(1) & 1 == 1),
            4 if byte().unwrap_or(0) % 8 == 0 => Step::Reset,
            _ => {
                let Some(s) = byte() else { break };
                let service = RtasService::ALL[usize::from(s) % RtasService::ALL.len()].0;
                let n = byte().unwrap_or(0);
                let (nargs, nret) = (usize::from(n % 8), usize::from(n / 8 % 4));
                let mut args = Vec::with_capacity(nargs);
                for _ in 0..nargs {
                    match word(&mut byte) {
                        Some(w) => args.push(w),
                        None => break,
                    }
                }
                Step::Rtas(service, args, nret)
            }
        };
        steps.push(step);
    }
    (profile, steps)
}

/// The machine, the VMM's queue and planner, and the model.
pub struct World {
    pub profile: Profile,
    pub machine: Rc<HookMachine>,
    pub events: EventQueue,
    planner: Planner,
    /// The model: whether each slot holds a device.
    present: [bool; SLOTS as usize],
    snap: Option<MachineState>,
    armed: Option<Call>,
}

impl World {
    pub fn new(profile: Profile) -> Self {
        let (machine, planner, _) = interleave::build(&config(profile));
        // The work area and buffer pages exist from the start.
        machine
            .host()
            .ram
            .write_guest(u64::from(WA), &[0; 4096])
            .unwrap();
        machine
            .host()
            .ram
            .write_guest(u64::from(BUF), &[0; 128])
            .unwrap();
        World {
            profile,
            machine,
            events: EventQueue::new(),
            planner,
            present: [true, false, false],
            snap: None,
            armed: None,
        }
    }

    fn released(&mut self, slot: u32, dev: &Device<HookLabel>) {
        assert_eq!(dev.spec().slot, slot);
        assert!(self.present[slot as usize], "slot {slot} released twice");
        assert!(
            dev.bindings().is_empty(),
            "slot {slot}: the device left bound"
        );
        self.present[slot as usize] = false;
        self.planner.unplug(dev.spec()).unwrap();
    }

    pub fn step(&mut self, step: &Step) {
        let life = matches!(
            step,
            Step::Plug(_)
                | Step::Unplug(_)
                | Step::Rtas(..)
                | Step::Cas(_)
                | Step::Reset
                | Step::Restore
        );
        let vcpu = Rc::clone(&self.machine.host().vcpu);
        let before = self.present;
        if life {
            if let Some(c) = self.armed.take() {
                vcpu.arm(c);
            }
        }
        self.act(step);
        if life {
            vcpu.finish();
            for r in vcpu.take_ran() {
                // Half way through an operation or not, a call on a slot
                // empty before and after it is H_PARAMETER, and one on a
                // slot full before and after it finds the device (the
                // host's view, checked next, shows what it did there).
                let drc = match r.call.opcode {
                    H_SCM_UNBIND_ALL => r.call.regs[1],
                    _ => r.call.regs[0],
                };
                let slot = self.machine.slot_of(drc).unwrap() as usize;
                match (before[slot], self.present[slot]) {
                    // (UNBIND_ALL answers an empty slot's DRC with H_P2.)
                    (false, false) => {
                        assert!([H_PARAMETER, H_P2].contains(&r.status), "{r:x?}")
                    }
                    (true, true) if r.call.opcode != H_SCM_FLUSH => {
                        assert!(![H_PARAMETER, H_P2].contains(&r.status), "{r:x?}")
                    }
                    _ => {}
                }
            }
        }
        self.check();
    }

    fn act(&mut self, step: &Step) {
        match step {
            Step::Plug(slot) => {
                let mut c = NvdimmConfig::new(
                    (256 << 20) + (128 << 10),
                    128 << 10,
                    parse_uuid("11111111-2222-4333-8444-555555555555").unwrap(),
                );
                // It needs H_SCM_FLUSH: its flushes travel through every
                // life-cycle step.
                c.kind = DeviceKind::SpaprNvdimm;
                c.slot = Some(u64::from(*slot));
                let Ok(spec) = self.planner.plug(&c) else {
                    // Busy or out of range in the planner: the VMM stops here.
                    assert!(*slot >= SLOTS || self.present[*slot as usize]);
                    return;
                };
                let dev = interleave::device(&self.machine, &spec);
                match self.machine.plug(dev, &mut self.events) {
                    Ok(()) => {
                        assert!(!self.present[*slot as usize]);
                        let ev = self.events.iter().last().unwrap();
                        assert_eq!(ev.drc.slot(), *slot);
                        self.present[*slot as usize] = true;
                    }
                    Err(e) => {
                        // Only a full queue refuses a slot the planner gave.
                        assert_eq!(self.events.len(), EVENT_QUEUE_LEN, "{e}");
                        self.planner.unplug(&spec).unwrap();
                    }
                }
            }
            Step::Unplug(slot) => match self.machine.unplug(*slot, &mut self.events) {
                Ok(Unplug::Released(r)) => self.released(*slot, &r.device),
                Ok(Unplug::Requested) => {
                    let ev = self.events.iter().last().unwrap();
                    assert_eq!(ev.drc.slot(), *slot);
                }
                Err(_) => {}
            },
            Step::WorkArea(slot) => {
                let index = 0x9000_0000u32 + slot;
                let mut head = [0u8; 8];
                head[..4].copy_from_slice(&index.to_be_bytes());
                self.machine
                    .host()
                    .ram
                    .write_guest(u64::from(WA), &head)
                    .unwrap();
            }
            Step::Cas(hp) => {
                self.events.cas(*hp);
                let mut gone = Vec::new();
                self.machine.reset_connectors(|r| gone.push(r.device));
                for d in gone {
                    self.released(d.spec().slot, &d);
                }
            }
            Step::Reset => {
                let mut gone = Vec::new();
                self.machine
                    .reset(&mut self.events, |r| gone.push(r.device));
                for d in gone {
                    self.released(d.spec().slot, &d);
                }
            }
            Step::Rtas(service, args, nret) => {
                const UNTOUCHED: u32 = 0xA5A5_A5A5;
                let mut rets = vec![UNTOUCHED; *nret];
                let queued = self.events.len();
                let answer = self
                    .machine
                    .rtas(*service, args, &mut rets, &mut self.events);
                match answer {
                    None => assert!(rets.iter().all(|&r| r == UNTOUCHED), "{step:?}: {rets:x?}"),
                    Some(effect) => {
                        if let RtasEffect::Released(r) = effect {
                            self.released(r.device.spec().slot, &r.device);
                        }
                        if *service == RtasService::CheckException && rets == [0] {
                            assert_eq!(self.events.len() + 1, queued);
                            // The whole event was written (papr copies at most
                            // the guest's length, which may be 0).
                            if self.profile == Profile::Qemu || args[5] >= 116 {
                                let mut log = [0u8; 116];
                                let ram = &self.machine.host().ram;
                                ram.read_guest(u64::from(args[4]), &mut log).unwrap();
                                let req = parse_hotplug_section(&log).expect("an HP section");
                                assert_eq!((req.resource, req.id_type), (6, 2));
                                assert!(req.drc & 0x0FFF_FFFF < SLOTS);
                            }
                        }
                    }
                }
            }
            Step::Bind(slot) => {
                let drc = 0x9000_0000 + u64::from(*slot);
                let blocks = self.blocks(*slot).unwrap_or(1);
                let o = self.machine.h_scm_bind_mem(drc, 0, blocks, u64::MAX, 0);
                let ok = [H_SUCCESS, H_OVERLAP, H_PARAMETER];
                assert!(ok.contains(&o.status), "{step:?}: {}", o.status);
            }
            Step::Flush(slot) => {
                let o = self.machine.h_scm_flush(0x9000_0000 + u64::from(*slot), 0);
                let ok =
                    o.status == H_SUCCESS || o.status == H_PARAMETER || o.status.is_long_busy();
                assert!(ok, "{step:?}: {}", o.status);
            }
            Step::Poll(slot) => {
                let newest = self
                    .machine
                    .slots()
                    .with_slot(*slot, |d| {
                        d.state().flushes.iter().flatten().map(|r| r.token).max()
                    })
                    .flatten();
                let Some(t) = newest else { return };
                let drc = 0x9000_0000 + u64::from(*slot);
                // A token the machine holds polls to its end.
                for _ in 0..64 {
                    let o = self.machine.h_scm_flush(drc, t);
                    if o.status == H_SUCCESS {
                        return;
                    }
                    assert!(o.status.is_long_busy(), "flush {t}: {}", o.status);
                    assert_eq!(o.out.r4, Some(t));
                }
                panic!("flush {t} never completed");
            }
            Step::UnbindAll(None) => {
                let bound: u64 = (0..SLOTS)
                    .filter_map(|s| self.machine.slots().with_slot(s, |d| d.bindings().count()))
                    .sum();
                let o = self.machine.h_scm_unbind_all(H_UNBIND_SCOPE_ALL, 0, 0);
                assert_eq!(o.status, H_SUCCESS);
                if self.profile == Profile::Papr {
                    assert_eq!(o.out.r5, Some(bound), "UNBIND_ALL missed bound blocks");
                }
            }
            Step::UnbindAll(Some(slot)) => {
                let drc = 0x9000_0000 + u64::from(*slot);
                let o = self.machine.h_scm_unbind_all(H_UNBIND_SCOPE_DRC, drc, 0);
                assert!([H_SUCCESS, H_P2].contains(&o.status), "{}", o.status);
            }
            Step::WriteLabel(slot) => {
                let drc = 0x9000_0000 + u64::from(*slot);
                let o = self.machine.h_scm_write_metadata(drc, 0, 0x1234, 8);
                assert!([H_SUCCESS, H_PARAMETER].contains(&o.status));
            }
            Step::Snapshot => self.snap = Some(self.machine.state(&self.events)),
            Step::Restore => {
                let Some(snap) = self.snap.clone() else {
                    return;
                };
                // Taken exactly when the snapshot has the machine's devices:
                // the same slots, each the same size and flush requirement.
                let same = (0..SLOTS).all(|s| {
                    let here = self.machine.slots().with_slot(s, |d| {
                        let spec = d.spec();
                        (
                            spec.flush == papr_scm::config::FlushMode::Hcall,
                            spec.blocks(),
                        )
                    });
                    let there = snap
                        .devices
                        .iter()
                        .find(|d| d.slot == s)
                        .map(|d| (d.flush_required, d.blocks));
                    assert_eq!(here.is_some(), self.present[s as usize]);
                    here == there
                });
                let r = self.machine.restore(&snap, &mut self.events);
                assert_eq!(r.is_ok(), same, "{r:?}");
            }
            Step::Vcpu2(opcode, regs) => {
                self.armed = Some(Call {
                    opcode: *opcode,
                    regs: *regs,
                })
            }
        }
    }

    fn blocks(&self, slot: u32) -> Option<u64> {
        self.machine.slots().with_slot(slot, |d| d.spec().blocks())
    }

    fn check(&self) {
        assert!(self.events.len() <= EVENT_QUEUE_LEN);
        interleave::check_host_view(&self.machine);
        for slot in 0..SLOTS {
            let drc = 0x9000_0000 + u64::from(slot);
            let health = self.machine.h_scm_health(drc).status;
            let conn = self.machine.slots().with_slot(slot, |d| *d.connector());
            assert_eq!(conn.is_some(), self.present[slot as usize], "slot {slot}");
            if let Some(c) = conn {
                assert_ne!(health, H_PARAMETER);
                assert!(!(c.drc_state() == DrcState::Unusable && c.unplug_requested()));
            } else {
                assert_eq!(health, H_PARAMETER);
            }
        }
    }
}

/// Runs a sequence decoded from `data`.
pub fn run(data: &[u8]) {
    let (profile, steps) = decode(data);
    let mut w = World::new(profile);
    for s in &steps {
        w.step(s);
    }
}
