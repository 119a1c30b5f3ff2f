// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of hcalls, fault injections and resets against a
//! machine, each step checked against a simple reference model.
//!
//! Shared by `tests/hcall_sequence.rs` (proptest, every `cargo test`) and
//! the `hcall_sequence` fuzz target (`#[path]`-included there).
//!
//! The model keeps what the guest can observe, in the plainest form: the
//! bound blocks of each device as a set, the label bytes written, the flush
//! counter and the outstanding tokens with their hold and injected result,
//! the health bits, the bind faults and the bind in progress. For every call
//! it predicts the status and the outputs; only PERFORMANCE_STATS (whose
//! answer depends on guest memory) is checked for its status set alone. No
//! call may write a register outside its outputs, and an error writes none.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use papr_scm::config::Profile;
use papr_scm::hcall::*;
use papr_scm::label::LabelStore;
use papr_scm::replay::{build, inject, ReplayMachine};
use papr_scm::rtas_error_log::EventQueue;
use papr_scm::transcript::{Injection, Transcript};

const BLOCK: u64 = 256 << 20;
const LABEL: u64 = 128 << 10;
const DRC0: u64 = 0x9000_0000;
const SLOTS: u64 = 3;
const MAX_FLUSHES: usize = 32;

/// (base address, blocks, needs H_SCM_FLUSH) of slots 0 and 1; slot 2 is empty.
const DEVICES: [(u64, u64, bool); 2] = [(0x8000_0000, 4, false), (0xC000_0000, 1, true)];

fn config(profile: Profile) -> String {
    format!(
        "machine ram=2G maxmem=8G slots=3 profile={}\n\
         nvdimm slot=0 size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n\
         nvdimm slot=1 size=256M+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9f type=spapr-nvdimm\n",
        profile.name()
    )
}

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Step {
    /// An hcall with its registers.
    Call(u64, Regs),
    /// A fault injected into a device.
    Inject(u32, Injection),
    /// A machine reset.
    Reset,
    /// H_SCM_FLUSH polling the device's newest outstanding token, as the
    /// guest's flush loop does (0, a new request, when none is).
    Poll(u32),
    /// H_SCM_BIND_MEM continuing the device's bind in progress with its
    /// token, as the guest's bind loop does (a new whole-device bind when
    /// none is).
    Continue(u32),
}

/// Reads steps out of fuzzer bytes, biased towards meaningful values.
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
    while let Some(kind) = byte() {
        let step = match kind % 16 {
            0..=8 | 12 => {
                let Some(sel) = byte() else { break };
                let opcode = SCM_HCALLS[usize::from(sel) % SCM_HCALLS.len()].0;
                let mut regs = [0u64; 9];
                for r in regs.iter_mut().take(5) {
                    let Some(s) = byte() else { break };
                    let small = u64::from(s >> 3);
                    *r = match s % 8 {
                        0 => small,
                        1 => DRC0 + small % 4,
                        2 => DEVICES[usize::from(s >> 7)].0 + (small % 8) * BLOCK,
                        3 => u64::MAX,
                        4 => (small * 8 + u64::from(s >> 6)) % (LABEL + 16),
                        5 => LABEL - small % 16,
                        6 => [1, 2, 4, 8, 3, 0][(small % 6) as usize],
                        _ => {
                            let mut v = 0u64;
                            for _ in 0..8 {
                                v = v << 8 | u64::from(byte().unwrap_or(0));
                            }
                            v
                        }
                    };
                }
                Step::Call(opcode, regs)
            }
            9 | 10 => Step::Poll(u32::from(byte().unwrap_or(1) % 3)),
            11 => Step::Continue(u32::from(byte().unwrap_or(0) % 3)),
            13 | 14 => {
                let (Some(slot), Some(what)) = (byte(), byte()) else {
                    break;
                };
                let k = u32::from(what >> 3) % 4;
                let what = match what % 6 {
                    0 => Injection::Health(HealthBits::from_bits_truncate(
                        1 << (63 - u64::from(what >> 3) % 11),
                    )),
                    1 => Injection::FlushResult(if k % 2 == 0 { H_SUCCESS } else { H_HARDWARE }),
                    2 => Injection::FlushHold(k),
                    3 => Injection::BindBusy(k),
                    4 => Injection::BindBudget(u64::from(k) + 1),
                    _ => Injection::FlushOrder(
                        [H_LONG_BUSY_ORDER_1_MSEC, H_LONG_BUSY_ORDER_10_MSEC][k as usize % 2],
                    ),
                };
                Step::Inject(u32::from(slot) % 3, what)
            }
            _ => Step::Reset,
        };
        steps.push(step);
    }
    (profile, steps)
}

