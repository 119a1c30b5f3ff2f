// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Several vCPU threads hammer several devices at once through one shared
//! `Machine`: per-slot locks, no lost updates, consistent state.

#![cfg(feature = "std")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig};
use papr_scm::hcall::*;
use papr_scm::host::{BindEvents, EventSignal, FlushExecutor, GuestMemory, StatsSource};
use papr_scm::machine::Machine;
use papr_scm::rtas_error_log::EventQueue;

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
impl EventSignal for CountingHost {}
impl FlushExecutor for CountingHost {
    // A test executor: it completes every flush (there is no file).
    fn flushes_data(&self) -> bool {
        true
    }
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

/// Eight threads mix per-device calls (label writes at their own offsets,
/// binds, unbinds, flushes polled to completion) with cross-device calls
/// (QUERY_LOGICAL over every device, UNBIND_ALL of the partition, HEALTH),
/// machine resets, and a device unplugged from and plugged back into the
/// slot table while other threads call it. Afterwards each device's label
/// equals a serial replay of every write made to it, its flush counter
/// counts every flush started, and every block bound was unbound or is
/// still bound.
#[test]
fn test_mixed_cross_device_calls_reset_and_replug() {
    use papr_scm::label::{LabelStore, VecLabelStore};
    use std::sync::Mutex;

    const SLOTS: u32 = 5;
    const ROUNDS: u64 = 1_500;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut dev = NvdimmConfig::new(G + 128 * K, 128 * K, uuid);
    dev.kind = DeviceKind::SpaprNvdimm;
    let devs = vec![dev; SLOTS as usize];
    let m = Arc::new(
        Machine::from_config(
            &MachineConfig::new(2 * G, 8 * G, SLOTS),
            &devs,
            CountingHost::default(),
        )
        .unwrap(),
    );
    let spare = m.with_device(SLOTS - 1, |d| *d.spec()).unwrap();
    // (slot, offset, value) of every acknowledged write, per thread.
    let log = Arc::new(Mutex::new(Vec::new()));
    let starts = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let (m, log, starts, barrier) =
                (m.clone(), log.clone(), starts.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                barrier.wait();
                for i in 0..ROUNDS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match t {
                        0..=5 => {
                            // Devices 0..=3 only: slot 4 comes and goes.
                            let slot = (t + i) % 4;
                            let drc = 0x9000_0000 + slot;
                            let off = t * 64 + (x % 8) * 8;
                            let mut r = [drc, off, x, 8, 0, 0, 0, 0, 0];
                            assert_eq!(m.handle(H_SCM_WRITE_METADATA, &mut r), Some(H_SUCCESS));
                            mine.push((slot as u32, off, x));
                            let mut r = [drc, x % 4, 1, u64::MAX, 0, 0, 0, 0, 0];
                            let s = m.handle(H_SCM_BIND_MEM, &mut r).unwrap();
                            assert!(s == H_SUCCESS || s == H_OVERLAP, "{s}");
                            let mut r = [
                                drc,
                                0x8000_0000 + slot * G + (x % 4) * (256 << 20),
                                1,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                            ];
                            assert_eq!(m.handle(H_SCM_UNBIND_MEM, &mut r), Some(H_SUCCESS));
                            let mut r = [drc, 0, 0, 0, 0, 0, 0, 0, 0];
                            let s = m.handle(H_SCM_FLUSH, &mut r).unwrap();
                            starts.fetch_add(1, Ordering::Relaxed);
                            // CountingHost completes at once, so the
                            // papr profile answers at once.
                            assert_eq!(s, H_SUCCESS);
                        }
                        6 => {
                            let mut r =
                                [0x8000_0000 + (x % 20) * (256 << 20), 0, 0, 0, 0, 0, 0, 0, 0];
                            let s = m.handle(H_SCM_QUERY_LOGICAL_MEM_BINDING, &mut r).unwrap();
                            assert!(s == H_SUCCESS || s == H_NOT_FOUND, "{s}");
                            if i % 50 == 0 {
                                let mut r = [H_UNBIND_SCOPE_ALL, 0, 0, 0, 0, 0, 0, 0, 0];
                                assert_eq!(m.handle(H_SCM_UNBIND_ALL, &mut r), Some(H_SUCCESS));
                            }
                            let mut r = [0x9000_0000 + x % 5, 0, 0, 0, 0, 0, 0, 0, 0];
                            let s = m.handle(H_SCM_HEALTH, &mut r).unwrap();
                            assert!(s == H_SUCCESS || s == H_PARAMETER, "{s}");
                        }
                        _ => {
                            if i % 100 == 0 {
                                m.reset(&mut EventQueue::new(), |_| {});
                            }
                            // Unplug slot 4 from the table and plug it back.
                            if let Some(d) = m.slots().remove(SLOTS - 1) {
                                let mut r = [0x9000_0004, 0, 8, 0, 0, 0, 0, 0, 0];
                                assert_eq!(
                                    m.handle(H_SCM_READ_METADATA, &mut r),
                                    Some(H_PARAMETER)
                                );
                                m.slots().insert(d).unwrap();
                            }
                            let mut r = [0x9000_0004, 0, 8, 0, 0, 0, 0, 0, 0];
                            assert_eq!(m.handle(H_SCM_READ_METADATA, &mut r), Some(H_SUCCESS));
                        }
                    }
                }
                log.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // The serial replay: every logged write, thread after thread, into
    // fresh stores. Threads own disjoint offsets, so any interleaving of
    // the concurrent run must end in these bytes.
    let mut serial: Vec<VecLabelStore> = (0..4).map(|_| VecLabelStore::new(128 << 10)).collect();
    for &(slot, off, v) in log.lock().unwrap().iter() {
        serial[slot as usize].write(off, &v.to_be_bytes()).unwrap();
    }
    for slot in 0..4u32 {
        m.with_device(slot, |d| {
            let mut got = vec![0u8; 128 << 10];
            d.label().read(0, &mut got).unwrap();
            assert!(
                got.as_slice() == serial[slot as usize].as_slice(),
                "slot {slot}: label"
            );
        })
        .unwrap();
    }
    let tokens: u64 = (0..SLOTS)
        .filter_map(|s| m.with_device(s, |d| d.state().flush_token))
        .sum();
    assert_eq!(tokens, starts.load(Ordering::Relaxed));
    let still: u64 = (0..SLOTS)
        .filter_map(|s| m.with_device(s, |d| d.bindings().count()))
        .sum();
    let host = m.host();
    assert_eq!(
        host.bound.load(Ordering::Relaxed),
        host.unbound.load(Ordering::Relaxed) + still
    );
    assert_eq!(m.with_device(SLOTS - 1, |d| *d.spec()), Some(spare));
}
