// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A machine's SCM state for migration: every device's hcall and connector
//! state and the hotplug event queue, as a plain struct
//! ([`MachineState`], `state()` / `restore()`) and as a versioned
//! big-endian byte form ([`MachineState::encode`] / [`MachineState::decode`]).
//!
//! Labels and data are not in it: they travel with the backing file (or as
//! RAM), as in QEMU, where the label area is part of the NVDIMM's memory
//! region. What is in it is what QEMU migrates and more: QEMU's
//! `spapr_nvdimm_states` (flush-required, the token counter, the flush
//! lists) and `spapr_drc` (state, unplug requested) per device, the pending
//! events per machine; papr-scm adds the bindings, a bind in progress, the
//! health bits and the injected faults, which its `papr` profile keeps.
//!
//! # Format, version 1
//!
//! All integers big-endian (`byteorder`). `bool` is one byte, 0 or 1; an
//! option is a presence byte then the value.
//!
//! ```text
//! header: magic "PSCMSNAP" | version u16 = 1 | profile u8 (0 qemu, 1 papr) |
//!         slot_count u32 | device_count u16
//! events: hotplug_source bool | next_plid u32 | count u16 |
//!         count × (action u8 | drc u32 | year u16 | month day hour minute second u8 | plid u32)
//! devices: device_count × device
//! device: slot u32 | flush_required bool | blocks u64
//!         runs u16 | runs × (start u64 | count u64)
//!         bind_progress option(token u64 | start u64 | count u64 | done u64)
//!         bind_token u64 | health u64 | flush_token u64
//!         flushes u8 | flushes × (token u64 | result option(i64) | hold u32 |
//!                                 fresh bool | injected option(i64))
//!         faults: bind_busy u32 | bind_budget option(u64) | flush_hold u32 |
//!                 flush_order i64 | flush_result option(i64) | stats u8
//!         connector: state u32 | unplug_requested bool
//! ```
//!
//! Decoding is strict: wrong magic or version, truncation, trailing bytes,
//! an out-of-range value and a non-canonical form (runs out of order or
//! touching, devices out of slot order) are errors naming the field, so
//! every accepted input encodes back to the same bytes.

use alloc::vec::Vec;

use byteorder::{BigEndian, ByteOrder};
use thiserror::Error;

use super::{Machine, SlotTable};
use crate::config::{FlushMode, Profile};
use crate::device::{
    check_state_blocks, check_state_profile, BindProgress, Bindings, Ctx, DeviceState, Faults,
    FlushRecord, StateError, StatsMode, MAX_FLUSHES,
};
use crate::drc::{ConnectorState, DrcIndex, DrcState};
use crate::hcall::{HealthBits, ReturnCode};
use crate::host::Host;
use crate::rtas_error_log::{EventQueue, HotplugAction, HotplugEvent, RtcTime, EVENT_QUEUE_LEN};

/// The magic bytes that open a snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"PSCMSNAP";
/// The format version this crate writes and reads.
pub const SNAPSHOT_VERSION: u16 = 1;

/// One device's part of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotState {
    /// The slot.
    pub slot: u32,
    /// The device needs H_SCM_FLUSH (QEMU's `flush-required`): source and
    /// destination must agree.
    pub flush_required: bool,
    /// The device's blocks, checked against the destination's device.
    pub blocks: u64,
    /// The hcall and connector state.
    pub state: DeviceState,
}

/// Everything of a machine's SCM state the guest can observe, but labels
/// and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineState {
    /// The hcall profile.
    pub profile: Profile,
    /// The machine's slot count.
    pub slot_count: u32,
    /// The devices, in slot order.
    pub devices: Vec<SlotState>,
    /// The hotplug source the guest negotiated.
    pub hotplug_source: bool,
    /// The next PLID.
    pub next_plid: u32,
    /// The pending hotplug events, oldest first.
    pub events: Vec<HotplugEvent>,
}

