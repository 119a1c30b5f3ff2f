// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A model of the Linux `papr_scm` driver and the libnvdimm code around it
//! (Linux 6.1, `arch/powerpc/platforms/pseries/papr_scm.c`,
//! `drivers/nvdimm/label.c`, `drivers/nvdimm/dimm_devs.c`), for testing a
//! hypervisor's answers without booting a POWER guest.
//!
//! The model finds devices in a device-tree blob, probes them with the
//! driver's hcalls in the driver's order and with its loops (bind with
//! H_BUSY and continue tokens, H_OVERLAP recovery, the flush loop), reads
//! the label index blocks as `nd_label_data_init` does, and records every
//! hcall. It talks to any hypervisor through [`Hypervisor`]: this crate's
//! [`Machine`] in-process, a recorded trace, or a remote bridge.

use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use byteorder::{BigEndian, ByteOrder, LittleEndian};
use thiserror::Error;

use crate::hcall::*;
use crate::host::{GuestMemoryError, Host};
use crate::machine::{Machine, SlotTable};
use crate::rtas::RtasService;

mod dlpar;
use crate::stats::{SCMSTATS_EYECATCHER, SCMSTATS_VERSION};
use crate::transcript::{call_line, Directive};
pub use dlpar::{
    cc_device_node, parse_hotplug_section, CcNode, DlparError, DlparOutcome, HotplugRequest,
    Pseries, RTAS_ERROR_LOG_MAX, RTAS_HOTPLUG_EVENTS,
};

/// A hypervisor as the guest sees it: hcalls and guest memory.
pub trait Hypervisor {
    /// Makes hcall `opcode` with r4..r12 in `regs`; returns r3, leaves the
    /// outputs in `regs`.
    fn hcall(&mut self, opcode: u64, regs: &mut Regs) -> ReturnCode;

    /// Writes guest memory (the guest's own stores).
    fn write_guest(&mut self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError>;

    /// Reads guest memory (the guest's own loads).
    fn read_guest(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError>;

    /// Makes RTAS call `service` with `args`, writing `rets`; false if the
    /// hypervisor has no RTAS (the default: an hcall-only hypervisor).
    fn rtas(&mut self, service: RtasService, args: &[u32], rets: &mut [u32]) -> bool {
        let _ = (service, args, rets);
        false
    }
}

impl<S: SlotTable, H: Host> Hypervisor for &Machine<S, H> {
    fn hcall(&mut self, opcode: u64, regs: &mut Regs) -> ReturnCode {
        // Unknown opcodes get H_FUNCTION, as from any PAPR hypervisor.
        self.handle(opcode, regs).unwrap_or(H_FUNCTION)
    }
    fn write_guest(&mut self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        self.host().write_guest(gpa, data)
    }
    fn read_guest(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        self.host().read_guest(gpa, buf)
    }
}

/// Why a device node cannot be probed, or a probe failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    /// A required property is missing (Linux: `-ENODEV`, before any hcall).
    #[error("{node}: missing {property}")]
    Missing {
        /// Node name.
        node: String,
        /// Property name.
        property: &'static str,
    },
    /// A property is shorter than the guest reads (e.g. a 4-byte block size).
    #[error("{node}: {property} is {len} bytes, needs {need}")]
    Short {
        /// Node name.
        node: String,
        /// Property name.
        property: &'static str,
        /// Its length.
        len: usize,
        /// What the guest reads.
        need: usize,
    },
    /// H_SCM_BIND_MEM failed ("bind err: rc"); long-busy is fatal here.
    #[error("bind err: {0}")]
    Bind(ReturnCode),
    /// The region is not a multiple of the page size (`nd_region_create`).
    #[error("region [{addr:#x}, +{size:#x}) is not aligned to the {page:#x}-byte page size")]
    PageSize {
        /// Bound address.
        addr: u64,
        /// Region size.
        size: u64,
        /// Guest page size.
        page: u64,
    },
}

/// A blob the model cannot use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiscoverError {
    /// Not a well-formed flattened device tree.
    #[error(transparent)]
    Blob(#[from] crate::fdt::BlobError),
    /// No node with `device_type = "ibm,persistent-memory"`.
    #[error("no ibm,persistent-memory node")]
    NoParent,
}

/// One `ibm,pmemory` node, as `papr_scm_probe` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Node name, e.g. `ibm,pmemory@90000000`.
    pub name: String,
    /// `ibm,my-drc-index`.
    pub drc: u32,
    /// `ibm,block-size`.
    pub block_size: u64,
    /// `ibm,number-of-blocks`.
    pub blocks: u64,
    /// `ibm,unit-guid`.
    pub uuid: String,
    /// `ibm,metadata-size` (optional to the driver, required in practice).
    pub metadata_size: Option<u32>,
    /// `ibm,cache-flush-required` present: a persistent region.
    pub cache_flush: bool,
    /// `ibm,hcall-flush-required` present: an async region using H_SCM_FLUSH.
    pub hcall_flush: bool,
    /// `ibm,persistence-failed-count` (default 0).
    pub dirty_shutdown_count: u64,
    /// Matched through `ibm,pmemory-v2`.
    pub v2: bool,
}

