// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The machine's hcall checks, in QEMU's order, through the typed calls.

use super::*;
use crate::rtas_error_log::EventQueue;
use core::cell::RefCell;

/// The machine of [`specs`] in `profile`.
fn cfg(profile: Profile) -> MachineConfig {
    let mut m = MachineConfig::new(2 * G, 8 * G, 3);
    m.profile = profile;
    m
}
use crate::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Planner};
use crate::device::{BindProgress, DeviceState, FlushRecord, StateError};
use crate::label::{LabelError, SliceLabelStore};

const K: u64 = 1024;
const M: u64 = 1024 * K;
const G: u64 = 1024 * M;
const D0: u64 = 0x9000_0000;
const D1: u64 = 0x9000_0001;

/// A label store whose every access fails, like a dead backing file.
struct Broken;
impl LabelStore for Broken {
    fn size(&self) -> u64 {
        128 * K
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
        Err(LabelError::OutOfRange {
            offset,
            len: buf.len(),
            size: 0,
        })
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
        Err(LabelError::OutOfRange {
            offset,
            len: data.len(),
            size: 0,
        })
    }
    fn flush(&mut self) -> Result<(), LabelError> {
        Err(LabelError::OutOfRange {
            offset: 0,
            len: 0,
            size: 0,
        })
    }
}

fn specs() -> [crate::config::DeviceSpec; 2] {
    let mut p = Planner::new(MachineConfig::new(2 * G, 8 * G, 3)).unwrap();
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let a = p
        .plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))
        .unwrap();
    let mut c = NvdimmConfig::new(256 * M + 128 * K, 128 * K, uuid);
    c.kind = DeviceKind::SpaprNvdimm;
    c.readonly = true;
    c.unarmed = true;
    let b = p.plug(&c).unwrap();
    [a, b]
}

/// Runs `f` on a machine with a 4-block nvdimm in slot 0, a read-only
/// 1-block spapr-nvdimm in slot 1 and an empty slot 2.
fn with_machine(profile: Profile, f: impl FnOnce(&Machine<LocalSlots<'_, SliceLabelStore<'_>>>)) {
    let [a, b] = specs();
    let (mut la, mut lb) = ([0u8; 128 * 1024], [0u8; 128 * 1024]);
    let cells = [
        RefCell::new(Some(Device::new(a, SliceLabelStore::new(&mut la)))),
        RefCell::new(Some(Device::new(b, SliceLabelStore::new(&mut lb)))),
        RefCell::new(None),
    ];
    f(&Machine::new(&cfg(profile), LocalSlots::new(&cells)));
}

fn both(f: impl Fn(&Machine<LocalSlots<'_, SliceLabelStore<'_>>>)) {
    with_machine(Profile::Qemu, &f);
    with_machine(Profile::Papr, &f);
}

fn st(o: Outcome) -> ReturnCode {
    o.status
}

#[test]
fn test_read_metadata_check_order() {
    both(|m| {
        // DRC before length before range.
        assert_eq!(
            st(m.h_scm_read_metadata(0x9000_0002, u64::MAX, 3)),
            H_PARAMETER
        );
        assert_eq!(st(m.h_scm_read_metadata(D0, u64::MAX, 3)), H_P3);
        assert_eq!(st(m.h_scm_read_metadata(D0, u64::MAX, 8)), H_P2);
        assert_eq!(st(m.h_scm_read_metadata(D0, 128 * K - 8, 8)), H_SUCCESS);
        assert_eq!(m.h_scm_read_metadata(D0, 0, 8).out, Outputs::r4(0));
    });
}

#[test]
fn test_write_metadata_check_order() {
    both(|m| {
        assert_eq!(
            st(m.h_scm_write_metadata(0x9000_0002, u64::MAX, u64::MAX, 3)),
            H_PARAMETER
        );
        assert_eq!(st(m.h_scm_write_metadata(D1, u64::MAX, u64::MAX, 3)), H_P4);
        assert_eq!(st(m.h_scm_write_metadata(D1, 0, 0, 1)), H_P2); // read-only
        assert_eq!(st(m.h_scm_write_metadata(D0, u64::MAX, 0, 1)), H_P2);
        assert_eq!(st(m.h_scm_write_metadata(D0, 0, 0x100, 1)), H_P2);
        assert_eq!(
            m.h_scm_write_metadata(D0, 0, 0xA1B2, 2),
            Outcome::status(H_SUCCESS)
        );
        assert_eq!(m.h_scm_read_metadata(D0, 0, 1).out.r4, Some(0xA1));
        assert_eq!(m.h_scm_read_metadata(D0, 1, 1).out.r4, Some(0xB2));
    });
}

