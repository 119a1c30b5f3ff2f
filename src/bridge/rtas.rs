// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! RTAS through the stub: the trap at the kernel's `enter_rtas`, the tokens
//! from the guest's `/rtas` node, and the guest's clock.
//!
//! At `enter_rtas` r3 is the real address of `struct rtas_args` (the
//! kernel's RTAS entry, before it drops to real mode and the big-endian
//! RTAS blob): trapping there costs one stop per call and sees the
//! arguments as the kernel wrote them. The bridge answers a call by writing
//! the returns into `args[nargs..]` and setting the PC to the LR, so the
//! kernel carries on as if RTAS had returned.

use crate::rtas::{RtasService, RtasTokens};
use crate::rtas_error_log::RtcTime;

/// The `/rtas` tokens of the services papr-scm answers, from a device
/// tree blob (QEMU `-machine dumpdtb=`: the tokens do not change at CAS).
pub fn rtas_tokens(dtb: &[u8]) -> Result<RtasTokens, String> {
    let values = rtas_cells(dtb, RtasService::ALL.map(|(_, name)| name))?;
    let mut tokens = RtasTokens::new();
    for ((service, _), v) in RtasService::ALL.into_iter().zip(values) {
        tokens.set(service, v);
    }
    Ok(tokens)
}

/// The one-cell properties `names` of a device tree blob's `/rtas` (the
/// tokens of those services), the blob checked and walked once.
pub fn rtas_cells<const N: usize>(dtb: &[u8], names: [&str; N]) -> Result<[u32; N], String> {
    crate::fdt::check_blob(dtb).map_err(|e| format!("dtb: {e}"))?;
    let tree = ::fdt::Fdt::new(dtb).map_err(|e| format!("dtb: {e:?}"))?;
    let rtas = tree.find_node("/rtas").ok_or("dtb: no /rtas node")?;
    let mut out = [0; N];
    for (v, name) in out.iter_mut().zip(names) {
        let p = rtas
            .property(name)
            .ok_or_else(|| format!("dtb: /rtas has no {name}"))?;
        let cell: [u8; 4] = p
            .value
            .try_into()
            .map_err(|_| format!("dtb: /rtas/{name} is not one cell"))?;
        *v = u32::from_be_bytes(cell);
    }
    Ok(out)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `secs` after the epoch as the guest's RTC reads it (QEMU's default
/// `-rtc base=utc`).
pub fn rtc_time(secs: u64) -> RtcTime {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    RtcTime {
        year: u16::try_from(y).unwrap_or(u16::MAX),
        month: m,
        day: d,
        hour: (rem / 3600) as u8,
        minute: (rem / 60 % 60) as u8,
        second: (rem % 60) as u8,
    }
}

/// The host's clock now, as the guest's RTC.
pub fn now() -> RtcTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rtc_time(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rtc_time() {
        assert_eq!(
            rtc_time(0),
            RtcTime {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        // 2026-12-01T14:43:53Z
        assert_eq!(
            rtc_time(1_796_136_233),
            RtcTime {
                year: 2026,
                month: 12,
                day: 1,
                hour: 14,
                minute: 43,
                second: 53
            }
        );
        // 2024-02-29 (a leap day) 23:59:59
        let t = rtc_time(1_709_251_199);
        assert_eq!((t.year, t.month, t.day, t.hour), (2024, 2, 29, 23));
    }

    #[test]
    fn test_tokens_from_a_tree() {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        let rtas = w.begin_node("rtas").unwrap();
        for (i, (_, name)) in RtasService::ALL.iter().enumerate() {
            w.property_u32(name, 0x2000 + i as u32).unwrap();
        }
        w.end_node(rtas).unwrap();
        w.end_node(root).unwrap();
        let blob = w.finish().unwrap();
        let t = rtas_tokens(&blob).unwrap();
        assert_eq!(
            rtas_cells(&blob, ["get-sensor-state", "set-indicator"]),
            Ok([0x2001, 0x2000])
        );
        assert!(rtas_cells(&blob, ["system-reboot"])
            .unwrap_err()
            .contains("no system-reboot"));
        assert_eq!(t.service(0x2003), Some(RtasService::CheckException));
        assert!(rtas_tokens(&blob[..blob.len() / 2]).is_err());
    }
}
