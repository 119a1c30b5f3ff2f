// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The RTAS error log of a PMEM hotplug event, and the queue the guest
//! drains with `check-exception`.
//!
//! QEMU's `spapr_hotplug_req_event` (`hw/ppc/spapr_events.c`) builds a
//! 116-byte, big-endian PAPR v6 log: the 8-byte `rtas_error_log` header,
//! the v6 extended header, then three sections — Main-A "PH", Main-B "UH"
//! and the hotplug section "HP" naming the PMEM DRC. Linux's
//! `ras_hotplug_interrupt` finds the "HP" section and hands resource 6
//! (PMEM) to `dlpar_hp_pmem`, which accepts only "by DRC index".

use crate::config::Profile;
use crate::drc::DrcIndex;

/// Bytes of a hotplug event: 8 header + 108 extended.
pub const HOTPLUG_EVENT_LEN: usize = 116;
/// `extended_length` of a hotplug event.
pub const HOTPLUG_EXTENDED_LEN: u32 = 108;

/// `RTAS_LOG_VERSION_6`.
pub const RTAS_LOG_VERSION_6: u32 = 0x0600_0000;
/// `RTAS_LOG_SEVERITY_EVENT`.
pub const RTAS_LOG_SEVERITY_EVENT: u32 = 0x0020_0000;
/// `RTAS_LOG_DISPOSITION_NOT_RECOVERED`.
pub const RTAS_LOG_DISPOSITION_NOT_RECOVERED: u32 = 0x0010_0000;
/// `RTAS_LOG_OPTIONAL_PART_PRESENT`.
pub const RTAS_LOG_OPTIONAL_PART_PRESENT: u32 = 0x0004_0000;
/// `RTAS_LOG_INITIATOR_HOTPLUG`.
pub const RTAS_LOG_INITIATOR_HOTPLUG: u32 = 0x0000_6000;
/// `RTAS_LOG_TYPE_HOTPLUG`.
pub const RTAS_LOG_TYPE_HOTPLUG: u32 = 0xE5;
/// The summary word of every hotplug event: 0x063460E5.
pub const HOTPLUG_SUMMARY: u32 = RTAS_LOG_VERSION_6
    | RTAS_LOG_SEVERITY_EVENT
    | RTAS_LOG_DISPOSITION_NOT_RECOVERED
    | RTAS_LOG_OPTIONAL_PART_PRESENT
    | RTAS_LOG_INITIATOR_HOTPLUG
    | RTAS_LOG_TYPE_HOTPLUG;

/// `RTAS_LOG_V6_HP_TYPE_PMEM`.
pub const RTAS_LOG_V6_HP_TYPE_PMEM: u8 = 6;
/// `RTAS_LOG_V6_HP_ID_DRC_INDEX`.
pub const RTAS_LOG_V6_HP_ID_DRC_INDEX: u8 = 2;

/// `check-exception` class mask bit of the EPOW source.
pub const EVENT_MASK_EPOW: u32 = 0x4000_0000;
/// `check-exception` class mask bit of the hot-plug source.
pub const EVENT_MASK_HOTPLUG: u32 = 0x1000_0000;

/// What a hotplug event asks of the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HotplugAction {
    /// `RTAS_LOG_V6_HP_ACTION_ADD`.
    Add = 1,
    /// `RTAS_LOG_V6_HP_ACTION_REMOVE`.
    Remove = 2,
}

/// The interrupt source an event is delivered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSource {
    /// "epow-events": hotplug events go here when the guest did not
    /// negotiate OV5_HP_EVT at CAS (`rtas_event_log_to_source`).
    Epow,
    /// "hot-plug-events", the dedicated source.
    HotPlug,
}

impl EventSource {
    /// The source's `check-exception` class mask bit.
    pub const fn mask(self) -> u32 {
        match self {
            EventSource::Epow => EVENT_MASK_EPOW,
            EventSource::HotPlug => EVENT_MASK_HOTPLUG,
        }
    }
}

/// The guest's time of day, for the Main-A BCD stamp (QEMU reads the
/// guest's RTC, `spapr_rtc_read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RtcTime {
    /// Year, e.g. 2026.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
}

