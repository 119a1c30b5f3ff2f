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
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use papr_scm::config::DeviceSpec;
use papr_scm::guest::wrapper_abi;
use papr_scm::hcall::{hcall_name, Regs, ReturnCode, H_SCM_BIND_MEM};
use papr_scm::host::{
    BindEvents, FlushExecutor, FlushStatus, GuestMemory, GuestMemoryError, StatsSource,
};
use papr_scm::machine::Machine;
use papr_scm::replay::inject;
use papr_scm::transcript::{call_line, Directive, Transcript};

/// Guest real address X is at this effective address in the kernel's
/// linear map; the stub's m/M packets take effective addresses.
const LINEAR_MAP: u64 = 0xc000_0000_0000_0000;
/// QEMU's register numbers for `P`: pc is 0x40.
const REG_PC: u32 = 0x40;
/// `g` layout with target.xml: r0..r31, then pc at byte 256 and msr at 264.
const G_PC: usize = 256;
const G_MSR: usize = 264;

pub struct Options {
    pub gdb: String,
    pub vmlinux: PathBuf,
    pub config: PathBuf,
    pub trace: Option<PathBuf>,
    /// Backing files to fdatasync on H_SCM_FLUSH, by slot.
    pub backing: Vec<PathBuf>,
    pub timeout: Duration,
}

/// A GDB remote-serial-protocol client: acks on, one packet at a time.
struct Rsp {
    stream: TcpStream,
}

