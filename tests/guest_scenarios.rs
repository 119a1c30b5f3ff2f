// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The guest-driver model against this crate's hypervisor: the scenarios
//! of the Linux expectations reference (§7), in both profiles, the real
//! guest's recorded hcalls, and every golden QEMU tree.

#![cfg(feature = "guest-model")]

use std::collections::BTreeMap;
use std::path::PathBuf;

use papr_scm::config::Profile;
use papr_scm::fdt::machine_fdt;
use papr_scm::guest::*;
use papr_scm::hcall::*;
use papr_scm::host::GuestMemoryError;
use papr_scm::replay::{build, replay, ReplayMachine};
use papr_scm::rtas_error_log::EventQueue;
use papr_scm::transcript::{Injection, Transcript};
use papr_scm::vm_fdt::FdtWriter;

const UUID: &str = "75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// slot 0: nvdimm, 4 blocks; slot 1: spapr-nvdimm (hcall flush), 1 block.
fn config(profile: Profile) -> String {
    format!(
        "machine ram=2G maxmem=8G slots=4 profile={}\n\
         nvdimm size=1G+128K label-size=128K uuid={UUID}\n\
         nvdimm size=256M+128K label-size=128K uuid={UUID} type=spapr-nvdimm\n",
        profile.name()
    )
}

struct World {
    transcript: Transcript,
    machine: ReplayMachine,
    blob: Vec<u8>,
}

fn world(text: &str) -> World {
    let transcript = Transcript::parse(text).unwrap();
    let machine = build(&transcript).unwrap();
    let (m, specs) = transcript.plan().unwrap();
    let blob = machine_fdt(&m, &specs).unwrap();
    World {
        transcript,
        machine,
        blob,
    }
}

fn nodes(blob: &[u8]) -> Vec<DeviceNode> {
    discover(blob)
        .unwrap()
        .into_iter()
        .map(|n| n.unwrap())
        .collect()
}

fn inject(w: &World, slot: u32, what: Injection) {
    papr_scm::replay::inject(&w.machine, slot, what).unwrap();
}

fn opcodes<V>(g: &Guest<V>) -> Vec<u64> {
    g.trace()
        .iter()
        .filter_map(|t| match t {
            TraceItem::Call { opcode, .. } => Some(*opcode),
            _ => None,
        })
        .collect()
}

fn both(f: impl Fn(Profile)) {
    f(Profile::Qemu);
    f(Profile::Papr);
}

#[test]
fn test_fresh_boot() {
    both(|p| {
        let w = world(&config(p));
        let mut g = Guest::new(&w.machine);
        let devs: Vec<_> = nodes(&w.blob).iter().map(|n| g.probe(n).unwrap()).collect();
        assert_eq!(devs.len(), 2);
        assert_eq!((devs[0].addr, devs[0].size), (0x8000_0000, 0x4000_0000));
        assert_eq!((devs[1].addr, devs[1].size), (0xC000_0000, 0x1000_0000));
        assert_eq!(devs[0].persistence, Persistence::Persistent);
        assert_eq!(devs[1].persistence, Persistence::Async);
        assert_eq!(devs[0].labels, LabelState::NoIndex);
        assert!(devs[0].flags.is_empty() && !devs[0].read_only);
        // Per device: bind, stats size, health, 64 index reads.
        let ops = opcodes(&g);
        assert_eq!(ops.len(), 2 * 67);
        assert_eq!(
            &ops[..3],
            &[H_SCM_BIND_MEM, H_SCM_PERFORMANCE_STATS, H_SCM_HEALTH]
        );
        match p {
            Profile::Qemu => {
                assert_eq!(devs[0].stats, StatsSupport::Failed(H_FUNCTION));
                assert!(devs[0].events.iter().any(|e| e.level == Level::Error
                    && e.text.contains("Failed to query performance stats")));
            }
            Profile::Papr => {
                assert_eq!(devs[0].stats, StatsSupport::Supported(272));
                assert!(devs[0].events.iter().all(|e| e.level < Level::Warn));
            }
        }
        // Removal unbinds.
        assert_eq!(g.remove(&devs[0]), H_SUCCESS);
    });
}