#[derive(Debug, Default, Clone, Copy)]
struct Flush {
    hold: u32,
    injected: Option<ReturnCode>,
    fresh: bool,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    token: u64,
    start: u64,
    count: u64,
    done: u64,
}

#[derive(Debug, Default)]
struct Dev {
    bound: BTreeSet<u64>,
    label: BTreeMap<u64, u8>,
    health: u64,
    flush_counter: u64,
    flushes: BTreeMap<u64, Flush>,
    flush_hold: u32,
    flush_result: Option<ReturnCode>,
    flush_order: Option<ReturnCode>,
    bind_busy: u32,
    bind_budget: Option<u64>,
    bind_token: u64,
    progress: Option<Progress>,
}

/// What a call is expected to answer.
enum Want {
    /// This status and these `(register index, value)` outputs.
    Exactly(ReturnCode, Vec<(usize, u64)>),
    /// Any of these statuses; outputs unchecked beyond the register rule.
    OneOf(&'static [ReturnCode]),
}

/// The machine and the model side by side.
pub struct World {
    profile: Profile,
    machine: ReplayMachine,
    devs: [Dev; 2],
}

fn rc(status: ReturnCode, outs: &[(usize, u64)]) -> Want {
    Want::Exactly(status, outs.to_vec())
}

impl World {
    /// A fresh machine and model in `profile`.
    pub fn new(profile: Profile) -> Self {
        let t = Transcript::parse(&config(profile)).unwrap();
        World {
            profile,
            machine: build(&t).unwrap(),
            devs: Default::default(),
        }
    }

    fn papr(&self) -> bool {
        self.profile == Profile::Papr
    }

    /// The slot of an occupied PMEM DRC, as the machine must resolve it.
    fn slot(&self, drc: u64) -> Option<usize> {
        let drc = if self.papr() {
            u32::try_from(drc).ok()?
        } else {
            drc as u32
        };
        let slot = u64::from(drc).checked_sub(DRC0).filter(|s| *s < SLOTS)?;
        (slot < DEVICES.len() as u64).then_some(slot as usize)
    }

    /// Runs and checks one step; panics on a difference.
    pub fn step(&mut self, step: &Step) {
        match *step {
            Step::Reset => {
                // A system reset: a fresh boot finds nothing bound.
                self.machine.reset(&mut EventQueue::new(), |_| {});
                for d in &mut self.devs {
                    d.flushes.clear();
                    d.bound.clear();
                    d.progress = None;
                }
            }
            Step::Inject(slot, what) => {
                let applied = inject(&self.machine, slot, what);
                assert_eq!(applied.is_some(), (slot as usize) < DEVICES.len());
                let Some(d) = self.devs.get_mut(slot as usize) else {
                    return;
                };
                match what {
                    Injection::Health(b) => d.health |= b.bits(),
                    Injection::FlushResult(c) => d.flush_result = Some(c),
                    Injection::FlushHold(k) => d.flush_hold = k,
                    Injection::FlushOrder(c) => d.flush_order = Some(c),
                    Injection::BindBusy(k) => d.bind_busy = k,
                    Injection::BindBudget(n) => d.bind_budget = Some(n),
                    _ => unreachable!("not generated"),
                }
            }
            Step::Call(opcode, regs) => self.call(opcode, regs),
            Step::Poll(slot) => {
                let token = self
                    .devs
                    .get(slot as usize)
                    .and_then(|d| d.flushes.keys().next_back().copied())
                    .unwrap_or(0);
                self.call(
                    H_SCM_FLUSH,
                    [DRC0 + u64::from(slot), token, 0, 0, 0, 0, 0, 0, 0],
                );
            }
            Step::Continue(slot) => {
                let blocks = DEVICES.get(slot as usize).map_or(1, |d| d.1);
                let (start, count, token) = self
                    .devs
                    .get(slot as usize)
                    .and_then(|d| d.progress)
                    .map_or((0, blocks, 0), |p| (p.start, p.count, p.token));
                let regs = [
                    DRC0 + u64::from(slot),
                    start,
                    count,
                    u64::MAX,
                    token,
                    0,
                    0,
                    0,
                    0,
                ];
                self.call(H_SCM_BIND_MEM, regs);
            }
        }
    }

