// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! PMEM dynamic-reconfiguration connectors (DRCs).
//!
//! QEMU encodes a DRC index as `(type_shift << 28) | id` with a 28-bit id;
//! PMEM has shift 9, so slot `n` is `0x9000_0000 + n`, named `"PMEM n"` with
//! type string `"PMEM"` (`include/hw/ppc/spapr_drc.h`, `spapr_drc_index`).

use core::fmt;

use thiserror::Error;

mod connector;
pub use connector::{Connector, ConnectorState, DrcEffect, DrcState, WorkArea, WorkAreaError};

/// DRC type shift for PMEM connectors (`SPAPR_DR_CONNECTOR_TYPE_SHIFT_PMEM`).
pub const DRC_TYPE_SHIFT_PMEM: u32 = 9;
/// Bit position of the type field in a DRC index (`DRC_INDEX_TYPE_SHIFT`).
pub const DRC_INDEX_TYPE_SHIFT: u32 = 28;
/// Mask of the id field in a DRC index (`DRC_INDEX_ID_MASK`).
pub const DRC_INDEX_ID_MASK: u32 = 0x0FFF_FFFF;
/// The index of PMEM slot 0.
pub const PMEM_DRC_BASE: u32 = DRC_TYPE_SHIFT_PMEM << DRC_INDEX_TYPE_SHIFT;
/// The `ibm,drc-types` string of a PMEM connector.
pub const PMEM_DRC_TYPE: &str = "PMEM";
/// Prefix of a PMEM connector's `ibm,drc-names` entry.
pub const PMEM_DRC_NAME_PREFIX: &str = "PMEM ";
/// `ibm,drc-power-domains` entry: -1, "live insertion" (QEMU `spapr_dt_drc`).
pub const DRC_POWER_DOMAIN_LIVE_INSERTION: u32 = 0xFFFF_FFFF;

/// The largest number of PMEM slots a machine may have.
///
/// QEMU limits `-m slots=` to 32 under TCG and to half the KVM memslots
/// (256 on ppc64) under KVM (`spapr_machine_init`); a fixed bound keeps the
/// allocator free of heap memory.
pub const MAX_SLOTS: u32 = 256;

/// A PMEM DRC index (`0x9000_0000 + slot`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrcIndex(u32);

impl DrcIndex {
    /// The index of PMEM slot `slot`, or `None` if the slot does not fit in
    /// the 28-bit id field.
    pub const fn pmem(slot: u32) -> Option<Self> {
        if slot > DRC_INDEX_ID_MASK {
            None
        } else {
            Some(DrcIndex(PMEM_DRC_BASE | slot))
        }
    }

    /// Decodes a 32-bit index; `None` unless it is of PMEM type.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        if raw >> DRC_INDEX_TYPE_SHIFT == DRC_TYPE_SHIFT_PMEM {
            Some(DrcIndex(raw))
        } else {
            None
        }
    }

    /// Decodes a guest register. `strict` rejects values with bits above 32
    /// set (the `papr` profile); otherwise only the low 32 bits count, as in
    /// QEMU, which stores the register in a `uint32_t`.
    pub const fn from_reg(reg: u64, strict: bool) -> Option<Self> {
        if strict && reg > u32::MAX as u64 {
            return None;
        }
        Self::from_raw(reg as u32)
    }

    /// The raw 32-bit index.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The slot (DRC id) this index names.
    pub const fn slot(self) -> u32 {
        self.0 & DRC_INDEX_ID_MASK
    }
}

impl fmt::Debug for DrcIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DrcIndex({:#x})", self.0)
    }
}

impl fmt::Display for DrcIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The `ibm,drc-names` entry of a PMEM slot, `"PMEM <slot>"`, written into
/// any formatter (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrcName(pub u32);

impl fmt::Display for DrcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", PMEM_DRC_NAME_PREFIX, self.0)
    }
}

/// A slot-allocation error, named after QEMU's `pc_dimm_pre_plug` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SlotError {
    /// The machine has no slots (`-m slots=` missing or 0).
    #[error("slot: no slots allocated, specify machine slots=")]
    NoSlots,
    /// More slots than the allocator supports.
    #[error("slots: {slots} exceeds the supported maximum of {max}")]
    TooManySlots {
        /// The requested count.
        slots: u32,
        /// [`MAX_SLOTS`].
        max: u32,
    },
    /// An explicit slot outside `0..slots`.
    #[error("slot: invalid slot number {slot}, valid range is [0-{max}]")]
    OutOfRange {
        /// The requested slot.
        slot: u64,
        /// The highest valid slot.
        max: u32,
    },
    /// An explicit slot already in use.
    #[error("slot: slot {slot} is busy")]
    Busy {
        /// The requested slot.
        slot: u32,
    },
    /// Every slot is in use.
    #[error("slot: no free slots available")]
    Full,
}

/// Allocates PMEM slots `0..slots`: an explicit slot, or the lowest free one
/// (QEMU `pc_dimm_get_free_slot`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SlotAllocator {
    slots: u32,
    used: [u64; (MAX_SLOTS / 64) as usize],
}

impl fmt::Debug for SlotAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotAllocator")
            .field("slots", &self.slots)
            .field("used", &self.count_used())
            .finish()
    }
}

impl SlotAllocator {
    /// An allocator over `slots` connectors (0 is allowed: every allocation
    /// then fails with [`SlotError::NoSlots`], as in QEMU).
    pub const fn new(slots: u32) -> Result<Self, SlotError> {
        if slots > MAX_SLOTS {
            return Err(SlotError::TooManySlots {
                slots,
                max: MAX_SLOTS,
            });
        }
        Ok(SlotAllocator {
            slots,
            used: [0; (MAX_SLOTS / 64) as usize],
        })
    }

