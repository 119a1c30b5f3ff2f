// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Our device trees against the ones real QEMU dumped (`fdt/regen.sh`):
//! the persistent-memory subtree must match node for node, property for
//! property, in order, byte for byte; the root must list the same PMEM
//! connectors. Invalid configurations must be refused for QEMU's reason.

#![cfg(feature = "std")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use papr_scm::config::{Planner, Profile};
use papr_scm::fdt::machine_fdt;
use papr_scm::transcript::Transcript;

fn fdt_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fdt")
}

fn cfgs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    v.sort();
    v
}

/// Our tree for `cfg` as its file says (the `papr` profile unless it names
/// one).
fn ours(cfg: &Path) -> Vec<u8> {
    let t = Transcript::parse(&std::fs::read_to_string(cfg).unwrap()).unwrap();
    let (m, specs) = t.plan().unwrap();
    machine_fdt(&m, &specs).unwrap()
}

/// Our tree for `cfg` in `profile`.
fn ours_in(cfg: &Path, profile: Profile) -> Vec<u8> {
    let t = Transcript::parse(&std::fs::read_to_string(cfg).unwrap()).unwrap();
    let (mut m, devices) = t.config().unwrap();
    m.profile = profile;
    let mut planner = Planner::new(m).unwrap();
    let specs: Vec<_> = devices
        .iter()
        .map(|(_, c)| planner.plug(c).unwrap())
        .collect();
    machine_fdt(&m, &specs).unwrap()
}

type Props = Vec<(String, Vec<u8>)>;

fn props(n: &fdt::node::FdtNode<'_, '_>) -> Props {
    n.properties()
        .map(|p| (p.name.to_string(), p.value.to_vec()))
        .collect()
}

/// The parent's properties, and each child's name with its properties.
fn subtree(blob: &[u8]) -> (Props, BTreeMap<String, Props>) {
    let t = fdt::Fdt::new(blob).unwrap();
    let pm = t
        .find_node("/ibm,persistent-memory")
        .expect("no /ibm,persistent-memory");
    let children = pm
        .children()
        .map(|c| (c.name.to_string(), props(&c)))
        .collect();
    (props(&pm), children)
}