/// A snapshot that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// Not a papr-scm snapshot.
    #[error("snapshot: bad magic")]
    BadMagic,
    /// A version this crate does not read.
    #[error("snapshot: version {0} (this crate reads version {SNAPSHOT_VERSION})")]
    Version(u16),
    /// The bytes end inside `field`.
    #[error("snapshot: truncated in {0}")]
    Truncated(&'static str),
    /// Bytes after the last device.
    #[error("snapshot: {0} bytes after the end")]
    Trailing(usize),
    /// `field` holds a value it cannot hold.
    #[error("snapshot: {field}: {value:#x} is out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A device state that no device could be in.
    #[error("snapshot: slot {slot}: {source}")]
    Device {
        /// The slot.
        slot: u32,
        /// What is wrong.
        source: StateError,
    },
}

/// A snapshot that does not fit the machine it is restored into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// The profiles differ.
    #[error("restore: profile: the snapshot is {snapshot:?}, the machine {machine:?}")]
    Profile {
        /// The snapshot's.
        snapshot: Profile,
        /// The machine's.
        machine: Profile,
    },
    /// The slot counts differ.
    #[error("restore: slots: the snapshot has {snapshot}, the machine {machine}")]
    Slots {
        /// The snapshot's.
        snapshot: u32,
        /// The machine's.
        machine: u32,
    },
    /// A device of the snapshot has no device in the machine, or the
    /// other way round.
    #[error("restore: slot {slot}: {}", if *.in_snapshot { "the machine has no device there" } else { "the snapshot has no device there" })]
    Plugged {
        /// The slot.
        slot: u32,
        /// The device is in the snapshot (and missing from the machine).
        in_snapshot: bool,
    },
    /// Source and destination disagree on whether flush hcalls are
    /// required (QEMU fails the migration with EINVAL, both directions).
    #[error("restore: slot {slot}: flush-required is {snapshot} in the snapshot, {machine} here")]
    FlushRequired {
        /// The slot.
        slot: u32,
        /// The snapshot's.
        snapshot: bool,
        /// The machine's.
        machine: bool,
    },
    /// The devices' sizes differ.
    #[error("restore: slot {slot}: {snapshot} blocks in the snapshot, {machine} here")]
    Blocks {
        /// The slot.
        slot: u32,
        /// The snapshot's.
        snapshot: u64,
        /// The machine's.
        machine: u64,
    },
    /// A device state the destination device refuses.
    #[error("restore: slot {slot}: {source}")]
    Device {
        /// The slot.
        slot: u32,
        /// What is wrong.
        source: StateError,
    },
    /// An event for a connector the machine does not have, or too many.
    #[error("restore: events: {0}")]
    Events(&'static str),
}

impl<S: SlotTable, H: Host> Machine<S, H> {
    /// The machine's SCM state with the VMM's event queue, for a snapshot.
    pub fn state(&self, events: &EventQueue) -> MachineState {
        let mut devices = Vec::new();
        for slot in 0..self.slot_count {
            if let Some(d) = self.slots.with_slot(slot, |d| SlotState {
                slot,
                flush_required: d.spec().flush == FlushMode::Hcall,
                blocks: d.spec().blocks(),
                state: d.state(),
            }) {
                devices.push(d);
            }
        }
        MachineState {
            profile: self.profile,
            slot_count: self.slot_count,
            devices,
            hotplug_source: events.hotplug_source(),
            next_plid: events.next_plid(),
            events: events.iter().copied().collect(),
        }
    }

