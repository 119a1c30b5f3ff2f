// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The transcript format: machine configuration, hcalls with their expected
//! results, guest memory and fault injection, one directive per line.
//!
//! ```text
//! machine ram=2G maxmem=8G slots=4 numa-nodes=2 profile=qemu
//! nvdimm slot=0 size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e node=0
//! call H_SCM_BIND_MEM 0x90000000 0 4 -1 0 -> H_SUCCESS r5=0x80000000 r6=4
//! mem 0x1000 5343...            # bytes written into guest RAM before the next call
//! expect-mem 0x1000 5343...     # bytes checked after the last call
//! inject slot=0 health=0x4000000000000000
//! inject slot=0 flush=H_HARDWARE
//! flush-status slot=0 token=0x1 done   # the VMM's executor's next answer
//! label-clear slot=0            # the label area is all zero from here
//! label slot=0 offset=0x0 4e414d45...  # label bytes the device holds
//! ```
//!
//! `#` starts a comment. Sizes take K/M/G/T (×1024) and `a+b` sums; numbers
//! are decimal, `0x` hex or negative (two's complement). `machine` also
//! takes `numa-form=form1|form2`; `nvdimm` takes every [`NvdimmConfig`]
//! property by its QEMU name, and `persistence-failed-count=N`.
//!
//! An `inject` line applies to the device at that point of the transcript.
//! `flush=CODE` arms a result for the next flush to *start* (QEMU computes a
//! request's result in the worker submitted at start): a flush already
//! pending keeps the executor's result, so `call FLUSH 0`, `inject`, `poll`
//! succeeds and `inject`, `call FLUSH 0`, `poll` fails with CODE.
//!
//! A `flush-status` line records what a VMM's flush executor answered
//! (`pending`, `done` or `failed`) to the next start or poll of that flush,
//! so a trace from a VMM whose flushes take their own time replays; without
//! one, replay's executor leaves a started flush pending and completes it
//! at the first poll.
//!
//! `label` lines give a device label bytes that did not come through
//! recorded calls: those its backing file held at the start or at a `plug`.
//! `label-clear slot=N` zeroes the whole label area first, for an area
//! replaced whole, as on a migration's destination, where QEMU's RAM
//! migration brings the source's labels: a trace writes `label-clear` and
//! the new area's `label` lines before the `restore` line. The same parser
//! serves `replay`, `dtb`, the demo's `--config` and the guest model's
//! `--trace`; [`Directive`]'s `Display` writes lines it reads back.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use thiserror::Error;

use crate::config::{
    parse_uuid, Associativity, DeviceKind, DeviceSpec, MachineConfig, NumaForm, NvdimmConfig,
    Planner, Profile,
};
use crate::device::StatsMode;
use crate::hcall::{hcall_by_name, hcall_name, HealthBits, Regs, ReturnCode};
use crate::host::FlushStatus;
use crate::rtas::RtasService;
use crate::rtas_error_log::RtcTime;

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// A fault to inject into a device (`inject slot=N KEY=VALUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// `health=BITS`: OR bits into the device health.
    Health(HealthBits),
    /// `health-clear=BITS`: clear bits of the device health.
    HealthClear(HealthBits),
    /// `flush=CODE`: the next flush to start completes with this status.
    FlushResult(ReturnCode),
    /// `flush-hold=K`: new flushes stay pending for K polls.
    FlushHold(u32),
    /// `flush-order=CODE`: the long-busy code of a pending flush.
    FlushOrder(ReturnCode),
    /// `bind-busy=K`: the next K binds answer H_BUSY.
    BindBusy(u32),
    /// `bind-budget=N`: bind at most N blocks per call.
    BindBudget(u64),
    /// `stats=on|unsupported|authority`.
    Stats(StatsMode),
    /// `bound=all`: every block bound, as a guest left it before kexec.
    BoundAll,
}

