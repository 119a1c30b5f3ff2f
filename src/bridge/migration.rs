// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A live migration of a bridged guest: the source pauses the guest at its
//! first pending flush and writes papr-scm's snapshot; the destination
//! checks the snapshot against its configuration before connecting,
//! re-arms the decrementer QEMU 7.2 does not migrate, and restores.

use std::path::Path;

use super::rsp::{self, unhex, Rsp, ANSWER_TIMEOUT};
use super::{step, BridgeMachine, Error, G_PC, REG_PC};
use crate::machine::MachineState;
use crate::rtas_error_log::EventQueue;
use crate::transcript::Transcript;

/// A migration destination's start: the snapshot and where to re-arm the
/// decrementer.
pub(super) struct Incoming {
    pub(super) bytes: Vec<u8>,
    pub(super) snap: MachineState,
    /// An `mtdec rS` in the kernel and its rS (`vmlinux::find_mtdec`).
    pub(super) mtdec: (u64, u32),
}

/// A snapshot file, decoded and restored once into a scratch machine of
/// the configuration: the bytes (for the trace) and the state.
pub(super) fn read_snapshot(
    path: &Path,
    config: &Path,
    t: &Transcript,
) -> Result<(Vec<u8>, MachineState), Error> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let snap = MachineState::decode(&bytes)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let scratch =
        crate::replay::build(t).map_err(|e| Error::Input(format!("{}: {e}", config.display())))?;
    scratch
        .restore(&snap, &mut EventQueue::new())
        .map_err(|e| {
            Error::Input(format!(
                "{}: does not fit {}: {e}",
                path.display(),
                config.display()
            ))
        })?;
    Ok((bytes, snap))
}

/// The migration source's stop: the guest goes on past the answered
/// flush and is paused at once by the stub's interrupt, which QEMU turns
/// into the monitor's `stop` (`RUN_STATE_PAUSED`). A guest left at a
/// breakpoint would be in QEMU's `debug` state, which the destination's
/// incoming migration cannot enter (`runstate_set` aborts). Then the SCM
/// snapshot goes to `path`; the guest stays paused for `migrate`.
pub(super) fn pause_for_migration(
    m: &BridgeMachine,
    path: &Path,
    events: &EventQueue,
) -> Result<(), String> {
    {
        let mut rsp = m.host().rsp.borrow_mut();
        rsp.send("c")?;
        rsp.interrupt()?;
        let stop = rsp.recv(ANSWER_TIMEOUT)?;
        // SIGINT: paused by the interrupt, not stopped at a trap point.
        if !stop.starts_with("T02") && !stop.starts_with("S02") {
            return Err(format!(
                "bridge: the guest did not pause for the migration (stop reply '{stop}')"
            ));
        }
    }
    let bytes = m.state(events).encode();
    std::fs::write(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "bridge: guest paused with a flush pending; snapshot of {} bytes in {}",
        bytes.len(),
        path.display()
    );
    Ok(())
}

