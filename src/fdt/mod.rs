// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Device-tree nodes for SCM devices, written through [`vm_fdt`].
//!
//! The output is byte-identical to QEMU's for the persistent-memory subtree
//! (`spapr_dt_persistent_memory`, `spapr_dt_nvdimm`): the same node names,
//! the same properties in the order QEMU's blob lists them (libfdt inserts
//! each new property first, so the blob order is the reverse of QEMU's
//! creation order), the same bytes. Children come in ascending slot order;
//! QEMU's order follows its object tree and carries no meaning.
//!
//! # Example: composing the nodes into a VMM's own tree
//!
//! ```
//! use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
//! use papr_scm::fdt::{write_persistent_memory, write_pmem_drc_properties, FdtError};
//! use papr_scm::vm_fdt::FdtWriter;
//!
//! const K: u64 = 1024;
//! const G: u64 = 1024 * 1024 * K;
//! let mut planner = Planner::new(MachineConfig::new(2 * G, 8 * G, 4)).unwrap();
//! let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
//! let spec = planner.plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid)).unwrap();
//!
//! let mut fdt = FdtWriter::new()?;
//! let root = fdt.begin_node("")?;
//! fdt.property_u32("#address-cells", 2)?;
//! fdt.property_u32("#size-cells", 2)?;
//! fdt.property_string("compatible", "qemu,pseries")?;
//! // The root's PMEM connectors: properties come before any child node.
//! write_pmem_drc_properties(&mut fdt, 4)?;
//! // The VMM's own nodes, then the SCM subtree (or the other way round).
//! let cpus = fdt.begin_node("cpus")?;
//! fdt.end_node(cpus)?;
//! write_persistent_memory(&mut fdt, &[spec])?;
//! fdt.end_node(root)?;
//! let blob = fdt.finish()?;
//!
//! let tree = fdt::Fdt::new(&blob).unwrap();
//! let node = tree.find_node("/ibm,persistent-memory/ibm,pmemory@90000000").unwrap();
//! assert_eq!(node.property("ibm,my-drc-index").unwrap().as_usize(), Some(0x9000_0000));
//! # Ok::<(), FdtError>(())
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

pub mod check;
pub use check::{check_blob, BlobError};

use thiserror::Error;
use vm_fdt::FdtWriter;

use crate::config::{DeviceSpec, MachineConfig};
use crate::drc::{DrcIndex, DrcName, DRC_POWER_DOMAIN_LIVE_INSERTION, PMEM_DRC_TYPE};
use crate::pmemory::{NodeName, PmemoryNode};

/// Name of the parent node (QEMU ≥ 6.1; Linux finds it by `device_type`).
pub const PERSISTENT_MEMORY_NODE: &str = "ibm,persistent-memory";
/// `device_type` of the parent node.
pub const PERSISTENT_MEMORY_TYPE: &str = "ibm,persistent-memory";
pub use crate::pmemory::{PMEMORY_COMPATIBLE, PMEM_APPLICATION};

/// A device-tree error.
#[derive(Debug, Error)]
pub enum FdtError {
    /// vm-fdt refused a node or property.
    // A plain field: vm_fdt::Error implements no Error trait without std,
    // so #[from]/#[source] would not build in no_std.
    #[error("fdt: {0}")]
    Writer(vm_fdt::Error),
    /// Two devices claim the same slot.
    #[error("fdt: slot {0} appears twice")]
    DuplicateSlot(u32),
}

impl From<vm_fdt::Error> for FdtError {
    fn from(e: vm_fdt::Error) -> Self {
        FdtError::Writer(e)
    }
}

/// `ibm,pmemory@<drc index in lowercase hex>`.
pub fn pmemory_node_name(drc: DrcIndex) -> String {
    String::from(NodeName::new(drc).as_str())
}

/// Writes one `ibm,pmemory@…` node: the child of `/ibm,persistent-memory`
/// for `spec`, as QEMU's `spapr_dt_nvdimm` builds it. Use it alone for the
/// fragment a VMM streams through `ibm,configure-connector` on hotplug.
pub fn write_pmemory_node(fdt: &mut FdtWriter, spec: &DeviceSpec) -> Result<(), FdtError> {
    let node = PmemoryNode::new(spec);
    let n = fdt.begin_node(node.name())?;
    for p in node.properties() {
        fdt.property(p.name, p.value())?;
    }
    fdt.end_node(n)?;
    Ok(())
}