/// Expected results of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Expected r3.
    pub status: ReturnCode,
    /// Expected registers: `(n, value)` for rN, n in 4..=12.
    pub regs: Vec<(u8, u64)>,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `machine ...`.
    Machine(MachineConfig),
    /// `nvdimm ...`.
    Nvdimm(NvdimmConfig),
    /// `call OPCODE ARGS... [-> STATUS rN=V...]`.
    Call {
        /// The opcode.
        opcode: u64,
        /// r4, r5, ... (at most nine).
        args: Vec<u64>,
        /// What the call must return.
        expect: Option<Expect>,
    },
    /// `mem ADDR HEX`: write guest RAM.
    Mem {
        /// Guest address.
        addr: u64,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// `expect-mem ADDR HEX`: check guest RAM.
    ExpectMem {
        /// Guest address.
        addr: u64,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// `inject slot=N ...`.
    Inject {
        /// Slot.
        slot: u32,
        /// The fault.
        what: Injection,
    },
    /// `rtas SERVICE ARG... [-> RET...]`: an RTAS call; the returns after
    /// `->` are checked, and their number is `nret` (without them, 2 for
    /// `get-sensor-state` and 1 otherwise).
    Rtas {
        /// The service.
        service: RtasService,
        /// The argument words.
        args: Vec<u32>,
        /// The number of return words.
        nret: usize,
        /// What the returns must be.
        expect: Option<Vec<u32>>,
    },
    /// `plug KEY=VALUE...` (the `nvdimm` keys): the VMM hot-plugs a device.
    Plug(NvdimmConfig),
    /// `unplug slot=N`: the VMM asks the guest to give a device up.
    Unplug {
        /// Slot.
        slot: u32,
    },
    /// `cas hotplug-events=on|off`: the guest's CAS, and whether it
    /// negotiated the dedicated hot-plug event source.
    Cas {
        /// OV5_HP_EVT negotiated.
        hotplug_events: bool,
    },
    /// `time YYYY-MM-DDTHH:MM:SS`: the guest's clock from here on (the
    /// stamp of the hotplug events that follow).
    Time(RtcTime),
    /// `label slot=N offset=OFF HEX`: label bytes a device already holds
    /// (a boot that starts from existing labels, e.g. in a backing file).
    Label {
        /// Slot.
        slot: u32,
        /// Byte offset in the label area.
        offset: u64,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// `label-clear slot=N`: the device's whole label area is zero from
    /// here (before `label` lines that give it what a migration brought).
    LabelClear {
        /// Slot.
        slot: u32,
    },
    /// `reset`: a system reset (the guest reboots), [`Machine::reset`](crate::machine::Machine::reset).
    Reset,
    /// `restore HEX`: the machine takes this snapshot's state
    /// ([`MachineState::encode`](crate::machine::MachineState::encode)), as
    /// on a migration's destination.
    Restore(Vec<u8>),
    /// `flush-status slot=N token=T pending|done|failed`: the VMM's flush
    /// executor answers this to the next start or poll of flush `token` of
    /// `slot`.
    FlushStatus {
        /// Slot.
        slot: u32,
        /// The flush request's token.
        token: u64,
        /// The executor's answer.
        status: FlushStatus,
    },
}

/// A parsed transcript: directives with their line numbers.
///
/// ```
/// use papr_scm::transcript::Transcript;
///
/// let t = Transcript::parse(
///     "machine ram=2G maxmem=8G slots=4\n\
///      nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e\n\
///      call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r4=0\n",
/// )?;
/// let (machine, specs) = t.plan()?;
/// assert_eq!((machine.slots, specs[0].addr), (4, 0x8000_0000));
/// // With std, `replay` runs it against a machine of its own.
/// # #[cfg(feature = "std")]
/// # {
/// let report = papr_scm::replay::replay(&t)?;
/// assert_eq!((report.calls, report.mismatches.len()), (1, 0));
/// # }
/// # Ok::<(), papr_scm::transcript::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transcript {
    /// `(line, directive)` in file order.
    pub lines: Vec<(usize, Directive)>,
}

/// The longest line (bytes, newline included) [`Transcript::read`]
/// accepts: a `mem` line for a whole 256 KiB region fits.
pub const MAX_LINE: usize = 1 << 20;
/// The largest transcript [`Transcript::read`] accepts.
pub const MAX_TRANSCRIPT: u64 = 256 << 20;

impl Transcript {
    /// Parses a whole file held in memory.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut t = Transcript::default();
        for (i, raw) in text.lines().enumerate() {
            t.push_line(i + 1, raw)?;
        }
        Ok(t)
    }

    fn push_line(&mut self, line: usize, raw: &str) -> Result<(), ParseError> {
        if let Some(d) = parse_line(raw).map_err(|reason| ParseError { line, reason })? {
            self.lines.push((line, d));
        }
        Ok(())
    }

    /// Reads and parses a transcript line by line with bounded memory: a
    /// line longer than [`MAX_LINE`] or a file past [`MAX_TRANSCRIPT`] is
    /// refused as soon as it is seen, before it is held whole, and so is a
    /// line that is not UTF-8. I/O errors come back with line 0.
    #[cfg(feature = "std")]
    pub fn read(reader: impl std::io::Read) -> Result<Self, ParseError> {
        Self::read_bounded(reader, MAX_LINE, MAX_TRANSCRIPT)
    }

    #[cfg(feature = "std")]
    fn read_bounded(
        reader: impl std::io::Read,
        max_line: usize,
        max_total: u64,
    ) -> Result<Self, ParseError> {
        use std::io::{BufRead, BufReader, Read};
        let io = |e: std::io::Error| err(0, &alloc::format!("read failed: {e}"));
        let mut r = BufReader::new(reader.take(max_total));
        let mut t = Transcript::default();
        let mut buf = Vec::new();
        let mut line = 0;
        loop {
            line += 1;
            buf.clear();
            let n = (&mut r)
                .take(max_line as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(io)?;
            if n == 0 {
                break;
            }
            if n > max_line {
                return Err(err(line, &alloc::format!("longer than {max_line} bytes")));
            }
            let text = core::str::from_utf8(&buf).map_err(|_| err(line, "not UTF-8"))?;
            t.push_line(line, text.trim_end_matches(['\n', '\r']))?;
        }
        let rest = r.into_inner();
        if rest.limit() == 0 && rest.into_inner().read(&mut [0u8]).map_err(io)? > 0 {
            return Err(err(
                line,
                &alloc::format!("the transcript is larger than {max_total} bytes"),
            ));
        }
        Ok(t)
    }

    /// [`Transcript::read`] of a file; errors start with its path.
    #[cfg(feature = "std")]
    pub fn read_file(path: &std::path::Path) -> Result<Self, std::string::String> {
        let f = std::fs::File::open(path).map_err(|e| alloc::format!("{}: {e}", path.display()))?;
        Transcript::read(f).map_err(|e| alloc::format!("{}: {e}", path.display()))
    }

    /// The `machine` directive and the `nvdimm` directives, in order.
    pub fn config(&self) -> Result<(MachineConfig, Vec<(usize, NvdimmConfig)>), ParseError> {
        let mut machine = None;
        let mut devices = Vec::new();
        for (line, d) in &self.lines {
            match d {
                Directive::Machine(m) => {
                    if machine.is_some() {
                        return Err(err(*line, "a second machine directive"));
                    }
                    machine = Some(*m);
                }
                Directive::Nvdimm(n) => {
                    if machine.is_none() {
                        return Err(err(*line, "nvdimm before the machine directive"));
                    }
                    devices.push((*line, *n));
                }
                _ => {}
            }
        }
        let machine = machine.ok_or_else(|| err(0, "no machine directive"))?;
        Ok((machine, devices))
    }
}

impl Transcript {
    /// Validates the configuration and places the devices, in declaration
    /// order; a rule broken names the line of the device (or machine).
    pub fn plan(&self) -> Result<(MachineConfig, Vec<DeviceSpec>), ParseError> {
        self.planner().map(|(p, specs)| (*p.machine(), specs))
    }

    /// [`Transcript::plan`], keeping the planner for the devices `plug`
    /// lines add later.
    pub fn planner(&self) -> Result<(Planner, Vec<DeviceSpec>), ParseError> {
        let (machine, devices) = self.config()?;
        let machine_line = self
            .lines
            .iter()
            .find(|(_, d)| matches!(d, Directive::Machine(_)))
            .map_or(0, |l| l.0);
        let mut planner = Planner::new(machine).map_err(|e| ParseError {
            line: machine_line,
            reason: e.to_string(),
        })?;
        let specs = devices
            .iter()
            .map(|(line, cfg)| {
                planner.plug(cfg).map_err(|e| ParseError {
                    line: *line,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((planner, specs))
    }
}

fn err(line: usize, reason: &str) -> ParseError {
    ParseError {
        line,
        reason: reason.to_string(),
    }
}

fn parse_time(s: &str) -> Result<RtcTime, String> {
    let bad = || alloc::format!("time: '{s}' is not YYYY-MM-DDTHH:MM:SS");
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    let ([y, mo, da], [h, mi, se]) = (&d[..], &t[..]) else {
        return Err(bad());
    };
    let n = |v: &str, max: u16| v.parse::<u16>().ok().filter(|&v| v <= max).ok_or_else(bad);
    Ok(RtcTime {
        year: n(y, 9999)?,
        month: n(mo, 12)? as u8,
        day: n(da, 31)? as u8,
        hour: n(h, 23)? as u8,
        minute: n(mi, 59)? as u8,
        second: n(se, 59)? as u8,
    })
}

fn parse_word(s: &str) -> Result<u32, String> {
    let v = parse_num(s)?;
    if let Ok(w) = u32::try_from(v) {
        return Ok(w);
    }
    // A negative status, e.g. -3 or -9003.
    i32::try_from(v as i64)
        .map(|w| w as u32)
        .map_err(|_| alloc::format!("'{s}' is not a 32-bit word"))
}

fn parse_rtas(words: &[&str]) -> Result<Directive, String> {
    let (head, tail) = match words.iter().position(|w| *w == "->") {
        Some(i) => (&words[..i], Some(&words[i + 1..])),
        None => (words, None),
    };
    let (name, args) = head.split_first().ok_or("rtas: missing service")?;
    let service = RtasService::ALL
        .iter()
        .find(|(_, n)| n == name)
        .map(|&(s, _)| s)
        .ok_or_else(|| alloc::format!("rtas: unknown service '{name}'"))?;
    let args = args
        .iter()
        .map(|a| parse_word(a))
        .collect::<Result<Vec<_>, _>>()?;
    let expect = tail
        .map(|t| {
            t.iter()
                .map(|a| parse_word(a))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let nret = match &expect {
        Some(e) => e.len(),
        None if service == RtasService::GetSensorState => 2,
        None => 1,
    };
    if args.len() + nret > crate::rtas::RTAS_ARGS_WORDS {
        return Err(alloc::format!(
            "rtas: {} arguments and {nret} returns exceed {} words",
            args.len(),
            crate::rtas::RTAS_ARGS_WORDS
        ));
    }
    Ok(Directive::Rtas {
        service,
        args,
        nret,
        expect,
    })
}

/// Parses one line; `Ok(None)` for blank and comment lines.
pub fn parse_line(raw: &str) -> Result<Option<Directive>, String> {
    let text = raw.split('#').next().unwrap_or("").trim();
    let mut words = text.split_whitespace();
    let Some(kw) = words.next() else {
        return Ok(None);
    };
    let rest: Vec<&str> = words.collect();
    Ok(Some(match kw {
        "machine" => Directive::Machine(parse_machine(&rest)?),
        "nvdimm" => Directive::Nvdimm(parse_nvdimm(&rest)?),
        "call" => parse_call(&rest)?,
        "mem" | "expect-mem" => {
            let [addr, hex] = rest[..] else {
                return Err(alloc::format!("{kw} takes ADDR HEXBYTES"));
            };
            let addr = parse_num(addr)?;
            let bytes = parse_hex(hex)?;
            if kw == "mem" {
                Directive::Mem { addr, bytes }
            } else {
                Directive::ExpectMem { addr, bytes }
            }
        }
        "inject" => parse_inject(&rest)?,
        "rtas" => parse_rtas(&rest)?,
        "plug" => Directive::Plug(parse_nvdimm(&rest)?),
        "unplug" => match key_values(&rest)?[..] {
            [("slot", v)] => Directive::Unplug {
                slot: field("slot", parse_u32(v))?,
            },
            _ => return Err("unplug takes slot=N".to_string()),
        },
        "label" => match rest[..] {
            [a, b, hex] => {
                let kv = key_values(&[a, b])?;
                let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
                let (Some(slot), Some(offset)) = (get("slot"), get("offset")) else {
                    return Err("label takes slot=N offset=OFF HEXBYTES".to_string());
                };
                Directive::Label {
                    slot: field("slot", parse_u32(slot))?,
                    offset: field("offset", parse_num(offset))?,
                    bytes: parse_hex(hex)?,
                }
            }
            _ => return Err("label takes slot=N offset=OFF HEXBYTES".to_string()),
        },
        "label-clear" => match key_values(&rest)?[..] {
            [("slot", v)] => Directive::LabelClear {
                slot: field("slot", parse_u32(v))?,
            },
            _ => return Err("label-clear takes slot=N".to_string()),
        },
        "time" => match rest[..] {
            [t] => Directive::Time(parse_time(t)?),
            _ => return Err("time takes YYYY-MM-DDTHH:MM:SS".to_string()),
        },
        "cas" => match key_values(&rest)?[..] {
            [("hotplug-events", v)] => Directive::Cas {
                hotplug_events: parse_bool("hotplug-events", v)?,
            },
            _ => return Err("cas takes hotplug-events=on|off".to_string()),
        },
        "reset" => match rest[..] {
            [] => Directive::Reset,
            _ => return Err("reset takes nothing".to_string()),
        },
        "restore" => match rest[..] {
            [hex] => Directive::Restore(parse_hex(hex)?),
            _ => return Err("restore takes HEXBYTES (an encoded snapshot)".to_string()),
        },
        "flush-status" => parse_flush_status(&rest)?,
        other => return Err(alloc::format!("unknown directive '{other}'")),
    }))
}

/// The `KEY=VALUE` words of a line; a key given twice is an error (the
/// line means one thing, not "the last one wins").
fn key_values<'a>(words: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut kv: Vec<(&str, &str)> = Vec::with_capacity(words.len());
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| alloc::format!("expected KEY=VALUE, got '{w}'"))?;
        if kv.iter().any(|(seen, _)| *seen == k) {
            return Err(alloc::format!("{k}: given twice"));
        }
        kv.push((k, v));
    }
    Ok(kv)
}

/// Names the field in a value's parse error.
fn field<T>(key: &str, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| {
        if e.starts_with(key) && e[key.len()..].starts_with(':') {
            e
        } else {
            alloc::format!("{key}: {e}")
        }
    })
}

fn parse_machine(words: &[&str]) -> Result<MachineConfig, String> {
    let mut m = MachineConfig::new(0, 0, 0);
    let (mut ram, mut maxmem) = (None, None);
    for (k, v) in key_values(words)? {
        match k {
            "ram" => ram = Some(field(k, parse_size(v))?),
            "maxmem" => maxmem = Some(field(k, parse_size(v))?),
            "slots" => m.slots = field(k, parse_u32(v))?,
            "numa-nodes" => m.numa_nodes = field(k, parse_u32(v))?,
            "numa-form" => {
                m.numa_form = match v {
                    "form1" => NumaForm::Form1,
                    "form2" => NumaForm::Form2,
                    _ => return Err(alloc::format!("numa-form: '{v}' is not form1 or form2")),
                }
            }
            "profile" => {
                m.profile = match v {
                    "qemu" => Profile::Qemu,
                    "papr" => Profile::Papr,
                    _ => return Err(alloc::format!("profile: '{v}' is not qemu or papr")),
                }
            }
            _ => return Err(alloc::format!("machine: unknown key '{k}'")),
        }
    }
    m.ram_size = ram.ok_or("machine: ram= is required")?;
    m.maxmem = maxmem.unwrap_or(m.ram_size);
    Ok(m)
}

fn parse_bool(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(alloc::format!("{k}: '{v}' is not on or off")),
    }
}

fn parse_nvdimm(words: &[&str]) -> Result<NvdimmConfig, String> {
    let mut c = NvdimmConfig::default();
    let mut size = None;
    for (k, v) in key_values(words)? {
        match k {
            "slot" => c.slot = Some(field(k, parse_num(v))?),
            "addr" => c.addr = Some(field(k, parse_num(v))?),
            "size" => size = Some(field(k, parse_size(v))?),
            "label-size" => c.label_size = Some(field(k, parse_size(v))?),
            "uuid" => c.uuid = Some(field(k, parse_uuid(v).map_err(|e| e.to_string()))?),
            "node" => c.node = field(k, parse_u32(v))?,
            "associativity" => {
                let cells = field(
                    k,
                    v.split(',').map(parse_u32).collect::<Result<Vec<_>, _>>(),
                )?;
                c.associativity =
                    Some(Associativity::from_cells(&cells).map_err(|e| e.to_string())?);
            }
            "unarmed" => c.unarmed = field(k, parse_bool(k, v))?,
            "type" => {
                c.kind = match v {
                    "nvdimm" => DeviceKind::Nvdimm,
                    "spapr-nvdimm" => DeviceKind::SpaprNvdimm,
                    _ => return Err(alloc::format!("type: '{v}' is not nvdimm or spapr-nvdimm")),
                }
            }
            "pmem" => c.pmem = field(k, parse_bool(k, v))?,
            "pmem-override" => c.pmem_override = Some(field(k, parse_bool(k, v))?),
            "readonly" => c.readonly = field(k, parse_bool(k, v))?,
            "persistence-failed-count" => {
                c.persistence_failed_count = Some(field(k, parse_num(v))?)
            }
            _ => return Err(alloc::format!("nvdimm: unknown key '{k}'")),
        }
    }
    c.size = size.ok_or("nvdimm: size= is required")?;
    Ok(c)
}

fn parse_call(words: &[&str]) -> Result<Directive, String> {
    let (head, tail) = match words.iter().position(|w| *w == "->") {
        Some(i) => (&words[..i], Some(&words[i + 1..])),
        None => (words, None),
    };
    let (op, args) = head.split_first().ok_or("call: missing opcode")?;
    let opcode = hcall_by_name(op).map_or_else(|| parse_num(op), Ok)?;
    if args.len() > 9 {
        return Err("call: more than nine arguments (r4..r12)".to_string());
    }
    let args = args
        .iter()
        .map(|a| parse_num(a))
        .collect::<Result<_, _>>()?;
    let expect = match tail {
        None => None,
        Some(t) => {
            let (status, regs) = t.split_first().ok_or("call: missing status after ->")?;
            let status = parse_code(status)?;
            let regs = key_values(regs)?
                .into_iter()
                .map(|(k, v)| {
                    let n: u8 = k
                        .strip_prefix('r')
                        .and_then(|n| n.parse().ok())
                        .filter(|n| (4..=12).contains(n))
                        .ok_or_else(|| alloc::format!("call: '{k}' is not r4..r12"))?;
                    Ok((n, field(k, parse_num(v))?))
                })
                .collect::<Result<Vec<(u8, u64)>, String>>()?;
            // r6 and r006 name one register: once only.
            for (i, (n, _)) in regs.iter().enumerate() {
                if regs[..i].iter().any(|(m, _)| m == n) {
                    return Err(alloc::format!("r{n}: given twice"));
                }
            }
            Some(Expect { status, regs })
        }
    };
    Ok(Directive::Call {
        opcode,
        args,
        expect,
    })
}

fn parse_flush_status(words: &[&str]) -> Result<Directive, String> {
    const USAGE: &str = "flush-status takes slot=N token=T pending|done|failed";
    let [a, b, status] = words[..] else {
        return Err(USAGE.to_string());
    };
    let [("slot", slot), ("token", token)] = key_values(&[a, b])?[..] else {
        return Err(USAGE.to_string());
    };
    Ok(Directive::FlushStatus {
        slot: field("slot", parse_u32(slot))?,
        token: field("token", parse_num(token))?,
        status: match status {
            "pending" => FlushStatus::Pending,
            "done" => FlushStatus::Done(true),
            "failed" => FlushStatus::Done(false),
            _ => {
                return Err(alloc::format!(
                    "flush-status: '{status}' is not pending, done or failed"
                ))
            }
        },
    })
}

fn parse_inject(words: &[&str]) -> Result<Directive, String> {
    let kv = key_values(words)?;
    let [("slot", slot), (k, v)] = kv[..] else {
        return Err("inject takes slot=N KEY=VALUE".to_string());
    };
    let slot = field("slot", parse_u32(slot))?;
    let what = match k {
        "health" => Injection::Health(HealthBits::from_bits_retain(field(k, parse_num(v))?)),
        "health-clear" => {
            Injection::HealthClear(HealthBits::from_bits_retain(field(k, parse_num(v))?))
        }
        "flush" => Injection::FlushResult(field(k, parse_code(v))?),
        "flush-hold" => Injection::FlushHold(field(k, parse_u32(v))?),
        "flush-order" => {
            let c = field(k, parse_code(v))?;
            if !c.is_long_busy() {
                return Err(alloc::format!(
                    "flush-order: {c} is not H_LONG_BUSY_ORDER_*"
                ));
            }
            Injection::FlushOrder(c)
        }
        "bind-busy" => Injection::BindBusy(field(k, parse_u32(v))?),
        "bind-budget" => Injection::BindBudget(field(k, parse_num(v))?),
        "stats" => Injection::Stats(match v {
            "on" => StatsMode::Enabled,
            "unsupported" | "off" => StatsMode::Unsupported,
            "authority" => StatsMode::Authority,
            _ => {
                return Err(alloc::format!(
                    "stats: '{v}' is not on, unsupported or authority"
                ))
            }
        }),
        "bound" if v == "all" => Injection::BoundAll,
        _ => return Err(alloc::format!("inject: unknown fault '{k}={v}'")),
    };
    Ok(Directive::Inject { slot, what })
}

/// Parses a number: decimal, `0x` hex, or negative (two's complement).
pub fn parse_num(s: &str) -> Result<u64, String> {
    let bad = || alloc::format!("'{s}' is not a number");
    if let Some(neg) = s.strip_prefix('-') {
        let v = parse_num(neg)?;
        if v > 1 << 63 {
            return Err(bad());
        }
        return Ok(v.wrapping_neg());
    }
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| bad())
}

fn parse_u32(s: &str) -> Result<u32, String> {
    u32::try_from(parse_num(s)?).map_err(|_| alloc::format!("'{s}' does not fit 32 bits"))
}

/// Parses a size: numbers with an optional K/M/G/T suffix (×1024), joined
/// by `+`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.split('+').try_fold(0u64, |acc, part| {
        let (num, shift) = match part.chars().last() {
            Some('K' | 'k') => (&part[..part.len() - 1], 10),
            Some('M' | 'm') => (&part[..part.len() - 1], 20),
            Some('G' | 'g') => (&part[..part.len() - 1], 30),
            Some('T' | 't') => (&part[..part.len() - 1], 40),
            _ => (part, 0),
        };
        parse_num(num)?
            .checked_mul(1 << shift)
            .and_then(|v| acc.checked_add(v))
            .ok_or_else(|| alloc::format!("'{s}' overflows 64 bits"))
    })
}

