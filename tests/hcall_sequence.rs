// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of hcalls, fault injections and resets, checked
//! step by step against a reference model (`tests/support/sequence.rs`, the
//! same checks as the `hcall_sequence` fuzz target). 10 000 sequences by
//! default; `PAPR_SCM_SEQUENCE_CASES=N` runs more.

#![cfg(feature = "std")]

#[path = "support/sequence.rs"]
mod sequence;

use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PAPR_SCM_SEQUENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn test_sequences_agree_with_the_model(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        sequence::run(&data);
    }
}

/// A hand-written sequence through every branch the model knows, so a
/// model that drifted from the machine fails here first, readably.
#[test]
fn test_a_known_sequence() {
    use papr_scm::hcall::*;
    use papr_scm::transcript::Injection;
    use sequence::{Step, World};
    for profile in [papr_scm::Profile::Papr, papr_scm::Profile::Qemu] {
        let mut w = World::new(profile);
        let d0 = 0x9000_0000;
        let d1 = 0x9000_0001;
        let steps = [
            Step::Call(H_SCM_WRITE_METADATA, [d0, 8, 0xabcd, 2, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_READ_METADATA, [d0, 8, 4, 0, 0, 0, 0, 0, 0]),
            Step::Inject(0, Injection::BindBudget(1)),
            Step::Inject(0, Injection::BindBusy(1)),
            Step::Call(H_SCM_BIND_MEM, [d0, 0, 4, u64::MAX, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_BIND_MEM, [d0, 0, 4, u64::MAX, 1, 0, 0, 0, 0]),
            Step::Call(H_SCM_BIND_MEM, [d0, 0, 4, u64::MAX, 2, 0, 0, 0, 0]),
            Step::Call(
                H_SCM_QUERY_LOGICAL_MEM_BINDING,
                [0x8000_0000, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            Step::Call(H_SCM_UNBIND_MEM, [d0, 0x8000_0000, 1, 0, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_QUERY_BLOCK_MEM_BINDING, [d0, 1, 0, 0, 0, 0, 0, 0, 0]),
            Step::Call(
                H_SCM_UNBIND_ALL,
                [H_UNBIND_SCOPE_ALL, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            Step::Inject(1, Injection::FlushResult(H_HARDWARE)),
            Step::Call(H_SCM_FLUSH, [d1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_FLUSH, [d1, 1, 0, 0, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_HEALTH, [d1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_FLUSH, [d1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Step::Reset,
            Step::Call(H_SCM_FLUSH, [d1, 2, 0, 0, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_FLUSH, [d0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Step::Call(H_SCM_PERFORMANCE_STATS, [d0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Step::Inject(2, Injection::FlushHold(1)),
        ];
        for s in &steps {
            w.step(s);
        }
        w.finish();
    }
}
