// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The trap points in a guest's vmlinux: the call sites of the hcall
//! wrappers inside the functions of `papr_scm.c`.
//!
//! The ELF is read with the `object` crate (bounds-checked, fuzzed by its
//! maintainers and by our `bridge_elf` target): a hand-written reader
//! indexed the file with offsets taken from it and panicked on a crafted
//! 152-byte file.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// Which wrapper a trapped call site calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `plpar_hcall(opcode, ret, args...)`: args in r5.., outputs to ret[].
    Hcall,
    /// `plpar_hcall_norets(opcode, args...)`: args in r4.., status only.
    Norets,
}

/// Most bytes of one function that are scanned (papr_scm.c's largest is a
/// few KiB); a symbol claiming more is clipped to this.
const MAX_FUNCTION: u64 = 1 << 20;

/// The address of the text symbol `name` (e.g. `enter_rtas`, the kernel's
/// RTAS entry).
pub fn find_symbol(elf: &[u8], name: &str) -> Result<u64, String> {
    let file = object::File::parse(elf).map_err(|e| format!("vmlinux: {e}"))?;
    file.symbols()
        .find(|s| s.kind() == SymbolKind::Text && s.name() == Ok(name))
        .map(|s| s.address())
        .ok_or_else(|| format!("vmlinux: no {name}"))
}

/// `mtdec rS` (`mtspr 22, rS`: opcode 31, xo 467, the SPR number's halves
/// swapped) with any rS.
const MTDEC_MASK: u32 = 0xFC1F_FFFF;
const MTDEC: u32 = 0x7C16_03A6;

/// The address of an `mtdec rS` instruction in the kernel's decrementer
/// code and its rS: the bridge executes it once to re-arm a decrementer
/// QEMU lost in migration. Searched in Linux's `set_dec` callers, where one
/// always is.
pub fn find_mtdec(elf: &[u8]) -> Result<(u64, u32), String> {
    let file = object::File::parse(elf).map_err(|e| format!("vmlinux: {e}"))?;
    for name in [
        "set_dec_or_work",
        "decrementer_set_next_event",
        "timer_interrupt",
    ] {
        let Some(sym) = file
            .symbols()
            .find(|s| s.kind() == SymbolKind::Text && s.name() == Ok(name))
        else {
            continue;
        };
        let Some(code) = sym.section_index().and_then(|i| {
            file.section_by_index(i)
                .and_then(|s| s.data_range(sym.address(), sym.size().min(MAX_FUNCTION)))
                .ok()
                .flatten()
        }) else {
            continue;
        };
        for (k, w) in code.chunks_exact(4).enumerate() {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            if w & MTDEC_MASK == MTDEC {
                return Ok((sym.address() + 4 * k as u64, (w >> 21) & 31));
            }
        }
    }
    Err(
        "vmlinux: no mtdec in set_dec_or_work, decrementer_set_next_event or timer_interrupt"
            .into(),
    )
}

