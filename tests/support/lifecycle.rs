// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of plugs, unplugs, RTAS calls (well-formed or not),
//! CAS and resets against a machine, checked after every step against a
//! model of which slots hold a device.
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
//! papr-scm knows; the queue never exceeds its bound.

#![allow(dead_code)]

use papr_scm::config::{parse_uuid, NvdimmConfig, Planner, Profile};
use papr_scm::device::Device;
use papr_scm::drc::DrcState;
use papr_scm::guest::parse_hotplug_section;
use papr_scm::hcall::*;
use papr_scm::host::GuestMemory;
use papr_scm::label::SparseLabelStore;
use papr_scm::machine::{RtasEffect, Unplug};
use papr_scm::replay::{build, ReplayMachine};
use papr_scm::rtas::RtasService;
use papr_scm::rtas_error_log::{EventQueue, EVENT_QUEUE_LEN};
use papr_scm::transcript::Transcript;

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
    pub machine: ReplayMachine,
    pub events: EventQueue,
    planner: Planner,
    /// The model: whether each slot holds a device.
    present: [bool; SLOTS as usize],
}

impl World {
    pub fn new(profile: Profile) -> Self {
        let t = Transcript::parse(&config(profile)).unwrap();
        let machine = build(&t).unwrap();
        let (planner, _) = t.planner().unwrap();
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
        }
    }

    fn released(&mut self, slot: u32, dev: &Device<SparseLabelStore>) {
        assert_eq!(dev.spec().slot, slot);
        assert!(self.present[slot as usize], "slot {slot} released twice");
        self.present[slot as usize] = false;
        self.planner.unplug(dev.spec()).unwrap();
    }

    pub fn step(&mut self, step: &Step) {
        match step {
            Step::Plug(slot) => {
                let mut c = NvdimmConfig::new(
                    (256 << 20) + (128 << 10),
                    128 << 10,
                    parse_uuid("11111111-2222-4333-8444-555555555555").unwrap(),
                );
                c.slot = Some(u64::from(*slot));
                let Ok(spec) = self.planner.plug(&c) else {
                    // Busy or out of range in the planner: the VMM stops here.
                    assert!(*slot >= SLOTS || self.present[*slot as usize]);
                    return;
                };
                let dev = Device::new(spec, SparseLabelStore::new(128 << 10));
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
        }
        self.check();
    }

    fn check(&self) {
        assert!(self.events.len() <= EVENT_QUEUE_LEN);
        for slot in 0..SLOTS {
            let drc = 0x9000_0000 + u64::from(slot);
            let health = self.machine.h_scm_health(drc).status;
            let conn = self.machine.with_device(slot, |d| *d.connector());
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
