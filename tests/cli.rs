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

/// 256 devices with 4 GiB labels each: `replay` held a zeroed `Vec` per
/// label, so under an address-space limit it aborted (exit 134) on the
/// allocation. Labels are sparse now: memory follows the writes.
#[test]
fn test_replay_of_huge_labels_runs_in_bounded_memory() {
    let mut text = String::from("machine ram=2G maxmem=66G slots=256\n");
    for _ in 0..256 {
        text.push_str("nvdimm size=256M+4194303K label-size=4194303K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n");
    }
    text.push_str(
        "call H_SCM_WRITE_METADATA 0x900000ff 0xfffffbf0 0x1122334455667788 8 -> H_SUCCESS\n",
    );
    text.push_str(
        "call H_SCM_READ_METADATA 0x900000ff 0xfffffbf0 8 -> H_SUCCESS r4=0x1122334455667788\n",
    );
    let p = temp("huge-labels.txt", &text);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v 2000000 && exec {} replay {}",
            env!("CARGO_BIN_EXE_papr-scm"),
            p.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
