// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Machine and device configuration, validated with one typed error per rule.
//!
//! The rules are QEMU's (`spapr_memory_pre_plug`, `spapr_nvdimm_validate`,
//! `nvdimm_realize`, `pc_dimm_pre_plug`, `spapr_machine_init`); where this
//! crate is stricter, `DESIGN.md` says why.

use core::fmt;

use thiserror::Error;
use uuid::Uuid;

use crate::drc::{DrcIndex, SlotAllocator, SlotError, MAX_SLOTS};
use crate::layout::{
    BackingLayout, DeviceMemory, LayoutError, MAX_LABEL_SIZE, MIN_LABEL_SIZE, SCM_BLOCK_SIZE,
};

/// Which hypervisor behaviour the hcall handlers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Bit-exact with QEMU 10.x `hw/ppc/spapr_nvdimm.c`, quirks included.
    Qemu,
    /// Everything the Linux guest can ask for: stateful binding, the QUERY
    /// calls, PERFORMANCE_STATS, health injection.
    #[default]
    Papr,
}

impl Profile {
    /// The profile's name in the transcript format.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Qemu => "qemu",
            Profile::Papr => "papr",
        }
    }
}

/// The QEMU device type an SCM device models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceKind {
    /// `nvdimm`: synchronous persistence, H_SCM_FLUSH answers H_PARAMETER.
    #[default]
    Nvdimm,
    /// `spapr-nvdimm`: may require H_SCM_FLUSH (`ibm,hcall-flush-required`).
    SpaprNvdimm,
}

impl DeviceKind {
    /// The QEMU type name.
    pub const fn name(self) -> &'static str {
        match self {
            DeviceKind::Nvdimm => "nvdimm",
            DeviceKind::SpaprNvdimm => "spapr-nvdimm",
        }
    }
}

/// How H_SCM_FLUSH behaves for a device (QEMU `h_scm_flush` and
/// `spapr_nvdimm_realize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushMode {
    /// Plain `nvdimm`: no flush hcall (H_PARAMETER).
    None,
    /// `spapr-nvdimm` on a `pmem=on` backend without `pmem-override`:
    /// CPU cache flushes suffice, H_SCM_FLUSH answers H_UNSUPPORTED.
    PmemBacked,
    /// `spapr-nvdimm` that needs H_SCM_FLUSH: `ibm,hcall-flush-required`.
    Hcall,
}

/// The NUMA affinity form the guest uses (PAPR "ibm,architecture-vec-5"
/// byte 5 bit 2, OV5_FORM2_AFFINITY).
///
/// QEMU's boot-time tree is FORM1; QEMU 6.2+ rebuilds the tree after CAS
/// with FORM2 when the guest asks for it (Linux 5.15+ does), and every node
/// plugged later is written in the negotiated form (`spapr_numa.c`
/// `get_associativity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NumaForm {
    /// `<4 0 0 0 node>` (boot time, or a guest without FORM2).
    #[default]
    Form1,
    /// `<1 node>` (negotiated at CAS).
    Form2,
}

impl NumaForm {
    /// The configuration-file spelling: `form1` or `form2`.
    pub const fn name(self) -> &'static str {
        match self {
            NumaForm::Form1 => "form1",
            NumaForm::Form2 => "form2",
        }
    }
}

/// Maximum `ibm,associativity` cells a device may carry.
pub const MAX_ASSOC_CELLS: usize = 16;

/// An `ibm,associativity` array: the count cell followed by the domains, the
/// last of which is the NUMA node.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Associativity {
    cells: [u32; MAX_ASSOC_CELLS],
    len: usize,
}

impl fmt::Debug for Associativity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.cells()).finish()
    }
}

impl Associativity {
    /// QEMU's default FORM1 array for `node`: `<4 0 0 0 node>`.
    pub const fn form1(node: u32) -> Self {
        let mut cells = [0; MAX_ASSOC_CELLS];
        cells[0] = 4;
        cells[4] = node;
        Associativity { cells, len: 5 }
    }

    /// QEMU's FORM2 array for `node`: `<1 node>` (`spapr_numa_FORM2_affinity_init`,
    /// QEMU 6.2+), written once the guest negotiated OV5_FORM2_AFFINITY at CAS.
    pub const fn form2(node: u32) -> Self {
        let mut cells = [0; MAX_ASSOC_CELLS];
        cells[0] = 1;
        cells[1] = node;
        Associativity { cells, len: 2 }
    }

    /// QEMU's array for `node` in the negotiated `form`.
    pub const fn for_node(form: NumaForm, node: u32) -> Self {
        match form {
            NumaForm::Form1 => Self::form1(node),
            NumaForm::Form2 => Self::form2(node),
        }
    }

