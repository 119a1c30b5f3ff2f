// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Replays every conformance transcript in `hcalls/` and checks that
//! together they exercise every return code of every hcall.

#![cfg(feature = "std")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use papr_scm::hcall::*;
use papr_scm::replay::replay;
use papr_scm::transcript::{Directive, Transcript};

fn transcripts() -> Vec<(PathBuf, Transcript)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hcalls");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, t)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn test_every_transcript_replays_without_mismatch() {
    let mut calls = 0;
    for (path, t) in transcripts() {
        let report = replay(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            report.mismatches.is_empty(),
            "{}:\n{}",
            path.display(),
            report.mismatches.join("\n")
        );
        assert!(report.calls > 0, "{} has no calls", path.display());
        calls += report.calls;
    }
    assert!(calls >= 150, "only {calls} call lines");
}

#[test]
fn test_every_return_code_of_every_hcall_is_covered() {
    // (profile-independent) status codes each hcall can return; the label
    // store's H_HARDWARE is covered by unit tests with a failing store.
    let required: &[(u64, &[ReturnCode])] = &[
        (H_SCM_READ_METADATA, &[H_SUCCESS, H_PARAMETER, H_P2, H_P3]),
        (H_SCM_WRITE_METADATA, &[H_SUCCESS, H_PARAMETER, H_P2, H_P4]),
        (
            H_SCM_BIND_MEM,
            &[
                H_SUCCESS,
                H_PARAMETER,
                H_P2,
                H_P3,
                H_P5,
                H_OVERLAP,
                H_BUSY,
                H_TOO_BIG,
            ],
        ),
        (
            H_SCM_UNBIND_MEM,
            &[H_SUCCESS, H_PARAMETER, H_P2, H_P3, H_P4, H_TOO_BIG],
        ),
        (
            H_SCM_QUERY_BLOCK_MEM_BINDING,
            &[H_SUCCESS, H_FUNCTION, H_PARAMETER, H_P2, H_NOT_FOUND],
        ),
        (
            H_SCM_QUERY_LOGICAL_MEM_BINDING,
            &[H_SUCCESS, H_FUNCTION, H_NOT_FOUND],
        ),
        (H_SCM_UNBIND_ALL, &[H_SUCCESS, H_P2, H_P4, H_PARAMETER]),
        (H_SCM_HEALTH, &[H_SUCCESS, H_PARAMETER]),
        (
            H_SCM_PERFORMANCE_STATS,
            &[
                H_SUCCESS,
                H_FUNCTION,
                H_PARAMETER,
                H_P2,
                H_P3,
                H_PARTIAL,
                H_UNSUPPORTED,
                H_AUTHORITY,
            ],
        ),
        (
            H_SCM_FLUSH,
            &[
                H_SUCCESS,
                H_PARAMETER,
                H_P2,
                H_UNSUPPORTED,
                H_HARDWARE,
                H_LONG_BUSY_ORDER_10_MSEC,
                H_LONG_BUSY_ORDER_1_SEC,
                H_LONG_BUSY_ORDER_100_SEC,
            ],
        ),
    ];
    let mut seen: BTreeMap<u64, BTreeSet<ReturnCode>> = BTreeMap::new();
    for (_, t) in transcripts() {
        for (_, d) in &t.lines {
            if let Directive::Call {
                opcode,
                expect: Some(e),
                ..
            } = d
            {
                seen.entry(*opcode).or_default().insert(e.status);
            }
        }
    }
    for (op, codes) in required {
        let got = seen.get(op).cloned().unwrap_or_default();
        for c in *codes {
            assert!(
                got.contains(c),
                "{} never expects {c}",
                hcall_name(*op).unwrap()
            );
        }
    }
}
