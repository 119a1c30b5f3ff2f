// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Label writes through hcalls survive the VMM being killed: a child
//! process writes labels with H_SCM_WRITE_METADATA into a QEMU-layout
//! backing file and reports each acknowledged write; the parent SIGKILLs it
//! at a random point, then finds every acknowledged write in the file and
//! no other byte changed.

#![cfg(feature = "std")]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Planner};
use papr_scm::device::Device;
use papr_scm::hcall::*;
use papr_scm::label::{Durability, FileLabelStore};
use papr_scm::machine::{Machine, SharedSlots};

const K: u64 = 1024;
const M: u64 = 1024 * K;
const LABEL: u64 = 128 * K;
/// Writes a child makes at most: far more than any kill point below, so a
/// child never finishes first however far it runs ahead of the pipe.
const WRITES: u64 = 40_000;
const KILLS: u32 = 200;
const CHILD: &str = "PAPR_SCM_DURABILITY_CHILD";

fn spec(pmem: bool) -> papr_scm::config::DeviceSpec {
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut c = NvdimmConfig::new(256 * M + LABEL, LABEL, uuid);
    c.kind = DeviceKind::SpaprNvdimm;
    c.pmem = pmem;
    Planner::new(MachineConfig::new(2 << 30, 4 << 30, 1))
        .unwrap()
        .plug(&c)
        .unwrap()
}

/// The value of write `i` of run `run`: never zero, different per run.
fn value(run: u64, i: u64) -> u64 {
    (run << 32 | i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// Write `i` goes to label offset 8·i modulo the area (later writes and
/// runs overwrite earlier ones, as relabelling does).
fn offset(i: u64) -> u64 {
    (i * 8) % LABEL
}

/// The child: writes through the register-level entry, prints "ack i"
/// after each H_SUCCESS (on a line of its own: libtest may have left
/// "test NAME ... " unfinished on stdout).
fn child(path: &str, run: u64) {
    let spec = spec(run % 8 == 7);
    let store = FileLabelStore::for_spec(path.as_ref(), &spec).unwrap();
    assert_eq!(
        store.durability(),
        if spec.pmem {
            Durability::EveryWrite
        } else {
            Durability::OnFlush
        }
    );
    let slots = SharedSlots::new(1);
    slots
        .insert(Device::new(spec, store))
        .unwrap_or_else(|_| panic!("slot 0 is free"));
    let m = Machine::new(&MachineConfig::new(2 << 30, 4 << 30, 1), slots);
    for i in 0..WRITES {
        let mut regs = [0x9000_0000, offset(i), value(run, i), 8, 0, 0, 0, 0, 0];
        assert_eq!(m.handle(H_SCM_WRITE_METADATA, &mut regs), Some(H_SUCCESS));
        println!("\nack {i}");
    }
}

/// A small deterministic generator: the kill points differ per run and
/// stay reproducible.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn test_acknowledged_label_writes_survive_sigkill() {
    if let Ok(arg) = std::env::var(CHILD) {
        let (path, run) = arg.split_once(',').unwrap();
        child(path, run.parse().unwrap());
        return;
    }
    // QEMU's rule: a pmem=on backend persists each label write.
    assert_eq!(Durability::for_spec(&spec(true)), Durability::EveryWrite);
    assert_eq!(Durability::for_spec(&spec(false)), Durability::OnFlush);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nvdimm.img");
    let mut rng = Lcg(0x5eed);
    // The label area as the acknowledged writes left it.
    let mut want = vec![0u8; LABEL as usize];
    let label_at = 256 * M;
    let mut early = 0;
    for run in 0..u64::from(KILLS) {
        // Per-write syncs (every 8th run, pmem=on) are slow: stop sooner.
        let kill_after = rng.next(if run % 8 == 7 { 300 } else { 8_000 });
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "test_acknowledged_label_writes_survive_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, format!("{},{run}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut acked = Vec::new();
        let mut line = String::new();
        while acked.len() as u64 <= kill_after {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(i) = line.trim().strip_prefix("ack ") {
                acked.push(i.parse::<u64>().unwrap());
            }
        }
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        // Acks the child printed before it died but we had not read yet.
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        acked.extend(
            rest.lines()
                .filter_map(|l| l.strip_prefix("ack ")?.parse::<u64>().ok()),
        );
        early += u32::from(acked.len() as u64 == WRITES);
        let f = std::fs::File::open(&path).unwrap();
        let mut got = vec![0u8; LABEL as usize];
        f.read_exact_at(&mut got, label_at).unwrap();
        // The write after the last ack may or may not have landed.
        let next = acked.len() as u64;
        for &i in &acked {
            let at = offset(i) as usize;
            want[at..at + 8].copy_from_slice(&value(run, i).to_be_bytes());
        }
        if next < WRITES {
            let at = offset(next) as usize;
            if got[at..at + 8] == value(run, next).to_be_bytes() {
                want[at..at + 8].copy_from_slice(&got[at..at + 8]);
            }
        }
        if let Some(at) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!("{}", format!(
                "run {run}: label byte {at:#x} is {:#x}, the acknowledged writes say {:#x} ({} acks)",
                got[at],
                want[at],
                acked.len(),
            ) + &format!(" first {:?} last {:?}", acked.first(), acked.last()));
        }
        // The data region next to the label is untouched.
        let mut before = vec![0u8; 4096];
        f.read_exact_at(&mut before, label_at - 4096).unwrap();
        assert!(
            before.iter().all(|&b| b == 0),
            "run {run}: data region changed"
        );
        assert_eq!(f.metadata().unwrap().len(), 256 * M + LABEL);
    }
    // Most runs were really cut short.
    assert!(
        early < KILLS / 10,
        "{early} of {KILLS} runs finished before the kill"
    );
}