#[test]
fn test_bind_check_order() {
    both(|m| {
        assert_eq!(st(m.h_scm_bind_mem(0x9000_0002, 9, 9, 0, 1)), H_PARAMETER);
        assert_eq!(st(m.h_scm_bind_mem(D0, 9, 9, 0, 1)), H_P5);
        assert_eq!(st(m.h_scm_bind_mem(D0, 9, 9, 0, 0)), H_OVERLAP);
        assert_eq!(st(m.h_scm_bind_mem(D0, 5, 9, u64::MAX, 0)), H_P2);
        assert_eq!(st(m.h_scm_bind_mem(D0, 4, 1, u64::MAX, 0)), H_P3);
        assert_eq!(st(m.h_scm_bind_mem(D0, 1, u64::MAX, u64::MAX, 0)), H_P3);
        let o = m.h_scm_bind_mem(D0, 1, 3, u64::MAX, 0);
        assert_eq!(
            (o.status, o.out.r5, o.out.r6),
            (H_SUCCESS, Some(0x9000_0000), Some(3))
        );
    });
    with_machine(Profile::Qemu, |m| {
        assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).out.r4, None);
        assert_eq!(st(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0)), H_SUCCESS);
    });
    with_machine(Profile::Papr, |m| {
        assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).out.r4, Some(0));
        assert_eq!(st(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0)), H_OVERLAP);
        assert_eq!(
            st(m.h_scm_bind_mem(1 << 32 | D0, 0, 4, u64::MAX, 0)),
            H_PARAMETER
        );
    });
}

#[test]
fn test_unbind_mem_check_order() {
    both(|m| {
        assert_eq!(st(m.h_scm_unbind_mem(0x9000_0002, 1, 0, 1)), H_PARAMETER);
        assert_eq!(st(m.h_scm_unbind_mem(D0, 1, 0, 1)), H_P4);
        assert_eq!(st(m.h_scm_unbind_mem(D0, 1, 0, 0)), H_P2);
        assert_eq!(st(m.h_scm_unbind_mem(D0, 0x8000_0000, 0, 0)), H_P3);
        assert_eq!(st(m.h_scm_unbind_mem(D0, 0x8000_0000, 1 << 36, 0)), H_P3);
        assert_eq!(
            st(m.h_scm_unbind_mem(D0, 0xFFFF_FFFF_F000_0000, 2, 0)),
            H_P3
        );
        assert_eq!(st(m.h_scm_unbind_mem(D0, 0x8000_0000, 5, 0)), H_P3);
        let o = m.h_scm_unbind_mem(D0, 0x8000_0000, 4, 0);
        assert_eq!((o.status, o.out.r5), (H_SUCCESS, Some(4)));
    });
}

#[test]
fn test_unbind_all_check_order() {
    both(|m| {
        assert_eq!(st(m.h_scm_unbind_all(9, 0x9000_0002, 1)), H_P4);
        assert_eq!(st(m.h_scm_unbind_all(2, 0x9000_0002, 0)), H_P2);
        assert_eq!(st(m.h_scm_unbind_all(9, D0, 0)), H_PARAMETER);
        assert_eq!(st(m.h_scm_unbind_all(1, 0, 0)), H_SUCCESS);
    });
    with_machine(Profile::Qemu, |m| {
        assert_eq!(m.h_scm_unbind_all(1, 0, 0).out.r5, Some(5));
        assert_eq!(m.h_scm_unbind_all(2, D0, 0).out.r5, Some(4));
    });
    with_machine(Profile::Papr, |m| {
        m.h_scm_bind_mem(D0, 0, 2, u64::MAX, 0);
        m.h_scm_bind_mem(D1, 0, 1, u64::MAX, 0);
        assert_eq!(m.h_scm_unbind_all(1, 0, 0).out.r5, Some(3));
        assert_eq!(m.h_scm_unbind_all(2, D0, 0).out.r5, Some(0));
    });
}

