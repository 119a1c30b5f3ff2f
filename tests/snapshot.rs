// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Machine snapshots: round trips mid-bind, mid-flush, after health
//! injection, after a hot-plug with an unplug pending; every decode error;
//! the flush-requirement rule; arbitrary and mutated bytes.

#![cfg(feature = "std")]

use std::cell::RefCell;

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Profile};
use papr_scm::drc::DrcState;
use papr_scm::hcall::*;
use papr_scm::host::{
    BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, StatsSource,
};
use papr_scm::label::VecLabelStore;
use papr_scm::machine::{Machine, MachineState, RestoreError, SharedSlots, SnapshotError};
use papr_scm::rtas::RtasService;
use papr_scm::rtas_error_log::EventQueue;
use proptest::prelude::*;

/// A host that counts the flushes started on it and completes them on
/// poll, and records what the machine tells it.
#[derive(Default)]
struct Host {
    started: RefCell<Vec<(u32, u64)>>,
    forgotten: RefCell<Vec<(u32, u64)>>,
    /// `(slot, addr, blocks)` of every `bound` (+) and `unbound` (-).
    binds: RefCell<Vec<(char, u32, u64, u64)>>,
}

impl GuestMemory for Host {}
impl FlushExecutor for Host {
    fn flushes_data(&self) -> bool {
        true
    }
    fn start_flush(&self, slot: u32, token: u64) -> FlushStatus {
        self.started.borrow_mut().push((slot, token));
        FlushStatus::Pending
    }
    fn poll_flush(&self, _slot: u32, _token: u64) -> FlushStatus {
        FlushStatus::Done(true)
    }
    fn forget_flush(&self, slot: u32, token: u64) {
        self.forgotten.borrow_mut().push((slot, token));
    }
}
impl BindEvents for Host {
    fn bound(&self, slot: u32, addr: u64, blocks: u64) {
        self.binds.borrow_mut().push(('+', slot, addr, blocks));
    }
    fn unbound(&self, slot: u32, addr: u64, blocks: u64) {
        self.binds.borrow_mut().push(('-', slot, addr, blocks));
    }
}
impl StatsSource for Host {}
impl EventSignal for Host {}

type M = Machine<SharedSlots<VecLabelStore>, Host>;

fn machine(profile: Profile, second_needs_flush: bool) -> M {
    let mut m = MachineConfig::new(2 << 30, 8 << 30, 4);
    m.profile = profile;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
    let mut second = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
    if second_needs_flush {
        second.kind = DeviceKind::SpaprNvdimm;
    }
    Machine::from_config(
        &m,
        &[
            NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid),
            second,
        ],
        Host::default(),
    )
    .unwrap()
}

fn round_trip(m: &M, q: &EventQueue) -> MachineState {
    let s = m.state(q);
    let bytes = s.encode();
    let back = MachineState::decode(&bytes).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.encode(), bytes);
    back
}

#[test]
fn test_round_trip_mid_bind() {
    let m = machine(Profile::Papr, true);
    m.with_device(0, |d| d.faults_mut().bind_busy = 1);
    let o = m.h_scm_bind_mem(0x9000_0000, 0, 4, u64::MAX, 0);
    assert_eq!(o.status, H_BUSY);
    let token = o.out.r6.unwrap();
    let q = EventQueue::new();
    let snap = round_trip(&m, &q);
    let dst = machine(Profile::Papr, true);
    let mut dq = EventQueue::new();
    dst.restore(&snap, &mut dq).unwrap();
    // The guest continues its bind with the old token on the new machine.
    let o = dst.h_scm_bind_mem(0x9000_0000, 0, 4, u64::MAX, token);
    assert_eq!(o.status, H_SUCCESS);
    assert_eq!(
        dst.h_scm_query_logical_mem_binding(0x8000_0000).status,
        H_SUCCESS
    );
}

