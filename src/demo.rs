// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The demo: a pseries machine with file-backed NVDIMMs, its device tree,
//! and the guest-driver model probing it, writing and reading labels,
//! flushing and reading statistics.

use std::fmt::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use papr_scm::config::{parse_uuid, DeviceKind, DeviceSpec, MachineConfig, NvdimmConfig, Planner};
use papr_scm::device::Device;
use papr_scm::fdt::machine_fdt;
use papr_scm::guest::{discover, Guest, LabelState, ProbedDevice, TraceItem};
use papr_scm::hcall::{hcall_name, H_SCM_READ_METADATA, H_SCM_WRITE_METADATA};
use papr_scm::label::FileLabelStore;
use papr_scm::machine::{Machine, SharedSlots};
use papr_scm::replay::{ReplayHost, SparseRam};
use papr_scm::transcript::{Directive, Transcript};

/// Where the demo's configuration comes from.
pub enum Source {
    /// Two NVDIMMs on a 2 GiB guest.
    Builtin,
    /// A transcript's `machine` and `nvdimm` lines.
    Config(PathBuf),
    /// The devices a foreign device-tree blob describes.
    Dtb(PathBuf),
}

/// Options of a demo run.
pub struct Options {
    /// The configuration.
    pub source: Source,
    /// Where to write the guest's hcalls as a transcript.
    pub trace: Option<PathBuf>,
}

const BUILTIN: &str = "\
machine ram=2G maxmem=8G slots=4
nvdimm slot=0 size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e
nvdimm slot=1 size=256M+128K label-size=128K uuid=22222222-3333-4444-8555-666666666666 type=spapr-nvdimm
";

type DemoMachine = Machine<SharedSlots<FileLabelStore>, ReplayHost>;

/// Why the demo stopped.
#[derive(Debug)]
pub enum Failure {
    /// The configuration, blob or trace path could not be used (exit 2).
    Input(String),
    /// A step of the demo failed its own check (exit 1).
    Check(String),
}

/// Runs the demo and returns its report (for stdout); the backing files
/// live in a temporary directory removed when it returns, whatever happens.
pub fn run(opts: &Options) -> Result<String, Failure> {
    let (machine, configs, specs) = plan_source(opts).map_err(Failure::Input)?;
    let dir = tempfile::Builder::new()
        .prefix("papr-scm-demo-")
        .tempdir()
        .map_err(|e| Failure::Input(format!("temporary directory: {e}")))?;
    let mut out = String::new();
    run_in(dir.path(), &machine, &configs, &specs, opts, &mut out).map_err(Failure::Check)?;
    Ok(out)
}

type Plan = (MachineConfig, Vec<NvdimmConfig>, Vec<DeviceSpec>);

fn plan_source(opts: &Options) -> Result<Plan, String> {
    let (machine, configs, specs) = match &opts.source {
        Source::Builtin => {
            let t = Transcript::parse(BUILTIN).map_err(|e| format!("built-in: {e}"))?;
            plan(&t, "built-in")?
        }
        Source::Config(p) => plan(&Transcript::read_file(p)?, &p.display().to_string())?,
        Source::Dtb(p) => {
            let blob = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let (machine, configs) =
                config_from_dtb(&blob).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut planner = Planner::new(machine).map_err(|e| format!("machine: {e}"))?;
            let specs = configs
                .iter()
                .map(|c| planner.plug(c).map_err(|e| format!("{}: {e}", p.display())))
                .collect::<Result<Vec<_>, _>>()?;
            (machine, configs, specs)
        }
    };
    Ok((machine, configs, specs))
}

