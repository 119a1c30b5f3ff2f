// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `papr-scm`: the demo, `replay` and `dtb`.

fn main() {}