#[test]
fn test_query_calls() {
    with_machine(Profile::Qemu, |m| {
        assert_eq!(
            st(m.h_scm_query_block_mem_binding(0x9000_0002, 0)),
            H_FUNCTION
        );
        assert_eq!(
            st(m.h_scm_query_logical_mem_binding(0x8000_0000)),
            H_FUNCTION
        );
        assert_eq!(st(m.h_scm_performance_stats(D0, 0, 0)), H_FUNCTION);
    });
    with_machine(Profile::Papr, |m| {
        assert_eq!(
            st(m.h_scm_query_block_mem_binding(0x9000_0002, 9)),
            H_PARAMETER
        );
        assert_eq!(st(m.h_scm_query_block_mem_binding(D0, 4)), H_P2);
        assert_eq!(st(m.h_scm_query_block_mem_binding(D0, 0)), H_NOT_FOUND);
        m.h_scm_bind_mem(D0, 2, 2, u64::MAX, 0);
        assert_eq!(
            m.h_scm_query_block_mem_binding(D0, 3).out.r4,
            Some(0xB000_0000)
        );
        let o = m.h_scm_query_logical_mem_binding(0xA000_0001);
        assert_eq!((o.out.r4, o.out.r5), (Some(D0), Some(2)));
        assert_eq!(
            st(m.h_scm_query_logical_mem_binding(0x8000_0000)),
            H_NOT_FOUND
        );
    });
}

#[test]
fn test_health() {
    with_machine(Profile::Qemu, |m| {
        assert_eq!(st(m.h_scm_health(0x9000_0002)), H_PARAMETER);
        m.with_device(0, |d| d.inject_health(HealthBits::PAPR_PMEM_HEALTH_FATAL));
        let o = m.h_scm_health(D0);
        assert_eq!((o.out.r4, o.out.r5), (Some(0), Some(1 << 63)));
        assert_eq!(m.h_scm_health(D1).out.r4, Some(1 << 63));
    });
    with_machine(Profile::Papr, |m| {
        m.with_device(0, |d| d.inject_health(HealthBits::PAPR_PMEM_HEALTH_FATAL));
        let o = m.h_scm_health(D0);
        assert_eq!((o.out.r4, o.out.r5), (Some(1 << 58), Some(0xFFE0 << 48)));
        m.with_device(0, |d| d.clear_health(HealthBits::all()));
        assert_eq!(m.h_scm_health(D0).out.r4, Some(0));
    });
}

#[test]
fn test_flush_check_order() {
    both(|m| {
        assert_eq!(st(m.h_scm_flush(0x9000_0002, 0)), H_PARAMETER);
        assert_eq!(st(m.h_scm_flush(D0, 0)), H_PARAMETER); // plain nvdimm
        assert_eq!(st(m.h_scm_flush(D1, 5)), H_P2);
    });
    // The default executor finishes at once: papr answers at once, qemu
    // still says long-busy first.
    with_machine(Profile::Qemu, |m| {
        assert_eq!(
            m.h_scm_flush(D1, 0),
            Outcome::with(H_LONG_BUSY_ORDER_10_MSEC, Outputs::r4(1))
        );
        assert_eq!(st(m.h_scm_flush(D1, 1)), H_SUCCESS);
    });
    with_machine(Profile::Papr, |m| {
        assert_eq!(st(m.h_scm_flush(D1, 0)), H_SUCCESS);
        assert_eq!(st(m.h_scm_flush(D1, 1)), H_P2);
    });
}

#[test]
fn test_label_store_failure_is_h_hardware() {
    let [a, mut b] = specs();
    b.readonly = false;
    b.slot = 0;
    let _ = a;
    let cells = [RefCell::new(Some(Device::new(b, Broken)))];
    for p in [Profile::Qemu, Profile::Papr] {
        let m = Machine::new(&cfg(p), LocalSlots::new(&cells));
        assert_eq!(st(m.h_scm_read_metadata(D0, 0, 8)), H_HARDWARE);
        assert_eq!(st(m.h_scm_write_metadata(D0, 0, 0, 8)), H_HARDWARE);
        // A flush whose label sync fails reports H_HARDWARE.
        let o = m.h_scm_flush(D0, 0);
        let done = if o.status.is_long_busy() {
            st(m.h_scm_flush(D0, o.out.r4.unwrap()))
        } else {
            o.status
        };
        assert_eq!(done, H_HARDWARE);
    }
}

