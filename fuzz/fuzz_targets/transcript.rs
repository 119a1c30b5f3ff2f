// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary text through the transcript parser, and what parses through
//! the planner and the replay engine: errors, never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::replay::replay;
use papr_scm::transcript::Transcript;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Transcript::parse(text) else {
        return;
    };
    // Round trip: what we write, we read back the same.
    let written: String = t.lines.iter().map(|(_, d)| format!("{d}\n")).collect();
    let again = Transcript::parse(&written).expect("written transcript parses");
    assert_eq!(
        t.lines.iter().map(|l| &l.1).collect::<Vec<_>>(),
        again.lines.iter().map(|l| &l.1).collect::<Vec<_>>()
    );
    // Replay only small machines: each label area is a heap buffer of the
    // configured size (the VMM's choice, not the guest's).
    let small = t.config().is_ok_and(|(_, devs)| {
        devs.len() <= 8 && devs.iter().all(|(_, d)| d.label_size.unwrap_or(0) <= 1 << 20)
    });
    if small {
        let _ = replay(&t);
    }
});