#[test]
fn test_round_trip_mid_flush_resubmits_the_pending_flush() {
    let m = machine(Profile::Papr, true);
    let o = m.h_scm_flush(0x9000_0001, 0);
    assert!(o.status.is_long_busy());
    let token = o.out.r4.unwrap();
    let snap = round_trip(&m, &EventQueue::new());
    let dst = machine(Profile::Papr, true);
    dst.restore(&snap, &mut EventQueue::new()).unwrap();
    assert_eq!(
        *dst.host().started.borrow(),
        [(1, token)],
        "re-submitted on the destination"
    );
    // The old token completes there; the counter goes on from the source's.
    let mut rc = dst.h_scm_flush(0x9000_0001, token).status;
    for _ in 0..4 {
        if rc == H_SUCCESS {
            break;
        }
        rc = dst.h_scm_flush(0x9000_0001, token).status;
    }
    assert_eq!(rc, H_SUCCESS);
    let next = dst.h_scm_flush(0x9000_0001, 0);
    assert_eq!(next.out.r4, Some(token + 1));
}

#[test]
fn test_round_trip_after_health_injection() {
    let m = machine(Profile::Papr, false);
    m.with_device(0, |d| {
        d.inject_health(HealthBits::PAPR_PMEM_SHUTDOWN_DIRTY | HealthBits::PAPR_PMEM_UNARMED)
    });
    let snap = round_trip(&m, &EventQueue::new());
    let dst = machine(Profile::Papr, false);
    dst.restore(&snap, &mut EventQueue::new()).unwrap();
    assert_eq!(
        dst.h_scm_health(0x9000_0000).out.r4,
        m.h_scm_health(0x9000_0000).out.r4
    );
}

/// The guest's side of a hotplug event on the destination: check-exception
/// finds it (this host has no RAM to deliver it into), then two
/// set-indicator calls (`[indicator, drc, state]`) that must succeed.
fn answer_event(m: &M, q: &mut EventQueue, indicators: [[u32; 3]; 2]) {
    let mut rets = [0u32];
    assert!(m
        .rtas(
            RtasService::CheckException,
            &[0, 0, 0x1000_0000, 0, 0, 2048],
            &mut rets,
            q
        )
        .is_some());
    for args in indicators {
        m.rtas(RtasService::SetIndicator, &args, &mut rets, q)
            .unwrap();
        assert_eq!(rets, [0]);
    }
}

#[test]
fn test_round_trip_with_an_unplug_pending() {
    let m = machine(Profile::Papr, false);
    let mut q = EventQueue::new();
    q.cas(true);
    // Slot 1's device is configured (cold-plugged); the VMM asks for it.
    m.unplug(1, &mut q).unwrap();
    assert_eq!(q.len(), 1);
    let snap = round_trip(&m, &q);
    let dst = machine(Profile::Papr, false);
    let mut dq = EventQueue::new();
    dst.restore(&snap, &mut dq).unwrap();
    assert_eq!(dq, q, "the queue travels");
    let c = dst.with_device(1, |d| *d.connector()).unwrap();
    assert!(c.unplug_requested() && c.drc_state() == DrcState::Configured);
    // The guest collects the event and releases the DRC on the destination.
    answer_event(
        &dst,
        &mut dq,
        [[9001, 0x9000_0001, 0], [9003, 0x9000_0001, 0]],
    );
    assert!(
        dst.with_device(1, |_| ()).is_none(),
        "released on the destination"
    );
}

