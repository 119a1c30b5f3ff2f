// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Why a call failed: one variant per kind, each message naming the field
//! (or slot) and the rule, and the `papr_scm_result` code it maps to.

use std::string::String;

use papr_scm::config::ConfigError;
use papr_scm::drc::SlotError;
use papr_scm::machine::{RestoreError, SnapshotError, UnplugError};

use crate::types::papr_scm_result::{self, *};

/// A pointer argument that cannot be used: small and `Copy`, so the
/// checks on the hcall path build no large value and drop nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PtrError {
    /// NULL.
    #[error("{0}: is NULL")]
    Null(&'static str),
    /// Not aligned for its type.
    #[error("{0}: is not aligned for its type")]
    Misaligned(&'static str),
    /// A length whose byte size does not fit the address space.
    #[error("{name}: length {len} is too large")]
    TooLong {
        /// The argument.
        name: &'static str,
        /// Its length.
        len: usize,
    },
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A pointer argument that cannot be used.
    #[error(transparent)]
    Ptr(#[from] PtrError),
    /// A value out of its range: `field` says which (with the slot), `rule`
    /// what it must be.
    #[error("{field}: {rule}")]
    Invalid {
        /// e.g. "slot 1: kind".
        field: String,
        /// e.g. "7 is not PAPR_SCM_KIND_NVDIMM (0) or PAPR_SCM_KIND_SPAPR_NVDIMM (1)".
        rule: String,
    },
    /// A callback the call needs is NULL.
    #[error("callbacks: {0} is NULL")]
    NoCallback(&'static str),
    /// A plug or unplug with no `event_push` callback.
    #[error("callbacks: event_push is NULL: hot-plug needs the VMM's event queue")]
    NoEventSink,
    /// The machine configuration breaks a rule.
    #[error("machine: {0}")]
    Machine(ConfigError),
    /// A device configuration breaks a rule.
    #[error("slot {slot}: {source}")]
    Device {
        /// The device's slot.
        slot: u32,
        /// The rule.
        source: ConfigError,
    },
    /// A hot-plug into a slot that is taken or past the last one.
    #[error("slot {slot}: {source}")]
    PlugSlot {
        /// The slot.
        slot: u32,
        /// The slot rule.
        source: SlotError,
    },
    /// The device needs H_SCM_FLUSH and the VMM gave no flush executor.
    #[error("slot {0}: the device needs H_SCM_FLUSH but the flush_start and flush_poll callbacks are NULL")]
    NoFlushExecutor(u32),
    /// The slot holds no device (or is past the last one).
    #[error("slot {0}: holds no device")]
    Empty(u32),
    /// The event sink refused a plug's add event.
    #[error("slot {0}: events: the VMM's event queue refused the add event")]
    PlugEvents(u32),
    /// An unplug request was refused.
    #[error(transparent)]
    Unplug(#[from] UnplugError),
    /// A snapshot that does not decode.
    #[error("load: {0}")]
    Snapshot(#[from] SnapshotError),
    /// A snapshot that does not fit the machine.
    #[error("load: {0}")]
    Restore(#[from] RestoreError),
    /// A snapshot that carries hot-plug events, which the VMM's queue holds.
    #[error("load: restore: events: the snapshot carries {0} hot-plug event(s), but the VMM owns the event queue")]
    SnapshotEvents(usize),
    /// The caller's buffer is too small.
    #[error("{name}: {have} bytes, {need} needed")]
    BufferTooSmall {
        /// The buffer argument.
        name: &'static str,
        /// Its size.
        have: usize,
        /// The size needed.
        need: usize,
    },
    /// The trace file failed.
    #[error("trace: {path}: {source}")]
    Trace {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A label callback failed while the trace read the labels.
    #[error("trace: slot {slot}: {source}")]
    TraceLabel {
        /// The device's slot.
        slot: u32,
        /// What failed.
        source: papr_scm::label::LabelError,
    },
    /// A panic was caught earlier on this machine.
    #[error("the machine caught a panic earlier and must not be used again except to free it")]
    Broken,
}

impl Error {
    /// The result code for this error.
    pub(crate) fn code(&self) -> papr_scm_result {
        match self {
            Error::Ptr(PtrError::Null(_) | PtrError::Misaligned(_)) | Error::NoCallback(_) => {
                PAPR_SCM_NULL_PARAMETER
            }
            Error::Ptr(PtrError::TooLong { .. }) | Error::Invalid { .. } => {
                PAPR_SCM_INVALID_ARGUMENT
            }
            Error::Machine(_) | Error::Device { .. } | Error::NoFlushExecutor(_) => PAPR_SCM_CONFIG,
            Error::PlugSlot { .. } | Error::Empty(_) => PAPR_SCM_SLOT,
            Error::Unplug(UnplugError::Events { .. })
            | Error::PlugEvents(_)
            | Error::NoEventSink => PAPR_SCM_EVENTS,
            Error::Unplug(_) => PAPR_SCM_SLOT,
            Error::Snapshot(_) | Error::Restore(_) | Error::SnapshotEvents(_) => PAPR_SCM_SNAPSHOT,
            Error::BufferTooSmall { .. } => PAPR_SCM_BUFFER_TOO_SMALL,
            Error::Trace { .. } | Error::TraceLabel { .. } => PAPR_SCM_IO,
            Error::Broken => PAPR_SCM_PANIC,
        }
    }

    /// A NULL argument named `name`.
    pub(crate) fn null(name: &'static str) -> Self {
        Error::Ptr(PtrError::Null(name))
    }

    /// A value out of range: `field: rule`.
    pub(crate) fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
