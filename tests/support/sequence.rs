// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of hcalls, fault injections, resets, releases,
//! plugs, snapshots and restores against a machine, each step checked
//! against a simple reference model, with a second vCPU acting in the
//! middle of the life-cycle steps.
//!
//! Shared by `tests/hcall_sequence.rs` (proptest, every `cargo test`) and
//! the `hcall_sequence` and `snapshot` fuzz targets (`#[path]`-included
//! there).
//!
//! The model keeps what the guest can observe, in the plainest form: the
//! bound blocks of each device as a set, the label bytes written, the flush
//! counter and the outstanding tokens with their hold and injected result,
//! the health bits, the bind faults and the bind in progress, and which
//! slots hold a device. For every call it predicts the status and the
//! outputs; only PERFORMANCE_STATS (whose answer depends on guest memory)
//! is checked for its status set alone. No call may write a register
//! outside its outputs, and an error writes none; a retry answer (H_BUSY,
//! long-busy) names a token the machine still holds.
//!
//! A life-cycle step may carry a call of a second vCPU
//! (`tests/support/interleave.rs`), made at a host hook in the middle of
//! the operation. The machine must then be linearizable: its answers, the
//! operation's result and the state after it equal the model's with the
//! call made wholly before the operation or wholly after it. After every
//! step the machine's state equals the model's, and the host's view (blocks
//! mapped, flushes held by the executor) equals the machine's.

#![allow(dead_code)]

#[path = "interleave.rs"]
mod interleave;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use papr_scm::config::{DeviceSpec, Profile};
use papr_scm::device::{DeviceState, StatsMode};
use papr_scm::drc::DrcState;
use papr_scm::hcall::*;
use papr_scm::label::LabelStore;
use papr_scm::machine::{MachineState, RtasEffect, SlotTable, Unplug, UnplugError};
use papr_scm::replay::inject;
use papr_scm::rtas::RtasService;
use papr_scm::rtas_error_log::EventQueue;
use papr_scm::transcript::Injection;

pub use interleave::{Call, HookMachine};

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
    /// The VMM asks for the device in the slot and the guest gives it
    /// back (ISOLATE, then allocation UNUSABLE); one the guest never
    /// acquired leaves at once.
    Release(u32),
    /// The VMM plugs a fresh device of the slot's kind into the slot.
    Plug(u32),
    /// The VMM takes a snapshot.
    Snapshot,
    /// The VMM restores the last snapshot (a rollback on this machine).
    Restore,
    /// The next reset, release, plug or restore has a second vCPU make
    /// this call half way through.
    Vcpu2(u64, Regs),
}

/// A per-device call of the second vCPU, from two bytes.
fn vcpu2_call(sel: u8, v: u8) -> Step {
    let slot = u64::from(v % 3);
    let drc = DRC0 + slot;
    let (base, blocks) = DEVICES
        .get(slot as usize)
        .map_or((0x1_0000_0000, 1), |d| (d.0, d.1));
    let (opcode, regs) = match sel % 8 {
        0 => (H_SCM_BIND_MEM, [drc, 0, blocks, u64::MAX, 0]),
        1 => (H_SCM_UNBIND_ALL, [H_UNBIND_SCOPE_DRC, drc, 0, 0, 0]),
        2 => (H_SCM_FLUSH, [drc, 0, 0, 0, 0]),
        3 => (H_SCM_UNBIND_MEM, [drc, base, 1, 0, 0]),
        4 => (H_SCM_WRITE_METADATA, [drc, u64::from(v) * 8, 0x5a5a, 8, 0]),
        5 => (H_SCM_HEALTH, [drc, 0, 0, 0, 0]),
        6 => (H_SCM_QUERY_BLOCK_MEM_BINDING, [drc, 0, 0, 0, 0]),
        _ => (H_SCM_FLUSH, [drc, u64::from(v >> 2) % 4 + 1, 0, 0, 0]),
    };
    let mut r = [0u64; 9];
    r[..5].copy_from_slice(&regs);
    Step::Vcpu2(opcode, r)
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
    let steps = decode_steps(&mut byte);
    (profile, steps)
}