fn run_in(
    dir: &Path,
    machine: &MachineConfig,
    configs: &[NvdimmConfig],
    specs: &[DeviceSpec],
    opts: &Options,
    out: &mut String,
) -> Result<(), String> {
    let _ = writeln!(
        out,
        "papr-scm demo: a pseries guest with {} NVDIMM(s), profile {}",
        specs.len(),
        machine.profile.name()
    );
    let _ = writeln!(
        out,
        "  machine: ram {} MiB, maxmem {} MiB, {} PMEM slots",
        machine.ram_size >> 20,
        machine.maxmem >> 20,
        machine.slots
    );

    // The VMM side: backing files, one device per slot.
    let slots = SharedSlots::new(machine.slots);
    for s in specs {
        let path = dir.join(format!("nvdimm{}.img", s.slot));
        let store =
            FileLabelStore::for_spec(&path, s).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(
            out,
            "  slot {} {:<12} drc {:#x} at {:#x}, {} MiB + {} KiB label, backed by {}",
            s.slot,
            s.kind.name(),
            s.drc.raw(),
            s.addr,
            s.data_size() >> 20,
            s.layout.label_size() >> 10,
            path.display()
        );
        let _ = slots.insert(Device::new(*s, store));
    }
    let host = ReplayHost::new(SparseRam::new(machine.ram_size));
    let m: DemoMachine = Machine::with_host(machine, slots, host);

    // The device tree the guest boots with.
    let blob = machine_fdt(machine, specs).map_err(|e| e.to_string())?;
    let dtb = dir.join("machine.dtb");
    std::fs::write(&dtb, &blob).map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "\ndevice tree: {} bytes, /ibm,persistent-memory with {} ibm,pmemory node(s)",
        blob.len(),
        specs.len()
    );

    // The guest: probe, labels, flush, statistics.
    let mut g = Guest::new(&m);
    let mut devices = Vec::new();
    for node in discover(&blob).map_err(|e| e.to_string())? {
        let node = node.map_err(|e| e.to_string())?;
        match g.probe(&node) {
            Ok(d) => devices.push(d),
            Err((e, _)) => _ = writeln!(out, "  probe of {} failed: {e}", node.name),
        }
    }
    let _ = writeln!(out, "\nguest probe (Linux papr_scm model):");
    for d in &devices {
        let _ = writeln!(out, "  {d}");
    }

    let _ = writeln!(out, "\nlabel areas:");
    for d in &devices {
        labels(&mut g, d, dir, out)?;
    }

    let _ = writeln!(out, "\nflush and statistics:");
    for d in &devices {
        match g.flush(d) {
            Ok(r) => {
                _ = writeln!(
                    out,
                    "  drc {:#x}: flush complete after {} call(s), {} ms hinted",
                    d.node.drc, r.calls, r.slept_ms
                )
            }
            Err(e) => {
                _ = writeln!(
                    out,
                    "  drc {:#x}: flush: {e} (no H_SCM_FLUSH for this device type)",
                    d.node.drc
                )
            }
        }
        match g.read_stat(d, b"MemLife ") {
            Ok(v) => _ = writeln!(out, "  drc {:#x}: MemLife = {v}%", d.node.drc),
            Err(e) => _ = writeln!(out, "  drc {:#x}: statistics: {e}", d.node.drc),
        }
    }

    let _ = writeln!(out, "\nhcall trace ({} calls):", count_calls(g.trace()));
    out.push_str(&summarize(g.trace()));

    if let Some(path) = &opts.trace {
        let mut text = String::from("# papr-scm demo trace: replay with `papr-scm replay`\n");
        text.push_str(&format!("{}\n", Directive::Machine(*machine)));
        for c in configs {
            text.push_str(&format!("{}\n", Directive::Nvdimm(*c)));
        }
        text.push_str(&g.trace_transcript());
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(out, "\ntrace written to {}", path.display());
    }
    Ok(())
}

/// Writes a label index with one label, reads it back through the hcalls
/// and checks that it sits at the end of the backing file.
fn labels(
    g: &mut Guest<&DemoMachine>,
    d: &ProbedDevice,
    dir: &Path,
    out: &mut String,
) -> Result<(), String> {
    g.init_labels(d, &[0])
        .map_err(|e| format!("label write: {e}"))?;
    let mut index = vec![0u8; 512];
    g.read_label(d, 0, &mut index)
        .map_err(|e| format!("label read: {e}"))?;
    // Read the label's first bytes straight from the file: the backing's
    // last label-size bytes (QEMU's layout), not the whole sparse file.
    let slot = d.node.drc & 0x0FFF_FFFF;
    let path = dir.join(format!("nvdimm{slot}.img"));
    let mut tail = vec![0u8; 512];
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    file.read_exact_at(&mut tail, len - d.label_size)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let at_end = tail == index;
    let sig = String::from_utf8_lossy(&index[..15]).into_owned();
    let _ = writeln!(
        out,
        "  drc {:#x}: wrote a v1.2 index and 1 label, read back '{sig}' (seq {}); {} the last {} KiB of the backing file",
        d.node.drc,
        u32::from_le_bytes(index[20..24].try_into().unwrap_or_default()),
        if at_end { "found in" } else { "NOT found in" },
        d.label_size / 1024
    );
    if !at_end {
        return Err("label bytes are not at the end of the backing file".into());
    }
    // A second probe, as after a kexec without unbinding: the bind gets
    // H_OVERLAP, the guest reuses the binding and now finds the index.
    if let Ok(p) = g.probe(&d.node) {
        if let LabelState::Index {
            used, label_size, ..
        } = p.labels
        {
            let _ = writeln!(
        out,
                "  drc {:#x}: re-probed after a kexec: binding at {:#x} reused, index found ({label_size}-byte labels, slots in use {used:?})",
                d.node.drc, p.addr
            );
        }
    }
    Ok(())
}

