// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `papr-scm`: the demo, conformance transcripts and device trees.
//!
//! ```text
//! papr-scm [--config FILE | --dtb FILE] [--trace FILE]
//!                                  the demo: a machine, its device tree, a guest probing it
//! papr-scm replay FILE...          exit 0: all expectations hold, 1: a mismatch, 2: a malformed file
//! papr-scm dtb CONFIG [-o OUT]     the machine's device tree blob (stdout without -o); 2: bad config
//! papr-scm qemu-bridge --gdb HOST:PORT --vmlinux FILE --config CFG [--trace FILE]
//!                                  answer a real guest's SCM hcalls through QEMU's gdb stub
//! ```

use std::process::ExitCode;

use std::io::Write as _;

use papr_scm::fdt::machine_fdt;
use papr_scm::replay::replay;
use papr_scm::transcript::Transcript;

use papr_scm::bridge;

mod demo;

const USAGE: &str = "usage: papr-scm [--config FILE | --dtb FILE] [--trace FILE]\n       papr-scm replay FILE...\n       papr-scm dtb CONFIG [-o OUT.dtb]\n       papr-scm qemu-bridge --gdb HOST:PORT --vmlinux FILE --config CFG [--trace FILE] [--backing FILE]... [--timeout SECS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => cmd_demo(&[]),
        Some(a) if a.starts_with("--") && a != "--help" => cmd_demo(&args),
        Some("replay") if args.len() > 1 => cmd_replay(&args[1..]),
        Some("dtb") => cmd_dtb(&args[1..]),
        Some("qemu-bridge") => match bridge::parse_args(&args[1..]).and_then(|o| bridge::run(&o)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("papr-scm qemu-bridge: {e}");
                ExitCode::FAILURE
            }
        },
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn cmd_demo(args: &[String]) -> ExitCode {
    let mut opts = demo::Options {
        source: demo::Source::Builtin,
        trace: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(v) = it.next() else {
            eprintln!("{a} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match a.as_str() {
            "--config" => opts.source = demo::Source::Config(v.into()),
            "--dtb" => opts.source = demo::Source::Dtb(v.into()),
            "--trace" => opts.trace = Some(v.into()),
            _ => {
                eprintln!("unknown option {a}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match demo::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("papr-scm: {e}");
            ExitCode::from(2)
        }
    }
}

fn cmd_replay(files: &[String]) -> ExitCode {
    let mut failed = false;
    for file in files {
        let t = match Transcript::read_file(std::path::Path::new(file)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let report = match replay(&t) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{file}: malformed: {e}");
                return ExitCode::from(2);
            }
        };
        println!("== {file}");
        for l in &report.lines {
            println!("{l}");
        }
        for m in &report.mismatches {
            eprintln!("{file}: MISMATCH {m}");
        }
        println!(
            "{file}: {} calls, {} mismatches",
            report.calls,
            report.mismatches.len()
        );
        failed |= !report.mismatches.is_empty();
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn cmd_dtb(args: &[String]) -> ExitCode {
    let (config, out) = match args {
        [c] => (c, None),
        [c, o, f] if o == "-o" => (c, Some(f)),
        [o, f, c] if o == "-o" => (c, Some(f)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Only machine and nvdimm lines matter; calls and the rest are ignored.
    let plan = Transcript::read_file(std::path::Path::new(config))
        .and_then(|t| t.plan().map_err(|e| format!("{config}: {e}")));
    let (machine, specs) = match plan {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let blob = match machine_fdt(&machine, &specs) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{config}: {e}");
            return ExitCode::from(2);
        }
    };
    let written = match out {
        Some(path) => std::fs::write(path, &blob),
        None => std::io::stdout().write_all(&blob),
    };
    if let Err(e) = written {
        eprintln!("{}: {e}", out.map_or("stdout", |s| s.as_str()));
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
