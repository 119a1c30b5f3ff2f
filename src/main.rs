// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `papr-scm`: replay conformance transcripts.
//!
//! ```text
//! papr-scm replay FILE...     exit 0: all expectations hold, 1: a mismatch, 2: a malformed file
//! ```

use std::process::ExitCode;

use papr_scm::replay::replay;
use papr_scm::transcript::Transcript;

const USAGE: &str = "usage: papr-scm replay FILE...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("replay") if args.len() > 1 => cmd_replay(&args[1..]),
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

fn cmd_replay(files: &[String]) -> ExitCode {
    let mut failed = false;
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        };
        let report = match Transcript::parse(&text).and_then(|t| replay(&t)) {
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
