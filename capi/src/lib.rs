// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! # papr-scm-capi: papr-scm for VMMs written in C
//!
//! A C ABI over [`papr_scm::machine::Machine`]: a VMM (QEMU) creates a
//! machine from its own placement of the devices, sends every SCM hcall
//! exit to [`papr_scm_hcall`] and the PMEM connectors' RTAS calls to
//! [`papr_scm_rtas`], and keeps the parts only it can do (label bytes,
//! guest memory, the flush executor, the event queue) behind the callbacks
//! of [`papr_scm_callbacks`]. The header is `include/papr_scm.h`, generated
//! by cbindgen from this crate (`cbindgen.toml`) and checked in;
//! `tests/header.rs` fails when it is stale. Link the staticlib
//! (`libpapr_scm_capi.a`) with the system libraries Rust's std needs
//! (`-lpthread -ldl -lm` on Linux; `cargo rustc -p papr-scm-capi
//! --crate-type staticlib -- --print native-static-libs` lists them).
//!
//! # Conventions
//!
//! Every fallible call returns a [`papr_scm_result`]; a failure leaves its
//! message, naming the field and the rule ("slot 1: label-size: ... is
//! below the minimum of 128 KiB"), for [`papr_scm_last_error`] on the
//! calling thread. Nothing allocated by papr-scm is handed to the caller.
//! Every pointer argument is checked for NULL and alignment, every length
//! and enum value for its range, before anything changes.
//!
//! # Panics
//!
//! No panic crosses the boundary. The crate is built with `panic =
//! "unwind"` (the workspace's profiles say so, and a build with `panic =
//! "abort"` does not compile), and every `extern "C"` body runs inside
//! `ffi_fn!`, which wraps it in `catch_unwind`: a panic becomes the call's
//! neutral answer (`PAPR_SCM_PANIC`, `false`, 0), its message the last
//! error, and the machine refuses every later call but
//! [`papr_scm_machine_free`], since a panic may have left a device half
//! changed. papr-scm's own code does not panic on any input (its tests and
//! fuzz targets hold it to that); the boundary is the guarantee for what
//! they miss. `tests/c/test_capi.c` shows it with the `test-hooks` feature,
//! whose hook panics inside the label callback path.
//!
//! # Threads and re-entrancy
//!
//! QEMU calls every entry under its big lock, so calls never overlap there.
//! The machine is nevertheless safe to share: hcalls run concurrently on
//! different devices (one lock per slot, papr-scm's `SharedSlots`), and the
//! VMM-facing calls (plug, unplug, RTAS, CAS, reset, save, load, health,
//! the trace) also take one machine lock. Callbacks run with a device's
//! lock or the machine lock held and must not call back into papr-scm;
//! `papr_scm_reset`'s `released` callback is the exception, called after
//! every lock is dropped.
//!
//! # Why the unsafe code is sound
//!
//! Each raw pointer becomes a reference in one place (`boundary::arg`,
//! `arg_mut`, `slice`, `slice_mut`), after its NULL, alignment and length
//! checks; what the checks cannot see (the pointer is live, the length is
//! the buffer's, nobody writes it meanwhile) is the caller's contract,
//! written in the header for each argument. A machine is a `Box` handed
//! out by [`papr_scm_machine_new`] and taken back only by
//! [`papr_scm_machine_free`]; between the two every entry borrows it
//! shared. Callbacks are the VMM's own functions, called with pointers into
//! buffers papr-scm owns for the call's duration. C `bool`s the VMM fills
//! in are read as bytes, and C enums as integers, so no C value can form
//! an invalid Rust value.
//!
//! # The event queue
//!
//! The VMM owns the one event queue (DESIGN.md, "One event queue"):
//! papr-scm hands each PMEM hot-plug event to `event_push`, and the VMM
//! answers `check-exception` and `event-scan` ([`papr_scm_rtas`] returns
//! false for them). A snapshot ([`papr_scm_save`]) carries no events: the
//! VMM's queue migrates with the VMM.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
// The C names of the ABI (papr_scm_result, PAPR_SCM_OK, ...).
#![allow(non_camel_case_types)]

#[cfg(panic = "abort")]
compile_error!(
    "papr-scm-capi catches panics at the C boundary and needs panic = \"unwind\" (see the crate docs, \"Panics\")"
);

#[macro_use]
mod boundary;
mod config;
mod error;
mod host;
mod trace;
mod types;

use core::ffi::{c_char, c_void, CStr};
use std::boxed::Box;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use papr_scm::config::{ConfigError, NumaForm, NvdimmConfig, Planner};
use papr_scm::device::Device;
use papr_scm::drc::SlotError;
use papr_scm::hcall::{HealthBits, Regs, ReturnCode};
use papr_scm::machine::{
    InsertErrorKind, Machine, MachineState, PlugError, Released, RtasEffect, SharedSlots, Unplug,
};
use papr_scm::pmemory::PmemoryNode;
use papr_scm::rtas::{RtasService, RTAS_ARGS_WORDS};
use papr_scm::rtas_error_log::EventQueue;
use papr_scm::transcript::{label_lines, Directive, Injection};

