// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! One SCM device: its layout, binding state, health, flush requests and
//! label store, and the per-device hcall handlers.
//!
//! Every handler applies QEMU's checks in QEMU's order
//! (`hw/ppc/spapr_nvdimm.c`); the `papr` profile adds state on top, in
//! small named branches. No handler allocates.

use byteorder::{BigEndian, ByteOrder};
use thiserror::Error;

use crate::config::{DeviceSpec, FlushMode, Profile};
use crate::drc::{Connector, ConnectorState, DrcState};
use crate::hcall::*;
use crate::host::{FlushStatus, Host};
use crate::label::LabelStore;
use crate::layout::SCM_BLOCK_SIZE;
use crate::stats::*;

/// Most disjoint bound block ranges a device tracks. Merging keeps a guest
/// that binds whole devices (Linux) at one; a guest that fragments more
/// gets H_TOO_BIG.
pub const MAX_EXTENTS: usize = 16;
/// Most flush requests a device keeps at once (pending or completed but not
/// yet collected). QEMU's lists are unbounded; past this a new request gets
/// H_LONG_BUSY_ORDER_10_MSEC with r4 = 0: the guest sleeps, then asks again.
pub const MAX_FLUSHES: usize = 32;

/// Most rounds an injected or restored fault may make the guest retry:
/// [`Faults::bind_busy`], [`Faults::flush_hold`] and a flush record's
/// `hold`. Linux retries H_BUSY binds without sleeping and long-busy
/// flushes after the hinted sleep, for as long as it is told to, so a
/// restored `u32::MAX` would hold a guest for ever.
pub const MAX_FAULT_ROUNDS: u32 = 1024;

/// The flush counter a restored state may hold: tokens are counted from 1
/// and a device that reached 2^63 could never start another flush.
pub const MAX_FLUSH_TOKEN: u64 = 1 << 63;

/// Health bits the `papr` profile can report (H_SCM_HEALTH r5).
pub const PAPR_HEALTH_MASK: HealthBits = HealthBits::all();

/// The set of bound blocks: disjoint, sorted, merged `(start, count)` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bindings {
    runs: [(u64, u64); MAX_EXTENTS],
    len: usize,
    /// The blocks in `runs[..len]`: H_SCM_UNBIND_ALL answers it without a
    /// walk.
    blocks: u64,
}

/// The binding table has no room for another run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("binding table full ({MAX_EXTENTS} runs)")]
pub struct BindingsFull;

impl Default for Bindings {
    fn default() -> Self {
        Self::new()
    }
}

impl Bindings {
    /// Nothing bound.
    pub const fn new() -> Self {
        Bindings {
            runs: [(0, 0); MAX_EXTENTS],
            len: 0,
            blocks: 0,
        }
    }

    /// The bound runs, sorted by start.
    #[inline]
    pub fn runs(&self) -> &[(u64, u64)] {
        // len <= MAX_EXTENTS always; the `min` lets the compiler drop the
        // slice's panic path (and the call it brings) from every hcall that
        // walks the runs.
        &self.runs[..self.len.min(MAX_EXTENTS)]
    }

    /// Number of bound blocks.
    #[inline]
    pub fn count(&self) -> u64 {
        self.blocks
    }

    /// True if nothing is bound.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if `block` is bound.
    #[inline]
    pub fn contains(&self, block: u64) -> bool {
        self.runs()
            .iter()
            .any(|&(s, n)| block >= s && block - s < n)
    }

    /// True if every block of `[start, start + n)` is bound (at most one
    /// step per run, whatever `n`).
    pub fn covers(&self, start: u64, n: u64) -> bool {
        let end = start.saturating_add(n);
        let mut at = start;
        for &(s, c) in self.runs() {
            if at >= end || s > at {
                break;
            }
            at = at.max(s.saturating_add(c));
        }
        at >= end
    }

    /// True if any block of `[start, start + n)` is bound.
    #[inline(always)]
    pub fn intersects(&self, start: u64, n: u64) -> bool {
        // An empty range overlaps nothing: a bind of 0 blocks inside a bound
        // run is no H_OVERLAP (found by the hcall_sequence fuzzer).
        let end = start.saturating_add(n);
        n > 0
            && self.len > 0
            && self
                .runs()
                .iter()
                .any(|&(s, c)| start < s.saturating_add(c) && s < end)
    }

    /// Makes `[start, start + n)` the only bound run (`n` > 0; the table is
    /// empty): Linux's whole-device binding.
    #[inline(always)]
    fn set_one(&mut self, start: u64, n: u64) {
        self.runs[0] = (start, n);
        self.len = 1;
        self.blocks = n;
    }

    /// Marks `[start, start + n)` bound; it must not intersect a bound run.
    #[inline(always)]
    pub fn insert(&mut self, start: u64, n: u64) -> Result<(), BindingsFull> {
        if n == 0 {
            return Ok(());
        }
        // Linux binds each whole device once: the first run of an empty
        // table needs no search and no shifting.
        if self.len == 0 {
            self.set_one(start, n);
            return Ok(());
        }
        let end = start.saturating_add(n);
        let i = self.runs().partition_point(|r| r.0 < start);
        let merge_prev = i > 0 && {
            let p = self.runs[i - 1];
            p.0 + p.1 == start
        };
        let merge_next = i < self.len && self.runs[i].0 == end;
        match (merge_prev, merge_next) {
            (true, true) => {
                self.runs[i - 1].1 += n + self.runs[i].1;
                self.remove_at(i);
            }
            (true, false) => self.runs[i - 1].1 += n,
            (false, true) => self.runs[i] = (start, self.runs[i].1 + n),
            (false, false) => {
                if self.len == MAX_EXTENTS {
                    return Err(BindingsFull);
                }
                self.runs.copy_within(i..self.len, i + 1);
                self.runs[i] = (start, n);
                self.len += 1;
            }
        }
        // Disjoint runs of a u64 block space: the sum fits.
        self.blocks = self.blocks.saturating_add(n);
        Ok(())
    }

    /// Unbinds `[start, start + n)`, calling `f(run_start, run_count)` for
    /// each bound piece removed; returns the number of blocks unbound.
    #[inline]
    pub fn remove(
        &mut self,
        start: u64,
        n: u64,
        mut f: impl FnMut(u64, u64),
    ) -> Result<u64, BindingsFull> {
        let end = start.saturating_add(n);
        // Everything bound goes (a whole-device unbind): no run is cut.
        if self.len > 0 && start <= self.runs[0].0 && {
            let (s, c) = self.runs[self.len - 1];
            s + c <= end
        } {
            return Ok(self.take_all(f));
        }
        // A cut strictly inside one run splits it in two.
        let splits = self.runs().iter().any(|&(s, c)| s < start && end < s + c);
        if splits && self.len == MAX_EXTENTS {
            return Err(BindingsFull);
        }
        let mut removed = 0;
        let mut i = 0;
        while i < self.len {
            let (s, c) = self.runs[i];
            let e = s + c;
            let (lo, hi) = (s.max(start), e.min(end));
            if lo >= hi {
                i += 1;
                continue;
            }
            f(lo, hi - lo);
            removed += hi - lo;
            match (s < lo, hi < e) {
                (false, false) => {
                    self.remove_at(i);
                    continue;
                }
                (true, false) => self.runs[i].1 = lo - s,
                (false, true) => self.runs[i] = (hi, e - hi),
                (true, true) => {
                    self.runs[i].1 = lo - s;
                    self.runs.copy_within(i + 1..self.len, i + 2);
                    self.runs[i + 1] = (hi, e - hi);
                    self.len += 1;
                    i += 1;
                }
            }
            i += 1;
        }
        self.blocks = self.blocks.saturating_sub(removed);
        Ok(removed)
    }