/// Writes `/ibm,persistent-memory` with one child per device, in ascending
/// slot order, into the node currently open in `fdt` (normally the root).
/// The parent is written even with no devices, so that hotplug works (Linux
/// `pseries_pmem_init` only looks at boot).
pub fn write_persistent_memory(
    fdt: &mut FdtWriter,
    devices: &[DeviceSpec],
) -> Result<(), FdtError> {
    let mut sorted: Vec<&DeviceSpec> = devices.iter().collect();
    sorted.sort_by_key(|d| d.slot);
    if let Some(w) = sorted.windows(2).find(|w| w[0].slot == w[1].slot) {
        return Err(FdtError::DuplicateSlot(w[0].slot));
    }
    let node = fdt.begin_node(PERSISTENT_MEMORY_NODE)?;
    fdt.property_string("device_type", PERSISTENT_MEMORY_TYPE)?;
    fdt.property_u32("#size-cells", 0)?;
    fdt.property_u32("#address-cells", 1)?;
    for d in sorted {
        write_pmemory_node(fdt, d)?;
    }
    fdt.end_node(node)?;
    Ok(())
}

/// One PMEM connector's entries in the root's `ibm,drc-*` arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmemDrcEntry {
    /// `ibm,drc-indexes` entry.
    pub index: DrcIndex,
    /// `ibm,drc-power-domains` entry: -1, live insertion.
    pub power_domain: u32,
    /// `ibm,drc-names` entry: `"PMEM <slot>"`.
    pub name: DrcName,
    /// `ibm,drc-types` entry: `"PMEM"`.
    pub drc_type: &'static str,
}

/// The entries of every PMEM slot `0..slots`, occupied or not, for VMMs
/// that merge them with their own LMB, PHB and CPU connectors.
pub fn pmem_drc_entries(slots: u32) -> impl Iterator<Item = PmemDrcEntry> {
    (0..slots).filter_map(|slot| {
        Some(PmemDrcEntry {
            index: DrcIndex::pmem(slot)?,
            power_domain: DRC_POWER_DOMAIN_LIVE_INSERTION,
            name: DrcName(slot),
            drc_type: PMEM_DRC_TYPE,
        })
    })
}

/// Writes the four count-prefixed `ibm,drc-*` properties (QEMU
/// `spapr_dt_drc`, in its order) when PMEM is the only connector type.
/// Call it while the root is open and before its first child node: vm-fdt
/// (like the FDT format) wants a node's properties before its children.
pub fn write_pmem_drc_properties(fdt: &mut FdtWriter, slots: u32) -> Result<(), FdtError> {
    let entries: Vec<PmemDrcEntry> = pmem_drc_entries(slots).collect();
    let count = entries.len() as u32;
    let cells = |f: &dyn Fn(&PmemDrcEntry) -> u32| {
        core::iter::once(count)
            .chain(entries.iter().map(f))
            .collect::<Vec<u32>>()
    };
    let strings = |f: &dyn Fn(&PmemDrcEntry, &mut Vec<u8>)| {
        let mut out = count.to_be_bytes().to_vec();
        for e in &entries {
            f(e, &mut out);
            out.push(0);
        }
        out
    };
    fdt.property_array_u32("ibm,drc-indexes", &cells(&|e| e.index.raw()))?;
    fdt.property_array_u32("ibm,drc-power-domains", &cells(&|e| e.power_domain))?;
    fdt.property(
        "ibm,drc-names",
        &strings(&|e, out| {
            let mut s = String::new();
            let _ = write!(s, "{}", e.name);
            out.extend_from_slice(s.as_bytes());
        }),
    )?;
    fdt.property(
        "ibm,drc-types",
        &strings(&|e, out| out.extend_from_slice(e.drc_type.as_bytes())),
    )?;
    Ok(())
}

