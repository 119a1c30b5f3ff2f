// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Label (metadata) area stores.
//!
//! The guest reads and writes its namespace labels 1, 2, 4 or 8 bytes at a
//! time through H_SCM_READ_METADATA / H_SCM_WRITE_METADATA. A [`LabelStore`]
//! holds those bytes: over a borrowed slice (no allocation), a `Vec` (with
//! `alloc`), or the end of a QEMU-style backing file (with `std`).

use thiserror::Error;

/// A label-store error.
#[derive(Debug, Error)]
pub enum LabelError {
    /// The access does not lie inside the label area.
    #[error("label: access at offset {offset:#x} of {len} bytes is outside the {size:#x}-byte label area")]
    OutOfRange {
        /// Offset of the access.
        offset: u64,
        /// Length of the access.
        len: usize,
        /// Size of the area.
        size: u64,
    },
    /// The backing file failed.
    #[cfg(feature = "std")]
    #[error("label: backing file I/O failed")]
    Io(#[from] std::io::Error),
}

/// Byte storage for one device's label area.
pub trait LabelStore {
    /// Size of the label area in bytes.
    fn size(&self) -> u64;

    /// Reads `buf.len()` bytes at `offset`.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError>;

    /// Writes `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError>;

    /// Makes earlier writes durable. In-memory stores have nothing to do.
    fn flush(&mut self) -> Result<(), LabelError> {
        Ok(())
    }

    /// Reads `len` (1, 2, 4 or 8) bytes at `offset` as a big-endian number:
    /// the H_SCM_READ_METADATA access. In-memory stores override it with a
    /// fixed-size load; this default reads into the low end of a u64.
    #[inline]
    fn read_be(&self, offset: u64, len: u64) -> Result<u64, LabelError> {
        let mut b = [0u8; 8];
        let n = len.min(8) as usize;
        self.read(offset, &mut b[8 - n..])?;
        Ok(u64::from_be_bytes(b))
    }