/// Two decimal digits as BCD (values past 99 keep their last two digits,
/// so a bad clock cannot make a non-BCD nibble).
const fn bcd(v: u32) -> u32 {
    let v = v % 100;
    ((v / 10) << 4) | (v % 10)
}

impl RtcTime {
    /// `creation_date`, BCD YYYYMMDD.
    pub const fn bcd_date(&self) -> u32 {
        let y = self.year as u32;
        (bcd(y / 100) << 24)
            | (bcd(y % 100) << 16)
            | (bcd(self.month as u32) << 8)
            | bcd(self.day as u32)
    }

    /// `creation_time`, BCD HHMMSS00.
    pub const fn bcd_time(&self) -> u32 {
        (bcd(self.hour as u32) << 24)
            | (bcd(self.minute as u32) << 16)
            | (bcd(self.second as u32) << 8)
    }
}

/// One hotplug event, before encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HotplugEvent {
    /// Add or remove.
    pub action: HotplugAction,
    /// The PMEM DRC.
    pub drc: DrcIndex,
    /// When it was raised (guest time).
    pub time: RtcTime,
    /// Platform log id (QEMU's `next_plid`, counting from 0).
    pub plid: u32,
}

impl HotplugEvent {
    /// The 116 bytes the guest reads. `qemu` stores the PLID in host byte
    /// order, as QEMU does (`maina->plid = next_plid++`, little-endian on
    /// the x86 and ppc64le hosts QEMU runs pseries on); `papr` writes it
    /// big-endian like every other field.
    pub fn encode(&self, profile: Profile) -> [u8; HOTPLUG_EVENT_LEN] {
        let mut b = [0u8; HOTPLUG_EVENT_LEN];
        let put32 = |b: &mut [u8; HOTPLUG_EVENT_LEN], off: usize, v: u32| {
            b[off..off + 4].copy_from_slice(&v.to_be_bytes())
        };
        let section =
            |b: &mut [u8; HOTPLUG_EVENT_LEN], off: usize, id: &[u8; 2], len: u16, version: u8| {
                b[off..off + 2].copy_from_slice(id);
                b[off + 2..off + 4].copy_from_slice(&len.to_be_bytes());
                b[off + 4] = version;
            };
        // rtas_error_log
        put32(&mut b, 0, HOTPLUG_SUMMARY);
        put32(&mut b, 4, HOTPLUG_EXTENDED_LEN);
        // rtas_event_log_v6: VALID | NEW_LOG | BIGENDIAN, POWERPC_FORMAT |
        // PLATFORM_EVENT, company "IBM\0".
        b[8] = 0x86;
        b[10] = 0x8E;
        b[20..24].copy_from_slice(b"IBM\0");
        // Main-A "PH", 48 bytes.
        section(&mut b, 24, b"PH", 48, 0);
        put32(&mut b, 32, self.time.bcd_date());
        put32(&mut b, 36, self.time.bcd_time());
        b[48] = b'H'; // creator: hypervisor
        b[51] = 3; // Main-A, Main-B, HP
        let plid = match profile {
            Profile::Qemu => self.plid.to_le_bytes(),
            Profile::Papr => self.plid.to_be_bytes(),
        };
        b[64..68].copy_from_slice(&plid);
        // Main-B "UH", 24 bytes: subsystem 0x80, informational.
        section(&mut b, 72, b"UH", 24, 0);
        b[80] = 0x80;
        // Hotplug "HP", 20 bytes, version 1.
        section(&mut b, 96, b"HP", 20, 1);
        b[104] = RTAS_LOG_V6_HP_TYPE_PMEM;
        b[105] = self.action as u8;
        b[106] = RTAS_LOG_V6_HP_ID_DRC_INDEX;
        put32(&mut b, 108, self.drc.raw());
        b
    }
}

/// How many events the queue holds: one add and one remove for every
/// slot, which is more than a guest that drains its events can leave.
pub const EVENT_QUEUE_LEN: usize = 2 * crate::drc::MAX_SLOTS as usize;

