// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The hcall path allocates nothing: every SCM hcall, in both profiles,
//! success and error paths, under a counting allocator.

#![cfg(feature = "std")]

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Profile};
use papr_scm::hcall::*;
use papr_scm::host::GuestMemory;
use papr_scm::machine::Machine;
use papr_scm::replay::{ReplayHost, SparseRam};

const K: u64 = 1024;
const G: u64 = 1024 * 1024 * K;

fn machine(
    profile: Profile,
) -> Machine<papr_scm::machine::SharedSlots<papr_scm::label::VecLabelStore>, ReplayHost> {
    let mut m = MachineConfig::new(2 * G, 8 * G, 4);
    m.profile = profile;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut flushy = NvdimmConfig::new(G / 4 + 128 * K, 128 * K, uuid);
    flushy.kind = DeviceKind::SpaprNvdimm;
    let host = ReplayHost::new(SparseRam::new(2 * G));
    let m = Machine::from_config(
        &m,
        &[NvdimmConfig::new(G + 128 * K, 128 * K, uuid), flushy],
        host,
    )
    .unwrap();
    // Touch the stats buffer pages now: the sparse RAM allocates a page on
    // first write, which is the host's memory, not the hcall path's.
    let mut hdr = *b"SCMSTATS\0\0\0\x01\0\0\0\0";
    m.host().ram.write_guest(0x1000, &[0; 272]).unwrap();
    m.host().ram.write_guest(0x1000, &hdr).unwrap();
    hdr[15] = 1;
    m.host().ram.write_guest(0x2000, &hdr).unwrap();
    m.host()
        .ram
        .write_guest(0x2010, b"MemLife \0\0\0\0\0\0\0\0")
        .unwrap();
    m
}