/// Re-arms the guest's decrementer on a migration's destination: QEMU
/// before 8.2 does not migrate TCG's decrementer (fixed by "target/ppc:
/// Migrate DECR SPR", 578912ad7312), so the destination's timer is never
/// started and the guest, idle in H_CEDE, waits forever. The vCPU executes
/// one `mtdec rS` of the kernel's own (a short count: an early timer
/// interrupt, which Linux takes as a spurious one and reprograms), then
/// rS and the PC are put back.
pub(super) fn rearm_decrementer<L: rsp::Link>(
    rsp: &mut Rsp<L>,
    (at, rs): (u64, u32),
) -> Result<(), String> {
    let g = rsp.cmd("g")?;
    let regs = unhex(&g)
        .filter(|b| b.len() >= G_PC + 8)
        .ok_or_else(|| format!("bridge: bad 'g' reply '{g}'"))?;
    let word = |o: usize| u64::from_le_bytes(regs[o..o + 8].try_into().unwrap());
    let (pc, saved) = (word(G_PC), word(rs as usize * 8));
    rsp.set_reg(rs, 0x1000)?;
    rsp.set_reg(REG_PC, at)?;
    let after = step(rsp, at)?;
    rsp.set_reg(rs, saved)?;
    rsp.set_reg(REG_PC, pc)?;
    if after != Some(at + 4) {
        return Err(format!("bridge: the mtdec at {at:#x} did not execute"));
    }
    eprintln!("bridge: decrementer re-armed (mtdec r{rs} at {at:#x})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::G_LR;
    use rsp::{hex, ScriptedLink};

    /// A `g` reply with `pc` and r3 set.
    fn regs(pc: u64, r3: u64) -> String {
        let mut g = vec![0u8; G_LR + 8];
        g[24..32].copy_from_slice(&r3.to_le_bytes());
        g[G_PC..G_PC + 8].copy_from_slice(&pc.to_le_bytes());
        hex(&g)
    }

    /// The packet bodies the client sent, in order.
    fn sent(link: &rsp::ScriptedLink) -> Vec<String> {
        String::from_utf8_lossy(&link.output)
            .split('$')
            .skip(1)
            .map(|p| p.split('#').next().unwrap_or("").to_string())
            .collect()
    }

    /// The destination's decrementer fix: rS and the PC take the mtdec's
    /// operands, one step runs it, and both come back; a step that lands
    /// anywhere but after the mtdec is an error, with both back too.
    #[test]
    fn test_rearm_decrementer_restores_rs_and_the_pc() {
        let (pc, at) = (0xc000_0000_0000_1000u64, 0xc000_0000_0001_7fb0u64);
        let p = |n: u32, v: u64| format!("P{n:x}={}", hex(&v.to_le_bytes()));
        for (landed, ok) in [(at + 4, true), (0x900, false)] {
            let script = [
                rsp::reply(&regs(pc, 0x55)),
                rsp::reply("OK"),
                rsp::reply("OK"),
                rsp::reply("T05thread:01;"),
                rsp::reply(&regs(landed, 0x1000)),
                rsp::reply("OK"),
                rsp::reply("OK"),
            ]
            .concat();
            let mut rsp = Rsp::new(ScriptedLink::new(script.as_bytes()));
            let r = rearm_decrementer(&mut rsp, (at, 3));
            assert_eq!(r.is_ok(), ok, "{r:?}");
            assert_eq!(
                sent(rsp.link()),
                [
                    "g".to_string(),
                    p(3, 0x1000),
                    p(0x40, at),
                    "s".to_string(),
                    "g".to_string(),
                    p(3, 0x55),
                    p(0x40, pc)
                ]
            );
        }
    }

    /// A destination's snapshot is checked against its configuration
    /// before anything connects: a device that needs no flush hcalls
    /// refuses an spapr-nvdimm's state, naming the field.
    #[test]
    fn test_read_snapshot_refuses_a_mismatching_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = |kind: &str| {
            format!(
                "machine ram=2G maxmem=8G slots=4 profile=papr\n\
                 nvdimm size=256M+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e{kind}\n"
            )
        };
        let src =
            crate::replay::build(&Transcript::parse(&cfg(" type=spapr-nvdimm")).unwrap()).unwrap();
        src.h_scm_flush(0x9000_0000, 0);
        let snap = dir.path().join("scm.snap");
        std::fs::write(&snap, src.state(&EventQueue::new()).encode()).unwrap();
        let config = dir.path().join("dst.cfg");
        let same = Transcript::parse(&cfg(" type=spapr-nvdimm")).unwrap();
        let (bytes, state) = read_snapshot(&snap, &config, &same).unwrap();
        assert_eq!(MachineState::decode(&bytes).unwrap(), state);
        let other = Transcript::parse(&cfg("")).unwrap();
        let Err(Error::Input(e)) = read_snapshot(&snap, &config, &other) else {
            panic!("a plain nvdimm took an spapr-nvdimm's snapshot");
        };
        assert!(
            e.contains("does not fit")
                && e.contains("flush-required is true in the snapshot, false here"),
            "{e}"
        );
        std::fs::write(&snap, b"PSCMSNAP\0\x09").unwrap();
        let Err(Error::Input(e)) = read_snapshot(&snap, &config, &same) else {
            panic!("a version-9 snapshot was read");
        };
        assert!(e.contains("version 9"), "{e}");
    }
}