#[test]
fn test_handle_leaves_other_registers() {
    with_machine(Profile::Qemu, |m| {
        let mut r = [D0, 0, 4, u64::MAX, 0, 11, 12, 13, 14];
        assert_eq!(m.handle(H_SCM_BIND_MEM, &mut r), Some(H_SUCCESS));
        assert_eq!(r, [D0, 0x8000_0000, 4, u64::MAX, 0, 11, 12, 13, 14]);
        let mut r = [1; 9];
        assert_eq!(m.handle(0x58, &mut r), None);
        assert_eq!(r, [1; 9]);
    });
}

#[test]
fn test_reentrant_refcell_is_h_parameter_not_panic() {
    with_machine(Profile::Papr, |m| {
        m.with_device(0, |_| {
            assert_eq!(st(m.h_scm_health(D0)), H_PARAMETER);
        });
    });
}

#[test]
fn test_state_round_trip() {
    with_machine(Profile::Papr, |m| {
        m.h_scm_bind_mem(D0, 1, 2, u64::MAX, 0);
        m.with_device(0, |d| d.inject_health(HealthBits::PAPR_PMEM_EMPTY));
        let state = m.with_device(0, |d| d.state()).unwrap();
        let spec = m.with_device(0, |d| *d.spec()).unwrap();
        let mut buf = [0u8; 16];
        let d = Device::from_state(spec, SliceLabelStore::new(&mut buf), state).unwrap();
        assert_eq!(d.bindings().runs(), &[(1, 2)]);
        assert_eq!(d.health(Profile::Papr), HealthBits::PAPR_PMEM_EMPTY);
        let mut bad = state;
        bad.bindings = crate::device::Bindings::new();
        bad.bindings.insert(3, 2).unwrap();
        let mut buf = [0u8; 16];
        assert!(Device::from_state(spec, SliceLabelStore::new(&mut buf), bad).is_err());
    });
}

#[test]
fn test_sync_labels_reports_failing_stores() {
    let [a, b] = specs();
    let mut lb = [0u8; 128 * 1024];
    let broken = [
        RefCell::new(Some(Device::new(a, Broken))),
        RefCell::new(None),
    ];
    let m = Machine::new(&cfg(Profile::Papr), LocalSlots::new(&broken));
    assert_eq!(m.sync_labels().collect::<std::vec::Vec<_>>(), [0]);
    let fine = [RefCell::new(Some(Device::new(
        b,
        SliceLabelStore::new(&mut lb),
    )))];
    let m = Machine::new(&cfg(Profile::Papr), LocalSlots::new(&fine));
    assert_eq!(m.sync_labels().count(), 0);
}