    fn call(&mut self, opcode: u64, regs: Regs) {
        let want = self.predict(opcode, &regs);
        let mut got = regs;
        let status = self
            .machine
            .handle(opcode, &mut got)
            .expect("an SCM opcode is answered");
        let changed: Vec<usize> = (0..9).filter(|&i| got[i] != regs[i]).collect();
        if status.0 < 0 {
            assert!(
                changed.is_empty(),
                "{opcode:#x} {regs:x?}: error {status} wrote {changed:?}"
            );
        }
        let outputs: &[usize] = match opcode {
            H_SCM_BIND_MEM => &[0, 1, 2],
            H_SCM_HEALTH | H_SCM_QUERY_LOGICAL_MEM_BINDING | H_SCM_UNBIND_ALL => &[0, 1],
            H_SCM_UNBIND_MEM => &[1],
            _ => &[0],
        };
        assert!(
            changed.iter().all(|i| outputs.contains(i)),
            "{opcode:#x} {regs:x?}: wrote {changed:?}, outputs are {outputs:?}"
        );
        match want {
            Want::Exactly(s, outs) => {
                assert_eq!(status, s, "{opcode:#x} {regs:x?}");
                for (i, v) in outs {
                    assert_eq!(got[i], v, "{opcode:#x} {regs:x?}: r{}", i + 4);
                }
            }
            Want::OneOf(set) => assert!(set.contains(&status), "{opcode:#x} {regs:x?}: {status}"),
        }
        self.check_state();
    }