/// A complete blob for a machine: a root with `#address-cells = <2>`,
/// `#size-cells = <2>`, the PMEM connectors and the persistent-memory
/// subtree. What `papr-scm dtb` writes.
pub fn machine_fdt(machine: &MachineConfig, devices: &[DeviceSpec]) -> Result<Vec<u8>, FdtError> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    write_pmem_drc_properties(&mut fdt, machine.slots)?;
    write_persistent_memory(&mut fdt, devices)?;
    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_uuid, DeviceKind, NvdimmConfig, Planner};

    const K: u64 = 1024;
    const G: u64 = 1024 * 1024 * K;

    #[test]
    fn test_node_name_and_drc_entries() {
        assert_eq!(
            pmemory_node_name(DrcIndex::pmem(0).unwrap()),
            "ibm,pmemory@90000000"
        );
        assert_eq!(
            pmemory_node_name(DrcIndex::pmem(10).unwrap()),
            "ibm,pmemory@9000000a"
        );
        let e: Vec<_> = pmem_drc_entries(3).collect();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].index.raw(), 0x9000_0002);
        assert_eq!(e[2].power_domain, 0xFFFF_FFFF);
        assert_eq!(e[2].drc_type, "PMEM");
    }

    #[test]
    fn test_blob_properties() {
        let m = MachineConfig::new(2 * G, 8 * G, 2);
        let mut p = Planner::new(m).unwrap();
        let uuid = parse_uuid("75A3CDD7-6A2F-4791-8D15-FE0A920E8E9E").unwrap();
        let mut c = NvdimmConfig::new(G + 128 * K, 128 * K, uuid);
        c.kind = DeviceKind::SpaprNvdimm;
        c.slot = Some(1);
        let spec = p.plug(&c).unwrap();
        let blob = machine_fdt(&m, &[spec]).unwrap();
        let t = ::fdt::Fdt::new(&blob).unwrap();
        let n = t
            .find_node("/ibm,persistent-memory/ibm,pmemory@90000001")
            .unwrap();
        let names: Vec<_> = n.properties().map(|p| p.name).collect();
        assert_eq!(names[0], "ibm,hcall-flush-required");
        // QEMU's 12 and, in the papr profile, PowerVM's failure count.
        assert_eq!(names.len(), 13);
        assert_eq!(names[8], "ibm,persistence-failed-count");
        assert_eq!(n.property("ibm,hcall-flush-required").unwrap().value, b"");
        assert_eq!(
            n.property("ibm,unit-guid").unwrap().value,
            b"75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\0"
        );
        assert_eq!(
            n.property("ibm,number-of-blocks").unwrap().value,
            &[0, 0, 0, 0, 0, 0, 0, 4]
        );
        let root = t.find_node("/").unwrap();
        assert_eq!(
            root.property("ibm,drc-names").unwrap().value,
            b"\0\0\0\x02PMEM 0\0PMEM 1\0"
        );
        assert_eq!(
            root.property("ibm,drc-types").unwrap().value,
            b"\0\0\0\x02PMEM\0PMEM\0"
        );
    }

    /// A node plugged after CAS with FORM2 carries `<1 node>`: what QEMU
    /// wrote for a hot-plugged NVDIMM of a Linux 6.1 guest (`<1 0>`).
    #[test]
    fn test_form2_node_after_cas() {
        let mut m = MachineConfig::new(2 * G, 8 * G, 2);
        m.numa_form = crate::config::NumaForm::Form2;
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let spec = Planner::new(m)
            .unwrap()
            .plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))
            .unwrap();
        let mut fdt = FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        write_pmemory_node(&mut fdt, &spec).unwrap();
        fdt.end_node(root).unwrap();
        let blob = fdt.finish().unwrap();
        let t = ::fdt::Fdt::new(&blob).unwrap();
        let n = t.find_node("/ibm,pmemory@90000000").unwrap();
        assert_eq!(
            n.property("ibm,associativity").unwrap().value,
            &[0, 0, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn test_duplicate_slot_is_an_error() {
        let m = MachineConfig::new(2 * G, 8 * G, 2);
        let mut p = Planner::new(m).unwrap();
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let spec = p
            .plug(&NvdimmConfig::new(G + 128 * K, 128 * K, uuid))
            .unwrap();
        assert!(matches!(
            machine_fdt(&m, &[spec, spec]),
            Err(FdtError::DuplicateSlot(0))
        ));
    }
}
