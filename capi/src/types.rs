// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The C types of the ABI: results, the constant sets, the configuration
//! structs, the callbacks and the RTAS effect. Every enum a C caller fills
//! in travels as a `uint32_t` (or narrower) field and is checked: a Rust
//! enum read from an out-of-range C value would be undefined behaviour.

use core::ffi::{c_int, c_void};

/// The result of every fallible call (`uint32_t` in C).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_result {
    /// Success.
    PAPR_SCM_OK = 0,
    /// A pointer argument was NULL (or misaligned for its type).
    PAPR_SCM_NULL_PARAMETER = 1,
    /// A length, slot or enum value out of range.
    PAPR_SCM_INVALID_ARGUMENT = 2,
    /// papr-scm refuses the configuration; the last error names the field
    /// and the rule.
    PAPR_SCM_CONFIG = 3,
    /// A plug into an occupied or out-of-range slot, an unplug of an empty
    /// slot or of one already being unplugged, a slot with no device.
    PAPR_SCM_SLOT = 4,
    /// The VMM's event sink refused the event (or there is none).
    PAPR_SCM_EVENTS = 5,
    /// load: the snapshot is malformed or does not fit this machine.
    PAPR_SCM_SNAPSHOT = 6,
    /// The caller's buffer is too small; the needed size was written.
    PAPR_SCM_BUFFER_TOO_SMALL = 7,
    /// A label callback or the trace file failed.
    PAPR_SCM_IO = 8,
    /// A Rust panic was caught at the boundary: the machine must not be
    /// used again except to free it.
    PAPR_SCM_PANIC = 99,
}

/// The hcall behaviour papr-scm follows (`papr_scm_machine_config.profile`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_profile {
    /// Everything a Linux guest can ask for: stateful binding, the QUERY
    /// calls, PERFORMANCE_STATS, the full health mask.
    PAPR_SCM_PROFILE_PAPR = 0,
    /// Bit-exact with QEMU's own `hw/ppc/spapr_nvdimm.c`.
    PAPR_SCM_PROFILE_QEMU = 1,
}

/// The QEMU device type (`papr_scm_device_config.kind`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_device_kind {
    /// `nvdimm`: no flush hcall.
    PAPR_SCM_KIND_NVDIMM = 0,
    /// `spapr-nvdimm`: H_SCM_FLUSH unless backed by `pmem=on`.
    PAPR_SCM_KIND_SPAPR_NVDIMM = 1,
}

/// A NUMA affinity form (PAPR "ibm,architecture-vec-5" byte 5 bit 2).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_numa_form {
    /// `<4 0 0 0 node>`: the boot tree's form.
    PAPR_SCM_NUMA_FORM1 = 1,
    /// `<1 node>`: negotiated at CAS by Linux 5.15+.
    PAPR_SCM_NUMA_FORM2 = 2,
}

/// What a flush callback reports (`flush_start` / `flush_poll`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_flush_status {
    /// Still running: the guest polls again.
    PAPR_SCM_FLUSH_PENDING = 0,
    /// Done: the data is durable.
    PAPR_SCM_FLUSH_DONE = 1,
    /// Done with an error (the guest gets H_HARDWARE). Any other value
    /// counts as this.
    PAPR_SCM_FLUSH_FAILED = 2,
}

/// The action of a hot-plug event handed to `event_push`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_event_action {
    /// `RTAS_LOG_V6_HP_ACTION_ADD`.
    PAPR_SCM_EVENT_ADD = 1,
    /// `RTAS_LOG_V6_HP_ACTION_REMOVE`.
    PAPR_SCM_EVENT_REMOVE = 2,
}

/// The RTAS services papr-scm may answer (`papr_scm_rtas`'s `service`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_rtas_service {
    /// `set-indicator`.
    PAPR_SCM_RTAS_SET_INDICATOR = 0,
    /// `get-sensor-state`.
    PAPR_SCM_RTAS_GET_SENSOR_STATE = 1,
    /// `ibm,configure-connector`.
    PAPR_SCM_RTAS_CONFIGURE_CONNECTOR = 2,
    /// `check-exception` (the VMM's: its queue holds the events).
    PAPR_SCM_RTAS_CHECK_EXCEPTION = 3,
    /// `event-scan` (the VMM's: its queue holds the events).
    PAPR_SCM_RTAS_EVENT_SCAN = 4,
}