use crate::boundary::{arg, arg_mut, fail, result, slice, slice_mut};
use crate::error::Error;
use crate::host::{CHost, CLabel, BROKEN, TRACING};
use crate::trace::Trace;
pub use crate::types::*;

use core::sync::atomic::Ordering;

/// A machine: the SCM devices of one pseries guest and their state.
/// Opaque to C; made by [`papr_scm_machine_new`], freed by
/// [`papr_scm_machine_free`].
pub struct papr_scm_machine {
    machine: Machine<SharedSlots<CLabel>, CHost>,
    vmm: Mutex<Vmm>,
}

/// What only the VMM-facing calls touch, under the machine lock.
struct Vmm {
    /// Slots and addresses in use, and every configuration rule.
    planner: Planner,
    /// The form negotiated at CAS, for later nodes without associativity.
    numa_form: NumaForm,
    /// Each plugged device's configuration, by slot (the trace's header).
    configs: Vec<Option<NvdimmConfig>>,
    trace: Option<Trace>,
}

impl Vmm {
    /// A device left its slot: its slot and address are free again.
    fn released(&mut self, r: &Released<CLabel>) -> papr_scm_effect {
        let spec = r.device.spec();
        let _ = self.planner.unplug(spec);
        if let Some(c) = self.configs.get_mut(spec.slot as usize) {
            *c = None;
        }
        papr_scm_effect {
            kind: papr_scm_effect_kind::PAPR_SCM_EFFECT_RELEASED as u32,
            slot: spec.slot,
            unbound_blocks: r.unbound_blocks,
            pending_flushes: r.pending_flushes as u64,
        }
    }

    /// A trace that can no longer describe the machine (a label it could
    /// not read) stops here; `papr_scm_trace_close` reports why.
    fn trace_fail(&mut self, host: &CHost, slot: u32, e: papr_scm::label::LabelError) {
        if let Some(t) = self.trace.as_mut() {
            t.fail(std::io::Error::other(std::format!(
                "slot {slot}: label: {e}"
            )));
            host.state.fetch_and(!TRACING, Ordering::Relaxed);
        }
    }

    /// Writes `lines` to the trace, if one is open; a failed write stops it.
    fn trace(&mut self, host: &CHost, lines: &[Directive]) {
        if let Some(t) = self.trace.as_mut() {
            if !t.write(lines) {
                host.state.fetch_and(!TRACING, Ordering::Relaxed);
            }
        }
    }
}

impl papr_scm_machine {
    fn mark_broken(&self) {
        self.machine
            .host()
            .state
            .fetch_or(BROKEN, Ordering::Relaxed);
    }

    fn check(&self) -> Result<&Self, Error> {
        if self.machine.host().state.load(Ordering::Relaxed) & BROKEN != 0 {
            return Err(Error::Broken);
        }
        Ok(self)
    }

    fn lock(&self) -> MutexGuard<'_, Vmm> {
        // A panic while the lock was held marked the machine broken; the
        // data is still what it was, and only free follows.
        self.vmm.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An hcall with a trace open (or a broken machine): under the machine
    /// lock, with what it touched recorded. `papr_scm_hcall`'s answer.
    #[cold]
    #[inline(never)]
    fn hcall_slow(&self, opcode: u64, regs: &mut Regs, ret: &mut i64) -> bool {
        match self.hcall_traced(opcode, regs) {
            Ok(Some(rc)) => {
                *ret = rc.0;
                true
            }
            Ok(None) => false,
            Err(e) => {
                fail(&e);
                false
            }
        }
    }

    fn hcall_traced(&self, opcode: u64, regs: &mut Regs) -> Result<Option<ReturnCode>, Error> {
        self.check()?;
        let host = self.machine.host();
        let mut vmm = self.lock();
        if vmm.trace.is_none() {
            return Ok(self.machine.handle(opcode, regs));
        }
        host.take_touched();
        let regs_in = *regs;
        let status = self.machine.handle(opcode, regs);
        let touched = host.take_touched();
        if let (Some(status), Some(t)) = (status, vmm.trace.as_mut()) {
            if !t.call(Trace::hcall_line(opcode, &regs_in, status, regs), touched) {
                host.state.fetch_and(!TRACING, Ordering::Relaxed);
            }
        }
        Ok(status)
    }

