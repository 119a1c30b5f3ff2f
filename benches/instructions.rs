// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Instructions per hcall, counted by callgrind: deterministic, whatever
//! else the machine is doing.
//!
//! `cargo bench --bench instructions` runs every scenario under
//! `valgrind --tool=callgrind --toggle-collect='*measured*'`: only the
//! instructions executed inside [`measured`], one `Machine::handle` call
//! through the register-level entry (dispatch included), are counted, over
//! `CALLS` calls. State a call needs (a bound device, a pending flush) is set
//! up and undone outside it. Each count is compared with
//! `benches/instructions.txt`; a count more than 5 % above the recorded one
//! fails the run (`-- --record` rewrites the file), and so does a
//! `papr/nohost-*` scenario (`NoHost`, `SliceLabelStore`: the `no_std`
//! instantiation) whose count differs from its `ReplayHost` twin's. Without
//! valgrind it prints SKIP and succeeds.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Planner, Profile};
use papr_scm::device::Device;
use papr_scm::hcall::*;
use papr_scm::host::{Host, NoHost};
use papr_scm::label::{SliceLabelStore, VecLabelStore};
use papr_scm::machine::{LocalSlots, Machine, SlotTable};
use papr_scm::replay::{ReplayHost, SparseRam};

const CALLS: u64 = 1000;
const K: u64 = 1024;
const G: u64 = 1024 * 1024 * K;
const T: u64 = 1024 * G;
const LABEL: u64 = 128 * K;
/// In an `after` call: the measured call's r4 (e.g. its flush token).
const OUT_R4: u64 = u64::MAX - 7;
/// A non-SCM opcode (H_PUT_TERM_CHAR): answered "not mine".
const H_PUT_TERM_CHAR: u64 = 0x58;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Local,
    Shared,
}

/// The host the machine is instantiated with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HostKind {
    /// `ReplayHost` (sparse guest RAM, flushes) and `VecLabelStore`s.
    Replay,
    /// `NoHost` (no guest memory, no flushing) and `SliceLabelStore`s: the
    /// crate's `no_std` instantiation. Its counts must equal `Replay`'s
    /// for every call that touches neither the host nor the store's
    /// error path.
    No,
}

/// One measured call: the machine's shape and the call with its set-up.
struct Scenario {
    name: String,
    profile: Profile,
    table: Table,
    host: HostKind,
    devices: u32,
    size: u64,
    /// The measured call.
    call: (u64, Regs),
    /// Calls made before each measured one, not counted (e.g. a bind so
    /// that an unbind has work).
    before: Vec<(u64, Regs)>,
    /// Calls made after each measured one, not counted (undoing it).
    after: Vec<(u64, Regs)>,
}

/// The register-level entry, the only function whose instructions count.
#[inline(never)]
fn measured<S: SlotTable, H: Host>(
    m: &Machine<S, H>,
    op: u64,
    regs: &mut Regs,
) -> Option<ReturnCode> {
    m.handle(op, regs)
}

fn specs(devices: u32, size: u64) -> (MachineConfig, Vec<papr_scm::config::DeviceSpec>) {
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut m = MachineConfig::new(2 * G, 2 * G + u64::from(devices) * size, devices);
    m.profile = Profile::Papr;
    let mut p = Planner::new(m).unwrap();
    let specs = (0..devices)
        .map(|i| {
            let mut c = NvdimmConfig::new(size + LABEL, LABEL, uuid);
            // The last device needs H_SCM_FLUSH; the first is a plain nvdimm.
            if i + 1 == devices && devices > 1 || i == 1 {
                c.kind = DeviceKind::SpaprNvdimm;
            }
            p.plug(&c).unwrap()
        })
        .collect();
    (m, specs)
}

fn host() -> ReplayHost {
    let ram = SparseRam::new(2 * G);
    // A valid SCMSTATS request for one statistic at 0x1000.
    let mut req = papr_scm::stats::SCMSTATS_EYECATCHER.to_vec();
    req.extend_from_slice(&papr_scm::stats::SCMSTATS_VERSION.to_be_bytes());
    req.extend_from_slice(&1u32.to_be_bytes());
    req.extend_from_slice(b"MemLife ");
    req.extend_from_slice(&[0; 8]);
    papr_scm::host::GuestMemory::write_guest(&ram, 0x1000, &req).unwrap();
    ReplayHost::new(ram)
}

