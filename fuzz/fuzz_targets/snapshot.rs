// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Snapshot bytes from a migration stream, then (after the snapshot's own
//! bytes, which `decode` reports as trailing) steps of the guest and the
//! VMM. `MachineState::decode` answers without a panic, whatever it
//! accepts encodes back to the same bytes, and restoring it into a machine
//! either fails with a typed error or leaves a machine whose hcalls answer
//! without a panic. Then the snapshot is restored into the sequence
//! model's machine (`tests/support/sequence.rs`) as a migration
//! destination would, and the steps run against the model: hcalls,
//! resets, releases and plugs, snapshots and rollbacks, with a second
//! vCPU acting half way through the life-cycle steps; at the end the
//! guest's flush and bind loops must end within bounds.

#![no_main]

#[path = "../../tests/support/sequence.rs"]
mod sequence;

use libfuzzer_sys::fuzz_target;
use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig};
use papr_scm::machine::{Machine, MachineState, SnapshotError};
use papr_scm::replay::{ReplayHost, SparseRam};
use papr_scm::rtas_error_log::EventQueue;

fuzz_target!(|data: &[u8]| {
    let (bytes, steps) = match MachineState::decode(data) {
        Err(SnapshotError::Trailing(n)) => data.split_at(data.len() - n),
        _ => (data, &[][..]),
    };
    let Ok(snap) = MachineState::decode(bytes) else {
        return;
    };
    assert_eq!(snap.encode(), bytes);
    let mut m = MachineConfig::new(2 << 30, 8 << 30, snap.slot_count.clamp(2, 8));
    m.profile = snap.profile;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut flushy = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
    flushy.kind = DeviceKind::SpaprNvdimm;
    let devices = [NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid), flushy];
    let machine = Machine::from_config(&m, &devices, ReplayHost::new(SparseRam::new(2 << 30))).unwrap();
    let mut q = EventQueue::new();
    if machine.restore(&snap, &mut q).is_ok() {
        for drc in [0x9000_0000u64, 0x9000_0001] {
            let _ = machine.h_scm_health(drc);
            let _ = machine.h_scm_bind_mem(drc, 0, 1, u64::MAX, 0);
            let _ = machine.h_scm_flush(drc, 1);
            let _ = machine.h_scm_unbind_all(2, drc, 0);
        }
        let _ = machine.h_scm_query_logical_mem_binding(0x8000_0000);
    }
    sequence::run_restored(&snap, steps);
});