    fn rtas(
        &self,
        service: u32,
        args: &[u32],
        rets: &mut [u32],
        effect: &mut papr_scm_effect,
    ) -> Result<bool, Error> {
        let service = match service {
            0 => RtasService::SetIndicator,
            1 => RtasService::GetSensorState,
            2 => RtasService::IbmConfigureConnector,
            3 => RtasService::CheckException,
            4 => RtasService::EventScan,
            v => {
                return Err(Error::invalid(
                    "service",
                    std::format!("{v} is not a papr_scm_rtas_service (0 to 4)"),
                ))
            }
        };
        if args.len() + rets.len() > RTAS_ARGS_WORDS {
            return Err(Error::invalid(
                "nargs + nret",
                std::format!(
                    "{} words exceed the {RTAS_ARGS_WORDS} of an rtas_args buffer",
                    args.len() + rets.len()
                ),
            ));
        }
        let host = self.machine.host();
        let mut events = host.events();
        let mut vmm = self.lock();
        host.take_touched();
        let Some(e) = self.machine.rtas(service, args, rets, &mut events) else {
            return Ok(false);
        };
        *effect = match e {
            RtasEffect::None => papr_scm_effect::default(),
            RtasEffect::Released(r) => vmm.released(&r),
            RtasEffect::UnplugRefused { slot } => papr_scm_effect {
                kind: papr_scm_effect_kind::PAPR_SCM_EFFECT_UNPLUG_REFUSED as u32,
                slot,
                ..Default::default()
            },
            RtasEffect::Configured { slot } => papr_scm_effect {
                kind: papr_scm_effect_kind::PAPR_SCM_EFFECT_CONFIGURED as u32,
                slot,
                ..Default::default()
            },
        };
        let touched = host.take_touched();
        if let Some(t) = vmm.trace.as_mut() {
            let line = Directive::Rtas {
                service,
                args: args.to_vec(),
                nret: rets.len(),
                expect: Some(rets.to_vec()),
            };
            if !t.call(line, touched) {
                host.state.fetch_and(!TRACING, Ordering::Relaxed);
            }
        }
        Ok(true)
    }

    fn plug(&self, d: &papr_scm_device_config) -> Result<(), Error> {
        // SAFETY: the caller's contract for `device->associativity`.
        let mut cfg = unsafe { config::device(d) }?;
        let host = self.machine.host();
        let mut events = host.events();
        if !events.present() {
            return Err(Error::NoEventSink);
        }
        let mut vmm = self.lock();
        let slot = d.slot;
        let mut spec = vmm.planner.plug(&cfg).map_err(|source| match source {
            ConfigError::Slot(
                s @ (SlotError::Busy { .. } | SlotError::OutOfRange { .. } | SlotError::Full),
            ) => Error::PlugSlot { slot, source: s },
            source => Error::Device { slot, source },
        })?;
        // A node plugged after CAS carries the negotiated form, unless the
        // VMM gave its own array.
        if cfg.associativity.is_none() {
            spec.set_numa_form(vmm.numa_form);
        }
        let Some(label) = CLabel::new(host.callbacks(), &spec) else {
            let _ = vmm.planner.unplug(&spec);
            return Err(Error::NoCallback("label_read and label_write"));
        };
        if let Err(e) = self.machine.plug(Device::new(spec, label), &mut events) {
            let _ = vmm.planner.unplug(&spec);
            return Err(match e {
                PlugError::Slot { slot, kind, .. } => Error::PlugSlot {
                    slot,
                    source: match kind {
                        InsertErrorKind::OutOfRange => SlotError::OutOfRange {
                            slot: u64::from(slot),
                            max: vmm.planner.machine().slots.saturating_sub(1),
                        },
                        _ => SlotError::Busy { slot },
                    },
                },
                PlugError::NoFlushExecutor { slot, .. } => Error::NoFlushExecutor(slot),
                PlugError::Events { slot, .. } => Error::PlugEvents(slot),
            });
        }
        cfg.associativity = Some(spec.associativity);
        if let Some(c) = vmm.configs.get_mut(slot as usize) {
            *c = Some(cfg);
        }
        if vmm.trace.is_some() {
            // The labels its backing file brought (a device plugged again
            // on the file it left with) are the device's from the start.
            let mut lines = vec![Directive::Plug(cfg)];
            match self.trace_labels(slot, false) {
                Ok(l) => lines.extend(l),
                Err(e) => vmm.trace_fail(host, slot, e),
            }
            vmm.trace(host, &lines);
        }
        Ok(())
    }

    fn unplug(
        &self,
        slot: u32,
        released: &mut bool,
        effect: &mut papr_scm_effect,
    ) -> Result<(), Error> {
        let host = self.machine.host();
        let mut events = host.events();
        if !events.present() {
            return Err(Error::NoEventSink);
        }
        let mut vmm = self.lock();
        match self.machine.unplug(slot, &mut events)? {
            Unplug::Released(r) => {
                *released = true;
                *effect = vmm.released(&r);
            }
            Unplug::Requested => {
                *released = false;
                *effect = papr_scm_effect::default();
            }
        }
        vmm.trace(host, &[Directive::Unplug { slot }]);
        Ok(())
    }

    /// A reset (`cas` false) or the connectors' reset at CAS: the slots of
    /// the devices that left, for the VMM's `released` callback.
    fn reset(&self, cas: bool) -> Vec<u32> {
        let host = self.machine.host();
        let mut vmm = self.lock();
        let mut gone = Vec::new();
        if cas {
            self.machine
                .reset_connectors(|r| gone.push(vmm.released(&r).slot));
            // Replay's `cas` resets its connectors the same way; its event
            // source does not matter, the VMM's queue is not in the trace.
            vmm.trace(
                host,
                &[Directive::Cas {
                    hotplug_events: true,
                }],
            );
        } else {
            self.machine
                .reset(&mut host.events(), |r| gone.push(vmm.released(&r).slot));
            vmm.trace(host, &[Directive::Reset]);
        }
        gone
    }

