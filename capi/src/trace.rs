// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The transcript trace: every SCM hcall and PMEM RTAS call papr-scm
//! answered, in papr-scm's transcript format, written with the same
//! directive writer as the gdb-stub bridge's traces (`Directive`'s
//! `Display`, `transcript::call_line`, `transcript::label_lines`), so
//! `papr-scm replay FILE` replays it.
//!
//! The file opens with the machine as it is when the trace starts: the
//! `machine` line, an `nvdimm` line per device (slot, address and
//! associativity explicit), `label` lines for the labels the devices hold
//! and a `restore` line with the current state (bindings, flushes, health,
//! connectors). After that, each call is its `mem` lines (guest memory it
//! read) and `flush-status` lines (what the VMM's executor answered), the
//! `call` or `rtas` line with its results, and `expect-mem` lines (guest
//! memory it wrote). `plug`, `unplug`, `reset`, `cas`, `inject` and
//! `restore` lines record the VMM's own calls; a `plug` is followed by the
//! `label` lines of what the new device's label area holds, and a
//! `restore` (a migration's load) is preceded, for each device, by a
//! `label-clear` line and the `label` lines of the area the migration
//! brought, so the trace holds every byte a guest can read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::vec::Vec;

use papr_scm::hcall::{Regs, ReturnCode, H_SCM_BIND_MEM, H_SCM_UNBIND_MEM, H_SCM_WRITE_METADATA};
use papr_scm::transcript::{call_line, Directive};

/// An open trace file.
#[derive(Debug)]
pub(crate) struct Trace {
    path: PathBuf,
    out: BufWriter<File>,
    /// The first write that failed; the trace stops there.
    pub(crate) error: Option<std::io::Error>,
}

/// The argument registers a call line records: the hcall's own arguments,
/// and at least r4..r6, the registers any SCM hcall may write, so that an
/// output register the call left alone replays with the value it had.
fn traced_args(opcode: u64) -> usize {
    match opcode {
        H_SCM_BIND_MEM => 5,
        H_SCM_UNBIND_MEM | H_SCM_WRITE_METADATA => 4,
        _ => 3,
    }
}

impl Trace {
    /// Creates (or truncates) the file at `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Trace {
            path: path.to_path_buf(),
            out: BufWriter::new(File::create(path)?),
            error: None,
        })
    }

    /// The file's path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `lines` and pushes them to the file, so that a VMM that dies
    /// leaves every call it made in the trace. After a failure, nothing
    /// more is written; the error stays for `papr_scm_trace_close`.
    pub(crate) fn write<'a>(&mut self, lines: impl IntoIterator<Item = &'a Directive>) -> bool {
        if self.error.is_some() {
            return false;
        }
        let r = lines
            .into_iter()
            .try_for_each(|d| writeln!(self.out, "{d}"))
            .and_then(|()| self.out.flush());
        match r {
            Ok(()) => true,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Stops the trace with `e` (the first error stays).
    pub(crate) fn fail(&mut self, e: std::io::Error) {
        self.error.get_or_insert(e);
    }

    /// A comment line.
    pub(crate) fn comment(&mut self, text: &str) -> bool {
        if self.error.is_some() {
            return false;
        }
        match writeln!(self.out, "# {text}") {
            Ok(()) => true,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// One call and what it touched: guest memory read and executor
    /// answers before the line, guest memory written after it.
    pub(crate) fn call(&mut self, line: Directive, touched: Vec<Directive>) -> bool {
        let (after, before): (Vec<_>, Vec<_>) = touched
            .into_iter()
            .partition(|d| matches!(d, Directive::ExpectMem { .. }));
        self.write(before.iter().chain([&line]).chain(after.iter()))
    }

    /// The line of an hcall: its arguments and r4..r6 after it.
    pub(crate) fn hcall_line(
        opcode: u64,
        regs_in: &Regs,
        status: ReturnCode,
        regs_out: &Regs,
    ) -> Directive {
        call_line(
            opcode,
            regs_in,
            traced_args(opcode),
            status,
            regs_out,
            &[4, 5, 6],
        )
    }

    /// Flushes the file; the first error of the trace's life, if any.
    pub(crate) fn close(mut self) -> Result<(), std::io::Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}
