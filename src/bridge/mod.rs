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
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::DeviceSpec;
use crate::guest::wrapper_abi;
use crate::hcall::{hcall_name, Regs, ReturnCode, H_BUSY, H_SCM_BIND_MEM, H_SCM_FLUSH};
use crate::host::{
    BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, GuestMemoryError, StatsSource,
};
use crate::machine::Machine;
use crate::replay::inject;
use crate::transcript::{call_line, label_lines, Directive, Transcript};

mod migration;
pub mod rsp;
pub mod rtas;
pub mod vmlinux;

use std::collections::VecDeque;

use self::rtas::{now, rtas_cells, rtas_tokens};
use crate::config::Planner;
use crate::label::{FileLabelStore, LabelError, LabelStore, VecLabelStore};
use crate::machine::{Released, RtasEffect, Unplug};
use crate::rtas::{
    RtasArgs, RtasService, RtasTokens, RTAS_ARGS_LEN, RTAS_OUT_NO_ERRORS_FOUND,
    SPAPR_DR_CC_RESPONSE_NEXT_CHILD, SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY,
};
use crate::rtas_error_log::{EventQueue, RtcTime, HOTPLUG_EVENT_LEN};
use migration::{pause_for_migration, read_snapshot, rearm_decrementer, Incoming};
use rsp::{unhex, Rsp, ANSWER_TIMEOUT};
pub use vmlinux::{find_mtdec, find_sites, find_symbol, Site};

/// Guest real address X is at this effective address in the kernel's
/// linear map; the stub's m/M packets take effective addresses.
const LINEAR_MAP: u64 = 0xc000_0000_0000_0000;
/// QEMU's register numbers for `P`: pc is 0x40.
const REG_PC: u32 = 0x40;
/// `g` layout with target.xml: r0..r31, then pc at byte 256 and msr at 264.
const G_PC: usize = 256;
const G_MSR: usize = 264;
/// ... then cr (4 bytes) at 272 and lr at 276 (`power64-core.xml`).
const G_LR: usize = 276;
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
    /// The guest's boot tree (QEMU `-machine dumpdtb=`), for the RTAS
    /// tokens. With it the bridge also traps `enter_rtas` and answers the
    /// RTAS calls of PMEM connectors and events, and runs the
    /// configuration's `plug` and `unplug` lines.
    pub dtb: Option<PathBuf>,
    /// With `dtb`: answer nothing, record what QEMU answers to the PMEM
    /// RTAS calls (a reference boot); hcalls are not trapped.
    pub observe_rtas: bool,
    /// The migration source's side: at the guest's first H_SCM_FLUSH left
    /// pending, pause the guest, write the SCM snapshot here and stop
    /// serving (QEMU then migrates the paused guest).
    pub snapshot_out: Option<PathBuf>,
    /// The migration destination's side: the snapshot to restore before
    /// the guest goes on.
    pub snapshot_in: Option<PathBuf>,
}

/// The bridge's host: guest memory through the stub, flushes that sync the
/// backing files, and a log of the memory the hcalls touched (for the trace).
struct GdbHost<L = TcpStream> {
    rsp: RefCell<Rsp<L>>,
    backing: RefCell<Vec<Option<File>>>,
    /// The guest's time of day, set when the bridge raises an event.
    clock: std::cell::Cell<RtcTime>,
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
        match self
            .backing
            .borrow()
            .get(slot as usize)
            .and_then(Option::as_ref)
        {
            Some(f) => FlushStatus::Done(f.sync_data().is_ok()),
            None => FlushStatus::Done(true),
        }
    }
}

