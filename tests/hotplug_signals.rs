// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The VMM's side of a hotplug event: which source is pulsed and when
//! (plug, unplug, a `check-exception` that leaves events queued,
//! `event-scan`), the guest clock stamped into the event, and a VMM that
//! keeps the one event queue itself (`EventSink`).

#![cfg(feature = "std")]

use std::cell::RefCell;

use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
use papr_scm::device::Device;
use papr_scm::drc::DrcIndex;
use papr_scm::host::{
    BindEvents, EventSignal, FlushExecutor, GuestMemory, GuestMemoryError, StatsSource,
};
use papr_scm::label::VecLabelStore;
use papr_scm::machine::{Machine, PlugError, SharedSlots, Unplug, UnplugError};
use papr_scm::replay::SparseRam;
use papr_scm::rtas::RtasService;
use papr_scm::rtas_error_log::{
    EventQueue, EventSink, EventSource, HotplugAction, QueueFull, RtcTime,
};
use papr_scm::Uuid;

/// Guest RAM from the replay host, and a record of the pulses.
struct Host {
    pulses: RefCell<Vec<EventSource>>,
    ram: SparseRam,
}

impl GuestMemory for Host {
    fn has_memory(&self) -> bool {
        true
    }
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        self.ram.read_guest(gpa, buf)
    }
    fn write_guest(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        self.ram.write_guest(gpa, data)
    }
}
impl FlushExecutor for Host {}
impl BindEvents for Host {}
impl StatsSource for Host {}
impl EventSignal for Host {
    fn pulse(&self, source: EventSource) {
        self.pulses.borrow_mut().push(source);
    }
    fn guest_time(&self) -> RtcTime {
        RtcTime {
            year: 2026,
            month: 12,
            day: 1,
            hour: 16,
            minute: 45,
            second: 7,
        }
    }
}

/// A 4-slot machine with the recording host, its planner and a UUID.
fn machine() -> (Planner, Machine<SharedSlots<VecLabelStore>, Host>, Uuid) {
    let config = MachineConfig::new(2 << 30, 8 << 30, 4);
    let planner = Planner::new(config).unwrap();
    let host = Host {
        pulses: RefCell::default(),
        ram: SparseRam::new(0x10000),
    };
    let m = Machine::with_host(&config, SharedSlots::new(4), host);
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    (planner, m, uuid)
}

#[test]
fn test_pulses_follow_the_queue() {
    let (mut planner, m, uuid) = machine();
    let mut q = EventQueue::new();
    let pulses = |m: &Machine<SharedSlots<VecLabelStore>, Host>| m.host().pulses.borrow().clone();

    // Before CAS, the EPOW source; two plugs, two pulses.
    for _ in 0..2 {
        let spec = planner
            .plug(&NvdimmConfig::new(
                (256 << 20) + (128 << 10),
                128 << 10,
                uuid,
            ))
            .unwrap();
        m.plug(Device::new(spec, VecLabelStore::new(128 << 10)), &mut q)
            .unwrap();
    }
    assert_eq!(pulses(&m), [EventSource::Epow, EventSource::Epow]);

    // The first check-exception leaves one queued: pulsed again (QEMU's
    // edge-triggered sources). The second empties the queue: no pulse.
    let args = [0x500, 0, 0x4000_0000, 0, 0x1000, 2048];
    let mut rets = [0u32];
    m.rtas(RtasService::CheckException, &args, &mut rets, &mut q)
        .unwrap();
    assert_eq!(rets, [0]);
    assert_eq!(pulses(&m).len(), 3);
    // The stamp is the guest's clock, BCD.
    let mut stamp = [0u8; 8];
    m.host().read_guest(0x1000 + 32, &mut stamp).unwrap();
    assert_eq!(stamp, [0x20, 0x26, 0x12, 0x01, 0x16, 0x45, 0x07, 0]);
    // event-scan pulses while something is queued, and never answers.
    let mut scan = [7u32];
    assert!(m
        .rtas(RtasService::EventScan, &[0, 0, 0, 0], &mut scan, &mut q)
        .is_none());
    assert_eq!((scan, pulses(&m).len()), ([7], 4));
    m.rtas(RtasService::CheckException, &args, &mut rets, &mut q)
        .unwrap();
    assert_eq!(pulses(&m).len(), 4);
    assert!(q.is_empty());
    assert!(m
        .rtas(RtasService::EventScan, &[0, 0, 0, 0], &mut scan, &mut q)
        .is_none());
    assert_eq!(pulses(&m).len(), 4, "nothing queued, nothing pulsed");

    // After CAS with the dedicated source: an unplug pulses that one.
    q.cas(true);
    m.reset_connectors(|_| {});
    m.unplug(0, &mut q).unwrap();
    assert_eq!(pulses(&m).last(), Some(&EventSource::HotPlug));
}

