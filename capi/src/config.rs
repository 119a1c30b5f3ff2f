// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The C configuration structs as papr-scm's `MachineConfig` and
//! `NvdimmConfig`: every enum value and length checked here, every rule
//! left to `papr_scm::config` (whose errors name the field and the rule).

use std::format;

use papr_scm::config::{
    Associativity, DeviceKind, MachineConfig, NumaForm, NvdimmConfig, Profile, MAX_ASSOC_CELLS,
};
use papr_scm::Uuid;

use crate::boundary::slice;
use crate::error::Error;
use crate::types::{papr_scm_device_config, papr_scm_machine_config};

/// A `papr_scm_numa_form` value.
pub(crate) fn numa_form(field: &str, v: u32) -> Result<NumaForm, Error> {
    match v {
        1 => Ok(NumaForm::Form1),
        2 => Ok(NumaForm::Form2),
        _ => Err(Error::invalid(
            field,
            format!("{v} is not PAPR_SCM_NUMA_FORM1 (1) or PAPR_SCM_NUMA_FORM2 (2)"),
        )),
    }
}

/// The machine the VMM describes; the rules are checked by the planner.
pub(crate) fn machine(c: &papr_scm_machine_config) -> Result<MachineConfig, Error> {
    let profile = match c.profile {
        0 => Profile::Papr,
        1 => Profile::Qemu,
        v => {
            return Err(Error::invalid(
                "machine: profile",
                format!("{v} is not PAPR_SCM_PROFILE_PAPR (0) or PAPR_SCM_PROFILE_QEMU (1)"),
            ))
        }
    };
    let mut m = MachineConfig::new(c.ram_size, c.maxmem, c.slots);
    m.numa_nodes = c.numa_nodes;
    m.profile = profile;
    m.numa_form = numa_form("machine: numa_form", c.numa_form)?;
    Ok(m)
}

/// One device as the VMM placed it: slot and address explicit.
///
/// # Safety
///
/// `d.associativity` is NULL or points at `d.associativity_len` cells
/// valid for the call.
pub(crate) unsafe fn device(d: &papr_scm_device_config) -> Result<NvdimmConfig, Error> {
    let slot = d.slot;
    let field = |name: &str| format!("slot {slot}: {name}");
    let kind = match d.kind {
        0 => DeviceKind::Nvdimm,
        1 => DeviceKind::SpaprNvdimm,
        v => {
            return Err(Error::invalid(
                field("kind"),
                format!("{v} is not PAPR_SCM_KIND_NVDIMM (0) or PAPR_SCM_KIND_SPAPR_NVDIMM (1)"),
            ))
        }
    };
    let pmem_override = match d.pmem_override {
        -1 => None,
        0 => Some(false),
        1 => Some(true),
        v => {
            return Err(Error::invalid(
                field("pmem_override"),
                format!("{v} is not -1 (not given), 0 (off) or 1 (on)"),
            ))
        }
    };
    let persistence_failed_count = match d.persistence_failed_count {
        -1 => None,
        n if n >= 0 => Some(n as u64),
        n => {
            return Err(Error::invalid(
                field("persistence_failed_count"),
                format!("{n} is neither -1 (none) nor a count"),
            ))
        }
    };
    let associativity = if d.associativity.is_null() && d.associativity_len == 0 {
        None
    } else {
        if d.associativity_len > MAX_ASSOC_CELLS {
            return Err(Error::Device {
                slot,
                source: papr_scm::config::ConfigError::AssociativityMalformed {
                    reason: "more than 16 cells",
                },
            });
        }
        // SAFETY: the caller's contract for `associativity`; at most 16
        // cells are read.
        let cells = unsafe { slice(d.associativity, d.associativity_len, "associativity") }?;
        Some(Associativity::from_cells(cells).map_err(|source| Error::Device { slot, source })?)
    };
    Ok(NvdimmConfig {
        slot: Some(u64::from(slot)),
        addr: Some(d.addr),
        size: d.size,
        label_size: Some(d.label_size),
        uuid: Some(Uuid::from_bytes(d.uuid)),
        node: d.node,
        associativity,
        unarmed: d.unarmed.get(),
        kind,
        pmem: d.pmem.get(),
        pmem_override,
        readonly: d.readonly.get(),
        persistence_failed_count,
    })
}