    /// Unbinds everything (H_SCM_UNBIND_ALL), calling `f(run_start,
    /// run_count)` for each run; returns the number of blocks unbound.
    #[inline(always)]
    pub fn take_all(&mut self, mut f: impl FnMut(u64, u64)) -> u64 {
        for &(s, c) in self.runs() {
            f(s, c);
        }
        let removed = self.blocks;
        self.len = 0;
        self.blocks = 0;
        removed
    }

    /// Calls `f(run_start, run_count)` for each piece of the bound blocks
    /// that `other` does not hold, in order (at most one step per run of
    /// either table).
    pub fn difference(&self, other: &Bindings, mut f: impl FnMut(u64, u64)) {
        let theirs = other.runs();
        let mut j = 0;
        for &(s, c) in self.runs() {
            let end = s + c;
            let mut at = s;
            // Skip their runs that end before this one starts.
            while j < theirs.len() && theirs[j].0 + theirs[j].1 <= at {
                j += 1;
            }
            let mut k = j;
            while at < end {
                match theirs.get(k) {
                    Some(&(ts, tc)) if ts < end => {
                        if ts > at {
                            f(at, ts - at);
                        }
                        at = at.max(ts + tc);
                        k += 1;
                    }
                    _ => {
                        f(at, end - at);
                        at = end;
                    }
                }
            }
        }
    }

    #[inline]
    fn remove_at(&mut self, i: usize) {
        // The last run (the only one, for Linux's whole-device bindings)
        // needs no shifting.
        if i + 1 < self.len {
            self.runs.copy_within(i + 1..self.len, i);
        }
        self.len -= 1;
    }
}

/// A bind that returned H_BUSY and waits for the guest's continue token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindProgress {
    /// The continue token handed to the guest.
    pub token: u64,
    /// First requested block.
    pub start: u64,
    /// Requested block count.
    pub count: u64,
    /// Blocks bound so far.
    pub done: u64,
}

/// One H_SCM_FLUSH request the device remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushRecord {
    /// The guest's token.
    pub token: u64,
    /// `None` while pending; the final status once complete.
    pub result: Option<ReturnCode>,
    /// Polls to answer "pending" before asking the executor (fault injection).
    pub hold: u32,
    /// True until the guest has been told "pending" once (QEMU always
    /// answers a new request with long-busy; see [`Device::h_scm_flush`]).
    pub fresh: bool,
    /// An injected result ([`Faults::flush_result`]) taken when this request
    /// started; it replaces the executor's result at completion.
    pub injected: Option<ReturnCode>,
}

/// Availability of H_SCM_PERFORMANCE_STATS on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsMode {
    /// Statistics are reported.
    #[default]
    Enabled,
    /// H_UNSUPPORTED: the hypervisor has no statistics.
    Unsupported,
    /// H_AUTHORITY: statistics collection is disabled (PowerVM's HMC switch).
    Authority,
}

/// Faults a test or VMM injects into a device (`papr` profile unless noted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// The next this many bind calls answer H_BUSY with a continue token.
    pub bind_busy: u32,
    /// Blocks bound per bind call before answering H_BUSY; `None` binds all.
    pub bind_budget: Option<u64>,
    /// A new flush stays pending for this many polls.
    pub flush_hold: u32,
    /// The long-busy code a pending flush answers (default 10 ms, QEMU's).
    pub flush_order: ReturnCode,
    /// The next flush to *start* completes with this status instead of the
    /// executor's (H_SUCCESS or H_HARDWARE); applies in both profiles.
    /// QEMU computes a request's result in the worker it submits when the
    /// request starts (`spapr_nvdimm_flush_worker_cb`), so a fault taken at
    /// start is the one that models a failing backend for that request; a
    /// flush already running keeps its own result.
    pub flush_result: Option<ReturnCode>,
    /// Performance statistics availability.
    pub stats: StatsMode,
}

impl Faults {
    /// Checks each field against the values a handler can act on.
    pub fn validate(&self) -> Result<(), StateError> {
        let bad = |field, reason| Err(StateError::BadFault { field, reason });
        if !self.flush_order.is_long_busy() {
            return bad("flush_order", "must be an H_LONG_BUSY_ORDER_* code");
        }
        if self.bind_budget == Some(0) {
            return bad("bind_budget", "must bind at least one block per call");
        }
        if self.bind_busy > MAX_FAULT_ROUNDS {
            return bad("bind_busy", "at most MAX_FAULT_ROUNDS (1024) H_BUSY rounds");
        }
        if self.flush_hold > MAX_FAULT_ROUNDS {
            return bad(
                "flush_hold",
                "at most MAX_FAULT_ROUNDS (1024) long-busy polls",
            );
        }
        if self.flush_result.is_some_and(is_retry) {
            return bad(
                "flush_result",
                "must be a final status, not H_BUSY or long-busy (the guest would retry a token that is gone)",
            );
        }
        Ok(())
    }
}

/// A status Linux answers by calling again with the same token (H_BUSY,
/// `H_IS_LONG_BUSY`): never a flush's final result.
fn is_retry(rc: ReturnCode) -> bool {
    rc == H_BUSY || rc.is_long_busy()
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            bind_busy: 0,
            bind_budget: None,
            flush_hold: 0,
            flush_order: H_LONG_BUSY_ORDER_10_MSEC,
            flush_result: None,
            stats: StatsMode::Enabled,
        }
    }
}

/// The mutable state of a device, for snapshot and restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState {
    /// Bound blocks.
    pub bindings: Bindings,
    /// A bind waiting for its continue token.
    pub bind_progress: Option<BindProgress>,
    /// Last bind continue token handed out.
    pub bind_token: u64,
    /// Health bits injected by the host (UNARMED comes from the spec).
    pub health: HealthBits,
    /// Last flush token handed out (QEMU `nvdimm_flush_token`).
    pub flush_token: u64,
    /// Flush requests not yet collected by the guest.
    pub flushes: [Option<FlushRecord>; MAX_FLUSHES],
    /// Injected faults.
    pub faults: Faults,
    /// The slot's DR connector (QEMU migrates it as `spapr_drc`).
    pub connector: ConnectorState,
}

impl Default for DeviceState {
    fn default() -> Self {
        DeviceState {
            bindings: Bindings::new(),
            bind_progress: None,
            bind_token: 0,
            health: HealthBits::empty(),
            flush_token: 0,
            flushes: [None; MAX_FLUSHES],
            faults: Faults::default(),
            connector: Connector::cold_plugged().state(),
        }
    }
}