#[test]
fn test_kexec_reprobe_reuses_the_binding() {
    let w = world(&config(Profile::Papr));
    let ns = nodes(&w.blob);
    let first = Guest::new(&w.machine).probe(&ns[0]).unwrap();
    // A new kernel, no unbind: the binding is still there.
    let mut g = Guest::new(&w.machine);
    let again = g.probe(&ns[0]).unwrap();
    assert_eq!(again.addr, first.addr);
    assert_eq!(
        &opcodes(&g)[..5],
        &[
            H_SCM_BIND_MEM,
            H_SCM_QUERY_BLOCK_MEM_BINDING,
            H_SCM_QUERY_BLOCK_MEM_BINDING,
            H_SCM_PERFORMANCE_STATS,
            H_SCM_HEALTH
        ]
    );
    assert!(!opcodes(&g).contains(&H_SCM_UNBIND_ALL));
    // A system reset is a fresh boot: the bind succeeds at once, nothing
    // to query or reuse.
    w.machine.reset(&mut EventQueue::new(), |_| {});
    let mut g = Guest::new(&w.machine);
    assert_eq!(g.probe(&ns[0]).unwrap().addr, first.addr);
    assert_eq!(
        &opcodes(&g)[..2],
        &[H_SCM_BIND_MEM, H_SCM_PERFORMANCE_STATS]
    );
}

#[test]
fn test_reprobe_when_query_fails_unbinds_and_binds() {
    let w = world(&config(Profile::Papr));
    let ns = nodes(&w.blob);
    Guest::new(&w.machine).probe(&ns[0]).unwrap();
    // Leave a non-contiguous binding: block 0 unbound.
    w.machine.h_scm_unbind_mem(0x9000_0000, 0x8000_0000, 1, 0);
    let mut g = Guest::new(&w.machine);
    let d = g.probe(&ns[0]).unwrap();
    assert_eq!(d.addr, 0x8000_0000);
    assert_eq!(
        &opcodes(&g)[..4],
        &[
            H_SCM_BIND_MEM,
            H_SCM_QUERY_BLOCK_MEM_BINDING,
            H_SCM_UNBIND_ALL,
            H_SCM_BIND_MEM
        ]
    );
}

/// A hypervisor that rewrites some answers of an inner one.
struct Tamper<'a, F> {
    inner: &'a ReplayMachine,
    f: F,
}

impl<F: FnMut(u64, &mut Regs, ReturnCode) -> ReturnCode> Hypervisor for Tamper<'_, F> {
    fn hcall(&mut self, opcode: u64, regs: &mut Regs) -> ReturnCode {
        let mut m = self.inner;
        let rc = m.hcall(opcode, regs);
        (self.f)(opcode, regs, rc)
    }
    fn write_guest(&mut self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        let mut m = self.inner;
        m.write_guest(gpa, data)
    }
    fn read_guest(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        let mut m = self.inner;
        m.read_guest(gpa, buf)
    }
}

#[test]
fn test_overlap_with_query_h_function_or_non_contiguous() {
    for non_contiguous in [false, true] {
        let w = world(&config(Profile::Papr));
        let ns = nodes(&w.blob);
        Guest::new(&w.machine).probe(&ns[0]).unwrap();
        let mut g = Guest::new(Tamper {
            inner: &w.machine,
            f: move |op, regs: &mut Regs, rc| {
                if op == H_SCM_QUERY_BLOCK_MEM_BINDING {
                    if !non_contiguous {
                        return H_FUNCTION;
                    }
                    // Shift the last block only (r5 = block index stays).
                    if regs[1] != 0 {
                        regs[0] = regs[0].wrapping_add(0x1000_0000);
                    }
                }
                rc
            },
        });
        g.probe(&ns[0]).unwrap();
        assert!(opcodes(&g).contains(&H_SCM_UNBIND_ALL), "{non_contiguous}");
    }
}

