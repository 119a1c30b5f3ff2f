// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The device life cycle: hot-plug, unplug, and the RTAS calls through
//! which the guest takes part (QEMU `spapr_drc.c`, `spapr_events.c`).
//!
//! Plug puts a validated device into a free slot with an UNUSABLE
//! connector and hands an add event to the event sink (papr-scm's own
//! [`EventQueue`] or the VMM's queue, [`EventSink`]); the guest acquires the
//! connector (`get-sensor-state`, `set-indicator` allocation and isolation),
//! walks the node with `ibm,configure-connector` and probes. Unplug marks
//! the device and hands over a remove event; the device leaves only when
//! the guest gives the connector back (ISOLATE, then allocation UNUSABLE),
//! and the VMM gets it back as [`Released`]. Every RTAS answer is a status
//! word in `rets[0]`; no call allocates.

use thiserror::Error;

use super::{Machine, SlotTable};
use crate::config::{FlushMode, Profile};
use crate::device::{Ctx, Device};
use crate::drc::{Connector, DrcEffect, DrcIndex, WorkArea, WorkAreaError};
use crate::host::{GuestMemory, Host};
use crate::label::{LabelError, LabelStore};
use crate::pmemory::PmemoryNode;
use crate::rtas::*;
use crate::rtas_error_log::{EventQueue, EventSink, HotplugAction, QueueFull, HOTPLUG_EVENT_LEN};

use super::slots::InsertErrorKind;

/// A device that has left its slot.
#[derive(Debug)]
pub struct Released<L> {
    /// The device, with its label store (flush or close it).
    pub device: Device<L>,
    /// Blocks still bound when it left, now unbound (reported through
    /// `BindEvents::unbound`).
    pub unbound_blocks: u64,
    /// Flush requests the guest never collected. Their records are gone
    /// (the executor was told, `FlushExecutor::forget_flush`); the VMM
    /// drains its executor for the slot (`FileFlusher::drain`, then
    /// `detach`) before it closes the backing file.
    pub pending_flushes: usize,
    /// How the label store's last sync went (`LabelStore::flush`): an
    /// error here is the only report of labels that may not be on stable
    /// storage (a later sync of the same file may well succeed).
    pub label_sync: Result<(), LabelError>,
}

/// What an RTAS call did besides its return words.
// The device travels by value: the core has no heap to box it in, and a
// hot-plug path has no size to save.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RtasEffect<L> {
    /// Nothing the VMM needs to act on.
    None,
    /// The guest gave back a connector whose unplug was requested: the
    /// device has left its slot.
    Released(Released<L>),
    /// The guest unisolated a connector whose unplug was requested: it
    /// refused the unplug, and the device stays (QEMU reports
    /// DEVICE_UNPLUG_GUEST_ERROR).
    UnplugRefused {
        /// The slot.
        slot: u32,
    },
    /// configure-connector handed out the whole node: the guest has it.
    Configured {
        /// The slot.
        slot: u32,
    },
}

/// Why a hot-plug was refused; the device is handed back.
#[derive(Error)]
pub enum PlugError<L> {
    /// The slot table refused the device (occupied, out of range, or a
    /// table that cannot insert).
    #[error("slot {slot}: {}", match .kind {
        InsertErrorKind::Occupied => "already holds a device",
        InsertErrorKind::OutOfRange => "is past the last PMEM slot",
        InsertErrorKind::Unsupported => "the slot table cannot insert devices",
    })]
    Slot {
        /// The slot.
        slot: u32,
        /// Why.
        kind: InsertErrorKind,
        /// The device, untouched.
        device: Device<L>,
    },
    /// The device needs H_SCM_FLUSH and the host's flush does not serve
    /// its slot (`FlushExecutor::flushes_slot`).
    #[error(
        "slot {slot}: the device needs H_SCM_FLUSH but the host's FlushExecutor does not flush this slot"
    )]
    NoFlushExecutor {
        /// The slot.
        slot: u32,
        /// The device, untouched.
        device: Device<L>,
    },
    /// The event sink refused the add event; the device was taken back
    /// out of its slot.
    #[error("slot {slot}: {source}")]
    Events {
        /// The slot.
        slot: u32,
        /// The sink's error.
        source: QueueFull,
        /// The device, untouched.
        device: Device<L>,
    },
}

