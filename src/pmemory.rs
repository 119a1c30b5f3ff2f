// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The `ibm,pmemory@…` node of one device, as a list of properties.
//!
//! One source for both places the guest sees the node: the boot tree
//! (`fdt::write_pmemory_node` writes these properties through vm-fdt) and
//! the hot-plug path (`ibm,configure-connector` hands them out one per
//! call). QEMU builds both with `spapr_dt_nvdimm`, so they are the same
//! bytes there too. No allocation: each value fits in [`MAX_VALUE`] bytes.

use core::fmt::{self, Write as _};

use crate::config::{DeviceSpec, FlushMode, MAX_ASSOC_CELLS};
use crate::drc::DrcIndex;
use crate::layout::SCM_BLOCK_SIZE;

/// `device_type` and `compatible` of each device node.
pub const PMEMORY_COMPATIBLE: &str = "ibm,pmemory";
/// `ibm,pmem-application` of each device node.
pub const PMEM_APPLICATION: &str = "operating-system";

/// The longest property value: `ibm,associativity` with every cell.
pub const MAX_VALUE: usize = 4 * MAX_ASSOC_CELLS;

/// The node name, `ibm,pmemory@<drc index in lowercase hex>`, without
/// allocation (21 bytes at most).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodeName {
    buf: [u8; 24],
    len: u8,
}

impl NodeName {
    /// The name of `drc`'s node.
    pub fn new(drc: DrcIndex) -> Self {
        let mut name = NodeName {
            buf: [0; 24],
            len: 0,
        };
        // "ibm,pmemory@" + at most 8 hex digits always fits in 24 bytes.
        let _ = write!(name, "ibm,pmemory@{:x}", drc.raw());
        name
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Write for NodeName {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = usize::from(self.len);
        let end = start + s.len();
        let dst = self.buf.get_mut(start..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One property: its name and its value bytes (big-endian cells, or a
/// NUL-terminated string).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Property {
    /// The property name.
    pub name: &'static str,
    value: [u8; MAX_VALUE],
    len: u8,
}

impl Property {
    fn bytes(name: &'static str, bytes: &[u8]) -> Self {
        let mut value = [0; MAX_VALUE];
        let len = bytes.len().min(MAX_VALUE);
        value[..len].copy_from_slice(&bytes[..len]);
        Property {
            name,
            value,
            len: len as u8,
        }
    }

    fn null(name: &'static str) -> Self {
        Self::bytes(name, &[])
    }

    fn string(name: &'static str, s: &str) -> Self {
        let mut p = Self::bytes(name, s.as_bytes());
        // The terminating NUL is part of a string property.
        let len = usize::from(p.len);
        if len < MAX_VALUE {
            p.value[len] = 0;
            p.len += 1;
        }
        p
    }

    fn u32(name: &'static str, v: u32) -> Self {
        Self::bytes(name, &v.to_be_bytes())
    }

    fn u64(name: &'static str, v: u64) -> Self {
        Self::bytes(name, &v.to_be_bytes())
    }

    fn cells(name: &'static str, cells: &[u32]) -> Self {
        let mut p = Self::bytes(name, &[]);
        for (i, c) in cells.iter().take(MAX_ASSOC_CELLS).enumerate() {
            p.value[4 * i..4 * i + 4].copy_from_slice(&c.to_be_bytes());
        }
        p.len = (4 * cells.len().min(MAX_ASSOC_CELLS)) as u8;
        p
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        &self.value[..usize::from(self.len)]
    }
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:02x?}", self.name, self.value())
    }
}

/// The most properties a node has.
pub const MAX_PROPERTIES: usize = 13;

/// The properties of `spec`'s node, in the order QEMU's blob lists them
/// (libfdt puts each new property first, so this is the reverse of
/// `spapr_dt_nvdimm`'s calls), which is also the order
/// `ibm,configure-connector` hands them out.
#[derive(Clone, Copy)]
pub struct PmemoryNode {
    name: NodeName,
    props: [Option<Property>; MAX_PROPERTIES],
    count: u8,
}

impl fmt::Debug for PmemoryNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PmemoryNode")
            .field("name", &self.name)
            .field("properties", &self.properties().collect::<Props<'_>>())
            .finish()
    }
}

// A Debug list of properties without allocating.
struct Props<'a>([Option<&'a Property>; MAX_PROPERTIES]);