/// A state that does not fit the device it is restored into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StateError {
    /// A bound run lies outside the device's blocks or the runs overlap.
    #[error(
        "bindings: run ({start}, {count}) is outside the device's {blocks} blocks or out of order"
    )]
    BadRun {
        /// Run start.
        start: u64,
        /// Run length.
        count: u64,
        /// Device blocks.
        blocks: u64,
    },
    /// A flush record has token 0 or a token above the counter.
    #[error("flushes: token {token} is 0 or above the last token issued")]
    BadFlushToken {
        /// The token.
        token: u64,
    },
    /// The flush counter is past [`MAX_FLUSH_TOKEN`].
    #[error("flush_token: {counter:#x} is above 2^63")]
    BadFlushCounter {
        /// The counter.
        counter: u64,
    },
    /// A flush record field out of its range.
    #[error("flushes: token {token}: {field} {reason}")]
    BadFlushRecord {
        /// The record's token.
        token: u64,
        /// The field of [`FlushRecord`].
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// Bind state in the `qemu` profile, which keeps none (QEMU maps the
    /// whole device at plug time): no hcall there would ever drop it.
    #[error("{field}: the qemu profile keeps no bind state")]
    NotInProfile {
        /// The field.
        field: &'static str,
    },
    /// Two flush records carry the same token.
    #[error("flushes: token {token} appears twice")]
    DuplicateFlushToken {
        /// The token.
        token: u64,
    },
    /// The bind in progress does not fit the device or its own counts.
    #[error(
        "bind_progress: token {token}, blocks {start}+{count} with {done} done does not fit the device's {blocks} blocks"
    )]
    BadBindProgress {
        /// Continue token.
        token: u64,
        /// First block.
        start: u64,
        /// Requested blocks.
        count: u64,
        /// Blocks bound so far.
        done: u64,
        /// Device blocks.
        blocks: u64,
    },
    /// The bind in progress claims blocks the bindings do not hold.
    #[error("bind_progress: blocks {start}+{done} are not all bound")]
    BindProgressNotBound {
        /// First block.
        start: u64,
        /// Blocks bound so far.
        done: u64,
    },
    /// A connector UNUSABLE with an unplug pending: such a device has
    /// already left its slot.
    #[error("connector: UNUSABLE with an unplug pending (the device would already be released)")]
    BadConnector,
    /// Health bits outside what H_SCM_HEALTH can report.
    #[error("health: bits {bits:#x} are not PAPR health bits")]
    BadHealth {
        /// The stray bits.
        bits: u64,
    },
    /// An injected fault out of its range.
    #[error("faults.{field}: {reason}")]
    BadFault {
        /// The field of [`Faults`].
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
}

/// One SCM device.
#[derive(Debug)]
pub struct Device<L> {
    spec: DeviceSpec,
    label: L,
    state: DeviceState,
    connector: Connector,
}

/// What a handler needs besides the device: the profile and the host.
#[derive(Debug)]
pub struct Ctx<'a, H: ?Sized> {
    /// The hcall profile.
    pub profile: Profile,
    /// The host.
    pub host: &'a H,
}

// Manual impls: derive would demand `H: Copy`, but only the reference is copied.
impl<H: ?Sized> Clone for Ctx<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H: ?Sized> Copy for Ctx<'_, H> {}

/// The rules [`Device::from_state`] and [`Device::restore`] apply: a state
/// no later hcall can trip over.
fn check_state(spec: &DeviceSpec, state: &DeviceState) -> Result<(), StateError> {
    check_state_blocks(spec.blocks(), state)
}

/// The rule of a restore into a machine of `profile`: the `qemu` profile
/// keeps no bind state, so a state with bindings or a bind in progress
/// would keep them for ever there.
#[cfg(feature = "alloc")]
pub(crate) fn check_state_profile(profile: Profile, state: &DeviceState) -> Result<(), StateError> {
    if profile == Profile::Qemu {
        if !state.bindings.is_empty() {
            return Err(StateError::NotInProfile { field: "bindings" });
        }
        if state.bind_progress.is_some() {
            return Err(StateError::NotInProfile {
                field: "bind_progress",
            });
        }
    }
    Ok(())
}

/// [`check_state`] for a device of `blocks` blocks: the rules need only
/// its size (a snapshot is checked before a device is chosen).
pub(crate) fn check_state_blocks(blocks: u64, state: &DeviceState) -> Result<(), StateError> {
    let mut prev_end = 0;
    for &(start, count) in state.bindings.runs() {
        let end = start.checked_add(count);
        if count == 0 || start < prev_end || end.is_none_or(|e| e > blocks) {
            return Err(StateError::BadRun {
                start,
                count,
                blocks,
            });
        }
        prev_end = start + count;
    }
    if let Some(p) = state.bind_progress {
        let fits = p.token != 0
            && p.count > 0
            && p.done < p.count
            && p.start.checked_add(p.count).is_some_and(|e| e <= blocks);
        if !fits {
            return Err(StateError::BadBindProgress {
                token: p.token,
                start: p.start,
                count: p.count,
                done: p.done,
                blocks,
            });
        }
        // Walked run by run: a restored `done` may be 2^63 blocks.
        if p.done > 0 && !state.bindings.covers(p.start, p.done) {
            return Err(StateError::BindProgressNotBound {
                start: p.start,
                done: p.done,
            });
        }
    }
    if state.flush_token > MAX_FLUSH_TOKEN {
        return Err(StateError::BadFlushCounter {
            counter: state.flush_token,
        });
    }
    for (i, rec) in state.flushes.iter().enumerate() {
        let Some(rec) = rec else { continue };
        if rec.token == 0 || rec.token > state.flush_token {
            return Err(StateError::BadFlushToken { token: rec.token });
        }
        let bad = |field, reason| {
            Err(StateError::BadFlushRecord {
                token: rec.token,
                field,
                reason,
            })
        };
        // What H_SCM_FLUSH records: a retry code here would be answered
        // while the record is deleted, and the guest's token lost.
        if rec
            .result
            .is_some_and(|r| r != H_SUCCESS && r != H_HARDWARE)
        {
            return bad("result", "must be H_SUCCESS or H_HARDWARE");
        }
        if rec.injected.is_some_and(is_retry) {
            return bad(
                "injected",
                "must be a final status, not H_BUSY or long-busy",
            );
        }
        if rec.hold > MAX_FAULT_ROUNDS {
            return bad("hold", "at most MAX_FAULT_ROUNDS (1024) long-busy polls");
        }
        if state.flushes[..i]
            .iter()
            .flatten()
            .any(|r| r.token == rec.token)
        {
            return Err(StateError::DuplicateFlushToken { token: rec.token });
        }
    }
    let stray = state.health.bits() & !PAPR_HEALTH_MASK.bits();
    if stray != 0 {
        return Err(StateError::BadHealth { bits: stray });
    }
    state.faults.validate()?;
    // An UNUSABLE connector with an unplug pending has already let its
    // device go (spapr_drc_unplug_request releases at once).
    if state.connector.unplug_requested && state.connector.state == DrcState::Unusable {
        return Err(StateError::BadConnector);
    }
    Ok(())
}