impl<L> core::fmt::Debug for PlugError<L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (name, slot) = match self {
            PlugError::Slot { slot, .. } => ("Slot", slot),
            PlugError::NoFlushExecutor { slot, .. } => ("NoFlushExecutor", slot),
            PlugError::Events { slot, .. } => ("Events", slot),
        };
        f.debug_struct(name)
            .field("slot", slot)
            .finish_non_exhaustive()
    }
}

impl<L> PlugError<L> {
    /// The device that was not plugged.
    pub fn into_device(self) -> Device<L> {
        match self {
            PlugError::Slot { device, .. }
            | PlugError::NoFlushExecutor { device, .. }
            | PlugError::Events { device, .. } => device,
        }
    }
}

/// Why an unplug request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum UnplugError {
    /// Nothing is plugged in the slot.
    #[error("slot {slot}: no device to unplug")]
    Empty {
        /// The slot.
        slot: u32,
    },
    /// An unplug of this device is already waiting for the guest.
    #[error("slot {slot}: an unplug is already in progress")]
    InProgress {
        /// The slot.
        slot: u32,
    },
    /// The event sink refused the remove event; nothing changed.
    #[error("slot {slot}: {source}")]
    Events {
        /// The slot.
        slot: u32,
        /// The sink's error.
        source: QueueFull,
    },
}

/// How an unplug request went.
#[allow(clippy::large_enum_variant)] // as RtasEffect
#[derive(Debug)]
pub enum Unplug<L> {
    /// The guest never acquired the connector: the device left at once
    /// (its queued add event is dropped).
    Released(Released<L>),
    /// A remove event is queued; the device leaves when the guest releases
    /// the connector ([`RtasEffect::Released`]). (A VMM's queue numbers its
    /// own events, so no event is returned: read it from the queue.)
    Requested,
}

/// The guest's work area, reached through the host's guest memory.
struct GuestWorkArea<'a, M: ?Sized> {
    mem: &'a M,
    gpa: u64,
}

impl<M: GuestMemory + ?Sized> WorkArea for GuestWorkArea<'_, M> {
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), WorkAreaError> {
        let gpa = self.gpa.checked_add(offset as u64).ok_or(WorkAreaError)?;
        self.mem.write_guest(gpa, data).map_err(|_| WorkAreaError)
    }
}

fn word(rets: &mut [u32], i: usize, v: u32) {
    if let Some(r) = rets.get_mut(i) {
        *r = v;
    }
}

impl<S: SlotTable, H: Host> Machine<S, H> {
    /// Hot-plugs `device` into its slot (`spec().slot`) with an UNUSABLE
    /// connector and hands an add event to `events` (QEMU
    /// `spapr_memory_plug` → `spapr_hotplug_req_add_by_index`); with
    /// papr-scm's own [`EventQueue`] the host pulses its source, a VMM's
    /// queue signals itself. The device should come from the same `Planner`
    /// as the others, so its address and slot are free. Cold-plugged
    /// devices go into the slot table before the machine is made and raise
    /// no event.
    #[allow(clippy::result_large_err)] // the device comes back by value
    pub fn plug<E: EventSink + ?Sized>(
        &self,
        mut device: Device<S::Label>,
        events: &mut E,
    ) -> Result<(), PlugError<S::Label>> {
        let slot = device.spec().slot;
        if device.spec().flush == FlushMode::Hcall && !self.host.flushes_slot(slot) {
            return Err(PlugError::NoFlushExecutor { slot, device });
        }
        if slot >= self.slot_count {
            return Err(PlugError::Slot {
                slot,
                kind: InsertErrorKind::OutOfRange,
                device,
            });
        }
        let drc = device.spec().drc;
        let before = *device.connector();
        *device.connector_mut() = crate::drc::Connector::hot_plugged();
        if let Err((kind, mut device)) = self.slots.put(device) {
            *device.connector_mut() = before;
            return Err(PlugError::Slot { slot, kind, device });
        }
        // The device first, then its event: a VMM's queue cannot take an
        // event back, so a refused event takes the device back instead. The
        // guest cannot have used it: nothing announced it.
        if let Err(source) = events.push(HotplugAction::Add, drc, self.host.guest_time()) {
            let Some(mut device) = self.slots.take(slot) else {
                // A concurrent unplug released the device already (its
                // connector was UNUSABLE) and handed it to the VMM.
                return Ok(());
            };
            *device.connector_mut() = before;
            return Err(PlugError::Events {
                slot,
                source,
                device,
            });
        }
        self.reindex();
        if let Some(queue) = events.queue() {
            self.host.pulse(queue.source());
        }
        Ok(())
    }

