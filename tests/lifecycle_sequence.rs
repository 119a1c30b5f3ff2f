// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of plugs, unplugs, RTAS calls, CAS, resets,
//! snapshots and restores between the guest's hcalls, with a second vCPU
//! half way through the life-cycle steps, checked step by step
//! (`tests/support/lifecycle.rs`, the same checks as the `lifecycle` fuzz
//! target). 5 000 sequences by default; `PAPR_SCM_SEQUENCE_CASES=N` runs
//! more.

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

/// The guest's hcalls between the life-cycle steps, and a second vCPU
/// half way through them: a device plugged, bound and flushing is
/// snapshotted, released while another vCPU binds it, plugged again and
/// rolled back; a reset raced by a flush; a partition-wide UNBIND_ALL.
/// As bytes (`fuzz/seeds/lifecycle/hcalls-release-restore`, written when
/// run with PAPR_SCM_WRITE_SEEDS=1), then run.
#[test]
fn test_hcalls_between_the_life_cycle_steps() {
    #[rustfmt::skip]
    let bytes = [
        0u8,        // papr
        3, 1,       // CAS, hot-plug events
        0, 1,       // plug slot 1
        200, 1,     // bind slot 1
        201, 1,     // flush slot 1
        205,        // snapshot
        207, 0, 1,  // the second vCPU binds slot 1 ...
        1, 1,       // ... while the VMM unplugs it (released at once)
        206,        // restore: refused, the device is gone
        0, 1,       // plug slot 1 again
        200, 1,     // bind it
        206,        // restore: taken (a rollback)
        207, 2, 1,  // the second vCPU starts a flush of slot 1 ...
        4, 0,       // ... during a reset
        200, 1,     // bind
        203, 200,   // UNBIND_ALL of the partition
        202, 1,     // poll slot 1's newest flush to its end
        206,        // restore again
        202, 1,
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/lifecycle");
    if std::env::var_os("PAPR_SCM_WRITE_SEEDS").is_some() {
        std::fs::write(dir.join("hcalls-release-restore"), bytes).unwrap();
    }
    let (_, steps) = lifecycle::decode(&bytes);
    assert!(matches!(steps[5], lifecycle::Step::Vcpu2(..)), "{steps:?}");
    let mut w = lifecycle::World::new(papr_scm::Profile::Papr);
    for s in &steps {
        w.step(s);
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