    fn save(&self, buf: Option<&mut [u8]>, len: &mut usize) -> Result<(), Error> {
        let _vmm = self.lock();
        let bytes = self.machine.state(&EventQueue::new()).encode();
        *len = bytes.len();
        match buf {
            Some(b) if b.len() >= bytes.len() => {
                b[..bytes.len()].copy_from_slice(&bytes);
                Ok(())
            }
            b => Err(Error::BufferTooSmall {
                name: "buf",
                have: b.map_or(0, |b| b.len()),
                need: bytes.len(),
            }),
        }
    }

    fn load(&self, bytes: &[u8]) -> Result<(), Error> {
        let snap = MachineState::decode(bytes)?;
        if !snap.events.is_empty() {
            return Err(Error::SnapshotEvents(snap.events.len()));
        }
        let host = self.machine.host();
        let mut vmm = self.lock();
        host.take_touched();
        self.machine.restore(&snap, &mut EventQueue::new())?;
        let mut touched = host.take_touched();
        if vmm.trace.is_some() {
            // The label areas came with the migration (QEMU migrates them
            // as RAM, before the device state): each replaces the area the
            // trace holds, ahead of the `restore` line.
            let mut labels = Vec::new();
            for slot in 0..vmm.configs.len() as u32 {
                match self.trace_labels(slot, true) {
                    Ok(l) => labels.extend(l),
                    Err(e) => vmm.trace_fail(host, slot, e),
                }
            }
            labels.append(&mut touched);
            touched = labels;
        }
        if let Some(t) = vmm.trace.as_mut() {
            if !t.call(Directive::Restore(bytes.to_vec()), touched) {
                host.state.fetch_and(!TRACING, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// The device in `slot`'s label area as `label` lines, after a
    /// `label-clear` line when `clear` (nothing for an empty slot).
    fn trace_labels(
        &self,
        slot: u32,
        clear: bool,
    ) -> Result<Vec<Directive>, papr_scm::label::LabelError> {
        let Some(labels) = self
            .machine
            .with_device(slot, |d| label_lines(slot, d.label()))
        else {
            return Ok(Vec::new());
        };
        let labels = labels?;
        Ok(if clear {
            core::iter::once(Directive::LabelClear { slot })
                .chain(labels)
                .collect()
        } else {
            labels
        })
    }

    fn inject_health(&self, slot: u32, set: u64, clear: u64) -> Result<(), Error> {
        let bits = |name: &str, v: u64| {
            HealthBits::from_bits(v).ok_or_else(|| {
                Error::invalid(
                    name,
                    std::format!("{v:#x} has bits outside PAPR's health bits 0 to 10"),
                )
            })
        };
        let (set, clear) = (bits("set_bits", set)?, bits("clear_bits", clear)?);
        let host = self.machine.host();
        let mut vmm = self.lock();
        self.machine
            .with_device(slot, |d| {
                d.inject_health(set);
                d.clear_health(clear);
            })
            .ok_or(Error::Empty(slot))?;
        let mut lines = Vec::new();
        if !set.is_empty() {
            lines.push(Directive::Inject {
                slot,
                what: Injection::Health(set),
            });
        }
        if !clear.is_empty() {
            lines.push(Directive::Inject {
                slot,
                what: Injection::HealthClear(clear),
            });
        }
        vmm.trace(host, &lines);
        Ok(())
    }

    fn trace_open(&self, path: &std::path::Path) -> Result<(), Error> {
        let host = self.machine.host();
        let mut vmm = self.lock();
        host.state.fetch_and(!TRACING, Ordering::Relaxed);
        if let Some(old) = vmm.trace.take() {
            // Its errors were the old file's; a new trace starts clean.
            let _ = old.close();
        }
        let trace_err = |source| Error::Trace {
            path: path.display().to_string(),
            source,
        };
        let mut t = Trace::create(path).map_err(trace_err)?;
        let mut lines = vec![Directive::Machine(*vmm.planner.machine())];
        lines.extend(vmm.configs.iter().flatten().map(|c| Directive::Nvdimm(*c)));
        for slot in 0..vmm.configs.len() as u32 {
            let labels = self
                .machine
                .with_device(slot, |d| label_lines(slot, d.label()))
                .transpose()
                .map_err(|source| Error::TraceLabel { slot, source })?;
            lines.extend(labels.into_iter().flatten());
        }
        lines.push(Directive::Restore(
            self.machine.state(&EventQueue::new()).encode(),
        ));
        let ok = t.comment(
            "papr-scm C ABI trace: the machine as the trace began, then every SCM hcall and PMEM RTAS call papr-scm answered",
        ) && t.write(&lines);
        if !ok {
            let e = t
                .error
                .take()
                .unwrap_or_else(|| std::io::ErrorKind::Other.into());
            return Err(trace_err(e));
        }
        vmm.trace = Some(t);
        host.state.fetch_or(TRACING, Ordering::Relaxed);
        Ok(())
    }

    fn trace_close(&self) -> Result<(), Error> {
        let host = self.machine.host();
        let mut vmm = self.lock();
        host.state.fetch_and(!TRACING, Ordering::Relaxed);
        let Some(t) = vmm.trace.take() else {
            return Ok(());
        };
        let path = t.path().display().to_string();
        t.close().map_err(|source| Error::Trace { path, source })
    }
}

/// Copies the calling thread's last error message into `buf`
/// (NUL-terminated, cut to fit `len` bytes) and returns the message's full
/// length without the NUL; 0 when there is none. `buf` may be NULL (with
/// any `len`) to ask for the length only.
///
/// # Safety
///
/// A non-NULL `buf` is valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_last_error(buf: *mut c_char, len: usize) -> usize {
    ffi_fn!(0, {
        // SAFETY: the caller's contract for `buf` and `len`.
        match unsafe { slice_mut(buf.cast::<u8>(), len, "buf") } {
            Ok(b) => boundary::copy_last_error(b),
            Err(_) => boundary::copy_last_error(&mut []),
        }
    })
}

/// Validates the machine and every device (QEMU's rules, papr-scm's
/// planner: slots, addresses, sizes, label size, UUID, NUMA node) and
/// builds the machine into `*out`. On `PAPR_SCM_CONFIG` the last error
/// names the field and the rule, e.g. "slot 1: label-size: 0x10000 is
/// below the minimum of 128 KiB"; `*out` is then NULL.
///
/// `label_read` and `label_write` are required; a device that needs
/// H_SCM_FLUSH needs `flush_start` and `flush_poll`. The callbacks are
/// copied: the struct need not outlive the call (`opaque` must).
///
/// # Safety
///
/// `config`, `callbacks` and `out` are NULL or valid; `devices` is NULL or
/// points at `n_devices` configurations, each `associativity` NULL or
/// valid for `associativity_len` cells.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_machine_new(
    config: *const papr_scm_machine_config,
    devices: *const papr_scm_device_config,
    n_devices: usize,
    callbacks: *const papr_scm_callbacks,
    out: *mut *mut papr_scm_machine,
) -> papr_scm_result {
    ffi_fn!(papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `out`.
            let out = unsafe { arg_mut(out, "out") }?;
            *out = core::ptr::null_mut();
            // SAFETY: the caller's contract for `config`, `callbacks`, `devices`.
            let (config, cb, devices) = unsafe {
                (
                    arg(config, "config")?,
                    arg(callbacks, "callbacks")?,
                    slice(devices, n_devices, "devices")?,
                )
            };
            if cb.label_read.is_none() {
                return Err(Error::NoCallback("label_read"));
            }
            if cb.label_write.is_none() {
                return Err(Error::NoCallback("label_write"));
            }
            let machine_config = config::machine(config)?;
            let mut planner = Planner::new(machine_config).map_err(Error::Machine)?;
            let mut configs = vec![None; machine_config.slots as usize];
            let mut specs = Vec::with_capacity(devices.len().min(configs.len()));
            for d in devices {
                // SAFETY: the caller's contract for each `associativity`.
                let mut cfg = unsafe { config::device(d) }?;
                let spec = planner.plug(&cfg).map_err(|source| Error::Device {
                    slot: d.slot,
                    source,
                })?;
                cfg.associativity = Some(spec.associativity);
                configs[spec.slot as usize] = Some(cfg);
                specs.push(spec);
            }
            let host = CHost::new(*cb, machine_config.ram_size);
            let machine = Machine::from_specs_with(&machine_config, &specs, host, |spec| {
                CLabel::new(cb, spec).ok_or(papr_scm::label::LabelError::OutOfRange {
                    offset: 0,
                    len: 0,
                    size: 0,
                })
            })
            .map_err(|e| match e {
                papr_scm::machine::BuildError::NoFlushExecutor { slot } => {
                    Error::NoFlushExecutor(slot)
                }
                papr_scm::machine::BuildError::Config { source, .. } => Error::Machine(source),
                papr_scm::machine::BuildError::SlotTaken { slot } => Error::Device {
                    slot,
                    source: ConfigError::Slot(SlotError::Busy { slot }),
                },
                papr_scm::machine::BuildError::Label { .. } => {
                    Error::NoCallback("label_read and label_write")
                }
            })?;
            *out = Box::into_raw(Box::new(papr_scm_machine {
                machine,
                vmm: Mutex::new(Vmm {
                    planner,
                    numa_form: machine_config.numa_form,
                    configs,
                    trace: None,
                }),
            }));
            Ok(())
        })
    })
}

