// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`GuestMemory`] over rust-vmm's `vm-memory` (feature `vm-memory`).

use vm_memory::{Bytes, GuestAddress};

use super::{BindEvents, EventSignal, FlushExecutor, GuestMemory, GuestMemoryError, StatsSource};

/// Guest RAM from any `vm_memory` object that reads and writes bytes at
/// guest addresses (`GuestMemoryMmap`, a `GuestMemoryAtomic`'s guard, …),
/// for the PERFORMANCE_STATS buffer. An access that leaves guest RAM or
/// comes short is a [`GuestMemoryError`] (H_P2 to the guest).
///
/// It is a whole [`crate::host::Host`] with the other defaults; a VMM with
/// its own flush executor embeds it in its host type and forwards.
///
/// ```
/// use papr_scm::host::{GuestMemory, VmMemory};
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
///
/// let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
/// let mem = VmMemory(ram);
/// mem.write_guest(0x1000, b"SCMSTATS")?;
/// let mut eye = [0u8; 8];
/// mem.read_guest(0x1000, &mut eye)?;
/// assert_eq!(&eye, b"SCMSTATS");
/// assert!(mem.read_guest(0xfffc, &mut eye).is_err());
/// # Ok::<(), papr_scm::host::GuestMemoryError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VmMemory<M>(pub M);

impl<M: Bytes<GuestAddress>> GuestMemory for VmMemory<M> {
    fn has_memory(&self) -> bool {
        true
    }

    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        self.0
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| GuestMemoryError {
                gpa,
                len: buf.len(),
            })
    }

    fn write_guest(&self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        self.0
            .write_slice(data, GuestAddress(gpa))
            .map_err(|_| GuestMemoryError {
                gpa,
                len: data.len(),
            })
    }
}

impl<M> FlushExecutor for VmMemory<M> {}
impl<M> BindEvents for VmMemory<M> {}
impl<M> StatsSource for VmMemory<M> {}
impl<M> EventSignal for VmMemory<M> {}