    /// Asks the guest to give up the device in `slot`: marks it and hands
    /// a remove event to `events` (pulsed as for [`plug`](Self::plug)). If
    /// the guest never acquired the connector, the device leaves at once
    /// and its queued add event is withdrawn. QEMU refuses every NVDIMM
    /// unplug on pseries; this is the PAPR path that Linux's
    /// `dlpar_hp_pmem` implements.
    pub fn unplug<E: EventSink + ?Sized>(
        &self,
        slot: u32,
        events: &mut E,
    ) -> Result<Unplug<S::Label>, UnplugError> {
        let time = self.host.guest_time();
        let asked = self.slots.with_slot(slot, |d| {
            if d.connector().unplug_requested() {
                return Err(UnplugError::InProgress { slot });
            }
            if d.connector().drc_state() != crate::drc::DrcState::Unusable {
                // The event first, under the device's lock: a sink that
                // refuses it leaves the device as it was.
                let drc = d.spec().drc;
                events
                    .push(HotplugAction::Remove, drc, time)
                    .map_err(|source| UnplugError::Events { slot, source })?;
            }
            Ok(d.connector_mut().request_unplug())
        });
        match asked {
            None => Err(UnplugError::Empty { slot }),
            Some(Err(e)) => Err(e),
            Some(Ok(true)) => {
                if let Some(drc) = DrcIndex::pmem(slot) {
                    events.withdraw(drc);
                }
                self.release(slot)
                    .map(Unplug::Released)
                    .ok_or(UnplugError::Empty { slot })
            }
            Some(Ok(false)) => {
                if let Some(queue) = events.queue() {
                    self.host.pulse(queue.source());
                }
                Ok(Unplug::Requested)
            }
        }
    }

    /// Takes the device out of `slot`, dropping its bindings and flushes.
    ///
    /// The device leaves the table first, in one step (`SlotTable::take`),
    /// and is emptied afterwards, owned: no hcall of another vCPU can reach
    /// it between the two, so whatever it did before the take is in the
    /// counts and reported to the host, and nothing comes after. (Emptied
    /// in place and taken after, a bind that waited for the slot's lock
    /// through the label sync landed on the departing device.)
    fn release(&self, slot: u32) -> Option<Released<S::Label>> {
        let ctx = Ctx {
            profile: self.profile,
            host: &self.host,
        };
        let Some(mut device) = self.slots.take(slot) else {
            // A table that cannot remove devices: the device stays, given
            // back by the guest, with nothing bound or pending.
            self.slots.with_slot(slot, |d| Self::empty_device(ctx, d));
            return None;
        };
        self.reindex();
        let (unbound_blocks, pending_flushes, label_sync) = Self::empty_device(ctx, &mut device);
        Some(Released {
            device,
            unbound_blocks,
            pending_flushes,
            label_sync,
        })
    }

    /// Unbinds every block, drops every flush record (telling the
    /// executor) and syncs the label store: (blocks unbound, flushes
    /// pending, the sync's result).
    fn empty_device(
        ctx: Ctx<'_, H>,
        d: &mut Device<S::Label>,
    ) -> (u64, usize, Result<(), LabelError>) {
        // The qemu profile keeps no bindings (QEMU maps at plug time).
        let n = if d.has_bind_state() {
            d.unbind_all(ctx)
        } else {
            0
        };
        let pending = d.pending_flushes();
        d.reset_flushes(ctx);
        (n, pending, d.label_mut().flush())
    }

    /// The connectors at a machine reset or CAS (`spapr_drc_reset`): a
    /// device whose unplug was pending leaves (handed to `released`), every
    /// other one is CONFIGURED, as if cold-plugged. The VMM resets its
    /// event queue too ([`EventQueue::reset`], or [`EventQueue::cas`]).
    pub fn reset_connectors(&self, mut released: impl FnMut(Released<S::Label>)) {
        for slot in 0..self.slot_count {
            if self.slots.with_slot(slot, |d| d.connector_mut().reset()) == Some(DrcEffect::Release)
            {
                if let Some(r) = self.release(slot) {
                    released(r);
                }
            }
        }
    }