/// Frees a machine (an open trace is flushed and closed). NULL is ignored.
///
/// # Safety
///
/// `m` is NULL or a machine from [`papr_scm_machine_new`], not freed
/// before and not used after (nor by another thread meanwhile).
#[no_mangle]
pub unsafe extern "C" fn papr_scm_machine_free(m: *mut papr_scm_machine) {
    ffi_fn!((), {
        if !m.is_null() {
            // SAFETY: `m` came from Box::into_raw in papr_scm_machine_new
            // and is not used again (the caller's contract).
            drop(unsafe { Box::from_raw(m) });
        }
    })
}

/// An hcall exit: `opcode` is r3, `args` r4..r12 (9 words: QEMU's `args`,
/// KVM's `run->papr_hcall.args`). Returns true and stores the r3 status
/// in `*ret` when the opcode is an SCM hcall, with the hcall's output
/// registers written into `args`; false, with nothing written, otherwise
/// (or on a NULL argument, with the last error set). The hot path: no
/// allocation, no lock but the device's, nothing looked up.
///
/// # Safety
///
/// `m` is NULL or a live machine; `args` is NULL or valid for reads and
/// writes of 9 `uint64_t`; `ret` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_hcall(
    m: *const papr_scm_machine,
    opcode: u64,
    args: *mut u64,
    ret: *mut i64,
) -> bool {
    ffi_fn!(m, false, {
        // The path of a good call: three NULL tests and one alignment test
        // (a bad pointer is reported from a cold path), one load for the
        // trace and broken flags, the machine's own dispatch, the status
        // stored.
        // SAFETY: the caller's contract for `m`, `args` (9 words) and `ret`.
        let Some((m, regs, ret)) = (unsafe { boundary::hcall_args(m, args, ret) }) else {
            return false;
        };
        if m.machine.host().state.load(Ordering::Relaxed) != 0 {
            return m.hcall_slow(opcode, regs, ret);
        }
        match m.machine.handle(opcode, regs) {
            Some(rc) => {
                *ret = rc.0;
                true
            }
            None => false,
        }
    })
}