/// Parses a return code by Linux name or number.
pub fn parse_code(s: &str) -> Result<ReturnCode, String> {
    match ReturnCode::by_name(s) {
        Some(c) => Ok(c),
        None => {
            Ok(ReturnCode::from_reg(parse_num(s).map_err(|_| {
                alloc::format!("'{s}' is not a return code")
            })?))
        }
    }
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err("hex bytes need an even number of digits".to_string());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| alloc::format!("'{s}' is not hex bytes"))
        })
        .collect()
}

/// Writes `v` the way transcripts show numbers: hex, `-N` for small
/// negative values (return-code style), as in `-1`.
struct Num(u64);

/// An RTAS word: small values in decimal (sensor types, states), negative
/// statuses signed, the rest (DRC indexes, addresses) in hex.
struct Word(u32);

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signed = self.0 as i32;
        if self.0 < 0x1_0000 {
            write!(f, "{}", self.0)
        } else if (-0x1_0000..0).contains(&signed) {
            write!(f, "{signed}")
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == u64::MAX {
            f.write_str("-1")
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

fn write_size(f: &mut fmt::Formatter<'_>, v: u64) -> fmt::Result {
    // Split into whole G, M and K parts joined with '+', e.g. 1G+128K.
    let mut parts = 0;
    for (shift, suffix) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K'), (0, ' ')] {
        let unit = 1u64 << shift;
        let n = (v >> shift) & if shift == 40 { u64::MAX } else { 1023 };
        if n == 0 {
            continue;
        }
        if parts > 0 {
            f.write_str("+")?;
        }
        parts += 1;
        if unit == 1 {
            write!(f, "{n}")?;
        } else {
            write!(f, "{n}{suffix}")?;
        }
    }
    if parts == 0 {
        f.write_str("0")?;
    }
    Ok(())
}

struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_size(f, self.0)
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Writes an opcode by its Linux name (or hex).
pub struct Opcode(pub u64);

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match hcall_name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        for (n, v) in &self.regs {
            write!(f, " r{n}={}", Num(*v))?;
        }
        Ok(())
    }
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Directive::Machine(m) => {
                write!(
                    f,
                    "machine ram={} maxmem={} slots={} numa-nodes={} profile={}",
                    Size(m.ram_size),
                    Size(m.maxmem),
                    m.slots,
                    m.numa_nodes,
                    m.profile.name()
                )?;
                if m.numa_form != NumaForm::Form1 {
                    write!(f, " numa-form={}", m.numa_form.name())?;
                }
                Ok(())
            }
            Directive::Nvdimm(c) => {
                f.write_str("nvdimm")?;
                if let Some(s) = c.slot {
                    write!(f, " slot={s}")?;
                }
                if let Some(a) = c.addr {
                    write!(f, " addr={a:#x}")?;
                }
                write!(f, " size={}", Size(c.size))?;
                if let Some(l) = c.label_size {
                    write!(f, " label-size={}", Size(l))?;
                }
                if let Some(u) = c.uuid {
                    write!(f, " uuid={}", u.hyphenated())?;
                }
                if c.node != 0 {
                    write!(f, " node={}", c.node)?;
                }
                if let Some(a) = &c.associativity {
                    f.write_str(" associativity=")?;
                    for (i, v) in a.cells().iter().enumerate() {
                        write!(f, "{}{v}", if i > 0 { "," } else { "" })?;
                    }
                }
                for (on, key) in [(c.unarmed, "unarmed"), (c.pmem, "pmem")] {
                    if on {
                        write!(f, " {key}=on")?;
                    }
                }
                if c.kind != DeviceKind::Nvdimm {
                    write!(f, " type={}", c.kind.name())?;
                }
                if let Some(on) = c.pmem_override {
                    write!(f, " pmem-override={}", if on { "on" } else { "off" })?;
                }
                if c.readonly {
                    f.write_str(" readonly=on")?;
                }
                if let Some(n) = c.persistence_failed_count {
                    write!(f, " persistence-failed-count={n}")?;
                }
                Ok(())
            }
            Directive::Call {
                opcode,
                args,
                expect,
            } => {
                write!(f, "call {}", Opcode(*opcode))?;
                for a in args {
                    write!(f, " {}", Num(*a))?;
                }
                if let Some(e) = expect {
                    write!(f, " -> {e}")?;
                }
                Ok(())
            }
            Directive::Mem { addr, bytes } => write!(f, "mem {addr:#x} {}", Hex(bytes)),
            Directive::ExpectMem { addr, bytes } => {
                write!(f, "expect-mem {addr:#x} {}", Hex(bytes))
            }
            Directive::Rtas {
                service,
                args,
                expect,
                ..
            } => {
                write!(f, "rtas {}", service.name())?;
                for a in args {
                    write!(f, " {}", Word(*a))?;
                }
                if let Some(e) = expect {
                    f.write_str(" ->")?;
                    for r in e {
                        write!(f, " {}", Word(*r))?;
                    }
                }
                Ok(())
            }
            Directive::Plug(c) => {
                // The nvdimm line's keys, after "plug".
                let line = Directive::Nvdimm(*c).to_string();
                write!(f, "plug{}", &line["nvdimm".len()..])
            }
            Directive::Unplug { slot } => write!(f, "unplug slot={slot}"),
            Directive::Label {
                slot,
                offset,
                bytes,
            } => write!(f, "label slot={slot} offset={offset:#x} {}", Hex(bytes)),
            Directive::LabelClear { slot } => write!(f, "label-clear slot={slot}"),
            Directive::Time(t) => write!(
                f,
                "time {:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            ),
            Directive::Reset => f.write_str("reset"),
            Directive::Restore(bytes) => write!(f, "restore {}", Hex(bytes)),
            Directive::FlushStatus {
                slot,
                token,
                status,
            } => write!(
                f,
                "flush-status slot={slot} token={token:#x} {}",
                match status {
                    FlushStatus::Pending => "pending",
                    FlushStatus::Done(true) => "done",
                    FlushStatus::Done(false) => "failed",
                }
            ),
            Directive::Cas { hotplug_events } => write!(
                f,
                "cas hotplug-events={}",
                if *hotplug_events { "on" } else { "off" }
            ),
            Directive::Inject { slot, what } => {
                write!(f, "inject slot={slot} ")?;
                match what {
                    Injection::Health(b) => write!(f, "health={:#x}", b.bits()),
                    Injection::HealthClear(b) => write!(f, "health-clear={:#x}", b.bits()),
                    Injection::FlushResult(c) => write!(f, "flush={c}"),
                    Injection::FlushHold(k) => write!(f, "flush-hold={k}"),
                    Injection::FlushOrder(c) => write!(f, "flush-order={c}"),
                    Injection::BindBusy(k) => write!(f, "bind-busy={k}"),
                    Injection::BindBudget(n) => write!(f, "bind-budget={n}"),
                    Injection::Stats(m) => f.write_str(match m {
                        StatsMode::Enabled => "stats=on",
                        StatsMode::Unsupported => "stats=unsupported",
                        StatsMode::Authority => "stats=authority",
                    }),
                    Injection::BoundAll => f.write_str("bound=all"),
                }
            }
        }
    }
}

