// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Builds the C test program `tests/c/test_capi.c` with the system's `cc`
//! against the staticlib cargo built for this test run, the way a VMM
//! links it, runs it, and replays the traces it wrote with papr-scm's
//! replay. Once plainly, once with `-fsanitize=address,undefined`.
//!
//! Why `cc` from PATH and not the `cc` crate in a build script: a build
//! script runs before the library it would link against exists, and the
//! sanitizer runtime must own the program's `main`, which a Rust test
//! binary cannot give it. So the C program is a program of its own, linked
//! against `libpapr_scm_capi.a` exactly as QEMU links it.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

use papr_scm::replay::replay;
use papr_scm::transcript::Transcript;

/// `target/<profile>`: the test binary lives in its `deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The staticlib of this build: cargo writes it to `deps/` with the rlib
/// this test links (built with the `test-hooks` feature, which the
/// dev-dependency on the crate itself turns on), and copies only a plain
/// `cargo build`'s up a directory.
fn staticlib() -> PathBuf {
    let lib = target_dir().join("deps/libpapr_scm_capi.a");
    let bytes = std::fs::read(&lib).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: cargo builds it with the library (crate-type staticlib)",
            lib.display()
        )
    });
    let hook = b"papr_scm_test_panic_next_label_access";
    assert!(
        bytes.windows(hook.len()).any(|w| w == hook),
        "{} lacks the test hook: it is not this test build's",
        lib.display()
    );
    lib
}

/// Compiles and links the C program into `out`; `Err` with the compiler's
/// output if it fails.
fn build(out: &Path, flags: &[&str]) -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("cc")
        .args([
            "-std=c11",
            "-g",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-value",
        ])
        .args(flags)
        .arg("-I")
        .arg(dir.join("include"))
        .arg(dir.join("tests/c/test_capi.c"))
        .arg(staticlib())
        // What Rust's std needs from the system (the staticlib's
        // native-static-libs on Linux).
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .arg("-o")
        .arg(out)
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cc failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs the program and replays its traces.
fn run(bin: &Path, dir: &Path) {
    let out = Command::new(bin)
        .arg(dir)
        .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}{stderr}",
        bin.display(),
        out.status
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    // The sanitizers report to stderr; a report that did not stop the
    // program still fails the test. The panic test hook's message is the
    // only expected output there.
    for line in stderr.lines() {
        assert!(
            !line.contains("Sanitizer") && !line.contains("runtime error"),
            "{stderr}"
        );
    }
    for (name, min_calls) in [("papr.trace", 2000), ("qemu.trace", 5)] {
        let path = dir.join(name);
        let t = Transcript::read_file(&path).unwrap();
        let report = replay(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            report.mismatches.is_empty(),
            "{}: {:#?}",
            path.display(),
            report.mismatches
        );
        assert!(
            report.calls >= min_calls,
            "{}: {} calls",
            path.display(),
            report.calls
        );
    }
    // The replay does compare: one result changed is one mismatch.
    let text = std::fs::read_to_string(dir.join("papr.trace")).unwrap();
    let good = "-> H_SUCCESS r4=0x1122334455667788";
    assert!(text.contains(good));
    let bad = text.replacen(good, "-> H_SUCCESS r4=0x1122334455667789", 1);
    let report = replay(&Transcript::parse(&bad).unwrap()).unwrap();
    assert_eq!(report.mismatches.len(), 1, "{:?}", report.mismatches);
    // The labels a plug and a load brought are in the trace: without them
    // the reads after each answer other bytes.
    assert!(text.contains("label slot=2 offset=0x200 504c554747454421"));
    assert!(text.contains("label-clear slot=0\nlabel slot=0 offset=0x400 4d49475241544544"));
    for strip in ["label slot=2 ", "label-clear "] {
        let lacking: String = text
            .lines()
            .filter(|l| !l.starts_with(strip))
            .map(|l| format!("{l}\n"))
            .collect();
        let report = replay(&Transcript::parse(&lacking).unwrap()).unwrap();
        assert_eq!(
            report.mismatches.len(),
            1,
            "{strip}: {:?}",
            report.mismatches
        );
    }
}

#[test]
fn test_c_program() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("test_capi");
    build(&bin, &[]).unwrap();
    run(&bin, dir.path());
}

#[test]
fn test_c_program_under_asan_and_ubsan() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        "-fno-omit-frame-pointer",
    ];
    // Skip only when the compiler cannot link a sanitized program at all.
    let probe = dir.path().join("probe.c");
    std::fs::write(&probe, "int main(void) { return 0; }\n").unwrap();
    let probed = Command::new("cc")
        .args(flags)
        .arg(&probe)
        .arg("-o")
        .arg(dir.path().join("probe"))
        .output();
    if !probed.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIP: cc cannot link -fsanitize=address,undefined here (no libasan/libubsan); the C program ran without sanitizers only"
        );
        return;
    }
    let bin = dir.path().join("test_capi_asan");
    build(&bin, &flags).unwrap();
    run(&bin, dir.path());
}
