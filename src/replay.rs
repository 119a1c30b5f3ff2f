// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Runs a transcript against a machine built from its own configuration and
//! checks every expectation.
//!
//! Guest RAM is `[0, ram)`, sparse and zero-filled. A started flush stays
//! pending until the next call that names its token, which then completes
//! it (with the injected result, if any), unless `flush-status` lines say
//! what the executor answered.

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::string::String;
use std::vec::Vec;

use crate::device::Device;
use crate::hcall::{Regs, ReturnCode};
use crate::host::{
    BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, GuestMemoryError, StatsSource,
};
use crate::label::SparseLabelStore;
use crate::machine::{Machine, MachineState, RtasEffect, SharedSlots, Unplug};
use crate::rtas::{RtasService, RTAS_OUT_NO_ERRORS_FOUND, RTAS_OUT_PARAM_ERROR};
use crate::rtas_error_log::{EventQueue, RtcTime};
use crate::transcript::{call_line, Directive, Expect, Injection, Opcode, ParseError, Transcript};

const PAGE: u64 = 4096;

/// Sparse, zero-filled guest RAM `[0, size)`.
#[derive(Debug, Default)]
pub struct SparseRam {
    size: u64,
    pages: RefCell<BTreeMap<u64, Box<[u8; PAGE as usize]>>>,
}

impl SparseRam {
    /// RAM of `size` bytes, all zero.
    pub fn new(size: u64) -> Self {
        SparseRam {
            size,
            pages: RefCell::default(),
        }
    }

    fn check(&self, gpa: u64, len: usize) -> Result<(), GuestMemoryError> {
        match gpa.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(GuestMemoryError { gpa, len }),
        }
    }

    fn chunks(gpa: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
        // (page, offset in page, offset in buffer, length)
        let mut done = 0usize;
        core::iter::from_fn(move || {
            if done == len {
                return None;
            }
            let at = gpa + done as u64;
            let off = (at % PAGE) as usize;
            let n = (PAGE as usize - off).min(len - done);
            let item = (at / PAGE, off, done, n);
            done += n;
            Some(item)
        })
    }
}

impl GuestMemory for SparseRam {
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        self.check(gpa, buf.len())?;
        let pages = self.pages.borrow();
        for (page, off, at, n) in Self::chunks(gpa, buf.len()) {
            let dst = &mut buf[at..at + n];
            match pages.get(&page) {
                Some(p) => dst.copy_from_slice(&p[off..off + n]),
                None => dst.fill(0),
            }
        }
        Ok(())
    }

    fn write_guest(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        self.check(gpa, data.len())?;
        let mut pages = self.pages.borrow_mut();
        for (page, off, at, n) in Self::chunks(gpa, data.len()) {
            let p = pages
                .entry(page)
                .or_insert_with(|| Box::new([0; PAGE as usize]));
            p[off..off + n].copy_from_slice(&data[at..at + n]);
        }
        Ok(())
    }
}

/// The host replay uses: sparse RAM, flushes that complete when polled
/// (or as `flush-status` lines say), the clock `time` lines set.
#[derive(Debug, Default)]
pub struct ReplayHost {
    /// Guest RAM.
    pub ram: SparseRam,
    /// The guest's time of day, for hotplug event stamps.
    pub clock: std::cell::Cell<RtcTime>,
    /// The executor's recorded answers, oldest first: `(slot, token, status)`.
    pub flushes: RefCell<std::collections::VecDeque<(u32, u64, FlushStatus)>>,
}

impl ReplayHost {
    /// A host over `ram`, its clock at zero.
    pub fn new(ram: SparseRam) -> Self {
        ReplayHost {
            ram,
            clock: Default::default(),
            flushes: Default::default(),
        }
    }
}

impl GuestMemory for ReplayHost {
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

impl ReplayHost {
    /// The recorded answer for flush `token` of `slot`, if it is next.
    fn recorded(&self, slot: u32, token: u64) -> Option<FlushStatus> {
        let mut q = self.flushes.borrow_mut();
        match q.front() {
            Some(&(s, t, status)) if (s, t) == (slot, token) => {
                q.pop_front();
                Some(status)
            }
            _ => None,
        }
    }
}

impl FlushExecutor for ReplayHost {
    // Replay completes flushes by itself; there is no data to sync.
    fn flushes_data(&self) -> bool {
        true
    }

    fn start_flush(&self, slot: u32, token: u64) -> FlushStatus {
        self.recorded(slot, token).unwrap_or(FlushStatus::Pending)
    }