/// An RTAS call: `args` and `rets` are its words (host order, as `rtas_ld`
/// gives them; `nargs + nret` at most 16). Returns true when papr-scm
/// answered (`rets` written, `*effect` set: a released device, a refused
/// unplug, a configured node); false when the call is not papr-scm's (a
/// connector of another type, a sensor it does not own, and always
/// `check-exception` and `event-scan`: the VMM owns the queue) and the
/// VMM answers it, `rets` untouched. A bad argument also answers false,
/// with the last error set.
///
/// # Safety
///
/// `m` is NULL or a live machine; `args` is NULL or valid for `nargs`
/// reads, `rets` NULL or valid for `nret` writes; `effect` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_rtas(
    m: *const papr_scm_machine,
    service: u32,
    args: *const u32,
    nargs: usize,
    rets: *mut u32,
    nret: usize,
    effect: *mut papr_scm_effect,
) -> bool {
    ffi_fn!(m, false, {
        let answered = (|| -> Result<bool, Error> {
            // SAFETY: the caller's contract for every pointer and length.
            let (m, args, rets, effect) = unsafe {
                (
                    arg(m, "m")?.check()?,
                    slice(args, nargs, "args")?,
                    slice_mut(rets, nret, "rets")?,
                    arg_mut(effect, "effect")?,
                )
            };
            m.rtas(service, args, rets, effect)
        })();
        answered.unwrap_or_else(|e| {
            fail(&e);
            false
        })
    })
}

/// Hot-plugs a device QEMU placed (`device_add`): validated as at
/// [`papr_scm_machine_new`], put in its slot, and its add event handed to
/// `event_push`. `PAPR_SCM_SLOT`: the slot is taken or past the last;
/// `PAPR_SCM_EVENTS`: the VMM's queue refused the event (the device was
/// taken back out) or `event_push` is NULL.
///
/// # Safety
///
/// `m` is NULL or a live machine; `device` is NULL or valid (its
/// `associativity` NULL or valid for `associativity_len` cells).
#[no_mangle]
pub unsafe extern "C" fn papr_scm_plug(
    m: *const papr_scm_machine,
    device: *const papr_scm_device_config,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m` and `device`.
            let (m, d) = unsafe { (arg(m, "m")?.check()?, arg(device, "device")?) };
            m.plug(d)
        })
    })
}

/// Asks the guest to give up the device in `slot` (`device_del`).
/// `*released` true: the guest never acquired the connector and the device
/// left at once (`*effect` says so, its queued add event withdrawn);
/// false: a remove event went to `event_push`, and the device leaves with
/// a later `PAPR_SCM_EFFECT_RELEASED` from [`papr_scm_rtas`] (or a reset).
///
/// # Safety
///
/// `m` is NULL or a live machine; `released` and `effect` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_unplug(
    m: *const papr_scm_machine,
    slot: u32,
    released: *mut bool,
    effect: *mut papr_scm_effect,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`, `released`, `effect`.
            let (m, released, effect) = unsafe {
                (
                    arg(m, "m")?.check()?,
                    arg_mut(released, "released")?,
                    arg_mut(effect, "effect")?,
                )
            };
            m.unplug(slot, released, effect)
        })
    })
}