#[test]
fn test_bind_with_busy_rounds() {
    let w = world(&config(Profile::Papr));
    inject(&w, 0, Injection::BindBusy(2));
    inject(&w, 0, Injection::BindBudget(1));
    let mut g = Guest::new(&w.machine);
    let d = g.probe(&nodes(&w.blob)[0]).unwrap();
    assert_eq!(d.addr, 0x8000_0000);
    // Two busy rounds, then one block per call: 2 + 3 busy + 1 success.
    let binds: Vec<_> = g
        .trace()
        .iter()
        .filter_map(|t| match t {
            TraceItem::Call {
                opcode: H_SCM_BIND_MEM,
                regs_in,
                status,
                regs_out,
                ..
            } => Some((regs_in[4], *status, regs_out[0])),
            _ => None,
        })
        .collect();
    assert_eq!(binds.len(), 6);
    assert!(binds[..5].iter().all(|b| b.1 == H_BUSY));
    // Each call passes back the token the previous one returned.
    for pair in binds.windows(2) {
        assert_eq!(pair[1].0, pair[0].2);
    }
    assert_eq!(binds[5], (binds[4].2, H_SUCCESS, 0));
}

#[test]
fn test_long_busy_on_bind_fails_the_probe() {
    let w = world(&config(Profile::Papr));
    let mut g = Guest::new(Tamper {
        inner: &w.machine,
        f: |op, _: &mut Regs, rc| {
            if op == H_SCM_BIND_MEM {
                H_LONG_BUSY_ORDER_1_MSEC
            } else {
                rc
            }
        },
    });
    let (err, events) = g.probe(&nodes(&w.blob)[0]).unwrap_err();
    assert_eq!(err, ProbeError::Bind(H_LONG_BUSY_ORDER_1_MSEC));
    assert!(events.iter().any(|e| e.text == "bind err: 9900"));
    assert_eq!(opcodes(&g), [H_SCM_BIND_MEM]);
}

#[test]
fn test_every_health_bit() {
    for bit in 0..=10u32 {
        let w = world(&config(Profile::Papr));
        inject(
            &w,
            0,
            Injection::Health(HealthBits::from_bits_retain(ppc_bit(bit))),
        );
        let d = Guest::new(&w.machine).probe(&nodes(&w.blob)[0]).unwrap();
        assert_eq!(d.health, ppc_bit(bit));
        assert_eq!(d.read_only, bit == 0 || bit == 6, "bit {bit}");
        let expect: &[&str] = match bit {
            0 => &["not_armed"],
            1 => &["flush_fail"],
            3 => &["restore_fail"],
            4 | 5 => &["smart_notify"],
            6 => &["not_armed", "smart_notify"],
            8 => &["encrypted"],
            9 => &["scrubbed", "locked"],
            _ => &[],
        };
        assert_eq!(d.flags, expect, "bit {bit}");
    }
    // The qemu profile reports unarmed only.
    let w = world(&config(Profile::Qemu).replace(
        "uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n",
        "uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e unarmed=on\n",
    ));
    let d = Guest::new(&w.machine).probe(&nodes(&w.blob)[0]).unwrap();
    assert!(d.read_only);
    assert_eq!(d.flags, ["not_armed"]);
}

#[test]
fn test_stats_supported_unsupported_authority_unknown() {
    let w = world(&config(Profile::Papr));
    let mut g = Guest::new(&w.machine);
    let d = g.probe(&nodes(&w.blob)[0]).unwrap();
    let all = g.read_all_stats(&d).unwrap();
    assert_eq!(all.len(), 16);
    assert_eq!(
        all.iter().map(|s| s.0).collect::<Vec<_>>(),
        papr_scm::stats::STAT_IDS
    );
    assert_eq!(all[3], (*b"MemLife ", 100));
    assert_eq!(g.read_stat(&d, b"MemLife ").unwrap(), 100);
    assert_eq!(g.read_stat(&d, b"Bogus   "), Err(IoError::Hcall(H_PARTIAL)));

    for (mode, code, level) in [
        ("unsupported", H_UNSUPPORTED, Level::Debug),
        ("authority", H_AUTHORITY, Level::Info),
    ] {
        let w = world(&config(Profile::Papr));
        let t = Transcript::parse(&format!("inject slot=0 stats={mode}")).unwrap();
        let papr_scm::transcript::Directive::Inject { what, .. } = t.lines[0].1 else {
            unreachable!()
        };
        inject(&w, 0, what);
        let mut g = Guest::new(&w.machine);
        let d = g.probe(&nodes(&w.blob)[0]).unwrap();
        assert_eq!(d.stats, StatsSupport::Off(code));
        assert!(d.events.iter().all(|e| e.level <= level));
        assert!(g.read_all_stats(&d).is_err());
    }
}