impl Rsp {
    fn connect(addr: &str, within: Duration) -> Result<Rsp, String> {
        let start = Instant::now();
        loop {
            match TcpStream::connect(addr) {
                Ok(stream) => {
                    stream.set_nodelay(true).ok();
                    return Ok(Rsp { stream });
                }
                Err(e) if start.elapsed() > within => {
                    return Err(format!("gdb stub at {addr}: {e} (waited {within:?})"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn send(&mut self, data: &str) -> Result<(), String> {
        let sum = data.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        let pkt = format!("${data}#{sum:02x}");
        for _ in 0..3 {
            self.stream.write_all(pkt.as_bytes()).map_err(lost)?;
            match self.byte(Duration::from_secs(10))? {
                b'+' => return Ok(()),
                b'-' => continue,
                other => {
                    return Err(format!(
                        "gdb stub: expected an ack, got {:?}",
                        other as char
                    ))
                }
            }
        }
        Err("gdb stub: packet refused three times".into())
    }

    fn byte(&mut self, timeout: Duration) -> Result<u8, String> {
        self.stream.set_read_timeout(Some(timeout)).map_err(lost)?;
        let mut b = [0u8];
        match self.stream.read(&mut b) {
            Ok(0) => Err("gdb stub: connection closed (QEMU exited?)".into()),
            Ok(_) => Ok(b[0]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(format!("gdb stub: no answer within {timeout:?}"))
            }
            Err(e) => Err(lost(e)),
        }
    }

    /// Reads one packet (skipping stray acks), acks it, and decodes `}`
    /// escapes and `*` run lengths.
    fn recv(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        while self.byte(left())? != b'$' {}
        let mut raw = Vec::new();
        loop {
            match self.byte(left())? {
                b'#' => break,
                b => raw.push(b),
            }
        }
        let (a, b) = (self.byte(left())?, self.byte(left())?);
        let sum = raw.iter().fold(0u8, |s, x| s.wrapping_add(*x));
        let want = u8::from_str_radix(&format!("{}{}", a as char, b as char), 16).unwrap_or(!sum);
        if sum != want {
            self.stream.write_all(b"-").map_err(lost)?;
            return self.recv(left());
        }
        self.stream.write_all(b"+").map_err(lost)?;
        let mut out = Vec::with_capacity(raw.len());
        let mut it = raw.into_iter();
        while let Some(c) = it.next() {
            match c {
                b'}' => out.push(it.next().unwrap_or(0) ^ 0x20),
                b'*' => {
                    let n = it.next().unwrap_or(29).saturating_sub(29);
                    let last = *out.last().unwrap_or(&b'0');
                    out.extend(std::iter::repeat_n(last, n as usize));
                }
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn cmd(&mut self, data: &str) -> Result<String, String> {
        self.send(data)?;
        self.recv(Duration::from_secs(10))
    }

    fn ok(&mut self, data: &str) -> Result<(), String> {
        match self.cmd(data)?.as_str() {
            "OK" => Ok(()),
            r => Err(format!("gdb stub: '{data}' answered '{r}'")),
        }
    }

    fn read_mem(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        for (i, chunk) in buf.chunks_mut(1024).enumerate() {
            let at = addr + (i * 1024) as u64;
            let r = self.cmd(&format!("m{at:x},{:x}", chunk.len()))?;
            let bytes = unhex(&r).ok_or_else(|| format!("gdb stub: m{at:x} answered '{r}'"))?;
            if bytes.len() != chunk.len() {
                return Err(format!("gdb stub: m{at:x} answered '{r}'"));
            }
            chunk.copy_from_slice(&bytes);
        }
        Ok(())
    }

    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), String> {
        for (i, chunk) in data.chunks(1024).enumerate() {
            let at = addr + (i * 1024) as u64;
            self.ok(&format!("M{at:x},{:x}:{}", chunk.len(), hex(chunk)))?;
        }
        Ok(())
    }

    fn set_reg(&mut self, n: u32, v: u64) -> Result<(), String> {
        // Register values follow MSR[LE]; the bridge only runs in the LE kernel.
        self.ok(&format!("P{n:x}={}", hex(&v.to_le_bytes())))
    }
}

fn lost(e: io::Error) -> String {
    format!("gdb stub: {e}")
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Which wrapper a trapped call site calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `plpar_hcall(opcode, ret, args...)`: args in r5.., outputs to ret[].
    Hcall,
    /// `plpar_hcall_norets(opcode, args...)`: args in r4.., status only.
    Norets,
}

/// The call sites of the hcall wrappers inside the functions of
/// `papr_scm.c`, from vmlinux's symbol table and code.
pub fn find_sites(elf: &[u8]) -> Result<Vec<(u64, Site, String)>, String> {
    let rd16 = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let rd32 = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let rd64 = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let bad = || "vmlinux: not a little-endian ELF64 with a symbol table".to_string();
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err(bad());
    }
    let shoff = rd64(0x28).ok_or_else(bad)? as usize;
    let shnum = rd16(0x3C).ok_or_else(bad)? as usize;
    // (addr, offset, size, type, link, entsize)
    let sections: Vec<(u64, u64, u64, u32, u32, u64)> = (0..shnum)
        .map(|i| {
            let h = shoff + i * 64;
            Some((
                rd64(h + 16)?,
                rd64(h + 24)?,
                rd64(h + 32)?,
                rd32(h + 4)?,
                rd32(h + 40)?,
                rd64(h + 56)?,
            ))
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let symtab = sections.iter().find(|s| s.3 == 2).ok_or_else(bad)?;
    let strtab = sections.get(symtab.4 as usize).ok_or_else(bad)?;
    let name = |off: u32| -> &str {
        let start = strtab.1 as usize + off as usize;
        let end = elf[start..]
            .iter()
            .position(|b| *b == 0)
            .map_or(start, |n| start + n);
        std::str::from_utf8(&elf[start..end]).unwrap_or("")
    };
    // (name, value, size, type, shndx)
    let syms: Vec<(&str, u64, u64, u8, u16)> = (0..symtab.2 / 24)
        .map(|i| {
            let s = (symtab.1 + i * 24) as usize;
            Some((
                name(rd32(s)?),
                rd64(s + 8)?,
                rd64(s + 16)?,
                elf[s + 4] & 0xf,
                rd16(s + 6)?,
            ))
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let entry = |n: &str| {
        syms.iter()
            .find(|s| s.0 == n && s.3 == 2)
            .map(|s| s.1)
            .ok_or_else(|| format!("vmlinux: no {n}"))
    };
    let (hcall, norets) = (entry("plpar_hcall")?, entry("plpar_hcall_norets")?);
    // The local symbols of a source file follow its STT_FILE symbol.
    let mut in_file = false;
    let mut sites = Vec::new();
    for &(n, value, size, ty, shndx) in &syms {
        if ty == 4 {
            in_file = n == "papr_scm.c";
            continue;
        }
        if !in_file || ty != 2 || size == 0 {
            continue;
        }
        let sec = sections.get(shndx as usize).ok_or_else(bad)?;
        let file_off = sec.1 + (value - sec.0);
        for k in (0..size).step_by(4) {
            let pc = value + k;
            let w = rd32((file_off + k) as usize).ok_or_else(bad)?;
            // bl: primary opcode 18, AA = 0, LK = 1.
            if w & 0xFC00_0003 != 0x4800_0001 {
                continue;
            }
            let li = ((w & 0x03FF_FFFC) as i32) << 6 >> 6;
            let target = pc.wrapping_add(li as i64 as u64);
            // ELFv2: a local call enters at the local entry point, +8.
            let site = if target == hcall || target == hcall + 8 {
                Site::Hcall
            } else if target == norets || target == norets + 8 {
                Site::Norets
            } else {
                continue;
            };
            sites.push((pc, site, n.to_string()));
        }
    }
    if sites.is_empty() {
        return Err("vmlinux: no hcall call sites in papr_scm.c's functions".into());
    }
    Ok(sites)
}

/// The bridge's host: guest memory through the stub, flushes that sync the
/// backing files, and a log of the memory the hcalls touched (for the trace).
struct GdbHost {
    rsp: RefCell<Rsp>,
    backing: Vec<Option<File>>,
    touched: RefCell<Vec<Directive>>,
    error: RefCell<Option<String>>,
}

impl GuestMemory for GdbHost {
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        let err = GuestMemoryError {
            gpa,
            len: buf.len(),
        };
        if gpa >= 1 << 40 {
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
        if gpa >= 1 << 40 {
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

impl FlushExecutor for GdbHost {
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

impl BindEvents for GdbHost {}
impl StatsSource for GdbHost {}

pub fn run(o: &Options) -> Result<(), String> {
    let t = Transcript::read_file(&o.config)?;
    let (machine_cfg, specs) = t
        .plan()
        .map_err(|e| format!("{}: {e}", o.config.display()))?;
    let elf = std::fs::read(&o.vmlinux).map_err(|e| format!("{}: {e}", o.vmlinux.display()))?;
    let sites = find_sites(&elf)?;
    eprintln!("bridge: {} trap points in papr_scm.c", sites.len());
    for (pc, site, func) in &sites {
        eprintln!("bridge:   {pc:#x} {func} -> {site:?}");
    }
    let mut backing = Vec::new();
    for s in &specs {
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
    for (pc, _, _) in &sites {
        rsp.ok(&format!("Z0,{pc:x},4"))?;
    }
    let host = GdbHost {
        rsp: RefCell::new(rsp),
        backing,
        touched: RefCell::new(Vec::new()),
        error: RefCell::new(None),
    };
    let machine = Machine::from_specs(machine_cfg.profile, machine_cfg.slots, &specs, host);
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
    let result = serve(&machine, &specs, &sites, o.timeout, &mut trace);
    if let Some(path) = &o.trace {
        let mut out = format!(
            "# Bridged by papr-scm qemu-bridge: a real Linux guest's SCM hcalls.\n{}\n",
            Directive::Machine(machine_cfg)
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
    m: &Machine<papr_scm::machine::SharedSlots<papr_scm::label::VecLabelStore>, GdbHost>,
    specs: &[DeviceSpec],
    sites: &[(u64, Site, String)],
    timeout: Duration,
    trace: &mut Vec<Directive>,
) -> Result<(), String> {
    let start = Instant::now();
    let mut calls = 0usize;
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
                rsp.recv(Duration::from_secs(10))?;
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
        if opcode == H_SCM_BIND_MEM && regs[4] == 0 {
            check_config(specs, regs[0], regs[2])?;
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

/// Refuses to serve a guest whose devices are not the configuration's: the
/// first bind of each device must name a configured DRC with its blocks.
fn check_config(specs: &[DeviceSpec], drc: u64, blocks: u64) -> Result<(), String> {
    match specs.iter().find(|s| u64::from(s.drc.raw()) == drc) {
        Some(s) if s.blocks() == blocks => Ok(()),
        Some(s) => Err(format!(
            "bridge: configuration mismatch: the guest binds {blocks} blocks of drc {drc:#x}, the configuration has {}",
            s.blocks()
        )),
        None => Err(format!("bridge: configuration mismatch: the guest binds drc {drc:#x}, which the configuration lacks")),
    }
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        gdb: String::new(),
        vmlinux: PathBuf::new(),
        config: PathBuf::new(),
        trace: None,
        backing: Vec::new(),
        timeout: Duration::from_secs(300),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--gdb" => o.gdb = v.clone(),
            "--vmlinux" => o.vmlinux = v.into(),
            "--config" => o.config = v.into(),
            "--trace" => o.trace = Some(v.into()),
            "--backing" => o.backing.push(v.into()),
            "--timeout" => {
                o.timeout = Duration::from_secs(
                    v.parse()
                        .map_err(|_| format!("--timeout: '{v}' is not seconds"))?,
                )
            }
            _ => return Err(format!("unknown option {a}")),
        }
    }
    if o.gdb.is_empty() || o.vmlinux.as_os_str().is_empty() || o.config.as_os_str().is_empty() {
        return Err("qemu-bridge needs --gdb HOST:PORT --vmlinux FILE --config CFG".into());
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 0xab, 0x10])), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    /// A minimal ELF64 LE: .text at 0x1000 with a function of papr_scm.c
    /// that calls plpar_hcall+8, plpar_hcall_norets and something else.
    fn tiny_elf() -> Vec<u8> {
        let bl =
            |from: u64, to: u64| 0x4800_0001u32 | ((to.wrapping_sub(from) as u32) & 0x03FF_FFFC);
        let mut text = Vec::new();
        for w in [
            0x6000_0000,
            bl(0x1004, 0x2008),
            bl(0x1008, 0x2100),
            bl(0x100c, 0x0f00),
        ] {
            text.extend_from_slice(&u32::to_le_bytes(w));
        }
        let strtab =
            b"\0papr_scm.c\0drc_pmem_bind\0other.c\0plpar_hcall\0plpar_hcall_norets\0".to_vec();
        let at = |n: &str| {
            strtab
                .windows(n.len())
                .position(|w| w == n.as_bytes())
                .unwrap() as u32
        };
        let sym = |name: u32, info: u8, shndx: u16, value: u64, size: u64| {
            let mut b = Vec::new();
            b.extend_from_slice(&name.to_le_bytes());
            b.extend_from_slice(&[info, 0]);
            b.extend_from_slice(&shndx.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b
        };
        let mut symtab = sym(0, 0, 0, 0, 0);
        symtab.extend(sym(at("papr_scm.c"), 4, 0xfff1, 0, 0));
        symtab.extend(sym(at("drc_pmem_bind"), 2, 1, 0x1000, 16));
        symtab.extend(sym(at("other.c"), 4, 0xfff1, 0, 0));
        symtab.extend(sym(at("plpar_hcall"), 0x12, 1, 0x2000, 8));
        symtab.extend(sym(at("plpar_hcall_norets"), 0x12, 1, 0x2100, 8));
        let (text_off, sym_off) = (64u64, 64 + text.len() as u64);
        let str_off = sym_off + symtab.len() as u64;
        let sh_off = str_off + strtab.len() as u64;
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x28..0x30].copy_from_slice(&sh_off.to_le_bytes());
        elf[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3C..0x3E].copy_from_slice(&4u16.to_le_bytes());
        elf.extend(&text);
        elf.extend(&symtab);
        elf.extend(&strtab);
        // (type, addr, offset, size, link)
        for (ty, addr, off, size, link) in [
            (0u32, 0u64, 0u64, 0u64, 0u32),
            (1, 0x1000, text_off, text.len() as u64, 0),
            (2, 0, sym_off, symtab.len() as u64, 3),
            (3, 0, str_off, strtab.len() as u64, 0),
        ] {
            let mut h = vec![0u8; 64];
            h[4..8].copy_from_slice(&ty.to_le_bytes());
            h[16..24].copy_from_slice(&addr.to_le_bytes());
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h[40..44].copy_from_slice(&link.to_le_bytes());
            elf.extend(h);
        }
        elf
    }

    #[test]
    fn test_find_sites_in_a_tiny_elf() {
        let sites = find_sites(&tiny_elf()).unwrap();
        assert_eq!(
            sites,
            vec![
                (0x1004, Site::Hcall, "drc_pmem_bind".to_string()),
                (0x1008, Site::Norets, "drc_pmem_bind".to_string())
            ]
        );
        assert!(find_sites(b"not an elf").is_err());
        let mut no_wrappers = tiny_elf();
        let p = no_wrappers
            .windows(11)
            .position(|w| w == b"plpar_hcall")
            .unwrap();
        no_wrappers[p] = b'X';
        assert!(find_sites(&no_wrappers)
            .unwrap_err()
            .contains("no plpar_hcall"));
    }

    #[test]
    fn test_rsp_packets_acks_escapes_and_run_length() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stub = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 64];
            // Read "$?#3f", ack it, answer with a bad checksum first.
            while !got.ends_with(b"#3f") {
                let n = s.read(&mut b).unwrap();
                got.extend_from_slice(&b[..n]);
            }
            s.write_all(b"+$T05#00").unwrap();
            let n = s.read(&mut b).unwrap();
            assert_eq!(&b[..n], b"-");
            // "a}b" escaped, then "0" run-length-encoded to "0000".
            s.write_all(b"$a}\x5db0* #").unwrap();
            let sum = b"a}\x5db0* ".iter().fold(0u8, |a, x| a.wrapping_add(*x));
            s.write_all(format!("{sum:02x}").as_bytes()).unwrap();
            let n = s.read(&mut b).unwrap();
            assert_eq!(&b[..n], b"+");
        });
        let mut rsp = Rsp::connect(&addr, Duration::from_secs(5)).unwrap();
        assert_eq!(rsp.cmd("?").unwrap(), "a}b0000");
        stub.join().unwrap();
        // A closed connection is an error, not a hang.
        assert!(rsp.cmd("?").is_err());
    }

    #[test]
    fn test_config_check() {
        use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
        let mut p = Planner::new(MachineConfig::new(2 << 30, 8 << 30, 4)).unwrap();
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let spec = p
            .plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))
            .unwrap();
        assert!(check_config(&[spec], 0x9000_0000, 4).is_ok());
        assert!(check_config(&[spec], 0x9000_0000, 1)
            .unwrap_err()
            .contains("mismatch"));
        assert!(check_config(&[spec], 0x9000_0001, 4)
            .unwrap_err()
            .contains("lacks"));
    }
}
