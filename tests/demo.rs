// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The main job: `papr-scm` with no arguments runs the demo; its trace
//! replays; it probes foreign blobs and refuses bad configurations.

#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_papr-scm"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn test_demo_on_builtin_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo-trace.txt");
    let out = bin()
        .args(["--trace", trace.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "papr-scm demo: a pseries guest with 2 NVDIMM(s), profile papr",
        "drc 0x90000000 bound to [0x80000000, +0x40000000) Persistent",
        "drc 0x90000001 bound to [0xc0000000, +0x10000000) Async",
        "found in the last 128 KiB of the backing file",
        "binding at 0x80000000 reused, index found",
        "drc 0x90000001: flush complete after 2 call(s)",
        "MemLife = 100%",
        "64 x H_SCM_READ_METADATA 0x90000000 offsets 0x0..=0x1f8 -> H_SUCCESS",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    // The trace is a conformance transcript.
    let out = bin()
        .args(["replay", trace.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(" 0 mismatches"));
}

#[test]
fn test_demo_on_a_config_and_on_qemus_blob() {
    let cfg = root().join("fdt/real-guest.cfg");
    let out = bin()
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let blob = root().join("fdt/four-devices.dtb");
    let out = bin()
        .args(["--dtb", blob.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("with 4 NVDIMM(s)"));
    assert_eq!(text.matches(" bound to [").count(), 4);
}

#[test]
fn test_demo_refuses_bad_input() {
    let bad = root().join("fdt/invalid/zero-uuid.cfg");
    let out = bin()
        .args(["--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("line 3: uuid:"));
    assert_eq!(bin().args(["--dtb"]).status().unwrap().code(), Some(2));
    assert_eq!(
        bin().args(["--frob", "x"]).status().unwrap().code(),
        Some(2)
    );
    let out = bin().args(["--dtb", "Cargo.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A readable message naming the file and the rule, not a Debug name.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("papr-scm demo: Cargo.toml: device tree: bad magic"),
        "{stderr}"
    );
}

/// The demo's backing files (1 GiB sparse images) live in a temporary
/// directory that is gone when the command ends, also when stdout closes
/// early (`papr-scm | head` used to panic and leave them behind).
#[test]
fn test_demo_cleans_up_and_survives_a_closed_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let count = || {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("papr-scm-demo-")
            })
            .count()
    };
    let mut child = bin()
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end at once: the demo's write fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert_eq!(count(), 0);
    assert!(bin()
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap()
        .status
        .success());
    assert_eq!(count(), 0);
}