/// A device hot-plugged into slot 2 (the Planner's placement, as the VMM
/// would plan it on both sides), its add event not yet collected.
fn plug_third(m: &M, q: &mut EventQueue) {
    use papr_scm::config::Planner;
    use papr_scm::device::Device;
    let uuid = parse_uuid("11111111-2222-4333-8444-555555555555").unwrap();
    let mut p = Planner::new(MachineConfig::new(2 << 30, 8 << 30, 4)).unwrap();
    for size in [(1 << 30) + (128 << 10), (256 << 20) + (128 << 10)] {
        p.plug(&NvdimmConfig::new(size, 128 << 10, uuid)).unwrap();
    }
    let spec = p
        .plug(&NvdimmConfig::new(
            (256 << 20) + (128 << 10),
            128 << 10,
            uuid,
        ))
        .unwrap();
    assert_eq!(spec.slot, 2);
    let dev = Device::new(spec, VecLabelStore::new(128 << 10));
    m.plug(dev, q).unwrap();
}

#[test]
fn test_round_trip_after_hot_plug() {
    let src = machine(Profile::Papr, false);
    let mut q = EventQueue::new();
    q.cas(true);
    plug_third(&src, &mut q);
    assert_eq!(q.len(), 1);
    let snap = round_trip(&src, &q);
    assert_eq!(snap.devices.len(), 3);
    // A destination without the plugged device refuses the snapshot.
    let bare = machine(Profile::Papr, false);
    assert_eq!(
        bare.restore(&snap, &mut EventQueue::new()).unwrap_err(),
        RestoreError::Plugged {
            slot: 2,
            in_snapshot: true
        }
    );
    // With it, the queued add event travels and the guest on the
    // destination acquires the connector as it would have on the source.
    let dst = machine(Profile::Papr, false);
    let mut scratch = EventQueue::new();
    plug_third(&dst, &mut scratch);
    let mut dq = EventQueue::new();
    dst.restore(&snap, &mut dq).unwrap();
    assert_eq!(dq, q);
    answer_event(
        &dst,
        &mut dq,
        [[9003, 0x9000_0002, 1], [9001, 0x9000_0002, 1]],
    );
    let c = dst.with_device(2, |d| *d.connector()).unwrap();
    assert_eq!(c.drc_state(), DrcState::Unisolate);
}

#[test]
fn test_restore_refuses_a_mismatching_machine() {
    let snap = machine(Profile::Papr, true).state(&EventQueue::new());
    // Flush requirement, both directions (QEMU: EINVAL).
    let e = machine(Profile::Papr, false)
        .restore(&snap, &mut EventQueue::new())
        .unwrap_err();
    assert_eq!(
        e,
        RestoreError::FlushRequired {
            slot: 1,
            snapshot: true,
            machine: false
        }
    );
    let snap2 = machine(Profile::Papr, false).state(&EventQueue::new());
    let e = machine(Profile::Papr, true)
        .restore(&snap2, &mut EventQueue::new())
        .unwrap_err();
    assert!(matches!(
        e,
        RestoreError::FlushRequired {
            slot: 1,
            snapshot: false,
            machine: true
        }
    ));
    assert!(e.to_string().contains("flush-required"));
    // Profile, and a device missing on either side.
    let e = machine(Profile::Qemu, true)
        .restore(&snap, &mut EventQueue::new())
        .unwrap_err();
    assert!(matches!(e, RestoreError::Profile { .. }));
    let mut fewer = snap.clone();
    fewer.devices.pop();
    let e = machine(Profile::Papr, true)
        .restore(&fewer, &mut EventQueue::new())
        .unwrap_err();
    assert_eq!(
        e,
        RestoreError::Plugged {
            slot: 1,
            in_snapshot: false
        }
    );
    // Nothing changed on a refusal.
    let dst = machine(Profile::Papr, true);
    let mut bad = snap.clone();
    bad.devices[1].state.flush_token = 1;
    bad.devices[1].state.flushes[0] = Some(papr_scm::device::FlushRecord {
        token: 2,
        result: None,
        hold: 0,
        fresh: false,
        injected: None,
    });
    bad.devices[0].state.health = HealthBits::PAPR_PMEM_UNARMED;
    assert!(matches!(
        dst.restore(&bad, &mut EventQueue::new()),
        Err(RestoreError::Device { slot: 1, .. })
    ));
    assert_eq!(
        dst.h_scm_health(0x9000_0000).out.r4,
        Some(0),
        "slot 0 untouched"
    );
}