    /// Whether this is QEMU's own array for its node in either form (as
    /// opposed to a VMM-supplied FORM1 array with real domains).
    pub fn is_default_shape(&self) -> bool {
        let node = self.node();
        *self == Self::form1(node) || *self == Self::form2(node)
    }

    /// A whole array supplied by the VMM (FORM1 with real domains, or FORM2
    /// `<1 node>`). The first cell must count the cells after it.
    pub fn from_cells(cells: &[u32]) -> Result<Self, ConfigError> {
        let malformed = |reason| Err(ConfigError::AssociativityMalformed { reason });
        if cells.len() < 2 {
            return malformed("needs a count cell and at least one domain");
        }
        if cells.len() > MAX_ASSOC_CELLS {
            return malformed("more than 16 cells");
        }
        if cells[0] as usize != cells.len() - 1 {
            return malformed("first cell must count the cells after it");
        }
        let mut a = Associativity {
            cells: [0; MAX_ASSOC_CELLS],
            len: cells.len(),
        };
        a.cells[..cells.len()].copy_from_slice(cells);
        Ok(a)
    }

    /// The cells, count first.
    pub fn cells(&self) -> &[u32] {
        &self.cells[..self.len]
    }

    /// The NUMA node: the last domain.
    pub fn node(&self) -> u32 {
        self.cells[self.len - 1]
    }
}

/// A configuration error. Each variant names the field and the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `ram` is zero or not a multiple of 256 MiB (QEMU `spapr_machine_init`).
    #[error("ram: {ram:#x} must be a non-zero multiple of 256 MiB")]
    RamNotAligned {
        /// RAM size.
        ram: u64,
    },
    /// `maxmem` is below `ram`.
    #[error("maxmem: {maxmem:#x} is below ram {ram:#x}")]
    MaxmemBelowRam {
        /// maxmem.
        maxmem: u64,
        /// ram.
        ram: u64,
    },
    /// Slots were given but `maxmem` equals `ram`, so there is no device memory.
    #[error("maxmem: equals ram while slots={slots} are given; no device memory for them")]
    MaxmemEqualsRam {
        /// Slot count.
        slots: u32,
    },
    /// `maxmem - ram` is not a multiple of 256 MiB.
    #[error("maxmem: device memory (maxmem - ram = {size:#x}) is not a multiple of 256 MiB")]
    DeviceMemoryNotAligned {
        /// maxmem - ram.
        size: u64,
    },
    /// The device-memory region would pass the top of the address space.
    #[error("maxmem: device memory [{base:#x}, +{size:#x}) passes the end of the address space")]
    DeviceMemoryOverflow {
        /// Region base.
        base: u64,
        /// Region size.
        size: u64,
    },
    /// `numa-nodes` is zero.
    #[error("numa-nodes: must be at least 1")]
    NoNumaNodes,
    /// `label-size` is missing or zero (QEMU: "PAPR requires label-size").
    #[error("label-size: missing; PAPR requires label-size")]
    LabelSizeMissing,
    /// `label-size` below 128 KiB (QEMU `nvdimm_set_label_size`).
    #[error("label-size: {label_size:#x} is below the minimum of 128 KiB")]
    LabelSizeTooSmall {
        /// The label size.
        label_size: u64,
    },
    /// `label-size` does not fit the 32-bit `ibm,metadata-size` cell.
    #[error("label-size: {label_size:#x} does not fit the 32-bit ibm,metadata-size")]
    LabelSizeTooLarge {
        /// The label size.
        label_size: u64,
    },
    /// `label-size` leaves no data (QEMU: "memdev too small to contain label
    /// and aligned PMEM").
    #[error("size: {size:#x} is too small to contain label-size {label_size:#x} and data")]
    LabelNotBelowSize {
        /// Backing size.
        size: u64,
        /// Label size.
        label_size: u64,
    },
    /// Data size (size minus label) not a multiple of 256 MiB.
    #[error("size: data size {data_size:#x} (size minus label-size) is not a multiple of 256 MiB")]
    DataSizeNotBlockMultiple {
        /// Data size.
        data_size: u64,
    },
    /// `uuid` missing or all zeros (QEMU: "uuid must be set").
    #[error("uuid: must be set and non-zero")]
    UuidMissing,
    /// `uuid` is not a 36-character 8-4-4-4-12 hex string.
    #[error("uuid: malformed; expected 36 characters xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")]
    UuidMalformed,
    /// `readonly=on` without `unarmed=on` (QEMU `nvdimm_prepare_memory_region`).
    #[error("unarmed: must be on because the device is read-only")]
    ReadOnlyNeedsUnarmed,
    /// `node` not below the machine's NUMA node count.
    #[error("node: {node} is not below the machine's {nodes} NUMA node(s)")]
    NodeOutOfRange {
        /// The node.
        node: u32,
        /// numa-nodes.
        nodes: u32,
    },
    /// A malformed `ibm,associativity` array.
    #[error("associativity: {reason}")]
    AssociativityMalformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// `pmem-override` on a plain `nvdimm`, which has no such property.
    #[error("pmem-override: only spapr-nvdimm has this property")]
    PmemOverrideOnNvdimm,
    /// `persistence-failed-count` in the `qemu` profile: QEMU never emits
    /// `ibm,persistence-failed-count`, so a qemu-exact tree cannot carry it.
    #[error("persistence-failed-count: QEMU has no such property; use the papr profile")]
    PersistenceFailedCountInQemuProfile,
    /// A slot rule.
    #[error(transparent)]
    Slot(#[from] SlotError),
    /// `Planner::unplug` of a device the planner did not place.
    #[error("slot: {slot} holds no device this planner placed")]
    NotPlugged {
        /// The slot.
        slot: u32,
    },
    /// A placement rule.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// Parses a UUID exactly as QEMU's `qemu_uuid_parse`: 36 characters in the
/// 8-4-4-4-12 form, hex digits of either case.
pub fn parse_uuid(s: &str) -> Result<Uuid, ConfigError> {
    if s.len() != 36 {
        return Err(ConfigError::UuidMalformed);
    }
    // With the length pinned to 36, `try_parse` accepts only the hyphenated
    // form (the simple form has 32 characters, braced 38, urn 45).
    Uuid::try_parse(s).map_err(|_| ConfigError::UuidMalformed)
}

/// The machine: memory sizes, PMEM slots, NUMA nodes and the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineConfig {
    /// Boot RAM (`-m SIZE`).
    pub ram_size: u64,
    /// Maximum memory (`-m maxmem=`); `maxmem - ram` is device memory.
    pub maxmem: u64,
    /// Memory slots (`-m slots=`), one PMEM DRC each.
    pub slots: u32,
    /// NUMA nodes (at least 1).
    pub numa_nodes: u32,
    /// The NUMA affinity form of the tree being built: FORM1 at boot; the
    /// form negotiated at CAS when the VMM rebuilds the tree after it or
    /// plugs a device later. Devices without an explicit `associativity`
    /// get QEMU's array for their node in this form.
    pub numa_form: NumaForm,
    /// Hcall behaviour.
    pub profile: Profile,
}

