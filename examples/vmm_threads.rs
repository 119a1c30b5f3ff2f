// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A multi-threaded VMM's SCM side: one shared `Machine` (SharedSlots, one
//! lock per slot), file-backed labels in QEMU's layout, the stock
//! `FileFlusher` (fdatasync on a worker thread), and vCPU threads that hand
//! every `KVM_EXIT_PAPR_HCALL` to `Machine::handle`.
//!
//! `cargo run --example vmm_threads`

use std::sync::Arc;

use papr_scm::config::{parse_uuid, DeviceKind, MachineConfig, NvdimmConfig};
use papr_scm::hcall::*;
use papr_scm::host::FileFlusher;
use papr_scm::label::FileLabelStore;
use papr_scm::machine::{Machine, SharedSlots};
use papr_scm::rtas_error_log::EventQueue;

/// `struct kvm_run`'s `papr_hcall` member (linux/kvm.h), filled by KVM on a
/// `KVM_EXIT_PAPR_HCALL` exit: `nr` is r3 (the opcode), `args` r4..r12;
/// the VMM writes the status to `ret` and KVM puts it in r3 and the
/// outputs (written back into `args`) in r4.. when the vCPU resumes.
#[repr(C)]
struct KvmPaprHcall {
    nr: u64,
    ret: u64,
    args: [u64; 9],
}

type Vmm = Machine<SharedSlots<FileLabelStore>, FileFlusher>;

/// What a vCPU thread does with the exit (the rest of the VMM's hcalls go
/// to its other handlers).
fn on_papr_hcall(machine: &Vmm, run: &mut KvmPaprHcall) {
    match machine.handle(run.nr, &mut run.args) {
        Some(status) => run.ret = status.to_reg(),
        None => run.ret = H_FUNCTION.to_reg(), // not SCM: the VMM's other hcalls
    }
}

/// A guest's H_SCM_FLUSH loop as Linux's papr_scm_pmem_flush runs it.
fn guest_flush(machine: &Vmm, drc: u64) -> ReturnCode {
    let mut token = 0;
    loop {
        let mut run = KvmPaprHcall {
            nr: H_SCM_FLUSH,
            ret: 0,
            args: [drc, token, 0, 0, 0, 0, 0, 0, 0],
        };
        on_papr_hcall(machine, &mut run);
        let rc = ReturnCode::from_reg(run.ret);
        token = run.args[0];
        if rc.is_long_busy() {
            std::thread::sleep(std::time::Duration::from_millis(rc.long_busy_msecs()));
        } else if rc != H_BUSY {
            return rc;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = MachineConfig::new(2 << 30, 8 << 30, 4);
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
    let plain = NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid);
    let mut flushing = NvdimmConfig::new((256 << 20) + (128 << 10), 128 << 10, uuid);
    flushing.kind = DeviceKind::SpaprNvdimm;

    let machine: Arc<Vmm> = Arc::new(Machine::from_config_with(
        &config,
        &[plain, flushing],
        FileFlusher::new(config.slots),
        |spec| FileLabelStore::for_spec(&dir.path().join(format!("nvdimm{}.img", spec.slot)), spec),
    )?);
    for slot in 0..config.slots {
        machine
            .with_device(slot, |d| machine.host().attach_store(slot, d.label()))
            .transpose()?;
    }

    // Before the vCPU threads start: a vCPU that waits for a busy slot
    // then allocates nothing either (parking_lot's table of waiters).
    SharedSlots::<FileLabelStore>::reserve_waiters(4);

    // Four vCPUs, two per device: bind, write and read back a label word,
    // flush (the spapr-nvdimm), in parallel.
    let vcpus: Vec<_> = (0..4u64)
        .map(|cpu| {
            let m = Arc::clone(&machine);
            std::thread::spawn(move || {
                let drc = 0x9000_0000 + cpu % 2;
                let mut run = KvmPaprHcall { nr: H_SCM_BIND_MEM, ret: 0, args: [drc, 0, 1, u64::MAX, 0, 0, 0, 0, 0] };
                on_papr_hcall(&m, &mut run);
                let bind = ReturnCode::from_reg(run.ret);
                assert!(bind == H_SUCCESS || bind == H_OVERLAP, "{bind}");
                let off = cpu * 8;
                let word = 0x5043_5055_0000_0000 | cpu;
                let mut run = KvmPaprHcall { nr: H_SCM_WRITE_METADATA, ret: 0, args: [drc, off, word, 8, 0, 0, 0, 0, 0] };
                on_papr_hcall(&m, &mut run);
                assert_eq!(ReturnCode::from_reg(run.ret), H_SUCCESS);
                let mut run = KvmPaprHcall { nr: H_SCM_READ_METADATA, ret: 0, args: [drc, off, 8, 0, 0, 0, 0, 0, 0] };
                on_papr_hcall(&m, &mut run);
                assert_eq!(run.args[0], word);
                let flush = guest_flush(&m, drc);
                println!("vcpu {cpu}: drc {drc:#x} bind {bind}, label word {word:#x} read back, flush {flush}");
            })
        })
        .collect();
    for v in vcpus {
        v.join().map_err(|_| "a vCPU thread panicked")?;
    }
    // Before a reset, QEMU drains the flush workers; so does this VMM.
    machine.host().drain();
    // A guest reboot: nothing bound, no flush or event left for the new
    // boot (a kexec calls nothing and keeps the bindings).
    machine.reset(&mut EventQueue::new(), |_| {});
    println!("reset: flushes drained, bindings released, labels synced");
    Ok(())
}
