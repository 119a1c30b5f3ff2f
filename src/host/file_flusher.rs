// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! QEMU's flush executor: `fdatasync` of each device's backing file on a
//! worker thread (`spapr_nvdimm_flush_worker_cb` runs `qemu_fdatasync` in
//! the thread pool), so the vCPU that asked is told "long busy" and polls.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::vec::Vec;

use super::{BindEvents, EventSignal, FlushExecutor, FlushStatus, GuestMemory, StatsSource};
use crate::label::FileLabelStore;

/// Requests a slot keeps at once: the device keeps at most this many
/// flushes too (`device::MAX_FLUSHES`).
const PER_SLOT: usize = crate::device::MAX_FLUSHES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Free,
    Requested(u64),
    Running(u64),
    Done(u64, bool),
}

#[derive(Debug)]
struct Slot {
    file: Option<Arc<File>>,
    entries: [Entry; PER_SLOT],
}

#[derive(Debug)]
struct State {
    slots: Vec<Slot>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the worker (new request, stop) and drainers (work done).
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A [`FlushExecutor`] that `fdatasync`s each slot's backing file on one
/// worker thread, as QEMU does. Requests of a slot that wait together are
/// served by one `fdatasync` (it covers every write before it).
///
/// No heap allocation on the hcall path: requests live in a fixed table of
/// 32 per slot. It has no guest memory and default statistics; wrap it in
/// your own host to add those.
///
/// ```
/// use papr_scm::host::{FileFlusher, FlushExecutor, FlushStatus};
///
/// let f = FileFlusher::new(2);
/// f.attach(0, tempfile::tempfile()?);
/// assert_eq!(f.start_flush(0, 1), FlushStatus::Pending);
/// f.drain(); // what a machine reset does first
/// assert_eq!(f.poll_flush(0, 1), FlushStatus::Done(true));
/// // A slot without a file has nothing to flush.
/// assert_eq!(f.start_flush(1, 1), FlushStatus::Done(true));
/// # Ok::<(), std::io::Error>(())
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
                stop: false,
            }),
            wake: Condvar::new(),
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
    /// from); a slot without one completes its flushes at once.
    pub fn attach(&self, slot: u32, file: File) {
        if let Some(s) = self.shared.lock().slots.get_mut(slot as usize) {
            s.file = Some(Arc::new(file));
        }
    }

    /// Attaches the backing file of a [`FileLabelStore`]: the label and
    /// the data the guest maps are one file, as in QEMU.
    pub fn attach_store(&self, slot: u32, store: &FileLabelStore) -> std::io::Result<()> {
        self.attach(slot, store.file().try_clone()?);
        Ok(())
    }

    /// Forgets `slot`'s file and requests (the device was unplugged).
    pub fn detach(&self, slot: u32) {
        if let Some(s) = self.shared.lock().slots.get_mut(slot as usize) {
            s.file = None;
            s.entries = [Entry::Free; PER_SLOT];
        }
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
        self.shared.wake.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The worker: takes every requested entry of a slot, syncs the file once
/// with the lock released, and records the result for all of them.
fn work(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if st.stop {
            return;
        }
        let job = st.slots.iter_mut().enumerate().find_map(|(i, s)| {
            let mut any = false;
            for e in s.entries.iter_mut() {
                if let Entry::Requested(t) = *e {
                    *e = Entry::Running(t);
                    any = true;
                }
            }
            any.then(|| (i, s.file.clone()))
        });
        let Some((slot, file)) = job else {
            st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        drop(st);
        let ok = file.is_none_or(|f| f.sync_data().is_ok());
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

    fn start_flush(&self, slot: u32, token: u64) -> FlushStatus {
        let mut st = self.shared.lock();
        let Some(s) = st.slots.get_mut(slot as usize) else {
            return FlushStatus::Done(true);
        };
        let Some(file) = s.file.clone() else {
            return FlushStatus::Done(true);
        };
        // A free entry, else one whose result nobody will collect (the
        // device dropped its record at a reset).
        let free = s
            .entries
            .iter()
            .position(|e| *e == Entry::Free)
            .or_else(|| s.entries.iter().position(|e| matches!(e, Entry::Done(..))));
        match free {
            Some(i) => {
                s.entries[i] = Entry::Requested(token);
                drop(st);
                self.shared.wake.notify_all();
                FlushStatus::Pending
            }
            // Every entry is in flight (only after resets that did not
            // drain): flush here rather than fail the guest.
            None => {
                drop(st);
                FlushStatus::Done(file.sync_data().is_ok())
            }
        }
    }

    fn poll_flush(&self, slot: u32, token: u64) -> FlushStatus {
        let mut st = self.shared.lock();
        let Some(s) = st.slots.get_mut(slot as usize) else {
            return FlushStatus::Done(true);
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
        // Not ours (detached, or never started here): nothing to wait for.
        FlushStatus::Done(true)
    }
}

impl GuestMemory for FileFlusher {}
impl BindEvents for FileFlusher {}
impl StatsSource for FileFlusher {}
impl EventSignal for FileFlusher {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_requests_complete_and_free_their_entries() {
        let f = FileFlusher::new(1);
        f.attach(0, tempfile::tempfile().unwrap());
        for round in 0..3u64 {
            for t in 0..PER_SLOT as u64 {
                assert_eq!(f.start_flush(0, round * 100 + t), FlushStatus::Pending);
            }
            f.drain();
            for t in 0..PER_SLOT as u64 {
                assert_eq!(f.poll_flush(0, round * 100 + t), FlushStatus::Done(true));
            }
        }
        // Uncollected results (a reset dropped the records) are reused.
        for t in 0..PER_SLOT as u64 {
            f.start_flush(0, t);
        }
        f.drain();
        assert_eq!(f.start_flush(0, 999), FlushStatus::Pending);
        f.drain();
        assert_eq!(f.poll_flush(0, 999), FlushStatus::Done(true));
        f.detach(0);
        assert_eq!(f.start_flush(0, 1), FlushStatus::Done(true));
        assert_eq!(f.start_flush(7, 1), FlushStatus::Done(true));
    }

    #[test]
    fn test_no_allocation_on_start_and_poll() {
        let f = FileFlusher::new(1);
        f.attach(0, tempfile::tempfile().unwrap());
        // Warm up the worker and the lock.
        f.start_flush(0, 1);
        f.drain();
        f.poll_flush(0, 1);
        let info = allocation_counter::measure(|| {
            for t in 2..20 {
                f.start_flush(0, t);
                f.poll_flush(0, t);
            }
        });
        assert_eq!(info.count_total, 0);
    }
}