impl MachineConfig {
    /// A single-node machine in the `papr` profile.
    pub const fn new(ram_size: u64, maxmem: u64, slots: u32) -> Self {
        MachineConfig {
            ram_size,
            maxmem,
            slots,
            numa_nodes: 1,
            numa_form: NumaForm::Form1,
            profile: Profile::Papr,
        }
    }

    /// Checks the machine rules and returns the device-memory region, if any.
    pub fn validate(&self) -> Result<Option<DeviceMemory>, ConfigError> {
        if self.ram_size == 0 || self.ram_size % SCM_BLOCK_SIZE != 0 {
            return Err(ConfigError::RamNotAligned { ram: self.ram_size });
        }
        if self.maxmem < self.ram_size {
            return Err(ConfigError::MaxmemBelowRam {
                maxmem: self.maxmem,
                ram: self.ram_size,
            });
        }
        if self.slots > MAX_SLOTS {
            return Err(SlotError::TooManySlots {
                slots: self.slots,
                max: MAX_SLOTS,
            }
            .into());
        }
        if self.numa_nodes == 0 {
            return Err(ConfigError::NoNumaNodes);
        }
        let size = self.maxmem - self.ram_size;
        if size == 0 {
            if self.slots > 0 {
                return Err(ConfigError::MaxmemEqualsRam { slots: self.slots });
            }
            return Ok(None);
        }
        if size % SCM_BLOCK_SIZE != 0 {
            return Err(ConfigError::DeviceMemoryNotAligned { size });
        }
        match DeviceMemory::new(self.ram_size, self.maxmem) {
            Some(r) => Ok(Some(r)),
            None => Err(ConfigError::DeviceMemoryOverflow {
                base: self.ram_size,
                size,
            }),
        }
    }
}

