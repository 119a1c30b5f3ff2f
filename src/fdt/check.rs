// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A strict structural check of a flattened device tree blob, run before
//! any parser sees it.
//!
//! The guest model and the CLI read blobs with the small `fdt` crate, which
//! trusts its input: a truncated property, a name without its NUL, a string
//! offset past the strings block or an extra `FDT_END_NODE` make it index
//! out of range, unwrap `None` or underflow (40 bytes suffice). Rather than
//! a second parser, [`check_blob`] walks the header, the memory reservation
//! map and every token of the structure block once, with checked
//! arithmetic, and accepts only what that parser handles safely:
//!
//! * devicetree spec v17 header (`version >= 16`, `last_comp_version <= 17`),
//!   every block inside `totalsize`, `totalsize` inside the buffer;
//! * one root node; each node's properties before its children; names and
//!   property names NUL-terminated UTF-8; values inside the block;
//! * no `FDT_NOP` (the parser skips them in some places only; QEMU's and
//!   vm-fdt's blobs have none);
//! * nesting at most [`MAX_DEPTH`] deep (the parser keeps 64 parents).
//!
//! The check allocates nothing, so it also serves `no_std` VMMs that are
//! handed a blob.

use thiserror::Error;

/// FDT magic, big-endian at offset 0.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Deepest node nesting accepted (the root is depth 1).
pub const MAX_DEPTH: usize = 32;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_SIZE: usize = 40;

/// Why a blob is refused, with the byte offset where that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BlobError {
    /// Shorter than the 40-byte header.
    #[error("device tree: {len} bytes is shorter than the 40-byte header")]
    TooShort {
        /// Buffer length.
        len: usize,
    },
    /// Wrong magic number.
    #[error("device tree: bad magic {magic:#010x} (want 0xd00dfeed)")]
    BadMagic {
        /// What was there.
        magic: u32,
    },
    /// A version this check does not know.
    #[error("device tree: version {version} (last compatible {last_comp}) is not 16 or 17")]
    BadVersion {
        /// `version`.
        version: u32,
        /// `last_comp_version`.
        last_comp: u32,
    },
    /// A header field points outside the blob.
    #[error("device tree: header field {field} is out of range or misaligned")]
    BadHeader {
        /// The header field.
        field: &'static str,
    },
    /// The structure block is malformed at `offset` (from the blob start).
    #[error("device tree: structure block at byte {offset:#x}: {reason}")]
    BadStructure {
        /// Byte offset in the blob.
        offset: usize,
        /// What is wrong there.
        reason: &'static str,
    },
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// A NUL-terminated UTF-8 string at the start of `b`; its length without
/// the NUL.
fn cstr(b: &[u8]) -> Option<usize> {
    let n = b.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&b[..n]).ok()?;
    Some(n)
}

const fn align4(n: usize) -> Option<usize> {
    match n.checked_add(3) {
        Some(v) => Some(v & !3),
        None => None,
    }
}

/// Checks `blob` as described in the [module docs](self); `Ok` means the
/// `fdt` crate can walk every node and property of it without panicking.
///
/// ```
/// use papr_scm::fdt::{check_blob, BlobError};
///
/// assert!(matches!(check_blob(b"not a tree"), Err(BlobError::TooShort { len: 10 })));
/// let mut fdt = papr_scm::vm_fdt::FdtWriter::new().unwrap();
/// let root = fdt.begin_node("").unwrap();
/// fdt.end_node(root).unwrap();
/// let blob = fdt.finish().unwrap();
/// assert_eq!(check_blob(&blob), Ok(()));
/// // Truncated: totalsize now passes the end of the buffer.
/// assert!(check_blob(&blob[..blob.len() - 4]).is_err());
/// ```
pub fn check_blob(blob: &[u8]) -> Result<(), BlobError> {
    if blob.len() < HEADER_SIZE {
        return Err(BlobError::TooShort { len: blob.len() });
    }
    // Infallible: the header is in the buffer.
    let h = |i: usize| be32(blob, i * 4).unwrap_or(0) as usize;
    let magic = h(0) as u32;
    if magic != FDT_MAGIC {
        return Err(BlobError::BadMagic { magic });
    }
    let (total, off_struct, off_strings, off_rsv) = (h(1), h(2), h(3), h(4));
    let (version, last_comp) = (h(5) as u32, h(6) as u32);
    let (size_strings, size_struct) = (h(8), h(9));
    if !(16..=17).contains(&version) || last_comp > 17 || last_comp > version {
        return Err(BlobError::BadVersion { version, last_comp });
    }
    let bad = |field| Err(BlobError::BadHeader { field });
    if total < HEADER_SIZE || total > blob.len() {
        return bad("totalsize");
    }
    let blob = &blob[..total];
    let inside = |off: usize, size: usize| {
        off >= HEADER_SIZE && off.checked_add(size).is_some_and(|e| e <= total)
    };
    if !inside(off_struct, size_struct) || off_struct % 4 != 0 || size_struct % 4 != 0 {
        return bad("off_dt_struct / size_dt_struct");
    }
    if !inside(off_strings, size_strings) {
        return bad("off_dt_strings / size_dt_strings");
    }
    if off_rsv % 8 != 0 || !inside(off_rsv, 16) {
        return bad("off_mem_rsvmap");
    }
    // The reservation map: 16-byte entries up to an all-zero one.
    let mut at = off_rsv;
    loop {
        let Some(entry) = blob.get(at..at + 16) else {
            return bad("off_mem_rsvmap");
        };
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        at += 16;
    }
    let strings = &blob[off_strings..off_strings + size_strings];
    check_structure(
        &blob[off_struct..off_struct + size_struct],
        off_struct,
        strings,
    )
}