/// The steps after the profile byte.
pub fn decode_steps(byte: &mut dyn FnMut() -> Option<u8>) -> Vec<Step> {
    let mut steps = Vec::new();
    while let Some(kind) = byte() {
        let step = match kind % 16 {
            0..=8 => {
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
            // 12 and 15: a life-cycle step, by the high nibble.
            _ => match kind >> 4 {
                0..=2 => Step::Reset,
                3 | 4 => Step::Release(u32::from(byte().unwrap_or(0) % 3)),
                5 | 6 => Step::Plug(u32::from(byte().unwrap_or(0) % 3)),
                7 | 8 => Step::Snapshot,
                9 | 10 => Step::Restore,
                _ => {
                    let (Some(sel), Some(v)) = (byte(), byte()) else {
                        break;
                    };
                    vcpu2_call(sel, v)
                }
            },
        };
        steps.push(step);
    }
    steps
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Flush {
    hold: u32,
    injected: Option<ReturnCode>,
    fresh: bool,
    /// A result known before the guest polls (a restored record's).
    result: Option<ReturnCode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    token: u64,
    start: u64,
    count: u64,
    done: u64,
}

#[derive(Debug, Clone)]
struct Dev {
    present: bool,
    /// The slot's DR connector (restored snapshots bring any state).
    conn: DrcState,
    unplug: bool,
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
    stats: StatsMode,
}

impl Dev {
    fn fresh() -> Self {
        Dev {
            present: true,
            conn: DrcState::Configured,
            unplug: false,
            bound: BTreeSet::new(),
            label: BTreeMap::new(),
            health: 0,
            flush_counter: 0,
            flushes: BTreeMap::new(),
            flush_hold: 0,
            flush_result: None,
            flush_order: None,
            bind_busy: 0,
            bind_budget: None,
            bind_token: 0,
            progress: None,
            stats: StatsMode::Enabled,
        }
    }
}

/// What a call is expected to answer.
#[derive(Debug)]
enum Want {
    /// This status and these `(register index, value)` outputs.
    Exactly(ReturnCode, Vec<(usize, u64)>),
    /// Any of these statuses; outputs unchecked beyond the register rule.
    OneOf(&'static [ReturnCode]),
}

fn rc(status: ReturnCode, outs: &[(usize, u64)]) -> Want {
    Want::Exactly(status, outs.to_vec())
}

/// The output registers an hcall defines.
fn outputs(opcode: u64) -> &'static [usize] {
    match opcode {
        H_SCM_BIND_MEM => &[0, 1, 2],
        H_SCM_HEALTH | H_SCM_QUERY_LOGICAL_MEM_BINDING | H_SCM_UNBIND_ALL => &[0, 1],
        H_SCM_UNBIND_MEM => &[1],
        _ => &[0],
    }
}

/// The register rule and the model's answer: `Err` says what differs.
fn check_answer(
    want: &Want,
    opcode: u64,
    regs: &Regs,
    status: ReturnCode,
    got: &Regs,
) -> Result<(), String> {
    let changed: Vec<usize> = (0..9).filter(|&i| got[i] != regs[i]).collect();
    if status.0 < 0 && !changed.is_empty() {
        return Err(format!(
            "{opcode:#x} {regs:x?}: error {status} wrote {changed:?}"
        ));
    }
    if !changed.iter().all(|i| outputs(opcode).contains(i)) {
        return Err(format!(
            "{opcode:#x} {regs:x?}: wrote {changed:?}, outputs are {:?}",
            outputs(opcode)
        ));
    }
    match want {
        Want::Exactly(s, outs) => {
            if status != *s {
                return Err(format!("{opcode:#x} {regs:x?}: {status}, model {s}"));
            }
            for &(i, v) in outs {
                if got[i] != v {
                    return Err(format!(
                        "{opcode:#x} {regs:x?}: r{} = {:#x}, model {v:#x}",
                        i + 4,
                        got[i]
                    ));
                }
            }
        }
        Want::OneOf(set) => {
            if !set.contains(&status) {
                return Err(format!("{opcode:#x} {regs:x?}: {status}"));
            }
        }
    }
    Ok(())
}

/// The life-cycle operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Reset,
    Release(u32),
    Plug(u32),
    Restore,
}

/// What a life-cycle operation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OpOut {
    /// (slot, blocks unbound, flushes pending) of each device a reset
    /// released (its unplug was pending).
    Reset(Vec<(u32, u64, usize)>),
    /// (blocks unbound, flushes pending) of a released device; `None`
    /// when the slot was empty or the guest could not give it back.
    Released(Option<(u64, usize)>),
    /// Whether a plug or restore was taken.
    Taken(bool),
}