/// A restored bind in progress with `done > count` made the next
/// continued bind overflow (a run of 2^64 - 4 blocks); every field that
/// a later hcall relies on is checked on restore.
#[test]
fn test_restore_refuses_inconsistent_state() {
    with_machine(Profile::Papr, |m| {
        m.with_device(0, |d| d.faults_mut().bind_budget = Some(1));
        let o = m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0);
        assert_eq!(o.status, H_BUSY);
        let good = m.with_device(0, |d| d.state()).unwrap();
        let spec = m.with_device(0, |d| *d.spec()).unwrap();
        let restore = |s: DeviceState| {
            let mut buf = [0u8; 16];
            Device::from_state(spec, SliceLabelStore::new(&mut buf), s).map(|_| ())
        };
        assert_eq!(restore(good), Ok(()));
        let p = good.bind_progress.unwrap();
        for (start, count, done) in [(0, 4, 8), (0, 4, 4), (3, 4, 1), (u64::MAX, 4, 0), (0, 0, 0)] {
            let mut bad = good;
            bad.bind_progress = Some(BindProgress {
                start,
                count,
                done,
                ..p
            });
            assert!(
                matches!(restore(bad), Err(StateError::BadBindProgress { .. })),
                "{start} {count} {done}"
            );
        }
        let mut bad = good;
        bad.bind_progress = Some(BindProgress { done: 2, ..p });
        assert_eq!(
            restore(bad),
            Err(StateError::BindProgressNotBound { start: 0, done: 2 })
        );
        let mut bad = good;
        bad.bind_progress = Some(BindProgress { token: 0, ..p });
        assert!(restore(bad).is_err());

        let rec = FlushRecord {
            token: 1,
            result: None,
            hold: 0,
            fresh: false,
            injected: None,
        };
        let mut bad = good;
        bad.flush_token = 1;
        bad.flushes[0] = Some(rec);
        bad.flushes[5] = Some(rec);
        assert_eq!(
            restore(bad),
            Err(StateError::DuplicateFlushToken { token: 1 })
        );
        bad.flushes[5] = Some(FlushRecord { token: 2, ..rec });
        assert_eq!(restore(bad), Err(StateError::BadFlushToken { token: 2 }));

        let mut bad = good;
        bad.faults.flush_order = H_BUSY;
        assert!(matches!(
            restore(bad),
            Err(StateError::BadFault {
                field: "flush_order",
                ..
            })
        ));
        let mut bad = good;
        bad.faults.bind_budget = Some(0);
        assert!(matches!(
            restore(bad),
            Err(StateError::BadFault {
                field: "bind_budget",
                ..
            })
        ));
    });
}

/// The guest's request count drove a loop of up to 2^32 - 1 entries
/// under the device lock; more entries than there are statistics is
/// H_P3 before any guest memory is touched.
#[test]
fn test_performance_stats_count_is_bounded() {
    use core::cell::Cell;
    struct Mem {
        count: u32,
        accesses: Cell<u32>,
    }
    impl crate::host::GuestMemory for Mem {
        fn has_memory(&self) -> bool {
            true
        }
        fn read_guest(
            &self,
            _gpa: u64,
            buf: &mut [u8],
        ) -> Result<(), crate::host::GuestMemoryError> {
            self.accesses.set(self.accesses.get() + 1);
            buf.fill(0);
            if buf.len() == 16 {
                buf[..8].copy_from_slice(&crate::stats::SCMSTATS_EYECATCHER);
                buf[8..12].copy_from_slice(&crate::stats::SCMSTATS_VERSION.to_be_bytes());
                buf[12..16].copy_from_slice(&self.count.to_be_bytes());
            } else {
                buf.copy_from_slice(&crate::stats::STAT_IDS[0][..buf.len()]);
            }
            Ok(())
        }
        fn write_guest(
            &self,
            _gpa: u64,
            _data: &[u8],
        ) -> Result<(), crate::host::GuestMemoryError> {
            self.accesses.set(self.accesses.get() + 1);
            Ok(())
        }
    }
    impl crate::host::FlushExecutor for Mem {}
    impl crate::host::BindEvents for Mem {}
    impl crate::host::StatsSource for Mem {}
    impl crate::host::EventSignal for Mem {}
    let [a, _] = specs();
    let mut la = [0u8; 128 * 1024];
    let cells = [RefCell::new(Some(Device::new(
        a,
        SliceLabelStore::new(&mut la),
    )))];
    for (count, want, accesses) in [(u32::MAX, H_P3, 1), (17, H_P3, 1), (16, H_SUCCESS, 33)] {
        let host = Mem {
            count,
            accesses: Cell::new(0),
        };
        let m = Machine::with_host(&cfg(Profile::Papr), LocalSlots::new(&cells), host);
        let o = m.h_scm_performance_stats(D0, 0x1000, u64::MAX - 0x1000);
        assert_eq!(o.status, want, "count {count}");
        assert_eq!(m.host().accesses.get(), accesses, "count {count}");
    }
}