impl<L> BindEvents for GdbHost<L> {}
impl<L> StatsSource for GdbHost<L> {}
impl<L> EventSignal for GdbHost<L> {
    fn guest_time(&self) -> RtcTime {
        self.clock.get()
    }
}

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
    let mut sites = find_sites(&elf).map_err(Error::Input)?;
    let rtas = match &o.dtb {
        None => None,
        Some(path) => {
            let blob = std::fs::read(path)
                .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
            let tokens =
                rtas_tokens(&blob).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
            let [reboot] = rtas_cells(&blob, ["system-reboot"])
                .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
            let entry = find_symbol(&elf, "enter_rtas").map_err(Error::Input)?;
            let (planner, _) = t
                .planner()
                .map_err(|e| Error::Input(format!("{}: {e}", o.config.display())))?;
            let actions = t
                .lines
                .iter()
                .filter(|(_, d)| matches!(d, Directive::Plug(_) | Directive::Unplug { .. }))
                .map(|(_, d)| d.clone())
                .collect();
            let mut events = EventQueue::new();
            // Linux (since 4.x) negotiates the dedicated hot-plug source
            // (OV5_HP_EVT) at CAS and QEMU offers it; the bridge does not
            // trap H_CAS and takes the negotiation as made.
            events.cas(true);
            Some(RtasState {
                entry,
                tokens,
                reboot,
                observe: o.observe_rtas,
                events,
                planner,
                actions,
                backing: o.backing.iter().skip(specs.len()).cloned().collect(),
            })
        }
    };
    if o.observe_rtas {
        if rtas.is_none() {
            return Err(Error::Input("--observe-rtas needs --dtb".into()));
        }
        // QEMU answers every hcall in a reference boot.
        sites.clear();
    }
    // A destination's snapshot is checked against the configuration before
    // the guest is touched: refused, the guest stays paused, as after a
    // failed incoming migration in QEMU.
    let snapshot = match &o.snapshot_in {
        None => None,
        Some(path) => {
            let (bytes, snap) = read_snapshot(path, &o.config, &t)?;
            let mtdec = find_mtdec(&elf).map_err(Error::Input)?;
            Some(Incoming { bytes, snap, mtdec })
        }
    };
    serve_boot(o, &t, &machine_cfg, &specs, &sites, rtas, snapshot).map_err(Error::Run)
}

/// The RTAS side of a bridged boot.
struct RtasState {
    /// `enter_rtas`.
    entry: u64,
    tokens: RtasTokens,
    /// `system-reboot`: the guest reboots, a system reset.
    reboot: u32,
    observe: bool,
    events: EventQueue,
    planner: Planner,
    /// `plug` and `unplug` lines not yet run, one per hot-plug interrupt.
    actions: VecDeque<Directive>,
    /// Backing files of the devices `plug` lines add, in order.
    backing: VecDeque<PathBuf>,
}