    /// Number of connectors.
    pub const fn slots(&self) -> u32 {
        self.slots
    }

    /// True if `slot` is allocated.
    pub fn is_used(&self, slot: u32) -> bool {
        slot < self.slots && self.used[(slot / 64) as usize] & (1 << (slot % 64)) != 0
    }

    fn count_used(&self) -> u32 {
        self.used.iter().map(|w| w.count_ones()).sum()
    }

    /// Allocates `requested`, or the lowest free slot when `None`.
    pub fn allocate(&mut self, requested: Option<u64>) -> Result<u32, SlotError> {
        if self.slots == 0 {
            return Err(SlotError::NoSlots);
        }
        let slot = match requested {
            Some(s) => {
                if s >= u64::from(self.slots) {
                    return Err(SlotError::OutOfRange {
                        slot: s,
                        max: self.slots - 1,
                    });
                }
                let s = s as u32;
                if self.is_used(s) {
                    return Err(SlotError::Busy { slot: s });
                }
                s
            }
            None => (0..self.slots)
                .find(|s| !self.is_used(*s))
                .ok_or(SlotError::Full)?,
        };
        self.used[(slot / 64) as usize] |= 1 << (slot % 64);
        Ok(slot)
    }

    /// Frees `slot` (no effect if it was free or out of range).
    pub fn free(&mut self, slot: u32) {
        if slot < self.slots {
            self.used[(slot / 64) as usize] &= !(1 << (slot % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_drc_encode_decode() {
        let d = DrcIndex::pmem(0).unwrap();
        assert_eq!(d.raw(), 0x9000_0000);
        assert_eq!(DrcIndex::pmem(3).unwrap().raw(), 0x9000_0003);
        assert_eq!(d.slot(), 0);
        assert_eq!(
            DrcIndex::pmem(DRC_INDEX_ID_MASK).unwrap().raw(),
            0x9FFF_FFFF
        );
        assert_eq!(DrcIndex::pmem(DRC_INDEX_ID_MASK + 1), None);
        assert_eq!(DrcIndex::from_raw(0x9000_0007).unwrap().slot(), 7);
        // LMB, CPU and PHB indexes are not PMEM.
        assert_eq!(DrcIndex::from_raw(0x8000_0000), None);
        assert_eq!(DrcIndex::from_raw(0x1000_0000), None);
        assert_eq!(DrcIndex::from_raw(0x2000_0001), None);
        assert_eq!(DrcIndex::from_raw(0), None);
        assert_eq!(DrcIndex::from_raw(u32::MAX), None);
    }

    #[test]
    fn test_drc_from_reg_profiles() {
        // QEMU keeps only the low 32 bits.
        let reg = 0xDEAD_BEEF_9000_0001;
        assert_eq!(DrcIndex::from_reg(reg, false).unwrap().slot(), 1);
        assert_eq!(DrcIndex::from_reg(reg, true), None);
        assert_eq!(DrcIndex::from_reg(0x9000_0001, true).unwrap().slot(), 1);
    }

    #[test]
    fn test_drc_names() {
        assert_eq!(alloc_fmt(DrcName(0)), "PMEM 0");
        assert_eq!(alloc_fmt(DrcName(31)), "PMEM 31");
        assert_eq!(alloc_fmt(DrcIndex::pmem(2).unwrap()), "0x90000002");
    }

    fn alloc_fmt(v: impl fmt::Display) -> std::string::String {
        std::format!("{v}")
    }

    #[test]
    fn test_allocator_lowest_free_and_explicit() {
        let mut a = SlotAllocator::new(4).unwrap();
        assert_eq!(a.allocate(Some(2)), Ok(2));
        assert_eq!(a.allocate(None), Ok(0));
        assert_eq!(a.allocate(None), Ok(1));
        assert_eq!(a.allocate(Some(2)), Err(SlotError::Busy { slot: 2 }));
        assert_eq!(
            a.allocate(Some(4)),
            Err(SlotError::OutOfRange { slot: 4, max: 3 })
        );
        assert_eq!(
            a.allocate(Some(u64::MAX)),
            Err(SlotError::OutOfRange {
                slot: u64::MAX,
                max: 3
            })
        );
        assert_eq!(a.allocate(None), Ok(3));
        assert_eq!(a.allocate(None), Err(SlotError::Full));
        a.free(1);
        assert_eq!(a.allocate(None), Ok(1));
        a.free(1000); // out of range: ignored
    }

    #[test]
    fn test_allocator_limits() {
        let mut none = SlotAllocator::new(0).unwrap();
        assert_eq!(none.allocate(None), Err(SlotError::NoSlots));
        assert_eq!(none.allocate(Some(0)), Err(SlotError::NoSlots));
        assert_eq!(
            SlotAllocator::new(MAX_SLOTS + 1),
            Err(SlotError::TooManySlots {
                slots: MAX_SLOTS + 1,
                max: MAX_SLOTS
            })
        );
        let mut full = SlotAllocator::new(MAX_SLOTS).unwrap();
        for i in 0..MAX_SLOTS {
            assert_eq!(full.allocate(None), Ok(i));
        }
        assert_eq!(full.allocate(None), Err(SlotError::Full));
        assert!(full.is_used(MAX_SLOTS - 1));
    }
}
