// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Wall-clock medians (criterion): the hcall path register to register for
//! the calls a Linux guest makes most, in both profiles; a guest reading a
//! whole 128 KiB label area (16 384 calls); the spanning calls at 256
//! devices; device-tree emission for 1, 32 and 256 devices against a
//! hand-written vm-fdt writer of the same nodes; the guest model's probe;
//! a 256-device snapshot's encode, decode and restore.
//!
//! `cargo bench --bench hcalls`. Medians move with the machine's load;
//! the instruction counts of `benches/instructions.rs` do not.

use criterion::{criterion_group, criterion_main, Criterion};
use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Profile};
use papr_scm::hcall::*;
use papr_scm::label::VecLabelStore;
use papr_scm::machine::{Machine, SharedSlots};
use papr_scm::replay::{ReplayHost, SparseRam};
use std::hint::black_box;

const K: u64 = 1024;
const G: u64 = 1024 * 1024 * K;

fn machine(profile: Profile) -> Machine<SharedSlots<VecLabelStore>, ReplayHost> {
    let mut m = MachineConfig::new(2 * G, 8 * G, 4);
    m.profile = profile;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut b = NvdimmConfig::new(G / 4 + 128 * K, 128 * K, uuid);
    b.kind = DeviceKind::SpaprNvdimm;
    let host = ReplayHost::new(SparseRam::new(2 * G));
    Machine::from_config(
        &m,
        &[NvdimmConfig::new(G + 128 * K, 128 * K, uuid), b],
        host,
    )
    .unwrap()
}

fn call(
    m: &Machine<SharedSlots<VecLabelStore>, ReplayHost>,
    op: u64,
    regs: [u64; 9],
) -> Option<ReturnCode> {
    let mut r = black_box(regs);
    m.handle(black_box(op), &mut r)
}

fn bench(c: &mut Criterion) {
    for profile in [Profile::Qemu, Profile::Papr] {
        let m = machine(profile);
        let p = profile.name();
        c.bench_function(&format!("{p}/read_metadata_8"), |b| {
            b.iter(|| {
                call(
                    &m,
                    H_SCM_READ_METADATA,
                    [0x9000_0000, 0x1f8, 8, 0, 0, 0, 0, 0, 0],
                )
            })
        });
        c.bench_function(&format!("{p}/write_metadata_8"), |b| {
            b.iter(|| {
                call(
                    &m,
                    H_SCM_WRITE_METADATA,
                    [0x9000_0000, 0x100, 0x0102_0304_0506_0708, 8, 0, 0, 0, 0, 0],
                )
            })
        });
        c.bench_function(&format!("{p}/health"), |b| {
            b.iter(|| call(&m, H_SCM_HEALTH, [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0]))
        });
        c.bench_function(&format!("{p}/bad_drc"), |b| {
            b.iter(|| {
                call(
                    &m,
                    H_SCM_READ_METADATA,
                    [0x8000_0000, 0, 8, 0, 0, 0, 0, 0, 0],
                )
            })
        });
        c.bench_function(&format!("{p}/bind_unbind_all"), |b| {
            b.iter(|| {
                call(
                    &m,
                    H_SCM_BIND_MEM,
                    [0x9000_0000, 0, 4, u64::MAX, 0, 0, 0, 0, 0],
                );
                call(&m, H_SCM_UNBIND_ALL, [2, 0x9000_0000, 0, 0, 0, 0, 0, 0, 0])
            })
        });
        c.bench_function(&format!("{p}/not_scm"), |b| {
            b.iter(|| call(&m, 0x58, [0; 9]))
        });
    }
}

fn bench_label_area(c: &mut Criterion) {
    let m = machine(Profile::Papr);
    // Linux's nd_label_data_init and ndctl read the label area 8 bytes a call.
    c.bench_function("papr/read_whole_128k_label_area", |b| {
        b.iter(|| {
            for off in (0..128 * K).step_by(8) {
                call(
                    &m,
                    H_SCM_READ_METADATA,
                    [0x9000_0000, off, 8, 0, 0, 0, 0, 0, 0],
                );
            }
        })
    });
}

fn many(devices: u32) -> (MachineConfig, Vec<papr_scm::config::DeviceSpec>) {
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let m = MachineConfig::new(2 * G, 2 * G + u64::from(devices) * G, devices);
    let mut p = papr_scm::config::Planner::new(m).unwrap();
    let specs = (0..devices)
        .map(|_| {
            p.plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))
                .unwrap()
        })
        .collect();
    (m, specs)
}

fn bench_scale(c: &mut Criterion) {
    let (cfg, specs) = many(256);
    let m = Machine::from_specs(&cfg, &specs, ReplayHost::default()).unwrap();
    let last = 0x9000_0000 + 255;
    call(&m, H_SCM_BIND_MEM, [last, 0, 4, u64::MAX, 0, 0, 0, 0, 0]);
    let addr = specs[255].addr + G - 1;
    c.bench_function("papr/256_devices/query_logical_last", |b| {
        b.iter(|| {
            call(
                &m,
                H_SCM_QUERY_LOGICAL_MEM_BINDING,
                [addr, 0, 0, 0, 0, 0, 0, 0, 0],
            )
        })
    });
    c.bench_function("papr/256_devices/read_metadata_8", |b| {
        b.iter(|| call(&m, H_SCM_READ_METADATA, [last, 0x1f8, 8, 0, 0, 0, 0, 0, 0]))
    });
}

