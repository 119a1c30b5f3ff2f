// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `papr-scm qemu-bridge`: answers a real Linux guest's SCM hcalls from
//! papr-scm through QEMU's gdb stub (TCG), QEMU answering everything else.
//!
//! Trap points are the call sites of `plpar_hcall` / `plpar_hcall_norets`
//! inside the functions of `papr_scm.c` (found in vmlinux's symbol table and
//! code), not the `sc 1` of the shared wrappers: every stop costs QEMU a
//! translation-cache flush, and the wrappers also carry every console
//! character (about 14 s a boot against about 40 s). At a `plpar_hcall`
//! site r3 holds the opcode, r4 the caller's `ret[]` buffer and r5.. the
//! arguments; at a `plpar_hcall_norets` site the arguments start at r4.
//! The bridge writes the outputs into `ret[]`, the status into r3, and moves
//! the PC past the `bl`.

use std::cell::RefCell;
use std::fs::File;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::DeviceSpec;
use crate::guest::wrapper_abi;
use crate::hcall::{hcall_name, Regs, ReturnCode, H_SCM_BIND_MEM};
use crate::host::{
    BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, GuestMemoryError, StatsSource,
};
use crate::machine::Machine;
use crate::replay::inject;
use crate::transcript::{call_line, Directive, Transcript};

pub mod rsp;
pub mod vmlinux;

use rsp::{unhex, Rsp, ANSWER_TIMEOUT};
pub use vmlinux::{find_sites, Site};

/// Guest real address X is at this effective address in the kernel's
/// linear map; the stub's m/M packets take effective addresses.
const LINEAR_MAP: u64 = 0xc000_0000_0000_0000;
/// QEMU's register numbers for `P`: pc is 0x40.
const REG_PC: u32 = 0x40;
/// `g` layout with target.xml: r0..r31, then pc at byte 256 and msr at 264.
const G_PC: usize = 256;
const G_MSR: usize = 264;
/// Largest guest-memory access an hcall may make through the stub: the
/// 272-byte SCMSTATS buffer is the largest there is. A bigger request is a
/// guest-memory error (H_P2 to the guest), not a megabyte RSP exchange.
pub const MAX_GUEST_ACCESS: usize = 4096;

/// `papr-scm qemu-bridge` options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The stub's `HOST:PORT`.
    pub gdb: String,
    /// The guest kernel's vmlinux (for the trap points).
    pub vmlinux: PathBuf,
    /// The machine and device configuration (transcript syntax).
    pub config: PathBuf,
    /// Where to write the bridged trace.
    pub trace: Option<PathBuf>,
    /// Backing files to fdatasync on H_SCM_FLUSH, in device order.
    pub backing: Vec<PathBuf>,
    /// Time limit for the whole boot.
    pub timeout: Duration,
}

/// The bridge's host: guest memory through the stub, flushes that sync the
/// backing files, and a log of the memory the hcalls touched (for the trace).
struct GdbHost<L = TcpStream> {
    rsp: RefCell<Rsp<L>>,
    backing: Vec<Option<File>>,
    touched: RefCell<Vec<Directive>>,
    error: RefCell<Option<String>>,
}

impl<L: rsp::Link> GuestMemory for GdbHost<L> {
    fn has_memory(&self) -> bool {
        true
    }

    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        let err = GuestMemoryError {
            gpa,
            len: buf.len(),
        };
        if gpa >= 1 << 40 || buf.len() > MAX_GUEST_ACCESS {
            return Err(err);
        }
        let r = self.rsp.borrow_mut().read_mem(LINEAR_MAP | gpa, buf);
        r.map_err(|e| {
            self.error.borrow_mut().get_or_insert(e);
            err
        })?;
        self.touched.borrow_mut().push(Directive::Mem {
            addr: gpa,
            bytes: buf.to_vec(),
        });
        Ok(())
    }

    fn write_guest(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        let err = GuestMemoryError {
            gpa,
            len: data.len(),
        };
        if gpa >= 1 << 40 || data.len() > MAX_GUEST_ACCESS {
            return Err(err);
        }
        let r = self.rsp.borrow_mut().write_mem(LINEAR_MAP | gpa, data);
        r.map_err(|e| {
            self.error.borrow_mut().get_or_insert(e);
            err
        })?;
        self.touched.borrow_mut().push(Directive::ExpectMem {
            addr: gpa,
            bytes: data.to_vec(),
        });
        Ok(())
    }
}