fn exercise(
    m: &Machine<papr_scm::machine::SharedSlots<papr_scm::label::VecLabelStore>, ReplayHost>,
) -> u32 {
    let calls: &[(u64, [u64; 9])] = &[
        (H_SCM_BIND_MEM, [0x9000_0000, 0, 4, u64::MAX, 0, 0, 0, 0, 0]),
        (H_SCM_BIND_MEM, [0x9000_0000, 0, 4, u64::MAX, 0, 0, 0, 0, 0]),
        (H_SCM_BIND_MEM, [0x9000_0000, 9, 4, u64::MAX, 0, 0, 0, 0, 0]),
        (
            H_SCM_QUERY_BLOCK_MEM_BINDING,
            [0x9000_0000, 3, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            H_SCM_QUERY_LOGICAL_MEM_BINDING,
            [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            H_SCM_READ_METADATA,
            [0x9000_0000, 0x1fff8, 8, 0, 0, 0, 0, 0, 0],
        ),
        (H_SCM_READ_METADATA, [0x9000_0000, 0, 3, 0, 0, 0, 0, 0, 0]),
        (
            H_SCM_WRITE_METADATA,
            [0x9000_0000, 5, 0xabcd, 2, 0, 0, 0, 0, 0],
        ),
        (
            H_SCM_WRITE_METADATA,
            [0x9000_0000, 5, 0xabcdef, 2, 0, 0, 0, 0, 0],
        ),
        (H_SCM_HEALTH, [0x9000_0001, 0, 0, 0, 0, 0, 0, 0, 0]),
        (H_SCM_HEALTH, [0x1234, 0, 0, 0, 0, 0, 0, 0, 0]),
        (
            H_SCM_PERFORMANCE_STATS,
            [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            H_SCM_PERFORMANCE_STATS,
            [0x9000_0000, 0x1000, 272, 0, 0, 0, 0, 0, 0],
        ),
        (
            H_SCM_PERFORMANCE_STATS,
            [0x9000_0000, 0x2000, 32, 0, 0, 0, 0, 0, 0],
        ),
        (
            H_SCM_PERFORMANCE_STATS,
            [0x9000_0000, 0xffff_0000_0000, 32, 0, 0, 0, 0, 0, 0],
        ),
        (H_SCM_FLUSH, [0x9000_0001, 0, 0, 0, 0, 0, 0, 0, 0]),
        (H_SCM_FLUSH, [0x9000_0001, 1, 0, 0, 0, 0, 0, 0, 0]),
        (H_SCM_FLUSH, [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0]),
        (
            H_SCM_UNBIND_MEM,
            [0x9000_0000, 0x9000_0000, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            H_SCM_UNBIND_MEM,
            [0x9000_0000, 0xffff_ffff_f000_0000, 2, 0, 0, 0, 0, 0, 0],
        ),
        (H_SCM_UNBIND_ALL, [2, 0x9000_0000, 0, 0, 0, 0, 0, 0, 0]),
        (H_SCM_UNBIND_ALL, [1, 0, 0, 0, 0, 0, 0, 0, 0]),
        (H_SCM_UNBIND_ALL, [9, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x58, [0; 9]),
    ];
    let mut handled = 0;
    for (op, regs) in calls {
        let mut r = *regs;
        if m.handle(*op, &mut r).is_some() {
            handled += 1;
        }
    }
    handled
}

#[test]
fn test_hcall_path_allocates_nothing() {
    // The counter does count: a Box is one allocation.
    let probe = allocation_counter::measure(|| {
        std::hint::black_box(Box::new(1u64));
    });
    assert_eq!(probe.count_total, 1);

    for profile in [Profile::Qemu, Profile::Papr] {
        let m = machine(profile);
        let mut handled = 0;
        let info = allocation_counter::measure(|| {
            for _ in 0..100 {
                handled += exercise(&m);
            }
        });
        assert_eq!(handled, 2300, "{profile:?}");
        assert_eq!(info.count_total, 0, "{profile:?}: {info:?}");
    }
}

#[test]
fn test_rtas_path_allocates_nothing() {
    use papr_scm::rtas::RtasService;
    use papr_scm::rtas_error_log::EventQueue;
    for profile in [Profile::Qemu, Profile::Papr] {
        let m = machine(profile);
        // The work area and event buffer pages, touched beforehand (the
        // sparse RAM's first write allocates; that is the host's memory).
        m.host().ram.write_guest(0x3000, &[0; 4096]).unwrap();
        m.host().ram.write_guest(0x5000, &[0; 128]).unwrap();
        m.host()
            .ram
            .write_guest(0x3000, &0x9000_0000u32.to_be_bytes())
            .unwrap();
        let mut q = EventQueue::new();
        q.cas(true);
        let mut unplugs = 0;
        let info = allocation_counter::measure(|| {
            // A remove event for a configured device, taken by check-exception.
            if m.unplug(0, &mut q).is_ok() {
                unplugs += 1;
            }
            let calls: &[(RtasService, &[u32], usize)] = &[
                (
                    RtasService::CheckException,
                    &[0, 0, 0x1000_0000, 0, 0x5000, 2048],
                    1,
                ),
                (
                    RtasService::CheckException,
                    &[0, 0, 0x1000_0000, 0, 0x5000, 2048],
                    1,
                ),
                (RtasService::EventScan, &[0, 0, 0, 0], 1),
                (RtasService::GetSensorState, &[9003, 0x9000_0000], 2),
                (RtasService::SetIndicator, &[9001, 0x9000_0000, 1], 1),
                (RtasService::IbmConfigureConnector, &[0x3000, 0], 1),
                (RtasService::IbmConfigureConnector, &[0x3000, 0], 1),
                (RtasService::SetIndicator, &[9002, 0x9000_0000, 1], 1),
                (RtasService::SetIndicator, &[9003, 0x9000_0003, 1], 1),
                (RtasService::SetIndicator, &[9003, 0x8000_0000, 1], 1),
            ];
            for _ in 0..50 {
                for (s, args, nret) in calls {
                    let mut rets = [0u32; 2];
                    let _ = m.rtas(*s, args, &mut rets[..*nret], &mut q);
                }
            }
        });
        assert_eq!(unplugs, 1);
        assert_eq!(info.count_total, 0, "{profile:?}: {info:?}");
    }
}

/// A host whose flush start holds its slot's lock for a while when asked
/// (a slow executor), so other vCPUs wait for that slot.
#[derive(Default)]
struct SlowStart {
    hold: std::sync::atomic::AtomicBool,
    holding: std::sync::atomic::AtomicBool,
}
impl papr_scm::host::GuestMemory for SlowStart {}
impl papr_scm::host::BindEvents for SlowStart {}
impl papr_scm::host::StatsSource for SlowStart {}
impl papr_scm::host::EventSignal for SlowStart {}
impl papr_scm::host::FlushExecutor for SlowStart {
    fn flushes_data(&self) -> bool {
        true
    }
    fn start_flush(&self, _slot: u32, _token: u64) -> papr_scm::host::FlushStatus {
        use std::sync::atomic::Ordering::SeqCst;
        if self.hold.load(SeqCst) {
            self.holding.store(true, SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(30));
            self.holding.store(false, SeqCst);
        }
        papr_scm::host::FlushStatus::Done(true)
    }
}

/// Issue 23, defect 10: "no allocation on the hcall path" held only
/// uncontended. The first time a thread waits on a slot's lock,
/// parking_lot records it and grows its process-wide table (two
/// allocations). `SharedSlots::reserve_waiters`, called before the vCPU
/// threads start, sizes the table for them: then fresh vCPU threads that
/// wait on a busy slot, the first time and every time, allocate nothing.
#[test]
fn test_contended_hcalls_allocate_nothing_once_waiters_are_reserved() {
    use papr_scm::machine::SharedSlots;
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::{Arc, Barrier};
    const VCPUS: usize = 6;
    // Every thread that will wait: the vCPUs, the holder, and room for
    // the test harness's own threads.
    SharedSlots::<papr_scm::label::VecLabelStore>::reserve_waiters(VCPUS + 8);
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut dev = NvdimmConfig::new(G / 4 + 128 * K, 128 * K, uuid);
    dev.kind = DeviceKind::SpaprNvdimm;
    let m = Arc::new(
        Machine::from_config(
            &MachineConfig::new(2 * G, 8 * G, 2),
            &[dev],
            SlowStart::default(),
        )
        .unwrap(),
    );
    m.host().hold.store(true, SeqCst);
    let start = Arc::new(Barrier::new(VCPUS + 1));
    let vcpus: Vec<_> = (0..VCPUS)
        .map(|_| {
            let (m, start) = (Arc::clone(&m), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut total = 0;
                for _ in 0..3 {
                    start.wait();
                    while !m.host().holding.load(SeqCst) {
                        std::hint::spin_loop();
                    }
                    // Slot 0 is locked for 30 ms: this call waits.
                    let info = allocation_counter::measure(|| {
                        let mut r = [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0];
                        assert_eq!(m.handle(H_SCM_HEALTH, &mut r), Some(H_SUCCESS));
                    });
                    total += info.count_total;
                }
                total
            })
        })
        .collect();
    for _ in 0..3 {
        start.wait();
        let mut r = [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(m.handle(H_SCM_FLUSH, &mut r), Some(H_SUCCESS));
    }
    let allocations: u64 = vcpus.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(allocations, 0, "contended hcalls allocated");
}
