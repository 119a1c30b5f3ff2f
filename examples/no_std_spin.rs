// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A `no_std` VMM's integration: a slot table of its own over a spin lock
//! (`spin::Mutex`, no OS), label areas in static memory, and only the
//! crate's core API (built with `default-features = false`). The example
//! runs as an ordinary program; everything it uses from papr-scm builds for
//! `x86_64-unknown-none` as well.
//!
//! `cargo run --example no_std_spin`

use papr_scm::config::{parse_uuid, ConfigError, MachineConfig, NvdimmConfig, Planner};
use papr_scm::device::Device;
use papr_scm::hcall::{
    H_PARAMETER, H_SCM_BIND_MEM, H_SCM_READ_METADATA, H_SCM_WRITE_METADATA, H_SUCCESS,
};
use papr_scm::label::SliceLabelStore;
use papr_scm::machine::{Machine, SlotTable};

const SLOTS: usize = 2;

/// One spin lock per slot: `Sync` without an OS, and no two slots ever
/// wait on each other.
struct SpinSlots<'a> {
    cells: [spin::Mutex<Option<Device<SliceLabelStore<'a>>>>; SLOTS],
}

impl<'a> SlotTable for SpinSlots<'a> {
    type Label = SliceLabelStore<'a>;

    fn slot_count(&self) -> u32 {
        SLOTS as u32
    }

    fn with_slot<R>(&self, slot: u32, f: impl FnOnce(&mut Device<Self::Label>) -> R) -> Option<R> {
        self.cells.get(slot as usize)?.lock().as_mut().map(f)
    }
}

fn main() -> Result<(), ConfigError> {
    // Static label memory, as a bare-metal VMM would reserve it.
    static LABEL0: spin::Mutex<[u8; 128 * 1024]> = spin::Mutex::new([0; 128 * 1024]);
    let mut label0 = LABEL0.lock();

    let config = MachineConfig::new(2 << 30, 8 << 30, SLOTS as u32);
    let mut planner = Planner::new(config)?;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
    let spec = planner.plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))?;
    let slots = SpinSlots {
        cells: [
            spin::Mutex::new(Some(Device::new(
                spec,
                SliceLabelStore::new(&mut label0[..]),
            ))),
            spin::Mutex::new(None),
        ],
    };
    let machine = Machine::new(&config, slots);

    let mut regs = [0x9000_0000, 0, 4, u64::MAX, 0, 0, 0, 0, 0];
    assert_eq!(machine.handle(H_SCM_BIND_MEM, &mut regs), Some(H_SUCCESS));
    let mut regs = [0x9000_0000, 0x100, 0xC0FFEE, 4, 0, 0, 0, 0, 0];
    assert_eq!(
        machine.handle(H_SCM_WRITE_METADATA, &mut regs),
        Some(H_SUCCESS)
    );
    let mut regs = [0x9000_0000, 0x100, 4, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        machine.handle(H_SCM_READ_METADATA, &mut regs),
        Some(H_SUCCESS)
    );
    assert_eq!(regs[0], 0xC0FFEE);
    // The empty slot answers H_PARAMETER, as QEMU does.
    let mut regs = [0x9000_0001, 0, 4, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        machine.handle(H_SCM_READ_METADATA, &mut regs),
        Some(H_PARAMETER)
    );
    println!("bound drc 0x90000000, label word 0xc0ffee written and read back under a spin lock");
    Ok(())
}