/// Finds the devices of the first `ibm,persistent-memory` node, like
/// `pseries_pmem_init` and `papr_scm_probe`; each child either parses or
/// carries the probe error the guest would log.
pub fn discover(dtb: &[u8]) -> Result<Vec<Result<DeviceNode, ProbeError>>, DiscoverError> {
    // The fdt crate trusts its input; malformed blobs stop here.
    crate::fdt::check_blob(dtb)?;
    let tree = ::fdt::Fdt::new(dtb).map_err(|_| DiscoverError::NoParent)?;
    let parent = tree
        .all_nodes()
        .find(|n| {
            n.property("device_type").and_then(|p| p.as_str()) == Some("ibm,persistent-memory")
        })
        .ok_or(DiscoverError::NoParent)?;
    Ok(parent
        .children()
        .filter_map(|n| {
            let compat = n.compatible()?;
            let v2 = compat.all().any(|c| c == "ibm,pmemory-v2");
            (v2 || compat.all().any(|c| c == "ibm,pmemory"))
                .then(|| parse_node(n.name, |p| n.property(p).map(|p| p.value), v2))
        })
        .collect())
}

/// `papr_scm_probe`'s reading of a node's properties, from a blob or from
/// the node configure-connector built (`find(name)` returns a value).
fn parse_node<'a>(
    name: &str,
    find: impl Fn(&str) -> Option<&'a [u8]>,
    v2: bool,
) -> Result<DeviceNode, ProbeError> {
    let name = name.to_string();
    let prop = |p: &'static str, need: usize| -> Result<&[u8], ProbeError> {
        let v = find(p).ok_or_else(|| ProbeError::Missing {
            node: name.clone(),
            property: p,
        })?;
        if v.len() < need {
            return Err(ProbeError::Short {
                node: name.clone(),
                property: p,
                len: v.len(),
                need,
            });
        }
        Ok(v)
    };
    let drc = BigEndian::read_u32(prop("ibm,my-drc-index", 4)?);
    let block_size = BigEndian::read_u64(prop("ibm,block-size", 8)?);
    let blocks = BigEndian::read_u64(prop("ibm,number-of-blocks", 8)?);
    let guid = prop("ibm,unit-guid", 1)?;
    // of_property_read_string: a NUL-terminated string.
    let end = guid
        .iter()
        .position(|b| *b == 0)
        .ok_or(ProbeError::Missing {
            node: name.clone(),
            property: "ibm,unit-guid",
        })?;
    let uuid = String::from_utf8_lossy(&guid[..end]).into_owned();
    let metadata_size = find("ibm,metadata-size")
        .filter(|v| v.len() >= 4)
        .map(BigEndian::read_u32);
    let dirty_shutdown_count = find("ibm,persistence-failed-count")
        .filter(|v| v.len() >= 8)
        .map_or(0, BigEndian::read_u64);
    Ok(DeviceNode {
        name,
        drc,
        block_size,
        blocks,
        uuid,
        metadata_size,
        cache_flush: find("ibm,cache-flush-required").is_some(),
        hcall_flush: find("ibm,hcall-flush-required").is_some(),
        dirty_shutdown_count,
        v2,
    })
}

/// How the guest registers the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// `ibm,cache-flush-required`: persistent, synchronous.
    Persistent,
    /// Persistent, flushed with H_SCM_FLUSH (`ND_REGION_ASYNC`).
    Async,
    /// No `ibm,cache-flush-required`: a volatile region.
    Volatile,
}

/// What the PERFORMANCE_STATS size query at probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsSupport {
    /// Supported; the all-stats buffer size.
    Supported(u64),
    /// H_UNSUPPORTED (quiet) or H_AUTHORITY (info): stats off.
    Off(ReturnCode),
    /// Any other status: stats off, with an error-level message.
    Failed(ReturnCode),
}

/// Severity of a driver message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `dev_dbg`.
    Debug,
    /// `dev_info`.
    Info,
    /// `dev_warn`.
    Warn,
    /// `dev_err`.
    Error,
}

/// A message the driver would log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Severity.
    pub level: Level,
    /// Text, after the driver's own wording.
    pub text: String,
}

/// The label index libnvdimm found at probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelState {
    /// Both index blocks read; neither valid (a blank label area).
    NoIndex,
    /// A valid index: which block is current, the label size and the label
    /// slots in use (whose labels were read).
    Index {
        /// 0 or 1.
        current: usize,
        /// 128 or 256.
        label_size: u64,
        /// Slots in use.
        used: Vec<u32>,
    },
    /// The label area could not be read (the DIMM probe fails).
    Failed(String),
}

/// One probed device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbedDevice {
    /// The node.
    pub node: DeviceNode,
    /// Guest-physical address of block 0.
    pub addr: u64,
    /// Region size: blocks × block size.
    pub size: u64,
    /// `r4 & r5` of the probe-time H_SCM_HEALTH.
    pub health: u64,
    /// The words of `papr/flags`.
    pub flags: Vec<&'static str>,
    /// Unarmed (bit 0 or 6): the region is read-only.
    pub read_only: bool,
    /// Region kind.
    pub persistence: Persistence,
    /// Performance statistics.
    pub stats: StatsSupport,
    /// Label area size (`ibm,metadata-size`).
    pub label_size: u64,
    /// What the label-index read found.
    pub labels: LabelState,
    /// What the driver logged.
    pub events: Vec<Event>,
}

