// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Several vCPU threads hammer several devices at once through one shared
//! `Machine`: per-slot locks, no lost updates, consistent state.

#![cfg(feature = "std")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig};
use papr_scm::hcall::*;
use papr_scm::host::{BindEvents, FlushExecutor, GuestMemory, StatsSource};
use papr_scm::machine::Machine;

const K: u64 = 1024;
const G: u64 = 1024 * 1024 * K;
const DEVICES: u64 = 4;
const THREADS: u64 = 8;
const ROUNDS: u64 = 2_000;

#[derive(Default)]
struct CountingHost {
    bound: AtomicU64,
    unbound: AtomicU64,
    flushes: AtomicU64,
}
impl GuestMemory for CountingHost {}
impl StatsSource for CountingHost {}
impl FlushExecutor for CountingHost {
    fn start_flush(&self, _slot: u32, _token: u64) -> papr_scm::host::FlushStatus {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        papr_scm::host::FlushStatus::Done(true)
    }
}
impl BindEvents for CountingHost {
    fn bound(&self, _slot: u32, _addr: u64, blocks: u64) {
        self.bound.fetch_add(blocks, Ordering::Relaxed);
    }
    fn unbound(&self, _slot: u32, _addr: u64, blocks: u64) {
        self.unbound.fetch_add(blocks, Ordering::Relaxed);
    }
}

#[test]
fn test_threads_hammer_devices_concurrently() {
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut dev = NvdimmConfig::new(G + 128 * K, 128 * K, uuid);
    dev.kind = DeviceKind::SpaprNvdimm;
    let devs = vec![dev; DEVICES as usize];
    let m = Arc::new(
        Machine::from_config(
            &MachineConfig::new(2 * G, 8 * G, 4),
            &devs,
            CountingHost::default(),
        )
        .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = Arc::clone(&m);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let drc = 0x9000_0000 + t % DEVICES;
                // Each thread owns 8 label bytes of its device.
                let off = (t / DEVICES) * 8;
                barrier.wait();
                for i in 0..ROUNDS {
                    let mut r = [drc, off, i, 8, 0, 0, 0, 0, 0];
                    assert_eq!(m.handle(H_SCM_WRITE_METADATA, &mut r), Some(H_SUCCESS));
                    let mut r = [drc, off, 8, 0, 0, 0, 0, 0, 0];
                    assert_eq!(m.handle(H_SCM_READ_METADATA, &mut r), Some(H_SUCCESS));
                    assert_eq!(r[0], i, "another thread's write leaked in");
                    // Bind/unbind races between the two threads of a device:
                    // each call sees a consistent state.
                    let mut r = [drc, 0, 4, u64::MAX, 0, 0, 0, 0, 0];
                    let s = m.handle(H_SCM_BIND_MEM, &mut r).unwrap();
                    assert!(s == H_SUCCESS || s == H_OVERLAP, "{s}");
                    let mut r = [H_UNBIND_SCOPE_DRC, drc, 0, 0, 0, 0, 0, 0, 0];
                    assert_eq!(m.handle(H_SCM_UNBIND_ALL, &mut r), Some(H_SUCCESS));
                    let mut r = [drc, 0, 0, 0, 0, 0, 0, 0, 0];
                    assert_eq!(m.handle(H_SCM_FLUSH, &mut r), Some(H_SUCCESS));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let host = m.host();
    // Every bound block was unbound exactly once: no torn bind state.
    assert_eq!(
        host.bound.load(Ordering::Relaxed),
        host.unbound.load(Ordering::Relaxed)
    );
    assert!(host.bound.load(Ordering::Relaxed) >= 4 * ROUNDS);
    assert_eq!(host.flushes.load(Ordering::Relaxed), THREADS * ROUNDS);
    for slot in 0..DEVICES as u32 {
        assert_eq!(m.with_device(slot, |d| d.bindings().count()), Some(0));
    }
}

#[test]
fn test_machine_is_send_and_sync() {
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<
        Machine<papr_scm::machine::SharedSlots<papr_scm::label::VecLabelStore>, CountingHost>,
    >();
}
