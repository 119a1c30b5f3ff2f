// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! QEMU's flush executor: `fdatasync` of each device's backing file on a
//! worker thread (`spapr_nvdimm_flush_worker_cb` runs `qemu_fdatasync` in
//! the thread pool), so the vCPU that asked is told "long busy" and polls.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::vec::Vec;

use thiserror::Error;

use super::{BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, StatsSource};
use crate::label::FileLabelStore;

/// Requests a slot keeps at once: the device keeps at most this many
/// flushes too (`device::MAX_FLUSHES`), and tells the executor of every
/// record it drops (`FlushExecutor::forget_flush`), so a slot never needs
/// more.
const PER_SLOT: usize = crate::device::MAX_FLUSHES;

/// A file the flusher cannot take.
#[derive(Debug, Error)]
pub enum FlusherError {
    /// The slot is past the table [`FileFlusher::new`] was made with: its
    /// flushes would complete with nothing synced.
    #[error("slot {slot}: past the FileFlusher's {slots} slots (FileFlusher::new(slots))")]
    SlotOutOfRange {
        /// The slot.
        slot: u32,
        /// The flusher's slot count.
        slots: u32,
    },
    /// The backing file could not be shared with the worker.
    #[error("backing file: {0}")]
    Io(#[from] std::io::Error),
}

/// One request of a slot, by the machine's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Free,
    Requested(u64),
    Running(u64),
    Done(u64, bool),
}

impl Entry {
    fn token(self) -> Option<u64> {
        match self {
            Entry::Free => None,
            Entry::Requested(t) | Entry::Running(t) | Entry::Done(t, _) => Some(t),
        }
    }
}

#[derive(Debug)]
struct Slot {
    file: Option<Arc<File>>,
    entries: [Entry; PER_SLOT],
}

#[derive(Debug)]
struct State {
    slots: Vec<Slot>,
    /// The slot the worker looks at first: the one after the last it
    /// served, so every busy slot is served in turn.
    next: usize,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the worker (new request, stop) and drainers (work done).
    wake: Condvar,
    #[cfg(test)]
    hooks: tests::Hooks,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `fdatasync` of `file`: true if the data is on stable storage.
    fn sync(&self, file: &File) -> bool {
        #[cfg(test)]
        if self.hooks.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        file.sync_data().is_ok()
    }
}

