// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary text through the transcript parser, and what parses through
//! the planner and the replay engine: errors, never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::replay::replay;
use papr_scm::transcript::Transcript;

fuzz_target!(|data: &[u8]| {
    // The bounded line reader and the in-memory parser agree.
    let read = Transcript::read(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(read.is_err());
        return;
    };
    let parsed = Transcript::parse(text);
    assert_eq!(read.as_ref().ok(), parsed.as_ref().ok());
    let Ok(t) = parsed else {
        return;
    };
    // Round trip: what we write, we read back the same.
    let written: String = t.lines.iter().map(|(_, d)| format!("{d}\n")).collect();
    let again = Transcript::parse(&written).expect("written transcript parses");
    assert_eq!(
        t.lines.iter().map(|l| &l.1).collect::<Vec<_>>(),
        again.lines.iter().map(|l| &l.1).collect::<Vec<_>>()
    );
    // Any machine replays: label areas are sparse, so a 4 GiB label-size
    // costs only what the transcript writes.
    let _ = replay(&t);
});
