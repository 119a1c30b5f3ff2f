// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `Machine::reset` is a system reset: a fresh boot finds nothing bound, no
//! flush, no event and no device left half unplugged; a kexec (no reset)
//! keeps the bindings for the second kernel to reuse.

#![cfg(feature = "std")]

use std::cell::RefCell;

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Planner, Profile};
use papr_scm::device::Device;
use papr_scm::hcall::*;
use papr_scm::host::{
    BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, StatsSource,
};
use papr_scm::label::VecLabelStore;
use papr_scm::machine::{Machine, SharedSlots, Unplug};
use papr_scm::rtas_error_log::{EventQueue, HotplugAction, RtcTime};

const D0: u64 = 0x9000_0000;
const D1: u64 = 0x9000_0001;

/// Records the host hooks; flushes never complete on their own.
#[derive(Default)]
struct Recorder {
    unbound: RefCell<Vec<(u32, u64, u64)>>,
}
impl GuestMemory for Recorder {}
impl FlushExecutor for Recorder {
    fn flushes_data(&self) -> bool {
        true
    }
    fn start_flush(&self, _slot: u32, _token: u64) -> FlushStatus {
        FlushStatus::Pending
    }
    fn poll_flush(&self, _slot: u32, _token: u64) -> FlushStatus {
        FlushStatus::Pending
    }
}
impl BindEvents for Recorder {
    fn unbound(&self, slot: u32, addr: u64, blocks: u64) {
        self.unbound.borrow_mut().push((slot, addr, blocks));
    }
}
impl StatsSource for Recorder {}
impl EventSignal for Recorder {}

type M = Machine<SharedSlots<VecLabelStore>, Recorder>;

/// A papr machine: a 4-block nvdimm in slot 0, a 1-block spapr-nvdimm in
/// slot 1, and one slot free.
fn machine(profile: Profile) -> (M, Planner) {
    let mut cfg = MachineConfig::new(2 << 30, 8 << 30, 3);
    cfg.profile = profile;
    let mut p = Planner::new(cfg).unwrap();
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let a = p
        .plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))
        .unwrap();
    let mut c = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
    c.kind = DeviceKind::SpaprNvdimm;
    let b = p.plug(&c).unwrap();
    let m = Machine::from_specs_with(&cfg, &[a, b], Recorder::default(), |s| {
        Ok::<_, papr_scm::label::LabelError>(VecLabelStore::new(s.layout.label_size() as usize))
    })
    .unwrap();
    (m, p)
}

#[test]
fn test_reset_is_a_fresh_boot() {
    let (m, _) = machine(Profile::Papr);
    let mut events = EventQueue::new();
    events.cas(true);
    assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).status, H_SUCCESS);
    assert_eq!(m.h_scm_bind_mem(D1, 0, 1, u64::MAX, 0).status, H_SUCCESS);
    let f = m.h_scm_flush(D1, 0);
    assert_eq!(f.status, H_LONG_BUSY_ORDER_10_MSEC);
    let token = f.out.r4.unwrap();
    events
        .push(
            HotplugAction::Add,
            papr_scm::drc::DrcIndex::pmem(2).unwrap(),
            RtcTime::default(),
        )
        .unwrap();

    m.reset(&mut events, |r| {
        panic!("slot {} was not leaving", r.device.spec().slot)
    });

    // Every run went back to the host, and nothing is bound any more.
    let mut unbound = m.host().unbound.borrow().clone();
    unbound.sort();
    assert_eq!(unbound, [(0, 0x8000_0000, 4), (1, 0xc000_0000, 1)]);
    assert_eq!(m.h_scm_query_block_mem_binding(D0, 0).status, H_NOT_FOUND);
    assert_eq!(
        m.h_scm_query_logical_mem_binding(0x8000_0000).status,
        H_NOT_FOUND
    );
    // The new boot's bind succeeds at once: no H_OVERLAP to recover from.
    assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).status, H_SUCCESS);
    // The old flush token names nothing; a new flush starts afresh.
    assert_ne!(m.h_scm_flush(D1, token).status, H_SUCCESS);
    assert_eq!(m.h_scm_flush(D1, 0).status, H_LONG_BUSY_ORDER_10_MSEC);
    // No event survives, and the guest must negotiate CAS again.
    assert!(events.is_empty());
    assert!(!events.hotplug_source());
}

#[test]
fn test_reset_completes_a_pending_unplug() {
    let (m, mut p) = machine(Profile::Papr);
    let mut events = EventQueue::new();
    let mut c = NvdimmConfig::new(
        (256 << 20) + (128 << 10),
        128 << 10,
        parse_uuid("11111111-2222-4333-8444-555555555555").unwrap(),
    );
    c.kind = DeviceKind::SpaprNvdimm;
    let spec = p.plug(&c).unwrap();
    m.plug(
        Device::new(spec, VecLabelStore::new(spec.layout.label_size() as usize)),
        &mut events,
    )
    .unwrap();
    // The guest acquires the new connector (it is then the guest's to
    // give back) and the VMM asks for it.
    let mut rets = [0u32; 1];
    for (ind, state) in [(9003, 1), (9001, 1)] {
        m.rtas(
            papr_scm::rtas::RtasService::SetIndicator,
            &[ind, 0x9000_0002, state],
            &mut rets,
            &mut events,
        )
        .unwrap();
        assert_eq!(rets, [0]);
    }
    assert!(matches!(
        m.unplug(2, &mut events).unwrap(),
        Unplug::Requested
    ));
    let mut gone = Vec::new();
    m.reset(&mut events, |r| gone.push(r.device.spec().slot));
    assert_eq!(gone, [2]);
    assert_eq!(m.h_scm_health(0x9000_0002).status, H_PARAMETER);
    assert_eq!(m.h_scm_health(D0).status, H_SUCCESS);
}

#[test]
fn test_kexec_is_no_reset_the_binding_stays() {
    // A kexec calls nothing on the machine: the second kernel's bind meets
    // its predecessor's binding and reuses it.
    let (m, _) = machine(Profile::Papr);
    assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).status, H_SUCCESS);
    assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).status, H_OVERLAP);
    let q = m.h_scm_query_block_mem_binding(D0, 3);
    assert_eq!(
        (q.status, q.out.r4),
        (H_SUCCESS, Some(0x8000_0000 + 3 * (256 << 20)))
    );
    assert!(m.host().unbound.borrow().is_empty());
}

#[test]
fn test_reset_in_the_qemu_profile_has_no_bindings_to_release() {
    let (m, _) = machine(Profile::Qemu);
    assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).status, H_SUCCESS);
    m.reset(&mut EventQueue::new(), |_| panic!());
    assert!(m.host().unbound.borrow().is_empty());
    assert_eq!(m.h_scm_bind_mem(D0, 0, 4, u64::MAX, 0).status, H_SUCCESS);
}
