// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `papr_scm_hcall` is the hot path: through the C entry, every SCM hcall
//! (success and error paths, both profiles, label and guest-memory
//! callbacks, the flush executor) allocates nothing.

use core::ffi::{c_int, c_void};
use std::cell::RefCell;

use papr_scm_capi::*;

const K: u64 = 1024;
const G: u64 = 1024 * 1024 * K;
const LABEL: u64 = 128 * K;

/// The VMM's memory: two label areas and 64 KiB of guest RAM.
struct Fake {
    labels: RefCell<[Vec<u8>; 2]>,
    ram: RefCell<Vec<u8>>,
}

/// The fake behind `opaque`.
///
/// # Safety
///
/// `opaque` is the `&Fake` the machine was made with, alive for the test.
unsafe fn fake<'a>(opaque: *mut c_void) -> &'a Fake {
    // SAFETY: the caller's contract.
    unsafe { &*opaque.cast::<Fake>() }
}

/// Copies between a fake area and the caller's buffer; -1 out of range.
fn copy(area: &mut [u8], off: u64, len: usize, mut f: impl FnMut(&mut [u8])) -> c_int {
    match usize::try_from(off)
        .ok()
        .and_then(|o| area.get_mut(o..o.checked_add(len)?))
    {
        Some(a) => {
            f(a);
            0
        }
        None => -1,
    }
}

unsafe extern "C" fn label_read(
    o: *mut c_void,
    slot: u32,
    off: u64,
    buf: *mut u8,
    len: usize,
) -> c_int {
    // SAFETY: `o` is the fake; `buf` is valid for `len` writes (the
    // callback contract papr-scm keeps).
    let (f, buf) = unsafe { (fake(o), std::slice::from_raw_parts_mut(buf, len)) };
    copy(&mut f.labels.borrow_mut()[slot as usize], off, len, |a| {
        buf.copy_from_slice(a)
    })
}

unsafe extern "C" fn label_write(
    o: *mut c_void,
    slot: u32,
    off: u64,
    buf: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: as for label_read, `buf` valid for `len` reads.
    let (f, buf) = unsafe { (fake(o), std::slice::from_raw_parts(buf, len)) };
    copy(&mut f.labels.borrow_mut()[slot as usize], off, len, |a| {
        a.copy_from_slice(buf)
    })
}

unsafe extern "C" fn guest_read(o: *mut c_void, gpa: u64, buf: *mut u8, len: usize) -> c_int {
    // SAFETY: as for label_read.
    let (f, buf) = unsafe { (fake(o), std::slice::from_raw_parts_mut(buf, len)) };
    copy(&mut f.ram.borrow_mut(), gpa, len, |a| {
        buf.copy_from_slice(a)
    })
}

unsafe extern "C" fn guest_write(o: *mut c_void, gpa: u64, buf: *const u8, len: usize) -> c_int {
    // SAFETY: as for label_write.
    let (f, buf) = unsafe { (fake(o), std::slice::from_raw_parts(buf, len)) };
    copy(&mut f.ram.borrow_mut(), gpa, len, |a| {
        a.copy_from_slice(buf)
    })
}

unsafe extern "C" fn flush_done(_: *mut c_void, _: u32, _: u64) -> u32 {
    papr_scm_flush_status::PAPR_SCM_FLUSH_DONE as u32
}

unsafe extern "C" fn nothing(_: *mut c_void, _: u32, _: u64, _: u64) {}

fn machine(profile: papr_scm_profile, fake: &Fake) -> *mut papr_scm_machine {
    let cb = papr_scm_callbacks {
        opaque: (fake as *const Fake).cast_mut().cast(),
        label_read: Some(label_read),
        label_write: Some(label_write),
        label_flush: None,
        guest_read: Some(guest_read),
        guest_write: Some(guest_write),
        flush_start: Some(flush_done),
        flush_poll: Some(flush_done),
        flush_forget: None,
        bound: Some(nothing),
        unbound: Some(nothing),
        event_push: None,
        event_withdraw: None,
        guest_time: None,
    };
    let config = papr_scm_machine_config {
        ram_size: 2 * G,
        maxmem: 8 * G,
        slots: 4,
        numa_nodes: 1,
        profile: profile as u32,
        numa_form: papr_scm_numa_form::PAPR_SCM_NUMA_FORM1 as u32,
    };
    let device =
        |slot: u32, addr: u64, data: u64, kind: papr_scm_device_kind| papr_scm_device_config {
            slot,
            node: 0,
            addr,
            size: data + LABEL,
            label_size: LABEL,
            uuid: [slot as u8 + 1; 16],
            kind: kind as u32,
            pmem: CBool(0),
            pmem_override: -1,
            unarmed: CBool(0),
            readonly: CBool(0),
            associativity: std::ptr::null(),
            associativity_len: 0,
            persistence_failed_count: -1,
        };
    let devices = [
        device(0, 2 * G, G, papr_scm_device_kind::PAPR_SCM_KIND_NVDIMM),
        device(
            1,
            3 * G,
            G / 4,
            papr_scm_device_kind::PAPR_SCM_KIND_SPAPR_NVDIMM,
        ),
    ];
    let mut m = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local for the call.
    let rc = unsafe { papr_scm_machine_new(&config, devices.as_ptr(), 2, &cb, &mut m) };
    assert_eq!(rc, papr_scm_result::PAPR_SCM_OK);
    m
}