    /// The model's answer, updating the model as the machine must update
    /// itself.
    fn predict(&mut self, opcode: u64, r: &Regs) -> Want {
        let papr = self.papr();
        let no_handler = !papr
            && matches!(
                opcode,
                H_SCM_QUERY_BLOCK_MEM_BINDING
                    | H_SCM_QUERY_LOGICAL_MEM_BINDING
                    | H_SCM_PERFORMANCE_STATS
            );
        if no_handler {
            return rc(H_FUNCTION, &[]);
        }
        match opcode {
            H_SCM_UNBIND_ALL => return self.unbind_all(r),
            H_SCM_QUERY_LOGICAL_MEM_BINDING => {
                for (i, (base, blocks, _)) in DEVICES.iter().enumerate() {
                    let Some(off) = r[0].checked_sub(*base).filter(|o| *o < blocks * BLOCK) else {
                        continue;
                    };
                    if self.devs[i].bound.contains(&(off / BLOCK)) {
                        return rc(H_SUCCESS, &[(0, DRC0 + i as u64), (1, off / BLOCK)]);
                    }
                }
                return rc(H_NOT_FOUND, &[]);
            }
            _ => {}
        }
        let Some(slot) = self.slot(r[0]) else {
            return rc(H_PARAMETER, &[]);
        };
        let (base, blocks, hcall_flush) = DEVICES[slot];
        let d = &mut self.devs[slot];
        match opcode {
            H_SCM_READ_METADATA => {
                let (off, len) = (r[1], r[2]);
                if !matches!(len, 1 | 2 | 4 | 8) {
                    return rc(H_P3, &[]);
                }
                if off.checked_add(len).is_none_or(|e| e > LABEL) {
                    return rc(H_P2, &[]);
                }
                let v = (off..off + len).fold(0u64, |v, a| {
                    v << 8 | u64::from(*d.label.get(&a).unwrap_or(&0))
                });
                rc(H_SUCCESS, &[(0, v)])
            }
            H_SCM_WRITE_METADATA => {
                let (off, data, len) = (r[1], r[2], r[3]);
                if !matches!(len, 1 | 2 | 4 | 8) {
                    return rc(H_P4, &[]);
                }
                if off.checked_add(len).is_none_or(|e| e > LABEL)
                    || (len < 8 && data >> (len * 8) != 0)
                {
                    return rc(H_P2, &[]);
                }
                for k in 0..len {
                    d.label.insert(off + k, (data >> (8 * (len - 1 - k))) as u8);
                }
                rc(H_SUCCESS, &[])
            }
            H_SCM_BIND_MEM => Self::bind(papr, d, base, blocks, r),
            H_SCM_UNBIND_MEM => {
                let (addr, count, token) = (r[1], r[2], r[3]);
                if token != 0 {
                    return rc(H_P4, &[]);
                }
                if addr % BLOCK != 0 {
                    return rc(H_P2, &[]);
                }
                let inside = count > 0
                    && count.checked_mul(BLOCK).is_some_and(|len| {
                        addr >= base
                            && addr
                                .checked_add(len)
                                .is_some_and(|e| e <= base + blocks * BLOCK)
                    });
                if !inside {
                    return rc(H_P3, &[]);
                }
                if papr {
                    let first = (addr - base) / BLOCK;
                    for b in first..first + count {
                        d.bound.remove(&b);
                    }
                    d.progress = None;
                }
                rc(H_SUCCESS, &[(1, count)])
            }
            H_SCM_QUERY_BLOCK_MEM_BINDING => {
                if r[1] >= blocks {
                    rc(H_P2, &[])
                } else if d.bound.contains(&r[1]) {
                    rc(H_SUCCESS, &[(0, base + r[1] * BLOCK)])
                } else {
                    rc(H_NOT_FOUND, &[])
                }
            }
            H_SCM_HEALTH => {
                let (bits, mask) = if papr {
                    (d.health, 0xffe0_0000_0000_0000)
                } else {
                    (0, 1 << 63)
                };
                rc(H_SUCCESS, &[(0, bits), (1, mask)])
            }
            H_SCM_PERFORMANCE_STATS => Want::OneOf(&[H_SUCCESS, H_P2, H_P3, H_PARTIAL]),
            H_SCM_FLUSH => Self::flush(papr, d, hcall_flush, r[1]),
            _ => unreachable!(),
        }
    }

    fn bind(papr: bool, d: &mut Dev, base: u64, blocks: u64, r: &Regs) -> Want {
        let (start, count, target, token) = (r[1], r[2], r[3], r[4]);
        let resumed = match (papr, token) {
            (_, 0) => None,
            (true, t) => match d.progress {
                Some(p) if p.token == t && p.start == start && p.count == count => Some(p),
                _ => return rc(H_P5, &[]),
            },
            (false, _) => return rc(H_P5, &[]),
        };
        if target != u64::MAX {
            return rc(H_OVERLAP, &[]);
        }
        if start > blocks {
            return rc(H_P2, &[]);
        }
        if start.checked_add(count).is_none_or(|e| e > blocks) {
            return rc(H_P3, &[]);
        }
        let addr = base + start * BLOCK;
        if !papr {
            return rc(H_SUCCESS, &[(1, addr), (2, count)]);
        }
        let mut p = match resumed {
            Some(p) => p,
            None if (start..start + count).any(|b| d.bound.contains(&b)) => {
                return rc(H_OVERLAP, &[])
            }
            None => Progress {
                token: 0,
                start,
                count,
                done: 0,
            },
        };
        let step = if d.bind_busy > 0 {
            d.bind_busy -= 1;
            0
        } else {
            d.bind_budget.unwrap_or(u64::MAX).min(count - p.done)
        };
        for b in start + p.done..start + p.done + step {
            d.bound.insert(b);
        }
        p.done += step;
        if p.done < count || step == 0 && count > 0 {
            d.bind_token = d.bind_token.wrapping_add(1).max(1);
            p.token = d.bind_token;
            d.progress = Some(p);
            return rc(H_BUSY, &[(0, p.token), (1, addr), (2, p.done)]);
        }
        d.progress = None;
        rc(H_SUCCESS, &[(0, 0), (1, addr), (2, count)])
    }