impl<L: LabelStore> Device<L> {
    /// A device built from a validated spec and its label store.
    pub fn new(spec: DeviceSpec, label: L) -> Self {
        Device {
            spec,
            label,
            state: DeviceState::default(),
            connector: Connector::cold_plugged(),
        }
    }

    /// Restores a device from a snapshot taken with [`Device::state`],
    /// refusing a state a later hcall could trip over ([`StateError`]
    /// names the field). Labels are not in the state: they travel with the
    /// label store (the backing file).
    ///
    /// ```
    /// use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner, Profile};
    /// use papr_scm::device::{BindProgress, Ctx, Device, StateError};
    /// use papr_scm::host::NoHost;
    /// use papr_scm::label::SliceLabelStore;
    ///
    /// let spec = Planner::new(MachineConfig::new(2 << 30, 8 << 30, 1))?.plug(&NvdimmConfig::new(
    ///     (1 << 30) + (128 << 10),
    ///     128 << 10,
    ///     parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?,
    /// ))?;
    /// let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    /// let mut dev = Device::new(spec, SliceLabelStore::new(&mut a));
    /// let ctx = Ctx { profile: Profile::Papr, host: &NoHost };
    /// let mut regs = [0u64; 9]; // outputs land in r4.. (regs[0]..)
    /// dev.h_scm_bind_mem(ctx, 0, 2, u64::MAX, 0, &mut regs);
    /// let state = dev.state();
    ///
    /// let restored = Device::from_state(spec, SliceLabelStore::new(&mut b), state).unwrap();
    /// assert_eq!(restored.bindings().runs(), &[(0, 2)]);
    /// // A bind in progress with more blocks done than asked for is refused.
    /// let mut bad = state;
    /// bad.bind_progress = Some(BindProgress { token: 1, start: 0, count: 2, done: 3 });
    /// let mut c = [0u8; 16];
    /// assert!(matches!(
    ///     Device::from_state(spec, SliceLabelStore::new(&mut c), bad),
    ///     Err(StateError::BadBindProgress { .. })
    /// ));
    /// # Ok::<(), papr_scm::config::ConfigError>(())
    /// ```
    pub fn from_state(spec: DeviceSpec, label: L, state: DeviceState) -> Result<Self, StateError> {
        check_state(&spec, &state)?;
        Ok(Device {
            spec,
            label,
            state,
            connector: Connector::from_state(state.connector),
        })
    }

    /// A snapshot of the mutable state (labels live in the label store).
    pub fn state(&self) -> DeviceState {
        DeviceState {
            connector: self.connector.state(),
            ..self.state
        }
    }

    /// Restores a snapshot into this device in place, keeping its label
    /// store (labels travel with the backing file); refused, and nothing
    /// changed, as [`Device::from_state`] refuses.
    pub fn restore(&mut self, state: DeviceState) -> Result<(), StateError> {
        check_state(&self.spec, &state)?;
        self.state = state;
        self.connector = Connector::from_state(state.connector);
        Ok(())
    }

    /// The slot's DR connector.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The slot's DR connector, for the RTAS calls and the life cycle.
    pub fn connector_mut(&mut self) -> &mut Connector {
        &mut self.connector
    }

    /// The validated configuration.
    pub fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    /// The label store.
    pub fn label(&self) -> &L {
        &self.label
    }

    /// The label store, mutably.
    pub fn label_mut(&mut self) -> &mut L {
        &mut self.label
    }

    /// The bound blocks.
    pub fn bindings(&self) -> &Bindings {
        &self.state.bindings
    }

    /// Whether H_SCM_UNBIND_ALL has anything to undo here: bound blocks,
    /// or a bind waiting for its continue token (which it cancels).
    #[inline]
    pub fn has_bind_state(&self) -> bool {
        !self.state.bindings.is_empty() || self.state.bind_progress.is_some()
    }

    /// The injected faults, to change them.
    pub fn faults_mut(&mut self) -> &mut Faults {
        &mut self.state.faults
    }

    /// ORs health bits into what H_SCM_HEALTH reports (`papr` profile).
    pub fn inject_health(&mut self, bits: HealthBits) {
        self.state.health |= bits;
    }

    /// Clears injected health bits.
    pub fn clear_health(&mut self, bits: HealthBits) {
        self.state.health &= !bits;
    }

    /// Marks every block bound, as a guest left it before kexec.
    pub fn bind_all(&mut self) {
        self.state.bindings = Bindings::new();
        self.state.bind_progress = None;
        // Infallible: one run into an empty table.
        let _ = self.state.bindings.insert(0, self.spec.blocks());
    }

    /// The health bitmap H_SCM_HEALTH reports in `profile`.
    #[inline]
    pub fn health(&self, profile: Profile) -> HealthBits {
        let unarmed = if self.spec.unarmed {
            HealthBits::PAPR_PMEM_UNARMED
        } else {
            HealthBits::empty()
        };
        match profile {
            Profile::Qemu => unarmed,
            Profile::Papr => unarmed | self.state.health,
        }
    }

    /// Drops every flush record, telling the executor of each
    /// ([`FlushExecutor::forget_flush`](crate::host::FlushExecutor::forget_flush)):
    /// what QEMU's machine reset does (`spapr_nvdimm_finish_flushes`),
    /// minus the wait, which is the executor's business. Tokens are not
    /// reused; the counter keeps counting, so no later request shares a
    /// token with a dropped one.
    pub fn reset_flushes<H: Host + ?Sized>(&mut self, ctx: Ctx<'_, H>) {
        let slot = self.spec.slot;
        for rec in self.state.flushes.iter_mut() {
            if let Some(r) = rec.take() {
                ctx.host.forget_flush(slot, r.token);
            }
        }
    }

    /// Restores `state` as a machine restore does: the records this device
    /// holds are dropped and the executor told ([`reset_flushes`]); the
    /// flush counter never goes back (a token handed out before the
    /// restore is never handed out again, so an executor's result for it
    /// cannot answer a later request); the bindings that differ are
    /// reported (`unbound` for the runs that go, then `bound` for the runs
    /// that come, so a VMM that maps lazily maps exactly what the guest
    /// has bound); and pending flushes go to the executor again.
    ///
    /// [`reset_flushes`]: Self::reset_flushes
    #[cfg(feature = "alloc")]
    pub(crate) fn restore_in_place<H: Host + ?Sized>(
        &mut self,
        ctx: Ctx<'_, H>,
        mut state: DeviceState,
    ) -> Result<(), StateError> {
        check_state(&self.spec, &state)?;
        self.reset_flushes(ctx);
        state.flush_token = state.flush_token.max(self.state.flush_token);
        if ctx.profile == Profile::Papr {
            let (slot, base) = (self.spec.slot, self.spec.addr);
            let addr = |b: u64| base + b * SCM_BLOCK_SIZE;
            self.state
                .bindings
                .difference(&state.bindings, |s, n| ctx.host.unbound(slot, addr(s), n));
            state.bindings.difference(&self.state.bindings, |s, n| {
                ctx.host.bound(slot, addr(s), n)
            });
        }
        self.state = state;
        self.connector = Connector::from_state(state.connector);
        self.resubmit_flushes(ctx);
        Ok(())
    }

