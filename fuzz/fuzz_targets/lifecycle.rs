// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arbitrary plugs, unplugs, RTAS calls (any service, any words), CAS and
//! resets, checked against the slot model of `tests/support/lifecycle.rs`.
//! `tests/lifecycle_sequence.rs` runs the same checks as a proptest.

#![no_main]

#[path = "../../tests/support/lifecycle.rs"]
mod lifecycle;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lifecycle::run(data));