fn valid() -> Vec<u8> {
    let m = machine(Profile::Papr, true);
    let mut q = EventQueue::new();
    m.with_device(0, |d| d.faults_mut().bind_busy = 1);
    m.h_scm_bind_mem(0x9000_0000, 0, 4, u64::MAX, 0);
    m.h_scm_flush(0x9000_0001, 0);
    q.cas(true);
    m.unplug(1, &mut q).unwrap();
    m.state(&q).encode()
}

#[test]
fn test_decode_errors_name_the_field() {
    let good = valid();
    assert!(MachineState::decode(&good).is_ok());
    // Every truncation is an error, none a panic.
    for n in 0..good.len() {
        assert!(MachineState::decode(&good[..n]).is_err(), "prefix {n}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        MachineState::decode(&trailing),
        Err(SnapshotError::Trailing(1))
    );
    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(MachineState::decode(&magic), Err(SnapshotError::BadMagic));
    let mut version = good.clone();
    version[9] = 2;
    assert_eq!(
        MachineState::decode(&version),
        Err(SnapshotError::Version(2))
    );
    let mut profile = good.clone();
    profile[10] = 2;
    assert!(matches!(
        MachineState::decode(&profile),
        Err(SnapshotError::OutOfRange {
            field: "profile",
            ..
        })
    ));
    let mut count = good.clone();
    count[16] = 5; // device_count (u16 at 15), above the 4 slots
    assert!(matches!(
        MachineState::decode(&count),
        Err(SnapshotError::OutOfRange {
            field: "device_count",
            value: 5
        })
    ));
    let mut hp = good.clone();
    hp[17] = 2; // events.hotplug_source
    assert!(matches!(
        MachineState::decode(&hp),
        Err(SnapshotError::OutOfRange {
            field: "events.hotplug_source",
            ..
        })
    ));
    // The last bytes: connector state (u32) and unplug_requested.
    let n = good.len();
    let mut conn = good.clone();
    conn[n - 2] = 9;
    assert!(matches!(
        MachineState::decode(&conn),
        Err(SnapshotError::OutOfRange {
            field: "connector.state",
            ..
        })
    ));
    let mut unplug = good.clone();
    unplug[n - 1] = 7;
    assert!(matches!(
        MachineState::decode(&unplug),
        Err(SnapshotError::OutOfRange {
            field: "connector.unplug_requested",
            ..
        })
    ));
    // A state no device could be in: a flush token above the counter.
    let m = machine(Profile::Papr, true);
    m.h_scm_flush(0x9000_0001, 0);
    let mut s = m.state(&EventQueue::new());
    s.devices[1].state.flush_token = 0;
    let e = MachineState::decode(&s.encode()).unwrap_err();
    assert!(matches!(e, SnapshotError::Device { slot: 1, .. }), "{e}");
    assert!(e.to_string().starts_with("snapshot: slot 1: "));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic, and whatever decodes encodes back the same.
    #[test]
    fn test_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(s) = MachineState::decode(&data) {
            prop_assert_eq!(s.encode(), data);
        }
    }

    /// A valid snapshot with bytes changed: an error, or a snapshot that
    /// encodes back to exactly those bytes.
    #[test]
    fn test_mutated_snapshots(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut b = valid();
        for (i, v) in flips {
            let n = b.len();
            b[i % n] = v;
        }
        if let Ok(s) = MachineState::decode(&b) {
            prop_assert_eq!(s.encode(), b);
        }
    }
}