    /// Hands every flush still pending to the host's executor again (after
    /// a restore on another host: QEMU re-submits them in `post_load`), so
    /// the guest's tokens stay valid; one the executor finishes at once
    /// completes now.
    pub fn resubmit_flushes<H: Host + ?Sized>(&mut self, ctx: Ctx<'_, H>) {
        let slot = self.spec.slot;
        for rec in self.state.flushes.iter_mut().flatten() {
            if rec.result.is_some() {
                continue;
            }
            // As at a first start: a result known now is kept, and an
            // injected one still replaces it when the guest collects it.
            if let FlushStatus::Done(ok) = ctx.host.start_flush(slot, rec.token) {
                rec.result = Some(if ok { H_SUCCESS } else { H_HARDWARE });
            }
        }
    }

    /// Flush requests not yet complete.
    pub fn pending_flushes(&self) -> usize {
        self.state
            .flushes
            .iter()
            .flatten()
            .filter(|r| r.result.is_none())
            .count()
    }

    fn block_addr(&self, block: u64) -> u64 {
        // block <= blocks and addr + blocks * 256 MiB was checked at placement.
        self.spec.addr + block * SCM_BLOCK_SIZE
    }

    /// H_SCM_READ_METADATA: `len` label bytes at `offset`, big-endian in r4.
    ///
    /// Always inlined, whatever the store and host types: the caller's
    /// constant `len` then leaves one arm, and the cost of the call does
    /// not depend on how many instantiations a program has (LLVM outlined
    /// it once a second store type appeared, with a jump table over `len`).
    #[inline(always)]
    pub fn h_scm_read_metadata(&self, offset: u64, len: u64, out: &mut impl OutRegs) -> ReturnCode {
        // One arm per access size, so that each range check and load has a
        // constant length (and a caller passing a constant 8, as
        // `Machine::handle` does, keeps only that arm).
        let read = |n: u64| {
            if !self.label_range_ok(offset, n) {
                return Err(H_P2);
            }
            self.label.read_be(offset, n).map_err(|_| H_HARDWARE)
        };
        let value = match len {
            8 => read(8),
            4 => read(4),
            2 => read(2),
            1 => read(1),
            _ => Err(H_P3),
        };
        match value {
            Ok(v) => {
                out.set_r4(v);
                H_SUCCESS
            }
            Err(status) => status,
        }
    }

    /// H_SCM_WRITE_METADATA: store the low `len` bytes of `data` big-endian.
    /// Always inlined, as [`h_scm_read_metadata`](Self::h_scm_read_metadata).
    #[inline(always)]
    pub fn h_scm_write_metadata(&mut self, offset: u64, data: u64, len: u64) -> ReturnCode {
        let fits = |n: u64| {
            if !self.label_range_ok(offset, n) || self.spec.readonly {
                return Err(H_P2);
            }
            // QEMU reports stray high bits as H_P2 although data is r6.
            if n < 8 && data >> (n * 8) != 0 {
                return Err(H_P2);
            }
            Ok(n)
        };
        let n = match len {
            8 => fits(8),
            4 => fits(4),
            2 => fits(2),
            1 => fits(1),
            // QEMU answers H_P4 here but H_P3 for the same fault on read.
            _ => Err(H_P4),
        };
        match n {
            // The error is dropped in its own arm, where the store's
            // variant is known (an in-memory store's OutOfRange owns
            // nothing). Matched with `Err(_)`, the whole `Result` was
            // dropped after the match, and with `std` (`LabelError::Io`
            // owns an `io::Error`) that drop was a call on the success
            // path: 13 instructions and a saved register.
            Ok(n) => match self.label.write_be(offset, data, n) {
                Ok(()) => H_SUCCESS,
                Err(e) => {
                    drop(e);
                    H_HARDWARE
                }
            },
            Err(status) => status,
        }
    }