/// The same /ibm,persistent-memory subtree written by hand with vm-fdt:
/// what papr-scm's writer costs over the bare library.
fn hand_written(specs: &[papr_scm::config::DeviceSpec]) -> Vec<u8> {
    use papr_scm::vm_fdt::FdtWriter;
    let mut fdt = FdtWriter::new().unwrap();
    let root = fdt.begin_node("").unwrap();
    let pm = fdt.begin_node("ibm,persistent-memory").unwrap();
    fdt.property_string("device_type", "ibm,persistent-memory")
        .unwrap();
    fdt.property_u32("#size-cells", 0).unwrap();
    fdt.property_u32("#address-cells", 1).unwrap();
    for s in specs {
        let n = fdt
            .begin_node(&format!("ibm,pmemory@{:x}", s.drc.raw()))
            .unwrap();
        fdt.property_null("ibm,cache-flush-required").unwrap();
        fdt.property_string("ibm,pmem-application", "operating-system")
            .unwrap();
        fdt.property_u32("ibm,metadata-size", s.layout.label_size() as u32)
            .unwrap();
        fdt.property_u64("ibm,number-of-blocks", s.blocks())
            .unwrap();
        fdt.property_u64("ibm,block-size", 256 << 20).unwrap();
        fdt.property_u32("ibm,my-drc-index", s.drc.raw()).unwrap();
        fdt.property_string("ibm,unit-guid", &s.uuid.hyphenated().to_string())
            .unwrap();
        if let Some(n) = s.persistence_failed_count {
            fdt.property_u64("ibm,persistence-failed-count", n).unwrap();
        }
        fdt.property_array_u32("ibm,associativity", s.associativity.cells())
            .unwrap();
        fdt.property_string("device_type", "ibm,pmemory").unwrap();
        fdt.property_string("compatible", "ibm,pmemory").unwrap();
        fdt.property_u32("reg", s.drc.raw()).unwrap();
        fdt.end_node(n).unwrap();
    }
    fdt.end_node(pm).unwrap();
    fdt.end_node(root).unwrap();
    fdt.finish().unwrap()
}

fn ours(specs: &[papr_scm::config::DeviceSpec]) -> Vec<u8> {
    let mut fdt = papr_scm::vm_fdt::FdtWriter::new().unwrap();
    let root = fdt.begin_node("").unwrap();
    papr_scm::fdt::write_persistent_memory(&mut fdt, specs).unwrap();
    fdt.end_node(root).unwrap();
    fdt.finish().unwrap()
}

fn bench_fdt(c: &mut Criterion) {
    for n in [1, 32, 256] {
        let (_, specs) = many(n);
        // Same bytes, so the comparison is like for like.
        assert_eq!(ours(&specs), hand_written(&specs));
        c.bench_function(&format!("fdt/{n}_devices/papr_scm"), |b| {
            b.iter(|| ours(black_box(&specs)))
        });
        c.bench_function(&format!("fdt/{n}_devices/hand_written_vm_fdt"), |b| {
            b.iter(|| hand_written(black_box(&specs)))
        });
    }
}

fn bench_probe(c: &mut Criterion) {
    use papr_scm::guest::{discover, Guest};
    let (cfg, specs) = many(1);
    let blob = papr_scm::fdt::machine_fdt(&cfg, &specs).unwrap();
    let node = discover(&blob).unwrap().remove(0).unwrap();
    c.bench_function("guest_model/probe", |b| {
        b.iter(|| {
            let m = Machine::from_specs(&cfg, &specs, ReplayHost::default()).unwrap();
            let mut g = Guest::new(&m);
            black_box(g.probe(&node).map(|_| ()).is_ok())
        })
    });
}

/// A migration's SCM share at 256 devices, each bound:
/// what the VMM pays while the guest is stopped.
fn bench_snapshot(c: &mut Criterion) {
    use papr_scm::machine::MachineState;
    use papr_scm::rtas_error_log::EventQueue;
    let (cfg, specs) = many(256);
    let m = Machine::from_specs(&cfg, &specs, ReplayHost::default()).unwrap();
    for s in &specs {
        let drc = u64::from(s.drc.raw());
        call(&m, H_SCM_BIND_MEM, [drc, 0, 4, u64::MAX, 0, 0, 0, 0, 0]);
    }
    let q = EventQueue::new();
    let bytes = m.state(&q).encode();
    let dst = Machine::from_specs(&cfg, &specs, ReplayHost::default()).unwrap();
    c.bench_function("snapshot/256_devices/state_encode", |b| {
        b.iter(|| black_box(m.state(&q).encode()))
    });
    c.bench_function("snapshot/256_devices/decode", |b| {
        b.iter(|| MachineState::decode(black_box(&bytes)).unwrap())
    });
    let snap = MachineState::decode(&bytes).unwrap();
    c.bench_function("snapshot/256_devices/restore", |b| {
        b.iter(|| {
            dst.restore(black_box(&snap), &mut EventQueue::new())
                .unwrap()
        })
    });
}

criterion_group!(
    benches,
    bench,
    bench_label_area,
    bench_scale,
    bench_fdt,
    bench_probe,
    bench_snapshot
);
criterion_main!(benches);
