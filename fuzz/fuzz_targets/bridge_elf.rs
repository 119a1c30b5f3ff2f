// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary bytes as the guest's vmlinux: the trap finder returns sites
//! (never none) or an error, and the decrementer's `mtdec` finder a
//! register number or an error; neither panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::bridge::{find_mtdec, find_sites};

fuzz_target!(|data: &[u8]| {
    if let Ok(sites) = find_sites(data) {
        assert!(!sites.is_empty());
        for (pc, _, func) in sites {
            let _ = (pc, func);
        }
    }
    if let Ok((pc, rs)) = find_mtdec(data) {
        assert!(rs < 32);
        let _ = pc;
    }
});
