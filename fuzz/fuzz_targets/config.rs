// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary configuration text: parse, plan, write the device tree, check
//! the blob and read it back with the guest model. Whatever plans must
//! place its devices in distinct slots, inside device memory and without
//! overlap, and the guest must find exactly those devices in the tree.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::fdt::{check_blob, machine_fdt};
use papr_scm::guest::discover;
use papr_scm::transcript::Transcript;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = Transcript::read(data) else {
        return;
    };
    let Ok((machine, specs)) = t.plan() else {
        return;
    };
    let end = machine.maxmem;
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for s in &specs {
        assert!(s.slot < machine.slots);
        assert!(s.addr >= machine.ram_size && s.addr + s.data_size() <= end);
        assert!(seen
            .iter()
            .all(|&(a, n)| s.addr + s.data_size() <= a || a + n <= s.addr));
        seen.push((s.addr, s.data_size()));
    }
    let blob = machine_fdt(&machine, &specs).expect("a planned machine has a tree");
    check_blob(&blob).expect("our own blob passes the check");
    let found = discover(&blob).expect("our own blob has the parent node");
    assert_eq!(found.len(), specs.len());
    // The tree lists devices in slot order.
    let mut by_slot: Vec<_> = specs.iter().collect();
    by_slot.sort_by_key(|s| s.slot);
    for (node, spec) in found.iter().zip(by_slot) {
        let node = node.as_ref().expect("our own nodes probe");
        assert_eq!(node.drc, spec.drc.raw());
        assert_eq!(node.blocks, spec.blocks());
        assert_eq!(node.block_size, 256 << 20);
        assert_eq!(node.metadata_size, Some(spec.layout.label_size() as u32));
        assert_eq!(node.uuid, spec.uuid.hyphenated().to_string());
        assert_eq!(
            node.dirty_shutdown_count,
            spec.persistence_failed_count.unwrap_or(0)
        );
    }
});