/// One NVDIMM as the VMM describes it (the QEMU `-device nvdimm` /
/// `spapr-nvdimm` properties and its memory backend). `Default` is QEMU's
/// defaults, with no size, label size or UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NvdimmConfig {
    /// Requested slot; `None` takes the lowest free one.
    pub slot: Option<u64>,
    /// Requested guest address; `None` places first fit.
    pub addr: Option<u64>,
    /// Whole backing size, label included (memory-backend-file `size`).
    pub size: u64,
    /// Label area size (`label-size`); required.
    pub label_size: Option<u64>,
    /// Device UUID (`uuid`); required, non-zero.
    pub uuid: Option<Uuid>,
    /// NUMA node (`node`).
    pub node: u32,
    /// Whole `ibm,associativity` array; `None` writes `<4 0 0 0 node>`.
    pub associativity: Option<Associativity>,
    /// `unarmed=on`: H_SCM_HEALTH reports PAPR_PMEM_UNARMED.
    pub unarmed: bool,
    /// QEMU device type.
    pub kind: DeviceKind,
    /// Backend `pmem=on`.
    pub pmem: bool,
    /// `pmem-override`, if given: `spapr-nvdimm` only, where `Some(true)`
    /// makes a `pmem=on` device use H_SCM_FLUSH again. A plain `nvdimm`
    /// has no such property (QEMU refuses `-device nvdimm,pmem-override=…`
    /// whatever the value), so any `Some` is refused there.
    pub pmem_override: Option<bool>,
    /// Read-only backend: label writes fail with H_P2; requires `unarmed`.
    pub readonly: bool,
    /// The VMM's count of dirty shutdowns of this device (persistence lost),
    /// for `ibm,persistence-failed-count` (`papr` profile only; 0 if
    /// `None`). Linux's `papr_scm_probe` reads it into the dirty-shutdown
    /// counter it reports through PDSM health and sysfs `dirty_shutdown`.
    pub persistence_failed_count: Option<u64>,
}

impl NvdimmConfig {
    /// A plain `nvdimm` of `size` backing bytes with the given label size and
    /// UUID, every other property at its QEMU default.
    pub fn new(size: u64, label_size: u64, uuid: Uuid) -> Self {
        NvdimmConfig {
            size,
            label_size: Some(label_size),
            uuid: Some(uuid),
            ..NvdimmConfig::default()
        }
    }

    /// The flush behaviour QEMU derives from type, `pmem` and `pmem-override`.
    pub const fn flush_mode(&self) -> FlushMode {
        match self.kind {
            DeviceKind::Nvdimm => FlushMode::None,
            DeviceKind::SpaprNvdimm if self.pmem && !matches!(self.pmem_override, Some(true)) => {
                FlushMode::PmemBacked
            }
            DeviceKind::SpaprNvdimm => FlushMode::Hcall,
        }
    }

    /// Checks the rules that concern the device alone, in QEMU's order.
    pub fn validate(&self, machine: &MachineConfig) -> Result<BackingLayout, ConfigError> {
        let label_size = match self.label_size {
            None | Some(0) => return Err(ConfigError::LabelSizeMissing),
            Some(l) => l,
        };
        if label_size < MIN_LABEL_SIZE {
            return Err(ConfigError::LabelSizeTooSmall { label_size });
        }
        if label_size > MAX_LABEL_SIZE {
            return Err(ConfigError::LabelSizeTooLarge { label_size });
        }
        let layout = BackingLayout::new(self.size, label_size).map_err(|e| match e {
            LayoutError::NotBlockMultiple { data } => {
                ConfigError::DataSizeNotBlockMultiple { data_size: data }
            }
            _ => ConfigError::LabelNotBelowSize {
                size: self.size,
                label_size,
            },
        })?;
        match self.uuid {
            Some(u) if !u.is_nil() => {}
            _ => return Err(ConfigError::UuidMissing),
        }
        if self.readonly && !self.unarmed {
            return Err(ConfigError::ReadOnlyNeedsUnarmed);
        }
        if self.node >= machine.numa_nodes {
            return Err(ConfigError::NodeOutOfRange {
                node: self.node,
                nodes: machine.numa_nodes,
            });
        }
        if let Some(a) = &self.associativity {
            if a.node() >= machine.numa_nodes {
                return Err(ConfigError::NodeOutOfRange {
                    node: a.node(),
                    nodes: machine.numa_nodes,
                });
            }
        }
        if self.pmem_override.is_some() && self.kind == DeviceKind::Nvdimm {
            return Err(ConfigError::PmemOverrideOnNvdimm);
        }
        if self.persistence_failed_count.is_some() && machine.profile == Profile::Qemu {
            return Err(ConfigError::PersistenceFailedCountInQemuProfile);
        }
        Ok(layout)
    }
}

/// A validated, placed device: everything the hcall handlers and the device
/// tree need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// PMEM slot.
    pub slot: u32,
    /// DRC index of the slot.
    pub drc: DrcIndex,
    /// Guest-physical base of block 0.
    pub addr: u64,
    /// Backing, label and block layout.
    pub layout: BackingLayout,
    /// Device UUID.
    pub uuid: Uuid,
    /// `ibm,associativity`.
    pub associativity: Associativity,
    /// `unarmed=on`.
    pub unarmed: bool,
    /// Read-only backend.
    pub readonly: bool,
    /// QEMU device type.
    pub kind: DeviceKind,
    /// Flush behaviour.
    pub flush: FlushMode,
    /// `ibm,persistence-failed-count`: `Some` in the `papr` profile (as
    /// PowerVM writes it), `None` in `qemu` (QEMU never does).
    pub persistence_failed_count: Option<u64>,
    /// Backend `pmem=on`: label writes are persisted before the hcall
    /// returns (QEMU `nvdimm_write_label` calls `pmem_persist`).
    pub pmem: bool,
}

