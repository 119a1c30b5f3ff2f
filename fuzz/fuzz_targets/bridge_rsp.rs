// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary bytes from a gdb stub: the RSP client reads packets and runs
//! commands until the stream ends; it never panics, never loops without
//! reading, and never holds or expands more than `MAX_PACKET` bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use papr_scm::bridge::rsp::{Rsp, ScriptedLink, ANSWER_TIMEOUT, MAX_PACKET};

fuzz_target!(|data: &[u8]| {
    let (mode, input) = data.split_first().unwrap_or((&0, &[]));
    let mut rsp = Rsp::new(ScriptedLink::new(input));
    // Every packet costs at least 4 input bytes, so this ends.
    for _ in 0..=input.len() {
        let r = match mode % 4 {
            0 => rsp.recv(ANSWER_TIMEOUT).map(|p| p.len()),
            1 => rsp.cmd("g").map(|p| p.len()),
            2 => {
                let mut buf = [0u8; 64];
                rsp.read_mem(0x1000, &mut buf).map(|()| 64)
            }
            _ => rsp.ok("Z0,1000,4").map(|()| 0),
        };
        match r {
            Ok(n) => assert!(n <= MAX_PACKET),
            Err(_) => break,
        }
    }
});