    /// Writes the low `len` (1, 2, 4 or 8) bytes of `value` big-endian at
    /// `offset`: the H_SCM_WRITE_METADATA access.
    #[inline]
    fn write_be(&mut self, offset: u64, value: u64, len: u64) -> Result<(), LabelError> {
        let b = value.to_be_bytes();
        let n = len.min(8) as usize;
        self.write(offset, &b[8 - n..])
    }
}

/// The fixed-size big-endian load behind H_SCM_READ_METADATA for in-memory
/// label areas: one bounds check and one load, no length-generic copy (the
/// guest reads its whole label area 8 bytes a call at every probe).
#[inline(always)]
fn load_be(bytes: &[u8], offset: u64, len: u64) -> Result<u64, LabelError> {
    #[inline(always)]
    fn get<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
        bytes.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    let err = || LabelError::OutOfRange {
        offset,
        len: len as usize,
        size: bytes.len() as u64,
    };
    let at = usize::try_from(offset).map_err(|_| err())?;
    let v = match len {
        8 => get::<8>(bytes, at).map(u64::from_be_bytes),
        4 => get::<4>(bytes, at).map(|b| u64::from(u32::from_be_bytes(b))),
        2 => get::<2>(bytes, at).map(|b| u64::from(u16::from_be_bytes(b))),
        1 => get::<1>(bytes, at).map(|b| u64::from(b[0])),
        _ => None,
    };
    v.ok_or_else(err)
}

/// The fixed-size big-endian store behind H_SCM_WRITE_METADATA.
#[inline(always)]
fn store_be(bytes: &mut [u8], offset: u64, value: u64, len: u64) -> Result<(), LabelError> {
    #[inline(always)]
    fn put<const N: usize>(bytes: &mut [u8], at: usize, v: [u8; N]) -> Option<()> {
        bytes.get_mut(at..at.checked_add(N)?)?.copy_from_slice(&v);
        Some(())
    }
    let size = bytes.len() as u64;
    let err = || LabelError::OutOfRange {
        offset,
        len: len as usize,
        size,
    };
    let at = usize::try_from(offset).map_err(|_| err())?;
    let done = match len {
        8 => put(bytes, at, value.to_be_bytes()),
        4 => put(bytes, at, (value as u32).to_be_bytes()),
        2 => put(bytes, at, (value as u16).to_be_bytes()),
        1 => put(bytes, at, [value as u8]),
        _ => None,
    };
    done.ok_or_else(err)
}

/// Forwards every `LabelStore` method through a pointer type.
macro_rules! forward_label_store {
    ($(#[$attr:meta])* $ptr:ty) => {
        $(#[$attr])*
        impl<L: LabelStore + ?Sized> LabelStore for $ptr {
            #[inline]
            fn size(&self) -> u64 {
                (**self).size()
            }
            #[inline]
            fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
                (**self).read(offset, buf)
            }
            #[inline]
            fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
                (**self).write(offset, data)
            }
            #[inline]
            fn read_be(&self, offset: u64, len: u64) -> Result<u64, LabelError> {
                (**self).read_be(offset, len)
            }
            #[inline]
            fn write_be(&mut self, offset: u64, value: u64, len: u64) -> Result<(), LabelError> {
                (**self).write_be(offset, value, len)
            }
            #[inline]
            fn flush(&mut self) -> Result<(), LabelError> {
                (**self).flush()
            }
        }
    };
}

forward_label_store!(
    /// A borrowed store is a store: a VMM keeps ownership and lends it.
    &mut L
);

forward_label_store!(
    /// A boxed store is a store, so one machine can mix kinds:
    /// `SharedSlots<Box<dyn LabelStore + Send>>` holds file-backed and RAM
    /// labels side by side.
    ///
    /// ```
    /// use papr_scm::label::{LabelStore, SparseLabelStore, VecLabelStore};
    ///
    /// let mut stores: Vec<Box<dyn LabelStore + Send>> =
    ///     vec![Box::new(VecLabelStore::new(256)), Box::new(SparseLabelStore::new(1 << 30))];
    /// for s in &mut stores {
    ///     s.write(8, &[1, 2])?;
    ///     let mut b = [0u8; 2];
    ///     s.read(8, &mut b)?;
    ///     assert_eq!(b, [1, 2]);
    /// }
    /// # Ok::<(), papr_scm::label::LabelError>(())
    /// ```
    #[cfg(feature = "alloc")]
    alloc::boxed::Box<L>
);

/// Checks `[offset, offset + len)` against `size` without overflow and
/// returns the range as `usize` bounds.
pub fn check_range(offset: u64, len: usize, size: u64) -> Result<(usize, usize), LabelError> {
    offset
        .checked_add(len as u64)
        .filter(|end| *end <= size)
        .and_then(|end| Some((usize::try_from(offset).ok()?, usize::try_from(end).ok()?)))
        .ok_or(LabelError::OutOfRange { offset, len, size })
}

/// Reads from an in-memory label area.
fn read_bytes(bytes: &[u8], offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
    let (s, e) = check_range(offset, buf.len(), bytes.len() as u64)?;
    buf.copy_from_slice(&bytes[s..e]);
    Ok(())
}

/// Writes into an in-memory label area.
fn write_bytes(bytes: &mut [u8], offset: u64, data: &[u8]) -> Result<(), LabelError> {
    let (s, e) = check_range(offset, data.len(), bytes.len() as u64)?;
    bytes[s..e].copy_from_slice(data);
    Ok(())
}

/// A label area in a caller-provided slice (no allocation).
#[derive(Debug)]
pub struct SliceLabelStore<'a> {
    bytes: &'a mut [u8],
}

impl<'a> SliceLabelStore<'a> {
    /// Wraps `bytes` as the whole label area.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        SliceLabelStore { bytes }
    }
}

impl LabelStore for SliceLabelStore<'_> {
    #[inline]
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    #[inline]
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
        read_bytes(self.bytes, offset, buf)
    }

    #[inline]
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
        write_bytes(self.bytes, offset, data)
    }

    #[inline]
    fn read_be(&self, offset: u64, len: u64) -> Result<u64, LabelError> {
        load_be(self.bytes, offset, len)
    }

    #[inline]
    fn write_be(&mut self, offset: u64, value: u64, len: u64) -> Result<(), LabelError> {
        store_be(self.bytes, offset, value, len)
    }
}

#[cfg(feature = "alloc")]
pub use self::vec_store::VecLabelStore;

#[cfg(feature = "alloc")]
mod vec_store {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::{LabelError, LabelStore};