    /// Restores `snap` into this machine in place: its devices keep their
    /// label stores (labels travel with the backing file); each gets its
    /// state, flushes still pending go to this host's executor again (so
    /// the guest's tokens stay valid), and `events` becomes the snapshot's
    /// queue. Everything is checked before anything changes.
    ///
    /// Towards the host, a restore is a change like any other: the flush
    /// records the devices held are dropped with
    /// [`FlushExecutor::forget_flush`](crate::host::FlushExecutor::forget_flush),
    /// each device's flush counter keeps the higher of its own and the
    /// snapshot's (so restoring an earlier snapshot never hands out a
    /// token twice), and the bindings that differ are reported to
    /// [`BindEvents`](crate::host::BindEvents): `unbound` for the runs the
    /// snapshot drops, then `bound` for the runs it brings (all of them on
    /// a fresh migration destination).
    pub fn restore(
        &self,
        snap: &MachineState,
        events: &mut EventQueue,
    ) -> Result<(), RestoreError> {
        if snap.profile != self.profile {
            return Err(RestoreError::Profile {
                snapshot: snap.profile,
                machine: self.profile,
            });
        }
        if snap.slot_count != self.slot_count {
            return Err(RestoreError::Slots {
                snapshot: snap.slot_count,
                machine: self.slot_count,
            });
        }
        for slot in 0..self.slot_count {
            let here = self.slots.with_slot(slot, |d| {
                (d.spec().flush == FlushMode::Hcall, d.spec().blocks())
            });
            let there = snap.devices.iter().find(|d| d.slot == slot);
            match (here, there) {
                (None, None) => {}
                (None, Some(_)) => {
                    return Err(RestoreError::Plugged {
                        slot,
                        in_snapshot: true,
                    })
                }
                (Some(_), None) => {
                    return Err(RestoreError::Plugged {
                        slot,
                        in_snapshot: false,
                    })
                }
                (Some((flush, blocks)), Some(d)) => {
                    if flush != d.flush_required {
                        return Err(RestoreError::FlushRequired {
                            slot,
                            snapshot: d.flush_required,
                            machine: flush,
                        });
                    }
                    if blocks != d.blocks {
                        return Err(RestoreError::Blocks {
                            slot,
                            snapshot: d.blocks,
                            machine: blocks,
                        });
                    }
                    // The checks the restore makes, before any device changes.
                    check_state_blocks(blocks, &d.state)
                        .and_then(|()| check_state_profile(self.profile, &d.state))
                        .map_err(|source| RestoreError::Device { slot, source })?;
                }
            }
        }
        if snap.events.iter().any(|e| e.drc.slot() >= self.slot_count) {
            return Err(RestoreError::Events(
                "an event names a connector past the last slot",
            ));
        }
        let queue = EventQueue::from_parts(snap.hotplug_source, snap.next_plid, &snap.events)
            .map_err(|_| RestoreError::Events("more events than the queue holds"))?;
        let ctx = Ctx {
            profile: self.profile,
            host: &self.host,
        };
        for d in &snap.devices {
            self.slots.with_slot(d.slot, |dev| {
                // Checked above against the same spec: cannot fail.
                let _ = dev.restore_in_place(ctx, d.state);
                // The devices and their addresses are the machine's own
                // (checked above), so the index's ranges stand; its
                // bound-slot bitmap follows the restored bindings, under
                // the device's lock as for a bind, or a partition-wide
                // UNBIND_ALL would not visit them.
                if dev.has_bind_state() {
                    self.index.mark_bound(d.slot);
                } else {
                    self.index.mark_unbound(d.slot);
                }
            });
        }
        *events = queue;
        Ok(())
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.u64(v);
        }
    }
    fn opt_rc(&mut self, v: Option<ReturnCode>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.i64(v.0);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&[u8], SnapshotError> {
        if self.0.len() < n {
            return Err(SnapshotError::Truncated(field));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self, f: &'static str) -> Result<u8, SnapshotError> {
        Ok(self.take(1, f)?[0])
    }
    fn bool(&mut self, f: &'static str) -> Result<bool, SnapshotError> {
        match self.u8(f)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(SnapshotError::OutOfRange {
                field: f,
                value: u64::from(v),
            }),
        }
    }
    fn u16(&mut self, f: &'static str) -> Result<u16, SnapshotError> {
        Ok(BigEndian::read_u16(self.take(2, f)?))
    }
    fn u32(&mut self, f: &'static str) -> Result<u32, SnapshotError> {
        Ok(BigEndian::read_u32(self.take(4, f)?))
    }
    fn u64(&mut self, f: &'static str) -> Result<u64, SnapshotError> {
        Ok(BigEndian::read_u64(self.take(8, f)?))
    }
    fn i64(&mut self, f: &'static str) -> Result<i64, SnapshotError> {
        Ok(BigEndian::read_i64(self.take(8, f)?))
    }
    fn opt_u64(&mut self, f: &'static str) -> Result<Option<u64>, SnapshotError> {
        Ok(if self.bool(f)? {
            Some(self.u64(f)?)
        } else {
            None
        })
    }
    fn opt_rc(&mut self, f: &'static str) -> Result<Option<ReturnCode>, SnapshotError> {
        Ok(if self.bool(f)? {
            Some(ReturnCode(self.i64(f)?))
        } else {
            None
        })
    }
}

fn out_of_range(field: &'static str, value: u64) -> SnapshotError {
    SnapshotError::OutOfRange { field, value }
}

