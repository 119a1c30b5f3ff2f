// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The machine's index of its devices, so that the two hcalls that span
//! devices cost the same with 1 device as with 256:
//!
//! * H_SCM_QUERY_LOGICAL_MEM_BINDING finds the device by a binary search
//!   over the devices' guest-address ranges (they never move once plugged)
//!   and locks only that device (eight steps; none with one device);
//! * H_SCM_UNBIND_ALL over the partition visits only the slots that may
//!   hold bindings (a bitmap set under the device's lock when it binds).
//!
//! The ranges are rebuilt when the slot table's generation changes (a device
//! inserted or removed; [`SlotTable::generation`]). Readers and the rare
//! rebuild meet through a sequence counter over atomics: no lock, no heap,
//! `no_std`, and the index is correct whenever the table is.

use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::SlotTable;
use crate::drc::MAX_SLOTS;

const N: usize = MAX_SLOTS as usize;
const WORDS: usize = N / 64;

/// Devices by address and the slots that may hold bindings.
pub(crate) struct Index {
    /// Even when the ranges are stable, odd while a rebuild writes them.
    seq: AtomicU64,
    /// Serialises rebuilds.
    building: AtomicBool,
    /// 1 + the table generation the ranges describe; 0: never built.
    built_for: AtomicU64,
    /// Blocks of every device: QEMU's H_SCM_UNBIND_ALL answer over the
    /// partition (it keeps no bind state and counts them all).
    total_blocks: AtomicU64,
    /// Devices in `base`/`end`/`slot`, at most `N`.
    len: AtomicU32,
    base: [AtomicU64; N],
    end: [AtomicU64; N],
    slot: [AtomicU32; N],
    /// Slots that may hold bindings or a bind in progress (a set bit may be
    /// stale-true, never stale-false: it is set under the device's lock
    /// when it binds).
    bound: [AtomicU64; WORDS],
}

impl Index {
    pub(crate) const fn new() -> Self {
        Index {
            seq: AtomicU64::new(0),
            building: AtomicBool::new(false),
            built_for: AtomicU64::new(0),
            total_blocks: AtomicU64::new(0),
            len: AtomicU32::new(0),
            base: [const { AtomicU64::new(u64::MAX) }; N],
            end: [const { AtomicU64::new(0) }; N],
            slot: [const { AtomicU32::new(0) }; N],
            bound: [const { AtomicU64::new(0) }; WORDS],
        }
    }

    /// Marks `slot` as holding bindings; call it with the device locked.
    #[inline]
    pub(crate) fn mark_bound(&self, slot: u32) {
        if let Some(w) = self.bound.get(slot as usize / 64) {
            w.fetch_or(1 << (slot % 64), Ordering::Release);
        }
    }

    /// Marks `slot` as holding none; call it with the device locked.
    #[inline]
    pub(crate) fn mark_unbound(&self, slot: u32) {
        if let Some(w) = self.bound.get(slot as usize / 64) {
            w.fetch_and(!(1 << (slot % 64)), Ordering::Release);
        }
    }