impl ProbedDevice {
    /// The device's DRC index as the guest passes it.
    pub fn drc(&self) -> u64 {
        u64::from(self.node.drc)
    }
}

impl fmt::Display for ProbedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drc {:#x} bound to [{:#x}, +{:#x}) {:?}{}, label {} KiB, stats {}, flags [{}]",
            self.node.drc,
            self.addr,
            self.size,
            self.persistence,
            if self.read_only { " read-only" } else { "" },
            self.label_size / 1024,
            match self.stats {
                StatsSupport::Supported(n) => std::format!("{n} bytes"),
                StatsSupport::Off(rc) | StatsSupport::Failed(rc) => std::format!("off ({rc})"),
            },
            self.flags.join(" ")
        )
    }
}

/// One step of the guest's hcall trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceItem {
    /// An hcall.
    Call {
        /// Opcode.
        opcode: u64,
        /// r4..r12 as passed.
        regs_in: Regs,
        /// Number of argument registers the wrapper passes.
        nargs: usize,
        /// r3 returned.
        status: ReturnCode,
        /// r4..r12 after the call.
        regs_out: Regs,
        /// The output registers the guest reads.
        reads: &'static [u8],
    },
    /// Guest memory around a call: [`Directive::Mem`] for bytes the guest
    /// stored before it, [`Directive::ExpectMem`] for bytes it read after.
    Memory(Directive),
    /// An RTAS call and the returns it got.
    Rtas {
        /// The service.
        service: RtasService,
        /// The argument words.
        args: Vec<u32>,
        /// The return words.
        rets: Vec<u32>,
    },
    /// What the VMM did meanwhile (`plug`, `unplug`, `cas`), noted by the
    /// test with [`Guest::note`].
    Vmm(Directive),
}

impl TraceItem {
    /// The transcript line for this step.
    pub fn directive(&self) -> Directive {
        match self {
            TraceItem::Call {
                opcode,
                regs_in,
                nargs,
                status,
                regs_out,
                reads,
            } => call_line(*opcode, regs_in, *nargs, *status, regs_out, reads),
            TraceItem::Memory(d) | TraceItem::Vmm(d) => d.clone(),
            TraceItem::Rtas {
                service,
                args,
                rets,
            } => Directive::Rtas {
                service: *service,
                args: args.clone(),
                nret: rets.len(),
                expect: Some(rets.clone()),
            },
        }
    }
}

/// Argument count and the output registers the guest reads, per hcall (the
/// wrapper table of `plpar_hcall` / `plpar_hcall_norets` uses in papr_scm.c).
pub fn wrapper_abi(opcode: u64) -> (usize, &'static [u8]) {
    match opcode {
        H_SCM_BIND_MEM => (5, &[4, 5]),
        H_SCM_UNBIND_MEM => (4, &[4]),
        H_SCM_UNBIND_ALL => (3, &[4]),
        H_SCM_QUERY_BLOCK_MEM_BINDING => (2, &[4]),
        H_SCM_QUERY_LOGICAL_MEM_BINDING => (1, &[4, 5]),
        H_SCM_READ_METADATA => (3, &[4]),
        H_SCM_WRITE_METADATA => (4, &[]),
        H_SCM_HEALTH => (1, &[4, 5]),
        H_SCM_PERFORMANCE_STATS => (3, &[4]),
        H_SCM_FLUSH => (2, &[4]),
        _ => (9, &[4]),
    }
}

/// A guest I/O error, as errno-like values of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IoError {
    /// Bad bounds (`-EINVAL` / `-ENXIO` before any hcall).
    #[error("out of bounds")]
    Bounds,
    /// The hypervisor said H_PARAMETER (`-ENODEV`, "bad DRC").
    #[error("no device")]
    NoDevice,
    /// Any other status.
    #[error("hypervisor returned {0}")]
    Hcall(ReturnCode),
    /// Guest memory could not be accessed.
    #[error("guest memory")]
    Memory,
}

/// The result of a flush loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    /// Calls made.
    pub calls: u32,
    /// Total long-busy sleep hinted (the model does not sleep).
    pub slept_ms: u64,
}

/// Namespace index signature.
pub const NSINDEX_SIGNATURE: &[u8; 16] = b"NAMESPACE_INDEX\0";
const NSINDEX_ALIGN: u64 = 256;
const NSINDEX_HEADER: u64 = 72;
/// libnvdimm's transfer size for papr_scm (`max_xfer`).
pub const MAX_XFER: u64 = 8;

/// `__sizeof_namespace_index`.
fn sizeof_index_for(nslot: u64) -> u64 {
    (NSINDEX_HEADER + nslot.div_ceil(8)).div_ceil(NSINDEX_ALIGN) * NSINDEX_ALIGN
}

/// `nvdimm_num_label_slots`.
fn num_label_slots(config: u64, label: u64) -> u64 {
    let tmp = config / label;
    let n = sizeof_index_for(tmp) / NSINDEX_ALIGN;
    config.saturating_sub(NSINDEX_ALIGN * n * 2) / label
}

/// `sizeof_namespace_index`: 0 if the area cannot hold two indexes and two
/// labels.
pub fn sizeof_namespace_index(config: u64, label: u64) -> u64 {
    let nslot = num_label_slots(config, label);
    let space = config.saturating_sub(nslot * label);
    let size = sizeof_index_for(nslot) * 2;
    if size <= space && nslot >= 2 {
        size / 2
    } else {
        0
    }
}