impl MachineState {
    /// The version-1 byte form (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + 256 * self.devices.len()));
        w.0.extend_from_slice(SNAPSHOT_MAGIC);
        w.u16(SNAPSHOT_VERSION);
        w.u8(match self.profile {
            Profile::Qemu => 0,
            Profile::Papr => 1,
        });
        w.u32(self.slot_count);
        w.u16(self.devices.len() as u16);
        w.bool(self.hotplug_source);
        w.u32(self.next_plid);
        w.u16(self.events.len() as u16);
        for e in &self.events {
            w.u8(e.action as u8);
            w.u32(e.drc.raw());
            w.u16(e.time.year);
            for v in [
                e.time.month,
                e.time.day,
                e.time.hour,
                e.time.minute,
                e.time.second,
            ] {
                w.u8(v);
            }
            w.u32(e.plid);
        }
        for d in &self.devices {
            let s = &d.state;
            w.u32(d.slot);
            w.bool(d.flush_required);
            w.u64(d.blocks);
            w.u16(s.bindings.runs().len() as u16);
            for &(start, count) in s.bindings.runs() {
                w.u64(start);
                w.u64(count);
            }
            w.bool(s.bind_progress.is_some());
            if let Some(p) = s.bind_progress {
                for v in [p.token, p.start, p.count, p.done] {
                    w.u64(v);
                }
            }
            w.u64(s.bind_token);
            w.u64(s.health.bits());
            w.u64(s.flush_token);
            let flushes: Vec<&FlushRecord> = s.flushes.iter().flatten().collect();
            w.u8(flushes.len() as u8);
            for r in flushes {
                w.u64(r.token);
                w.opt_rc(r.result);
                w.u32(r.hold);
                w.bool(r.fresh);
                w.opt_rc(r.injected);
            }
            let f = &s.faults;
            w.u32(f.bind_busy);
            w.opt_u64(f.bind_budget);
            w.u32(f.flush_hold);
            w.i64(f.flush_order.0);
            w.opt_rc(f.flush_result);
            w.u8(match f.stats {
                StatsMode::Enabled => 0,
                StatsMode::Unsupported => 1,
                StatsMode::Authority => 2,
            });
            w.u32(s.connector.state as u32);
            w.bool(s.connector.unplug_requested);
        }
        w.0
    }

    /// Decodes the version-1 byte form, refusing anything [`encode`]
    /// would not write (the errors name the field).
    ///
    /// [`encode`]: MachineState::encode
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut r = Reader(bytes);
        if r.take(8, "magic").map_err(|_| SnapshotError::BadMagic)? != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u16("version")?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(version));
        }
        let profile = match r.u8("profile")? {
            0 => Profile::Qemu,
            1 => Profile::Papr,
            v => return Err(out_of_range("profile", u64::from(v))),
        };
        let slot_count = r.u32("slot_count")?;
        if slot_count > crate::drc::MAX_SLOTS {
            return Err(out_of_range("slot_count", u64::from(slot_count)));
        }
        let device_count = r.u16("device_count")?;
        if u32::from(device_count) > slot_count {
            return Err(out_of_range("device_count", u64::from(device_count)));
        }
        let hotplug_source = r.bool("events.hotplug_source")?;
        let next_plid = r.u32("events.next_plid")?;
        let n = r.u16("events.count")?;
        if usize::from(n) > EVENT_QUEUE_LEN {
            return Err(out_of_range("events.count", u64::from(n)));
        }
        let mut events = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let action = match r.u8("event.action")? {
                1 => HotplugAction::Add,
                2 => HotplugAction::Remove,
                v => return Err(out_of_range("event.action", u64::from(v))),
            };
            let raw = r.u32("event.drc")?;
            let drc = DrcIndex::from_raw(raw)
                .filter(|d| d.slot() < slot_count)
                .ok_or(out_of_range("event.drc", u64::from(raw)))?;
            let year = r.u16("event.time")?;
            let mut t = [0u8; 5];
            for v in &mut t {
                *v = r.u8("event.time")?;
            }
            let time = RtcTime {
                year,
                month: t[0],
                day: t[1],
                hour: t[2],
                minute: t[3],
                second: t[4],
            };
            let plid = r.u32("event.plid")?;
            events.push(HotplugEvent {
                action,
                drc,
                time,
                plid,
            });
        }
        let mut devices: Vec<SlotState> = Vec::with_capacity(usize::from(device_count));
        for _ in 0..device_count {
            let slot = r.u32("device.slot")?;
            // Slot order, each once: the canonical form.
            if slot >= slot_count || devices.last().is_some_and(|p| p.slot >= slot) {
                return Err(out_of_range("device.slot", u64::from(slot)));
            }
            let flush_required = r.bool("device.flush_required")?;
            let blocks = r.u64("device.blocks")?;
            let mut state = DeviceState::default();
            let runs = r.u16("device.bindings")?;
            let mut bindings = Bindings::new();
            let mut prev_end = None;
            for _ in 0..runs {
                let start = r.u64("device.bindings")?;
                let count = r.u64("device.bindings")?;
                // Sorted, disjoint, not touching: what Bindings keeps.
                if count == 0 || prev_end.is_some_and(|e| start <= e) {
                    return Err(out_of_range("device.bindings", start));
                }
                let end = start
                    .checked_add(count)
                    .filter(|&e| e <= blocks)
                    .ok_or(out_of_range("device.bindings", start))?;
                bindings
                    .insert(start, count)
                    .map_err(|_| out_of_range("device.bindings", u64::from(runs)))?;
                prev_end = Some(end);
            }
            state.bindings = bindings;
            if r.bool("device.bind_progress")? {
                let mut v = [0u64; 4];
                for x in &mut v {
                    *x = r.u64("device.bind_progress")?;
                }
                state.bind_progress = Some(BindProgress {
                    token: v[0],
                    start: v[1],
                    count: v[2],
                    done: v[3],
                });
            }
            state.bind_token = r.u64("device.bind_token")?;
            let health = r.u64("device.health")?;
            state.health =
                HealthBits::from_bits(health).ok_or(out_of_range("device.health", health))?;
            state.flush_token = r.u64("device.flush_token")?;
            let n = r.u8("device.flushes")?;
            if usize::from(n) > MAX_FLUSHES {
                return Err(out_of_range("device.flushes", u64::from(n)));
            }
            for i in 0..usize::from(n) {
                let token = r.u64("flush.token")?;
                let result = r.opt_rc("flush.result")?;
                let hold = r.u32("flush.hold")?;
                let fresh = r.bool("flush.fresh")?;
                let injected = r.opt_rc("flush.injected")?;
                state.flushes[i] = Some(FlushRecord {
                    token,
                    result,
                    hold,
                    fresh,
                    injected,
                });
            }
            state.faults = Faults {
                bind_busy: r.u32("faults.bind_busy")?,
                bind_budget: r.opt_u64("faults.bind_budget")?,
                flush_hold: r.u32("faults.flush_hold")?,
                flush_order: ReturnCode(r.i64("faults.flush_order")?),
                flush_result: r.opt_rc("faults.flush_result")?,
                stats: match r.u8("faults.stats")? {
                    0 => StatsMode::Enabled,
                    1 => StatsMode::Unsupported,
                    2 => StatsMode::Authority,
                    v => return Err(out_of_range("faults.stats", u64::from(v))),
                },
            };
            let raw = r.u32("connector.state")?;
            state.connector = ConnectorState {
                state: DrcState::from_raw(raw)
                    .ok_or(out_of_range("connector.state", u64::from(raw)))?,
                unplug_requested: r.bool("connector.unplug_requested")?,
            };
            check_slot_state(profile, slot, blocks, &state)?;
            devices.push(SlotState {
                slot,
                flush_required,
                blocks,
                state,
            });
        }
        if !r.0.is_empty() {
            return Err(SnapshotError::Trailing(r.0.len()));
        }
        Ok(MachineState {
            profile,
            slot_count,
            devices,
            hotplug_source,
            next_plid,
            events,
        })
    }
}

/// The device rules of `Device::from_state` that need only the block
/// count and the profile, so a decoded state is one some device of that
/// size can hold and no later hcall trips over.
fn check_slot_state(
    profile: Profile,
    slot: u32,
    blocks: u64,
    state: &DeviceState,
) -> Result<(), SnapshotError> {
    check_state_blocks(blocks, state)
        .and_then(|()| check_state_profile(profile, state))
        .map_err(|source| SnapshotError::Device { slot, source })
}