fn drive<S: SlotTable, H: Host>(m: &Machine<S, H>, sc: &Scenario, calls: u64) {
    let mut expect = None;
    // The label-area walk reads the next 8 bytes each call, as Linux's
    // nd_label_data_init and ndctl do over the whole area.
    let walk = sc.name.ends_with("label_area_walk");
    for i in 0..calls {
        for (op, r) in &sc.before {
            let mut r = *r;
            m.handle(*op, &mut r);
        }
        let mut regs = black_box(sc.call.1);
        if walk {
            regs[1] = (i * 8) % LABEL;
        }
        let status = measured(m, black_box(sc.call.0), &mut regs);
        // Every call of a scenario answers the same.
        assert!(
            expect.is_none() || expect == Some(status),
            "{}: {status:?}",
            sc.name
        );
        expect = Some(status);
        for (op, r) in &sc.after {
            let mut r = r.map(|v| if v == OUT_R4 { regs[0] } else { v });
            m.handle(*op, &mut r);
        }
    }
    eprintln!("{}: {:?}", sc.name, expect.flatten());
}

fn child(sc: &Scenario, calls: u64) {
    let (mut config, specs) = specs(sc.devices, sc.size);
    config.profile = sc.profile;
    if sc.host == HostKind::No {
        // Label areas the stores borrow for the whole run.
        let mut areas: Vec<&mut [u8]> = specs
            .iter()
            .map(|_| &mut *Vec::leak(vec![0u8; LABEL as usize]))
            .collect();
        match sc.table {
            Table::Shared => {
                let mut areas = areas.into_iter();
                let m = Machine::from_specs_with(&config, &specs, NoHost, |_| {
                    Ok::<_, papr_scm::label::LabelError>(SliceLabelStore::new(
                        areas.next().unwrap(),
                    ))
                })
                .unwrap();
                drive(&m, sc, calls);
            }
            Table::Local => {
                let cells: Vec<RefCell<Option<Device<SliceLabelStore>>>> = specs
                    .iter()
                    .zip(areas.iter_mut())
                    .map(|(s, a)| RefCell::new(Some(Device::new(*s, SliceLabelStore::new(a)))))
                    .collect();
                let m = Machine::new(&config, LocalSlots::new(&cells));
                drive(&m, sc, calls);
            }
        }
        return;
    }
    match sc.table {
        Table::Shared => {
            let m = Machine::from_specs(&config, &specs, host()).unwrap();
            drive(&m, sc, calls);
        }
        Table::Local => {
            let cells: Vec<RefCell<Option<Device<VecLabelStore>>>> = specs
                .iter()
                .map(|s| RefCell::new(Some(Device::new(*s, VecLabelStore::new(LABEL as usize)))))
                .collect();
            let m = Machine::with_host(&config, LocalSlots::new(&cells), host());
            drive(&m, sc, calls);
        }
    }
}