    /// A label area on the heap, zero-filled like a fresh sparse backing file.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct VecLabelStore {
        bytes: Vec<u8>,
    }

    impl VecLabelStore {
        /// A zeroed area of `size` bytes.
        pub fn new(size: usize) -> Self {
            VecLabelStore {
                bytes: vec![0; size],
            }
        }

        /// An area holding `bytes`.
        pub fn from_vec(bytes: Vec<u8>) -> Self {
            VecLabelStore { bytes }
        }

        /// The bytes.
        pub fn as_slice(&self) -> &[u8] {
            &self.bytes
        }
    }

    impl LabelStore for VecLabelStore {
        #[inline]
        fn size(&self) -> u64 {
            self.bytes.len() as u64
        }

        #[inline]
        fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
            super::read_bytes(&self.bytes, offset, buf)
        }

        #[inline]
        fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
            super::write_bytes(&mut self.bytes, offset, data)
        }

        #[inline]
        fn read_be(&self, offset: u64, len: u64) -> Result<u64, LabelError> {
            super::load_be(&self.bytes, offset, len)
        }

        #[inline]
        fn write_be(&mut self, offset: u64, value: u64, len: u64) -> Result<(), LabelError> {
            super::store_be(&mut self.bytes, offset, value, len)
        }
    }
}

#[cfg(feature = "alloc")]
pub use self::sparse::SparseLabelStore;

#[cfg(feature = "alloc")]
mod sparse {
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;

    use super::{check_range, LabelError, LabelStore};

    const CHUNK: u64 = 256;

    /// A label area of any size that holds only the 256-byte chunks written
    /// so far (reads of the rest are zeros, like a sparse backing file).
    ///
    /// For tools that serve configurations they do not trust, such as
    /// `replay`: a 4 GiB `label-size` costs nothing until written, and memory
    /// grows with the writes made. Its first write to a chunk allocates, so
    /// a VMM's hcall path wants [`VecLabelStore`](super::VecLabelStore) or a
    /// file instead.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct SparseLabelStore {
        size: u64,
        chunks: BTreeMap<u64, Box<[u8; CHUNK as usize]>>,
    }

    impl SparseLabelStore {
        /// A zeroed area of `size` bytes; nothing is allocated yet.
        pub fn new(size: u64) -> Self {
            SparseLabelStore {
                size,
                chunks: BTreeMap::new(),
            }
        }

        /// Bytes held in memory (written chunks).
        pub fn resident(&self) -> u64 {
            self.chunks.len() as u64 * CHUNK
        }

        /// Every byte zero again, nothing held (a label area replaced whole).
        pub fn clear(&mut self) {
            self.chunks.clear();
        }
    }

    impl LabelStore for SparseLabelStore {
        fn size(&self) -> u64 {
            self.size
        }

        fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
            check_range(offset, buf.len(), self.size)?;
            for (i, b) in buf.iter_mut().enumerate() {
                // In range: offset + len <= size was checked.
                let at = offset + i as u64;
                *b = self
                    .chunks
                    .get(&(at / CHUNK))
                    .map_or(0, |c| c[(at % CHUNK) as usize]);
            }
            Ok(())
        }

        fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
            check_range(offset, data.len(), self.size)?;
            for (i, b) in data.iter().enumerate() {
                let at = offset + i as u64;
                let chunk = self
                    .chunks
                    .entry(at / CHUNK)
                    .or_insert_with(|| Box::new([0; CHUNK as usize]));
                chunk[(at % CHUNK) as usize] = *b;
            }
            Ok(())
        }
    }
}

#[cfg(feature = "std")]
pub use self::file_store::{Durability, FileLabelStore};

#[cfg(feature = "std")]
mod file_store {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    use super::{check_range, LabelError, LabelStore};
    use crate::layout::BackingLayout;

