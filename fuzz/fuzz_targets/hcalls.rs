// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Sequences of guest hcalls with arbitrary registers, in both profiles,
//! against a machine with a plain nvdimm, an spapr-nvdimm and an empty
//! slot. Every call must return a status without panicking, and no call
//! may write a register past r6.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Profile};
use papr_scm::hcall::SCM_HCALLS;
use papr_scm::machine::Machine;
use papr_scm::replay::{ReplayHost, SparseRam};

const K: u64 = 1024;
const G: u64 = 1024 * 1024 * K;

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let mut m = MachineConfig::new(G, 4 * G, 3);
    m.profile = if head & 1 == 0 { Profile::Qemu } else { Profile::Papr };
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut b = NvdimmConfig::new(G / 4 + 128 * K, 128 * K, uuid);
    b.kind = DeviceKind::SpaprNvdimm;
    let host = ReplayHost {
        ram: SparseRam::new(64 * K),
    };
    let machine =
        Machine::from_config(&m, &[NvdimmConfig::new(G + 128 * K, 128 * K, uuid), b], host)
            .unwrap();
    // Each call: 1 byte opcode selector, then up to 9 registers of 8 bytes;
    // registers are biased towards small values and DRC indexes.
    while rest.len() >= 2 {
        let sel = rest[0] as usize;
        let opcode = SCM_HCALLS[sel % SCM_HCALLS.len()].0;
        rest = &rest[1..];
        let mut regs = [0u64; 9];
        for r in regs.iter_mut() {
            if rest.len() < 8 {
                break;
            }
            let v = u64::from_le_bytes(rest[..8].try_into().unwrap());
            *r = match v % 4 {
                0 => 0x9000_0000 + (v >> 2) % 4,
                1 => (v >> 2) % 0x2_0010,
                _ => v,
            };
            rest = &rest[8..];
        }
        let before = regs;
        let status = machine.handle(opcode, &mut regs);
        assert!(status.is_some());
        assert_eq!(&regs[3..], &before[3..]);
    }
});