/// Writes the `snapshot` fuzz target's seeds when run with
/// PAPR_SCM_WRITE_SEEDS=1 (a mid-bind, mid-flush, unplug-pending snapshot
/// and an idle one per profile); otherwise checks that they decode.
#[test]
fn test_snapshot_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/snapshot");
    let seeds = [
        ("busy", valid()),
        (
            "idle-papr",
            machine(Profile::Papr, true)
                .state(&EventQueue::new())
                .encode(),
        ),
        (
            "idle-qemu",
            machine(Profile::Qemu, false)
                .state(&EventQueue::new())
                .encode(),
        ),
    ];
    if std::env::var_os("PAPR_SCM_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    // The published crate leaves fuzz/ out.
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries {
        let b = std::fs::read(e.unwrap().path()).unwrap();
        // A seed may carry the target's steps after the snapshot.
        let snap = match MachineState::decode(&b) {
            Err(SnapshotError::Trailing(n)) => &b[..b.len() - n],
            _ => &b[..],
        };
        assert_eq!(MachineState::decode(snap).unwrap().encode(), snap);
    }
}

/// A transcript's `restore` line puts a snapshot into the replay machine,
/// as a migration's destination: the guest's pending flush completes with
/// its old token there. A snapshot that does not fit is an error naming the
/// line.
#[test]
fn test_restore_line_replays_the_destination() {
    use papr_scm::replay::{build, replay};
    use papr_scm::transcript::{Directive, Transcript};
    let config = "machine ram=2G maxmem=8G slots=4 profile=papr\n\
                  nvdimm size=256M+128K label-size=128K type=spapr-nvdimm uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n";
    let src = build(&Transcript::parse(config).unwrap()).unwrap();
    assert_eq!(
        src.h_scm_bind_mem(0x9000_0000, 0, 1, u64::MAX, 0).status,
        H_SUCCESS
    );
    let f = src.h_scm_flush(0x9000_0000, 0);
    assert_eq!((f.status, f.out.r4), (H_LONG_BUSY_ORDER_10_MSEC, Some(1)));
    let snap = src.state(&EventQueue::new()).encode();
    let dst = format!(
        "{config}{}\n\
         call H_SCM_FLUSH 0x90000000 0x1 -> H_SUCCESS\n\
         call H_SCM_BIND_MEM 0x90000000 0x0 0x1 0xffffffffffffffff 0x0 -> H_OVERLAP\n",
        Directive::Restore(snap.clone())
    );
    let r = replay(&Transcript::parse(&dst).unwrap()).unwrap();
    assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
    // Without the restore the same poll names no flush.
    let fresh = dst.replace(&Directive::Restore(snap.clone()).to_string(), "");
    let r = replay(&Transcript::parse(&fresh).unwrap()).unwrap();
    assert_eq!(r.mismatches.len(), 2, "{:?}", r.mismatches);
    // A plain nvdimm destination refuses the spapr-nvdimm's state.
    let wrong = dst.replace(" type=spapr-nvdimm", "");
    let e = replay(&Transcript::parse(&wrong).unwrap()).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("flush-required"), "{}", e.reason);
    let e = replay(&Transcript::parse(&format!("{config}restore 00\n")).unwrap()).unwrap_err();
    assert!(
        e.reason.contains("magic") || e.reason.contains("truncated"),
        "{}",
        e.reason
    );
}

/// Issue 23, defect 2: a restore left the restored bindings out of the
/// bound-slot bitmap once the index was built (any QUERY_LOGICAL or plug
/// first, as in the documented flow for a hot-plugged device), and a
/// partition-wide UNBIND_ALL answered r5 = 0 with the blocks still bound.
#[test]
fn test_unbind_all_after_a_restore_finds_the_restored_bindings() {
    let src = machine(Profile::Papr, false);
    assert_eq!(
        src.h_scm_bind_mem(0x9000_0000, 0, 4, u64::MAX, 0).status,
        H_SUCCESS
    );
    let snap = round_trip(&src, &EventQueue::new());
    let dst = machine(Profile::Papr, false);
    // The index is built for the destination's generation first.
    assert_eq!(
        dst.h_scm_query_logical_mem_binding(0x8000_0000).status,
        H_NOT_FOUND
    );
    dst.restore(&snap, &mut EventQueue::new()).unwrap();
    let o = dst.h_scm_unbind_all(H_UNBIND_SCOPE_ALL, 0, 0);
    assert_eq!((o.status, o.out.r5), (H_SUCCESS, Some(4)));
    assert_eq!(dst.with_device(0, |d| d.bindings().count()), Some(0));
}