    /// When label writes reach stable storage.
    ///
    /// Every write is a `pwrite` into the backing file before the hcall
    /// returns, so an acknowledged label write survives the VMM being
    /// killed in both modes; they differ in when it survives a power loss.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Durability {
        /// `sync_data` runs on [`LabelStore::flush`]: when an H_SCM_FLUSH
        /// starts, when the VMM calls `Machine::sync_labels` (pause,
        /// snapshot, shutdown) or resets the machine, and when the store
        /// is dropped. QEMU's behaviour for a non-pmem backend: a memcpy
        /// into the shared mapping, made durable by `fdatasync` when the
        /// guest flushes (a plain `nvdimm` has no flush hcall, so there
        /// only the VMM's points apply).
        #[default]
        OnFlush,
        /// `sync_data` after every write: each H_SCM_WRITE_METADATA is durable
        /// when it returns, at the cost of one device sync per label write.
        /// QEMU's behaviour for a `pmem=on` backend (`pmem_persist` in
        /// `nvdimm_write_label`), where H_SCM_FLUSH is H_UNSUPPORTED.
        EveryWrite,
    }

    impl Durability {
        /// The policy QEMU's backend implies for `spec`: `pmem=on` persists
        /// every write, anything else syncs on flush.
        pub fn for_spec(spec: &crate::config::DeviceSpec) -> Self {
            if spec.pmem {
                Durability::EveryWrite
            } else {
                Durability::OnFlush
            }
        }
    }

    /// The label area at the end of a QEMU-style NVDIMM backing file.
    ///
    /// ```
    /// use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
    /// use papr_scm::label::{Durability, FileLabelStore, LabelStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut cfg = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?);
    /// cfg.pmem = true; // memory-backend-file,pmem=on
    /// let spec = Planner::new(MachineConfig::new(2 << 30, 8 << 30, 1))?.plug(&cfg)?;
    /// let mut store = FileLabelStore::for_spec(&dir.path().join("nv0.img"), &spec)?;
    /// assert_eq!(store.durability(), Durability::EveryWrite); // QEMU's pmem_persist
    /// store.write(0, b"NAMESPACE_INDEX\0")?;
    /// // The label is the file's last label-size bytes, where QEMU keeps it.
    /// use std::os::unix::fs::FileExt;
    /// let mut sig = [0u8; 15];
    /// store.file().read_exact_at(&mut sig, 256 << 20)?;
    /// assert_eq!(&sig, b"NAMESPACE_INDEX");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The file is the whole `memory-backend-file`: data blocks first, the
    /// label in its last `label_size` bytes (`nvdimm_prepare_memory_region`).
    #[derive(Debug)]
    pub struct FileLabelStore {
        file: File,
        offset: u64,
        size: u64,
        durability: Durability,
    }

    impl FileLabelStore {
        /// Opens an existing backing file whose last `label_size` bytes are
        /// the label; the file's length is the backing size.
        pub fn open(
            path: &Path,
            label_size: u64,
            durability: Durability,
        ) -> Result<(Self, BackingLayout), LabelError> {
            let file = OpenOptions::new().read(true).write(true).open(path)?;
            let backing = file.metadata()?.len();
            Self::with_file(file, backing, label_size, durability)
        }

        /// Opens `path`, creating it as a sparse file of `backing_size` bytes
        /// if it does not exist. An existing file must have that size.
        pub fn create(
            path: &Path,
            backing_size: u64,
            label_size: u64,
            durability: Durability,
        ) -> Result<(Self, BackingLayout), LabelError> {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            let len = file.metadata()?.len();
            if len == 0 {
                file.set_len(backing_size)?;
            } else if len != backing_size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "backing file exists with another size",
                )
                .into());
            }
            Self::with_file(file, backing_size, label_size, durability)
        }

        /// Opens or creates the backing file of `spec` (QEMU's layout: the
        /// label in the last `label-size` bytes) with the durability its
        /// backend implies ([`Durability::for_spec`]).
        pub fn for_spec(path: &Path, spec: &crate::config::DeviceSpec) -> Result<Self, LabelError> {
            let (store, _) = Self::create(
                path,
                spec.layout.backing_size(),
                spec.layout.label_size(),
                Durability::for_spec(spec),
            )?;
            Ok(store)
        }

        /// The backing file, e.g. for a flush executor that syncs the data
        /// region the guest maps.
        pub fn file(&self) -> &File {
            &self.file
        }

        fn with_file(
            file: File,
            backing: u64,
            label_size: u64,
            durability: Durability,
        ) -> Result<(Self, BackingLayout), LabelError> {
            let layout = BackingLayout::new(backing, label_size)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Ok((
                FileLabelStore {
                    file,
                    offset: layout.label_offset(),
                    size: label_size,
                    durability,
                },
                layout,
            ))
        }

        /// The durability policy.
        pub fn durability(&self) -> Durability {
            self.durability
        }
    }

    impl LabelStore for FileLabelStore {
        fn size(&self) -> u64 {
            self.size
        }

        fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), LabelError> {
            check_range(offset, buf.len(), self.size)?;
            // offset + len <= size and self.offset + size == backing size,
            // so the sum cannot overflow.
            self.file.read_exact_at(buf, self.offset + offset)?;
            Ok(())
        }

        fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), LabelError> {
            check_range(offset, data.len(), self.size)?;
            self.file.write_all_at(data, self.offset + offset)?;
            if self.durability == Durability::EveryWrite {
                self.file.sync_data()?;
            }
            Ok(())
        }

        fn flush(&mut self) -> Result<(), LabelError> {
            self.file.sync_data()?;
            Ok(())
        }
    }

    impl Drop for FileLabelStore {
        /// The last defined point: a device that goes away (unplug, VMM
        /// exit) leaves its label on stable storage.
        fn drop(&mut self) {
            let _ = self.file.sync_data();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_slice_store_round_trip_and_bounds() {
        let mut buf = [0u8; 16];
        let mut s = SliceLabelStore::new(&mut buf);
        assert_eq!(s.size(), 16);
        s.write(14, &[0xAA, 0xBB]).unwrap();
        let mut out = [0u8; 2];
        s.read(14, &mut out).unwrap();
        assert_eq!(out, [0xAA, 0xBB]);
        assert!(matches!(
            s.write(15, &[1, 2]),
            Err(LabelError::OutOfRange {
                offset: 15,
                len: 2,
                size: 16
            })
        ));
        assert!(s.read(u64::MAX, &mut out).is_err());
        assert!(s.read(17, &mut []).is_err());
        assert!(s.read(16, &mut []).is_ok());
        s.flush().unwrap();
    }

    #[test]
    fn test_check_range_overflow() {
        assert!(check_range(u64::MAX - 1, 8, u64::MAX).is_err());
        assert_eq!(check_range(8, 8, 16).unwrap(), (8, 16));
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn test_sparse_store_holds_only_what_was_written() {
        let mut s = SparseLabelStore::new(u32::MAX as u64);
        let mut b = [1u8; 8];
        s.read(u32::MAX as u64 - 8, &mut b).unwrap();
        assert_eq!(b, [0; 8]);
        s.write(254, &[1, 2, 3, 4]).unwrap();
        s.read(252, &mut b).unwrap();
        assert_eq!(b, [0, 0, 1, 2, 3, 4, 0, 0]);
        assert_eq!(s.resident(), 512);
        assert!(s.write(u32::MAX as u64 - 1, &[0; 2]).is_err());
        assert!(s.read(u64::MAX, &mut b).is_err());
        s.clear();
        s.read(252, &mut b).unwrap();
        assert_eq!((b, s.resident()), ([0; 8], 0));
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn test_vec_store() {
        let mut v = VecLabelStore::new(128 * 1024);
        v.write(128 * 1024 - 1, &[7]).unwrap();
        assert_eq!(v.as_slice()[128 * 1024 - 1], 7);
        assert!(v.write(128 * 1024, &[7]).is_err());
    }

    #[cfg(feature = "std")]
    #[test]
    fn test_file_store_label_at_end() {
        use std::io::{Read, Seek, SeekFrom};
        const K: u64 = 1024;
        const M: u64 = 1024 * K;
        let dir = std::env::temp_dir().join(std::format!("papr-scm-label-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nv0.img");
        let _ = std::fs::remove_file(&path);
        let (mut s, layout) =
            FileLabelStore::create(&path, 256 * M + 128 * K, 128 * K, Durability::OnFlush).unwrap();
        assert_eq!(layout.blocks(), 1);
        s.write(0, b"NAMESPACE").unwrap();
        s.write(128 * K - 2, &[0xDE, 0xAD]).unwrap();
        s.flush().unwrap();
        assert!(s.write(128 * K - 1, &[1, 2]).is_err());
        drop(s);

        // The bytes sit in the last 128 KiB of the file.
        let mut f = std::fs::File::open(&path).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 256 * M + 128 * K);
        f.seek(SeekFrom::Start(256 * M)).unwrap();
        let mut head = [0u8; 9];
        f.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"NAMESPACE");
        f.seek(SeekFrom::End(-2)).unwrap();
        let mut tail = [0u8; 2];
        f.read_exact(&mut tail).unwrap();
        assert_eq!(tail, [0xDE, 0xAD]);

        // Reopened as an existing QEMU backing file, with per-write sync.
        let (mut s, layout) = FileLabelStore::open(&path, 128 * K, Durability::EveryWrite).unwrap();
        assert_eq!(layout.label_offset(), 256 * M);
        assert_eq!(s.durability(), Durability::EveryWrite);
        let mut out = [0u8; 9];
        s.read(0, &mut out).unwrap();
        assert_eq!(&out, b"NAMESPACE");
        s.write(9, &[1]).unwrap();

        // A size mismatch and a layout error are refused.
        assert!(FileLabelStore::create(&path, 512 * M, 128 * K, Durability::OnFlush).is_err());
        assert!(FileLabelStore::open(&path, 512 * M, Durability::OnFlush).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