    /// Answers an RTAS call for a PMEM connector or the event queue:
    /// `args` and `rets` are the call's argument and return words
    /// ([`RtasArgs::split`]). Returns `None`, with `rets` untouched, when
    /// the call is not papr-scm's: a connector of another type (CPU, LMB,
    /// PHB), a sensor it does not own, a `check-exception` with no PMEM
    /// event for the mask, or `check-exception` and `event-scan` when
    /// `events` is the VMM's queue ([`EventSink::queue`] is `None`), so the
    /// VMM answers it from its own DRCs or queue. Work areas and event
    /// buffers are real addresses, reached through the host's
    /// [`GuestMemory`].
    pub fn rtas<E: EventSink + ?Sized>(
        &self,
        service: RtasService,
        args: &[u32],
        rets: &mut [u32],
        events: &mut E,
    ) -> Option<RtasEffect<S::Label>> {
        match service {
            RtasService::SetIndicator => self.rtas_set_indicator(args, rets),
            RtasService::GetSensorState => self.rtas_get_sensor_state(args, rets),
            RtasService::IbmConfigureConnector => self.rtas_configure_connector(args, rets),
            RtasService::CheckException => self.rtas_check_exception(args, rets, events.queue()?),
            RtasService::EventScan => self.rtas_event_scan(args, rets, events.queue()?),
        }
    }

    /// A DRC index that names a PMEM connector; `Err(())` for a PMEM index
    /// past the machine's slots (no such connector: -3); `None` when the
    /// index is of another type (the VMM's).
    fn pmem_slot(&self, index: u32) -> Option<Result<u32, ()>> {
        let slot = DrcIndex::from_raw(index)?.slot();
        Some(if slot < self.slot_count {
            Ok(slot)
        } else {
            Err(())
        })
    }

    /// `set-indicator` (`rtas_set_indicator`): nargs 3 (type, index,
    /// value), nret 1.
    fn rtas_set_indicator(&self, args: &[u32], rets: &mut [u32]) -> Option<RtasEffect<S::Label>> {
        let (Some(&kind), Some(&index), Some(&value)) = (args.first(), args.get(1), args.get(2))
        else {
            // Too few words to name a connector: not ours to judge.
            return None;
        };
        if !matches!(
            kind,
            RTAS_SENSOR_TYPE_ISOLATION_STATE
                | RTAS_SENSOR_TYPE_DR
                | RTAS_SENSOR_TYPE_ALLOCATION_STATE
        ) {
            return None;
        }
        let slot = self.pmem_slot(index)?;
        if args.len() != 3 || rets.len() != 1 {
            word(rets, 0, RTAS_OUT_PARAM_ERROR as u32);
            return Some(RtasEffect::None);
        }
        let Ok(slot) = slot else {
            word(rets, 0, RTAS_OUT_NO_SUCH_INDICATOR as u32);
            return Some(RtasEffect::None);
        };
        let profile = self.profile;
        let (status, effect) = self
            .slots
            .with_slot(slot, |d| {
                d.connector_mut().set_indicator(kind, value, profile)
            })
            .unwrap_or((Connector::set_indicator_empty(kind, value), DrcEffect::None));
        word(rets, 0, status as u32);
        Some(match effect {
            DrcEffect::Release => match self.release(slot) {
                Some(r) => RtasEffect::Released(r),
                None => RtasEffect::None,
            },
            DrcEffect::UnplugRefused => RtasEffect::UnplugRefused { slot },
            DrcEffect::Configured => RtasEffect::Configured { slot },
            DrcEffect::None => RtasEffect::None,
        })
    }

    /// `get-sensor-state` DR_ENTITY_SENSE (`rtas_get_sensor_state`): nargs
    /// 2 (type, index), nret 2 (status, state).
    fn rtas_get_sensor_state(
        &self,
        args: &[u32],
        rets: &mut [u32],
    ) -> Option<RtasEffect<S::Label>> {
        let (Some(&kind), Some(&index)) = (args.first(), args.get(1)) else {
            return None;
        };
        if kind != RTAS_SENSOR_TYPE_ENTITY_SENSE {
            return None;
        }
        let slot = self.pmem_slot(index)?;
        let (status, state) = if args.len() != 2 || rets.len() != 2 {
            (RTAS_OUT_PARAM_ERROR, 0)
        } else {
            match slot {
                Err(()) => (RTAS_OUT_PARAM_ERROR, 0),
                Ok(slot) => (
                    RTAS_OUT_SUCCESS,
                    self.slots
                        .with_slot(slot, |d| d.connector().entity_sense())
                        .unwrap_or(Connector::EMPTY_ENTITY_SENSE),
                ),
            }
        };
        word(rets, 0, status as u32);
        word(rets, 1, state);
        Some(RtasEffect::None)
    }