#[test]
fn test_label_round_trip_at_unaligned_offsets() {
    both(|p| {
        let w = world(&config(p));
        let mut g = Guest::new(&w.machine);
        let d = g.probe(&nodes(&w.blob)[0]).unwrap();
        let size = d.label_size;
        for (off, len) in [
            (1u64, 1usize),
            (3, 7),
            (5, 20),
            (0x101, 33),
            (size - 13, 13),
            (size - 1, 1),
        ] {
            let data: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(37).wrapping_add(off as u8))
                .collect();
            let before = g.trace().len();
            g.write_label(&d, off, &data).unwrap();
            // Each libnvdimm command is at most 8 bytes, split 8/4/2/1.
            for t in &g.trace()[before..] {
                if let TraceItem::Call { regs_in, .. } = t {
                    assert!([1, 2, 4, 8].contains(&regs_in[3]));
                }
            }
            let mut back = vec![0u8; len];
            g.read_label(&d, off, &mut back).unwrap();
            assert_eq!(back, data, "{off:#x}+{len}");
        }
        // The guest's bounds checks stop before any hcall.
        let before = g.trace().len();
        assert_eq!(g.write_label(&d, size - 1, &[1, 2]), Err(IoError::Bounds));
        assert_eq!(g.read_label(&d, u64::MAX, &mut [0]), Err(IoError::Bounds));
        assert_eq!(g.trace().len(), before);
    });
}

#[test]
fn test_valid_index_leads_on_to_the_labels() {
    both(|p| {
        let w = world(&config(p));
        let ns = nodes(&w.blob);
        let mut g = Guest::new(&w.machine);
        let d = g.probe(&ns[0]).unwrap();
        g.init_labels(&d, &[0, 3, 100]).unwrap();
        g.remove(&d);
        let mut g = Guest::new(&w.machine);
        let again = g.probe(&ns[0]).unwrap();
        assert_eq!(
            again.labels,
            LabelState::Index {
                current: 0,
                label_size: 256,
                used: vec![0, 3, 100]
            }
        );
        // 64 index reads, then 32 for each used slot: libnvdimm skips the
        // free slots 1 and 2 ("if (read_size < offset) read_size = offset").
        let reads: Vec<u64> = g
            .trace()
            .iter()
            .filter_map(|t| match t {
                TraceItem::Call {
                    opcode: H_SCM_READ_METADATA,
                    regs_in,
                    ..
                } => Some(regs_in[1]),
                _ => None,
            })
            .collect();
        assert_eq!(reads.len(), 64 + 3 * 32);
        assert_eq!(reads[64], 0x200);
        assert_eq!(reads[96], 0x200 + 3 * 256);
        assert_eq!(*reads.last().unwrap(), 0x200 + 101 * 256 - 8);
    });
}

#[test]
fn test_flush_with_each_long_busy_order_and_a_failure() {
    for order in 9900..=9905 {
        let w = world(&config(Profile::Papr));
        inject(&w, 1, Injection::FlushOrder(ReturnCode(order)));
        inject(&w, 1, Injection::FlushHold(2));
        let mut g = Guest::new(&w.machine);
        let d = g.probe(&nodes(&w.blob)[1]).unwrap();
        let r = g.flush(&d).unwrap();
        assert_eq!(r.calls, 4);
        assert_eq!(r.slept_ms, 3 * ReturnCode(order).long_busy_msecs());
        // The token handed out is echoed on every retry.
        let tokens: Vec<_> = g
            .trace()
            .iter()
            .filter_map(|t| match t {
                TraceItem::Call {
                    opcode: H_SCM_FLUSH,
                    regs_in,
                    ..
                } => Some(regs_in[1]),
                _ => None,
            })
            .collect();
        assert_eq!(tokens, [0, 1, 1, 1]);
    }
    both(|p| {
        let w = world(&config(p));
        inject(&w, 1, Injection::FlushResult(H_HARDWARE));
        let mut g = Guest::new(&w.machine);
        let d = g.probe(&nodes(&w.blob)[1]).unwrap();
        assert_eq!(g.flush(&d), Err(IoError::Hcall(H_HARDWARE)));
        let health = g.health(&d).unwrap();
        assert_eq!(flags_words(health) == ["flush_fail"], p == Profile::Papr);
        // A plain nvdimm has no flush hcall.
        let plain = g.probe(&nodes(&w.blob)[0]).unwrap();
        assert_eq!(g.flush(&plain), Err(IoError::Hcall(H_PARAMETER)));
    });
}