/// A VMM's queue: records what it is handed, refuses while `full`.
#[derive(Default)]
struct VmmQueue {
    events: Vec<(HotplugAction, DrcIndex, RtcTime)>,
    withdrawn: Vec<DrcIndex>,
    full: bool,
}

impl EventSink for VmmQueue {
    fn push(
        &mut self,
        action: HotplugAction,
        drc: DrcIndex,
        time: RtcTime,
    ) -> Result<(), QueueFull> {
        if self.full {
            return Err(QueueFull);
        }
        self.events.push((action, drc, time));
        Ok(())
    }

    fn withdraw(&mut self, drc: DrcIndex) -> usize {
        let before = self.events.len();
        self.events.retain(|e| e.1 != drc);
        self.withdrawn.push(drc);
        before - self.events.len()
    }
}

#[test]
fn test_a_vmm_queue_gets_the_events_and_answers_for_them() {
    let (mut planner, m, uuid) = machine();
    let cfg = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
    // A refused add: the device comes back untouched, the slot stays empty.
    let mut q = VmmQueue {
        full: true,
        ..VmmQueue::default()
    };
    let spec = planner.plug(&cfg).unwrap();
    let dev = Device::new(spec, VecLabelStore::new(128 << 10));
    let before = *dev.connector();
    let e = m.plug(dev, &mut q).unwrap_err();
    assert!(matches!(e, PlugError::Events { slot: 0, .. }), "{e:?}");
    assert_eq!(*e.into_device().connector(), before);
    assert!(m.with_device(0, |_| ()).is_none());

    // Accepted: the event went to the VMM's queue with the guest's clock,
    // and papr-scm pulsed nothing (the VMM signals its own queue).
    q.full = false;
    m.plug(Device::new(spec, VecLabelStore::new(128 << 10)), &mut q)
        .unwrap();
    assert_eq!(q.events.len(), 1);
    assert_eq!(
        (q.events[0].0, q.events[0].1.raw()),
        (HotplugAction::Add, 0x9000_0000)
    );
    assert_eq!(q.events[0].2.minute, 45);
    assert!(m.host().pulses.borrow().is_empty());

    // check-exception and event-scan are the VMM's: not answered, rets untouched.
    let mut rets = [7u32];
    let args = [0x500, 0, 0x5000_0000, 0, 0x1000, 2048];
    assert!(m
        .rtas(RtasService::CheckException, &args, &mut rets, &mut q)
        .is_none());
    assert!(m
        .rtas(RtasService::EventScan, &[0, 0, 0, 0], &mut rets, &mut q)
        .is_none());
    assert_eq!(rets, [7]);

    // The guest never acquired the connector: the unplug releases at once
    // and withdraws the add event from the VMM's queue.
    let Unplug::Released(r) = m.unplug(0, &mut q).unwrap() else {
        panic!("released at once")
    };
    assert_eq!(q.withdrawn, [DrcIndex::pmem(0).unwrap()]);
    assert!(q.events.is_empty());
    planner.unplug(r.device.spec()).unwrap();

    // A device the guest holds: a refused remove event changes nothing, an
    // accepted one marks the unplug.
    let spec = planner.plug(&cfg).unwrap();
    m.plug(Device::new(spec, VecLabelStore::new(128 << 10)), &mut q)
        .unwrap();
    m.with_device(0, |d| {
        *d.connector_mut() = papr_scm::drc::Connector::cold_plugged()
    });
    q.full = true;
    assert_eq!(
        m.unplug(0, &mut q).unwrap_err(),
        UnplugError::Events {
            slot: 0,
            source: QueueFull
        }
    );
    assert!(!m
        .with_device(0, |d| d.connector().unplug_requested())
        .unwrap());
    q.full = false;
    assert!(matches!(m.unplug(0, &mut q).unwrap(), Unplug::Requested));
    assert_eq!(q.events.last().map(|e| e.0), Some(HotplugAction::Remove));
    assert!(m
        .with_device(0, |d| d.connector().unplug_requested())
        .unwrap());
    assert!(m.host().pulses.borrow().is_empty());

    // A reset leaves the VMM's queue to the VMM.
    let queued = q.events.len();
    m.reset(&mut q, |_| {});
    assert_eq!(q.events.len(), queued);
}