    /// `ibm,configure-connector` (`rtas_ibm_configure_connector`): nargs 2
    /// (the work area's address, low word then high word), nret 1; the DRC
    /// index is word 0 of the work area.
    fn rtas_configure_connector(
        &self,
        args: &[u32],
        rets: &mut [u32],
    ) -> Option<RtasEffect<S::Label>> {
        let (Some(&lo), Some(&hi)) = (args.first(), args.get(1)) else {
            return None;
        };
        let gpa = (u64::from(hi) << 32) | u64::from(lo);
        let mut index = [0u8; 4];
        if self.host.read_guest(gpa, &mut index).is_err() {
            return None;
        }
        let slot = self.pmem_slot(u32::from_be_bytes(index))?;
        if args.len() != 2 || rets.len() != 1 {
            word(rets, 0, RTAS_OUT_PARAM_ERROR as u32);
            return Some(RtasEffect::None);
        }
        let Ok(slot) = slot else {
            word(rets, 0, RTAS_OUT_PARAM_ERROR as u32);
            return Some(RtasEffect::None);
        };
        let profile = self.profile;
        let mut wa = GuestWorkArea {
            mem: &self.host,
            gpa,
        };
        let (status, effect) = self
            .slots
            .with_slot(slot, |d| {
                let node = PmemoryNode::new(d.spec());
                d.connector_mut()
                    .configure_connector(&node, &mut wa, profile)
            })
            // An empty connector is UNUSABLE: not configurable.
            .unwrap_or((SPAPR_DR_CC_RESPONSE_NOT_CONFIGURABLE, DrcEffect::None));
        word(rets, 0, status as u32);
        Some(match effect {
            DrcEffect::Configured => RtasEffect::Configured { slot },
            _ => RtasEffect::None,
        })
    }

    /// `check-exception` (QEMU `check_exception`): nargs 6 or 7 (vector
    /// offset, additional info, class mask, critical, buffer, length), nret
    /// 1; dequeues the oldest PMEM event of the mask's classes into the
    /// buffer and pulses the source again while events remain.
    fn rtas_check_exception(
        &self,
        args: &[u32],
        rets: &mut [u32],
        events: &mut EventQueue,
    ) -> Option<RtasEffect<S::Label>> {
        if !(6..=7).contains(&args.len()) || rets.len() != 1 {
            // Malformed for everyone: the VMM's own handler answers -3 too.
            return None;
        }
        let (mask, buf, len) = (args[2], args[4], args[5]);
        let bytes = events.peek(mask)?.encode(self.profile);
        if len == 0 && self.profile == Profile::Papr {
            // papr copies at most the guest's length: a buffer of no bytes
            // can take nothing, and dequeuing there lost the event while
            // the guest was told it had it. It stays queued (and the
            // source pulsed again) for a call with a buffer.
            return Some(self.check_exception_no_buffer(rets, events));
        }
        // QEMU writes the whole event whatever the length (it computes the
        // cut and never uses it); papr copies at most the guest's length.
        let n = match self.profile {
            Profile::Qemu => HOTPLUG_EVENT_LEN,
            Profile::Papr => HOTPLUG_EVENT_LEN.min(len as usize),
        };
        // An event the guest could not be given stays queued.
        let status = match self.host.write_guest(u64::from(buf), &bytes[..n]) {
            Ok(()) => {
                events.pop(mask);
                RTAS_OUT_SUCCESS
            }
            Err(_) => RTAS_OUT_HW_ERROR,
        };
        word(rets, 0, status as u32);
        if !events.is_empty() {
            self.host.pulse(events.source());
        }
        Some(RtasEffect::None)
    }

    /// `check-exception` with a zero-length buffer (`papr`): a parameter
    /// error, the event left queued.
    #[cold]
    fn check_exception_no_buffer(
        &self,
        rets: &mut [u32],
        events: &EventQueue,
    ) -> RtasEffect<S::Label> {
        word(rets, 0, RTAS_OUT_PARAM_ERROR as u32);
        self.host.pulse(events.source());
        RtasEffect::None
    }

    /// `event-scan` (QEMU `event_scan`): nargs 4, nret 1. Never returns an
    /// event; pulses the source while PMEM events are queued. Returns
    /// `None` so the VMM answers for its own queue as well.
    fn rtas_event_scan(
        &self,
        args: &[u32],
        rets: &mut [u32],
        events: &mut EventQueue,
    ) -> Option<RtasEffect<S::Label>> {
        if args.len() == 4 && rets.len() == 1 && !events.is_empty() {
            self.host.pulse(events.source());
        }
        None
    }
}