impl<'a> FromIterator<&'a Property> for Props<'a> {
    fn from_iter<I: IntoIterator<Item = &'a Property>>(iter: I) -> Self {
        let mut p = [None; MAX_PROPERTIES];
        for (slot, prop) in p.iter_mut().zip(iter) {
            *slot = Some(prop);
        }
        Props(p)
    }
}

impl fmt::Debug for Props<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().flatten()).finish()
    }
}

impl PmemoryNode {
    /// The node QEMU's `spapr_dt_nvdimm` builds for `spec`.
    pub fn new(spec: &DeviceSpec) -> Self {
        let mut node = PmemoryNode {
            name: NodeName::new(spec.drc),
            props: [None; MAX_PROPERTIES],
            count: 0,
        };
        if spec.flush == FlushMode::Hcall {
            node.push(Property::null("ibm,hcall-flush-required"));
        }
        node.push(Property::null("ibm,cache-flush-required"));
        node.push(Property::string("ibm,pmem-application", PMEM_APPLICATION));
        // label_size <= u32::MAX is a configuration rule.
        node.push(Property::u32(
            "ibm,metadata-size",
            spec.layout.label_size() as u32,
        ));
        node.push(Property::u64("ibm,number-of-blocks", spec.blocks()));
        node.push(Property::u64("ibm,block-size", SCM_BLOCK_SIZE));
        node.push(Property::u32("ibm,my-drc-index", spec.drc.raw()));
        let mut uuid = uuid::Uuid::encode_buffer();
        node.push(Property::string(
            "ibm,unit-guid",
            spec.uuid.hyphenated().encode_lower(&mut uuid),
        ));
        // PowerVM's count of persistence losses, a 64-bit value that Linux
        // (papr_scm_probe, since 5.14) reads with of_property_read_u64;
        // QEMU never writes it, so the qemu profile leaves it out.
        if let Some(n) = spec.persistence_failed_count {
            node.push(Property::u64("ibm,persistence-failed-count", n));
        }
        node.push(Property::cells(
            "ibm,associativity",
            spec.associativity.cells(),
        ));
        node.push(Property::string("device_type", PMEMORY_COMPATIBLE));
        node.push(Property::string("compatible", PMEMORY_COMPATIBLE));
        node.push(Property::u32("reg", spec.drc.raw()));
        node
    }

    fn push(&mut self, p: Property) {
        if let Some(slot) = self.props.get_mut(usize::from(self.count)) {
            *slot = Some(p);
            self.count += 1;
        }
    }

    /// The node name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The properties, in blob order.
    pub fn properties(&self) -> impl Iterator<Item = &Property> {
        self.props.iter().flatten()
    }

    /// Property `i`, in blob order.
    pub fn property(&self, i: usize) -> Option<&Property> {
        self.props.get(i).and_then(Option::as_ref)
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Always false: every node has properties.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_node_properties_in_blob_order() {
        let node = PmemoryNode::new(&crate::config::example_spec());
        assert_eq!(node.name(), "ibm,pmemory@90000000");
        let names: std::vec::Vec<_> = node.properties().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "ibm,cache-flush-required",
                "ibm,pmem-application",
                "ibm,metadata-size",
                "ibm,number-of-blocks",
                "ibm,block-size",
                "ibm,my-drc-index",
                "ibm,unit-guid",
                "ibm,persistence-failed-count",
                "ibm,associativity",
                "device_type",
                "compatible",
                "reg",
            ]
        );
        let p = |n| node.properties().find(|p| p.name == n).unwrap().value();
        assert_eq!(p("ibm,pmem-application"), b"operating-system\0");
        assert_eq!(p("ibm,number-of-blocks"), 4u64.to_be_bytes());
        assert_eq!(
            p("ibm,associativity"),
            [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(p("ibm,cache-flush-required"), b"");
        assert_eq!(
            p("ibm,unit-guid"),
            b"75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\0"
        );
        assert_eq!(
            NodeName::new(DrcIndex::pmem(0x0FFF_FFFF).unwrap()).as_str(),
            "ibm,pmemory@9fffffff"
        );
    }
}