fn node_blob(skip: &str, short_block_size: bool) -> Vec<u8> {
    let mut f = FdtWriter::new().unwrap();
    let r = f.begin_node("").unwrap();
    let pm = f.begin_node("ibm,persistent-memory").unwrap();
    f.property_string("device_type", "ibm,persistent-memory")
        .unwrap();
    let n = f.begin_node("ibm,pmemory@90000000").unwrap();
    f.property_string("compatible", "ibm,pmemory-v2").unwrap();
    let props: [(&str, Vec<u8>); 5] = [
        ("ibm,my-drc-index", 0x9000_0000u32.to_be_bytes().to_vec()),
        (
            "ibm,block-size",
            if short_block_size {
                0x1000_0000u32.to_be_bytes().to_vec()
            } else {
                0x1000_0000u64.to_be_bytes().to_vec()
            },
        ),
        ("ibm,number-of-blocks", 4u64.to_be_bytes().to_vec()),
        ("ibm,unit-guid", format!("{UUID}\0").into_bytes()),
        ("ibm,metadata-size", 0x20000u32.to_be_bytes().to_vec()),
    ];
    for (name, v) in props {
        if name != skip {
            f.property(name, &v).unwrap();
        }
    }
    f.end_node(n).unwrap();
    f.end_node(pm).unwrap();
    f.end_node(r).unwrap();
    f.finish().unwrap()
}

#[test]
fn test_missing_and_short_properties_fail_before_any_hcall() {
    for prop in [
        "ibm,my-drc-index",
        "ibm,block-size",
        "ibm,number-of-blocks",
        "ibm,unit-guid",
    ] {
        let found = discover(&node_blob(prop, false)).unwrap();
        assert_eq!(found.len(), 1);
        assert!(
            matches!(&found[0], Err(ProbeError::Missing { property, .. }) if *property == prop),
            "{prop}: {found:?}"
        );
    }
    let found = discover(&node_blob("", true)).unwrap();
    assert!(matches!(
        &found[0],
        Err(ProbeError::Short {
            property: "ibm,block-size",
            len: 4,
            need: 8,
            ..
        })
    ));
    // ibm,pmemory-v2 matches; no metadata-size probes with a warning and a
    // label area the DIMM cannot use.
    let n = discover(&node_blob("ibm,metadata-size", false))
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(n.v2 && n.metadata_size.is_none());
    let w = world(&config(Profile::Papr));
    let d = Guest::new(&w.machine).probe(&n).unwrap();
    assert!(d.events.iter().any(|e| e.level == Level::Warn));
    assert!(matches!(d.labels, LabelState::Failed(_)));
    assert!(matches!(
        discover(b"not a blob"),
        Err(DiscoverError::Blob(_))
    ));
}