/// Every SCM hcall, on good and bad arguments; how many were SCM hcalls.
fn exercise(m: *const papr_scm_machine) -> u32 {
    let calls: &[(u64, [u64; 9])] = &[
        (0x3EC, [0x9000_0000, 0, 4, u64::MAX, 0, 0, 0, 0, 0]),
        (0x3EC, [0x9000_0000, 0, 4, u64::MAX, 0, 0, 0, 0, 0]),
        (0x3EC, [0x9000_0000, 9, 4, u64::MAX, 0, 0, 0, 0, 0]),
        (0x3F4, [0x9000_0000, 3, 0, 0, 0, 0, 0, 0, 0]),
        (0x3F8, [0x8000_0000, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x3E4, [0x9000_0000, 0x1fff8, 8, 0, 0, 0, 0, 0, 0]),
        (0x3E4, [0x9000_0000, 0x20000, 8, 0, 0, 0, 0, 0, 0]),
        (0x3E4, [0x9000_0000, 0, 3, 0, 0, 0, 0, 0, 0]),
        (0x3E8, [0x9000_0000, 5, 0xabcd, 2, 0, 0, 0, 0, 0]),
        (0x3E8, [0x9000_0000, 5, 0xabcd, 8, 0, 0, 0, 0, 0]),
        (0x400, [0x9000_0001, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x400, [0x1234, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x418, [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x418, [0x9000_0000, 0x1000, 272, 0, 0, 0, 0, 0, 0]),
        (0x418, [0x9000_0000, 0xffff_0000, 32, 0, 0, 0, 0, 0, 0]),
        (0x44C, [0x9000_0001, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x44C, [0x9000_0001, 1, 0, 0, 0, 0, 0, 0, 0]),
        (0x44C, [0x9000_0000, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x3F0, [0x9000_0000, 0x8000_0000, 1, 0, 0, 0, 0, 0, 0]),
        (0x3FC, [2, 0x9000_0000, 0, 0, 0, 0, 0, 0, 0]),
        (0x3FC, [1, 0, 0, 0, 0, 0, 0, 0, 0]),
        (0x58, [0; 9]),
    ];
    let mut handled = 0;
    for (op, regs) in calls {
        let mut r = *regs;
        let mut ret = 0i64;
        // SAFETY: `m` is live; `r` is 9 words and `ret` one, both locals.
        if unsafe { papr_scm_hcall(m, *op, r.as_mut_ptr(), &mut ret) } {
            handled += 1;
        }
    }
    handled
}

#[test]
fn test_the_c_hcall_entry_allocates_nothing() {
    let probe = allocation_counter::measure(|| {
        std::hint::black_box(Box::new(1u64));
    });
    assert_eq!(probe.count_total, 1, "the counter counts");

    for profile in [
        papr_scm_profile::PAPR_SCM_PROFILE_QEMU,
        papr_scm_profile::PAPR_SCM_PROFILE_PAPR,
    ] {
        let fake = Fake {
            labels: RefCell::new([vec![0; LABEL as usize], vec![0; LABEL as usize]]),
            ram: RefCell::new(vec![0; 64 << 10]),
        };
        fake.ram.borrow_mut()[0x1000..0x1010].copy_from_slice(b"SCMSTATS\0\0\0\x01\0\0\0\0");
        let m = machine(profile, &fake);
        let mut handled = 0;
        let info = allocation_counter::measure(|| {
            for _ in 0..100 {
                handled += exercise(m);
            }
        });
        assert_eq!(handled, 2100, "{profile:?}");
        assert_eq!(info.count_total, 0, "{profile:?}: {info:?}");
        // The calls did reach the VMM's memory.
        assert_eq!(
            &fake.labels.borrow()[0][5..13],
            &[0, 0, 0, 0, 0, 0, 0xab, 0xcd]
        );
        if profile == papr_scm_profile::PAPR_SCM_PROFILE_PAPR {
            assert_eq!(&fake.ram.borrow()[0x1000 + 64..0x1000 + 72], b"MemLife ");
        }
        // SAFETY: made above, freed once.
        unsafe { papr_scm_machine_free(m) };
    }
}
