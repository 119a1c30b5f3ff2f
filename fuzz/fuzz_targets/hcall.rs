// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! One guest hcall with arbitrary registers, in either profile, against a
//! machine of four slots (a plain nvdimm, an spapr-nvdimm needing
//! H_SCM_FLUSH, a pmem=on spapr-nvdimm, an empty slot) whose guest RAM
//! holds valid SCMSTATS request headers (all stats, one id, an unknown id,
//! a huge count) at 0x1000, 0x2000, 0x3000 and 0x4000. Every call returns a
//! status, never panics, writes no register past r6 and, on an error, none.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Profile};
use papr_scm::hcall::SCM_HCALLS;
use papr_scm::host::GuestMemory;
use papr_scm::machine::Machine;
use papr_scm::replay::{ReplayHost, SparseRam};
use papr_scm::stats::{SCMSTATS_EYECATCHER, SCMSTATS_VERSION, STAT_IDS};

const K: u64 = 1024;
const G: u64 = 1024 * 1024 * K;

fn header(count: u32, id: Option<&[u8; 8]>) -> Vec<u8> {
    let mut h = SCMSTATS_EYECATCHER.to_vec();
    h.extend_from_slice(&SCMSTATS_VERSION.to_be_bytes());
    h.extend_from_slice(&count.to_be_bytes());
    if let Some(id) = id {
        h.extend_from_slice(id);
        h.extend_from_slice(&[0; 8]);
    }
    h
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let Some((&sel, rest)) = rest.split_first() else {
        return;
    };
    let mut m = MachineConfig::new(G, 4 * G, 4);
    m.profile = if head & 1 == 0 {
        Profile::Qemu
    } else {
        Profile::Papr
    };
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut flush = NvdimmConfig::new(G / 4 + 128 * K, 128 * K, uuid);
    flush.kind = DeviceKind::SpaprNvdimm;
    let mut pmem = flush;
    pmem.pmem = true;
    let ram = SparseRam::new(64 * K);
    for (at, h) in [
        (0x1000, header(0, None)),
        (0x2000, header(1, Some(&STAT_IDS[3]))),
        (0x3000, header(1, Some(b"Unknown!"))),
        (0x4000, header(u32::MAX, None)),
    ] {
        ram.write_guest(at, &h).unwrap();
    }
    let devices = [NvdimmConfig::new(G + 128 * K, 128 * K, uuid), flush, pmem];
    let machine = Machine::from_config(&m, &devices, ReplayHost::new(ram)).unwrap();
    let opcode = SCM_HCALLS[usize::from(sel) % SCM_HCALLS.len()].0;
    // Registers are biased towards DRC indexes, buffer addresses and small
    // values, so the checks behind the first ones are reached.
    let mut regs = [0u64; 9];
    for (r, chunk) in regs.iter_mut().zip(rest.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        let v = u64::from_le_bytes(b);
        *r = match v % 8 {
            0 => 0x9000_0000 + (v >> 3) % 5,
            1 => 0x1000 * ((v >> 3) % 6),
            2 => (v >> 3) % 0x2_0010,
            3 => u64::MAX,
            _ => v,
        };
    }
    let before = regs;
    let status = machine.handle(opcode, &mut regs).expect("an SCM opcode");
    assert_eq!(&regs[3..], &before[3..], "wrote past r6");
    if status.0 < 0 {
        assert_eq!(regs, before, "an error wrote registers");
    }
});