/// The entry's table answers exactly the ten SCM opcodes, each through its
/// own handler (the same answer as the typed call), and "not mine" for
/// everything else: the gaps between them, misaligned opcodes, opcodes
/// below the first (the subtraction wraps) and far above the last.
#[test]
fn test_handle_owns_exactly_the_scm_opcodes() {
    let ops = (0..0x2000u64).chain([
        u64::MAX,
        u64::MAX - 3,
        H_SCM_READ_METADATA + (1 << 62),
        H_SCM_READ_METADATA + (1 << 63),
        H_SCM_READ_METADATA.wrapping_sub(4),
    ]);
    for op in ops {
        let scm = SCM_HCALLS.iter().any(|&(o, _)| o == op);
        for profile in [Profile::Qemu, Profile::Papr] {
            // Arguments that succeed for most calls: device 0, 8 bytes at 0,
            // the whole device, scope DRC.
            let regs: Regs = match op {
                H_SCM_UNBIND_ALL => [H_UNBIND_SCOPE_DRC, D0, 0, 0, 0, 0, 0, 0, 0],
                H_SCM_BIND_MEM => [D0, 0, 4, u64::MAX, 0, 0, 0, 0, 0],
                H_SCM_QUERY_LOGICAL_MEM_BINDING => [2 * G, 0, 0, 0, 0, 0, 0, 0, 0],
                _ => [D0, 0, 8, 8, 0, 0, 0, 0, 0],
            };
            let mut by_regs = regs;
            let mut answer = None;
            with_machine(profile, |m| answer = m.handle(op, &mut by_regs));
            assert_eq!(answer.is_some(), scm, "opcode {op:#x}");
            if let Some(req) = Request::decode(op, &regs) {
                let mut typed = None;
                with_machine(profile, |m| typed = Some(m.call(req)));
                let typed = typed.unwrap();
                assert_eq!(answer, Some(typed.status), "opcode {op:#x}");
                let mut want = regs;
                typed.out.apply(&mut want);
                assert_eq!(by_regs, want, "opcode {op:#x}");
            } else {
                assert_eq!(by_regs, regs, "opcode {op:#x}: registers untouched");
            }
        }
    }
}

/// Issue 23, defect 3: `reindex` never rebuilt a [`LocalSlots`] table
/// after its first build (its generation is 0 for ever), so a device
/// plugged into such a machine, or put into a cell before the `reindex`
/// the docs ask for, was never found by QUERY_LOGICAL.
#[test]
fn test_local_slots_find_a_device_plugged_after_the_first_query() {
    let [a, b] = specs();
    let mut p = Planner::new(MachineConfig::new(2 * G, 8 * G, 3)).unwrap();
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    p.plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))
        .unwrap();
    p.plug(&NvdimmConfig::new(256 * M + 128 * K, 128 * K, uuid))
        .unwrap();
    let c = p
        .plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))
        .unwrap();
    assert_eq!(c.slot, 2);
    let (mut la, mut lb, mut lc) = ([0u8; 16], [0u8; 16], [0u8; 16]);
    let cells = [
        RefCell::new(Some(Device::new(a, SliceLabelStore::new(&mut la)))),
        RefCell::new(Some(Device::new(b, SliceLabelStore::new(&mut lb)))),
        RefCell::new(None),
    ];
    let m = Machine::new(&cfg(Profile::Papr), LocalSlots::new(&cells));
    // The first spanning call builds the index.
    assert_eq!(st(m.h_scm_query_logical_mem_binding(c.addr)), H_NOT_FOUND);
    let mut q = EventQueue::new();
    m.plug(Device::new(c, SliceLabelStore::new(&mut lc)), &mut q)
        .unwrap();
    assert_eq!(
        st(m.h_scm_bind_mem(0x9000_0002, 0, 4, u64::MAX, 0)),
        H_SUCCESS
    );
    let o = m.h_scm_query_logical_mem_binding(c.addr + 256 * M);
    assert_eq!(
        (o.status, o.out.r4, o.out.r5),
        (H_SUCCESS, Some(0x9000_0002), Some(1))
    );
    // Out of the table behind the machine's back, then `reindex`.
    let dev = cells[2].borrow_mut().take().unwrap();
    m.reindex();
    assert_eq!(st(m.h_scm_query_logical_mem_binding(c.addr)), H_NOT_FOUND);
    *cells[2].borrow_mut() = Some(dev);
    m.reindex();
    assert_eq!(st(m.h_scm_query_logical_mem_binding(c.addr)), H_SUCCESS);
}