#[test]
fn test_volatile_region_without_cache_flush_property() {
    let mut f = FdtWriter::new().unwrap();
    let r = f.begin_node("").unwrap();
    let pm = f.begin_node("pm").unwrap();
    f.property_string("device_type", "ibm,persistent-memory")
        .unwrap();
    let n = f.begin_node("ibm,pmemory@90000000").unwrap();
    f.property_string("compatible", "ibm,pmemory").unwrap();
    f.property_u32("ibm,my-drc-index", 0x9000_0000).unwrap();
    f.property_u64("ibm,block-size", 0x1000_0000).unwrap();
    f.property_u64("ibm,number-of-blocks", 4).unwrap();
    f.property_string("ibm,unit-guid", UUID).unwrap();
    f.property_u32("ibm,metadata-size", 0x20000).unwrap();
    f.end_node(n).unwrap();
    f.end_node(pm).unwrap();
    f.end_node(r).unwrap();
    let blob = f.finish().unwrap();
    let w = world(&config(Profile::Papr));
    let d = Guest::new(&w.machine).probe(&nodes(&blob)[0]).unwrap();
    assert_eq!(d.persistence, Persistence::Volatile);
}

#[test]
fn test_trace_replays_as_a_transcript() {
    both(|p| {
        let w = world(&config(p));
        let mut g = Guest::new(&w.machine);
        let devs: Vec<_> = nodes(&w.blob).iter().map(|n| g.probe(n).unwrap()).collect();
        g.init_labels(&devs[0], &[2]).unwrap();
        g.flush(&devs[1]).unwrap();
        if p == Profile::Papr {
            g.read_all_stats(&devs[0]).unwrap();
            g.read_stat(&devs[1], b"MemLife ").unwrap();
        }
        let text = config(p) + &g.trace_transcript();
        let t = Transcript::parse(&text).unwrap();
        let report = replay(&t).unwrap();
        assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
        assert!(report.calls > 200);
        let _ = &w.transcript;
    });
}

/// (opcode, arguments) per DRC, in order.
type Calls = BTreeMap<u64, Vec<(u64, Vec<u64>)>>;

#[test]
fn test_probe_matches_the_recorded_real_guest() {
    let text = std::fs::read_to_string(root().join("tests/data/real-guest-numa2.txt")).unwrap();
    let mut real: Calls = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let w: Vec<&str> = line.split_whitespace().collect();
        let op = u64::from_str_radix(w[1].trim_start_matches("0x"), 16).unwrap();
        let regs: Vec<u64> = w[2..]
            .iter()
            .map(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap())
            .collect();
        let nargs = match op {
            H_SCM_BIND_MEM => 5,
            H_SCM_PERFORMANCE_STATS | H_SCM_READ_METADATA => 3,
            H_SCM_HEALTH => 1,
            _ => panic!("unexpected {op:#x}"),
        };
        real.entry(regs[0])
            .or_default()
            .push((op, regs[..nargs].to_vec()));
    }
    assert_eq!(real.len(), 2);
    let cfg = std::fs::read_to_string(root().join("fdt/real-guest.cfg")).unwrap();
    // QEMU's own tree of that configuration.
    let qemu_blob = std::fs::read(root().join("fdt/real-guest.dtb")).unwrap();
    for p in [Profile::Qemu, Profile::Papr] {
        let cfg = cfg.replace(
            "numa-nodes=2",
            &format!("numa-nodes=2 profile={}", p.name()),
        );
        let w = world(&cfg);
        let mut g = Guest::new(&w.machine);
        for n in nodes(&qemu_blob) {
            g.probe(&n).unwrap();
        }
        let mut ours: Calls = BTreeMap::new();
        for t in g.trace() {
            if let TraceItem::Call {
                opcode,
                regs_in,
                nargs,
                ..
            } = t
            {
                ours.entry(regs_in[0])
                    .or_default()
                    .push((*opcode, regs_in[..*nargs].to_vec()));
            }
        }
        assert_eq!(ours, real, "{p:?}");
    }
}