fn check_structure(s: &[u8], base: usize, strings: &[u8]) -> Result<(), BlobError> {
    let bad = |at: usize, reason| {
        Err(BlobError::BadStructure {
            offset: base + at,
            reason,
        })
    };
    let mut at = 0usize;
    let mut depth = 0usize;
    // Whether the open node has had a child yet: properties must come first.
    let mut had_child = false;
    let mut roots = 0usize;
    loop {
        let Some(token) = be32(s, at) else {
            return bad(at, "ends without FDT_END");
        };
        let body = at + 4;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return bad(at, "a second root node");
                    }
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return bad(at, "nodes nested too deep");
                }
                let Some(n) = cstr(&s[body..]) else {
                    return bad(body, "node name without NUL or not UTF-8");
                };
                let Some(next) = align4(body + n + 1) else {
                    return bad(body, "node name runs past the block");
                };
                had_child = false;
                at = next;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return bad(at, "FDT_END_NODE outside any node");
                }
                depth -= 1;
                // The parent has now had a child.
                had_child = true;
                at = body;
            }
            FDT_PROP => {
                if depth == 0 {
                    return bad(at, "property outside any node");
                }
                if had_child {
                    return bad(at, "property after a child node");
                }
                let (Some(len), Some(nameoff)) = (be32(s, body), be32(s, body + 4)) else {
                    return bad(body, "property header runs past the block");
                };
                let value = body + 8;
                let end = value.checked_add(len as usize).filter(|e| *e <= s.len());
                let Some(next) = end.and_then(align4).filter(|e| *e <= s.len()) else {
                    return bad(body, "property value runs past the block");
                };
                if strings.get(nameoff as usize..).and_then(cstr).is_none() {
                    return bad(body + 4, "property name offset outside the strings block or not a NUL-terminated UTF-8 name");
                }
                at = next;
            }
            FDT_NOP => return bad(at, "FDT_NOP is not accepted"),
            FDT_END => {
                if depth != 0 || roots != 1 {
                    return bad(at, "FDT_END before the root node closed");
                }
                return Ok(());
            }
            _ => return bad(at, "unknown token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn golden() -> Vec<u8> {
        let mut fdt = vm_fdt::FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("a", 1).unwrap();
        let child = fdt.begin_node("c@1").unwrap();
        fdt.property_null("b").unwrap();
        fdt.end_node(child).unwrap();
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    }

    #[test]
    fn test_accepts_what_vm_fdt_writes() {
        assert_eq!(check_blob(&golden()), Ok(()));
    }

    #[test]
    fn test_refuses_every_malformation() {
        let good = golden();
        let off_struct = be32(&good, 8).unwrap() as usize;
        assert!(matches!(
            check_blob(&good[..39]),
            Err(BlobError::TooShort { .. })
        ));
        let mut b = good.clone();
        b[0] = 0;
        assert!(matches!(check_blob(&b), Err(BlobError::BadMagic { .. })));
        let mut b = good.clone();
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            check_blob(&b),
            Err(BlobError::BadHeader { field: "totalsize" })
        ));
        let mut b = good.clone();
        b[12..16].copy_from_slice(&(u32::MAX - 2).to_be_bytes());
        assert!(matches!(check_blob(&b), Err(BlobError::BadHeader { .. })));
        // A NOP where the root's first property was.
        let mut b = good.clone();
        let nop = off_struct + 12; // BEGIN_NODE + "" padded = 8 bytes
        b[nop - 4..nop].copy_from_slice(&FDT_NOP.to_be_bytes());
        assert!(matches!(
            check_blob(&b),
            Err(BlobError::BadStructure { .. })
        ));
        // An unterminated run: FDT_END replaced by FDT_END_NODE.
        let mut b = good.clone();
        let end = off_struct + be32(&good, 36).unwrap() as usize - 4;
        b[end..end + 4].copy_from_slice(&FDT_END_NODE.to_be_bytes());
        assert!(matches!(
            check_blob(&b),
            Err(BlobError::BadStructure { .. })
        ));
        // A property name offset past the strings block.
        let mut b = good.clone();
        b[off_struct + 16..off_struct + 20].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            check_blob(&b),
            Err(BlobError::BadStructure { .. })
        ));
        // A property length past the block.
        let mut b = good.clone();
        b[off_struct + 12..off_struct + 16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            check_blob(&b),
            Err(BlobError::BadStructure { .. })
        ));
    }
}