/// The call sites `(pc, wrapper, function)` of `plpar_hcall` and
/// `plpar_hcall_norets` inside the functions that follow the `papr_scm.c`
/// STT_FILE symbol, from a little-endian ELF64 vmlinux.
pub fn find_sites(elf: &[u8]) -> Result<Vec<(u64, Site, String)>, String> {
    let file = object::File::parse(elf).map_err(|e| format!("vmlinux: {e}"))?;
    if !file.is_little_endian() || !file.is_64() {
        return Err("vmlinux: not a little-endian ELF64".into());
    }
    let entry = |n: &str| {
        file.symbols()
            .find(|s| s.kind() == SymbolKind::Text && s.name() == Ok(n))
            .map(|s| s.address())
            .ok_or_else(|| format!("vmlinux: no {n}"))
    };
    let (hcall, norets) = (entry("plpar_hcall")?, entry("plpar_hcall_norets")?);
    // The local symbols of a source file follow its STT_FILE symbol.
    let mut in_file = false;
    let mut sites = Vec::new();
    for sym in file.symbols() {
        if sym.kind() == SymbolKind::File {
            in_file = sym.name() == Ok("papr_scm.c");
            continue;
        }
        if !in_file || sym.kind() != SymbolKind::Text || sym.size() == 0 {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let (value, size) = (sym.address(), sym.size().min(MAX_FUNCTION));
        let code = file
            .section_by_index(index)
            .and_then(|s| s.data_range(value, size))
            .ok()
            .flatten()
            .ok_or_else(|| {
                format!(
                    "vmlinux: {} at {value:#x} lies outside its section",
                    sym.name().unwrap_or("?")
                )
            })?;
        let name = sym.name().unwrap_or("?");
        for (k, w) in code.chunks_exact(4).enumerate() {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            // bl: primary opcode 18, AA = 0, LK = 1.
            if w & 0xFC00_0003 != 0x4800_0001 {
                continue;
            }
            let pc = value.wrapping_add(4 * k as u64);
            let li = ((w & 0x03FF_FFFC) as i32) << 6 >> 6;
            let target = pc.wrapping_add(li as i64 as u64);
            // ELFv2: a local call enters at the local entry point, +8.
            let site = if target == hcall || target == hcall.wrapping_add(8) {
                Site::Hcall
            } else if target == norets || target == norets.wrapping_add(8) {
                Site::Norets
            } else {
                continue;
            };
            sites.push((pc, site, name.to_string()));
        }
    }
    if sites.is_empty() {
        return Err("vmlinux: no hcall call sites in papr_scm.c's functions".into());
    }
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE: .text at 0x1000 with a function of papr_scm.c
    /// that calls plpar_hcall+8, plpar_hcall_norets and something else.
    pub(crate) fn tiny_elf() -> Vec<u8> {
        let bl =
            |from: u64, to: u64| 0x4800_0001u32 | ((to.wrapping_sub(from) as u32) & 0x03FF_FFFC);
        let mut text = Vec::new();
        for w in [
            0x6000_0000,
            bl(0x1004, 0x2008),
            bl(0x1008, 0x2100),
            bl(0x100c, 0x0f00),
            0x7D36_03A6, // mtdec r9
        ] {
            text.extend_from_slice(&u32::to_le_bytes(w));
        }
        let strtab =
            b"\0papr_scm.c\0drc_pmem_bind\0other.c\0set_dec_or_work\0plpar_hcall\0plpar_hcall_norets\0"
                .to_vec();
        let at = |n: &str| {
            strtab
                .windows(n.len())
                .position(|w| w == n.as_bytes())
                .unwrap() as u32
        };
        let sym = |name: u32, info: u8, shndx: u16, value: u64, size: u64| {
            let mut b = Vec::new();
            b.extend_from_slice(&name.to_le_bytes());
            b.extend_from_slice(&[info, 0]);
            b.extend_from_slice(&shndx.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b
        };
        let mut symtab = sym(0, 0, 0, 0, 0);
        symtab.extend(sym(at("papr_scm.c"), 4, 0xfff1, 0, 0));
        symtab.extend(sym(at("drc_pmem_bind"), 2, 1, 0x1000, 16));
        symtab.extend(sym(at("other.c"), 4, 0xfff1, 0, 0));
        symtab.extend(sym(at("set_dec_or_work"), 2, 1, 0x1010, 4));
        symtab.extend(sym(at("plpar_hcall"), 0x12, 1, 0x2000, 8));
        symtab.extend(sym(at("plpar_hcall_norets"), 0x12, 1, 0x2100, 8));
        let (text_off, sym_off) = (64u64, 64 + text.len() as u64);
        let str_off = sym_off + symtab.len() as u64;
        let sh_off = str_off + strtab.len() as u64;
        let mut elf = vec![0u8; 64];
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        elf[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[0x12..0x14].copy_from_slice(&21u16.to_le_bytes()); // EM_PPC64
        elf[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        elf[0x28..0x30].copy_from_slice(&sh_off.to_le_bytes());
        elf[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3C..0x3E].copy_from_slice(&4u16.to_le_bytes());
        // Section names (all empty) come from the symbol string table.
        elf[0x3E..0x40].copy_from_slice(&3u16.to_le_bytes());
        elf.extend(&text);
        elf.extend(&symtab);
        elf.extend(&strtab);
        // (type, flags, addr, offset, size, link, entsize)
        for (ty, flags, addr, off, size, link, entsize) in [
            (0u32, 0u64, 0u64, 0u64, 0u64, 0u32, 0u64),
            (1, 6, 0x1000, text_off, text.len() as u64, 0, 0),
            (2, 0, 0, sym_off, symtab.len() as u64, 3, 24),
            (3, 0, 0, str_off, strtab.len() as u64, 0, 0),
        ] {
            let mut h = vec![0u8; 64];
            h[4..8].copy_from_slice(&ty.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[16..24].copy_from_slice(&addr.to_le_bytes());
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h[40..44].copy_from_slice(&link.to_le_bytes());
            h[56..64].copy_from_slice(&entsize.to_le_bytes());
            elf.extend(h);
        }
        elf
    }

    #[test]
    fn test_find_sites_in_a_tiny_elf() {
        let sites = find_sites(&tiny_elf()).unwrap();
        assert_eq!(
            sites,
            vec![
                (0x1004, Site::Hcall, "drc_pmem_bind".to_string()),
                (0x1008, Site::Norets, "drc_pmem_bind".to_string())
            ]
        );
        assert!(find_sites(b"not an elf").is_err());
        assert_eq!(find_symbol(&tiny_elf(), "plpar_hcall_norets"), Ok(0x2100));
        assert!(find_symbol(&tiny_elf(), "enter_rtas")
            .unwrap_err()
            .contains("no enter_rtas"));
        let mut no_wrappers = tiny_elf();
        let p = no_wrappers
            .windows(11)
            .position(|w| w == b"plpar_hcall")
            .unwrap();
        no_wrappers[p] = b'X';
        assert!(find_sites(&no_wrappers)
            .unwrap_err()
            .contains("no plpar_hcall"));
    }

    /// The hand-written reader indexed `elf[start..]` with a string offset
    /// from the file (a crafted 152-byte file panicked); every truncation
    /// and every corrupted header byte of a valid file is an error now.
    #[test]
    fn test_find_mtdec() {
        assert_eq!(find_mtdec(&tiny_elf()), Ok((0x1010, 9)));
        // Without the decrementer functions there is nothing to run.
        let mut elf = tiny_elf();
        let at = elf
            .windows(15)
            .position(|w| w == b"set_dec_or_work")
            .unwrap();
        elf[at] = b'X';
        assert!(find_mtdec(&elf).unwrap_err().contains("no mtdec"));
    }

    #[test]
    fn test_truncated_and_corrupted_files_are_errors() {
        let good = tiny_elf();
        for n in 0..good.len() {
            let _ = find_sites(&good[..n]);
            let _ = find_mtdec(&good[..n]);
        }
        for i in 0..good.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = find_sites(&b);
                let _ = find_mtdec(&b);
            }
        }
        // The string table placed past the end of the file: the old reader
        // sliced elf[start..] with it.
        let mut b = good.clone();
        let strtab_hdr = b.len() - 64;
        b[strtab_hdr + 24..strtab_hdr + 32].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(find_sites(&b).is_err());
        // A function whose size runs past its section.
        let mut b = good.clone();
        let size_at = 64 + 20 + 24 * 2 + 16; // drc_pmem_bind's st_size
        b[size_at..size_at + 8].copy_from_slice(&0x1000u64.to_le_bytes());
        assert!(find_sites(&b).unwrap_err().contains("outside its section"));
    }
}