impl<L: rsp::Link> FlushExecutor for GdbHost<L> {
    fn flushes_data(&self) -> bool {
        true
    }

    // Pending until polled, as in `replay`, so bridged traces replay as they
    // ran; the poll syncs the backing file QEMU maps (QEMU: fdatasync).
    fn start_flush(&self, _slot: u32, _token: u64) -> FlushStatus {
        FlushStatus::Pending
    }

    fn poll_flush(&self, slot: u32, _token: u64) -> FlushStatus {
        match self.backing.get(slot as usize).and_then(Option::as_ref) {
            Some(f) => FlushStatus::Done(f.sync_data().is_ok()),
            None => FlushStatus::Done(true),
        }
    }
}

impl<L> BindEvents for GdbHost<L> {}
impl<L> StatsSource for GdbHost<L> {}
impl<L> EventSignal for GdbHost<L> {}

/// Why a bridged boot stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration or the vmlinux could not be used.
    #[error("{0}")]
    Input(String),
    /// The stub, the guest or the time limit ended the boot early.
    #[error("{0}")]
    Run(String),
}

/// Serves one boot: connects to the stub, plants the trap points and
/// answers every SCM hcall until the guest ends or the time runs out.
pub fn run(o: &Options) -> Result<(), Error> {
    let t = Transcript::read_file(&o.config).map_err(Error::Input)?;
    let (machine_cfg, specs) = t
        .plan()
        .map_err(|e| Error::Input(format!("{}: {e}", o.config.display())))?;
    let elf = std::fs::read(&o.vmlinux)
        .map_err(|e| Error::Input(format!("{}: {e}", o.vmlinux.display())))?;
    let sites = find_sites(&elf).map_err(Error::Input)?;
    serve_boot(o, &t, &machine_cfg, &specs, &sites).map_err(Error::Run)
}

