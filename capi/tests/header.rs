// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The checked-in header is what cbindgen makes of the crate today: a
//! changed signature, type or doc comment without a regenerated
//! `include/papr_scm.h` fails here.

use std::path::Path;

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen parses the crate")
        .write(&mut out);
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn test_checked_in_header_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/papr_scm.h");
    let fresh = generate();
    if std::env::var_os("PAPR_SCM_WRITE_HEADER").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != fresh {
        let line = on_disk
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(fresh.lines().count()));
        panic!(
            "{} is stale (first difference at line {}): regenerate it with\n    \
             PAPR_SCM_WRITE_HEADER=1 cargo test -p papr-scm-capi --test header\n\
             and commit it (and copy it to wherever a VMM's patches include it).",
            path.display(),
            line + 1
        );
    }
}

/// The header declares every entry point the crate exports, and not the
/// test hook.
#[test]
fn test_header_declares_every_entry() {
    let h = generate();
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let exported: Vec<&str> = src
        .split("pub unsafe extern \"C\" fn ")
        .skip(1)
        .map(|s| s.split('(').next().unwrap())
        .collect();
    assert!(exported.len() >= 16, "{exported:?}");
    for f in exported {
        assert!(
            h.contains(&format!("{f}(")),
            "{f} is missing from the header"
        );
    }
    assert!(!h.contains("papr_scm_test_panic"));
    assert!(!h.contains("CBool"));
}
