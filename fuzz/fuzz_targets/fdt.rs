// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary bytes as a device tree blob: `check_blob` answers, and every
//! blob it accepts can be walked whole by the `fdt` crate and probed by the
//! guest model without a panic (the promise `check_blob` makes).

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::fdt::check_blob;
use papr_scm::guest::discover;

fuzz_target!(|data: &[u8]| {
    if check_blob(data).is_err() {
        assert!(discover(data).is_err());
        return;
    }
    let tree = fdt::Fdt::new(data).expect("a checked blob opens");
    let mut props = 0usize;
    for n in tree.all_nodes() {
        props += n.properties().map(|p| p.value.len()).count();
        for c in n.children() {
            let _ = c.name;
            let _ = c.compatible().map(|c| c.all().count());
        }
    }
    let _ = tree.find_node("/ibm,persistent-memory");
    let _ = props;
    let _ = discover(data);
});