fn cells(v: &[u8]) -> Vec<u32> {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn strings(v: &[u8]) -> Vec<String> {
    v[4..]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

/// (index, power domain, name) of every PMEM connector on the root.
fn pmem_drcs(blob: &[u8]) -> BTreeSet<(u32, u32, String)> {
    let t = fdt::Fdt::new(blob).unwrap();
    let root = t.find_node("/").unwrap();
    let get = |n: &str| root.property(n).unwrap_or_else(|| panic!("no {n}")).value;
    let idx = cells(get("ibm,drc-indexes"));
    let pwr = cells(get("ibm,drc-power-domains"));
    let names = strings(get("ibm,drc-names"));
    let types = strings(get("ibm,drc-types"));
    assert_eq!(idx[0] as usize, idx.len() - 1);
    assert_eq!(names.len(), idx.len() - 1);
    assert_eq!(types.len(), idx.len() - 1);
    (0..names.len())
        .filter(|&i| types[i] == "PMEM")
        .map(|i| (idx[i + 1], pwr[i + 1], names[i].clone()))
        .collect()
}

#[test]
fn test_golden_trees_match_qemu() {
    let cases = cfgs(&fdt_dir());
    assert!(cases.len() >= 8, "only {} golden cases", cases.len());
    for cfg in cases {
        let qemu = std::fs::read(cfg.with_extension("dtb")).unwrap();
        let ours = ours_in(&cfg, Profile::Qemu);
        // QEMU's blobs and ours pass the structural check.
        papr_scm::fdt::check_blob(&qemu).unwrap();
        papr_scm::fdt::check_blob(&ours).unwrap();
        let (qp, qc) = subtree(&qemu);
        let (op, oc) = subtree(&ours);
        assert_eq!(op, qp, "{}: parent properties", cfg.display());
        assert_eq!(
            oc.keys().collect::<Vec<_>>(),
            qc.keys().collect::<Vec<_>>(),
            "{}: children",
            cfg.display()
        );
        for (name, q) in &qc {
            assert_eq!(&oc[name], q, "{}: {name}", cfg.display());
        }
        let q = pmem_drcs(&qemu);
        assert!(!q.is_empty(), "{}: QEMU lists no PMEM DRC", cfg.display());
        assert_eq!(pmem_drcs(&ours), q, "{}: PMEM DRC entries", cfg.display());
        // Our children come in ascending slot order.
        let t = fdt::Fdt::new(&ours).unwrap();
        let names: Vec<_> = t
            .find_node("/ibm,persistent-memory")
            .unwrap()
            .children()
            .map(|c| c.name.to_string())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}

/// The `papr` profile writes QEMU's nodes plus PowerVM's 64-bit
/// `ibm,persistence-failed-count` (0 unless the VMM counts dirty shutdowns)
/// just before `ibm,associativity`; nothing else differs.
#[test]
fn test_papr_trees_add_only_the_persistence_failed_count() {
    for cfg in cfgs(&fdt_dir()) {
        let qemu = std::fs::read(cfg.with_extension("dtb")).unwrap();
        let (qp, qc) = subtree(&qemu);
        let (pp, pc) = subtree(&ours_in(&cfg, Profile::Papr));
        assert_eq!(pp, qp, "{}: parent properties", cfg.display());
        assert_eq!(pc.len(), qc.len(), "{}: children", cfg.display());
        for (name, q) in &qc {
            let mut want = q.clone();
            let at = want
                .iter()
                .position(|(n, _)| n == "ibm,associativity")
                .unwrap();
            want.insert(at, ("ibm,persistence-failed-count".into(), vec![0; 8]));
            assert_eq!(&pc[name], &want, "{}: {name}", cfg.display());
        }
    }
}

#[test]
fn test_invalid_configs_are_refused_for_qemus_reason() {
    let cases = cfgs(&fdt_dir().join("invalid"));
    assert!(cases.len() >= 3);
    for cfg in cases {
        let text = std::fs::read_to_string(&cfg).unwrap();
        let rule = text
            .lines()
            .find_map(|l| l.strip_prefix("# rule: "))
            .expect("a '# rule: FIELD' line");
        let qemu_msg = std::fs::read_to_string(cfg.with_extension("qemu-error")).unwrap();
        assert!(qemu_msg.contains("qemu-system-ppc64"), "{}", cfg.display());
        let err = Transcript::parse(&text).unwrap().plan().unwrap_err();
        assert!(
            err.reason.starts_with(&format!("{rule}:")),
            "{}: we say '{}', QEMU says '{}'",
            cfg.display(),
            err.reason,
            qemu_msg.trim()
        );
        // The dtb command refuses it too, naming the line and the rule.
        let out = Command::new(env!("CARGO_BIN_EXE_papr-scm"))
            .args(["dtb", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!("line {}: {rule}:", err.line)),
            "{stderr}"
        );
    }
}

#[test]
fn test_dtb_command_writes_file_and_stdout() {
    let cfg = fdt_dir().join("sparse-slots.cfg");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sparse-slots.dtb");
    let st = Command::new(env!("CARGO_BIN_EXE_papr-scm"))
        .args(["dtb", cfg.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let file = std::fs::read(&out).unwrap();
    assert_eq!(file, ours(&cfg));
    let stdout = Command::new(env!("CARGO_BIN_EXE_papr-scm"))
        .args(["dtb", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(stdout.stdout, file);
}

#[test]
fn test_dtc_accepts_our_blobs_without_warnings() {
    if Command::new("dtc").arg("--version").output().is_err() {
        eprintln!("SKIP: dtc is not installed (apt-get install device-tree-compiler)");
        return;
    }
    for cfg in cfgs(&fdt_dir()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ours.dtb");
        std::fs::write(&path, ours(&cfg)).unwrap();
        let out = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", cfg.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.trim().is_empty(),
            "{}: dtc says {stderr}",
            cfg.display()
        );
    }
}
