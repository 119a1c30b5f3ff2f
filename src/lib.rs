// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The hypervisor side of the PAPR Storage Class Memory (SCM) interface, for
//! VMMs that run IBM pseries (POWER) guests with persistent memory.
//!
//! A Linux guest's `papr_scm` driver finds `ibm,pmemory` nodes in its device
//! tree and drives each device through the ten `H_SCM_*` hcalls. This crate
//! answers them: give it the opcode (r3) and registers r4..r12 of an hcall
//! exit and it returns the status and writes the outputs.
//!
// The std embedding leads; it needs `std` to build as a doctest.
#![cfg_attr(feature = "std", doc = include_str!("doc/embedding.md"))]
//! The VMM plugs in through the small traits of [`host`] (guest memory for
//! statistics, the flush executor, bind hooks, statistics values), each
//! with a default; [`host::NoHost`] keeps them all.
//!
//! # Without `std`
//!
//! The core is `no_std` without `alloc`: configuration, DRCs, the layout,
//! label stores over caller slices and every hcall handler, with
//! [`LocalSlots`](machine::LocalSlots) (one `RefCell` per slot) or a slot
//! table of your own ([`machine::SlotTable`], e.g. over a spin lock; see
//! `examples/no_std_spin.rs`).
//!
//! ```
//! use core::cell::RefCell;
//! use papr_scm::config::{parse_uuid, ConfigError, MachineConfig, NvdimmConfig, Planner};
//! use papr_scm::device::Device;
//! use papr_scm::hcall::{H_SCM_READ_METADATA, H_SUCCESS};
//! use papr_scm::label::SliceLabelStore;
//! use papr_scm::machine::{LocalSlots, Machine};
//!
//! fn main() -> Result<(), ConfigError> {
//!     let config = MachineConfig::new(2 << 30, 8 << 30, 4);
//!     let mut planner = Planner::new(config)?;
//!     let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
//!     let spec = planner.plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))?;
//!
//!     let mut label = [0u8; 128 * 1024];
//!     label[0] = 0xAB;
//!     let cells = [const { RefCell::new(None) }; 4];
//!     *cells[spec.slot as usize].borrow_mut() = Some(Device::new(spec, SliceLabelStore::new(&mut label)));
//!     let machine = Machine::new(&config, LocalSlots::new(&cells));
//!
//!     let mut regs = [0x9000_0000, 0, 1, 0, 0, 0, 0, 0, 0];
//!     assert_eq!(machine.handle(H_SCM_READ_METADATA, &mut regs), Some(H_SUCCESS));
//!     assert_eq!(regs[0], 0xAB);
//!     Ok(())
//! }
//! ```
//!
//! # Modules
//!
//! * [`machine`] — the devices by slot and the register-level entry;
//! * [`config`] — machine and device configuration, validated as QEMU does;
//! * [`device`] — one SCM device, its handlers, its state for snapshots;
//! * [`label`] — label (metadata) stores over a slice, a `Vec` or a file;
//! * [`host`] — the small traits through which the VMM plugs in;
//! * `fdt` (with `alloc`) — the `ibm,persistent-memory` nodes and PMEM DRC
//!   properties, through `vm-fdt`, and a structural blob check;
//! * `transcript` and `replay` — the conformance transcript format;
//! * `guest` and `bridge` (feature `guest-model`) — a model of the Linux
//!   driver, and the gdb-stub bridge that serves a real guest.
//!
//! Two profiles: [`Profile::Qemu`] is bit-exact with QEMU's
//! `hw/ppc/spapr_nvdimm.c`; [`Profile::Papr`] (the default) adds stateful
//! binding, the QUERY calls, performance statistics and health injection.

#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(feature = "guest-model")]
pub mod bridge;
pub mod config;
pub mod device;
pub mod drc;
#[cfg(feature = "alloc")]
pub mod fdt;
#[cfg(feature = "guest-model")]
pub mod guest;
pub mod hcall;
pub mod host;
pub mod label;
pub mod layout;
pub mod machine;
pub mod pmemory;
#[cfg(feature = "std")]
pub mod replay;
pub mod rtas;
pub mod rtas_error_log;
pub mod stats;
#[cfg(feature = "alloc")]
pub mod transcript;

pub use config::Profile;
pub use uuid::Uuid;
#[cfg(feature = "alloc")]
pub use vm_fdt;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