/// What an RTAS call, an unplug or a reset did besides its return words
/// (`papr_scm_effect.kind`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum papr_scm_effect_kind {
    /// Nothing the VMM needs to act on.
    PAPR_SCM_EFFECT_NONE = 0,
    /// The device in `slot` left: the VMM finishes its unplug (drains its
    /// flushes, frees the backend).
    PAPR_SCM_EFFECT_RELEASED = 1,
    /// The guest refused the unplug of `slot`; the device stays.
    PAPR_SCM_EFFECT_UNPLUG_REFUSED = 2,
    /// The guest holds the whole node of `slot`.
    PAPR_SCM_EFFECT_CONFIGURED = 3,
}

/// A C `bool` read from the VMM's memory: a byte, of which any non-zero
/// value is true (a Rust `bool` holding anything but 0 or 1 would be
/// undefined behaviour). The header spells it `bool`.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CBool(pub u8);

impl CBool {
    /// Whether the byte is non-zero.
    pub const fn get(self) -> bool {
        self.0 != 0
    }
}

/// The machine (`-m SIZE,slots=N,maxmem=M`, NUMA nodes, the profile).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct papr_scm_machine_config {
    /// Boot RAM in bytes (`-m SIZE`): a non-zero multiple of 256 MiB.
    pub ram_size: u64,
    /// `-m maxmem=`: device memory is `maxmem - ram_size`.
    pub maxmem: u64,
    /// `-m slots=`: one PMEM DRC each.
    pub slots: u32,
    /// NUMA nodes, at least 1.
    pub numa_nodes: u32,
    /// A `papr_scm_profile`.
    pub profile: u32,
    /// The `papr_scm_numa_form` of the boot tree (FORM1).
    pub numa_form: u32,
}

/// One NVDIMM as the VMM placed it (QEMU's `-device nvdimm` /
/// `spapr-nvdimm` properties and its memory backend).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct papr_scm_device_config {
    /// QEMU's `slot` property, placed by QEMU.
    pub slot: u32,
    /// NUMA node.
    pub node: u32,
    /// Guest-physical address, placed by QEMU (256 MiB aligned).
    pub addr: u64,
    /// Whole backing size, label included.
    pub size: u64,
    /// `label-size` (at least 128 KiB).
    pub label_size: u64,
    /// `uuid`: the big-endian bytes as QemuUUID holds them.
    pub uuid: [u8; 16],
    /// A `papr_scm_device_kind`.
    pub kind: u32,
    /// Backend `pmem=on`.
    pub pmem: CBool,
    /// `pmem-override`: -1 not given, 0 off, 1 on.
    pub pmem_override: i8,
    /// `unarmed=on`.
    pub unarmed: CBool,
    /// Read-only backend (needs `unarmed`).
    pub readonly: CBool,
    /// The whole `ibm,associativity` array (count cell first), or NULL for
    /// QEMU's default for `node` in the negotiated form.
    pub associativity: *const u32,
    /// Cells in `associativity` (at most 16).
    pub associativity_len: usize,
    /// `ibm,persistence-failed-count` (papr profile); -1: none (0).
    pub persistence_failed_count: i64,
}

/// The guest's time of day (`guest_time`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct papr_scm_rtc_time {
    /// Year, e.g. 2026.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day, 1..=31.
    pub day: u8,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
}