fn serve_boot(
    o: &Options,
    t: &Transcript,
    machine_cfg: &crate::config::MachineConfig,
    specs: &[DeviceSpec],
    sites: &[(u64, Site, String)],
) -> Result<(), String> {
    eprintln!("bridge: {} trap points in papr_scm.c", sites.len());
    for (pc, site, func) in sites {
        eprintln!("bridge:   {pc:#x} {func} -> {site:?}");
    }
    let mut backing = Vec::new();
    for s in specs {
        let f = o
            .backing
            .get(backing.len())
            .and_then(|p| File::options().write(true).open(p).ok());
        backing.resize_with(s.slot as usize, || None);
        backing.push(f);
    }
    let mut rsp = Rsp::connect(&o.gdb, Duration::from_secs(30))?;
    rsp.cmd("qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")?;
    // QEMU 7.2 aborts on a register read unless target.xml was read first.
    rsp.cmd("qXfer:features:read:target.xml:0,ffb")?;
    rsp.cmd("?")?;
    for (pc, _, _) in sites {
        rsp.ok(&format!("Z0,{pc:x},4"))?;
    }
    let host = GdbHost {
        rsp: RefCell::new(rsp),
        backing,
        touched: RefCell::new(Vec::new()),
        error: RefCell::new(None),
    };
    let machine = Machine::from_specs(machine_cfg, specs, host).map_err(|e| e.to_string())?;
    // Faults the configuration injects before boot (e.g. health bits) are
    // applied now and kept in the trace, so that it replays.
    let mut trace: Vec<Directive> = Vec::new();
    for (line, d) in &t.lines {
        if let Directive::Inject { slot, what } = d {
            inject(&machine, *slot, *what).ok_or_else(|| {
                format!(
                    "{}: line {line}: slot {slot} holds no device",
                    o.config.display()
                )
            })?;
            trace.push(d.clone());
        }
    }
    let result = serve(&machine, specs, sites, o.timeout, &mut trace);
    if let Some(path) = &o.trace {
        let mut out = format!(
            "# Bridged by papr-scm qemu-bridge: a real Linux guest's SCM hcalls.\n{}\n",
            Directive::Machine(*machine_cfg)
        );
        for (_, d) in t.config().map_err(|e| e.to_string())?.1 {
            out.push_str(&format!("{}\n", Directive::Nvdimm(d)));
        }
        for d in &trace {
            out.push_str(&format!("{d}\n"));
        }
        std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    result
}

fn serve(
    m: &Machine<crate::machine::SharedSlots<crate::label::VecLabelStore>, GdbHost>,
    specs: &[DeviceSpec],
    sites: &[(u64, Site, String)],
    timeout: Duration,
    trace: &mut Vec<Directive>,
) -> Result<(), String> {
    let start = Instant::now();
    let mut calls = 0usize;
    // Devices whose first bind was compared with the configuration.
    let mut checked = vec![false; specs.len()];
    loop {
        let left = timeout
            .checked_sub(start.elapsed())
            .ok_or("bridge: time limit reached")?;
        let stop = {
            let mut rsp = m.host().rsp.borrow_mut();
            rsp.send("c")?;
            rsp.recv(left)?
        };
        if stop.starts_with('W') || stop.starts_with('X') {
            eprintln!("bridge: guest ended ({stop}) after {calls} bridged hcalls");
            return Ok(());
        }
        if !stop.starts_with('T') && !stop.starts_with('S') {
            return Err(format!("bridge: unexpected stop reply '{stop}'"));
        }
        let g = {
            let r = m.host().rsp.borrow_mut().cmd("g")?;
            unhex(&r)
                .filter(|b| b.len() >= G_MSR + 8)
                .ok_or_else(|| format!("bridge: bad 'g' reply '{r}'"))?
        };
        let word = |o: usize| u64::from_le_bytes(g[o..o + 8].try_into().unwrap());
        let (pc, msr) = (word(G_PC), word(G_MSR));
        if msr & 1 == 0 {
            return Err(format!(
                "bridge: stopped at {pc:#x} with MSR[LE] clear ({msr:#x})"
            ));
        }
        let gpr = |n: usize| word(n * 8);
        let Some(&(_, site, _)) = sites.iter().find(|s| s.0 == pc) else {
            // Not ours (e.g. an interrupt request): let the guest go on.
            continue;
        };
        let opcode = gpr(3);
        let first = match site {
            Site::Hcall => 5,
            Site::Norets => 4,
        };
        // The wrappers pass at most r10 (plpar_hcall: 6 args, norets: 7).
        let mut regs: Regs = [0; 9];
        for (i, r) in regs.iter_mut().enumerate().filter(|(i, _)| first + i <= 10) {
            *r = gpr(first + i);
        }
        if hcall_name(opcode).is_none() {
            // Pass through: step into the wrapper and let QEMU answer. A step
            // sometimes returns without executing (QEMU 7.2), so repeat
            // until the PC moves.
            let mut rsp = m.host().rsp.borrow_mut();
            let mut moved = false;
            for _ in 0..10 {
                rsp.send("s")?;
                rsp.recv(ANSWER_TIMEOUT)?;
                let r = rsp.cmd("g")?;
                let now = unhex(&r)
                    .filter(|b| b.len() >= G_PC + 8)
                    .map(|b| u64::from_le_bytes(b[G_PC..G_PC + 8].try_into().unwrap()));
                if now != Some(pc) {
                    moved = true;
                    break;
                }
            }
            if !moved {
                return Err(format!(
                    "bridge: ten single-steps at {pc:#x} did not move the PC"
                ));
            }
            continue;
        }
        // Only each device's first new bind is compared, and a mismatch is
        // reported, not fatal: any later or partial bind, or a bind of an
        // empty slot, is the guest's right and gets papr-scm's answer.
        if opcode == H_SCM_BIND_MEM && regs[4] == 0 {
            if let Some(i) = specs
                .iter()
                .position(|s| u64::from(s.drc.raw()) == regs[0])
                .filter(|&i| !checked[i])
            {
                checked[i] = true;
                if let Some(w) = check_config(specs, regs[0], regs[2]) {
                    eprintln!("bridge: warning: {w}");
                }
            }
        }
        let regs_in = regs;
        m.host().touched.borrow_mut().clear();
        let status = m.handle(opcode, &mut regs).unwrap_or(ReturnCode(-2));
        if let Some(e) = m.host().error.borrow_mut().take() {
            return Err(e);
        }
        let touched: Vec<Directive> = m.host().touched.borrow_mut().drain(..).collect();
        let mut rsp = m.host().rsp.borrow_mut();
        if site == Site::Hcall {
            // plpar_hcall stores r4..r7 into ret[] unconditionally.
            let mut out = Vec::with_capacity(32);
            for r in &regs[..4] {
                out.extend_from_slice(&r.to_le_bytes());
            }
            rsp.write_mem(gpr(4), &out)?;
        }
        rsp.set_reg(3, status.to_reg())?;
        rsp.set_reg(REG_PC, pc + 4)?;
        calls += 1;
        let (nargs, reads) = wrapper_abi(opcode);
        trace.extend(
            touched
                .iter()
                .filter(|d| matches!(d, Directive::Mem { .. }))
                .cloned(),
        );
        trace.push(call_line(opcode, &regs_in, nargs, status, &regs, reads));
        trace.extend(
            touched
                .into_iter()
                .filter(|d| matches!(d, Directive::ExpectMem { .. })),
        );
        eprintln!(
            "bridge: {} {:#x} -> {status}",
            hcall_name(opcode).unwrap_or("?"),
            regs_in[0]
        );
    }
}

/// A warning when a configured device's first bind does not cover the
/// configured blocks: Linux binds whole devices, so a difference means that
/// QEMU's command line and the bridge's configuration disagree.
fn check_config(specs: &[DeviceSpec], drc: u64, blocks: u64) -> Option<String> {
    let s = specs.iter().find(|s| u64::from(s.drc.raw()) == drc)?;
    (s.blocks() != blocks).then(|| {
        format!(
            "configuration mismatch? the guest's first bind of drc {drc:#x} asks for {blocks} blocks, the configuration has {}",
            s.blocks()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One PERFORMANCE_STATS call made an RSP round trip and kept a record
    /// per 8 bytes of whatever size the guest named; an access past 4 KiB is
    /// now refused before any packet, and a small one is one `m` packet.
    #[test]
    fn test_guest_memory_through_the_stub_is_bounded() {
        use rsp::ScriptedLink;
        let answer = |body: &str| {
            let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
            format!("+${body}#{sum:02x}")
        };
        let host = GdbHost {
            rsp: RefCell::new(Rsp::new(ScriptedLink::new(
                answer(&"ab".repeat(16)).as_bytes(),
            ))),
            backing: Vec::new(),
            touched: RefCell::new(Vec::new()),
            error: RefCell::new(None),
        };
        let mut big = vec![0u8; MAX_GUEST_ACCESS + 1];
        assert!(host.read_guest(0x1000, &mut big).is_err());
        assert!(host.write_guest(0x1000, &big).is_err());
        assert!(host.touched.borrow().is_empty());
        let mut buf = [0u8; 16];
        host.read_guest(0x1000, &mut buf).unwrap();
        assert_eq!(buf, [0xab; 16]);
        assert_eq!(host.touched.borrow().len(), 1);
    }

    #[test]
    fn test_config_check() {
        use crate::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
        let mut p = Planner::new(MachineConfig::new(2 << 30, 8 << 30, 4)).unwrap();
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let spec = p
            .plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))
            .unwrap();
        assert!(check_config(&[spec], 0x9000_0000, 4).is_none());
        assert!(check_config(&[spec], 0x9000_0000, 1)
            .unwrap()
            .contains("mismatch"));
        assert!(check_config(&[spec], 0x9000_0001, 4).is_none());
    }
}
