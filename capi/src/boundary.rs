// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The boundary itself: the panic guard every entry runs in, the pointer
//! checks through which each raw pointer becomes a reference (the unsafe
//! casts are written here, once), and the thread's last error.

use core::any::Any;
use core::cell::RefCell;
use core::fmt::Write as _;
use std::boxed::Box;
use std::string::String;

use crate::error::{Error, PtrError};
use crate::papr_scm_machine;
use crate::types::papr_scm_result;

/// Runs an entry's body with panics caught. A panic becomes `$panic` (the
/// entry's neutral answer: `PAPR_SCM_PANIC`, `false`, 0), its message goes
/// to the last error, and the machine `$m`, when one is given and not
/// NULL, refuses every later call but `papr_scm_machine_free`.
macro_rules! ffi_fn {
    ($m:expr, $panic:expr, $body:block) => {{
        let machine: *const $crate::papr_scm_machine = $m;
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(payload) => {
                $crate::boundary::caught(machine, payload);
                $panic
            }
        }
    }};
    ($panic:expr, $body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(payload) => {
                $crate::boundary::caught(::core::ptr::null(), payload);
                $panic
            }
        }
    }};
}

/// Records a caught panic: the message as the last error, and the machine
/// marked broken. Takes the payload and drops it itself, so an entry's
/// landing pad is one call and keeps nothing but the machine pointer in a
/// saved register (the hcall path's frame holds no more than it needs).
#[cold]
#[inline(never)]
pub(crate) fn caught(m: *const papr_scm_machine, payload: Box<dyn Any + Send>) {
    let payload = payload.as_ref();
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    set_last_error(format_args!(
        "panic: {what}; the machine must not be used again except to free it"
    ));
    // SAFETY: `m` is the entry's machine argument, which the caller
    // guarantees is NULL or a live machine from papr_scm_machine_new; the
    // panic did not free it (only papr_scm_machine_free does).
    if let Some(m) = unsafe { m.as_ref() } {
        m.mark_broken();
    }
}

/// Runs a fallible body: `PAPR_SCM_OK`, or the error's code with its
/// message as the last error.
pub(crate) fn result(f: impl FnOnce() -> Result<(), Error>) -> papr_scm_result {
    match f() {
        Ok(()) => papr_scm_result::PAPR_SCM_OK,
        Err(e) => fail(&e),
    }
}

/// Records `e` as the last error and returns its code.
#[cold]
pub(crate) fn fail(e: &Error) -> papr_scm_result {
    set_last_error(format_args!("{e}"));
    e.code()
}

/// A reference from a pointer argument named `name`: NULL and misaligned
/// pointers are errors.
///
/// # Safety
///
/// A non-NULL `p` points at a `T` that stays valid, and is not written
/// through another pointer, for `'a`.
pub(crate) unsafe fn arg<'a, T>(p: *const T, name: &'static str) -> Result<&'a T, PtrError> {
    check_ptr(p, name)?;
    // SAFETY: non-NULL and aligned; the caller guarantees the rest.
    Ok(unsafe { &*p })
}

/// A NULL or misaligned `p` as the error naming `name`: the test every
/// pointer argument passes ([`arg`], [`arg_mut`], `papr_scm_hcall`'s).
#[inline(always)]
fn check_ptr<T>(p: *const T, name: &'static str) -> Result<(), PtrError> {
    if p.is_null() {
        return Err(PtrError::Null(name));
    }
    if !p.is_aligned() {
        return Err(PtrError::Misaligned(name));
    }
    Ok(())
}

/// The three 8-byte-aligned types `papr_scm_hcall` takes pointers to: one
/// mask tests all three alignments.
const HCALL_ALIGN: usize = 8;
const _: () = assert!(
    core::mem::align_of::<papr_scm_machine>() == HCALL_ALIGN
        && core::mem::align_of::<papr_scm::hcall::Regs>() == HCALL_ALIGN
        && core::mem::align_of::<i64>() == HCALL_ALIGN
);