/// The event queue is full (the guest has not been draining its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("events: the queue is full of events the guest has not collected")]
pub struct QueueFull;

/// The queue PMEM hot-plug events go to: papr-scm's own [`EventQueue`], or
/// the VMM's, which already holds its EPOW and CPU/LMB hot-plug events.
///
/// `check-exception` hands out one queue's events oldest first, whatever
/// their class, with one PLID counter; with two queues the guest would see
/// two orders and two PLID sequences. A VMM that has a queue of its own
/// (QEMU's `pending_events`) implements this trait on a small value that
/// forwards to it (QEMU: `spapr_hotplug_req_add_by_index` /
/// `_remove_by_index`), encodes and stamps the event itself, raises its
/// interrupt, and answers `check-exception` and `event-scan` itself:
/// [`Machine::rtas`](crate::machine::Machine::rtas) answers them only when
/// [`queue`](Self::queue) gives it papr-scm's own queue.
pub trait EventSink {
    /// Queues an event for `drc`, stamped `time` (the host's
    /// [`EventSignal::guest_time`](crate::host::EventSignal::guest_time)),
    /// or refuses it when the queue is full.
    fn push(
        &mut self,
        action: HotplugAction,
        drc: DrcIndex,
        time: RtcTime,
    ) -> Result<(), QueueFull>;

    /// Drops the queued events naming `drc` (an unplug of a connector the
    /// guest never acquired: its add event must not reach the guest after
    /// the device left); the number dropped.
    fn withdraw(&mut self, drc: DrcIndex) -> usize;

    /// papr-scm's own queue, when this sink is one: then the machine
    /// answers `check-exception` and `event-scan` from it and pulses the
    /// host's [`EventSignal`](crate::host::EventSignal) for its events. The
    /// default, for a VMM's queue, is `None`: the VMM answers and signals.
    fn queue(&mut self) -> Option<&mut EventQueue> {
        None
    }
}

impl EventSink for EventQueue {
    fn push(
        &mut self,
        action: HotplugAction,
        drc: DrcIndex,
        time: RtcTime,
    ) -> Result<(), QueueFull> {
        EventQueue::push(self, action, drc, time).map(|_| ())
    }

    fn withdraw(&mut self, drc: DrcIndex) -> usize {
        self.remove_drc(drc)
    }

    fn queue(&mut self) -> Option<&mut EventQueue> {
        Some(self)
    }
}

/// Pending PMEM hotplug events, oldest first, with QEMU's `check-exception`
/// semantics. A plain value owned by the VMM (no heap; RTAS calls are
/// serialised by the VMM, as QEMU serialises them under its big lock).
#[derive(Clone, PartialEq, Eq)]
pub struct EventQueue {
    events: [Option<HotplugEvent>; EVENT_QUEUE_LEN],
    head: usize,
    len: usize,
    next_plid: u32,
    /// The guest negotiated OV5_HP_EVT (the dedicated source) at CAS.
    hotplug_source: bool,
}

