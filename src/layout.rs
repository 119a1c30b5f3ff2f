// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! SCM block layout of a backing store and placement in guest memory.
//!
//! QEMU maps the first `backing - label` bytes of the memory backend as the
//! guest-visible region and keeps the label in the **last** `label_size`
//! bytes (`hw/mem/nvdimm.c`, `nvdimm_prepare_memory_region`), so a QEMU
//! NVDIMM backing file can be used here unchanged. The region is managed in
//! 256 MiB SCM blocks (`SPAPR_MINIMUM_SCM_BLOCK_SIZE`).

use thiserror::Error;

/// Size of one SCM block: 256 MiB (`SPAPR_MINIMUM_SCM_BLOCK_SIZE`).
pub const SCM_BLOCK_SIZE: u64 = 0x1000_0000;
/// Smallest label area QEMU accepts: 128 KiB (`MIN_NAMESPACE_LABEL_SIZE`).
pub const MIN_LABEL_SIZE: u64 = 128 * 1024;
/// Largest label area: `ibm,metadata-size` is one 32-bit cell.
pub const MAX_LABEL_SIZE: u64 = u32::MAX as u64;
/// Alignment of the device-memory region base (`SPAPR_DEVICE_MEM_ALIGN`).
pub const DEVICE_MEM_ALIGN: u64 = 1 << 30;

/// A layout error: which rule a size or address breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LayoutError {
    /// The label does not leave room for data (QEMU: "memdev too small to
    /// contain label and aligned PMEM").
    #[error(
        "size: backing size {backing:#x} is too small to contain label-size {label:#x} and data"
    )]
    TooSmall {
        /// Backing size.
        backing: u64,
        /// Label size.
        label: u64,
    },
    /// The data size is not a whole number of 256 MiB blocks (QEMU
    /// `spapr_nvdimm_validate`).
    #[error("size: data size {data:#x} (size minus label-size) is not a multiple of 256 MiB")]
    NotBlockMultiple {
        /// Data size.
        data: u64,
    },
    /// The device does not fit in the device-memory region.
    #[error(
        "size: device of {size:#x} bytes does not fit in device memory [{base:#x}, +{region:#x})"
    )]
    NoSpace {
        /// Data size of the device.
        size: u64,
        /// Region base.
        base: u64,
        /// Region size.
        region: u64,
    },
    /// An explicit address is not 256 MiB aligned (stricter than QEMU).
    #[error("addr: {addr:#x} is not aligned to 256 MiB")]
    AddrNotAligned {
        /// The address.
        addr: u64,
    },
    /// An explicit address range leaves the device-memory region.
    #[error("addr: [{addr:#x}, +{size:#x}) is outside device memory [{base:#x}, +{region:#x})")]
    AddrOutside {
        /// The address.
        addr: u64,
        /// Data size of the device.
        size: u64,
        /// Region base.
        base: u64,
        /// Region size.
        region: u64,
    },
    /// An explicit address range overlaps a device already placed.
    #[error("addr: [{addr:#x}, +{size:#x}) overlaps a device at {other:#x}")]
    AddrOverlaps {
        /// The address.
        addr: u64,
        /// Data size of the device.
        size: u64,
        /// Base of the overlapped device.
        other: u64,
    },
}

/// How a backing store splits into data blocks and the label area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackingLayout {
    backing_size: u64,
    label_size: u64,
}

impl BackingLayout {
    /// Splits a backing of `backing_size` bytes whose last `label_size` bytes
    /// are the label. The rest must be a positive multiple of 256 MiB.
    pub const fn new(backing_size: u64, label_size: u64) -> Result<Self, LayoutError> {
        if label_size >= backing_size {
            return Err(LayoutError::TooSmall {
                backing: backing_size,
                label: label_size,
            });
        }
        let data = backing_size - label_size;
        if data % SCM_BLOCK_SIZE != 0 {
            return Err(LayoutError::NotBlockMultiple { data });
        }
        Ok(BackingLayout {
            backing_size,
            label_size,
        })
    }

    /// Whole backing size, label included.
    pub const fn backing_size(&self) -> u64 {
        self.backing_size
    }

    /// Label (metadata) area size.
    pub const fn label_size(&self) -> u64 {
        self.label_size
    }

    /// Guest-visible data size: backing minus label.
    pub const fn data_size(&self) -> u64 {
        self.backing_size - self.label_size
    }

    /// Offset of the label area in the backing: its last `label_size` bytes.
    pub const fn label_offset(&self) -> u64 {
        self.data_size()
    }

    /// Number of 256 MiB SCM blocks.
    pub const fn blocks(&self) -> u64 {
        self.data_size() / SCM_BLOCK_SIZE
    }
}

