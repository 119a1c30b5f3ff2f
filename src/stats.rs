// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The `SCMSTATS` buffer of H_SCM_PERFORMANCE_STATS.
//!
//! Layout (Linux `papr_scm.c`, `struct papr_scm_perf_stats`), all integers
//! big-endian: 8-byte eye-catcher `SCMSTATS`, u32 version (1), u32 count,
//! then `count` entries of an 8-byte space-padded ASCII id and a u64 value.

/// The eye-catcher at offset 0.
pub const SCMSTATS_EYECATCHER: [u8; 8] = *b"SCMSTATS";
/// The only buffer version (`PAPR_SCM_PERF_STATS_VERSION`).
pub const SCMSTATS_VERSION: u32 = 1;
/// Header size: eye-catcher, version, count.
pub const SCMSTATS_HEADER_SIZE: u64 = 16;
/// Size of one id/value entry.
pub const SCMSTATS_ENTRY_SIZE: u64 = 16;

/// The statistics the Linux driver knows, in its perf-event order
/// (`nvdimm_events_map`, perf config 1..=16).
pub const STAT_IDS: [[u8; 8]; 16] = [
    *b"CtlResCt",
    *b"CtlResTm",
    *b"PonSecs ",
    *b"MemLife ",
    *b"CritRscU",
    *b"HostLCnt",
    *b"HostSCnt",
    *b"HostSDur",
    *b"HostLDur",
    *b"MedRCnt ",
    *b"MedWCnt ",
    *b"MedRDur ",
    *b"MedWDur ",
    *b"CchRHCnt",
    *b"CchWHCnt",
    *b"FastWCnt",
];

/// The fuel-gauge statistic: life remaining in percent.
pub const STAT_MEM_LIFE: [u8; 8] = *b"MemLife ";

/// Bytes needed for every statistic: 16 + 16 × 16 = 272.
pub const SCMSTATS_ALL_SIZE: u64 =
    SCMSTATS_HEADER_SIZE + SCMSTATS_ENTRY_SIZE * STAT_IDS.len() as u64;

/// True if `id` is one of [`STAT_IDS`].
pub fn is_known_stat(id: &[u8; 8]) -> bool {
    STAT_IDS.contains(id)
}

/// The default value of a statistic: `MemLife ` 100 (a new device), the
/// rest 0.
pub fn default_stat(id: &[u8; 8]) -> u64 {
    if *id == STAT_MEM_LIFE {
        100
    } else {
        0
    }
}

/// Bytes needed for a request of `count` entries, or `None` on overflow.
pub const fn request_size(count: u64) -> Option<u64> {
    match count.checked_mul(SCMSTATS_ENTRY_SIZE) {
        Some(n) => n.checked_add(SCMSTATS_HEADER_SIZE),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sizes() {
        assert_eq!(SCMSTATS_ALL_SIZE, 272);
        assert_eq!(request_size(1), Some(32));
        assert_eq!(request_size(u64::MAX), None);
    }

    #[test]
    fn test_ids() {
        assert!(is_known_stat(b"MemLife "));
        assert!(!is_known_stat(b"MemLife\0"));
        assert_eq!(default_stat(b"MemLife "), 100);
        assert_eq!(default_stat(b"FastWCnt"), 0);
    }
}