fn serve_boot(
    o: &Options,
    t: &Transcript,
    machine_cfg: &crate::config::MachineConfig,
    specs: &[DeviceSpec],
    sites: &[(u64, Site, String)],
    mut rtas: Option<RtasState>,
    snapshot: Option<Incoming>,
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
    if let Some(r) = &rtas {
        eprintln!("bridge: RTAS trapped at enter_rtas {:#x}", r.entry);
        rsp.ok(&format!("Z0,{:x},4", r.entry))?;
    }
    if let Some(inc) = &snapshot {
        rearm_decrementer(&mut rsp, inc.mtdec)?;
    }
    let host = GdbHost {
        rsp: RefCell::new(rsp),
        backing: RefCell::new(backing),
        clock: Default::default(),
        touched: RefCell::new(Vec::new()),
        error: RefCell::new(None),
    };
    let machine = Machine::from_specs_with(machine_cfg, specs, host, |spec| {
        let i = specs
            .iter()
            .position(|s| s.slot == spec.slot)
            .unwrap_or(usize::MAX);
        label_store(o.backing.get(i), spec)
    })
    .map_err(|e| e.to_string())?;
    // Labels the backing files already hold start the trace, so that a
    // boot from existing labels replays.
    let mut trace: Vec<Directive> = Vec::new();
    for spec in specs {
        let lines = machine
            .with_device(spec.slot, |d| label_lines(spec.slot, &**d.label()))
            .unwrap_or(Ok(Vec::new()))
            .map_err(|e| format!("slot {}: label: {e}", spec.slot))?;
        trace.extend(lines);
    }
    // Faults the configuration injects before boot (e.g. health bits) are
    // applied now and kept in the trace, so that it replays.
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
    if let Some(Incoming { bytes, snap, .. }) = &snapshot {
        // Checked in `run`; the restore is the same here.
        let mut scratch = EventQueue::new();
        let events = rtas.as_mut().map_or(&mut scratch, |r| &mut r.events);
        machine.restore(snap, events).map_err(|e| e.to_string())?;
        eprintln!(
            "bridge: restored a snapshot of {} device(s), {} flush(es) pending",
            snap.devices.len(),
            snap.devices
                .iter()
                .flat_map(|d| d.state.flushes.iter().flatten())
                .filter(|f| f.result.is_none())
                .count()
        );
        trace.push(Directive::Restore(bytes.clone()));
    } else if rtas.as_ref().is_some_and(|r| !r.observe) {
        trace.push(Directive::Cas {
            hotplug_events: true,
        });
    }
    let pause_at = o.snapshot_out.as_deref();
    let result = serve(
        &machine,
        specs,
        sites,
        o.timeout,
        &mut trace,
        rtas.as_mut(),
        pause_at,
    );
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

/// A device's label area: in its backing file, where QEMU keeps it (the
/// last `label-size` bytes), so QEMU and the bridge can take turns on one
/// backing file; in memory for a device given no backing file.
type BridgeLabel = Box<dyn LabelStore>;
type BridgeMachine = Machine<crate::machine::SharedSlots<BridgeLabel>, GdbHost>;

/// The label store of `spec`: its backing file's label area, or memory.
fn label_store(path: Option<&PathBuf>, spec: &DeviceSpec) -> Result<BridgeLabel, LabelError> {
    Ok(match path {
        Some(p) => Box::new(FileLabelStore::for_spec(p, spec)?),
        None => Box::new(VecLabelStore::new(spec.layout.label_size() as usize)),
    })
}

fn serve(
    m: &BridgeMachine,
    specs: &[DeviceSpec],
    sites: &[(u64, Site, String)],
    timeout: Duration,
    trace: &mut Vec<Directive>,
    mut rtas: Option<&mut RtasState>,
    pause_at: Option<&Path>,
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
                .filter(|b| b.len() >= G_LR + 8)
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
        if let Some(r) = rtas.as_deref_mut().filter(|r| r.entry == pc) {
            on_rtas(m, r, pc, gpr(3), word(G_LR), trace)?;
            continue;
        }
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
            // Pass through: step into the wrapper and let QEMU answer.
            step_past(m, pc)?;
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
        {
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
        }
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
        if let Some(path) = pause_at {
            // A flush left pending: its token is now in the guest's hands.
            if opcode == H_SCM_FLUSH && (status.is_long_busy() || status == H_BUSY) {
                let scratch = EventQueue::new();
                let events = rtas.as_deref().map_or(&scratch, |r| &r.events);
                return pause_for_migration(m, path, events);
            }
        }
    }
}

/// Steps off a trap at `pc` so that QEMU runs the call.
fn step_past(m: &BridgeMachine, pc: u64) -> Result<(), String> {
    step(&mut m.host().rsp.borrow_mut(), pc).map(|_| ())
}

/// One instruction from `pc`; the PC after it (`None` if the stub's
/// registers did not parse). A step sometimes returns without executing
/// (QEMU 7.2), so it repeats until the PC moves.
fn step<L: rsp::Link>(rsp: &mut Rsp<L>, pc: u64) -> Result<Option<u64>, String> {
    for _ in 0..10 {
        rsp.send("s")?;
        rsp.recv(ANSWER_TIMEOUT)?;
        let r = rsp.cmd("g")?;
        let now = unhex(&r)
            .filter(|b| b.len() >= G_PC + 8)
            .map(|b| u64::from_le_bytes(b[G_PC..G_PC + 8].try_into().unwrap()));
        if now != Some(pc) {
            return Ok(now);
        }
    }
    Err(format!(
        "bridge: ten single-steps at {pc:#x} did not move the PC"
    ))
}