impl core::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventQueue")
            .field("len", &self.len)
            .field("next_plid", &self.next_plid)
            .field("hotplug_source", &self.hotplug_source)
            .finish()
    }
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl EventQueue {
    /// An empty queue; events go to the EPOW source until CAS says the
    /// guest knows the dedicated one.
    pub const fn new() -> Self {
        EventQueue {
            events: [None; EVENT_QUEUE_LEN],
            head: 0,
            len: 0,
            next_plid: 0,
            hotplug_source: false,
        }
    }

    /// A queue holding `events` (oldest first), for a restore.
    pub fn from_parts(
        hotplug_source: bool,
        next_plid: u32,
        events: &[HotplugEvent],
    ) -> Result<Self, QueueFull> {
        if events.len() > EVENT_QUEUE_LEN {
            return Err(QueueFull);
        }
        let mut q = EventQueue::new();
        q.hotplug_source = hotplug_source;
        q.next_plid = next_plid;
        for (slot, ev) in q.events.iter_mut().zip(events) {
            *slot = Some(*ev);
        }
        q.len = events.len();
        Ok(q)
    }

    /// Whether the guest negotiated the dedicated hot-plug source.
    pub const fn hotplug_source(&self) -> bool {
        self.hotplug_source
    }

    /// Number of events queued.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is queued.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where hotplug events are delivered now.
    pub const fn source(&self) -> EventSource {
        if self.hotplug_source {
            EventSource::HotPlug
        } else {
            EventSource::Epow
        }
    }

    /// The next PLID to hand out. QEMU shares one counter with EPOW and
    /// machine-check events; a VMM that raises those too sets it here.
    pub fn set_next_plid(&mut self, plid: u32) {
        self.next_plid = plid;
    }

    /// The next PLID.
    pub const fn next_plid(&self) -> u32 {
        self.next_plid
    }

    /// Queues an event for `drc`, stamped `time`, with the next PLID.
    pub fn push(
        &mut self,
        action: HotplugAction,
        drc: DrcIndex,
        time: RtcTime,
    ) -> Result<HotplugEvent, QueueFull> {
        if self.len == EVENT_QUEUE_LEN {
            return Err(QueueFull);
        }
        let ev = HotplugEvent {
            action,
            drc,
            time,
            plid: self.next_plid,
        };
        self.next_plid = self.next_plid.wrapping_add(1);
        self.events[(self.head + self.len) % EVENT_QUEUE_LEN] = Some(ev);
        self.len += 1;
        Ok(ev)
    }

    /// The queued events, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &HotplugEvent> {
        (0..self.len).filter_map(move |i| self.events[(self.head + i) % EVENT_QUEUE_LEN].as_ref())
    }

    /// The oldest event whose source is in `mask`, left queued.
    pub fn peek(&self, mask: u32) -> Option<&HotplugEvent> {
        if self.len == 0 || mask & self.source().mask() == 0 {
            return None;
        }
        self.events[self.head].as_ref()
    }

    /// Takes the oldest event whose source is in `mask`
    /// (`rtas_event_log_dequeue`: every queued event is on the same source).
    pub fn pop(&mut self, mask: u32) -> Option<HotplugEvent> {
        if self.len == 0 || mask & self.source().mask() == 0 {
            return None;
        }
        let ev = self.events[self.head].take();
        self.head = (self.head + 1) % EVENT_QUEUE_LEN;
        self.len -= 1;
        ev
    }

    /// Drops the queued events for `drc` (an unplug of a device the guest
    /// never acquired: its add must not reach the guest after it left).
    pub fn remove_drc(&mut self, drc: DrcIndex) -> usize {
        let mut kept = [None; EVENT_QUEUE_LEN];
        let mut n = 0;
        for ev in self.iter().filter(|e| e.drc != drc) {
            kept[n] = Some(*ev);
            n += 1;
        }
        let removed = self.len - n;
        self.events = kept;
        self.head = 0;
        self.len = n;
        removed
    }

    /// CAS: pending hotplug events are dropped (QEMU
    /// `spapr_clear_pending_hotplug_events`; the guest rescans the tree)
    /// and later ones go to the source the guest negotiated.
    pub fn cas(&mut self, hotplug_source: bool) {
        self.clear();
        self.hotplug_source = hotplug_source;
    }

    /// A machine reset: nothing pending, back to the EPOW source until the
    /// next CAS. The PLID counter keeps counting, as QEMU's does.
    pub fn reset(&mut self) {
        self.clear();
        self.hotplug_source = false;
    }

    fn clear(&mut self) {
        self.events = [None; EVENT_QUEUE_LEN];
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> RtcTime {
        RtcTime {
            year: 2026,
            month: 12,
            day: 1,
            hour: 15,
            minute: 4,
            second: 59,
        }
    }

    #[test]
    fn test_hotplug_event_bytes() {
        let ev = HotplugEvent {
            action: HotplugAction::Add,
            drc: DrcIndex::pmem(1).unwrap(),
            time: time(),
            plid: 0x0102_0304,
        };
        let b = ev.encode(Profile::Qemu);
        let mut want = [0u8; 116];
        want[..8].copy_from_slice(&[0x06, 0x34, 0x60, 0xE5, 0, 0, 0, 108]);
        want[8] = 0x86;
        want[10] = 0x8E;
        want[20..24].copy_from_slice(b"IBM\0");
        want[24..30].copy_from_slice(&[b'P', b'H', 0, 48, 0, 0]);
        want[32..40].copy_from_slice(&[0x20, 0x26, 0x12, 0x01, 0x15, 0x04, 0x59, 0]);
        want[48] = b'H';
        want[51] = 3;
        want[64..68].copy_from_slice(&[4, 3, 2, 1]);
        want[72..78].copy_from_slice(&[b'U', b'H', 0, 24, 0, 0]);
        want[80] = 0x80;
        want[96..102].copy_from_slice(&[b'H', b'P', 0, 20, 1, 0]);
        want[104..108].copy_from_slice(&[6, 1, 2, 0]);
        want[108..112].copy_from_slice(&[0x90, 0, 0, 1]);
        assert_eq!(b, want);
        let p = ev.encode(Profile::Papr);
        assert_eq!(p[64..68], [1, 2, 3, 4]);
        assert_eq!(p[..64], b[..64]);
        assert_eq!(p[68..], b[68..]);
        let r = HotplugEvent {
            action: HotplugAction::Remove,
            ..ev
        }
        .encode(Profile::Papr);
        assert_eq!(r[105], 2);
    }

    #[test]
    fn test_bcd_of_a_bad_clock_stays_bcd() {
        let t = RtcTime {
            year: 65535,
            month: 255,
            day: 255,
            hour: 255,
            minute: 255,
            second: 255,
        };
        for v in [t.bcd_date(), t.bcd_time()] {
            for nibble in 0..8 {
                assert!((v >> (4 * nibble)) & 0xF <= 9);
            }
        }
        assert_eq!(RtcTime::default().bcd_date(), 0);
    }

    #[test]
    fn test_queue_mask_order_and_plids() {
        let d = |s| DrcIndex::pmem(s).unwrap();
        let mut q = EventQueue::new();
        assert_eq!(q.source(), EventSource::Epow);
        q.push(HotplugAction::Add, d(1), time()).unwrap();
        q.push(HotplugAction::Remove, d(2), time()).unwrap();
        // Before CAS the events are on EPOW: a hotplug-only mask sees none.
        assert_eq!(q.pop(EVENT_MASK_HOTPLUG), None);
        let a = q.pop(EVENT_MASK_EPOW | EVENT_MASK_HOTPLUG).unwrap();
        assert_eq!((a.drc, a.plid), (d(1), 0));
        assert_eq!(q.len(), 1);
        q.cas(true);
        assert!(q.is_empty());
        assert_eq!(q.source(), EventSource::HotPlug);
        q.push(HotplugAction::Add, d(3), time()).unwrap();
        assert_eq!(q.pop(EVENT_MASK_EPOW), None);
        assert_eq!(q.pop(EVENT_MASK_HOTPLUG).unwrap().plid, 2);
        q.reset();
        assert_eq!(q.source(), EventSource::Epow);
        assert_eq!(q.next_plid(), 3);
    }

    #[test]
    fn test_queue_full_and_remove_drc() {
        let mut q = EventQueue::new();
        for i in 0..EVENT_QUEUE_LEN {
            q.push(
                HotplugAction::Add,
                DrcIndex::pmem((i % 4) as u32).unwrap(),
                time(),
            )
            .unwrap();
        }
        assert_eq!(
            q.push(HotplugAction::Add, DrcIndex::pmem(0).unwrap(), time()),
            Err(QueueFull)
        );
        q.pop(EVENT_MASK_EPOW).unwrap();
        assert_eq!(
            q.remove_drc(DrcIndex::pmem(1).unwrap()),
            EVENT_QUEUE_LEN / 4
        );
        assert!(q.iter().all(|e| e.drc != DrcIndex::pmem(1).unwrap()));
        assert_eq!(q.len(), EVENT_QUEUE_LEN - 1 - EVENT_QUEUE_LEN / 4);
        assert_eq!(q.iter().next().unwrap().drc, DrcIndex::pmem(2).unwrap());
    }
}