/// The guest-physical window that holds hot-pluggable memory devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    /// First address: RAM size rounded up to 1 GiB.
    pub base: u64,
    /// Size: `maxmem - ram`.
    pub size: u64,
}

impl DeviceMemory {
    /// The region for a machine of `ram` bytes and `maxmem` bytes of maximum
    /// memory (QEMU `spapr_machine_init`); `None` when `maxmem <= ram` or the
    /// region would pass the top of the address space.
    pub const fn new(ram: u64, maxmem: u64) -> Option<Self> {
        if maxmem <= ram {
            return None;
        }
        let base = match align_up(ram, DEVICE_MEM_ALIGN) {
            Some(b) => b,
            None => return None,
        };
        let size = maxmem - ram;
        if base.checked_add(size).is_none() {
            return None;
        }
        Some(DeviceMemory { base, size })
    }

    /// One past the last address.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Chooses the base of a device of `size` data bytes, given the ranges
    /// `(base, size)` of the devices placed so far.
    ///
    /// With `explicit`, the address must be 256 MiB aligned, inside the
    /// region and free. Otherwise first fit from the region base, bumping
    /// past each overlapping device to the next 256 MiB boundary (QEMU
    /// `memory_device_get_free_addr`, with 256 MiB instead of the backend
    /// page size as alignment).
    pub fn place(
        &self,
        size: u64,
        explicit: Option<u64>,
        placed: &[(u64, u64)],
    ) -> Result<u64, LayoutError> {
        let no_space = LayoutError::NoSpace {
            size,
            base: self.base,
            region: self.size,
        };
        if let Some(addr) = explicit {
            if addr % SCM_BLOCK_SIZE != 0 {
                return Err(LayoutError::AddrNotAligned { addr });
            }
            let inside =
                addr >= self.base && addr.checked_add(size).is_some_and(|end| end <= self.end());
            if !inside {
                return Err(LayoutError::AddrOutside {
                    addr,
                    size,
                    base: self.base,
                    region: self.size,
                });
            }
            if let Some(&(other, _)) = placed.iter().find(|r| overlaps(addr, size, **r)) {
                return Err(LayoutError::AddrOverlaps { addr, size, other });
            }
            return Ok(addr);
        }
        if size > self.size {
            return Err(no_space);
        }
        let mut addr = align_up(self.base, SCM_BLOCK_SIZE).ok_or(no_space)?;
        // Each pass moves `addr` strictly up past one device, so this ends
        // after at most `placed.len()` moves.
        while let Some(&(b, s)) = placed.iter().find(|r| overlaps(addr, size, **r)) {
            addr = b
                .checked_add(s)
                .and_then(|e| align_up(e, SCM_BLOCK_SIZE))
                .ok_or(no_space)?;
        }
        match addr.checked_add(size) {
            Some(end) if end <= self.end() => Ok(addr),
            _ => Err(no_space),
        }
    }
}

fn overlaps(addr: u64, size: u64, (b, s): (u64, u64)) -> bool {
    // Half-open ranges; saturating ends cannot wrap.
    addr < b.saturating_add(s) && b < addr.saturating_add(size)
}