    fn poll_flush(&self, slot: u32, token: u64) -> FlushStatus {
        self.recorded(slot, token)
            .unwrap_or(FlushStatus::Done(true))
    }
}

impl BindEvents for ReplayHost {}
impl StatsSource for ReplayHost {}
impl EventSignal for ReplayHost {
    fn guest_time(&self) -> RtcTime {
        self.clock.get()
    }
}

/// The machine a transcript runs on.
pub type ReplayMachine = Machine<SharedSlots<SparseLabelStore>, ReplayHost>;

/// Builds the machine a transcript's `machine` and `nvdimm` lines describe.
pub fn build(t: &Transcript) -> Result<ReplayMachine, ParseError> {
    let (machine, specs) = t.plan()?;
    let host = ReplayHost::new(SparseRam::new(machine.ram_size));
    // Sparse labels: a configuration's label-size (up to 4 GiB a device)
    // costs memory only where the transcript writes.
    Machine::from_specs_with(&machine, &specs, host, |spec| {
        Ok::<_, crate::label::LabelError>(SparseLabelStore::new(spec.layout.label_size()))
    })
    .map_err(|e| ParseError {
        line: 0,
        reason: e.to_string(),
    })
}

/// The outcome of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One line per call and memory check.
    pub lines: Vec<String>,
    /// Calls made.
    pub calls: usize,
    /// Expectations that did not hold, as "line N: expected ..., got ...".
    pub mismatches: Vec<String>,
}

/// The output registers an hcall defines, for reports of unchecked calls.
fn defined_outputs(opcode: u64) -> &'static [u8] {
    use crate::hcall::*;
    match opcode {
        H_SCM_BIND_MEM => &[4, 5, 6],
        H_SCM_HEALTH | H_SCM_QUERY_LOGICAL_MEM_BINDING | H_SCM_UNBIND_ALL => &[4, 5],
        H_SCM_UNBIND_MEM => &[5],
        H_SCM_WRITE_METADATA => &[],
        _ => &[4],
    }
}