/// One trapped `enter_rtas`: `args_pa` is r3, `lr` the caller.
fn on_rtas(
    m: &BridgeMachine,
    r: &mut RtasState,
    pc: u64,
    args_pa: u64,
    lr: u64,
    trace: &mut Vec<Directive>,
) -> Result<(), String> {
    let mut raw = [0u8; RTAS_ARGS_LEN];
    m.host()
        .rsp
        .borrow_mut()
        .read_mem(LINEAR_MAP | args_pa, &mut raw)?;
    // A call papr-scm does not answer, or one it cannot read, is QEMU's.
    let token = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if token == r.reboot && !r.observe {
        // The guest reboots (Linux `rtas_restart`): the VMM resets the
        // machine, papr-scm's state with it (QEMU: `spapr_machine_reset`);
        // QEMU then runs the call and resets the rest.
        let mut gone = Vec::new();
        m.reset(&mut r.events, |rel| gone.push(rel));
        for rel in &gone {
            forget(m, r, rel);
        }
        trace.push(Directive::Reset);
        // The new boot's CAS, taken as made as at the first boot.
        r.events.cas(true);
        trace.push(Directive::Cas {
            hotplug_events: true,
        });
        eprintln!("bridge: the guest reboots: machine reset");
        return step_past(m, pc);
    }
    let (Ok(mut a), Some(service)) = (RtasArgs::parse(&raw), r.tokens.service(token)) else {
        return step_past(m, pc);
    };
    if r.observe {
        return observe_rtas(m, pc, lr, args_pa, service, a, trace);
    }
    if service == RtasService::EventScan {
        // QEMU's event-scan re-raises the interrupt for its own copy of
        // each hotplug event, which the guest never collects (papr-scm
        // answers check-exception): answered here, nothing is pending.
        if a.nret >= 1 {
            a.rets_mut()[0] = RTAS_OUT_NO_ERRORS_FOUND as u32;
        }
        return answer(m, &a, &mut raw, args_pa, lr);
    }
    if service == RtasService::CheckException && r.events.is_empty() {
        if let Some(action) = r.actions.pop_front() {
            run_action(m, r, action, trace)?;
        }
    }
    // The work area as the guest left it before this step: Linux copies
    // its whole 4 KiB buffer in before every call, so bytes a step does not
    // write are the guest's, and the trace carries them for the replay.
    let before = match service {
        RtasService::IbmConfigureConnector if a.nargs == 2 => {
            let wa = (u64::from(a.words[1]) << 32) | u64::from(a.words[0]);
            let mut b = vec![0u8; 248];
            m.host()
                .rsp
                .borrow_mut()
                .read_mem(LINEAR_MAP | (wa + 8), &mut b)?;
            Some(Directive::Mem {
                addr: wa + 8,
                bytes: b,
            })
        }
        _ => None,
    };
    m.host().touched.borrow_mut().clear();
    let (args, rets) = a.split();
    let args = args.to_vec();
    let effect = m.rtas(service, &args, rets, &mut r.events);
    if let Some(e) = m.host().error.borrow_mut().take() {
        return Err(e);
    }
    let touched: Vec<Directive> = m.host().touched.borrow_mut().drain(..).collect();
    let Some(effect) = effect else {
        return step_past(m, pc);
    };
    let rets = a.rets_mut().to_vec();
    trace.extend(before);
    trace.extend(
        touched
            .into_iter()
            .filter(|d| matches!(d, Directive::Mem { .. })),
    );
    record_rtas(m, trace, service, &args, &rets)?;
    eprintln!("bridge: rtas {} {:x?} -> {:x?}", service.name(), args, rets);
    match effect {
        RtasEffect::Released(rel) => {
            let slot = forget(m, r, &rel);
            eprintln!("bridge: slot {slot} released by the guest: the device is gone");
            let drc = u64::from(rel.device.spec().drc.raw());
            eprintln!(
                "bridge: H_SCM_HEALTH on drc {drc:#x} now answers {}",
                m.h_scm_health(drc).status
            );
        }
        RtasEffect::UnplugRefused { slot } => {
            eprintln!("bridge: the guest refused the unplug of slot {slot}")
        }
        RtasEffect::Configured { slot } => eprintln!("bridge: slot {slot} configured"),
        RtasEffect::None => {}
    }
    answer(m, &a, &mut raw, args_pa, lr)
}

/// A released device leaves the bridge's plan and backing files; its slot.
fn forget(m: &BridgeMachine, r: &mut RtasState, rel: &Released<BridgeLabel>) -> u32 {
    let slot = rel.device.spec().slot;
    let _ = r.planner.unplug(rel.device.spec());
    if let Some(f) = m.host().backing.borrow_mut().get_mut(slot as usize) {
        *f = None;
    }
    slot
}