/// The VMM's side: label storage, guest memory, the flush executor, bind
/// hooks and the one event queue. Every callback receives `opaque`. They
/// run with the device's lock held (and, for plug, unplug, RTAS, reset,
/// save, load and the trace, papr-scm's machine lock): a callback must not
/// call back into papr-scm.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct papr_scm_callbacks {
    /// Passed to every callback.
    pub opaque: *mut c_void,
    /// The label area of `slot` (QEMU: NVDIMMClass read_label_data). 0 = ok. Required.
    pub label_read: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            slot: u32,
            offset: u64,
            buf: *mut u8,
            len: usize,
        ) -> c_int,
    >,
    /// (QEMU: NVDIMMClass write_label_data). 0 = ok. Required.
    pub label_write: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            slot: u32,
            offset: u64,
            buf: *const u8,
            len: usize,
        ) -> c_int,
    >,
    /// Makes label writes durable, when papr-scm's durability policy says
    /// (after each write with `pmem=on`, else at the start of an
    /// H_SCM_FLUSH, a reset and a release). NULL: nothing to do.
    pub label_flush: Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32) -> c_int>,
    /// Guest-physical memory (PERFORMANCE_STATS buffers, RTAS work areas).
    /// 0 = ok. NULL: no guest memory (PERFORMANCE_STATS answers
    /// H_UNSUPPORTED). Called only for ranges inside guest RAM
    /// `[0, ram_size)`: papr-scm refuses an access that leaves it.
    pub guest_read: Option<
        unsafe extern "C" fn(opaque: *mut c_void, gpa: u64, buf: *mut u8, len: usize) -> c_int,
    >,
    /// Writes guest-physical memory. 0 = ok.
    pub guest_write: Option<
        unsafe extern "C" fn(opaque: *mut c_void, gpa: u64, buf: *const u8, len: usize) -> c_int,
    >,
    /// Starts an H_SCM_FLUSH of `slot` for request `token` (QEMU: the
    /// thread pool, `fdatasync` or `pmem_persist`); a `papr_scm_flush_status`.
    /// NULL (with flush_poll): no executor, and an spapr-nvdimm that needs
    /// H_SCM_FLUSH is refused.
    pub flush_start:
        Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32, token: u64) -> u32>,
    /// Polls a flush that flush_start left pending.
    pub flush_poll: Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32, token: u64) -> u32>,
    /// papr-scm dropped its record of (slot, token) (a reset, a release or a
    /// restore): the executor may forget it. NULL ok.
    pub flush_forget: Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32, token: u64)>,
    /// Blocks bound (papr profile). NULL ok.
    pub bound: Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32, addr: u64, blocks: u64)>,
    /// Blocks unbound (papr profile). NULL ok.
    pub unbound:
        Option<unsafe extern "C" fn(opaque: *mut c_void, slot: u32, addr: u64, blocks: u64)>,
    /// The VMM owns the one event queue: papr-scm hands it each PMEM
    /// hot-plug event (`action` a `papr_scm_event_action`). QEMU:
    /// spapr_hotplug_req_add_by_index / _remove_by_index, which queue and
    /// pulse. 0 when queued, non-zero when the queue is full. Required for
    /// plug and unplug.
    pub event_push:
        Option<unsafe extern "C" fn(opaque: *mut c_void, action: u32, drc_index: u32) -> c_int>,
    /// Drop the queued events naming `drc_index` (an unplug of a connector
    /// the guest never acquired). NULL ok.
    pub event_withdraw: Option<unsafe extern "C" fn(opaque: *mut c_void, drc_index: u32)>,
    /// The guest's time of day (unused when the VMM builds the event bytes
    /// itself). NULL ok.
    pub guest_time: Option<unsafe extern "C" fn(opaque: *mut c_void, out: *mut papr_scm_rtc_time)>,
}

/// What an RTAS call, an unplug or a reset did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct papr_scm_effect {
    /// A `papr_scm_effect_kind`.
    pub kind: u32,
    /// The slot concerned (0 with PAPR_SCM_EFFECT_NONE).
    pub slot: u32,
    /// RELEASED: blocks still bound when the device left, now unbound
    /// (reported through `unbound`).
    pub unbound_blocks: u64,
    /// RELEASED: flush requests the guest never collected; the VMM drains
    /// its executor for the slot before it frees the backend.
    pub pending_flushes: u64,
}