/// Every scenario: each hcall's success and a typical error, in both
/// profiles, both slot tables, at 1 and 256 devices and at 1 GiB and 64 TiB.
fn scenarios() -> Vec<Scenario> {
    let d0 = 0x9000_0000u64;
    let mut v = Vec::new();
    let shapes = [(1u32, G, "1x1G"), (256, G, "256x1G"), (1, 64 * T, "1x64T")];
    for profile in [Profile::Qemu, Profile::Papr] {
        for table in [Table::Local, Table::Shared] {
            for (devices, size, shape) in shapes {
                let last = d0 + u64::from(devices) - 1;
                let blocks = size >> 28;
                let base = 0x8000_0000u64;
                let last_base = base + u64::from(devices - 1) * size;
                let bind = (H_SCM_BIND_MEM, [d0, 0, blocks, u64::MAX, 0, 0, 0, 0, 0]);
                let bind_last = (H_SCM_BIND_MEM, [last, 0, blocks, u64::MAX, 0, 0, 0, 0, 0]);
                let unbind_all = (
                    H_SCM_UNBIND_ALL,
                    [H_UNBIND_SCOPE_DRC, d0, 0, 0, 0, 0, 0, 0, 0],
                );
                let unbind_last = (
                    H_SCM_UNBIND_ALL,
                    [H_UNBIND_SCOPE_DRC, last, 0, 0, 0, 0, 0, 0, 0],
                );
                // The spapr-nvdimm where there is one; H_PARAMETER on a plain one.
                let flush_drc = if devices > 1 { last } else { d0 };
                let mut add = |what: &str,
                               call: (u64, Regs),
                               before: Vec<(u64, Regs)>,
                               after: Vec<(u64, Regs)>| {
                    let t = if table == Table::Local {
                        "local"
                    } else {
                        "shared"
                    };
                    v.push(Scenario {
                        name: format!("{}/{t}/{shape}/{what}", profile.name()),
                        profile,
                        table,
                        host: HostKind::Replay,
                        devices,
                        size,
                        call,
                        before,
                        after,
                    });
                };
                add(
                    "read_metadata_8",
                    (H_SCM_READ_METADATA, [d0, 0x1f8, 8, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "read_label_area_walk",
                    (H_SCM_READ_METADATA, [d0, 0, 8, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "read_metadata_bad_len",
                    (H_SCM_READ_METADATA, [d0, 0, 3, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "write_metadata_8",
                    (
                        H_SCM_WRITE_METADATA,
                        [d0, 0x1f8, 0x1122_3344_5566_7788, 8, 0, 0, 0, 0, 0],
                    ),
                    vec![],
                    vec![],
                );
                add(
                    "write_metadata_out_of_range",
                    (H_SCM_WRITE_METADATA, [d0, LABEL, 1, 1, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add("bind_mem_whole", bind, vec![], vec![unbind_all]);
                add(
                    "bind_mem_too_many",
                    (H_SCM_BIND_MEM, [d0, 0, blocks + 1, u64::MAX, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "unbind_mem_whole",
                    (H_SCM_UNBIND_MEM, [d0, base, blocks, 0, 0, 0, 0, 0, 0]),
                    vec![bind],
                    vec![],
                );
                add(
                    "unbind_mem_misaligned",
                    (H_SCM_UNBIND_MEM, [d0, base + 4096, 1, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add("unbind_all_drc", unbind_all, vec![bind], vec![]);
                add(
                    "unbind_all_partition",
                    (
                        H_SCM_UNBIND_ALL,
                        [H_UNBIND_SCOPE_ALL, 0, 0, 0, 0, 0, 0, 0, 0],
                    ),
                    vec![bind_last],
                    vec![],
                );
                add(
                    "unbind_all_bad_drc",
                    (
                        H_SCM_UNBIND_ALL,
                        [H_UNBIND_SCOPE_DRC, 0x8000_0000, 0, 0, 0, 0, 0, 0, 0],
                    ),
                    vec![],
                    vec![],
                );
                add(
                    "query_block",
                    (
                        H_SCM_QUERY_BLOCK_MEM_BINDING,
                        [d0, blocks - 1, 0, 0, 0, 0, 0, 0, 0],
                    ),
                    vec![bind],
                    vec![unbind_all],
                );
                add(
                    "query_block_bad_block",
                    (
                        H_SCM_QUERY_BLOCK_MEM_BINDING,
                        [d0, blocks, 0, 0, 0, 0, 0, 0, 0],
                    ),
                    vec![],
                    vec![],
                );
                add(
                    "query_logical_last",
                    (
                        H_SCM_QUERY_LOGICAL_MEM_BINDING,
                        [last_base + size - 1, 0, 0, 0, 0, 0, 0, 0, 0],
                    ),
                    vec![bind_last],
                    vec![unbind_last],
                );
                add(
                    "query_logical_unbound",
                    (
                        H_SCM_QUERY_LOGICAL_MEM_BINDING,
                        [base, 0, 0, 0, 0, 0, 0, 0, 0],
                    ),
                    vec![],
                    vec![],
                );
                add(
                    "health",
                    (H_SCM_HEALTH, [d0, 0, 0, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "health_bad_drc",
                    (H_SCM_HEALTH, [d0 + 300, 0, 0, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "performance_stats_size",
                    (H_SCM_PERFORMANCE_STATS, [d0, 0, 0, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "performance_stats_one",
                    (H_SCM_PERFORMANCE_STATS, [d0, 0x1000, 32, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "performance_stats_bad_buffer",
                    (H_SCM_PERFORMANCE_STATS, [d0, 0x2000, 32, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                if devices > 1 {
                    // A flush started, then polled to completion outside
                    // (the 1-device shapes have no spapr-nvdimm).
                    add(
                        "flush_start",
                        (H_SCM_FLUSH, [last, 0, 0, 0, 0, 0, 0, 0, 0]),
                        vec![],
                        vec![(H_SCM_FLUSH, [last, OUT_R4, 0, 0, 0, 0, 0, 0, 0])],
                    );
                }
                add(
                    "flush_unknown_token",
                    (H_SCM_FLUSH, [flush_drc, 12345, 0, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
                add(
                    "not_scm",
                    (H_PUT_TERM_CHAR, [0, 1, 0x41, 0, 0, 0, 0, 0, 0]),
                    vec![],
                    vec![],
                );
            }
        }
    }
    v.extend(nohost_scenarios(&v));
    v
}

/// The calls that touch neither the host nor a store's error path, again
/// with `NoHost` and `SliceLabelStore`s (one 1 GiB plain nvdimm, `papr`
/// profile): `papr/nohost-local/...` and `papr/nohost-shared/...`. Their
/// counts are the same as `ReplayHost`'s: the fast path does not depend on
/// the host or store type.
fn nohost_scenarios(all: &[Scenario]) -> Vec<Scenario> {
    const CALLS: [&str; 9] = [
        "read_metadata_8",
        "read_label_area_walk",
        "write_metadata_8",
        "bind_mem_whole",
        "unbind_all_drc",
        "query_block",
        "query_logical_last",
        "health",
        "not_scm",
    ];
    all.iter()
        .filter(|sc| sc.profile == Profile::Papr && sc.devices == 1 && sc.size == G)
        .filter(|sc| CALLS.iter().any(|c| sc.name.ends_with(&format!("/{c}"))))
        .map(|sc| {
            let t = if sc.table == Table::Local {
                "local"
            } else {
                "shared"
            };
            let what = sc.name.rsplit('/').next().unwrap_or_default();
            Scenario {
                name: format!("papr/nohost-{t}/1x1G/{what}"),
                profile: sc.profile,
                table: sc.table,
                host: HostKind::No,
                devices: sc.devices,
                size: sc.size,
                call: sc.call,
                before: sc.before.clone(),
                after: sc.after.clone(),
            }
        })
        .collect()
}

fn record_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/instructions.txt")
}

fn recorded() -> BTreeMap<String, u64> {
    std::fs::read_to_string(record_file())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

/// Runs one scenario under callgrind; instructions per call.
fn count(name: &str) -> Result<u64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("callgrind.out");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let st = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--toggle-collect=*measured*",
            "--dump-instr=no",
        ])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["--child", name])
        .output()
        .map_err(|e| e.to_string())?;
    if !st.status.success() {
        return Err(format!("{name}: {}", String::from_utf8_lossy(&st.stderr)));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let total: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals: ")
                .or_else(|| l.strip_prefix("summary: "))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{name}: no totals in the callgrind output"))?;
    Ok((total + CALLS / 2) / CALLS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let name = &args[i + 1];
        let sc = scenarios()
            .into_iter()
            .find(|s| &s.name == name)
            .expect("a scenario");
        child(&sc, CALLS);
        return ExitCode::SUCCESS;
    }
    let record = args.iter().any(|a| a == "--record");
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("SKIP: valgrind is not installed; no instruction counts");
        return ExitCode::SUCCESS;
    }
    let old = recorded();
    let mut new = BTreeMap::new();
    let mut worse = Vec::new();
    let chosen: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|sc| filter.is_empty() || filter.iter().any(|f| sc.name.contains(f.as_str())))
        .collect();
    // Two valgrind runs at a time (CI has two cores); counts do not depend
    // on the load.
    let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let half = chosen.len().div_ceil(2);
        let parts: Vec<_> = chosen
            .chunks(half.max(1))
            .map(|part| s.spawn(move || part.iter().map(|sc| count(&sc.name)).collect::<Vec<_>>()))
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    for (sc, n) in chosen.into_iter().zip(results) {
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let was = old.get(&sc.name).copied();
        let mark = match was {
            Some(w) if n * 100 > w * 105 => {
                worse.push(format!("{}: {n} instructions, recorded {w}", sc.name));
                "  RISE"
            }
            _ => "",
        };
        println!(
            "{:<58} {:>6}{}{mark}",
            sc.name,
            n,
            was.map_or(String::new(), |w| format!("  (recorded {w})"))
        );
        new.insert(sc.name, n);
    }
    // The fast path must not depend on the host and store types: each
    // NoHost scenario costs what its ReplayHost twin costs.
    for (name, n) in &new {
        let Some(rest) = name.strip_prefix("papr/nohost-") else {
            continue;
        };
        let twin = format!("papr/{rest}");
        let twin_n = new.get(&twin).copied().or_else(|| old.get(&twin).copied());
        if let Some(t) = twin_n.filter(|t| t != n) {
            worse.push(format!(
                "{name}: {n} instructions, {t} with ReplayHost and VecLabelStore ({twin})"
            ));
        }
    }
    if record {
        let mut text = String::from(
            "# Instructions per call (callgrind, release build), written by\n\
             # `cargo bench --bench instructions -- --record`; CI fails on a rise above 5 %.\n",
        );
        let mut all = old;
        all.extend(new);
        for (k, v) in all {
            text.push_str(&format!("{k} {v}\n"));
        }
        std::fs::write(record_file(), text).unwrap();
        println!("recorded in {}", record_file().display());
    }
    if worse.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("instruction counts rose more than 5 %, or depend on the host type:");
        for w in worse {
            eprintln!("  {w}");
        }
        ExitCode::FAILURE
    }
}