/// Writes the returns into the guest's `rtas_args` and returns to `lr`.
fn answer(
    m: &BridgeMachine,
    a: &RtasArgs,
    raw: &mut [u8; RTAS_ARGS_LEN],
    args_pa: u64,
    lr: u64,
) -> Result<(), String> {
    a.write_returns(raw).map_err(|e| e.to_string())?;
    let mut rsp = m.host().rsp.borrow_mut();
    rsp.write_mem(LINEAR_MAP | args_pa, raw)?;
    rsp.set_reg(REG_PC, lr)
}

/// Runs a `plug` or `unplug` line of the configuration: the hot-plug
/// interrupt the guest is answering is the one QEMU raised for it.
fn run_action(
    m: &BridgeMachine,
    r: &mut RtasState,
    action: Directive,
    trace: &mut Vec<Directive>,
) -> Result<(), String> {
    let t = now();
    m.host().clock.set(t);
    trace.push(Directive::Time(t));
    match &action {
        Directive::Plug(cfg) => {
            let mut spec = r
                .planner
                .plug(cfg)
                .map_err(|e| format!("bridge: plug: {e}"))?;
            // A node configured after CAS carries the negotiated NUMA form
            // (QEMU: `<1 node>` for a FORM2 guest such as Linux 6.1).
            spec.set_numa_form(crate::config::NumaForm::Form2);
            let path = r.backing.pop_front();
            let file = path
                .as_ref()
                .and_then(|p| File::options().write(true).open(p).ok());
            {
                let mut b = m.host().backing.borrow_mut();
                if b.len() <= spec.slot as usize {
                    b.resize_with(spec.slot as usize + 1, || None);
                }
                b[spec.slot as usize] = file;
            }
            let label = label_store(path.as_ref(), &spec)
                .map_err(|e| format!("bridge: plug: slot {}: {e}", spec.slot))?;
            let dev = crate::device::Device::new(spec, label);
            m.plug(dev, &mut r.events)
                .map_err(|e| format!("bridge: plug: {e}"))?;
            eprintln!("bridge: plugged slot {} ({})", spec.slot, spec.drc);
            // The trace names the slot and the associativity the guest got,
            // so that it replays with the same node.
            let mut rec = *cfg;
            rec.slot = Some(u64::from(spec.slot));
            rec.associativity = Some(spec.associativity);
            trace.push(Directive::Plug(rec));
            let lines = m
                .with_device(spec.slot, |d| label_lines(spec.slot, &**d.label()))
                .unwrap_or(Ok(Vec::new()))
                .map_err(|e| format!("bridge: plug: slot {}: label: {e}", spec.slot))?;
            trace.extend(lines);
            return Ok(());
        }
        Directive::Unplug { slot } => {
            match m
                .unplug(*slot, &mut r.events)
                .map_err(|e| format!("bridge: unplug: {e}"))?
            {
                Unplug::Requested => eprintln!("bridge: unplug of slot {slot} requested"),
                Unplug::Released(rel) => {
                    let _ = r.planner.unplug(rel.device.spec());
                    eprintln!("bridge: slot {slot} released at once");
                }
            }
        }
        _ => {}
    }
    trace.push(action);
    Ok(())
}

/// Appends an RTAS call, its returns and the memory it wrote to the trace.
fn record_rtas(
    m: &BridgeMachine,
    trace: &mut Vec<Directive>,
    service: RtasService,
    args: &[u32],
    rets: &[u32],
) -> Result<(), String> {
    trace.push(Directive::Rtas {
        service,
        args: args.to_vec(),
        nret: rets.len(),
        expect: Some(rets.to_vec()),
    });
    trace.extend(rtas_memory(m, service, args, rets)?);
    Ok(())
}