/// Issue 23, defect 7: a restore never told `BindEvents`, so a VMM that
/// maps lazily left the guest's bound memory unmapped on a migration
/// destination, and a rollback that dropped bindings never reported
/// `unbound`. The difference is reported: runs that go, then runs that
/// come.
#[test]
fn test_restore_reports_the_bindings_that_change() {
    let src = machine(Profile::Papr, false);
    src.h_scm_bind_mem(0x9000_0000, 0, 2, u64::MAX, 0);
    let two = round_trip(&src, &EventQueue::new());
    // A fresh destination maps everything the guest has bound.
    let dst = machine(Profile::Papr, false);
    dst.restore(&two, &mut EventQueue::new()).unwrap();
    assert_eq!(*dst.host().binds.borrow(), [('+', 0, 0x8000_0000, 2)]);
    // On the source, blocks 1..4 bound; rolling back to `two` unbinds
    // 2..4 and keeps 0..2 (1 stays bound: no event for it).
    src.h_scm_unbind_mem(0x9000_0000, 0x8000_0000, 1, 0);
    src.h_scm_bind_mem(0x9000_0000, 2, 2, u64::MAX, 0);
    src.host().binds.borrow_mut().clear();
    src.restore(&two, &mut EventQueue::new()).unwrap();
    assert_eq!(
        *src.host().binds.borrow(),
        [
            ('-', 0, 0x8000_0000 + (2 << 28), 2),
            ('+', 0, 0x8000_0000, 1)
        ]
    );
    // Restoring what is there reports nothing.
    src.host().binds.borrow_mut().clear();
    src.restore(&two, &mut EventQueue::new()).unwrap();
    assert!(src.host().binds.borrow().is_empty());
}

/// Issue 23, defect 5, at the machine: restoring an earlier snapshot on
/// the same machine handed out a token again (the counter went back), and
/// the records the restore dropped were never reported, so an executor's
/// old result answered the new request. The dropped records are
/// forgotten, and the counter never goes back.
#[test]
fn test_restore_forgets_dropped_flushes_and_never_repeats_a_token() {
    let m = machine(Profile::Papr, true);
    let early = round_trip(&m, &EventQueue::new());
    let t1 = m.h_scm_flush(0x9000_0001, 0).out.r4.unwrap();
    assert_eq!(t1, 1);
    m.restore(&early, &mut EventQueue::new()).unwrap();
    assert_eq!(*m.host().forgotten.borrow(), [(1, 1)]);
    let t2 = m.h_scm_flush(0x9000_0001, 0).out.r4.unwrap();
    assert_eq!(t2, 2, "a token handed out before the restore came again");
    // A reset forgets too.
    m.reset(&mut EventQueue::new(), |_| {});
    assert_eq!(*m.host().forgotten.borrow(), [(1, 1), (1, 2)]);
    // A fresh destination takes the snapshot's counter as it is.
    let snap = round_trip(&m, &EventQueue::new());
    let dst = machine(Profile::Papr, true);
    dst.restore(&snap, &mut EventQueue::new()).unwrap();
    assert_eq!(dst.state(&EventQueue::new()), snap);
}