/// Replays a parsed transcript. `Err` means a malformed file (bad
/// configuration, injection into an empty slot, a line out of place).
pub fn replay(t: &Transcript) -> Result<Report, ParseError> {
    let m = build(t)?;
    let (mut planner, _) = t.planner()?;
    let mut events = EventQueue::new();
    let mut report = Report::default();
    let mut started = false;
    for (line, d) in &t.lines {
        let line = *line;
        match d {
            Directive::Machine(_) | Directive::Nvdimm(_) => {
                if started {
                    return Err(ParseError {
                        line,
                        reason: "configuration after the first call".into(),
                    });
                }
            }
            Directive::Mem { addr, bytes } => {
                started = true;
                m.host()
                    .ram
                    .write_guest(*addr, bytes)
                    .map_err(|e| ParseError {
                        line,
                        reason: std::format!("mem: {e}"),
                    })?;
            }
            Directive::ExpectMem { addr, bytes } => {
                started = true;
                let mut got = std::vec![0u8; bytes.len()];
                let ok = m.host().ram.read_guest(*addr, &mut got).is_ok() && got == *bytes;
                let mut s = std::format!("{line:5} ");
                s.push_str(if ok { "ok   " } else { "FAIL " });
                let _ = write!(s, "{d}");
                report.lines.push(s);
                if !ok {
                    report.mismatches.push(std::format!(
                        "line {line}: expected memory {}, got {}",
                        hex(bytes),
                        hex(&got)
                    ));
                }
            }
            Directive::Rtas {
                service,
                args,
                nret,
                expect,
            } => {
                started = true;
                report.calls += 1;
                let mut rets = std::vec![0u32; *nret];
                let ours = m.rtas(*service, args, &mut rets, &mut events);
                if let Some(RtasEffect::Released(r)) = &ours {
                    let _ = planner.unplug(r.device.spec());
                }
                if ours.is_none() {
                    // Not papr-scm's: what a platform with nothing else
                    // answers (the guest model's Pseries does the same).
                    rets.fill(0);
                    if let Some(r) = rets.first_mut() {
                        *r = match service {
                            RtasService::CheckException | RtasService::EventScan => {
                                RTAS_OUT_NO_ERRORS_FOUND as u32
                            }
                            _ => RTAS_OUT_PARAM_ERROR as u32,
                        };
                    }
                }
                let actual = Directive::Rtas {
                    service: *service,
                    args: args.clone(),
                    nret: *nret,
                    expect: Some(rets.clone()),
                };
                let ok = expect.as_ref().is_none_or(|e| *e == rets);
                let mut s = std::format!("{line:5} ");
                s.push_str(if ok { "ok   " } else { "FAIL " });
                let _ = write!(s, "{actual}");
                report.lines.push(s);
                if !ok {
                    report
                        .mismatches
                        .push(std::format!("line {line}: expected {d}, got {actual}"));
                }
            }
            Directive::Plug(cfg) => {
                started = true;
                let spec = planner.plug(cfg).map_err(|e| ParseError {
                    line,
                    reason: std::format!("plug: {e}"),
                })?;
                let dev = Device::new(spec, SparseLabelStore::new(spec.layout.label_size()));
                m.plug(dev, &mut events).map_err(|e| ParseError {
                    line,
                    reason: std::format!("plug: {e}"),
                })?;
                report.lines.push(std::format!("{line:5}      {d}"));
            }
            Directive::Unplug { slot } => {
                started = true;
                let how = m.unplug(*slot, &mut events).map_err(|e| ParseError {
                    line,
                    reason: std::format!("unplug: {e}"),
                })?;
                if let Unplug::Released(r) = how {
                    let _ = planner.unplug(r.device.spec());
                }
                report.lines.push(std::format!("{line:5}      {d}"));
            }
            Directive::Time(t) => {
                m.host().clock.set(*t);
            }
            Directive::FlushStatus {
                slot,
                token,
                status,
            } => {
                m.host()
                    .flushes
                    .borrow_mut()
                    .push_back((*slot, *token, *status));
            }
            Directive::Label {
                slot,
                offset,
                bytes,
            } => {
                let written = m.with_device(*slot, |d| {
                    crate::label::LabelStore::write(d.label_mut(), *offset, bytes)
                });
                match written {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        return Err(ParseError {
                            line,
                            reason: std::format!("label: {e}"),
                        })
                    }
                    None => {
                        return Err(ParseError {
                            line,
                            reason: std::format!("label: slot {slot} holds no device"),
                        })
                    }
                }
            }
            Directive::LabelClear { slot } => {
                m.with_device(*slot, |d| d.label_mut().clear())
                    .ok_or_else(|| ParseError {
                        line,
                        reason: std::format!("label-clear: slot {slot} holds no device"),
                    })?;
            }
            Directive::Reset => {
                started = true;
                m.reset(&mut events, |r| {
                    let _ = planner.unplug(r.device.spec());
                });
                report.lines.push(std::format!("{line:5}      {d}"));
            }
            Directive::Restore(bytes) => {
                started = true;
                let snap = MachineState::decode(bytes).map_err(|e| ParseError {
                    line,
                    reason: std::format!("restore: {e}"),
                })?;
                m.restore(&snap, &mut events).map_err(|e| ParseError {
                    line,
                    reason: std::format!("{e}"),
                })?;
                report.lines.push(std::format!(
                    "{line:5}      restore ({} bytes)",
                    bytes.len()
                ));
            }
            Directive::Cas { hotplug_events } => {
                started = true;
                events.cas(*hotplug_events);
                m.reset_connectors(|r| {
                    let _ = planner.unplug(r.device.spec());
                });
                report.lines.push(std::format!("{line:5}      {d}"));
            }
            Directive::Inject { slot, what } => {
                started = true;
                inject(&m, *slot, *what).ok_or_else(|| ParseError {
                    line,
                    reason: std::format!("inject: slot {slot} holds no device"),
                })?;
            }
            Directive::Call {
                opcode,
                args,
                expect,
            } => {
                started = true;
                report.calls += 1;
                let mut regs: Regs = [0; 9];
                regs[..args.len()].copy_from_slice(args);
                let regs_in = regs;
                let status = m.handle(*opcode, &mut regs);
                let status = status.unwrap_or(crate::hcall::H_FUNCTION);
                let shown: Vec<u8> = match expect {
                    Some(e) => e.regs.iter().map(|r| r.0).collect(),
                    None => defined_outputs(*opcode).to_vec(),
                };
                let actual = call_line(*opcode, &regs_in, args.len(), status, &regs, &shown);
                let mismatch = expect.as_ref().and_then(|e| check(e, status, &regs));
                let mut s = std::format!("{line:5} ");
                s.push_str(if mismatch.is_none() { "ok   " } else { "FAIL " });
                let _ = write!(s, "{actual}");
                report.lines.push(s);
                if let (Some(e), Some(got)) = (expect, mismatch) {
                    report.mismatches.push(std::format!(
                        "line {line}: {}: expected {e}, got {got}",
                        Opcode(*opcode)
                    ));
                }
            }
        }
    }
    Ok(report)
}

