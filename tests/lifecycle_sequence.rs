// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of plugs, unplugs, RTAS calls, CAS and resets,
//! checked step by step (`tests/support/lifecycle.rs`, the same checks as
//! the `lifecycle` fuzz target). 5 000 sequences by default;
//! `PAPR_SCM_SEQUENCE_CASES=N` runs more.

#![cfg(feature = "guest-model")]

#[path = "support/lifecycle.rs"]
mod lifecycle;

use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PAPR_SCM_SEQUENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn test_lifecycle_sequences_keep_the_model(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        lifecycle::run(&data);
    }
}

/// A guest that plugs, acquires, configures and releases by the book, in
/// the model's terms: the device comes and goes exactly as the model says.
#[test]
fn test_a_known_lifecycle() {
    use lifecycle::{Step, World};
    use papr_scm::rtas::RtasService::*;
    for profile in [papr_scm::Profile::Papr, papr_scm::Profile::Qemu] {
        let mut w = World::new(profile);
        let drc = 0x9000_0001;
        let mut steps = vec![
            Step::Cas(true),
            Step::Plug(1),
            Step::Rtas(CheckException, vec![0, 0, 0x1000_0000, 0, 0x5000, 2048], 1),
            Step::Rtas(GetSensorState, vec![9003, drc], 2),
            Step::Rtas(SetIndicator, vec![9003, drc, 1], 1),
            Step::Rtas(SetIndicator, vec![9001, drc, 1], 1),
            Step::WorkArea(1),
        ];
        steps.extend(std::iter::repeat_n(
            Step::Rtas(IbmConfigureConnector, vec![0x3000, 0], 1),
            14,
        ));
        steps.extend([
            Step::Unplug(1),
            Step::Rtas(CheckException, vec![0, 0, 0x1000_0000, 0, 0x5000, 2048], 1),
            Step::Rtas(SetIndicator, vec![9001, drc, 0], 1),
            Step::Rtas(SetIndicator, vec![9003, drc, 0], 1),
        ]);
        for s in &steps {
            w.step(s);
        }
        assert!(
            w.machine.with_device(1, |_| ()).is_none(),
            "{profile:?}: released"
        );
        assert!(w.events.is_empty());
    }
}

/// The fuzz target's seeds and past findings (a zero-length papr event
/// buffer once broke the harness's own read-back), as plain tests.
#[test]
fn test_the_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/lifecycle");
    // The published crate leaves fuzz/ out; the repository always has it.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut n = 0;
    for e in entries {
        lifecycle::run(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 4);
}