/// Issue 23, defect 8: snapshots that decoded but broke later hcalls. A
/// flush record whose result is a retry code lost the guest's token (the
/// record went while the guest was told to poll again); `bind_busy` or
/// `flush_hold` of `u32::MAX` kept Linux retrying 4·10⁹ times. Each field
/// has a range now, and decode refuses the rest naming it.
#[test]
fn test_snapshots_that_would_break_later_hcalls_are_refused() {
    use papr_scm::device::{FlushRecord, StateError};
    let m = machine(Profile::Papr, true);
    m.h_scm_flush(0x9000_0001, 0);
    let good = m.state(&EventQueue::new());
    let refused = |f: &dyn Fn(&mut MachineState)| {
        let mut s = good.clone();
        f(&mut s);
        let e = MachineState::decode(&s.encode()).unwrap_err();
        assert!(
            matches!(
                e,
                SnapshotError::Device { slot: 1, .. } | SnapshotError::Device { slot: 0, .. }
            ),
            "{e}"
        );
        assert!(machine(Profile::Papr, true)
            .restore(&s, &mut EventQueue::new())
            .is_err());
        e
    };
    fn rec(s: &mut MachineState) -> &mut FlushRecord {
        s.devices[1].state.flushes[0].as_mut().unwrap()
    }
    for rc in [H_LONG_BUSY_ORDER_10_MSEC, H_BUSY, H_P2] {
        let e = refused(&|s| rec(s).result = Some(rc));
        assert!(e.to_string().contains("result"), "{e}");
    }
    for rc in [H_LONG_BUSY_ORDER_1_SEC, H_BUSY] {
        refused(&|s| rec(s).injected = Some(rc));
        refused(&|s| s.devices[1].state.faults.flush_result = Some(rc));
    }
    refused(&|s| rec(s).hold = u32::MAX);
    let e = refused(&|s| s.devices[0].state.faults.bind_busy = u32::MAX);
    assert!(matches!(
        e,
        SnapshotError::Device {
            source: StateError::BadFault {
                field: "bind_busy",
                ..
            },
            ..
        }
    ));
    refused(&|s| s.devices[1].state.faults.flush_hold = u32::MAX);
    refused(&|s| s.devices[1].state.flush_token = u64::MAX);
    // The largest values allowed decode, and a guest's loops end on them.
    let mut edge = good.clone();
    edge.devices[0].state.faults.bind_busy = papr_scm::device::MAX_FAULT_ROUNDS;
    rec(&mut edge).hold = papr_scm::device::MAX_FAULT_ROUNDS;
    rec(&mut edge).injected = Some(H_HARDWARE);
    let dst = machine(Profile::Papr, true);
    dst.restore(
        &MachineState::decode(&edge.encode()).unwrap(),
        &mut EventQueue::new(),
    )
    .unwrap();
    let mut n = 0;
    let mut token = 0;
    let rc = loop {
        let o = dst.h_scm_bind_mem(0x9000_0000, 0, 4, u64::MAX, token);
        n += 1;
        if o.status != H_BUSY {
            break o.status;
        }
        token = o.out.r4.unwrap();
    };
    assert_eq!((rc, n), (H_SUCCESS, papr_scm::device::MAX_FAULT_ROUNDS + 1));
    let mut polls = 0;
    let rc = loop {
        let o = dst.h_scm_flush(0x9000_0001, 1);
        polls += 1;
        if !o.status.is_long_busy() {
            break o.status;
        }
        assert_eq!(o.out.r4, Some(1), "a retry answer keeps the token");
    };
    assert_eq!(rc, H_HARDWARE);
    assert!(polls <= papr_scm::device::MAX_FAULT_ROUNDS + 2);
    // The qemu profile keeps no bind state: a snapshot with some is refused.
    let q = machine(Profile::Qemu, false);
    let mut s = q.state(&EventQueue::new());
    s.devices[0].state.bindings.insert(0, 1).unwrap();
    assert!(matches!(
        MachineState::decode(&s.encode()),
        Err(SnapshotError::Device {
            source: StateError::NotInProfile { field: "bindings" },
            ..
        })
    ));
}