fn check(e: &Expect, status: ReturnCode, regs: &Regs) -> Option<Expect> {
    let regs_ok = e.regs.iter().all(|&(n, v)| regs[usize::from(n - 4)] == v);
    if e.status == status && regs_ok {
        return None;
    }
    Some(Expect {
        status,
        regs: e
            .regs
            .iter()
            .map(|&(n, _)| (n, regs[usize::from(n - 4)]))
            .collect(),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| std::format!("{x:02x}")).collect()
}

/// Applies an injection to a machine's device; `None` if the slot is empty.
pub fn inject<S: crate::machine::SlotTable, H: crate::host::Host>(
    m: &Machine<S, H>,
    slot: u32,
    what: Injection,
) -> Option<()> {
    m.with_device(slot, |d| match what {
        Injection::Health(b) => d.inject_health(b),
        Injection::HealthClear(b) => d.clear_health(b),
        Injection::FlushResult(c) => d.faults_mut().flush_result = Some(c),
        Injection::FlushHold(k) => d.faults_mut().flush_hold = k,
        Injection::FlushOrder(c) => d.faults_mut().flush_order = c,
        Injection::BindBusy(k) => d.faults_mut().bind_busy = k,
        Injection::BindBudget(n) => d.faults_mut().bind_budget = Some(n),
        Injection::Stats(s) => d.faults_mut().stats = s,
        Injection::BoundAll => d.bind_all(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sparse_ram() {
        let r = SparseRam::new(3 * PAGE);
        let mut b = [1u8; 6];
        r.read_guest(PAGE - 3, &mut b).unwrap();
        assert_eq!(b, [0; 6]);
        r.write_guest(PAGE - 3, &[1, 2, 3, 4, 5, 6]).unwrap();
        r.read_guest(PAGE - 3, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6]);
        assert!(r.write_guest(3 * PAGE - 1, &[1, 2]).is_err());
        assert!(r.read_guest(u64::MAX, &mut b).is_err());
        r.write_guest(3 * PAGE - 1, &[9]).unwrap();
    }

    #[test]
    fn test_replay_reports_mismatch_and_success() {
        let t = Transcript::parse(
            "machine ram=2G maxmem=8G slots=4\n\
             nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n\
             call H_SCM_BIND_MEM 0x90000000 0 4 -1 0 -> H_SUCCESS r5=0x80000000 r6=4\n\
             call H_SCM_HEALTH 0x90000000 -> H_P2\n",
        )
        .unwrap();
        let r = replay(&t).unwrap();
        assert_eq!(r.calls, 2);
        assert_eq!(r.mismatches.len(), 1);
        assert!(r.mismatches[0].starts_with("line 4: H_SCM_HEALTH: expected H_P2, got H_SUCCESS"));
    }

    /// `flush-status` lines stand in for a VMM's executor, whose flushes
    /// complete when they do; `health-clear` clears the SHUTDOWN_DIRTY the
    /// failed flush set.
    #[test]
    fn test_replay_recorded_flush_answers_and_health_clear() {
        let t = Transcript::parse(
            "machine ram=2G maxmem=8G slots=4\n\
             nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e type=spapr-nvdimm\n\
             flush-status slot=0 token=0x1 done\n\
             call H_SCM_FLUSH 0x90000000 0 -> H_SUCCESS\n\
             call H_SCM_FLUSH 0x90000000 0 -> H_LONG_BUSY_ORDER_10_MSEC r4=0x2\n\
             flush-status slot=0 token=0x2 pending\n\
             call H_SCM_FLUSH 0x90000000 0x2 -> H_LONG_BUSY_ORDER_10_MSEC r4=0x2\n\
             flush-status slot=0 token=0x2 failed\n\
             call H_SCM_FLUSH 0x90000000 0x2 -> H_HARDWARE\n\
             inject slot=0 health-clear=0x4000000000000000\n\
             call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r4=0x0\n",
        )
        .unwrap();
        let r = replay(&t).unwrap();
        assert_eq!((r.calls, r.mismatches.len()), (5, 0), "{:?}", r.mismatches);
        // Without the lines, the same calls answer as replay's own executor.
        let plain: String = t
            .lines
            .iter()
            .filter(|(_, d)| !matches!(d, Directive::FlushStatus { .. }))
            .map(|(_, d)| std::format!("{d}\n"))
            .collect();
        let r = replay(&Transcript::parse(&plain).unwrap()).unwrap();
        assert_eq!(r.mismatches.len(), 3, "{:?}", r.mismatches);
    }

    #[test]
    fn test_replay_malformed() {
        let t = Transcript::parse(
            "machine ram=2G maxmem=8G slots=4\n\
             nvdimm size=1G label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n",
        )
        .unwrap();
        let e = replay(&t).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.starts_with("size:"), "{}", e.reason);
        let t = Transcript::parse("machine ram=2G maxmem=8G slots=4\ninject slot=0 bound=all\n")
            .unwrap();
        assert_eq!(replay(&t).unwrap_err().line, 2);
    }

    /// A boot from existing labels: `label` lines fill the label area
    /// before the calls, and `label_lines` writes exactly what a store holds.
    #[test]
    fn test_label_lines_replay() {
        use crate::label::{LabelStore, VecLabelStore};
        use crate::transcript::label_lines;
        let mut store = VecLabelStore::new(128 << 10);
        store.write(0, b"NAMESPACE_INDEX").unwrap();
        store.write(300, &[7; 20]).unwrap();
        store.write(0x10000, &[9; 4]).unwrap();
        let lines = label_lines(0, &store).unwrap();
        // The first two granules merge; the third is alone.
        assert_eq!(lines.len(), 2);
        let text: String = lines.iter().map(|d| std::format!("{d}\n")).collect();
        assert!(
            text.starts_with("label slot=0 offset=0x0 4e414d45"),
            "{text}"
        );
        assert!(text.contains("label slot=0 offset=0x10000 09090909"));
        let t = Transcript::parse(&std::format!(
            "machine ram=2G maxmem=8G slots=4\n\
             nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n\
             {text}\
             call H_SCM_READ_METADATA 0x90000000 0x0 0x8 -> H_SUCCESS r4=0x4e414d4553504143\n\
             call H_SCM_READ_METADATA 0x90000000 0x12c 0x1 -> H_SUCCESS r4=0x7\n\
             call H_SCM_READ_METADATA 0x90000000 0x10000 0x4 -> H_SUCCESS r4=0x9090909\n"
        ))
        .unwrap();
        let r = replay(&t).unwrap();
        assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
        // Written back out, the lines read the same.
        for d in &lines {
            assert_eq!(
                crate::transcript::parse_line(&d.to_string())
                    .unwrap()
                    .as_ref(),
                Some(d)
            );
        }
        // A label line for an empty slot, or past the area, is an error.
        for bad in ["label slot=1 offset=0 00", "label slot=0 offset=0x20000 00"] {
            let t = Transcript::parse(&std::format!(
                "machine ram=2G maxmem=8G slots=4\n\
                 nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n{bad}\n"
            ))
            .unwrap();
            assert!(replay(&t).is_err(), "{bad}");
        }
        assert!(crate::transcript::parse_line("label slot=0 00").is_err());
    }

    /// A migration's destination: `label-clear` drops the area the trace
    /// began with, and the `label` lines after it are all the device holds.
    #[test]
    fn test_label_clear_replaces_the_area() {
        let head = "machine ram=2G maxmem=8G slots=4\n\
             nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n\
             label slot=0 offset=0x0 1111111111111111\n\
             label slot=0 offset=0x100 2222222222222222\n";
        let reads = "label slot=0 offset=0x0 3333333333333333\n\
             call H_SCM_READ_METADATA 0x90000000 0x0 0x8 -> H_SUCCESS r4=0x3333333333333333\n\
             call H_SCM_READ_METADATA 0x90000000 0x100 0x8 -> H_SUCCESS r4=0x0\n";
        let t = Transcript::parse(&std::format!("{head}label-clear slot=0\n{reads}")).unwrap();
        let r = replay(&t).unwrap();
        assert_eq!((r.calls, r.mismatches.len()), (2, 0), "{:?}", r.mismatches);
        // Without it, the old bytes at 0x100 are still there.
        let r = replay(&Transcript::parse(&std::format!("{head}{reads}")).unwrap()).unwrap();
        assert_eq!(r.mismatches.len(), 1, "{:?}", r.mismatches);
        assert!(r.mismatches[0].starts_with("line 7:"), "{:?}", r.mismatches);
        // An empty slot is a malformed transcript, named by its line.
        let t = Transcript::parse(&std::format!("{head}label-clear slot=1\n")).unwrap();
        let e = replay(&t).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.reason.contains("slot 1 holds no device"), "{}", e.reason);
    }
}
