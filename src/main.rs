// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `papr-scm`: the demo, conformance transcripts, device trees and the
//! gdb-stub bridge.
//!
//! Exit status, for every subcommand: 0 success, 1 a check failed (a
//! transcript mismatch, a demo step, a bridged boot), 2 bad usage or input.
//! Errors are printed as `papr-scm <command>: …`.

use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use papr_scm::bridge;
use papr_scm::fdt::machine_fdt;
use papr_scm::replay::replay;
use papr_scm::transcript::Transcript;

mod demo;

const OK: u8 = 0;
const CHECK_FAILED: u8 = 1;
const BAD_INPUT: u8 = 2;

/// The hypervisor side of PAPR SCM (persistent memory for pseries guests):
/// a demo, conformance transcripts, device trees, and a bridge that serves
/// a real guest through QEMU's gdb stub. Without a command, runs the demo.
#[derive(Parser)]
#[command(name = "papr-scm", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    demo: DemoArgs,
}

#[derive(Subcommand)]
enum Command {
    /// A pseries machine with file-backed NVDIMMs, its device tree and the
    /// Linux driver model probing it (the default command).
    Demo(DemoArgs),
    /// Replays conformance transcripts: every file, each reported; exit 1
    /// if an expectation fails, 2 if a file is malformed.
    Replay {
        /// Transcript files (see hcalls/).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Writes the device tree blob of a configuration.
    Dtb {
        /// A configuration (transcript `machine` and `nvdimm` lines).
        config: PathBuf,
        /// Where to write the blob (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Answers a real Linux guest's SCM hcalls through QEMU's gdb stub.
    QemuBridge(BridgeArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Take the machine and NVDIMMs from a configuration file.
    #[arg(long, conflicts_with = "dtb")]
    config: Option<PathBuf>,
    /// Take the NVDIMMs from a device tree blob (e.g. one QEMU dumped).
    #[arg(long)]
    dtb: Option<PathBuf>,
    /// Write the guest's hcalls as a replayable transcript.
    #[arg(long)]
    trace: Option<PathBuf>,
}

#[derive(Args)]
struct BridgeArgs {
    /// The gdb stub, HOST:PORT (QEMU -gdb tcp:HOST:PORT -S).
    #[arg(long)]
    gdb: String,
    /// The guest kernel's vmlinux, for the trap points.
    #[arg(long)]
    vmlinux: PathBuf,
    /// The configuration QEMU was started from.
    #[arg(long)]
    config: PathBuf,
    /// Write the bridged hcalls as a replayable transcript.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Backing files to fdatasync on H_SCM_FLUSH, in device order.
    #[arg(long)]
    backing: Vec<PathBuf>,
    /// Time limit for the whole boot, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// The guest's boot tree (QEMU -machine dumpdtb=FILE): answer the RTAS
    /// calls of PMEM connectors and run the configuration's plug/unplug lines.
    #[arg(long)]
    dtb: Option<PathBuf>,
    /// With --dtb: record QEMU's answers to PMEM RTAS calls, answer nothing.
    #[arg(long, requires = "dtb")]
    observe_rtas: bool,
    /// Migration source: at the guest's first flush left pending, pause the
    /// guest, write the machine's SCM snapshot to FILE and exit (the guest
    /// stays paused for QEMU's `migrate`).
    #[arg(long, value_name = "FILE")]
    snapshot_out: Option<PathBuf>,
    /// Migration destination: restore the SCM snapshot in FILE before the
    /// guest goes on; a snapshot that does not fit the configuration is
    /// refused before the guest is touched.
    #[arg(long, value_name = "FILE", conflicts_with = "snapshot_out")]
    snapshot_in: Option<PathBuf>,
}

/// Writes to stdout; a closed pipe (`papr-scm … | head`) ends the command
/// quietly instead of panicking.
fn emit(bytes: &[u8]) -> Result<(), ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(ExitCode::from(OK)),
        Err(e) => {
            eprintln!("papr-scm: stdout: {e}");
            Err(ExitCode::from(CHECK_FAILED))
        }
    }
}

fn fail(cmd: &str, code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("papr-scm {cmd}: {msg}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // --help and --version print to stdout and exit 0.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(OK);
        }
        // Usage errors: clap's message in our style, exit 2.
        Err(e) => {
            let cmd = std::env::args()
                .nth(1)
                .filter(|a| ["demo", "replay", "dtb", "qemu-bridge"].contains(&a.as_str()));
            let who = cmd.map_or("papr-scm".to_string(), |c| format!("papr-scm {c}"));
            let text = e.render().to_string();
            eprint!("{who}: {}", text.strip_prefix("error: ").unwrap_or(&text));
            return ExitCode::from(BAD_INPUT);
        }
    };
    match cli.command.unwrap_or(Command::Demo(cli.demo)) {
        Command::Demo(a) => cmd_demo(a),
        Command::Replay { files } => cmd_replay(&files),
        Command::Dtb { config, output } => cmd_dtb(&config, output.as_deref()),
        Command::QemuBridge(a) => cmd_bridge(a),
    }
}

