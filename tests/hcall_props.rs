// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Property tests: arbitrary guest registers, in both profiles, never panic,
//! never write registers an hcall does not define, only return codes the
//! hcall can return, and keep the device state inside the device.

#![cfg(feature = "std")]

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Profile};
use papr_scm::hcall::*;
use papr_scm::host::GuestMemory;
use papr_scm::label::VecLabelStore;
use papr_scm::machine::{Machine, SharedSlots};
use papr_scm::replay::{ReplayHost, SparseRam};
use proptest::prelude::*;

const K: u64 = 1024;
const M: u64 = 1024 * K;
const G: u64 = 1024 * M;

type TestMachine = Machine<SharedSlots<VecLabelStore>, ReplayHost>;

fn machine(profile: Profile) -> TestMachine {
    let mut m = MachineConfig::new(G, 4 * G, 3);
    m.profile = profile;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut b = NvdimmConfig::new(256 * M + 128 * K, 128 * K, uuid);
    b.kind = DeviceKind::SpaprNvdimm;
    let host = ReplayHost::new(SparseRam::new(64 * K));
    let m = Machine::from_config(
        &m,
        &[NvdimmConfig::new(G + 128 * K, 128 * K, uuid), b],
        host,
    )
    .unwrap();
    m.host()
        .ram
        .write_guest(0x1000, b"SCMSTATS\0\0\0\x01\0\0\0\x01MemLife ")
        .unwrap();
    m
}

/// Values that hit the interesting edges more often than uniform u64s.
fn reg() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..16,
        (0u64..4).prop_map(|s| 0x9000_0000 + s),
        (0u64..4).prop_map(|s| 0xffff_ffff_9000_0000 + s),
        Just(u64::MAX),
        (0u64..8).prop_map(|b| 0x4000_0000 + b * 0x1000_0000),
        (0u64..0x20010),
        Just(0x1000u64),
        Just(272u64),
    ]
}

fn opcode() -> impl Strategy<Value = u64> {
    prop_oneof![
        proptest::sample::select(SCM_HCALLS.iter().map(|h| h.0).collect::<Vec<_>>()),
        any::<u64>(),
    ]
}

fn allowed(op: u64) -> &'static [ReturnCode] {
    match op {
        H_SCM_READ_METADATA => &[H_SUCCESS, H_PARAMETER, H_P2, H_P3],
        H_SCM_WRITE_METADATA => &[H_SUCCESS, H_PARAMETER, H_P2, H_P4],
        H_SCM_BIND_MEM => &[
            H_SUCCESS,
            H_PARAMETER,
            H_P2,
            H_P3,
            H_P5,
            H_OVERLAP,
            H_BUSY,
            H_TOO_BIG,
        ],
        H_SCM_UNBIND_MEM => &[H_SUCCESS, H_PARAMETER, H_P2, H_P3, H_P4, H_TOO_BIG],
        H_SCM_QUERY_BLOCK_MEM_BINDING => &[H_SUCCESS, H_FUNCTION, H_PARAMETER, H_P2, H_NOT_FOUND],
        H_SCM_QUERY_LOGICAL_MEM_BINDING => &[H_SUCCESS, H_FUNCTION, H_NOT_FOUND],
        H_SCM_UNBIND_ALL => &[H_SUCCESS, H_PARAMETER, H_P2, H_P4],
        H_SCM_HEALTH => &[H_SUCCESS, H_PARAMETER],
        H_SCM_PERFORMANCE_STATS => &[
            H_SUCCESS,
            H_FUNCTION,
            H_PARAMETER,
            H_P2,
            H_P3,
            H_PARTIAL,
            H_UNSUPPORTED,
            H_AUTHORITY,
        ],
        H_SCM_FLUSH => &[
            H_SUCCESS,
            H_PARAMETER,
            H_P2,
            H_UNSUPPORTED,
            H_HARDWARE,
            H_LONG_BUSY_ORDER_10_MSEC,
        ],
        _ => &[],
    }
}

fn check_call(m: &TestMachine, op: u64, regs: [u64; 9]) -> Result<(), TestCaseError> {
    let mut r = regs;
    match m.handle(op, &mut r) {
        None => {
            prop_assert!(hcall_name(op).is_none());
            prop_assert_eq!(r, regs);
        }
        Some(status) => {
            prop_assert!(
                allowed(op).contains(&status),
                "{:#x} returned {}",
                op,
                status
            );
            // No SCM hcall defines outputs past r6.
            prop_assert_eq!(&r[3..], &regs[3..]);
            if status != H_SUCCESS
                && status != H_BUSY
                && !status.is_long_busy()
                && status != H_PARTIAL
            {
                // Errors write nothing.
                prop_assert_eq!(r, regs);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_single_calls_are_safe(op in opcode(), regs in proptest::array::uniform9(reg())) {
        for p in [Profile::Qemu, Profile::Papr] {
            check_call(&machine(p), op, regs)?;
        }
    }

    #[test]
    fn prop_call_sequences_keep_state_inside_devices(
        calls in proptest::collection::vec((opcode(), proptest::array::uniform9(reg())), 1..40)
    ) {
        for p in [Profile::Qemu, Profile::Papr] {
            let m = machine(p);
            for (op, regs) in &calls {
                check_call(&m, *op, *regs)?;
            }
            for slot in 0..2 {
                let (count, blocks, runs_ok) = m
                    .with_device(slot, |d| {
                        let blocks = d.spec().blocks();
                        let runs = d.bindings().runs();
                        let ok = runs.iter().all(|&(s, n)| n > 0 && s + n <= blocks)
                            && runs.windows(2).all(|w| w[0].0 + w[0].1 < w[1].0);
                        (d.bindings().count(), blocks, ok)
                    })
                    .unwrap();
                prop_assert!(count <= blocks);
                prop_assert!(runs_ok);
                if p == Profile::Qemu {
                    prop_assert_eq!(count, 0);
                }
            }
        }
    }
}
