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
//! * [`machine::Machine::handle`] — the register-level entry;
//! * [`config`] — machine and device configuration, validated as QEMU does;
//! * [`device`] — one SCM device and its handlers;
//! * [`label`] — label (metadata) stores over a slice, a `Vec` or a file;
//! * [`host`] — the small traits through which the VMM plugs in;
//! * `fdt` (with `alloc`) — the `ibm,persistent-memory` nodes and PMEM DRC
//!   properties, through `vm-fdt`;
//! * `transcript` and `replay` — the conformance transcript format.
//!
//! Two profiles: [`Profile::Qemu`] is bit-exact with QEMU's
//! `hw/ppc/spapr_nvdimm.c`; [`Profile::Papr`] (the default) adds stateful
//! binding, the QUERY calls, performance statistics and health injection.
//!
//! # Example
//!
//! ```
//! use core::cell::RefCell;
//! use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner, Profile};
//! use papr_scm::device::Device;
//! use papr_scm::hcall::{H_SCM_BIND_MEM, H_SCM_READ_METADATA, H_SUCCESS};
//! use papr_scm::label::SliceLabelStore;
//! use papr_scm::machine::{LocalSlots, Machine};
//!
//! const K: u64 = 1024;
//! const G: u64 = 1024 * 1024 * K;
//! // -m 2G,slots=4,maxmem=8G and one 1 GiB NVDIMM with a 128 KiB label.
//! let mut planner = Planner::new(MachineConfig::new(2 * G, 8 * G, 4))?;
//! let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
//! let spec = planner.plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))?;
//!
//! // Caller-provided storage: no heap needed.
//! let mut label = [0u8; 128 * 1024];
//! label[0] = 0xAB;
//! let cells = [const { RefCell::new(None) }; 4];
//! *cells[spec.slot as usize].borrow_mut() = Some(Device::new(spec, SliceLabelStore::new(&mut label)));
//! let machine = Machine::new(Profile::Papr, LocalSlots::new(&cells));
//!
//! // The guest binds all four blocks and lets the hypervisor choose.
//! let mut regs = [0x9000_0000, 0, 4, u64::MAX, 0, 0, 0, 0, 0];
//! assert_eq!(machine.handle(H_SCM_BIND_MEM, &mut regs), Some(H_SUCCESS));
//! assert_eq!(regs[1], 0x8000_0000); // r5: the address of block 0
//!
//! // And reads one label byte.
//! let mut regs = [0x9000_0000, 0, 1, 0, 0, 0, 0, 0, 0];
//! assert_eq!(machine.handle(H_SCM_READ_METADATA, &mut regs), Some(H_SUCCESS));
//! assert_eq!(regs[0], 0xAB);
//! # Ok::<(), papr_scm::config::ConfigError>(())
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
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
#[cfg(feature = "std")]
pub mod replay;
pub mod stats;
#[cfg(feature = "alloc")]
pub mod transcript;

pub use config::Profile;
pub use uuid::Uuid;
#[cfg(feature = "alloc")]
pub use vm_fdt;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