fn cmd_demo(a: DemoArgs) -> ExitCode {
    let opts = demo::Options {
        source: match (a.config, a.dtb) {
            (Some(c), _) => demo::Source::Config(c),
            (None, Some(d)) => demo::Source::Dtb(d),
            (None, None) => demo::Source::Builtin,
        },
        trace: a.trace,
    };
    match demo::run(&opts) {
        Ok(report) => match emit(report.as_bytes()) {
            Ok(()) => ExitCode::from(OK),
            Err(code) => code,
        },
        Err(demo::Failure::Input(e)) => fail("demo", BAD_INPUT, e),
        Err(demo::Failure::Check(e)) => fail("demo", CHECK_FAILED, e),
    }
}

fn cmd_replay(files: &[PathBuf]) -> ExitCode {
    let (mut malformed, mut mismatched) = (0, 0);
    for file in files {
        let name = file.display();
        let report = Transcript::read_file(file)
            .and_then(|t| replay(&t).map_err(|e| format!("{name}: {e}")));
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                eprintln!("papr-scm replay: malformed: {e}");
                malformed += 1;
                continue;
            }
        };
        let mut text = format!("== {name}\n");
        for l in &report.lines {
            text.push_str(l);
            text.push('\n');
        }
        text.push_str(&format!(
            "{name}: {} calls, {} mismatches\n",
            report.calls,
            report.mismatches.len()
        ));
        if let Err(code) = emit(text.as_bytes()) {
            return code;
        }
        for m in &report.mismatches {
            eprintln!("papr-scm replay: {name}: MISMATCH {m}");
        }
        mismatched += usize::from(!report.mismatches.is_empty());
    }
    if files.len() > 1 && malformed + mismatched > 0 {
        eprintln!(
            "papr-scm replay: {} files: {malformed} malformed, {mismatched} with mismatches",
            files.len()
        );
    }
    // A malformed file is bad input even when another file mismatched: the
    // summary above names both.
    ExitCode::from(match (malformed, mismatched) {
        (0, 0) => OK,
        (0, _) => CHECK_FAILED,
        _ => BAD_INPUT,
    })
}

fn cmd_dtb(config: &std::path::Path, output: Option<&std::path::Path>) -> ExitCode {
    // Only machine and nvdimm lines matter; calls and the rest are ignored.
    let plan = Transcript::read_file(config)
        .and_then(|t| t.plan().map_err(|e| format!("{}: {e}", config.display())));
    let (machine, specs) = match plan {
        Ok(p) => p,
        Err(e) => return fail("dtb", BAD_INPUT, e),
    };
    let blob = match machine_fdt(&machine, &specs) {
        Ok(b) => b,
        Err(e) => return fail("dtb", BAD_INPUT, format!("{}: {e}", config.display())),
    };
    match output {
        Some(path) => match std::fs::write(path, &blob) {
            Ok(()) => ExitCode::from(OK),
            Err(e) => fail("dtb", BAD_INPUT, format!("{}: {e}", path.display())),
        },
        None => match emit(&blob) {
            Ok(()) => ExitCode::from(OK),
            Err(code) => code,
        },
    }
}

fn cmd_bridge(a: BridgeArgs) -> ExitCode {
    let opts = bridge::Options {
        gdb: a.gdb,
        vmlinux: a.vmlinux,
        config: a.config,
        trace: a.trace,
        backing: a.backing,
        timeout: Duration::from_secs(a.timeout),
        dtb: a.dtb,
        observe_rtas: a.observe_rtas,
        snapshot_out: a.snapshot_out,
        snapshot_in: a.snapshot_in,
    };
    match bridge::run(&opts) {
        Ok(()) => ExitCode::from(OK),
        Err(bridge::Error::Input(e)) => fail("qemu-bridge", BAD_INPUT, e),
        Err(bridge::Error::Run(e)) => fail("qemu-bridge", CHECK_FAILED, e),
    }
}
