// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The command line: every subcommand's `--help`, `--version`, one error
//! style (`papr-scm <command>: …`), exit 0 success / 1 a check failed / 2
//! bad usage or input, `replay` reporting every file, no panic on a closed
//! pipe, temporary files removed.

#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_papr-scm"))
        .args(args)
        .output()
        .unwrap()
}

/// A file in this test binary's temporary directory (removed at exit).
fn temp(name: &str, text: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let p = dir.path().join(name);
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
    assert!(stderr.starts_with("papr-scm replay: "), "{stderr}");
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

#[test]
fn test_help_and_version_for_every_command() {
    for args in [
        &["--help"][..],
        &["demo", "--help"],
        &["replay", "--help"],
        &["dtb", "--help"],
        &["qemu-bridge", "--help"],
        &["help", "replay"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains("Usage: papr-scm"), "{args:?}: {stdout}");
    }
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("papr-scm {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn test_usage_errors_exit_2_on_stderr() {
    for args in [
        &["frobnicate"][..],
        &["--frob"],
        &["replay"],
        &["dtb"],
        &["qemu-bridge", "--gdb", "x"],
        &["qemu-bridge", "--timeout", "soon"],
        &["--config", "a", "--dtb", "b"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("papr-scm"), "{args:?}: {stderr}");
        assert!(stderr.contains("--help"), "{args:?}: {stderr}");
    }
}

/// Input the commands cannot use is exit 2 with `papr-scm <command>: …`.
#[test]
fn test_input_errors_name_the_command() {
    let cfg = temp(
        "bad-dtb.cfg",
        "machine ram=2G maxmem=8G slots=1\nnvdimm size=1G label-size=1K uuid=x\n",
    );
    for (args, prefix) in [
        (vec!["dtb", cfg.to_str().unwrap()], "papr-scm dtb: "),
        (vec!["dtb", "/nonexistent.cfg"], "papr-scm dtb: "),
        (vec!["--config", "/nonexistent.cfg"], "papr-scm demo: "),
        (
            vec![
                "qemu-bridge",
                "--gdb",
                "127.0.0.1:1",
                "--vmlinux",
                "/nonexistent",
                "--config",
                cfg.to_str().unwrap(),
            ],
            "papr-scm qemu-bridge: ",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with(prefix), "{args:?}: {stderr}");
    }
}

/// Every file is replayed and reported; a malformed file does not hide an
/// earlier mismatch, and the summary names both.
#[test]
fn test_replay_reports_every_file() {
    let bad = temp(
        "r-mismatch.txt",
        &format!("{HEAD}call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r4=1\n"),
    );
    let broken = temp("r-broken.txt", "machine ram=oops\n");
    let good = temp(
        "r-good.txt",
        &format!("{HEAD}call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r4=0\n"),
    );
    let out = run(&[
        "replay",
        bad.to_str().unwrap(),
        broken.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.contains("r-mismatch.txt: 1 calls, 1 mismatches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("r-good.txt: 1 calls, 0 mismatches"),
        "{stdout}"
    );
    assert!(stderr.contains("r-broken.txt: line 1"), "{stderr}");
    assert!(
        stderr.contains("3 files: 1 malformed, 1 with mismatches"),
        "{stderr}"
    );
    let out = run(&["replay", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

/// `papr-scm dtb CFG | head -c 1` and `replay … | head -1`: the closed
/// pipe ends the command quietly.
#[test]
fn test_closed_pipe_is_not_a_panic() {
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fdt/one-device.cfg");
    let many = temp(
        "many.txt",
        &format!("{HEAD}{}", "call H_SCM_HEALTH 0x90000000\n".repeat(20_000)),
    );
    for args in [
        vec!["dtb", cfg.to_str().unwrap()],
        vec!["replay", many.to_str().unwrap()],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_papr-scm"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