    #[inline(always)]
    fn label_range_ok(&self, offset: u64, len: u64) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.spec.layout.label_size())
    }

    /// H_SCM_BIND_MEM. Same argument checks in both profiles; `papr` keeps
    /// bind state, answers H_OVERLAP for bound blocks, and may answer H_BUSY
    /// with a continue token (never long-busy: Linux treats it as fatal).
    #[inline]
    pub fn h_scm_bind_mem<H: Host + ?Sized>(
        &mut self,
        ctx: Ctx<'_, H>,
        start: u64,
        count: u64,
        target: u64,
        token: u64,
        out: &mut impl OutRegs,
    ) -> ReturnCode {
        match self.bind_mem_at_once(ctx, start, count, target, token, out) {
            Some(status) => status,
            None => self.bind_mem_steps(ctx, start, count, target, token, out),
        }
    }

    /// H_SCM_BIND_MEM for the request Linux makes at every probe
    /// (`drc_pmem_bind`: the whole device, token 0, any address) into an
    /// empty table with no bind fault armed: one step, H_SUCCESS. So is
    /// every valid QEMU-profile request. `None` for anything else, which
    /// [`bind_mem_steps`](Self::bind_mem_steps) answers (the same for these
    /// too: `test_bind_at_once_answers_as_the_steps`).
    #[inline(always)]
    pub(crate) fn bind_mem_at_once<H: Host + ?Sized>(
        &mut self,
        ctx: Ctx<'_, H>,
        start: u64,
        count: u64,
        target: u64,
        token: u64,
        out: &mut impl OutRegs,
    ) -> Option<ReturnCode> {
        let fresh = token == 0
            && target == BIND_ANY_ADDR
            && start
                .checked_add(count)
                .is_some_and(|end| end <= self.spec.blocks());
        if !fresh {
            return None;
        }
        let addr = self.block_addr(start);
        if ctx.profile == Profile::Qemu {
            out.set_r5(addr);
            out.set_r6(count);
            return Some(H_SUCCESS);
        }
        let faults = &self.state.faults;
        if count == 0
            || !self.state.bindings.is_empty()
            || faults.bind_busy != 0
            || faults.bind_budget.is_some()
        {
            return None;
        }
        self.state.bindings.set_one(start, count);
        ctx.host.bound(self.spec.slot, addr, count);
        self.state.bind_progress = None;
        out.set_r4(0);
        out.set_r5(addr);
        out.set_r6(count);
        Some(H_SUCCESS)
    }

    /// H_SCM_BIND_MEM in full: continue tokens, overlaps, injected faults,
    /// and the errors in QEMU's order.
    #[inline(never)]
    pub(crate) fn bind_mem_steps<H: Host + ?Sized>(
        &mut self,
        ctx: Ctx<'_, H>,
        start: u64,
        count: u64,
        target: u64,
        token: u64,
        out: &mut impl OutRegs,
    ) -> ReturnCode {
        let total = self.spec.blocks();
        let resumed = match (ctx.profile, token) {
            (_, 0) => None,
            (Profile::Papr, t) => match self.state.bind_progress {
                Some(p) if p.token == t && p.start == start && p.count == count => Some(p),
                _ => return H_P5,
            },
            (Profile::Qemu, _) => return H_P5,
        };
        if target != BIND_ANY_ADDR {
            return H_OVERLAP;
        }
        if start > total {
            return H_P2;
        }
        if start.checked_add(count).is_none_or(|end| end > total) {
            return H_P3;
        }
        let addr = self.block_addr(start);
        if ctx.profile == Profile::Qemu {
            out.set_r5(addr);
            out.set_r6(count);
            return H_SUCCESS;
        }
        let mut progress = match resumed {
            Some(p) => p,
            None => {
                if self.state.bindings.intersects(start, count) {
                    return H_OVERLAP;
                }
                BindProgress {
                    token: 0,
                    start,
                    count,
                    done: 0,
                }
            }
        };
        let faults = &mut self.state.faults;
        let step = if faults.bind_busy > 0 {
            faults.bind_busy -= 1;
            0
        } else {
            faults
                .bind_budget
                .unwrap_or(u64::MAX)
                .max(1)
                .min(count - progress.done)
        };
        if step > 0 {
            let first = start + progress.done;
            if self.state.bindings.insert(first, step).is_err() {
                return H_TOO_BIG;
            }
            ctx.host.bound(self.spec.slot, self.block_addr(first), step);
            progress.done += step;
        }
        if progress.done < count || step == 0 && count > 0 {
            // Tokens are never 0 (0 starts a new request).
            self.state.bind_token = self.state.bind_token.wrapping_add(1).max(1);
            progress.token = self.state.bind_token;
            self.state.bind_progress = Some(progress);
            out.set_r4(progress.token);
            out.set_r5(addr);
            out.set_r6(progress.done);
            return H_BUSY;
        }
        self.state.bind_progress = None;
        out.set_r4(0);
        out.set_r5(addr);
        out.set_r6(count);
        H_SUCCESS
    }

    /// H_SCM_UNBIND_MEM: `count` blocks from guest address `addr`.
    pub fn h_scm_unbind_mem<H: Host + ?Sized>(
        &mut self,
        ctx: Ctx<'_, H>,
        addr: u64,
        count: u64,
        token: u64,
        out: &mut impl OutRegs,
    ) -> ReturnCode {
        if token != 0 {
            return H_P4;
        }
        if addr % SCM_BLOCK_SIZE != 0 {
            return H_P2;
        }
        let Some(len) = count.checked_mul(SCM_BLOCK_SIZE).filter(|_| count > 0) else {
            return H_P3;
        };
        // QEMU asserts when addr + len wraps (range_init_nofail); checked here.
        let base = self.spec.addr;
        let inside = addr >= base
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= base + self.spec.data_size());
        if !inside {
            return H_P3;
        }
        if ctx.profile == Profile::Papr {
            let first = (addr - base) / SCM_BLOCK_SIZE;
            let slot = self.spec.slot;
            let dev_base = self.spec.addr;
            let r = self.state.bindings.remove(first, count, |s, n| {
                ctx.host.unbound(slot, dev_base + s * SCM_BLOCK_SIZE, n)
            });
            if r.is_err() {
                return H_TOO_BIG;
            }
            self.state.bind_progress = None;
        }
        out.set_r5(count);
        H_SUCCESS
    }

    /// Unbinds every block (H_SCM_UNBIND_ALL); returns the r5 count: all the
    /// device's blocks in `qemu` (which keeps no state), the blocks really
    /// unbound in `papr`.
    #[inline(always)]
    pub fn unbind_all<H: Host + ?Sized>(&mut self, ctx: Ctx<'_, H>) -> u64 {
        match ctx.profile {
            Profile::Qemu => self.spec.blocks(),
            Profile::Papr => {
                let slot = self.spec.slot;
                let base = self.spec.addr;
                self.state.bind_progress = None;
                self.state
                    .bindings
                    .take_all(|s, n| ctx.host.unbound(slot, base + s * SCM_BLOCK_SIZE, n))
            }
        }
    }

    /// H_SCM_QUERY_BLOCK_MEM_BINDING (`papr`): the address of a bound block.
    #[inline]
    pub fn h_scm_query_block_mem_binding(&self, block: u64, out: &mut impl OutRegs) -> ReturnCode {
        if block >= self.spec.blocks() {
            return H_P2;
        }
        if !self.state.bindings.contains(block) {
            return H_NOT_FOUND;
        }
        out.set_r4(self.block_addr(block));
        H_SUCCESS
    }

    /// The bound block holding guest address `addr`, if any.
    #[inline]
    pub fn block_at(&self, addr: u64) -> Option<u64> {
        let off = addr.checked_sub(self.spec.addr)?;
        if off >= self.spec.data_size() {
            return None;
        }
        let block = off / SCM_BLOCK_SIZE;
        self.state.bindings.contains(block).then_some(block)
    }

    /// H_SCM_HEALTH: r4 the bitmap, r5 the bits this implementation reports.
    #[inline]
    pub fn h_scm_health(&self, profile: Profile, out: &mut impl OutRegs) -> ReturnCode {
        let mask = match profile {
            Profile::Qemu => HealthBits::PAPR_PMEM_UNARMED,
            Profile::Papr => PAPR_HEALTH_MASK,
        };
        out.set_r4(self.health(profile).bits());
        out.set_r5(mask.bits());
        H_SUCCESS
    }

    /// H_SCM_PERFORMANCE_STATS (`papr`): the size query `(0, 0)`, all stats
    /// (request count 0) or the requested ids, in the guest's buffer.
    pub fn h_scm_performance_stats<H: Host + ?Sized>(
        &self,
        ctx: Ctx<'_, H>,
        buf: u64,
        size: u64,
        out: &mut impl OutRegs,
    ) -> ReturnCode {
        // A host without guest memory cannot fill any buffer: say "no
        // statistics" (Linux: quiet, no PMU) instead of a size that every
        // later read fails.
        if !ctx.host.has_memory() {
            return H_UNSUPPORTED;
        }
        match self.state.faults.stats {
            StatsMode::Enabled => {}
            StatsMode::Unsupported => return H_UNSUPPORTED,
            StatsMode::Authority => return H_AUTHORITY,
        }
        if buf == 0 && size == 0 {
            out.set_r4(SCMSTATS_ALL_SIZE);
            return H_SUCCESS;
        }
        if size < SCMSTATS_HEADER_SIZE {
            return H_P3;
        }
        if buf.checked_add(size).is_none() {
            return H_P2;
        }
        let mem = ctx.host;
        let mut hdr = [0u8; SCMSTATS_HEADER_SIZE as usize];
        if mem.read_guest(buf, &mut hdr).is_err() {
            return H_P2;
        }
        if hdr[..8] != SCMSTATS_EYECATCHER || BigEndian::read_u32(&hdr[8..12]) != SCMSTATS_VERSION {
            return H_P2;
        }
        let slot = self.spec.slot;
        let count = u64::from(BigEndian::read_u32(&hdr[12..16]));
        if count == 0 {
            if size < SCMSTATS_ALL_SIZE {
                return H_P3;
            }
            let mut out = [0u8; SCMSTATS_ALL_SIZE as usize];
            out[..8].copy_from_slice(&SCMSTATS_EYECATCHER);
            BigEndian::write_u32(&mut out[8..12], SCMSTATS_VERSION);
            BigEndian::write_u32(&mut out[12..16], STAT_IDS.len() as u32);
            for (entry, id) in out[16..].chunks_exact_mut(16).zip(STAT_IDS.iter()) {
                entry[..8].copy_from_slice(id);
                BigEndian::write_u64(&mut entry[8..], mem.stat(slot, id));
            }
            if mem.write_guest(buf, &out).is_err() {
                return H_P2;
            }
            return H_SUCCESS;
        }
        // The guest chooses the count (up to 2^32 - 1) and the loop below runs
        // with the device locked, so a request for more entries than there are
        // statistics is refused like a buffer that cannot hold the answer:
        // H_P3. Linux asks for one id at a time (or all, count 0).
        if count > STAT_IDS.len() as u64 || request_size(count).is_none_or(|need| need > size) {
            return H_P3;
        }
        // count <= 16 <= (size - 16) / 16, every entry is in the buffer the
        // guest owns; each one costs two small guest-memory accesses.
        for i in 0..count {
            let at = buf + SCMSTATS_HEADER_SIZE + i * SCMSTATS_ENTRY_SIZE;
            let mut id = [0u8; 8];
            if mem.read_guest(at, &mut id).is_err() {
                return H_P2;
            }
            if !is_known_stat(&id) {
                out.set_r4(u64::from_be_bytes(id));
                return H_PARTIAL;
            }
            let value = mem.stat(slot, &id).to_be_bytes();
            if mem.write_guest(at + 8, &value).is_err() {
                return H_P2;
            }
        }
        H_SUCCESS
    }

    /// H_SCM_FLUSH: start a flush (token 0) or poll one (the token the guest
    /// got back in r4).
    pub fn h_scm_flush<H: Host + ?Sized>(
        &mut self,
        ctx: Ctx<'_, H>,
        token: u64,
        out: &mut impl OutRegs,
    ) -> ReturnCode {
        match self.spec.flush {
            FlushMode::None => return H_PARAMETER,
            FlushMode::PmemBacked if token == 0 => return H_UNSUPPORTED,
            _ => {}
        }
        let slot = self.spec.slot;
        let i = if token == 0 {
            let Some(i) = self.state.flushes.iter().position(Option::is_none) else {
                // Bounded, unlike QEMU's lists. Long-busy, not H_BUSY: Linux's
                // papr_scm_pmem_flush re-issues H_BUSY at once (cond_resched
                // only), a tight spin, but sleeps for a long-busy hint and
                // then passes r4 = 0 back, which starts a fresh request. It is
                // also the code QEMU answers every new request with.
                out.set_r4(0);
                return H_LONG_BUSY_ORDER_10_MSEC;
            };
            let Some(t) = self.state.flush_token.checked_add(1) else {
                // QEMU asserts; 2^64 requests cannot happen in practice.
                return H_HARDWARE;
            };
            self.state.flush_token = t;
            // The label area lives in our store: make it durable first.
            let label_ok = self.label.flush().is_ok();
            let exec = ctx.host.start_flush(slot, t);
            let result = match exec {
                FlushStatus::Done(ok) => Some(if ok && label_ok {
                    H_SUCCESS
                } else {
                    H_HARDWARE
                }),
                FlushStatus::Pending if !label_ok => {
                    // Failed already: the record is never polled, so the
                    // executor need not keep its result.
                    ctx.host.forget_flush(slot, t);
                    Some(H_HARDWARE)
                }
                FlushStatus::Pending => None,
            };
            self.state.flushes[i] = Some(FlushRecord {
                token: t,
                result,
                hold: self.state.faults.flush_hold,
                // A request the executor left running is not polled in the
                // call that started it. QEMU answers every new request with
                // long-busy: its worker completes in a bottom half that
                // needs the lock the hcall holds.
                fresh: ctx.profile == Profile::Qemu || result.is_none(),
                injected: self.state.faults.flush_result.take(),
            });
            i
        } else {
            let found = self
                .state
                .flushes
                .iter()
                .position(|r| r.is_some_and(|r| r.token == token));
            match found {
                Some(i) => i,
                None => return H_P2,
            }
        };
        let Some(rec) = self.state.flushes[i].as_mut() else {
            return H_HARDWARE;
        };
        let t = rec.token;
        let order = match ctx.profile {
            Profile::Qemu => H_LONG_BUSY_ORDER_10_MSEC,
            Profile::Papr => self.state.faults.flush_order,
        };
        // Still pending: the token back in r4 and a long-busy hint.
        let pending = |out: &mut _| {
            OutRegs::set_r4(out, t);
            order
        };
        if rec.fresh {
            rec.fresh = false;
            return pending(out);
        }
        if rec.hold > 0 {
            rec.hold -= 1;
            return pending(out);
        }
        let result = match rec.result {
            Some(r) => r,
            None => match ctx.host.poll_flush(slot, t) {
                FlushStatus::Pending => return pending(out),
                FlushStatus::Done(ok) => {
                    if ok {
                        H_SUCCESS
                    } else {
                        H_HARDWARE
                    }
                }
            },
        };
        let result = rec.injected.unwrap_or(result);
        self.state.flushes[i] = None;
        if result == H_HARDWARE && ctx.profile == Profile::Papr {
            // Linux 75b7c05ebf90 expects a flush that failed in hardware
            // (data may not have reached the media) to show as a dirty
            // shutdown in later health results. Only H_HARDWARE means that;
            // it is the only failure a flush can complete with.
            self.state.health |= HealthBits::PAPR_PMEM_SHUTDOWN_DIRTY;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bindings_insert_merge() {
        let mut b = Bindings::new();
        b.insert(4, 2).unwrap();
        b.insert(0, 2).unwrap();
        assert_eq!(b.runs(), &[(0, 2), (4, 2)]);
        b.insert(2, 2).unwrap();
        assert_eq!(b.runs(), &[(0, 6)]);
        b.insert(6, 1).unwrap();
        assert_eq!(b.runs(), &[(0, 7)]);
        b.insert(10, 0).unwrap();
        assert_eq!(b.count(), 7);
        assert!(b.contains(6) && !b.contains(7));
        assert!(b.intersects(6, 10) && !b.intersects(7, 10));
        assert!(!b.intersects(3, 0));
    }

    #[test]
    fn test_bindings_remove_split() {
        let mut b = Bindings::new();
        b.insert(0, 10).unwrap();
        let mut seen = [(0, 0); 4];
        let mut k = 0;
        let n = b
            .remove(3, 2, |s, c| {
                seen[k] = (s, c);
                k += 1;
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(&seen[..k], &[(3, 2)]);
        assert_eq!(b.runs(), &[(0, 3), (5, 5)]);
        assert_eq!(b.remove(0, u64::MAX, |_, _| {}).unwrap(), 8);
        assert_eq!(b.runs(), &[]);
    }

    #[test]
    fn test_bindings_covers() {
        let mut b = Bindings::new();
        b.insert(2, 3).unwrap();
        b.insert(10, 1 << 62).unwrap();
        assert!(b.covers(2, 3) && b.covers(3, 1) && b.covers(10, 1 << 62));
        assert!(!b.covers(2, 4) && !b.covers(1, 2) && !b.covers(9, 2));
        assert!(!b.covers(10, u64::MAX));
        // A restored bind progress of 2^62 done blocks is checked at once.
        let mut st = DeviceState {
            bindings: b,
            ..DeviceState::default()
        };
        st.bind_progress = Some(BindProgress {
            token: 1,
            start: 10,
            count: (1 << 62) + 1,
            done: 1 << 62,
        });
        assert!(check_state_blocks(u64::MAX, &st).is_ok());
        st.bind_progress = Some(BindProgress {
            token: 1,
            start: 4,
            count: 1 << 62,
            done: (1 << 62) - 1,
        });
        assert!(check_state_blocks(u64::MAX, &st).is_err());
    }

    /// A host that records every `bound` call (the fast path must make the
    /// same calls as the full one).
    #[derive(Default)]
    struct Rec(core::cell::RefCell<std::vec::Vec<(u32, u64, u64)>>);
    impl crate::host::GuestMemory for Rec {}
    impl crate::host::FlushExecutor for Rec {}
    impl crate::host::StatsSource for Rec {}
    impl crate::host::EventSignal for Rec {}
    impl crate::host::BindEvents for Rec {
        fn bound(&self, slot: u32, addr: u64, blocks: u64) {
            self.0.borrow_mut().push((slot, addr, blocks));
        }
    }

    fn spec_of(blocks: u64) -> DeviceSpec {
        use crate::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
        let size = blocks * SCM_BLOCK_SIZE;
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let mut p = Planner::new(MachineConfig::new(2 << 30, (2 << 30) + size, 1)).unwrap();
        p.plug(&NvdimmConfig::new(size + (128 << 10), 128 << 10, uuid))
            .unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Wherever the one-step bind answers, the full state machine
        /// answers the same: status, registers, state and host calls.
        #[test]
        fn test_bind_at_once_answers_as_the_steps(
            blocks in 1u64..6,
            bound in proptest::option::weighted(0.3, (0u64..6, 0u64..6)),
            busy in proptest::prop_oneof![3 => proptest::strategy::Just(0u32), 1 => 1u32..3],
            budget in proptest::option::weighted(0.3, 1u64..3),
            progress in proptest::bool::ANY,
            papr in proptest::bool::ANY,
            start in 0u64..7,
            count in proptest::prop_oneof![0u64..7, proptest::strategy::Just(u64::MAX)],
            target in proptest::prop_oneof![3 => proptest::strategy::Just(BIND_ANY_ADDR), 1 => 0u64..2],
            token in proptest::prop_oneof![3 => proptest::strategy::Just(0u64), 1 => 1u64..3],
        ) {
            let spec = spec_of(blocks);
            let mut state = DeviceState::default();
            if let Some((s, n)) = bound {
                if s + n <= blocks {
                    state.bindings.insert(s, n).unwrap();
                }
            }
            state.faults.bind_busy = busy;
            state.faults.bind_budget = budget;
            if progress {
                state.bind_token = 1;
                state.bind_progress = Some(BindProgress { token: 1, start: 0, count: blocks, done: 0 });
            }
            let (mut la, mut lb) = ([0u8; 16], [0u8; 16]);
            let Ok(mut a) = Device::from_state(spec, crate::label::SliceLabelStore::new(&mut la), state) else {
                return Ok(());
            };
            let mut b = Device::from_state(spec, crate::label::SliceLabelStore::new(&mut lb), state).unwrap();
            let profile = if papr { Profile::Papr } else { Profile::Qemu };
            let (ha, hb) = (Rec::default(), Rec::default());
            let (mut ra, mut rb) = ([7u64; 9], [7u64; 9]);
            let fast = a.bind_mem_at_once(Ctx { profile, host: &ha }, start, count, target, token, &mut ra);
            if let Some(status) = fast {
                let full = b.bind_mem_steps(Ctx { profile, host: &hb }, start, count, target, token, &mut rb);
                proptest::prop_assert_eq!(status, full);
                proptest::prop_assert_eq!(ra, rb);
                proptest::prop_assert_eq!(a.state(), b.state());
                proptest::prop_assert_eq!(&*ha.0.borrow(), &*hb.0.borrow());
            } else {
                // Declined: untouched.
                proptest::prop_assert_eq!(ra, [7u64; 9]);
                proptest::prop_assert_eq!(a.state(), state);
            }
        }

        /// `difference` reports exactly the blocks of one table the other
        /// lacks, in order, as runs that neither touch nor overlap.
        #[test]
        fn test_bindings_difference_is_the_set_difference(
            a in proptest::collection::vec((0u64..40, 1u64..8), 0..8),
            b in proptest::collection::vec((0u64..40, 1u64..8), 0..8),
        ) {
            let table = |runs: &[(u64, u64)]| {
                let mut t = Bindings::new();
                for &(s, n) in runs {
                    if !t.intersects(s, n) {
                        let _ = t.insert(s, n);
                    }
                }
                t
            };
            let (ta, tb) = (table(&a), table(&b));
            let set = |t: &Bindings| -> std::collections::BTreeSet<u64> {
                t.runs().iter().flat_map(|&(s, n)| s..s + n).collect()
            };
            let mut got = std::vec::Vec::new();
            ta.difference(&tb, |s, n| got.push((s, n)));
            let blocks: std::collections::BTreeSet<u64> =
                got.iter().flat_map(|&(s, n)| s..s + n).collect();
            proptest::prop_assert_eq!(&blocks, &(&set(&ta) - &set(&tb)));
            proptest::prop_assert!(got.iter().all(|&(_, n)| n > 0));
            proptest::prop_assert!(got.windows(2).all(|w| w[0].0 + w[0].1 < w[1].0));
        }

        /// The cached block count is the sum of the runs after any
        /// sequence of binds and unbinds.
        #[test]
        fn test_bindings_count_is_the_sum_of_the_runs(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..64, 0u64..16), 0..40),
        ) {
            let mut b = Bindings::new();
            for (bind, s, n) in ops {
                if bind {
                    if !b.intersects(s, n) {
                        let _ = b.insert(s, n);
                    }
                } else {
                    let _ = b.remove(s, n, |_, _| {});
                }
                let sum: u64 = b.runs().iter().map(|r| r.1).sum();
                proptest::prop_assert_eq!(b.count(), sum);
            }
        }
    }

    #[test]
    fn test_bindings_full() {
        let mut b = Bindings::new();
        for i in 0..MAX_EXTENTS as u64 {
            b.insert(i * 2, 1).unwrap();
        }
        assert_eq!(b.insert(100, 1), Err(BindingsFull));
        // Filling a gap merges instead of adding a run.
        b.insert(1, 1).unwrap();
        let mut b = Bindings::new();
        b.insert(0, 100).unwrap();
        for i in 1..MAX_EXTENTS as u64 {
            b.remove(i * 4, 1, |_, _| {}).unwrap();
        }
        assert_eq!(b.remove(90, 1, |_, _| {}), Err(BindingsFull));
    }
}
