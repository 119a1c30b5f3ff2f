// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The `papr-scm replay` exit codes: 0 pass, 1 mismatch, 2 malformed.

#![cfg(feature = "std")]

use std::path::PathBuf;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_papr-scm"))
        .args(args)
        .output()
        .unwrap()
}

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("papr-scm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const HEAD: &str = "machine ram=2G maxmem=8G slots=4\n\
    nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n";

#[test]
fn test_replay_pass_prints_one_line_per_call() {
    let p = temp(
        "pass.txt",
        &format!("{HEAD}call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r4=0\ncall H_SCM_BIND_MEM 0x90000000 0 4 -1 0\n"),
    );
    let out = run(&["replay", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("    3 ok   call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r4=0x0"));
    assert!(stdout.contains("    4 ok   call H_SCM_BIND_MEM 0x90000000 0x0 0x4 -1 0x0 -> H_SUCCESS r4=0x0 r5=0x80000000 r6=0x4"));
}

#[test]
fn test_replay_mismatch_names_line_expected_and_actual() {
    let p = temp(
        "mismatch.txt",
        &format!("{HEAD}\ncall H_SCM_HEALTH 0x90000000 -> H_SUCCESS r4=1\n"),
    );
    let out = run(&["replay", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 4: H_SCM_HEALTH: expected H_SUCCESS r4=0x1, got H_SUCCESS r4=0x0"),
        "{stderr}"
    );
}

#[test]
fn test_replay_malformed_names_line_and_reason() {
    let p = temp(
        "bad.txt",
        &format!("{HEAD}call H_SCM_HEALTH 0x90000000 -> H_WHAT\n"),
    );
    let out = run(&["replay", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 3: 'H_WHAT' is not a return code"),
        "{stderr}"
    );

    let p = temp("badcfg.txt", "machine ram=2G maxmem=8G slots=4\nnvdimm size=1G+128K label-size=64K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n");
    let out = run(&["replay", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 2: label-size: 0x10000 is below the minimum of 128 KiB"),
        "{stderr}"
    );

    assert_eq!(
        run(&["replay", "/nonexistent/x.txt"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}