/// `papr_scm_hcall`'s pointers as references: three NULL tests and one
/// alignment test for the three on the hot path. `None` when one is bad,
/// with the last error naming the first, as [`arg`] and [`arg_mut`] would
/// (found on a cold path, so the hot one builds no error and keeps no
/// stack for one).
///
/// # Safety
///
/// Non-NULL `m`, `args`, `ret` point at a live machine, 9 `u64`s nothing
/// else uses, and an `i64` nothing else uses, for `'a`.
#[inline(always)]
pub(crate) unsafe fn hcall_args<'a>(
    m: *const papr_scm_machine,
    args: *mut u64,
    ret: *mut i64,
) -> Option<(
    &'a papr_scm_machine,
    &'a mut papr_scm::hcall::Regs,
    &'a mut i64,
)> {
    if m.is_null()
        || args.is_null()
        || ret.is_null()
        || (m as usize | args as usize | ret as usize) & (HCALL_ALIGN - 1) != 0
    {
        hcall_rejected(m, args, ret);
        return None;
    }
    // SAFETY: each is non-NULL and aligned for its type (the one mask tests
    // all three: every alignment is HCALL_ALIGN); the caller guarantees the
    // rest. `args` holds 9 words, exactly `Regs`.
    Some(unsafe { (&*m, &mut *args.cast::<papr_scm::hcall::Regs>(), &mut *ret) })
}

/// A bad pointer to `papr_scm_hcall`: the first, in argument order, as
/// the last error.
#[cold]
#[inline(never)]
fn hcall_rejected(m: *const papr_scm_machine, args: *mut u64, ret: *mut i64) {
    let bad = check_ptr(m, "m")
        .and(check_ptr(args.cast::<papr_scm::hcall::Regs>(), "args"))
        .and(check_ptr(ret, "ret"));
    if let Err(e) = bad {
        fail(&e.into());
    }
}

/// A mutable reference from a pointer argument named `name`.
///
/// # Safety
///
/// A non-NULL `p` points at a `T` that nothing else reads or writes for `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, name: &'static str) -> Result<&'a mut T, PtrError> {
    check_ptr(p, name)?;
    // SAFETY: non-NULL and aligned; the caller guarantees exclusivity.
    Ok(unsafe { &mut *p })
}

/// A slice from a pointer and a length; an empty slice when `len` is 0,
/// whatever the pointer.
///
/// # Safety
///
/// With `len > 0`, a non-NULL `p` points at `len` initialised `T`s that
/// stay valid and unwritten for `'a`.
pub(crate) unsafe fn slice<'a, T>(
    p: *const T,
    len: usize,
    name: &'static str,
) -> Result<&'a [T], PtrError> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(PtrError::Null(name));
    }
    if !p.is_aligned() {
        return Err(PtrError::Misaligned(name));
    }
    if len > isize::MAX as usize / core::mem::size_of::<T>().max(1) {
        return Err(PtrError::TooLong { name, len });
    }
    // SAFETY: non-NULL, aligned, a length whose byte size fits isize; the
    // caller guarantees the memory.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// A mutable slice from a pointer and a length (empty when `len` is 0).
///
/// # Safety
///
/// With `len > 0`, a non-NULL `p` points at `len` `T`s that nothing else
/// reads or writes for `'a`.
pub(crate) unsafe fn slice_mut<'a, T>(
    p: *mut T,
    len: usize,
    name: &'static str,
) -> Result<&'a mut [T], PtrError> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(PtrError::Null(name));
    }
    if !p.is_aligned() {
        return Err(PtrError::Misaligned(name));
    }
    if len > isize::MAX as usize / core::mem::size_of::<T>().max(1) {
        return Err(PtrError::TooLong { name, len });
    }
    // SAFETY: as in `slice`, with exclusivity guaranteed by the caller.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

std::thread_local! {
    /// The calling thread's last error message (empty: none).
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Replaces the calling thread's last error.
pub(crate) fn set_last_error(msg: core::fmt::Arguments<'_>) {
    LAST_ERROR.with(|l| {
        // A message formatted while the cell is borrowed cannot happen (no
        // call formats an error inside another); try_borrow keeps a
        // surprise from becoming a second panic.
        if let Ok(mut s) = l.try_borrow_mut() {
            s.clear();
            let _ = s.write_fmt(msg);
        }
    });
}

/// Copies the last error into `buf` (NUL-terminated, cut to fit) and
/// returns its whole length.
pub(crate) fn copy_last_error(buf: &mut [u8]) -> usize {
    LAST_ERROR.with(|l| {
        let Ok(s) = l.try_borrow() else { return 0 };
        if let Some(room) = buf.len().checked_sub(1) {
            let n = s.len().min(room);
            buf[..n].copy_from_slice(&s.as_bytes()[..n]);
            buf[n] = 0;
        }
        s.len()
    })
}