#[test]
fn test_model_probes_every_golden_qemu_tree() {
    let dir = root().join("fdt");
    let mut cases = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let cfg = e.unwrap().path();
        if cfg.extension().is_none_or(|x| x != "cfg") {
            continue;
        }
        cases += 1;
        let text = std::fs::read_to_string(&cfg).unwrap();
        let t = Transcript::parse(&text).unwrap();
        let (_, specs) = t.plan().unwrap();
        let qemu = std::fs::read(cfg.with_extension("dtb")).unwrap();
        let found = nodes(&qemu);
        assert_eq!(found.len(), specs.len(), "{}", cfg.display());
        let w = world(&text);
        let mut g = Guest::new(&w.machine);
        for n in &found {
            let spec = specs.iter().find(|s| s.drc.raw() == n.drc).unwrap();
            let d = g.probe(n).unwrap();
            assert_eq!(
                (d.addr, d.size, d.label_size),
                (spec.addr, spec.data_size(), spec.layout.label_size())
            );
            assert_eq!(d.node.uuid, spec.uuid.hyphenated().to_string());
            assert_eq!(
                d.persistence == Persistence::Async,
                spec.flush == papr_scm::config::FlushMode::Hcall
            );
        }
    }
    assert!(cases >= 8);
}

/// `ibm,persistence-failed-count` reaches the driver's dirty-shutdown
/// counter in the `papr` profile (0 when the VMM counts none); the `qemu`
/// profile writes no such property, as QEMU, so the driver falls back to 0.
#[test]
fn test_dirty_shutdown_count_from_the_tree() {
    let text = format!(
        "machine ram=2G maxmem=8G slots=4 profile=papr\n\
         nvdimm size=256M+128K label-size=128K uuid={UUID} persistence-failed-count=7\n\
         nvdimm size=256M+128K label-size=128K uuid={UUID}\n"
    );
    let w = world(&text);
    let found = nodes(&w.blob);
    assert_eq!(found[0].dirty_shutdown_count, 7);
    assert_eq!(found[1].dirty_shutdown_count, 0);
    let t = fdt::Fdt::new(&w.blob).unwrap();
    let prop = |name: &str| {
        t.find_node(&format!("/ibm,persistent-memory/{name}"))
            .unwrap()
            .property("ibm,persistence-failed-count")
            .map(|p| p.value.to_vec())
    };
    assert_eq!(prop("ibm,pmemory@90000001"), Some(vec![0; 8]));

    let w = world(&config(Profile::Qemu));
    let t = fdt::Fdt::new(&w.blob).unwrap();
    let node = t
        .find_node("/ibm,persistent-memory/ibm,pmemory@90000000")
        .unwrap();
    assert!(node.property("ibm,persistence-failed-count").is_none());
    assert!(nodes(&w.blob).iter().all(|n| n.dirty_shutdown_count == 0));
    // And a qemu-profile configuration cannot ask for it.
    let bad = config(Profile::Qemu).replace("type=spapr-nvdimm", "persistence-failed-count=1");
    let err = Transcript::parse(&bad).unwrap().plan().unwrap_err();
    assert!(
        err.reason.starts_with("persistence-failed-count:"),
        "{}",
        err.reason
    );
}

/// Blobs that made the `fdt` crate panic inside `discover` (a 40-byte
/// header with an empty structure block, a property running past its
/// block, a stray FDT_END_NODE) now come back as errors.
#[test]
fn test_malformed_blobs_are_errors_not_panics() {
    let w = world(&config(Profile::Papr));
    let good = w.blob.clone();
    let be = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let off_struct = be(&good, 8);
    let mut header_only = good[..40].to_vec();
    for (at, v) in [(4, 40u32), (8, 40), (12, 40), (16, 40), (32, 0), (36, 0)] {
        header_only[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    let mut long_prop = good.clone();
    // The root's first property: BEGIN_NODE, "\0" padded, PROP, len.
    long_prop[off_struct + 12..off_struct + 16].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    let mut stray_end = good.clone();
    let end = off_struct + be(&good, 36) - 4;
    stray_end[end..end + 4].copy_from_slice(&2u32.to_be_bytes());
    let mut crate_panics = 0;
    for blob in [header_only, long_prop, stray_end] {
        assert!(matches!(discover(&blob), Err(DiscoverError::Blob(_))));
        // What the unchecked parser did with the same bytes.
        let b = blob.clone();
        let r = std::panic::catch_unwind(move || {
            let t = fdt::Fdt::new(&b).ok()?;
            Some(t.all_nodes().map(|n| n.properties().count()).sum::<usize>())
        });
        crate_panics += usize::from(r.is_err());
    }
    assert!(crate_panics >= 2, "{crate_panics}");
}
