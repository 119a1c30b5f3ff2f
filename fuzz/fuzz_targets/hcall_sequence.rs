// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary sequences of hcalls, fault injections, resets, flush polls and
//! bind continuations, each step checked against the reference model of
//! `tests/support/sequence.rs` (bindings, label bytes, flush tokens, health,
//! the register rule). `tests/hcall_sequence.rs` runs the same checks as a
//! proptest on every `cargo test`.

#![no_main]

#[path = "../../tests/support/sequence.rs"]
mod sequence;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sequence::run(data));