/// The non-zero parts of a device's label area as `label` lines (256-byte
/// granules, merged up to 4 KiB a line), so that a trace of a boot that
/// starts from existing labels replays.
pub fn label_lines<L: crate::label::LabelStore + ?Sized>(
    slot: u32,
    store: &L,
) -> Result<Vec<Directive>, crate::label::LabelError> {
    const GRANULE: usize = 256;
    let size = store.size();
    let mut out: Vec<Directive> = Vec::new();
    let mut buf = [0u8; GRANULE];
    let mut off = 0u64;
    while off < size {
        let n = GRANULE.min((size - off) as usize);
        store.read(off, &mut buf[..n])?;
        if buf[..n].iter().any(|&b| b != 0) {
            match out.last_mut() {
                Some(Directive::Label { offset, bytes, .. })
                    if *offset + bytes.len() as u64 == off && bytes.len() < 4096 =>
                {
                    bytes.extend_from_slice(&buf[..n]);
                }
                _ => out.push(Directive::Label {
                    slot,
                    offset: off,
                    bytes: buf[..n].to_vec(),
                }),
            }
        }
        off += n as u64;
    }
    Ok(out)
}

/// A call line for an hcall made with `regs_in` that returned `status` and
/// left `regs_out`; `outputs` lists the registers (4..=12) to record.
pub fn call_line(
    opcode: u64,
    regs_in: &Regs,
    nargs: usize,
    status: ReturnCode,
    regs_out: &Regs,
    outputs: &[u8],
) -> Directive {
    Directive::Call {
        opcode,
        args: regs_in[..nargs.min(9)].to_vec(),
        expect: Some(Expect {
            status,
            regs: outputs
                .iter()
                .filter(|n| (4..=12).contains(*n))
                .map(|&n| (n, regs_out[usize::from(n - 4)]))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcall::*;
    use alloc::format;

    #[test]
    fn test_numbers_and_sizes() {
        assert_eq!(parse_num("0x90000000"), Ok(0x9000_0000));
        assert_eq!(parse_num("42"), Ok(42));
        assert_eq!(parse_num("-1"), Ok(u64::MAX));
        assert_eq!(parse_num("-55"), Ok((-55i64) as u64));
        assert!(parse_num("0xg").is_err());
        assert!(parse_num("").is_err());
        assert!(parse_num("-0x8000000000000001").is_err());
        assert_eq!(parse_size("1G+128K"), Ok((1 << 30) + (128 << 10)));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert!(parse_size("16777216T").is_err());
        assert!(parse_size("1G+").is_err());
    }

    #[test]
    fn test_parse_full_example() {
        let t = Transcript::parse(
            "# a comment\n\
             machine ram=2G maxmem=8G slots=4 numa-nodes=2 profile=qemu\n\
             nvdimm slot=0 size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e node=1 unarmed=on type=spapr-nvdimm pmem=on pmem-override=on readonly=on\n\
             call H_SCM_BIND_MEM 0x90000000 0 4 -1 0 -> H_SUCCESS r5=0x80000000 r6=4   # trailing\n\
             mem 0x1000 53434d53\n\
             expect-mem 0x1000 53434d53\n\
             inject slot=0 health=0x4000000000000000\n\
             inject slot=0 flush=H_HARDWARE\n",
        )
        .unwrap();
        assert_eq!(t.lines.len(), 7);
        let (m, devs) = t.config().unwrap();
        assert_eq!(m.profile, Profile::Qemu);
        assert_eq!(m.numa_nodes, 2);
        assert_eq!(devs[0].0, 3);
        let d = devs[0].1;
        assert!(d.unarmed && d.pmem && d.pmem_override == Some(true) && d.readonly);
        assert_eq!(d.kind, DeviceKind::SpaprNvdimm);
        assert_eq!(
            t.lines[2].1,
            Directive::Call {
                opcode: H_SCM_BIND_MEM,
                args: alloc::vec![0x9000_0000, 0, 4, u64::MAX, 0],
                expect: Some(Expect {
                    status: H_SUCCESS,
                    regs: alloc::vec![(5, 0x8000_0000), (6, 4)]
                })
            }
        );
    }

    #[test]
    fn test_round_trip_through_display() {
        let text = "machine ram=2G maxmem=8G slots=4 numa-nodes=2 profile=papr\n\
             nvdimm slot=1 addr=0xc0000000 size=256M+128K label-size=128K uuid=22222222-3333-4444-8555-666666666666 node=1 associativity=4,0,0,1,1 type=spapr-nvdimm\n\
             call H_SCM_HEALTH 0x90000001 -> H_SUCCESS r4=0x0 r5=0xffe0000000000000\n\
             call 0x3e4 0x90000001 0x0 0x8\n\
             mem 0x1000 00ff\n\
             inject slot=1 stats=authority\n\
             inject slot=1 flush-order=H_LONG_BUSY_ORDER_1_SEC\n\
             inject slot=1 bound=all\n\
             inject slot=1 health-clear=0x4000000000000000\n\
             flush-status slot=1 token=0x2 pending\n\
             flush-status slot=1 token=0x2 failed\n\
             label-clear slot=1\n\
             label slot=1 offset=0x100 4e414d45\n\
             reset\n\
             restore 5053434d534e4150\n";
        let t = Transcript::parse(text).unwrap();
        let written: String = t.lines.iter().map(|(_, d)| format!("{d}\n")).collect();
        let again = Transcript::parse(&written).unwrap();
        let a: Vec<_> = t.lines.iter().map(|l| &l.1).collect();
        let b: Vec<_> = again.lines.iter().map(|l| &l.1).collect();
        assert_eq!(a, b);
        assert!(written.contains("call H_SCM_READ_METADATA 0x90000001 0x0 0x8\n"));
    }

    #[test]
    fn test_errors_name_the_line() {
        let e = Transcript::parse("machine ram=2G\nfrobnicate\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("frobnicate"));
        for bad in [
            "machine maxmem=2G",
            "machine ram=2G profile=kvm",
            "nvdimm label-size=128K",
            "nvdimm size=1G uuid=nope",
            "nvdimm size=1G type=dimm",
            "call",
            "call H_SCM_HEALTH 1 2 3 4 5 6 7 8 9 10",
            "call H_SCM_HEALTH 0x90000000 ->",
            "call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r3=0",
            "call H_SCM_HEALTH 0x90000000 -> H_NOPE",
            "mem 0x1000 abc",
            "mem 0x1000",
            "inject slot=0",
            "inject slot=0 flush-order=H_BUSY",
            "inject slot=0 stats=maybe",
            "inject health=1 slot=0",
            "reset now",
            "restore",
            "restore 0x12",
            "label-clear",
            "label-clear slot=0 offset=0",
            "label-clear 0",
            "label-clear slot=-2",
            "label-clear slot=0x100000000",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        let e = Transcript::parse("nvdimm size=1G\n").unwrap().config();
        assert_eq!(e.unwrap_err().line, 1);
        assert!(Transcript::parse("").unwrap().config().is_err());
    }

    #[test]
    fn test_call_line_writer() {
        let regs_in = [0x9000_0000, 0, 4, u64::MAX, 0, 7, 7, 7, 7];
        let mut regs_out = regs_in;
        regs_out[1] = 0x8000_0000;
        let d = call_line(H_SCM_BIND_MEM, &regs_in, 5, H_SUCCESS, &regs_out, &[4, 5]);
        assert_eq!(
            format!("{d}"),
            "call H_SCM_BIND_MEM 0x90000000 0x0 0x4 -1 0x0 -> H_SUCCESS r4=0x90000000 r5=0x80000000"
        );
    }

    /// Every value error names its field; a key given twice is refused.
    #[test]
    fn test_value_errors_name_the_field() {
        let m = "machine ram=2G maxmem=8G slots=4\n";
        let dev = "nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e";
        for (text, field) in [
            (
                alloc::format!("machine ram=2G slots={}\n", 1u64 << 32),
                "slots:",
            ),
            (
                alloc::format!("machine ram=2G numa-nodes={}\n", 1u64 << 32),
                "numa-nodes:",
            ),
            (alloc::format!("{m}{dev} node={}\n", 1u64 << 32), "node:"),
            (alloc::format!("{m}{dev} slot=abc\n"), "slot:"),
            (
                alloc::format!("{m}nvdimm size=1G label-size=16777216T\n"),
                "label-size:",
            ),
            (alloc::format!("{m}{dev} size=2G\n"), "size: given twice"),
            ("machine ram=2G ram=4G\n".to_string(), "ram: given twice"),
            (
                alloc::format!("{m}call H_SCM_HEALTH 0x90000000 -> H_SUCCESS r6=1 r006=1\n"),
                "r6: given twice",
            ),
            (alloc::format!("{m}inject slot=x health=1\n"), "slot:"),
            (
                alloc::format!("{m}inject slot=0 flush-hold={}\n", 1u64 << 32),
                "flush-hold:",
            ),
        ] {
            let e = Transcript::parse(&text).unwrap_err();
            assert!(e.reason.starts_with(field), "{text}: {}", e.reason);
        }
    }

    /// A reader that never ends a line: `read` gives up after 1 MiB instead
    /// of holding the line (the old whole-file read took 13x a 100 MB line).
    #[cfg(feature = "std")]
    #[test]
    fn test_read_bounds_lines_and_files() {
        struct Endless;
        impl std::io::Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(b'a');
                Ok(buf.len())
            }
        }
        let e = Transcript::read(Endless).unwrap_err();
        assert_eq!(
            (e.line, e.reason.as_str()),
            (1, "longer than 1048576 bytes")
        );
        let ok = "machine ram=2G\r\n# c\n\ncall H_SCM_HEALTH 0x90000000\n";
        let t = Transcript::read(ok.as_bytes()).unwrap();
        assert_eq!(t, Transcript::parse(ok).unwrap());
        assert_eq!(t.lines[1].0, 4);
        let e = Transcript::read(&b"machine ram=2G\n\xff\n"[..]).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (2, "not UTF-8"));
        // Newline-separated lines forever: the file limit ends it.
        struct Lines(u64);
        impl std::io::Read for Lines {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                for b in buf.iter_mut() {
                    self.0 += 1;
                    *b = if self.0 % 64 == 0 { b'\n' } else { b' ' };
                }
                Ok(buf.len())
            }
        }
        let e = Transcript::read_bounded(Lines(0), 100, 64 * 1000).unwrap_err();
        assert_eq!(e.reason, "the transcript is larger than 64000 bytes");
        // Exactly at the limit is fine.
        let exact = "# 64 bytes, a comment line as the limit .......................\n";
        assert_eq!(exact.len(), 64);
        assert!(Transcript::read_bounded(exact.as_bytes(), 100, 64).is_ok());
    }
}