/// `nd_fletcher64` over little-endian 32-bit words.
pub fn fletcher64(data: &[u8]) -> u64 {
    let (mut lo, mut hi) = (0u32, 0u32);
    for w in data.chunks_exact(4) {
        lo = lo.wrapping_add(LittleEndian::read_u32(w));
        hi = hi.wrapping_add(lo);
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

fn inc_seq(seq: u32) -> u32 {
    [0, 2, 3, 1][(seq & 3) as usize]
}

/// Builds one v1.2 namespace index block (`nd_label_write_index`): `seq`,
/// slot `i` free unless listed in `used`.
pub fn namespace_index(config: u64, label: u64, which: u64, seq: u32, used: &[u32]) -> Vec<u8> {
    let size = sizeof_namespace_index(config, label);
    let nslot = num_label_slots(config, label);
    let mut b = std::vec![0u8; size as usize];
    b[..16].copy_from_slice(NSINDEX_SIGNATURE);
    b[19] = (label.trailing_zeros() - 7) as u8;
    LittleEndian::write_u32(&mut b[20..24], seq);
    LittleEndian::write_u64(&mut b[24..32], which * size);
    LittleEndian::write_u64(&mut b[32..40], size);
    LittleEndian::write_u64(&mut b[40..48], (1 - which) * size);
    LittleEndian::write_u64(&mut b[48..56], 2 * size);
    LittleEndian::write_u32(&mut b[56..60], nslot as u32);
    LittleEndian::write_u16(&mut b[60..62], 1);
    LittleEndian::write_u16(&mut b[62..64], 2);
    for i in 0..nslot {
        if !used.contains(&(i as u32)) {
            b[(NSINDEX_HEADER + i / 8) as usize] |= 1 << (i % 8);
        }
    }
    let sum = fletcher64(&b);
    LittleEndian::write_u64(&mut b[64..72], sum);
    b
}

/// The guest: a hypervisor, the trace, and the driver's knobs.
#[derive(Debug)]
pub struct Guest<V> {
    hv: V,
    trace: Vec<TraceItem>,
    /// Guest page size; regions must be multiples (64 KiB on ppc64).
    pub page_size: u64,
    /// Guest-physical address of the statistics buffer.
    pub stats_buffer: u64,
    /// Real address of the buffer the hotplug interrupt passes to
    /// `check-exception` (Linux `ras_log_buf`).
    pub rtas_buffer: u32,
    /// Real address of the configure-connector work area (Linux
    /// `rtas_data_buf`).
    pub rtas_data_buf: u64,
}

impl<V> Guest<V> {
    /// A guest on `hv` with 64 KiB pages and its stats buffer at 0x10000.
    pub fn new(hv: V) -> Self {
        Guest {
            hv,
            trace: Vec::new(),
            page_size: 0x10000,
            stats_buffer: 0x10000,
            rtas_buffer: 0x20000,
            rtas_data_buf: 0x30000,
        }
    }

    /// The hypervisor.
    pub fn hypervisor(&mut self) -> &mut V {
        &mut self.hv
    }

    /// Every step so far.
    pub fn trace(&self) -> &[TraceItem] {
        &self.trace
    }

    /// Records something the VMM did between the guest's calls, so the
    /// transcript replays it in order.
    pub fn note(&mut self, d: Directive) {
        self.trace.push(TraceItem::Vmm(d));
    }

    /// The trace as transcript lines.
    pub fn trace_transcript(&self) -> String {
        self.trace
            .iter()
            .map(|t| std::format!("{}\n", t.directive()))
            .collect()
    }
}

impl<V: Hypervisor> Guest<V> {
    /// Makes one hcall with the wrapper's argument count and records it.
    pub fn call(&mut self, opcode: u64, args: &[u64]) -> (ReturnCode, Regs) {
        let (nargs, reads) = wrapper_abi(opcode);
        let mut regs: Regs = [0; 9];
        regs[..args.len()].copy_from_slice(args);
        let regs_in = regs;
        let status = self.hv.hcall(opcode, &mut regs);
        self.trace.push(TraceItem::Call {
            opcode,
            regs_in,
            nargs: nargs.max(args.len()),
            status,
            regs_out: regs,
            reads,
        });
        (status, regs)
    }

    fn store(&mut self, addr: u64, bytes: &[u8]) -> Result<(), IoError> {
        self.hv
            .write_guest(addr, bytes)
            .map_err(|_| IoError::Memory)?;
        self.trace.push(TraceItem::Memory(Directive::Mem {
            addr,
            bytes: bytes.to_vec(),
        }));
        Ok(())
    }

    fn load(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, IoError> {
        let mut b = std::vec![0u8; len];
        self.hv
            .read_guest(addr, &mut b)
            .map_err(|_| IoError::Memory)?;
        self.trace.push(TraceItem::Memory(Directive::ExpectMem {
            addr,
            bytes: b.clone(),
        }));
        Ok(b)
    }

    /// `drc_pmem_bind`: the bind loop. H_BUSY re-issues with the token from
    /// r4; the address is the first non-zero r5.
    fn bind(&mut self, n: &DeviceNode) -> Result<u64, ReturnCode> {
        let (mut token, mut saved) = (0u64, 0u64);
        loop {
            let (rc, r) = self.call(
                H_SCM_BIND_MEM,
                &[u64::from(n.drc), 0, n.blocks, BIND_ANY_ADDR, token],
            );
            token = r[0];
            if saved == 0 {
                saved = r[1];
            }
            if rc != H_BUSY {
                return if rc == H_SUCCESS { Ok(saved) } else { Err(rc) };
            }
        }
    }

    /// `drc_pmem_unbind`: UNBIND_ALL (scope DRC) with H_BUSY and long-busy
    /// retries; the final status is only logged by the driver.
    pub fn unbind_all(&mut self, drc: u64) -> ReturnCode {
        let mut token = 0;
        loop {
            let (rc, r) = self.call(H_SCM_UNBIND_ALL, &[H_UNBIND_SCOPE_DRC, drc, token]);
            token = r[0];
            if rc != H_BUSY && !rc.is_long_busy() {
                return rc;
            }
        }
    }

    /// `drc_pmem_query_n_bind`: after H_OVERLAP, reuse a contiguous binding
    /// found through QUERY_BLOCK_MEM_BINDING, else unbind all and bind again.
    fn query_n_bind(&mut self, n: &DeviceNode, events: &mut Vec<Event>) -> Result<u64, ReturnCode> {
        let drc = u64::from(n.drc);
        let (rc0, r0) = self.call(H_SCM_QUERY_BLOCK_MEM_BINDING, &[drc, 0]);
        if rc0 == H_SUCCESS {
            let start = r0[0];
            let last = n.blocks.saturating_sub(1);
            let (rc1, r1) = self.call(H_SCM_QUERY_BLOCK_MEM_BINDING, &[drc, last]);
            if rc1 == H_SUCCESS && r1[0].wrapping_sub(start) == last.wrapping_mul(n.block_size) {
                event(
                    events,
                    Level::Info,
                    std::format!("Reusing the existing binding at {start:#x}"),
                );
                return Ok(start);
            }
        }
        event(
            events,
            Level::Info,
            "Failed to query, trying an unbind followed by bind".into(),
        );
        let rc = self.unbind_all(drc);
        if rc != H_SUCCESS {
            event(events, Level::Error, std::format!("unbind error: {rc}"));
        }
        self.bind(n)
    }

    /// `papr_scm_probe` + `papr_scm_nvdimm_init` + the label-index read of
    /// `nd_label_data_init`, in the driver's order.
    pub fn probe(&mut self, n: &DeviceNode) -> Result<ProbedDevice, (ProbeError, Vec<Event>)> {
        let mut events = Vec::new();
        let drc = u64::from(n.drc);
        let addr = match self.bind(n) {
            Ok(a) => a,
            Err(H_OVERLAP) => match self.query_n_bind(n, &mut events) {
                Ok(a) => a,
                Err(rc) => return Err(bind_failed(rc, events)),
            },
            Err(rc) => return Err(bind_failed(rc, events)),
        };
        event(
            &mut events,
            Level::Debug,
            std::format!("bound drc {drc:#x} to {addr:#x}"),
        );

        // drc_pmem_query_stats(p, NULL, 0)
        let (rc, r) = self.call(H_SCM_PERFORMANCE_STATS, &[drc, 0, 0]);
        let stats = match rc {
            H_SUCCESS if (r[0] as i64) > 0 => StatsSupport::Supported(r[0]),
            H_SUCCESS => StatsSupport::Failed(rc),
            H_UNSUPPORTED => {
                event(
                    &mut events,
                    Level::Debug,
                    "Performance stats unsupported".into(),
                );
                StatsSupport::Off(rc)
            }
            H_AUTHORITY => {
                event(
                    &mut events,
                    Level::Info,
                    "Permission denied while accessing performance stats".into(),
                );
                StatsSupport::Off(rc)
            }
            _ => {
                event(
                    &mut events,
                    Level::Error,
                    std::format!("Failed to query performance stats, Err:{}", rc.0),
                );
                StatsSupport::Failed(rc)
            }
        };

        // papr_scm_nvdimm_init: one health query, its error ignored.
        let (rc, r) = self.call(H_SCM_HEALTH, &[drc]);
        let health = match rc {
            H_SUCCESS => r[0] & r[1],
            H_FUNCTION => {
                event(
                    &mut events,
                    Level::Info,
                    "Health query unsupported, assuming empty bitmap".into(),
                );
                0
            }
            _ => {
                event(
                    &mut events,
                    Level::Error,
                    std::format!("Failed to query health information, Err:{}", rc.0),
                );
                0
            }
        };
        event(
            &mut events,
            Level::Debug,
            std::format!(
                "Queried dimm health info. Bitmap:{:#018x} Mask:{:#018x}",
                r[0],
                r[1]
            ),
        );
        let read_only = health & (ppc_bit(0) | ppc_bit(6)) != 0;

        let size = n.blocks.wrapping_mul(n.block_size);
        if size % self.page_size != 0 || addr % self.page_size != 0 {
            self.unbind_all(drc);
            return Err((
                ProbeError::PageSize {
                    addr,
                    size,
                    page: self.page_size,
                },
                events,
            ));
        }
        let persistence = match (n.cache_flush, n.hcall_flush) {
            (false, _) => Persistence::Volatile,
            (true, true) => Persistence::Async,
            (true, false) => Persistence::Persistent,
        };
        let label_size = match n.metadata_size {
            Some(s) => u64::from(s),
            None => {
                event(
                    &mut events,
                    Level::Warn,
                    "ibm,metadata-size missing: label area size undefined".into(),
                );
                0
            }
        };
        let mut dev = ProbedDevice {
            node: n.clone(),
            addr,
            size,
            health,
            flags: flags_words(health),
            read_only,
            persistence,
            stats,
            label_size,
            labels: LabelState::NoIndex,
            events,
        };
        dev.labels = self.label_data_init(&dev);
        Ok(dev)
    }

    /// `nd_label_data_init`: read both index blocks in one pass of 8-byte
    /// transfers, validate them, then read the labels of used slots.
    fn label_data_init(&mut self, dev: &ProbedDevice) -> LabelState {
        let config = dev.label_size;
        let mut read_size = sizeof_namespace_index(config, 128) * 2;
        if read_size == 0 {
            return LabelState::Failed(std::format!(
                "label area ({config}) too small to host (128 byte) labels"
            ));
        }
        let max_xfer = MAX_XFER.min(config);
        read_size = (read_size.div_ceil(max_xfer) * max_xfer).min(config);
        let mut data = std::vec![0u8; config as usize];
        if let Err(e) = self.read_label(dev, 0, &mut data[..read_size as usize]) {
            return LabelState::Failed(e.to_string());
        }
        let Some((current, label)) = validate_index(&data, config) else {
            return LabelState::NoIndex;
        };
        let isize = sizeof_namespace_index(config, label) as usize;
        let idx = &data[current * isize..(current + 1) * isize];
        let mut offset = LittleEndian::read_u64(&idx[48..56]);
        let nslot = LittleEndian::read_u32(&idx[56..60]);
        let free = idx[NSINDEX_HEADER as usize..].to_vec();
        let mut used = Vec::new();
        for i in 0..nslot {
            let is_free = free
                .get((i / 8) as usize)
                .is_some_and(|b| b & (1 << (i % 8)) != 0);
            if !is_free {
                used.push(i);
                if offset + label > read_size {
                    read_size = read_size.max(offset);
                    let want = (offset + label - read_size).div_ceil(max_xfer) * max_xfer;
                    let len = want.min(config - read_size);
                    let (s, e) = (read_size as usize, (read_size + len) as usize);
                    if let Err(err) = self.read_label(dev, read_size, &mut data[s..e]) {
                        return LabelState::Failed(err.to_string());
                    }
                    read_size += len;
                }
            }
            offset += label;
        }
        LabelState::Index {
            current,
            label_size: label,
            used,
        }
    }

    /// Reads the label area as libnvdimm does: commands of at most
    /// [`MAX_XFER`] bytes, each split by papr_scm into 8, 4, 2, 1-byte
    /// H_SCM_READ_METADATA calls, with both bounds checks.
    pub fn read_label(
        &mut self,
        dev: &ProbedDevice,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), IoError> {
        self.label_io(dev, offset, buf.len(), |g, off, chunk, at| {
            let (rc, r) = g.call(H_SCM_READ_METADATA, &[dev.drc(), off, chunk as u64]);
            check_meta(rc)?;
            let mut be = [0u8; 8];
            BigEndian::write_u64(&mut be, r[0]);
            buf[at..at + chunk].copy_from_slice(&be[8 - chunk..]);
            Ok(())
        })
    }

    /// Writes the label area as libnvdimm does (H_SCM_WRITE_METADATA).
    pub fn write_label(
        &mut self,
        dev: &ProbedDevice,
        offset: u64,
        data: &[u8],
    ) -> Result<(), IoError> {
        self.label_io(dev, offset, data.len(), |g, off, chunk, at| {
            let value = BigEndian::read_uint(&data[at..at + chunk], chunk);
            let (rc, _) = g.call(H_SCM_WRITE_METADATA, &[dev.drc(), off, value, chunk as u64]);
            check_meta(rc)
        })
    }

    fn label_io(
        &mut self,
        dev: &ProbedDevice,
        offset: u64,
        len: usize,
        mut op: impl FnMut(&mut Self, u64, usize, usize) -> Result<(), IoError>,
    ) -> Result<(), IoError> {
        // nvdimm_get_config_data / nvdimm_set_config_data
        if offset
            .checked_add(len as u64)
            .is_none_or(|e| e > dev.label_size)
        {
            return Err(IoError::Bounds);
        }
        let mut done = 0usize;
        while done < len {
            let cmd = (len - done).min(MAX_XFER as usize);
            // papr_scm_meta_get / _set: greedy 8, 4, 2, 1.
            let mut sub = 0;
            while sub < cmd {
                let chunk = match cmd - sub {
                    8.. => 8,
                    4..=7 => 4,
                    2..=3 => 2,
                    _ => 1,
                };
                op(self, offset + (done + sub) as u64, chunk, done + sub)?;
                sub += chunk;
            }
            done += cmd;
        }
        Ok(())
    }

    /// Writes a fresh v1.2 label index (both blocks, 256-byte labels) with
    /// the given slots marked in use, as `ndctl init-labels` would, and a
    /// label image in each used slot.
    pub fn init_labels(&mut self, dev: &ProbedDevice, used: &[u32]) -> Result<(), IoError> {
        let config = dev.label_size;
        let size = sizeof_namespace_index(config, 256);
        if size == 0 {
            return Err(IoError::Bounds);
        }
        for (which, seq) in [(0u64, 3u32), (1, 2)] {
            let block = namespace_index(config, 256, which, seq, used);
            self.write_label(dev, which * size, &block)?;
        }
        for &slot in used {
            let mut label = [0u8; 256];
            label[..16].copy_from_slice(&dev.node.drc.to_be_bytes().repeat(4));
            LittleEndian::write_u32(&mut label[16..20], slot);
            self.write_label(dev, 2 * size + u64::from(slot) * 256, &label)?;
        }
        Ok(())
    }

    /// `papr_scm_pmem_flush`: H_SCM_FLUSH with the token loop; H_BUSY and
    /// every long-busy order retry (the model counts the hinted sleep).
    pub fn flush(&mut self, dev: &ProbedDevice) -> Result<FlushReport, IoError> {
        let mut report = FlushReport {
            calls: 0,
            slept_ms: 0,
        };
        let mut token = 0;
        loop {
            let (rc, r) = self.call(H_SCM_FLUSH, &[dev.drc(), token]);
            report.calls += 1;
            token = r[0];
            if rc.is_long_busy() {
                report.slept_ms += rc.long_busy_msecs();
            } else if rc != H_BUSY {
                return if rc == H_SUCCESS {
                    Ok(report)
                } else {
                    Err(IoError::Hcall(rc))
                };
            }
        }
    }

    /// `drc_pmem_query_stats` for all statistics (the `perf_stats` read):
    /// a buffer of the size found at probe, count 0.
    pub fn read_all_stats(&mut self, dev: &ProbedDevice) -> Result<Vec<([u8; 8], u64)>, IoError> {
        let StatsSupport::Supported(len) = dev.stats else {
            return Err(IoError::Hcall(H_UNSUPPORTED));
        };
        let buf = self.stats_buffer;
        let mut hdr = std::vec![0u8; len as usize];
        hdr[..8].copy_from_slice(&SCMSTATS_EYECATCHER);
        BigEndian::write_u32(&mut hdr[8..12], SCMSTATS_VERSION);
        self.store(buf, &hdr)?;
        let (rc, _) = self.call(H_SCM_PERFORMANCE_STATS, &[dev.drc(), buf, len]);
        if rc != H_SUCCESS {
            return Err(IoError::Hcall(rc));
        }
        let out = self.load(buf, len as usize)?;
        let count = BigEndian::read_u32(&out[12..16]) as usize;
        // The driver walks `count` entries without a bound; the model checks.
        if 16 + count * 16 > out.len() {
            return Err(IoError::Bounds);
        }
        Ok(out[16..16 + count * 16]
            .chunks_exact(16)
            .map(|e| {
                let mut id = [0u8; 8];
                id.copy_from_slice(&e[..8]);
                (id, BigEndian::read_u64(&e[8..]))
            })
            .collect())
    }

    /// One statistic (the fuel gauge reads `MemLife `; each perf event one id).
    pub fn read_stat(&mut self, dev: &ProbedDevice, id: &[u8; 8]) -> Result<u64, IoError> {
        if !matches!(dev.stats, StatsSupport::Supported(_)) {
            return Err(IoError::Hcall(H_UNSUPPORTED));
        }
        let buf = self.stats_buffer;
        let mut req = [0u8; 32];
        req[..8].copy_from_slice(&SCMSTATS_EYECATCHER);
        BigEndian::write_u32(&mut req[8..12], SCMSTATS_VERSION);
        BigEndian::write_u32(&mut req[12..16], 1);
        req[16..24].copy_from_slice(id);
        self.store(buf, &req)?;
        let (rc, _) = self.call(H_SCM_PERFORMANCE_STATS, &[dev.drc(), buf, 32]);
        if rc != H_SUCCESS {
            return Err(IoError::Hcall(rc));
        }
        let out = self.load(buf, 32)?;
        Ok(BigEndian::read_u64(&out[24..32]))
    }

    /// A fresh H_SCM_HEALTH (the PDSM health command): `r4 & r5`.
    pub fn health(&mut self, dev: &ProbedDevice) -> Result<u64, IoError> {
        let (rc, r) = self.call(H_SCM_HEALTH, &[dev.drc()]);
        match rc {
            H_SUCCESS => Ok(r[0] & r[1]),
            H_FUNCTION => Ok(0),
            rc => Err(IoError::Hcall(rc)),
        }
    }

    /// `papr_scm_remove`: UNBIND_ALL for the device.
    pub fn remove(&mut self, dev: &ProbedDevice) -> ReturnCode {
        self.unbind_all(dev.drc())
    }
}

fn check_meta(rc: ReturnCode) -> Result<(), IoError> {
    match rc {
        H_SUCCESS => Ok(()),
        H_PARAMETER => Err(IoError::NoDevice),
        rc => Err(IoError::Hcall(rc)),
    }
}

fn event(events: &mut Vec<Event>, level: Level, text: String) {
    events.push(Event { level, text });
}

fn bind_failed(rc: ReturnCode, mut events: Vec<Event>) -> (ProbeError, Vec<Event>) {
    event(
        &mut events,
        Level::Error,
        std::format!("bind err: {}", rc.0),
    );
    (ProbeError::Bind(rc), events)
}

/// `nd_label_validate`: probe 128- then 256-byte labels; the current index
/// and the label size, or `None` if neither block is valid.
fn validate_index(data: &[u8], config: u64) -> Option<(usize, u64)> {
    for label in [128u64, 256] {
        let size = sizeof_namespace_index(config, label) as usize;
        if size == 0 || 2 * size > data.len() {
            continue;
        }
        let mut seqs = [0u32; 2];
        let mut valid = [false; 2];
        for i in 0..2 {
            let b = &data[i * size..(i + 1) * size];
            if &b[..16] != NSINDEX_SIGNATURE {
                continue;
            }
            let version = LittleEndian::read_u16(&b[60..62]) as u32 * 100
                + LittleEndian::read_u16(&b[62..64]) as u32;
            let lsize = if version >= 102 {
                1u64 << (7 + u32::from(b[19]).min(8))
            } else {
                128
            };
            if lsize != label {
                continue;
            }
            let mut copy = b.to_vec();
            copy[64..72].fill(0);
            if fletcher64(&copy) != LittleEndian::read_u64(&b[64..72]) {
                continue;
            }
            let seq = LittleEndian::read_u32(&b[20..24]);
            let ok = seq & 3 != 0
                && LittleEndian::read_u64(&b[24..32]) == (i * size) as u64
                && LittleEndian::read_u64(&b[40..48]) == ((1 - i) * size) as u64
                && LittleEndian::read_u64(&b[48..56]) == 2 * size as u64
                && (LittleEndian::read_u32(&b[56..60]) as u64)
                    .checked_mul(label)
                    .and_then(|v| v.checked_add(2 * size as u64))
                    .is_some_and(|v| v <= config);
            if ok {
                valid[i] = true;
                seqs[i] = seq & 3;
            }
        }
        match valid {
            [true, true] => {
                // best_seq: the newer of two cyclic sequence numbers.
                let current = if inc_seq(seqs[0]) == seqs[1] { 1 } else { 0 };
                return Some((current, label));
            }
            [true, false] => return Some((0, label)),
            [false, true] => return Some((1, label)),
            _ => {}
        }
    }
    None
}

/// The words of `papr/flags` for a health bitmap (`flags_show`).
pub fn flags_words(health: u64) -> Vec<&'static str> {
    let bit = |n: &[u32]| n.iter().any(|&b| health & ppc_bit(b) != 0);
    let mut w = Vec::new();
    if bit(&[0, 6]) {
        w.push("not_armed");
    }
    if bit(&[1]) {
        w.push("flush_fail");
    }
    if bit(&[3]) {
        w.push("restore_fail");
    }
    if bit(&[8]) {
        w.push("encrypted");
    }
    if bit(&[4, 5, 6]) {
        w.push("smart_notify");
    }
    if bit(&[9]) {
        w.push("scrubbed");
        w.push("locked");
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_index_sizes_match_libnvdimm() {
        // A blank 128 KiB area: two 256-byte index blocks, 64 8-byte reads.
        assert_eq!(sizeof_namespace_index(128 * 1024, 128), 256);
        assert_eq!(sizeof_namespace_index(128 * 1024, 256), 256);
        assert_eq!(num_label_slots(128 * 1024, 128), 1020);
        assert_eq!(num_label_slots(128 * 1024, 256), 510);
        assert_eq!(sizeof_namespace_index(1024, 128), 256);
        assert_eq!(sizeof_namespace_index(512, 128), 0);
    }

    #[test]
    fn test_index_round_trip_and_seq() {
        let a = namespace_index(128 * 1024, 256, 0, 3, &[0, 5]);
        let b = namespace_index(128 * 1024, 256, 1, 2, &[0, 5]);
        let mut data = a.clone();
        data.extend_from_slice(&b);
        assert_eq!(validate_index(&data, 128 * 1024), Some((0, 256)));
        // seq 1 follows 3: block 1 is newer.
        let b = namespace_index(128 * 1024, 256, 1, 1, &[]);
        let mut data = a.clone();
        data.extend_from_slice(&b);
        assert_eq!(validate_index(&data, 128 * 1024), Some((1, 256)));
        // A corrupted checksum invalidates one block.
        data[300] ^= 1;
        assert_eq!(validate_index(&data, 128 * 1024), Some((0, 256)));
        assert_eq!(validate_index(&[0u8; 512], 128 * 1024), None);
    }

    #[test]
    fn test_flags_words() {
        assert_eq!(flags_words(0), Vec::<&str>::new());
        assert_eq!(
            flags_words(ppc_bit(0) | ppc_bit(1)),
            ["not_armed", "flush_fail"]
        );
        assert_eq!(flags_words(ppc_bit(6)), ["not_armed", "smart_notify"]);
        assert_eq!(flags_words(ppc_bit(9)), ["scrubbed", "locked"]);
        assert_eq!(
            flags_words(ppc_bit(3) | ppc_bit(8)),
            ["restore_fail", "encrypted"]
        );
        assert_eq!(
            flags_words(ppc_bit(2) | ppc_bit(7) | ppc_bit(10)),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn test_fletcher64() {
        assert_eq!(fletcher64(&[1, 0, 0, 0, 2, 0, 0, 0]), (4 << 32) | 3);
    }
}