impl DeviceSpec {
    /// Rewrites QEMU's default associativity in the NUMA form negotiated at
    /// CAS, for a VMM that rebuilds the tree after CAS. A VMM-supplied array
    /// with real domains is kept as it is.
    pub fn set_numa_form(&mut self, form: NumaForm) {
        if self.associativity.is_default_shape() {
            self.associativity = Associativity::for_node(form, self.associativity.node());
        }
    }

    /// Number of 256 MiB blocks.
    pub const fn blocks(&self) -> u64 {
        self.layout.blocks()
    }

    /// Guest-visible data size.
    pub const fn data_size(&self) -> u64 {
        self.layout.data_size()
    }
}

/// Validates a machine and plugs devices into it one by one, in plug order,
/// without allocating: slots, addresses and every rule.
///
/// ```
/// use papr_scm::config::{parse_uuid, ConfigError, MachineConfig, NvdimmConfig, Planner};
///
/// // QEMU: -m 2G,slots=4,maxmem=8G -device nvdimm,label-size=128K,... x2
/// let mut planner = Planner::new(MachineConfig::new(2 << 30, 8 << 30, 4))?;
/// let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
/// let a = planner.plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))?;
/// let b = planner.plug(&NvdimmConfig::new((512 << 20) + (128 << 10), 128 << 10, uuid))?;
/// // First fit after RAM, QEMU's addresses; DRC indexes by slot.
/// assert_eq!((a.addr, a.drc.raw(), a.blocks()), (0x8000_0000, 0x9000_0000, 4));
/// assert_eq!((b.addr, b.slot), (0xC000_0000, 1));
/// // Every rule is a typed error naming its field.
/// let small = NvdimmConfig::new((1 << 30) + (64 << 10), 64 << 10, uuid);
/// let err = planner.plug(&small).unwrap_err();
/// assert_eq!(err, ConfigError::LabelSizeTooSmall { label_size: 64 << 10 });
/// assert!(err.to_string().starts_with("label-size:"));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Planner {
    machine: MachineConfig,
    region: Option<DeviceMemory>,
    slots: SlotAllocator,
    placed: [(u64, u64); MAX_SLOTS as usize],
    count: usize,
}

impl Planner {
    /// Validates `machine`.
    pub fn new(machine: MachineConfig) -> Result<Self, ConfigError> {
        let region = machine.validate()?;
        Ok(Planner {
            machine,
            region,
            slots: SlotAllocator::new(machine.slots)?,
            placed: [(0, 0); MAX_SLOTS as usize],
            count: 0,
        })
    }

    /// The validated machine.
    pub fn machine(&self) -> &MachineConfig {
        &self.machine
    }

    /// The device-memory region.
    pub fn region(&self) -> Option<DeviceMemory> {
        self.region
    }

    /// Gives back `spec`'s slot and address range (after an unplug), so a
    /// later plug may use them. A spec this planner did not place is an
    /// error naming its slot.
    pub fn unplug(&mut self, spec: &DeviceSpec) -> Result<(), ConfigError> {
        let size = spec.layout.data_size();
        let placed = &self.placed[..self.count];
        let Some(i) = placed.iter().position(|&p| p == (spec.addr, size)) else {
            return Err(ConfigError::NotPlugged { slot: spec.slot });
        };
        if !self.slots.is_used(spec.slot) {
            return Err(ConfigError::NotPlugged { slot: spec.slot });
        }
        self.placed.copy_within(i + 1..self.count, i);
        self.count -= 1;
        self.slots.free(spec.slot);
        Ok(())
    }

    /// Validates `cfg`, takes its slot and chooses its address.
    pub fn plug(&mut self, cfg: &NvdimmConfig) -> Result<DeviceSpec, ConfigError> {
        let layout = cfg.validate(&self.machine)?;
        let mut slots = self.slots;
        let slot = slots.allocate(cfg.slot)?;
        // slot < slots <= MAX_SLOTS, so it always has a PMEM index.
        let drc = DrcIndex::pmem(slot).ok_or(SlotError::OutOfRange {
            slot: u64::from(slot),
            max: self.machine.slots.saturating_sub(1),
        })?;
        let size = layout.data_size();
        let region = self.region.ok_or(LayoutError::NoSpace {
            size,
            base: 0,
            region: 0,
        })?;
        let addr = region.place(size, cfg.addr, &self.placed[..self.count])?;
        self.slots = slots;
        self.placed[self.count] = (addr, size);
        self.count += 1;
        Ok(DeviceSpec {
            slot,
            drc,
            addr,
            layout,
            uuid: cfg.uuid.unwrap_or_default(),
            associativity: cfg
                .associativity
                .unwrap_or(Associativity::for_node(self.machine.numa_form, cfg.node)),
            unarmed: cfg.unarmed,
            readonly: cfg.readonly,
            kind: cfg.kind,
            flush: cfg.flush_mode(),
            pmem: cfg.pmem,
            persistence_failed_count: match self.machine.profile {
                Profile::Qemu => None,
                Profile::Papr => Some(cfg.persistence_failed_count.unwrap_or(0)),
            },
        })
    }
}