    /// The slots that may hold bindings, lowest first.
    pub(crate) fn bound_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.bound.iter().enumerate().flat_map(|(i, w)| {
            let mut bits = w.load(Ordering::Acquire);
            core::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some(i as u32 * 64 + b)
            })
        })
    }

    /// Makes the index describe `table` if its generation moved on.
    #[inline]
    pub(crate) fn refresh<S: SlotTable>(&self, table: &S) {
        if !self.is_fresh(table) {
            self.rebuild(table, table.generation().wrapping_add(1));
        }
    }

    /// True if the index describes `table` as it is.
    #[inline(always)]
    pub(crate) fn is_fresh<S: SlotTable>(&self, table: &S) -> bool {
        self.built_for.load(Ordering::Acquire) == table.generation().wrapping_add(1)
    }

    /// Rebuilds from every slot (rare: the first spanning call, and after a
    /// plug or unplug) unless it already describes generation `want`.
    #[cold]
    pub(crate) fn rebuild<S: SlotTable>(&self, table: &S, want: u64) {
        self.rebuild_if(table, want, false);
    }

    /// Rebuilds from every slot even if the index says it describes
    /// generation `want`: a table without a generation counter
    /// ([`SlotTable::generation`] is 0 for ever) changed.
    #[cold]
    pub(crate) fn rebuild_forced<S: SlotTable>(&self, table: &S, want: u64) {
        self.rebuild_if(table, want, true);
    }

    fn rebuild_if<S: SlotTable>(&self, table: &S, want: u64, force: bool) {
        while self
            .building
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        if force || self.built_for.load(Ordering::Acquire) != want {
            let mut ranges = [(0u64, 0u64, 0u32); N];
            let mut n = 0;
            let mut bound = [0u64; WORDS];
            let mut total = 0u64;
            for s in 0..table.slot_count().min(MAX_SLOTS) {
                let r = table.with_slot(s, |d| {
                    let spec = d.spec();
                    total = total.saturating_add(spec.blocks());
                    (spec.addr, spec.addr + spec.data_size(), d.has_bind_state())
                });
                if let Some((base, end, has)) = r {
                    ranges[n] = (base, end, s);
                    n += 1;
                    if has {
                        bound[s as usize / 64] |= 1 << (s % 64);
                    }
                }
            }
            ranges[..n].sort_unstable_by_key(|r| r.0);
            // The seqlock writer: odd, then the data, then even.
            self.seq.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::Release);
            for (i, &(b, e, s)) in ranges[..n].iter().enumerate() {
                self.base[i].store(b, Ordering::Relaxed);
                self.end[i].store(e, Ordering::Relaxed);
                self.slot[i].store(s, Ordering::Relaxed);
            }
            // Unused entries sort last and match nothing.
            for i in n..N {
                self.base[i].store(u64::MAX, Ordering::Relaxed);
                self.end[i].store(0, Ordering::Relaxed);
            }
            self.total_blocks.store(total, Ordering::Relaxed);
            self.len.store(n as u32, Ordering::Relaxed);
            for (w, b) in self.bound.iter().zip(bound) {
                w.fetch_or(b, Ordering::Release);
            }
            self.seq.fetch_add(1, Ordering::Release);
            self.built_for.store(want, Ordering::Release);
        }
        self.building.store(false, Ordering::Release);
    }

    /// The blocks of every device in the table.
    #[inline]
    pub(crate) fn total_blocks(&self) -> u64 {
        self.total_blocks.load(Ordering::Relaxed)
    }

    /// The slot whose device's range holds `addr`: a binary search over a
    /// consistent snapshot of the ranges.
    #[inline]
    pub(crate) fn slot_at(&self, addr: u64) -> Option<u32> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            // The last range whose base is <= addr. Unused entries start at
            // u64::MAX and sort last, so the search is the same eight
            // unrolled steps for 2 devices as for 256; a machine with one
            // device (or none) needs no step.
            let mut lo = 0usize;
            if self.len.load(Ordering::Relaxed) > 1 {
                for step in [128, 64, 32, 16, 8, 4, 2, 1] {
                    let probe = (lo + step) & (N - 1);
                    if self.base[probe].load(Ordering::Relaxed) <= addr {
                        lo = probe;
                    }
                }
            }
            let hit = (self.base[lo].load(Ordering::Relaxed) <= addr
                && addr < self.end[lo].load(Ordering::Relaxed))
            .then(|| self.slot[lo].load(Ordering::Relaxed));
            // The data loads above stay before the re-read of the counter.
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return hit;
            }
        }
    }
}

impl core::fmt::Debug for Index {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Index")
            .field(
                "devices",
                &self
                    .base
                    .iter()
                    .filter(|b| b.load(Ordering::Relaxed) != u64::MAX)
                    .count(),
            )
            .field("built_for", &self.built_for.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
    use crate::device::Device;
    use crate::label::SliceLabelStore;
    use crate::machine::LocalSlots;
    use core::cell::RefCell;

    /// Devices in slot order other than address order, empty slots between:
    /// every address finds its device, or none.
    #[test]
    fn test_slot_at_finds_every_device_and_nothing_else() {
        const G: u64 = 1 << 30;
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let mut p = Planner::new(MachineConfig::new(2 * G, 12 * G, 8)).unwrap();
        let mut specs = std::vec::Vec::new();
        for (slot, size) in [(5u64, 2 * G), (1, G), (7, G / 4), (3, G)] {
            let mut c = NvdimmConfig::new(size + (128 << 10), 128 << 10, uuid);
            c.slot = Some(slot);
            specs.push(p.plug(&c).unwrap());
        }
        let mut labels = [[0u8; 16]; 4];
        let cells: [RefCell<Option<Device<SliceLabelStore>>>; 8] =
            [const { RefCell::new(None) }; 8];
        for (spec, label) in specs.iter().zip(labels.iter_mut()) {
            *cells[spec.slot as usize].borrow_mut() =
                Some(Device::new(*spec, SliceLabelStore::new(label)));
        }
        let table = LocalSlots::new(&cells);
        let index = Index::new();
        index.refresh(&table);
        for spec in &specs {
            let end = spec.addr + spec.data_size();
            for addr in [spec.addr, spec.addr + 4096, end - 1] {
                assert_eq!(index.slot_at(addr), Some(spec.slot), "{addr:#x}");
            }
        }
        assert_eq!(index.slot_at(0), None);
        assert_eq!(index.slot_at(2 * G - 1), None);
        assert_eq!(index.slot_at(u64::MAX), None);
        let last = specs.iter().map(|s| s.addr + s.data_size()).max().unwrap();
        assert_eq!(index.slot_at(last), None);
        assert_eq!(index.total_blocks(), 8 + 4 + 1 + 4);
        index.mark_bound(7);
        index.mark_bound(1);
        assert_eq!(index.bound_slots().collect::<std::vec::Vec<_>>(), [1, 7]);
        index.mark_unbound(7);
        assert_eq!(index.bound_slots().collect::<std::vec::Vec<_>>(), [1]);
    }
}
