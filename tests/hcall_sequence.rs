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

/// The life-cycle steps of `sequence::lifecycle_steps` (a restore after
/// the index was built, a release raced by a bind, a rollback with a flush
/// started half way, a reset raced by a bind, a plug back), both profiles.
#[test]
fn test_a_known_lifecycle_sequence() {
    for profile in [papr_scm::Profile::Papr, papr_scm::Profile::Qemu] {
        let mut w = sequence::World::new(profile);
        for s in &sequence::lifecycle_steps() {
            w.step(s);
        }
        w.drain();
        w.finish();
    }
}

/// The seeds of the `hcall_sequence` and `snapshot` fuzz targets that come
/// from the life-cycle steps, written when run with PAPR_SCM_WRITE_SEEDS=1;
/// otherwise every seed of both targets runs as the targets run it.
#[test]
fn test_the_fuzz_seeds() {
    use papr_scm::machine::{MachineState, SnapshotError};
    use papr_scm::Profile;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let steps = sequence::lifecycle_steps();
    if std::env::var_os("PAPR_SCM_WRITE_SEEDS").is_some() {
        for (p, name) in [(Profile::Papr, "papr"), (Profile::Qemu, "qemu")] {
            let bytes = sequence::encode(p, &steps);
            std::fs::write(
                root.join(format!("hcall_sequence/lifecycle-{name}")),
                &bytes,
            )
            .unwrap();
            // A snapshot mid-bind and mid-flush, then the same steps.
            let mut w = sequence::World::new(p);
            for s in &steps[..2] {
                w.step(s);
            }
            let mut seed = w.state().encode();
            seed.extend(&bytes[1..]);
            std::fs::write(root.join(format!("snapshot/sequence-{name}")), seed).unwrap();
        }
    }
    // The published crate leaves fuzz/ out; the repository always has it.
    let Ok(entries) = std::fs::read_dir(root.join("hcall_sequence")) else {
        return;
    };
    for e in entries {
        sequence::run(&std::fs::read(e.unwrap().path()).unwrap());
    }
    for e in std::fs::read_dir(root.join("snapshot")).unwrap() {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let (snap, rest) = match MachineState::decode(&data) {
            Err(SnapshotError::Trailing(n)) => data.split_at(data.len() - n),
            _ => (&data[..], &[][..]),
        };
        let restored = sequence::run_restored(&MachineState::decode(snap).unwrap(), rest);
        let ours = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sequence-");
        assert!(restored || !ours, "{}: not restored", path.display());
    }
}