/// `value` rounded up to a multiple of `align` (a power of two), or `None`
/// on overflow.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;
    const M: u64 = 1024 * K;
    const G: u64 = 1024 * M;
    const T: u64 = 1024 * G;

    #[test]
    fn test_exactly_one_block() {
        let l = BackingLayout::new(256 * M + 128 * K, 128 * K).unwrap();
        assert_eq!(l.blocks(), 1);
        assert_eq!(l.data_size(), SCM_BLOCK_SIZE);
        assert_eq!(l.label_offset(), SCM_BLOCK_SIZE);
        assert_eq!(l.backing_size(), 256 * M + 128 * K);
    }

    #[test]
    fn test_one_byte_short_and_over() {
        assert_eq!(
            BackingLayout::new(256 * M + 128 * K - 1, 128 * K),
            Err(LayoutError::NotBlockMultiple { data: 256 * M - 1 })
        );
        assert_eq!(
            BackingLayout::new(256 * M + 128 * K + 1, 128 * K),
            Err(LayoutError::NotBlockMultiple { data: 256 * M + 1 })
        );
    }

    #[test]
    fn test_label_fills_backing() {
        assert_eq!(
            BackingLayout::new(128 * K, 128 * K),
            Err(LayoutError::TooSmall {
                backing: 128 * K,
                label: 128 * K
            })
        );
        assert_eq!(
            BackingLayout::new(0, 128 * K),
            Err(LayoutError::TooSmall {
                backing: 0,
                label: 128 * K
            })
        );
    }

    #[test]
    fn test_odd_label_sizes() {
        // A label of 128 KiB - 1 is a layout question only; the minimum is a
        // configuration rule (config.rs).
        let l = BackingLayout::new(256 * M + 128 * K - 1, 128 * K - 1).unwrap();
        assert_eq!(l.blocks(), 1);
        assert_eq!(l.label_size(), 128 * K - 1);
    }

    #[test]
    fn test_64_tib_device() {
        let l = BackingLayout::new(64 * T + 128 * K, 128 * K).unwrap();
        assert_eq!(l.blocks(), 262_144);
        assert_eq!(l.data_size(), 64 * T);
    }

    #[test]
    fn test_huge_backing_no_overflow() {
        let l = BackingLayout::new(u64::MAX, u64::MAX - SCM_BLOCK_SIZE).unwrap();
        assert_eq!(l.blocks(), 1);
        assert!(BackingLayout::new(u64::MAX, 0).is_err());
    }

    #[test]
    fn test_device_memory_region() {
        let r = DeviceMemory::new(2 * G, 8 * G).unwrap();
        assert_eq!(r.base, 0x8000_0000);
        assert_eq!(r.size, 6 * G);
        // RAM rounded up to 1 GiB.
        let r = DeviceMemory::new(2 * G + 256 * M, 4 * G).unwrap();
        assert_eq!(r.base, 3 * G);
        assert_eq!(DeviceMemory::new(2 * G, 2 * G), None);
        assert_eq!(DeviceMemory::new(4 * G, 2 * G), None);
        assert_eq!(DeviceMemory::new(u64::MAX - 1, u64::MAX), None);
    }

    #[test]
    fn test_first_fit_matches_qemu() {
        // RAM 2 GiB, devices of 1 GiB then 512 MiB: QEMU places them at
        // 0x8000_0000 and 0xC000_0000.
        let r = DeviceMemory::new(2 * G, 8 * G).unwrap();
        let a = r.place(G, None, &[]).unwrap();
        assert_eq!(a, 0x8000_0000);
        let b = r.place(512 * M, None, &[(a, G)]).unwrap();
        assert_eq!(b, 0xC000_0000);
        // A hole left by an explicit placement is filled first.
        let c = r.place(256 * M, None, &[(0x9000_0000, G)]).unwrap();
        assert_eq!(c, 0x8000_0000);
        let d = r
            .place(512 * M, None, &[(0x9000_0000, G), (0x8000_0000, 256 * M)])
            .unwrap();
        assert_eq!(d, 0xD000_0000);
    }

    #[test]
    fn test_place_fills_region_exactly() {
        let r = DeviceMemory::new(G, 2 * G).unwrap();
        assert_eq!(r.place(G, None, &[]), Ok(G));
        assert!(matches!(
            r.place(G, None, &[(G, G)]),
            Err(LayoutError::NoSpace { .. })
        ));
        assert!(matches!(
            r.place(G + 256 * M, None, &[]),
            Err(LayoutError::NoSpace { .. })
        ));
    }

    #[test]
    fn test_explicit_address_rules() {
        let r = DeviceMemory::new(2 * G, 8 * G).unwrap();
        assert_eq!(r.place(G, Some(0x1_0000_0000), &[]), Ok(0x1_0000_0000));
        assert_eq!(
            r.place(G, Some(0x8000_1000), &[]),
            Err(LayoutError::AddrNotAligned { addr: 0x8000_1000 })
        );
        assert!(matches!(
            r.place(G, Some(0x7000_0000), &[]),
            Err(LayoutError::AddrOutside { .. })
        ));
        assert!(matches!(
            r.place(G, Some(8 * G - 256 * M), &[]),
            Err(LayoutError::AddrOutside { .. })
        ));
        assert!(matches!(
            r.place(G, Some(0xFFFF_FFFF_F000_0000), &[]),
            Err(LayoutError::AddrOutside { .. })
        ));
        assert_eq!(
            r.place(G, Some(0x9000_0000), &[(0x8000_0000, G)]),
            Err(LayoutError::AddrOverlaps {
                addr: 0x9000_0000,
                size: G,
                other: 0x8000_0000
            })
        );
    }

    #[test]
    fn test_align_up() {
        assert_eq!(align_up(0, SCM_BLOCK_SIZE), Some(0));
        assert_eq!(align_up(1, SCM_BLOCK_SIZE), Some(SCM_BLOCK_SIZE));
        assert_eq!(align_up(u64::MAX, SCM_BLOCK_SIZE), None);
    }
}