/// CAS: the NUMA form the guest negotiated (a `papr_scm_numa_form`). Nodes
/// hot-plugged later without an explicit associativity get QEMU's array in
/// this form. The connectors' reset QEMU makes at CAS is
/// [`papr_scm_reset_connectors`].
///
/// # Safety
///
/// `m` is NULL or a live machine.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_cas(
    m: *const papr_scm_machine,
    numa_form: u32,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`.
            let m = unsafe { arg(m, "m") }?.check()?;
            let form = config::numa_form("numa_form", numa_form)?;
            m.lock().numa_form = form;
            Ok(())
        })
    })
}

/// The connectors' reset at CAS (QEMU `spapr_drc_reset_all` in
/// `do_client_architecture_support`): a device whose unplug is pending
/// leaves (`released(opaque, slot)` for each, after papr-scm's locks are
/// dropped), every other connector is CONFIGURED, as cold-plugged.
/// `released` may be NULL.
///
/// # Safety
///
/// `m` is NULL or a live machine; `released` is NULL or a function
/// taking `opaque`.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_reset_connectors(
    m: *const papr_scm_machine,
    released: Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32)>,
    opaque: *mut c_void,
) -> papr_scm_result {
    // SAFETY: the caller's contract, forwarded.
    unsafe { reset_with(m, true, released, opaque) }
}

/// A system reset (QEMU `spapr_machine_reset`): bindings released
/// (`unbound` for each), flush records dropped (the VMM drains its flush
/// executor first), labels made durable, connectors reset (a pending
/// unplug completes: `released(opaque, slot)` for each, after papr-scm's
/// locks are dropped). The VMM resets its own event queue. `released` may
/// be NULL.
///
/// # Safety
///
/// `m` is NULL or a live machine; `released` is NULL or a function
/// taking `opaque`.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_reset(
    m: *const papr_scm_machine,
    released: Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32)>,
    opaque: *mut c_void,
) -> papr_scm_result {
    // SAFETY: the caller's contract, forwarded.
    unsafe { reset_with(m, false, released, opaque) }
}

/// Both resets: `connectors_only` for CAS's, else the system reset; the
/// released slots are handed to `released` after papr-scm's locks drop.
///
/// # Safety
///
/// As [`papr_scm_reset`].
unsafe fn reset_with(
    m: *const papr_scm_machine,
    connectors_only: bool,
    released: Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32)>,
    opaque: *mut c_void,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`.
            let m = unsafe { arg(m, "m") }?.check()?;
            for slot in m.reset(connectors_only) {
                if let Some(f) = released {
                    // SAFETY: the caller's contract for `released`; no lock
                    // of papr-scm is held.
                    unsafe { f(opaque, slot) }
                }
            }
            Ok(())
        })
    })
}

/// Migration's source: the encoded snapshot of every device's SCM state
/// (bindings, flushes, health, connectors; no events: the VMM's queue
/// migrates itself) into `buf`. `*len` is always set to the size needed;
/// with `buf` NULL or `cap` below it the call answers
/// `PAPR_SCM_BUFFER_TOO_SMALL` and writes nothing else.
///
/// # Safety
///
/// `m` is NULL or a live machine; `buf` NULL or valid for `cap` writes;
/// `len` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_save(
    m: *const papr_scm_machine,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`, `buf`, `cap`, `len`.
            let (m, len, buf) = unsafe {
                (
                    arg(m, "m")?.check()?,
                    arg_mut(len, "len")?,
                    if buf.is_null() {
                        None
                    } else {
                        Some(slice_mut(buf, cap, "buf")?)
                    },
                )
            };
            m.save(buf, len)
        })
    })
}

/// Migration's destination: restores a snapshot from [`papr_scm_save`]
/// into this machine, which must hold the same devices. Checked whole
/// before anything changes: `PAPR_SCM_SNAPSHOT` (malformed, another
/// profile, other slots or sizes, hot-plug events in it), message in the
/// last error. Pending flushes are started again on this VMM's executor.
///
/// # Safety
///
/// `m` is NULL or a live machine; `buf` NULL or valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_load(
    m: *const papr_scm_machine,
    buf: *const u8,
    len: usize,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`, `buf`, `len`.
            let (m, bytes) = unsafe { (arg(m, "m")?.check()?, slice(buf, len, "buf")?) };
            m.load(bytes)
        })
    })
}