/// A [`FlushExecutor`] that `fdatasync`s each slot's backing file on one
/// worker thread, as QEMU does. Requests of a slot that wait together are
/// served by one `fdatasync` (it covers every write before it); busy slots
/// are served in turn, so a guest that keeps one device busy cannot hold
/// back another's flush by more than one sync.
///
/// Results are kept by `(slot, token)` until the guest collects them or
/// the machine forgets them ([`FlushExecutor::forget_flush`], at a reset,
/// release or restore), so one request is never answered with another's
/// result; a token it does not hold polls as failed, since nothing proves
/// its data durable.
///
/// No heap allocation on the hcall path: requests live in a fixed table of
/// 32 per slot. It has no guest memory and default statistics; wrap it in
/// your own host to add those.
///
/// ```
/// use papr_scm::host::{FileFlusher, FlushExecutor, FlushStatus};
///
/// let f = FileFlusher::new(2);
/// f.attach(0, tempfile::tempfile()?)?;
/// assert_eq!(f.start_flush(0, 1), FlushStatus::Pending);
/// f.drain(); // what a machine reset does first
/// assert_eq!(f.poll_flush(0, 1), FlushStatus::Done(true));
/// // A slot without a file has nothing to flush.
/// assert_eq!(f.start_flush(1, 1), FlushStatus::Done(true));
/// // A slot past the table is refused, not ignored.
/// assert!(f.attach(2, tempfile::tempfile()?).is_err());
/// assert!(!f.flushes_slot(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileFlusher {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl FileFlusher {
    /// An executor for `slots` slots with its worker thread started.
    pub fn new(slots: u32) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots: (0..slots)
                    .map(|_| Slot {
                        file: None,
                        entries: [Entry::Free; PER_SLOT],
                    })
                    .collect(),
                next: 0,
                stop: false,
            }),
            wake: Condvar::new(),
            #[cfg(test)]
            hooks: tests::Hooks::default(),
        });
        let s = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("papr-scm-flush".into())
            .spawn(move || work(&s))
            .expect("spawning the flush worker");
        FileFlusher {
            shared,
            worker: Some(worker),
        }
    }

    /// The backing file of `slot` (the one the guest's data is mapped
    /// from); a slot without one completes its flushes at once. A slot
    /// past the table is refused.
    pub fn attach(&self, slot: u32, file: File) -> Result<(), FlusherError> {
        let mut st = self.shared.lock();
        let slots = u32::try_from(st.slots.len()).unwrap_or(u32::MAX);
        let s = st
            .slots
            .get_mut(slot as usize)
            .ok_or(FlusherError::SlotOutOfRange { slot, slots })?;
        s.file = Some(Arc::new(file));
        Ok(())
    }

    /// Attaches the backing file of a [`FileLabelStore`]: the label and
    /// the data the guest maps are one file, as in QEMU.
    pub fn attach_store(&self, slot: u32, store: &FileLabelStore) -> Result<(), FlusherError> {
        self.attach(slot, store.file().try_clone()?)
    }

    /// Forgets `slot`'s file and requests (the device was unplugged).
    pub fn detach(&self, slot: u32) {
        if let Some(s) = self.shared.lock().slots.get_mut(slot as usize) {
            s.file = None;
            s.entries = [Entry::Free; PER_SLOT];
        }
        self.shared.wake.notify_all();
    }

    /// Waits until no request is queued or running: what QEMU does before a
    /// machine reset (`spapr_nvdimm_finish_flushes`).
    pub fn drain(&self) {
        let mut st = self.shared.lock();
        while st.slots.iter().any(|s| {
            s.entries
                .iter()
                .any(|e| matches!(e, Entry::Requested(_) | Entry::Running(_)))
        }) {
            st = self.shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for FileFlusher {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        #[cfg(test)]
        self.shared.hooks.release();
        self.shared.wake.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The next slot with requests, starting after the last one served: marks
/// its requests running and returns the slot and its file.
fn next_job(st: &mut State) -> Option<(usize, Option<Arc<File>>)> {
    let n = st.slots.len();
    for k in 0..n {
        let i = (st.next + k) % n;
        let s = &mut st.slots[i];
        let mut any = false;
        for e in s.entries.iter_mut() {
            if let Entry::Requested(t) = *e {
                *e = Entry::Running(t);
                any = true;
            }
        }
        if any {
            st.next = (i + 1) % n;
            return Some((i, s.file.clone()));
        }
    }
    None
}

/// The worker: takes every requested entry of the next busy slot, syncs
/// the file once with the lock released, and records the result for all
/// of them (an entry forgotten meanwhile is not brought back).
fn work(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if st.stop {
            return;
        }
        let Some((slot, file)) = next_job(&mut st) else {
            st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        drop(st);
        #[cfg(test)]
        shared.hooks.before_sync();
        let ok = file.is_none_or(|f| shared.sync(&f));
        #[cfg(test)]
        shared.hooks.synced(slot);
        st = shared.lock();
        if let Some(s) = st.slots.get_mut(slot) {
            for e in s.entries.iter_mut() {
                if let Entry::Running(t) = *e {
                    *e = Entry::Done(t, ok);
                }
            }
        }
        shared.wake.notify_all();
    }
}

impl FlushExecutor for FileFlusher {
    fn flushes_data(&self) -> bool {
        true
    }

    fn flushes_slot(&self, slot: u32) -> bool {
        (slot as usize) < self.shared.lock().slots.len()
    }

    fn start_flush(&self, slot: u32, token: u64) -> FlushStatus {
        let mut st = self.shared.lock();
        let Some(s) = st.slots.get_mut(slot as usize) else {
            // Never for a machine that asked `flushes_slot`; nothing here
            // makes the data durable.
            return FlushStatus::Done(false);
        };
        let Some(file) = s.file.clone() else {
            return FlushStatus::Done(true);
        };
        // The token's own entry (a request re-submitted after a restore
        // starts a sync of its own), else a free one. A result nobody has
        // collected is never taken over: the machine forgets the ones it
        // drops, so any still here may be polled.
        let at = s
            .entries
            .iter()
            .position(|e| e.token() == Some(token))
            .or_else(|| s.entries.iter().position(|e| *e == Entry::Free));
        match at {
            Some(i) => {
                s.entries[i] = Entry::Requested(token);
                drop(st);
                self.shared.wake.notify_all();
                FlushStatus::Pending
            }
            // Every entry is in flight (an executor shared beyond one
            // machine): flush here rather than fail the guest.
            None => {
                drop(st);
                FlushStatus::Done(self.shared.sync(&file))
            }
        }
    }

    fn poll_flush(&self, slot: u32, token: u64) -> FlushStatus {
        let mut st = self.shared.lock();
        let Some(s) = st.slots.get_mut(slot as usize) else {
            return FlushStatus::Done(false);
        };
        for e in s.entries.iter_mut() {
            match *e {
                Entry::Done(t, ok) if t == token => {
                    *e = Entry::Free;
                    return FlushStatus::Done(ok);
                }
                Entry::Requested(t) | Entry::Running(t) if t == token => {
                    return FlushStatus::Pending
                }
                _ => {}
            }
        }
        // Not ours (forgotten, detached, or never started here): nothing
        // says its data reached stable storage.
        FlushStatus::Done(false)
    }

    fn forget_flush(&self, slot: u32, token: u64) {
        let mut st = self.shared.lock();
        if let Some(s) = st.slots.get_mut(slot as usize) {
            for e in s.entries.iter_mut() {
                if e.token() == Some(token) {
                    *e = Entry::Free;
                }
            }
        }
        drop(st);
        // A drainer may be waiting on the request just forgotten.
        self.shared.wake.notify_all();
    }
}

impl GuestMemory for FileFlusher {}
impl BindEvents for FileFlusher {}
impl StatsSource for FileFlusher {}
impl EventSignal for FileFlusher {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// Test controls of the worker: how many syncs it may start, which
    /// slots it synced, and a backend that fails.
    #[derive(Debug, Default)]
    pub(super) struct Hooks {
        /// `None`: sync freely; `Some(n)`: `n` more syncs, then wait.
        permits: Mutex<Option<u32>>,
        cv: Condvar,
        /// The slots synced, in order.
        log: Mutex<Vec<usize>>,
        pub(super) fail: AtomicBool,
        /// Each sync takes this long (a disk's `fdatasync` does).
        delay_us: std::sync::atomic::AtomicU64,
    }

    impl Hooks {
        pub(super) fn before_sync(&self) {
            let mut p = self.permits.lock().unwrap();
            while *p == Some(0) {
                p = self.cv.wait(p).unwrap();
            }
            if let Some(n) = p.as_mut() {
                *n -= 1;
            }
            drop(p);
            let us = self.delay_us.load(Ordering::SeqCst);
            if us > 0 {
                std::thread::sleep(Duration::from_micros(us));
            }
        }

        pub(super) fn synced(&self, slot: usize) {
            self.log.lock().unwrap().push(slot);
            self.cv.notify_all();
        }

        pub(super) fn release(&self) {
            *self.permits.lock().unwrap() = None;
            self.cv.notify_all();
        }

        fn permit(&self, n: Option<u32>) {
            *self.permits.lock().unwrap() = n;
            self.cv.notify_all();
        }

        fn log(&self) -> Vec<usize> {
            self.log.lock().unwrap().clone()
        }

        /// Waits until `n` syncs are logged.
        fn wait_synced(&self, n: usize) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut log = self.log.lock().unwrap();
            while log.len() < n {
                assert!(Instant::now() < deadline, "the worker never synced");
                log = self
                    .cv
                    .wait_timeout(log, Duration::from_millis(10))
                    .unwrap()
                    .0;
            }
        }
    }

    fn hooks(f: &FileFlusher) -> &Hooks {
        &f.shared.hooks
    }

    /// Waits until the worker has taken every request (none `Requested`).
    fn wait_taken(f: &FileFlusher) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while f
            .shared
            .lock()
            .slots
            .iter()
            .any(|s| s.entries.iter().any(|e| matches!(e, Entry::Requested(_))))
        {
            assert!(
                Instant::now() < deadline,
                "the worker never took the requests"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn test_requests_complete_and_free_their_entries() {
        let f = FileFlusher::new(1);
        f.attach(0, tempfile::tempfile().unwrap()).unwrap();
        for round in 0..3u64 {
            for t in 0..PER_SLOT as u64 {
                assert_eq!(f.start_flush(0, round * 100 + t), FlushStatus::Pending);
            }
            f.drain();
            for t in 0..PER_SLOT as u64 {
                assert_eq!(f.poll_flush(0, round * 100 + t), FlushStatus::Done(true));
            }
        }
        // Results nobody collected are kept (the machine forgets the ones
        // it drops): a full table flushes at once instead.
        for t in 1..=PER_SLOT as u64 {
            f.start_flush(0, t);
        }
        f.drain();
        assert_eq!(f.start_flush(0, 999), FlushStatus::Done(true));
        assert_eq!(f.poll_flush(0, 1), FlushStatus::Done(true));
        // Forgotten results free their entries.
        for t in 2..=PER_SLOT as u64 {
            f.forget_flush(0, t);
        }
        assert_eq!(f.poll_flush(0, 2), FlushStatus::Done(false), "forgotten");
        assert_eq!(f.start_flush(0, 1000), FlushStatus::Pending);
        f.drain();
        assert_eq!(f.poll_flush(0, 1000), FlushStatus::Done(true));
        f.detach(0);
        assert_eq!(f.start_flush(0, 1), FlushStatus::Done(true));
        assert_eq!(f.start_flush(7, 1), FlushStatus::Done(false));
    }

    #[test]
    fn test_no_allocation_on_start_and_poll() {
        let f = FileFlusher::new(1);
        f.attach(0, tempfile::tempfile().unwrap()).unwrap();
        // Warm up the worker and the lock.
        f.start_flush(0, 1);
        f.drain();
        f.poll_flush(0, 1);
        let info = allocation_counter::measure(|| {
            for t in 2..20 {
                f.start_flush(0, t);
                f.poll_flush(0, t);
                f.forget_flush(0, t);
            }
        });
        assert_eq!(info.count_total, 0);
    }

    /// Issue 23, defect 4: with every entry holding a result (a reset or a
    /// restore that did not tell the executor), a new request once took
    /// over the first finished entry; the next request then took over
    /// *its* entry, and the first one polled as "not ours, done": a sync
    /// that failed answered success.
    #[test]
    fn test_a_result_nobody_collected_is_never_taken_over() {
        let f = FileFlusher::new(1);
        f.attach(0, tempfile::tempfile().unwrap()).unwrap();
        for t in 1..=PER_SLOT as u64 {
            assert_eq!(f.start_flush(0, t), FlushStatus::Pending);
        }
        f.drain();
        hooks(&f).fail.store(true, Ordering::SeqCst);
        let a = f.start_flush(0, 100);
        f.drain();
        let b = f.start_flush(0, 101);
        f.drain();
        let a = match a {
            FlushStatus::Pending => f.poll_flush(0, 100),
            done => done,
        };
        assert_eq!(
            a,
            FlushStatus::Done(false),
            "a failed sync answered success"
        );
        let b = match b {
            FlushStatus::Pending => f.poll_flush(0, 101),
            done => done,
        };
        assert_eq!(b, FlushStatus::Done(false));
        // The results nobody took over are still there for their tokens.
        assert_eq!(f.poll_flush(0, 1), FlushStatus::Done(true));
    }

    /// A re-submitted token (a restore on the same host) starts a sync of
    /// its own: the result of the sync that ran before does not answer it.
    #[test]
    fn test_a_resubmitted_token_waits_for_its_own_sync() {
        let f = FileFlusher::new(1);
        f.attach(0, tempfile::tempfile().unwrap()).unwrap();
        assert_eq!(f.start_flush(0, 5), FlushStatus::Pending);
        f.drain();
        hooks(&f).permit(Some(0));
        assert_eq!(f.start_flush(0, 5), FlushStatus::Pending);
        assert_eq!(f.poll_flush(0, 5), FlushStatus::Pending);
        hooks(&f).permit(None);
        f.drain();
        assert_eq!(f.poll_flush(0, 5), FlushStatus::Done(true));
        assert_eq!(hooks(&f).log(), [0, 0]);
    }

    /// Issue 23, defect 6: the worker served the lowest busy slot first,
    /// so a guest that kept slot 0 busy held slot 1's flush back for as
    /// long as it liked. Slots are served in turn: with slot 0's sync
    /// running and slot 0 asking again, slot 1 is next.
    #[test]
    fn test_busy_slots_are_served_in_turn() {
        let f = FileFlusher::new(3);
        for s in 0..3 {
            f.attach(s, tempfile::tempfile().unwrap()).unwrap();
        }
        let h = hooks(&f);
        h.permit(Some(0));
        f.start_flush(0, 1);
        // The worker takes slot 0's request and waits for a permit.
        wait_taken(&f);
        f.start_flush(1, 1);
        f.start_flush(0, 2);
        f.start_flush(2, 1);
        h.permit(Some(2));
        h.wait_synced(2);
        assert_eq!(
            h.log(),
            [0, 1],
            "slot 1 waited behind slot 0's second request"
        );
        h.permit(Some(2));
        h.wait_synced(4);
        assert_eq!(h.log(), [0, 1, 2, 0]);
        h.permit(None);
        f.drain();
    }

    /// The stress form of the same: one thread keeps slot 0 busy without
    /// pause while slot 1 flushes 50 times; each of slot 1's requests
    /// waits for at most two of slot 0's syncs (the one running and the
    /// one taken with it), however the threads interleave.
    #[test]
    fn test_a_busy_slot_cannot_starve_another() {
        let f = Arc::new(FileFlusher::new(2));
        for s in 0..2 {
            f.attach(s, tempfile::tempfile().unwrap()).unwrap();
        }
        hooks(&f).delay_us.store(200, Ordering::SeqCst);
        let stop = Arc::new(AtomicBool::new(false));
        let hammer = {
            let (f, stop) = (Arc::clone(&f), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Eight requests in flight: slot 0 always has one waiting.
                let mut flight = std::collections::VecDeque::new();
                let mut t = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    if flight.len() < 8 {
                        f.start_flush(0, t);
                        flight.push_back(t);
                        t += 1;
                    } else if f.poll_flush(0, flight[0]) != FlushStatus::Pending {
                        flight.pop_front();
                    } else {
                        std::thread::yield_now();
                    }
                }
            })
        };
        // Slot 0 busy first.
        hooks(&f).wait_synced(20);
        for t in 1..=50u64 {
            let before = hooks(&f).log().len();
            assert_eq!(f.start_flush(1, t), FlushStatus::Pending);
            while f.poll_flush(1, t) == FlushStatus::Pending {
                std::thread::yield_now();
            }
            let log = hooks(&f).log();
            let zeros = log[before..].iter().take_while(|&&s| s == 0).count();
            assert!(
                zeros <= 2,
                "request {t} of slot 1 waited for {zeros} syncs of slot 0"
            );
        }
        stop.store(true, Ordering::Relaxed);
        hammer.join().unwrap();
    }

    type FlushMachine = crate::machine::Machine<
        crate::machine::SharedSlots<crate::label::VecLabelStore>,
        FileFlusher,
    >;

    /// A papr machine with one spapr-nvdimm (it needs H_SCM_FLUSH) in slot
    /// 0, over a flusher with a file attached there.
    fn flush_machine() -> FlushMachine {
        use crate::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Profile};
        let mut cfg = MachineConfig::new(2 << 30, 8 << 30, 2);
        cfg.profile = Profile::Papr;
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let mut dev = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
        dev.kind = DeviceKind::SpaprNvdimm;
        let m = crate::machine::Machine::from_config(&cfg, &[dev], FileFlusher::new(2)).unwrap();
        m.host().attach(0, tempfile::tempfile().unwrap()).unwrap();
        m
    }

    /// Polls `token` as Linux does until it is no longer long-busy.
    fn collect(m: &FlushMachine, token: u64) -> crate::hcall::ReturnCode {
        for _ in 0..1000 {
            let o = m.h_scm_flush(0x9000_0000, token);
            if !o.status.is_long_busy() {
                return o.status;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("flush {token} never completed");
    }

    /// Issue 23, defect 4, through the machine: a reset dropped 32
    /// records the executor was never told of; then a flush whose sync
    /// failed had its result taken over by the next request and polled as
    /// "not ours": H_SUCCESS, and no SHUTDOWN_DIRTY.
    #[test]
    fn test_a_failed_sync_after_a_reset_answers_h_hardware() {
        use crate::hcall::{HealthBits, H_HARDWARE};
        let m = flush_machine();
        for _ in 0..PER_SLOT {
            assert!(m.h_scm_flush(0x9000_0000, 0).status.is_long_busy());
        }
        m.host().drain();
        m.reset(&mut crate::rtas_error_log::EventQueue::new(), |_| {});
        hooks(m.host()).fail.store(true, Ordering::SeqCst);
        let a = m.h_scm_flush(0x9000_0000, 0).out.r4.unwrap();
        m.host().drain();
        let b = m.h_scm_flush(0x9000_0000, 0).out.r4.unwrap();
        assert_eq!(collect(&m, a), H_HARDWARE, "a failed sync answered success");
        assert_eq!(collect(&m, b), H_HARDWARE);
        let dirty = HealthBits::PAPR_PMEM_SHUTDOWN_DIRTY.bits();
        assert_eq!(m.h_scm_health(0x9000_0000).out.r4, Some(dirty));
    }

    /// Issue 23, defect 5: restoring an earlier snapshot on the same
    /// machine handed out a token again, and the executor answered the new
    /// request from the old request's result before its own sync ran.
    #[test]
    fn test_a_restore_never_lets_an_old_result_answer_a_new_request() {
        use crate::rtas_error_log::EventQueue;
        let m = flush_machine();
        let early = m.state(&EventQueue::new());
        let old = m.h_scm_flush(0x9000_0000, 0).out.r4.unwrap();
        m.host().drain();
        m.restore(&early, &mut EventQueue::new()).unwrap();
        // No sync may run from here: a request can only be pending.
        let h = hooks(m.host());
        h.permit(Some(0));
        let synced = h.log().len();
        let new = m.h_scm_flush(0x9000_0000, 0).out.r4.unwrap();
        assert_ne!(new, old, "a token handed out before the restore came again");
        for _ in 0..3 {
            let o = m.h_scm_flush(0x9000_0000, new);
            assert!(
                o.status.is_long_busy(),
                "answered {} before its sync ran",
                o.status
            );
        }
        assert_eq!(h.log().len(), synced);
        h.permit(None);
        assert_eq!(collect(&m, new), crate::hcall::H_SUCCESS);
    }

    /// Issue 23, defect 9, at the machine: a device that needs H_SCM_FLUSH
    /// in a slot past the flusher's table is refused at build and at plug.
    #[test]
    fn test_a_machine_refuses_a_slot_its_flusher_cannot_serve() {
        use crate::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig, Planner};
        use crate::machine::{BuildError, Machine, PlugError};
        let cfg = MachineConfig::new(2 << 30, 8 << 30, 2);
        let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e").unwrap();
        let mut dev = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
        dev.kind = DeviceKind::SpaprNvdimm;
        let e = Machine::from_config(&cfg, &[dev, dev], FileFlusher::new(1)).err();
        assert!(
            matches!(e, Some(BuildError::NoFlushExecutor { slot: 1 })),
            "{e:?}"
        );
        let m = Machine::from_config(&cfg, &[dev], FileFlusher::new(1)).unwrap();
        let mut p = Planner::new(cfg).unwrap();
        p.plug(&dev).unwrap();
        let spec = p.plug(&dev).unwrap();
        let d = crate::device::Device::new(spec, crate::label::VecLabelStore::new(128 << 10));
        let mut q = crate::rtas_error_log::EventQueue::new();
        let e = m.plug(d, &mut q).unwrap_err();
        assert!(
            matches!(e, PlugError::NoFlushExecutor { slot: 1, .. }),
            "{e}"
        );
        assert!(q.is_empty());
    }

    /// Issue 23, defect 9: a slot past the table was ignored, and its
    /// flushes completed with no sync while `flushes_data` said true.
    #[test]
    fn test_a_slot_past_the_table_is_refused() {
        let f = FileFlusher::new(2);
        assert!(matches!(
            f.attach(2, tempfile::tempfile().unwrap()),
            Err(FlusherError::SlotOutOfRange { slot: 2, slots: 2 })
        ));
        assert!(f.flushes_slot(1) && !f.flushes_slot(2));
        assert_eq!(f.start_flush(2, 1), FlushStatus::Done(false));
    }
}