/// The reference model.
#[derive(Debug, Clone)]
struct Model {
    papr: bool,
    devs: [Dev; 2],
}

impl Model {
    fn new(profile: Profile) -> Self {
        Model {
            papr: profile == Profile::Papr,
            devs: [Dev::fresh(), Dev::fresh()],
        }
    }

    /// The slot of an occupied PMEM DRC, as the machine must resolve it.
    fn slot(&self, drc: u64) -> Option<usize> {
        let drc = if self.papr {
            u32::try_from(drc).ok()?
        } else {
            drc as u32
        };
        let slot = u64::from(drc).checked_sub(DRC0).filter(|s| *s < SLOTS)?;
        let slot = usize::try_from(slot).ok()?;
        self.devs.get(slot).filter(|d| d.present).map(|_| slot)
    }

    /// The model's answer, updating the model as the machine must update
    /// itself.
    fn predict(&mut self, opcode: u64, r: &Regs) -> Want {
        let papr = self.papr;
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
                    let d = &self.devs[i];
                    if d.present && d.bound.contains(&(off / BLOCK)) {
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
            H_SCM_PERFORMANCE_STATS => match d.stats {
                StatsMode::Enabled => Want::OneOf(&[H_SUCCESS, H_P2, H_P3, H_PARTIAL]),
                StatsMode::Unsupported => rc(H_UNSUPPORTED, &[]),
                StatsMode::Authority => rc(H_AUTHORITY, &[]),
            },
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
                result: None,
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
        let result = f.injected.unwrap_or(f.result.unwrap_or(H_SUCCESS));
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
        let papr = self.papr;
        let slots: Vec<usize> = match scope {
            H_UNBIND_SCOPE_DRC => match self.slot(drc) {
                Some(s) => vec![s],
                None => return rc(H_P2, &[]),
            },
            H_UNBIND_SCOPE_ALL => (0..DEVICES.len())
                .filter(|&s| self.devs[s].present)
                .collect(),
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

    /// A life-cycle operation on the model; `snap` is the snapshot a
    /// restore restores.
    fn apply(&mut self, op: Op, snap: Option<&MachineState>) -> OpOut {
        match op {
            Op::Reset => {
                // The connectors first: a pending unplug completes.
                let mut released = Vec::new();
                for slot in 0..self.devs.len() {
                    let d = &mut self.devs[slot];
                    if !d.present {
                        continue;
                    }
                    if d.unplug {
                        let (n, pending) = self.release(slot);
                        released.push((slot as u32, n, pending));
                    } else {
                        d.conn = DrcState::Configured;
                    }
                }
                // A system reset: a fresh boot finds nothing bound.
                for d in &mut self.devs {
                    d.flushes.clear();
                    d.bound.clear();
                    d.progress = None;
                }
                OpOut::Reset(released)
            }
            Op::Release(slot) => {
                let papr = self.papr;
                let Some(d) = self.devs.get_mut(slot as usize).filter(|d| d.present) else {
                    return OpOut::Released(None);
                };
                // An UNUSABLE connector (never acquired) releases at once;
                // otherwise the guest isolates (9001 = 0) and makes the
                // connector UNUSABLE (9003 = 0), which releases it from
                // AVAILABLE (QEMU refuses to isolate an unconfigured one).
                if d.conn != DrcState::Unusable {
                    d.unplug = true;
                    match d.conn {
                        DrcState::Configured => d.conn = DrcState::Available,
                        DrcState::Unisolate if papr => d.conn = DrcState::Available,
                        _ => {}
                    }
                    if d.conn != DrcState::Available {
                        return OpOut::Released(None);
                    }
                }
                OpOut::Released(Some(self.release(slot as usize)))
            }
            Op::Plug(slot) => match self.devs.get_mut(slot as usize) {
                Some(d) if !d.present => {
                    *d = Dev::fresh();
                    d.conn = DrcState::Unusable;
                    OpOut::Taken(true)
                }
                _ => OpOut::Taken(false),
            },
            Op::Restore => {
                let Some(snap) = snap else {
                    return OpOut::Taken(false);
                };
                OpOut::Taken(self.restore(snap))
            }
        }
    }

    /// The device in `slot` leaves: (blocks unbound, flushes pending).
    fn release(&mut self, slot: usize) -> (u64, usize) {
        let d = &mut self.devs[slot];
        let unbound = if self.papr { d.bound.len() as u64 } else { 0 };
        let pending = d.flushes.values().filter(|f| f.result.is_none()).count();
        *d = Dev::fresh();
        d.present = false;
        (unbound, pending)
    }

    /// A restore of `snap`, if the machine takes it: the same devices
    /// (the only check a snapshot of this machine can fail).
    fn restore(&mut self, snap: &MachineState) -> bool {
        let same = (0..DEVICES.len())
            .all(|s| self.devs[s].present == snap.devices.iter().any(|d| d.slot == s as u32))
            && snap
                .devices
                .iter()
                .all(|d| (d.slot as usize) < DEVICES.len());
        if !same {
            return false;
        }
        for d in &snap.devices {
            let dev = &mut self.devs[d.slot as usize];
            let label = std::mem::take(&mut dev.label);
            let counter = dev.flush_counter;
            *dev = Dev::from_state(&d.state);
            dev.label = label;
            // The counter never goes back.
            dev.flush_counter = dev.flush_counter.max(counter);
        }
        true
    }

    /// Where the machine differs from the model, if it does.
    fn diff(&self, m: &HookMachine) -> Result<(), String> {
        for slot in 0..SLOTS as u32 {
            let want = self.devs.get(slot as usize).filter(|d| d.present);
            let got = m.slots().with_slot(slot, |d| d.state());
            let (d, s) = match (want, got) {
                (None, None) => continue,
                (Some(d), Some(s)) => (d, s),
                (w, g) => {
                    return Err(format!(
                        "slot {slot}: present {}, model {}",
                        g.is_some(),
                        w.is_some()
                    ))
                }
            };
            let bound: BTreeSet<u64> = s
                .bindings
                .runs()
                .iter()
                .flat_map(|&(a, n)| a..a + n)
                .collect();
            let want_bound = if self.papr {
                d.bound.clone()
            } else {
                BTreeSet::new()
            };
            let records: BTreeMap<u64, Flush> = s
                .flushes
                .iter()
                .flatten()
                .map(|r| {
                    let f = Flush {
                        hold: r.hold,
                        injected: r.injected,
                        fresh: r.fresh,
                        result: r.result,
                    };
                    (r.token, f)
                })
                .collect();
            let progress = s.bind_progress.map(|p| (p.token, p.start, p.count, p.done));
            let f = &s.faults;
            let checks = [
                (
                    "connector",
                    format!("{:?}", (s.connector.state, s.connector.unplug_requested)),
                    format!("{:?}", (d.conn, d.unplug)),
                ),
                ("bindings", format!("{bound:?}"), format!("{want_bound:?}")),
                (
                    "flush records",
                    format!("{records:?}"),
                    format!("{:?}", d.flushes),
                ),
                (
                    "flush counter",
                    s.flush_token.to_string(),
                    d.flush_counter.to_string(),
                ),
                (
                    "bind progress",
                    format!("{progress:?}"),
                    format!(
                        "{:?}",
                        d.progress.map(|p| (p.token, p.start, p.count, p.done))
                    ),
                ),
                (
                    "health",
                    format!("{:#x}", s.health.bits()),
                    format!("{:#x}", d.health),
                ),
                (
                    "faults",
                    format!(
                        "{:?}",
                        (f.bind_busy, f.bind_budget, f.flush_hold, f.flush_result)
                    ),
                    format!(
                        "{:?}",
                        (d.bind_busy, d.bind_budget, d.flush_hold, d.flush_result)
                    ),
                ),
            ];
            for (what, got, want) in checks {
                if got != want {
                    return Err(format!("slot {slot}: {what} {got}, model {want}"));
                }
            }
        }
        Ok(())
    }
}

impl Dev {
    /// The model of a restored device state (the label is the store's).
    fn from_state(s: &DeviceState) -> Self {
        Dev {
            present: true,
            conn: s.connector.state,
            unplug: s.connector.unplug_requested,
            bound: s
                .bindings
                .runs()
                .iter()
                .flat_map(|&(a, n)| a..a + n)
                .collect(),
            label: BTreeMap::new(),
            health: s.health.bits(),
            flush_counter: s.flush_token,
            flushes: s
                .flushes
                .iter()
                .flatten()
                .map(|r| {
                    (
                        r.token,
                        Flush {
                            hold: r.hold,
                            injected: r.injected,
                            fresh: r.fresh,
                            result: r.result,
                        },
                    )
                })
                .collect(),
            flush_hold: s.faults.flush_hold,
            flush_result: s.faults.flush_result,
            flush_order: Some(s.faults.flush_order),
            bind_busy: s.faults.bind_busy,
            bind_budget: s.faults.bind_budget,
            bind_token: s.bind_token,
            progress: s.bind_progress.map(|p| Progress {
                token: p.token,
                start: p.start,
                count: p.count,
                done: p.done,
            }),
            stats: s.faults.stats,
        }
    }
}

/// The machine and the model side by side.
pub struct World {
    profile: Profile,
    pub machine: Rc<HookMachine>,
    model: Model,
    specs: Vec<DeviceSpec>,
    events: EventQueue,
    snap: Option<MachineState>,
    armed: Option<Call>,
}

impl World {
    /// A fresh machine and model in `profile`.
    pub fn new(profile: Profile) -> Self {
        let (machine, _, specs) = interleave::build(&config(profile));
        World {
            profile,
            machine,
            model: Model::new(profile),
            specs,
            events: EventQueue::new(),
            snap: None,
            armed: None,
        }
    }

    /// Runs and checks one step; panics on a difference.
    pub fn step(&mut self, step: &Step) {
        match *step {
            Step::Reset => self.life(Op::Reset),
            Step::Release(slot) => self.life(Op::Release(slot)),
            Step::Plug(slot) => self.life(Op::Plug(slot)),
            Step::Restore => self.life(Op::Restore),
            Step::Snapshot => self.snap = Some(self.machine.state(&self.events)),
            Step::Vcpu2(opcode, regs) => self.armed = Some(Call { opcode, regs }),
            Step::Inject(slot, what) => {
                let applied = inject(&*self.machine, slot, what);
                let d = self.model.devs.get_mut(slot as usize).filter(|d| d.present);
                assert_eq!(applied.is_some(), d.is_some(), "inject into slot {slot}");
                let Some(d) = d else { return };
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
                    .model
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
                    .model
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
        self.check();
    }

    /// The machine equals the model, and the host's view the machine.
    fn check(&self) {
        if let Err(e) = self.model.diff(&self.machine) {
            panic!("{e}");
        }
        interleave::check_host_view(&self.machine);
    }

    fn call(&mut self, opcode: u64, regs: Regs) {
        let want = self.model.predict(opcode, &regs);
        let mut got = regs;
        let status = self
            .machine
            .handle(opcode, &mut got)
            .expect("an SCM opcode is answered");
        if let Err(e) = check_answer(&want, opcode, &regs, status, &got) {
            panic!("{e}");
        }
        self.check_retry(opcode, &regs, status, &got);
    }

    /// A retry answer names what the guest retries with: a flush token
    /// the machine still holds, a bind token of the bind in progress.
    fn check_retry(&self, opcode: u64, regs: &Regs, status: ReturnCode, got: &Regs) {
        let Some(slot) = self.machine.slot_of(regs[0]) else {
            return;
        };
        let t = got[0];
        let state = self.machine.slots().with_slot(slot, |d| d.state());
        match opcode {
            H_SCM_FLUSH if (status == H_BUSY || status.is_long_busy()) && t != 0 => {
                let held = state.is_some_and(|s| s.flushes.iter().flatten().any(|r| r.token == t));
                assert!(held, "flush {t}: told to retry a token that is gone");
            }
            H_SCM_BIND_MEM if status == H_BUSY => {
                let p = state.and_then(|s| s.bind_progress).map(|p| p.token);
                assert_eq!(p, Some(t), "bind: told to continue a token that is gone");
            }
            _ => {}
        }
    }

    /// Runs a life-cycle operation on the machine.
    fn run_op(&mut self, op: Op) -> OpOut {
        let m = Rc::clone(&self.machine);
        match op {
            Op::Reset => {
                let mut released = Vec::new();
                m.reset(&mut self.events, |r| {
                    assert!(r.device.bindings().is_empty(), "the device left bound");
                    released.push((r.device.spec().slot, r.unbound_blocks, r.pending_flushes));
                });
                OpOut::Reset(released)
            }
            Op::Release(slot) => {
                // The guest has collected every event: the queue has room.
                self.events = EventQueue::new();
                let r = match m.unplug(slot, &mut self.events) {
                    Err(UnplugError::Empty { .. }) => return OpOut::Released(None),
                    Ok(Unplug::Released(r)) => r,
                    Err(UnplugError::InProgress { .. }) | Ok(Unplug::Requested) => {
                        // The guest gives the connector back: ISOLATE,
                        // then allocation UNUSABLE.
                        let drc = 0x9000_0000 + slot;
                        let mut rets = [0u32];
                        let e = m.rtas(
                            RtasService::SetIndicator,
                            &[9001, drc, 0],
                            &mut rets,
                            &mut self.events,
                        );
                        assert!(matches!(e, Some(RtasEffect::None)), "isolate: {e:?}");
                        match m.rtas(
                            RtasService::SetIndicator,
                            &[9003, drc, 0],
                            &mut rets,
                            &mut self.events,
                        ) {
                            Some(RtasEffect::Released(r)) => r,
                            Some(RtasEffect::None) => {
                                self.events = EventQueue::new();
                                return OpOut::Released(None);
                            }
                            e => panic!("allocation UNUSABLE: {e:?} {rets:?}"),
                        }
                    }
                    Err(e) => panic!("{e}"),
                };
                assert!(
                    r.device.bindings().is_empty(),
                    "slot {slot}: the device left bound"
                );
                assert!(r.label_sync.is_ok());
                self.events = EventQueue::new();
                OpOut::Released(Some((r.unbound_blocks, r.pending_flushes)))
            }
            Op::Plug(slot) => {
                let Some(spec) = self.specs.iter().find(|s| s.slot == slot) else {
                    return OpOut::Taken(false);
                };
                let dev = interleave::device(&m, spec);
                let ok = m.plug(dev, &mut self.events).is_ok();
                self.events = EventQueue::new();
                OpOut::Taken(ok)
            }
            Op::Restore => {
                let Some(snap) = self.snap.clone() else {
                    return OpOut::Taken(false);
                };
                OpOut::Taken(m.restore(&snap, &mut self.events).is_ok())
            }
        }
    }

    /// A life-cycle step, with the second vCPU's call if one is armed:
    /// the machine must match the model with that call made wholly before
    /// the operation or wholly after it.
    fn life(&mut self, op: Op) {
        let pre = self.model.clone();
        let vcpu = Rc::clone(&self.machine.host().vcpu);
        if let Some(c) = self.armed.take() {
            vcpu.arm(c);
        }
        let out = self.run_op(op);
        vcpu.finish();
        let ran = vcpu.take_ran();
        let snap = self.snap.clone();
        let mut tried = Vec::new();
        for before in [true, false] {
            let mut model = pre.clone();
            let mut answers = Vec::new();
            if before {
                answers.extend(
                    ran.iter()
                        .map(|r| model.predict(r.call.opcode, &r.call.regs)),
                );
            }
            let want = model.apply(op, snap.as_ref());
            if !before {
                answers.extend(
                    ran.iter()
                        .map(|r| model.predict(r.call.opcode, &r.call.regs)),
                );
            }
            let verdict = ran
                .iter()
                .zip(&answers)
                .try_for_each(|(r, w)| {
                    check_answer(w, r.call.opcode, &r.call.regs, r.status, &r.out)
                })
                .and_then(|()| {
                    if out == want {
                        Ok(())
                    } else {
                        Err(format!("{op:?}: {out:?}, model {want:?}"))
                    }
                })
                .and_then(|()| model.diff(&self.machine));
            match verdict {
                Ok(()) => {
                    self.model = model;
                    return;
                }
                Err(e) => tried.push(e),
            }
            if ran.is_empty() {
                break;
            }
        }
        panic!("{op:?} with the second vCPU's {ran:x?}: {tried:#?}");
    }

    /// The machine's snapshot now.
    pub fn state(&self) -> MachineState {
        self.machine.state(&self.events)
    }

    /// Restores `snap` (bytes from outside) as a migration destination
    /// does; the model follows if the machine takes it.
    pub fn restore_external(&mut self, snap: &MachineState) -> bool {
        let ok = self.machine.restore(snap, &mut self.events).is_ok();
        if ok {
            assert!(
                self.model.restore(snap),
                "the machine took a snapshot the model refuses"
            );
        }
        self.check();
        ok
    }

    /// The guest's loops end: every flush polled to its end and every
    /// bind in progress continued to its end, within bounds.
    pub fn drain(&mut self) {
        for slot in 0..DEVICES.len() as u32 {
            for _ in 0..4 * 1024 {
                let d = &self.model.devs[slot as usize];
                if !d.present || (d.flushes.is_empty() && d.progress.is_none()) {
                    break;
                }
                if d.progress.is_some() {
                    self.step(&Step::Continue(slot));
                } else {
                    self.step(&Step::Poll(slot));
                }
            }
            let d = &self.model.devs[slot as usize];
            assert!(
                !d.present || (d.flushes.is_empty() && d.progress.is_none()),
                "slot {slot}: the guest's loops never end"
            );
        }
    }

    /// At the end: every label byte the model wrote is in the store, and
    /// the flush counters agree.
    pub fn finish(&self) {
        for (slot, d) in self.model.devs.iter().enumerate() {
            let seen = self.machine.slots().with_slot(slot as u32, |dev| {
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
            });
            assert_eq!(seen.is_some(), d.present, "slot {slot}");
        }
    }
}

/// The bytes [`decode`] reads as `steps` in `profile` (for seeds).
pub fn encode(profile: Profile, steps: &[Step]) -> Vec<u8> {
    let mut out = vec![u8::from(profile == Profile::Qemu)];
    for s in steps {
        match *s {
            Step::Call(opcode, regs) => {
                let op = SCM_HCALLS.iter().position(|h| h.0 == opcode).unwrap();
                out.extend([0, op as u8]);
                for r in &regs[..5] {
                    out.push(7);
                    out.extend(r.to_be_bytes());
                }
            }
            Step::Poll(slot) => out.extend([9, slot as u8]),
            Step::Continue(slot) => out.extend([11, slot as u8]),
            Step::Reset => out.push(0x0F),
            Step::Release(slot) => out.extend([0x3F, slot as u8]),
            Step::Plug(slot) => out.extend([0x5F, slot as u8]),
            Step::Snapshot => out.push(0x7F),
            Step::Restore => out.push(0x9F),
            Step::Vcpu2(opcode, regs) => {
                let (sel, v) = (0..8u8)
                    .flat_map(|sel| (0..=255u8).map(move |v| (sel, v)))
                    .find(|&(sel, v)| {
                        matches!(vcpu2_call(sel, v), Step::Vcpu2(o, r) if o == opcode && r == regs)
                    })
                    .expect("a call the decoder makes");
                out.extend([0xBF, sel, v]);
            }
            Step::Inject(..) => unimplemented!("not needed by the seeds"),
        }
    }
    out
}

/// Life-cycle steps between the hcalls, a second vCPU in the middle of
/// them: a restore after the index was built brings back bindings a
/// partition-wide UNBIND_ALL must find; a release with a bind racing it;
/// a rollback with a flush started half way; a reset with a bind racing
/// it; a plug back into the released slot.
pub fn lifecycle_steps() -> Vec<Step> {
    let d0 = DRC0;
    let d1 = DRC0 + 1;
    let r = |a: [u64; 4]| [a[0], a[1], a[2], a[3], 0, 0, 0, 0, 0];
    let all = r([H_UNBIND_SCOPE_ALL, 0, 0, 0]);
    let bind0 = [d0, 0, 4, u64::MAX, 0, 0, 0, 0, 0];
    vec![
        Step::Call(H_SCM_BIND_MEM, bind0),
        Step::Call(H_SCM_FLUSH, r([d1, 0, 0, 0])),
        Step::Snapshot,
        Step::Call(H_SCM_UNBIND_ALL, r([H_UNBIND_SCOPE_DRC, d0, 0, 0])),
        Step::Call(H_SCM_QUERY_LOGICAL_MEM_BINDING, r([0x8000_0000, 0, 0, 0])),
        Step::Poll(1),
        Step::Poll(1),
        Step::Restore,
        Step::Call(H_SCM_UNBIND_ALL, all),
        Step::Call(H_SCM_BIND_MEM, bind0),
        Step::Vcpu2(H_SCM_BIND_MEM, bind0),
        Step::Release(0),
        Step::Call(H_SCM_HEALTH, r([d0, 0, 0, 0])),
        Step::Vcpu2(H_SCM_FLUSH, r([d1, 0, 0, 0])),
        Step::Restore,
        Step::Plug(0),
        Step::Vcpu2(H_SCM_BIND_MEM, bind0),
        Step::Reset,
        Step::Snapshot,
        Step::Call(H_SCM_BIND_MEM, bind0),
        Step::Vcpu2(H_SCM_UNBIND_MEM, r([d0, 0x8000_0000, 1, 0])),
        Step::Restore,
        Step::Call(H_SCM_UNBIND_ALL, all),
    ]
}

/// Restores `snap` into a fresh world of its profile as a migration
/// destination does, then runs the steps `data` decodes to (hcalls,
/// resets, releases, rollbacks, a second vCPU), then the guest's loops to
/// their end. A snapshot the machine refuses runs nothing (false).
pub fn run_restored(snap: &MachineState, data: &[u8]) -> bool {
    let mut w = World::new(snap.profile);
    if !w.restore_external(snap) {
        return false;
    }
    let mut data = data;
    let mut byte = || -> Option<u8> {
        let (&b, rest) = data.split_first()?;
        data = rest;
        Some(b)
    };
    for s in &decode_steps(&mut byte) {
        w.step(s);
    }
    w.drain();
    w.finish();
    true
}

/// Runs a whole decoded sequence.
pub fn run(data: &[u8]) {
    let (profile, steps) = decode(data);
    let mut w = World::new(profile);
    for s in &steps {
        w.step(s);
    }
    w.drain();
    w.finish();
}
