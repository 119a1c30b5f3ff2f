// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Building a machine from its configuration in one call (with `std`).

use std::vec::Vec;

use thiserror::Error;

use super::{Machine, SharedSlots, SlotTable};
use crate::config::{ConfigError, DeviceSpec, FlushMode, MachineConfig, NvdimmConfig, Planner};
use crate::device::Device;
use crate::host::Host;
use crate::label::{LabelError, LabelStore, VecLabelStore};

/// Why a machine could not be built.
#[derive(Debug, Error)]
pub enum BuildError {
    /// A configuration rule; `device` is the index into the device list,
    /// `None` for the machine itself.
    #[error("{}{source}", .device.map(|i| std::format!("device {i}: ")).unwrap_or_default())]
    Config {
        /// The device at fault.
        device: Option<usize>,
        /// The rule.
        source: ConfigError,
    },
    /// The label store for the device in `slot` could not be made.
    #[error("slot {slot}: {source}")]
    Label {
        /// The device's slot.
        slot: u32,
        /// What failed.
        source: LabelError,
    },
    /// The device in `slot` needs H_SCM_FLUSH (`ibm,hcall-flush-required`)
    /// but the host's `FlushExecutor` does not flush that slot (its
    /// `flushes_slot` is false: it flushes nothing, or its table ends
    /// before the slot): the guest would be told its data is durable when
    /// it is not.
    #[error("slot {slot}: the device needs H_SCM_FLUSH but the host does not flush this slot (FlushExecutor::flushes_slot is false)")]
    NoFlushExecutor {
        /// The device's slot.
        slot: u32,
    },
    /// Two devices name one slot.
    #[error("slot {slot}: two devices")]
    SlotTaken {
        /// The slot.
        slot: u32,
    },
}

impl<S: SlotTable, H: Host> Machine<S, H> {
    /// Refuses a machine whose host cannot serve its devices: a device
    /// needing H_SCM_FLUSH in a slot the host's flush does not serve. The
    /// `from_*` constructors call it; a VMM that assembles its slot table
    /// itself calls it after [`Machine::with_host`].
    pub fn check_host(&self) -> Result<(), BuildError> {
        for slot in 0..self.slots.slot_count() {
            let needs = self
                .slots
                .with_slot(slot, |d| d.spec().flush == FlushMode::Hcall);
            if needs == Some(true) && !self.host.flushes_slot(slot) {
                return Err(BuildError::NoFlushExecutor { slot });
            }
        }
        Ok(())
    }
}

impl<L: LabelStore, H: Host> Machine<SharedSlots<L>, H> {
    /// A machine of `config.slots` slots holding already-placed devices,
    /// each with the label store `label` makes for its spec (for a file,
    /// `FileLabelStore::for_spec`: QEMU's layout).
    pub fn from_specs_with<E>(
        config: &MachineConfig,
        specs: &[DeviceSpec],
        host: H,
        mut label: impl FnMut(&DeviceSpec) -> Result<L, E>,
    ) -> Result<Self, BuildError>
    where
        LabelError: From<E>,
    {
        let table = SharedSlots::new(config.slots);
        for spec in specs {
            let store = label(spec).map_err(|e| BuildError::Label {
                slot: spec.slot,
                source: e.into(),
            })?;
            table
                .insert(Device::new(*spec, store))
                .map_err(|e| BuildError::SlotTaken { slot: e.slot })?;
        }
        let m = Machine::with_host(config, table, host);
        m.check_host()?;
        Ok(m)
    }

    /// Validates `config`, plugs `devices` in order and gives each the
    /// label store `label` makes for its placed spec.
    ///
    /// ```
    /// use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig};
    /// use papr_scm::host::FileFlusher;
    /// use papr_scm::label::FileLabelStore;
    /// use papr_scm::machine::Machine;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
    /// let mut dev = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
    /// dev.kind = DeviceKind::SpaprNvdimm; // needs H_SCM_FLUSH
    /// let flusher = FileFlusher::new(4);
    /// let machine = Machine::from_config_with(
    ///     &MachineConfig::new(2 << 30, 8 << 30, 4),
    ///     &[dev],
    ///     flusher,
    ///     |spec| FileLabelStore::for_spec(&dir.path().join("nv0.img"), spec),
    /// )?;
    /// // The flush worker syncs the same file the guest's data is in.
    /// machine.with_device(0, |d| machine.host().attach_store(0, d.label())).transpose()?;
    ///
    /// // Without a flush executor the same device is refused, not lied to.
    /// let err = Machine::from_config(&MachineConfig::new(2 << 30, 8 << 30, 4), &[dev], papr_scm::host::NoHost);
    /// assert!(matches!(err, Err(papr_scm::machine::BuildError::NoFlushExecutor { slot: 0 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_config_with<E>(
        config: &MachineConfig,
        devices: &[NvdimmConfig],
        host: H,
        label: impl FnMut(&DeviceSpec) -> Result<L, E>,
    ) -> Result<Self, BuildError>
    where
        LabelError: From<E>,
    {
        let mut planner = Planner::new(*config).map_err(|source| BuildError::Config {
            device: None,
            source,
        })?;
        let specs = devices
            .iter()
            .enumerate()
            .map(|(i, cfg)| {
                planner.plug(cfg).map_err(|source| BuildError::Config {
                    device: Some(i),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_specs_with(config, &specs, host, label)
    }
}

/// A zeroed in-memory label area of the spec's `label-size`.
fn zeroed_label(spec: &DeviceSpec) -> Result<VecLabelStore, LabelError> {
    // label_size <= u32::MAX was validated.
    Ok(VecLabelStore::new(spec.layout.label_size() as usize))
}

impl<H: Host> Machine<SharedSlots<VecLabelStore>, H> {
    /// [`from_specs_with`](Self::from_specs_with) with a zeroed in-memory
    /// label area per device.
    pub fn from_specs(
        config: &MachineConfig,
        specs: &[DeviceSpec],
        host: H,
    ) -> Result<Self, BuildError> {
        Self::from_specs_with(config, specs, host, zeroed_label)
    }

    /// [`from_config_with`](Self::from_config_with) with a zeroed in-memory
    /// label area per device.
    pub fn from_config(
        config: &MachineConfig,
        devices: &[NvdimmConfig],
        host: H,
    ) -> Result<Self, BuildError> {
        Self::from_config_with(config, devices, host, zeroed_label)
    }
}