    fn flush(papr: bool, d: &mut Dev, hcall_flush: bool, token: u64) -> Want {
        if !hcall_flush {
            return rc(H_PARAMETER, &[]);
        }
        let order = match (papr, d.flush_order) {
            (true, Some(o)) => o,
            _ => H_LONG_BUSY_ORDER_10_MSEC,
        };
        let t = if token == 0 {
            if d.flushes.len() == MAX_FLUSHES {
                return rc(H_LONG_BUSY_ORDER_10_MSEC, &[(0, 0)]);
            }
            d.flush_counter += 1;
            let t = d.flush_counter;
            let f = Flush {
                hold: d.flush_hold,
                injected: d.flush_result.take(),
                fresh: true,
            };
            d.flushes.insert(t, f);
            t
        } else if d.flushes.contains_key(&token) {
            token
        } else {
            return rc(H_P2, &[]);
        };
        let f = d.flushes.get_mut(&t).unwrap();
        if f.fresh {
            f.fresh = false;
            return rc(order, &[(0, t)]);
        }
        if f.hold > 0 {
            f.hold -= 1;
            return rc(order, &[(0, t)]);
        }
        let result = f.injected.unwrap_or(H_SUCCESS);
        d.flushes.remove(&t);
        if result == H_HARDWARE && papr {
            d.health |= HealthBits::PAPR_PMEM_SHUTDOWN_DIRTY.bits();
        }
        rc(result, &[])
    }

    fn unbind_all(&mut self, r: &Regs) -> Want {
        let (scope, drc, token) = (r[0], r[1], r[2]);
        if token != 0 {
            return rc(H_P4, &[]);
        }
        let papr = self.papr();
        let slots: Vec<usize> = match scope {
            H_UNBIND_SCOPE_DRC => match self.slot(drc) {
                Some(s) => vec![s],
                None => return rc(H_P2, &[]),
            },
            H_UNBIND_SCOPE_ALL => (0..DEVICES.len()).collect(),
            _ => return rc(H_PARAMETER, &[]),
        };
        let mut count = 0;
        for s in slots {
            let d = &mut self.devs[s];
            if papr {
                count += d.bound.len() as u64;
                d.bound.clear();
                d.progress = None;
            } else {
                count += DEVICES[s].1;
            }
        }
        if papr {
            rc(H_SUCCESS, &[(0, 0), (1, count)])
        } else {
            rc(H_SUCCESS, &[(1, count)])
        }
    }

    /// The machine's bindings match the model's after every step.
    fn check_state(&self) {
        for (slot, d) in self.devs.iter().enumerate() {
            let bound: BTreeSet<u64> = self
                .machine
                .with_device(slot as u32, |dev| {
                    dev.bindings()
                        .runs()
                        .iter()
                        .flat_map(|&(s, n)| s..s + n)
                        .collect()
                })
                .unwrap();
            let want = if self.papr() {
                d.bound.clone()
            } else {
                BTreeSet::new()
            };
            assert_eq!(bound, want, "slot {slot}: bindings");
        }
    }

    /// At the end: every label byte the model wrote is in the store, and
    /// the flush counters agree.
    pub fn finish(&self) {
        for (slot, d) in self.devs.iter().enumerate() {
            self.machine
                .with_device(slot as u32, |dev| {
                    for (&at, &v) in &d.label {
                        let mut b = [0u8];
                        dev.label().read(at, &mut b).unwrap();
                        assert_eq!(b[0], v, "slot {slot}: label byte {at:#x}");
                    }
                    assert_eq!(
                        dev.state().flush_token,
                        d.flush_counter,
                        "slot {slot}: flush counter"
                    );
                })
                .unwrap();
        }
    }
}

/// Runs a whole decoded sequence.
pub fn run(data: &[u8]) {
    let (profile, steps) = decode(data);
    let mut w = World::new(profile);
    for s in &steps {
        w.step(s);
    }
    w.finish();
}