fn count_calls(trace: &[TraceItem]) -> usize {
    trace
        .iter()
        .filter(|t| matches!(t, TraceItem::Call { .. }))
        .count()
}

/// One line per hcall, with runs of metadata calls folded into one line.
fn summarize(trace: &[TraceItem]) -> String {
    let mut out = String::new();
    let calls: Vec<_> = trace
        .iter()
        .filter(|t| matches!(t, TraceItem::Call { .. }))
        .collect();
    let mut i = 0;
    while i < calls.len() {
        let TraceItem::Call {
            opcode,
            regs_in,
            status,
            ..
        } = calls[i]
        else {
            unreachable!()
        };
        let meta = *opcode == H_SCM_READ_METADATA || *opcode == H_SCM_WRITE_METADATA;
        let mut j = i + 1;
        while meta && j < calls.len() {
            match calls[j] {
                TraceItem::Call {
                    opcode: o,
                    regs_in: r,
                    status: s,
                    ..
                } if o == opcode && r[0] == regs_in[0] && s == status => j += 1,
                _ => break,
            }
        }
        if j - i > 1 {
            let last = match calls[j - 1] {
                TraceItem::Call { regs_in, .. } => regs_in[1],
                _ => 0,
            };
            let _ = writeln!(
                out,
                "  {:>3} x {} {:#x} offsets {:#x}..={:#x} -> {status}",
                j - i,
                hcall_name(*opcode).unwrap_or("?"),
                regs_in[0],
                regs_in[1],
                last
            );
        } else {
            let _ = writeln!(out, "        {}", calls[i].directive());
        }
        i = j;
    }
    out
}

/// The configuration and placed devices of a transcript; errors name the
/// line and the rule.
fn plan(t: &Transcript, name: &str) -> Result<Plan, String> {
    let (machine, specs) = t.plan().map_err(|e| format!("{name}: {e}"))?;
    let (_, devs) = t.config().map_err(|e| format!("{name}: {e}"))?;
    Ok((machine, devs.into_iter().map(|d| d.1).collect(), specs))
}

/// A machine for the devices a foreign blob describes: a 2 GiB guest,
/// devices in slot order, first fit (the blob does not carry addresses).
fn config_from_dtb(blob: &[u8]) -> Result<(MachineConfig, Vec<NvdimmConfig>), String> {
    let nodes = discover(blob).map_err(|e| e.to_string())?;
    let mut configs = Vec::new();
    let mut data = 0u64;
    for n in nodes {
        let n = n.map_err(|e| e.to_string())?;
        let label = u64::from(n.metadata_size.unwrap_or(0));
        let size = n.blocks.saturating_mul(n.block_size);
        data = data.saturating_add(size);
        let mut c = NvdimmConfig::new(
            size.saturating_add(label),
            label,
            parse_uuid(&n.uuid).map_err(|e| format!("{}: {e}", n.name))?,
        );
        c.slot = Some(u64::from(n.drc & 0x0FFF_FFFF));
        if n.hcall_flush {
            c.kind = DeviceKind::SpaprNvdimm;
        }
        configs.push(c);
    }
    configs.sort_by_key(|c| c.slot);
    let slots = configs
        .iter()
        .filter_map(|c| c.slot)
        .max()
        .map_or(0, |s| s + 1)
        .max(4) as u32;
    let ram = 2u64 << 30;
    let maxmem = ram + data.div_ceil(1 << 30).max(1) * (1 << 30);
    Ok((MachineConfig::new(ram, maxmem, slots), configs))
}