/// The guest memory an RTAS call wrote, read back as the guest sees it:
/// the configure-connector step's words, name and value (from word 2 up),
/// and the event check-exception delivered. The same in a bridged and in
/// a reference boot, so the two compare line by line.
fn rtas_memory(
    m: &BridgeMachine,
    service: RtasService,
    args: &[u32],
    rets: &[u32],
) -> Result<Vec<Directive>, String> {
    let read = |gpa: u64, len: usize| -> Result<Vec<u8>, String> {
        let mut b = vec![0u8; len];
        m.host()
            .rsp
            .borrow_mut()
            .read_mem(LINEAR_MAP | gpa, &mut b)?;
        Ok(b)
    };
    let status = rets.first().map_or(-1, |&s| s as i32);
    match service {
        RtasService::IbmConfigureConnector if args.len() >= 2 => {
            let wa = (u64::from(args[1]) << 32) | u64::from(args[0]);
            let area = read(wa, 256)?;
            let w =
                |i: usize| u32::from_be_bytes(area[4 * i..4 * i + 4].try_into().unwrap()) as usize;
            let end = match status {
                SPAPR_DR_CC_RESPONSE_NEXT_CHILD => {
                    let name = area.get(w(2)..).unwrap_or(&[]);
                    w(2) + name.iter().position(|&b| b == 0).unwrap_or(0) + 1
                }
                SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY => w(4).saturating_add(w(3)),
                _ => return Ok(Vec::new()),
            };
            if end > area.len() || end <= 8 {
                return Ok(Vec::new());
            }
            Ok(vec![Directive::ExpectMem {
                addr: wa + 8,
                bytes: area[8..end].to_vec(),
            }])
        }
        RtasService::CheckException if status == 0 && args.len() >= 6 => {
            Ok(vec![Directive::ExpectMem {
                addr: u64::from(args[4]),
                bytes: read(u64::from(args[4]), HOTPLUG_EVENT_LEN)?,
            }])
        }
        _ => Ok(Vec::new()),
    }
}

/// A reference boot: lets QEMU answer a PMEM RTAS call and records the
/// call, its returns and the memory it wrote.
fn observe_rtas(
    m: &BridgeMachine,
    pc: u64,
    lr: u64,
    args_pa: u64,
    service: RtasService,
    a: RtasArgs,
    trace: &mut Vec<Directive>,
) -> Result<(), String> {
    let args = a.args().to_vec();
    let pmem = |index: u32| index >> 28 == crate::drc::DRC_TYPE_SHIFT_PMEM;
    let ours = match service {
        RtasService::SetIndicator | RtasService::GetSensorState => {
            args.get(1).is_some_and(|&i| pmem(i))
        }
        RtasService::IbmConfigureConnector if args.len() >= 2 => {
            let wa = (u64::from(args[1]) << 32) | u64::from(args[0]);
            let mut w = [0u8; 4];
            m.host()
                .rsp
                .borrow_mut()
                .read_mem(LINEAR_MAP | wa, &mut w)?;
            pmem(u32::from_be_bytes(w))
        }
        RtasService::CheckException => true,
        _ => false,
    };
    step_past(m, pc)?;
    if !ours {
        return Ok(());
    }
    // Run to the return address: RTAS runs with interrupts off, so the
    // next stop there is this call's return.
    {
        let mut rsp = m.host().rsp.borrow_mut();
        rsp.ok(&format!("Z0,{lr:x},4"))?;
        loop {
            rsp.send("c")?;
            let stop = rsp.recv(ANSWER_TIMEOUT)?;
            if !stop.starts_with('T') && !stop.starts_with('S') {
                return Err(format!("bridge: guest ended inside RTAS ({stop})"));
            }
            let g = rsp.cmd("g")?;
            let now = unhex(&g)
                .filter(|b| b.len() >= G_PC + 8)
                .map(|b| u64::from_le_bytes(b[G_PC..G_PC + 8].try_into().unwrap()));
            if now == Some(lr) {
                break;
            }
        }
        rsp.ok(&format!("z0,{lr:x},4"))?;
    }
    let mut raw = [0u8; RTAS_ARGS_LEN];
    m.host()
        .rsp
        .borrow_mut()
        .read_mem(LINEAR_MAP | args_pa, &mut raw)?;
    let mut after = RtasArgs::parse(&raw).map_err(|e| format!("bridge: {e}"))?;
    let rets = after.rets_mut().to_vec();
    record_rtas(m, trace, service, &args, &rets)?;
    eprintln!(
        "bridge: observed rtas {} {:x?} -> {:x?}",
        service.name(),
        args,
        rets
    );
    Ok(())
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
        let host = GdbHost {
            rsp: RefCell::new(Rsp::new(ScriptedLink::new(
                rsp::reply(&"ab".repeat(16)).as_bytes(),
            ))),
            backing: RefCell::new(Vec::new()),
            clock: Default::default(),
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