/// The device most unit tests use: 1 GiB + 128 KiB, label 128 KiB, slot 0
/// of a 2 GiB / 8 GiB / 4-slot machine.
#[cfg(test)]
pub(crate) fn example_spec() -> DeviceSpec {
    Planner::new(MachineConfig::new(2 << 30, 8 << 30, 4))
        .unwrap()
        .plug(&NvdimmConfig::new(
            (1 << 30) + (128 << 10),
            128 << 10,
            parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap(),
        ))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;
    const M: u64 = 1024 * K;
    const G: u64 = 1024 * M;

    fn uuid() -> Uuid {
        parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap()
    }

    fn machine() -> MachineConfig {
        MachineConfig::new(2 * G, 8 * G, 4)
    }

    fn dev() -> NvdimmConfig {
        NvdimmConfig::new(G + 128 * K, 128 * K, uuid())
    }

    fn check(cfg: NvdimmConfig) -> Result<BackingLayout, ConfigError> {
        cfg.validate(&machine())
    }

    #[test]
    fn test_valid_device() {
        let l = check(dev()).unwrap();
        assert_eq!(l.blocks(), 4);
    }

    #[test]
    fn test_label_size_rules() {
        let mut c = dev();
        c.label_size = None;
        assert_eq!(check(c), Err(ConfigError::LabelSizeMissing));
        c.label_size = Some(0);
        assert_eq!(check(c), Err(ConfigError::LabelSizeMissing));
        c.label_size = Some(128 * K - 1);
        assert_eq!(
            check(c),
            Err(ConfigError::LabelSizeTooSmall {
                label_size: 128 * K - 1
            })
        );
        c.label_size = Some(64 * K);
        assert_eq!(
            check(c),
            Err(ConfigError::LabelSizeTooSmall { label_size: 64 * K })
        );
        c.label_size = Some(4 * G);
        c.size = 4 * G + 256 * M;
        assert_eq!(
            check(c),
            Err(ConfigError::LabelSizeTooLarge { label_size: 4 * G })
        );
        c.label_size = Some(256 * K);
        c.size = 256 * K;
        assert_eq!(
            check(c),
            Err(ConfigError::LabelNotBelowSize {
                size: 256 * K,
                label_size: 256 * K
            })
        );
        c.size = 128 * K;
        assert!(matches!(
            check(c),
            Err(ConfigError::LabelNotBelowSize { .. })
        ));
    }

    #[test]
    fn test_data_size_rule() {
        let mut c = dev();
        c.size = G;
        assert_eq!(
            check(c),
            Err(ConfigError::DataSizeNotBlockMultiple {
                data_size: G - 128 * K
            })
        );
        c.size = G + 128 * K + 1;
        assert!(matches!(
            check(c),
            Err(ConfigError::DataSizeNotBlockMultiple { .. })
        ));
    }

    #[test]
    fn test_uuid_rules() {
        let mut c = dev();
        c.uuid = None;
        assert_eq!(check(c), Err(ConfigError::UuidMissing));
        c.uuid = Some(Uuid::nil());
        assert_eq!(check(c), Err(ConfigError::UuidMissing));
        for bad in [
            "75a3cdd76a2f47918d15fe0a920e8e9e",
            "{75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e}",
            "75a3cdd7-6a2f-4791-8d15-fe0a920e8e9",
            "75a3cdd7-6a2f-4791-8d15-fe0a920e8e9g",
            "75a3cdd7x6a2f-4791-8d15-fe0a920e8e9e",
            "",
        ] {
            assert_eq!(parse_uuid(bad), Err(ConfigError::UuidMalformed), "{bad}");
        }
        // Either case in, lowercase out.
        let u = parse_uuid("75A3CDD7-6A2F-4791-8D15-FE0A920E8E9E").unwrap();
        assert_eq!(u, uuid());
        let mut buf = Uuid::encode_buffer();
        assert_eq!(
            u.hyphenated().encode_lower(&mut buf),
            "75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e"
        );
    }

    #[test]
    fn test_readonly_needs_unarmed() {
        let mut c = dev();
        c.readonly = true;
        assert_eq!(check(c), Err(ConfigError::ReadOnlyNeedsUnarmed));
        c.unarmed = true;
        assert!(check(c).is_ok());
    }

    #[test]
    fn test_numa_rules() {
        let mut c = dev();
        c.node = 1;
        assert_eq!(
            check(c),
            Err(ConfigError::NodeOutOfRange { node: 1, nodes: 1 })
        );
        let mut m = machine();
        m.numa_nodes = 2;
        assert!(c.validate(&m).is_ok());
        c.node = 0;
        c.associativity = Some(Associativity::from_cells(&[1, 2]).unwrap());
        assert_eq!(
            c.validate(&m),
            Err(ConfigError::NodeOutOfRange { node: 2, nodes: 2 })
        );
        for bad in [&[][..], &[4][..], &[3, 0, 0, 0, 1][..], &[0; 17][..]] {
            assert!(matches!(
                Associativity::from_cells(bad),
                Err(ConfigError::AssociativityMalformed { .. })
            ));
        }
        let f1 = Associativity::form1(1);
        assert_eq!(f1.cells(), &[4, 0, 0, 0, 1]);
        assert_eq!(f1.node(), 1);
    }

    #[test]
    fn test_numa_forms() {
        // spapr_numa_FORM2_affinity_init: {1, numa_id}.
        assert_eq!(Associativity::form2(1).cells(), &[1, 1]);
        assert_eq!(
            Associativity::for_node(NumaForm::Form2, 0),
            Associativity::form2(0)
        );
        let mut m = machine();
        m.numa_nodes = 2;
        m.numa_form = NumaForm::Form2;
        let mut c = dev();
        c.node = 1;
        let mut spec = Planner::new(m).unwrap().plug(&c).unwrap();
        assert_eq!(spec.associativity.cells(), &[1, 1]);
        // The tree rebuilt for a guest that did not negotiate FORM2.
        spec.set_numa_form(NumaForm::Form1);
        assert_eq!(spec.associativity.cells(), &[4, 0, 0, 0, 1]);
        spec.set_numa_form(NumaForm::Form2);
        assert_eq!(spec.associativity.cells(), &[1, 1]);
        // A VMM's own FORM1 domains are not QEMU's to rewrite.
        let own = Associativity::from_cells(&[4, 1, 1, 0, 1]).unwrap();
        spec.associativity = own;
        spec.set_numa_form(NumaForm::Form2);
        assert_eq!(spec.associativity, own);
    }

    #[test]
    fn test_persistence_failed_count_by_profile() {
        let mut c = dev();
        let spec = Planner::new(machine()).unwrap().plug(&c).unwrap();
        assert_eq!(spec.persistence_failed_count, Some(0));
        c.persistence_failed_count = Some(3);
        let spec = Planner::new(machine()).unwrap().plug(&c).unwrap();
        assert_eq!(spec.persistence_failed_count, Some(3));
        let mut m = machine();
        m.profile = Profile::Qemu;
        assert_eq!(
            c.validate(&m),
            Err(ConfigError::PersistenceFailedCountInQemuProfile)
        );
        c.persistence_failed_count = None;
        let spec = Planner::new(m).unwrap().plug(&c).unwrap();
        assert_eq!(spec.persistence_failed_count, None);
    }

    #[test]
    fn test_flush_modes_and_pmem_override() {
        let mut c = dev();
        assert_eq!(c.flush_mode(), FlushMode::None);
        c.pmem_override = Some(true);
        assert_eq!(check(c), Err(ConfigError::PmemOverrideOnNvdimm));
        // The key itself is refused on a plain nvdimm, whatever its value.
        c.pmem_override = Some(false);
        assert_eq!(check(c), Err(ConfigError::PmemOverrideOnNvdimm));
        c.pmem_override = Some(true);
        c.kind = DeviceKind::SpaprNvdimm;
        assert!(check(c).is_ok());
        assert_eq!(c.flush_mode(), FlushMode::Hcall);
        c.pmem = true;
        assert_eq!(c.flush_mode(), FlushMode::Hcall);
        c.pmem_override = Some(false);
        assert_eq!(c.flush_mode(), FlushMode::PmemBacked);
        c.pmem_override = None;
        assert_eq!(c.flush_mode(), FlushMode::PmemBacked);
        c.pmem = false;
        assert_eq!(c.flush_mode(), FlushMode::Hcall);
    }

    #[test]
    fn test_machine_rules() {
        let mut m = machine();
        m.ram_size = 2 * G + 1;
        assert_eq!(
            m.validate(),
            Err(ConfigError::RamNotAligned { ram: 2 * G + 1 })
        );
        m.ram_size = 0;
        assert_eq!(m.validate(), Err(ConfigError::RamNotAligned { ram: 0 }));
        let mut m = machine();
        m.maxmem = 2 * G;
        assert_eq!(m.validate(), Err(ConfigError::MaxmemEqualsRam { slots: 4 }));
        m.slots = 0;
        assert_eq!(m.validate(), Ok(None));
        m.maxmem = G;
        assert_eq!(
            m.validate(),
            Err(ConfigError::MaxmemBelowRam {
                maxmem: G,
                ram: 2 * G
            })
        );
        let mut m = machine();
        m.maxmem = 8 * G + 128 * M;
        assert_eq!(
            m.validate(),
            Err(ConfigError::DeviceMemoryNotAligned {
                size: 6 * G + 128 * M
            })
        );
        let mut m = machine();
        m.numa_nodes = 0;
        assert_eq!(m.validate(), Err(ConfigError::NoNumaNodes));
        let mut m = machine();
        m.slots = MAX_SLOTS + 1;
        assert_eq!(
            m.validate(),
            Err(ConfigError::Slot(SlotError::TooManySlots {
                slots: MAX_SLOTS + 1,
                max: MAX_SLOTS
            }))
        );
        // RAM near the top: rounding it up to 1 GiB passes 2^64.
        let mut m = machine();
        m.ram_size = 0xFFFF_FFFF_E000_0000;
        m.maxmem = 0xFFFF_FFFF_F000_0000;
        assert_eq!(
            m.validate(),
            Err(ConfigError::DeviceMemoryOverflow {
                base: 0xFFFF_FFFF_E000_0000,
                size: 0x1000_0000
            })
        );
    }

    #[test]
    fn test_planner_places_like_qemu() {
        let mut p = Planner::new(machine()).unwrap();
        let a = p.plug(&dev()).unwrap();
        assert_eq!((a.slot, a.addr, a.drc.raw()), (0, 0x8000_0000, 0x9000_0000));
        let mut c = dev();
        c.size = 512 * M + 128 * K;
        let b = p.plug(&c).unwrap();
        assert_eq!((b.slot, b.addr), (1, 0xC000_0000));
        assert_eq!(b.associativity.cells(), &[4, 0, 0, 0, 0]);
        // The same UUID on two devices is accepted, as in QEMU.
        assert_eq!(b.uuid, a.uuid);
    }

    #[test]
    fn test_planner_slot_rules() {
        let mut p = Planner::new(machine()).unwrap();
        let mut c = dev();
        c.size = 256 * M + 128 * K;
        c.slot = Some(3);
        assert_eq!(p.plug(&c).unwrap().drc.raw(), 0x9000_0003);
        assert_eq!(
            p.plug(&c),
            Err(ConfigError::Slot(SlotError::Busy { slot: 3 }))
        );
        c.slot = Some(4);
        assert_eq!(
            p.plug(&c),
            Err(ConfigError::Slot(SlotError::OutOfRange { slot: 4, max: 3 }))
        );
        c.slot = None;
        for expect in 0..3 {
            assert_eq!(p.plug(&c).unwrap().slot, expect);
        }
        assert_eq!(p.plug(&c), Err(ConfigError::Slot(SlotError::Full)));
    }

    #[test]
    fn test_planner_no_slots_and_no_space() {
        let mut m = machine();
        m.slots = 0;
        let mut p = Planner::new(m).unwrap();
        assert_eq!(p.plug(&dev()), Err(ConfigError::Slot(SlotError::NoSlots)));

        let m = MachineConfig::new(2 * G, 3 * G, 4);
        let mut p = Planner::new(m).unwrap();
        p.plug(&dev()).unwrap();
        let err = p.plug(&dev()).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Layout(LayoutError::NoSpace { .. })
        ));
        // A failed plug does not consume the slot.
        let mut c = dev();
        c.size = 128 * K;
        assert!(p.plug(&c).is_err());
        assert!(matches!(
            p.plug(&dev()),
            Err(ConfigError::Layout(LayoutError::NoSpace { .. }))
        ));
    }

    #[test]
    fn test_planner_explicit_addr() {
        let mut p = Planner::new(machine()).unwrap();
        let mut c = dev();
        c.addr = Some(0x1_0000_0000);
        assert_eq!(p.plug(&c).unwrap().addr, 0x1_0000_0000);
        c.addr = Some(0x1_1000_0000);
        assert!(matches!(
            p.plug(&c),
            Err(ConfigError::Layout(LayoutError::AddrOverlaps { .. }))
        ));
        c.addr = Some(0x8000_1000);
        assert!(matches!(
            p.plug(&c),
            Err(ConfigError::Layout(LayoutError::AddrNotAligned { .. }))
        ));
    }

    #[test]
    fn test_error_messages_name_the_field() {
        use std::string::ToString;
        assert!(ConfigError::LabelSizeMissing
            .to_string()
            .starts_with("label-size:"));
        assert!(ConfigError::UuidMissing.to_string().starts_with("uuid:"));
        assert!(ConfigError::Slot(SlotError::Full)
            .to_string()
            .starts_with("slot:"));
    }
}
