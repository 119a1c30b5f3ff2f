// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The hcall path, register to register: `Machine::handle` for the calls a
//! Linux guest makes most (hundreds of 8-byte metadata reads per device per
//! boot), in both profiles.
//!
//! `cargo bench --bench hcalls`; instruction counts, which do not depend on
//! the machine's load: `valgrind --tool=callgrind` on the bench binary with
//! `--bench --profile-time 2 read_metadata_8`.

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
    let host = ReplayHost {
        ram: SparseRam::new(2 * G),
    };
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

criterion_group!(benches, bench);
criterion_main!(benches);