/// Health and faults (`papr` profile: what H_SCM_HEALTH reports): ORs
/// `set_bits` into the device's health bitmap, then clears `clear_bits`.
/// Bits are PAPR's 0 to 10 (`PAPR_PMEM_*` in Linux, bit 0 the most
/// significant); others are `PAPR_SCM_INVALID_ARGUMENT`, an empty slot
/// `PAPR_SCM_SLOT`.
///
/// # Safety
///
/// `m` is NULL or a live machine.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_inject_health(
    m: *const papr_scm_machine,
    slot: u32,
    set_bits: u64,
    clear_bits: u64,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`.
            let m = unsafe { arg(m, "m") }?.check()?;
            m.inject_health(slot, set_bits, clear_bits)
        })
    })
}

/// The `ibm,pmemory@<drc>` node of `slot` for the VMM's boot tree, with
/// papr-scm's properties in its profile (`ibm,persistence-failed-count`
/// in `papr`): the node name is written to `name_buf` (NUL-terminated;
/// `PAPR_SCM_BUFFER_TOO_SMALL` if it does not fit, 32 bytes always do),
/// then `prop(opaque, name, value, len)` is called for each property in
/// the order QEMU's blob lists them (names NUL-terminated, values
/// big-endian cells or NUL-terminated strings, valid for the call only).
///
/// # Safety
///
/// `m` is NULL or a live machine; `name_buf` NULL or valid for `name_len`
/// writes; `prop` NULL or a function taking `opaque`.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_pmemory_node(
    m: *const papr_scm_machine,
    slot: u32,
    name_buf: *mut c_char,
    name_len: usize,
    prop: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            name: *const c_char,
            value: *const c_void,
            len: usize,
        ),
    >,
    opaque: *mut c_void,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`, `name_buf`, `name_len`.
            let (m, name_buf) = unsafe {
                (
                    arg(m, "m")?.check()?,
                    slice_mut(name_buf.cast::<u8>(), name_len, "name_buf")?,
                )
            };
            if name_buf.is_empty() {
                return Err(Error::null("name_buf"));
            }
            let prop = prop.ok_or(Error::null("prop"))?;
            let node = m
                .machine
                .with_device(slot, |d| PmemoryNode::new(d.spec()))
                .ok_or(Error::Empty(slot))?;
            let name = node.name().as_bytes();
            if name.len() >= name_buf.len() {
                return Err(Error::BufferTooSmall {
                    name: "name_buf",
                    have: name_buf.len(),
                    need: name.len() + 1,
                });
            }
            name_buf[..name.len()].copy_from_slice(name);
            name_buf[name.len()] = 0;
            for p in node.properties() {
                // Property names are short ASCII ("ibm,persistence-failed-count"
                // is the longest): a NUL-terminated copy on the stack.
                let mut cname = [0u8; 64];
                let n = p.name.len().min(cname.len() - 1);
                cname[..n].copy_from_slice(&p.name.as_bytes()[..n]);
                let value = p.value();
                // SAFETY: the caller's contract for `prop`; `cname` and
                // `value` are valid for reads for the call.
                unsafe {
                    prop(
                        opaque,
                        cname.as_ptr().cast::<c_char>(),
                        value.as_ptr().cast::<c_void>(),
                        value.len(),
                    )
                };
            }
            Ok(())
        })
    })
}

/// Opens a transcript trace at `path` (created or truncated): every SCM
/// hcall and PMEM RTAS call papr-scm answers from now on, and the VMM's
/// plug, unplug, reset, CAS, health and load calls, in papr-scm's
/// transcript format, after a header that describes the machine as it is
/// (devices, labels, state). The labels that reach a device other than
/// through its hcalls are recorded too: a plugged device's area after its
/// `plug` line, and every device's area as a load finds it (a migration
/// brings the labels with the VMM's RAM) before its `restore` line. So
/// `papr-scm replay FILE` replays it. A trace
/// already open is closed first. While a trace is open hcalls take the
/// machine lock. A write that fails stops the trace;
/// [`papr_scm_trace_close`] reports it.
///
/// # Safety
///
/// `m` is NULL or a live machine; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_trace_open(
    m: *const papr_scm_machine,
    path: *const c_char,
) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`.
            let m = unsafe { arg(m, "m") }?.check()?;
            if path.is_null() {
                return Err(Error::null("path"));
            }
            // SAFETY: non-NULL, and NUL-terminated by the caller's contract.
            let path = unsafe { CStr::from_ptr(path) };
            #[cfg(unix)]
            let path = std::path::Path::new(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path.to_bytes()),
            );
            #[cfg(not(unix))]
            let path = std::path::Path::new(
                path.to_str()
                    .map_err(|_| Error::invalid("path", "is not UTF-8"))?,
            );
            m.trace_open(path)
        })
    })
}

/// Closes the trace, if one is open: `PAPR_SCM_IO` if any write to it
/// failed (the trace stopped at that write).
///
/// # Safety
///
/// `m` is NULL or a live machine.
#[no_mangle]
pub unsafe extern "C" fn papr_scm_trace_close(m: *const papr_scm_machine) -> papr_scm_result {
    ffi_fn!(m, papr_scm_result::PAPR_SCM_PANIC, {
        result(|| {
            // SAFETY: the caller's contract for `m`.
            let m = unsafe { arg(m, "m") }?.check()?;
            m.trace_close()
        })
    })
}

/// Test hook (feature `test-hooks`, not in the header): the next label
/// access of any machine panics inside the label callback path, to show
/// that the boundary turns the panic into `PAPR_SCM_PANIC` / `false`.
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn papr_scm_test_panic_next_label_access() {
    host::PANIC_NEXT_LABEL_ACCESS.store(true, Ordering::Relaxed);
}
