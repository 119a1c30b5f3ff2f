// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux's PMEM hotplug path (`arch/powerpc/platforms/pseries/ras.c`,
//! `dlpar.c`, `pmem.c`, 6.1): the hotplug interrupt's `check-exception`,
//! the "HP" section, `dlpar_acquire_drc`, `dlpar_configure_connector`,
//! `dlpar_release_drc`, and the probe and remove of the device.

use std::string::String;
use std::vec::Vec;

use byteorder::{BigEndian, ByteOrder};
use thiserror::Error;

use super::{parse_node, DeviceNode, Guest, Hypervisor, ProbeError, ProbedDevice, TraceItem};
use crate::hcall::{ReturnCode, H_FUNCTION};
use crate::host::{GuestMemoryError, Host};
use crate::machine::{Machine, RtasEffect, SlotTable};
use crate::rtas::*;
use crate::rtas_error_log::{EventQueue, RTAS_LOG_V6_HP_ID_DRC_INDEX, RTAS_LOG_V6_HP_TYPE_PMEM};

/// Linux's `RTAS_ERROR_LOG_MAX`: the buffer `ras_hotplug_interrupt` passes.
pub const RTAS_ERROR_LOG_MAX: u32 = 2048;
/// `RTAS_HOTPLUG_EVENTS`: the class mask of the hot-plug source.
pub const RTAS_HOTPLUG_EVENTS: u32 = 0x1000_0000;

/// A pseries platform for the model: a [`Machine`] with the VMM's event
/// queue, answering RTAS for everything a QEMU without other connectors
/// would (-3 for unknown connectors, "no errors" for an empty queue), and
/// keeping what each call did for the test to look at.
#[derive(Debug)]
pub struct Pseries<'a, S: SlotTable, H> {
    /// The machine.
    pub machine: &'a Machine<S, H>,
    /// The VMM's hotplug event queue.
    pub events: EventQueue,
    /// What the RTAS calls did, oldest first.
    pub effects: Vec<RtasEffect<S::Label>>,
}

impl<'a, S: SlotTable, H: Host> Pseries<'a, S, H> {
    /// A platform around `machine` with an empty queue.
    pub fn new(machine: &'a Machine<S, H>) -> Self {
        Pseries {
            machine,
            events: EventQueue::new(),
            effects: Vec::new(),
        }
    }
}

impl<S: SlotTable, H: Host> Hypervisor for Pseries<'_, S, H> {
    fn hcall(&mut self, opcode: u64, regs: &mut crate::hcall::Regs) -> ReturnCode {
        self.machine.handle(opcode, regs).unwrap_or(H_FUNCTION)
    }
    fn write_guest(&mut self, gpa: u64, data: &[u8]) -> Result<(), GuestMemoryError> {
        self.machine.host().write_guest(gpa, data)
    }
    fn read_guest(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
        self.machine.host().read_guest(gpa, buf)
    }
    fn rtas(&mut self, service: RtasService, args: &[u32], rets: &mut [u32]) -> bool {
        match self.machine.rtas(service, args, rets, &mut self.events) {
            Some(effect) => {
                if !matches!(effect, RtasEffect::None) {
                    self.effects.push(effect);
                }
            }
            None => {
                // Not papr-scm's: what a platform with nothing else to
                // offer answers.
                let status = match service {
                    RtasService::CheckException | RtasService::EventScan => {
                        RTAS_OUT_NO_ERRORS_FOUND
                    }
                    _ => RTAS_OUT_PARAM_ERROR,
                };
                if let Some(r) = rets.first_mut() {
                    *r = status as u32;
                }
            }
        }
        true
    }
}

/// The "HP" section of a hotplug event, as `ras_hotplug_interrupt` queues
/// it (`struct pseries_hp_errorlog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotplugRequest {
    /// `resource`: 6 is PMEM.
    pub resource: u8,
    /// `action`: 1 add, 2 remove.
    pub action: u8,
    /// `id_type`: 2 is "by DRC index".
    pub id_type: u8,
    /// The DRC index.
    pub drc: u32,
}

/// Why the guest's hotplug handling failed, with the message Linux logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DlparError {
    /// check-exception left no "HP" section in the buffer (Linux would
    /// dereference NULL here; the model refuses).
    #[error("hotplug interrupt: no HP section in the event buffer")]
    NoHotplugSection,
    /// Not a PMEM request by DRC index (`dlpar_hp_pmem`: -EINVAL).
    #[error("Unsupported hotplug event: resource {resource}, id type {id_type}")]
    Unsupported {
        /// The resource.
        resource: u8,
        /// The id type.
        id_type: u8,
    },
    /// `dlpar_acquire_drc` failed.
    #[error("Failed to acquire DRC")]
    Acquire,
    /// `dlpar_configure_connector` failed (an unexpected reply).
    #[error("Unexpected Error ({0}) returned from configure-connector")]
    ConfigureConnector(RtasStatus),
    /// The node it built is not a PMEM node the driver can probe.
    #[error("probe: {0}")]
    Node(ProbeError),
    /// `papr_scm_probe` failed.
    #[error("probe failed: {0}")]
    Probe(ProbeError),
    /// Remove: no device node with that DRC index.
    #[error("Failed to find node for DRC {0:#x}")]
    NoNode(u32),
    /// `dlpar_release_drc` failed; the node was attached again.
    #[error("Failed to release DRC {0:#x}")]
    Release(u32),
    /// The guest's own memory could not be reached.
    #[error(transparent)]
    Memory(#[from] GuestMemoryError),
    /// The hypervisor has no RTAS.
    #[error("RTAS is not available")]
    NoRtas,
}

/// What the guest did with one hotplug request.
#[allow(clippy::large_enum_variant)] // one per hotplug event
#[derive(Debug)]
pub enum DlparOutcome {
    /// The device was added and probed.
    Added(ProbedDevice),
    /// The device was removed and its DRC released.
    Removed(u32),
}

/// A node built from configure-connector steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcNode {
    /// The node name.
    pub name: String,
    /// Its properties, in the order they came.
    pub properties: Vec<(String, Vec<u8>)>,
}

impl<V: Hypervisor> Guest<V> {
    /// A store of the guest's own, recorded as a `mem` line.
    fn store_rtas(&mut self, gpa: u64, data: &[u8]) -> Result<(), DlparError> {
        self.store(gpa, data).map_err(|_| {
            DlparError::Memory(GuestMemoryError {
                gpa,
                len: data.len(),
            })
        })
    }

    fn rtas_call(
        &mut self,
        service: RtasService,
        args: &[u32],
        nret: usize,
    ) -> Result<Vec<u32>, DlparError> {
        let mut rets = std::vec![0u32; nret];
        if !self.hypervisor().rtas(service, args, &mut rets) {
            return Err(DlparError::NoRtas);
        }
        self.trace.push(TraceItem::Rtas {
            service,
            args: args.to_vec(),
            rets: rets.clone(),
        });
        Ok(rets)
    }

    fn status(rets: &[u32]) -> RtasStatus {
        rets.first().map_or(RTAS_OUT_HW_ERROR, |&r| r as i32)
    }

    /// `ras_hotplug_interrupt`: `check-exception` with the hot-plug class
    /// mask into a 2 KiB buffer at [`Guest::rtas_buffer`], then the "HP"
    /// section (`get_pseries_errorlog`). Linux ignores the status and
    /// parses the buffer anyway; so does the model.
    pub fn hotplug_interrupt(&mut self) -> Result<HotplugRequest, DlparError> {
        let buf = self.rtas_buffer;
        // The buffer holds whatever was there: zero it so a stale event
        // cannot pass for a new one in the model.
        self.store_rtas(u64::from(buf), &[0; 116])?;
        // vector offset, additional info, mask, critical, buffer, length
        let args = [0, 0, RTAS_HOTPLUG_EVENTS, 0, buf, RTAS_ERROR_LOG_MAX];
        self.rtas_call(RtasService::CheckException, &args, 1)?;
        let mut log = [0u8; 116];
        self.hypervisor().read_guest(u64::from(buf), &mut log)?;
        self.trace
            .push(TraceItem::Memory(crate::transcript::Directive::ExpectMem {
                addr: u64::from(buf),
                bytes: log.to_vec(),
            }));
        parse_hotplug_section(&log).ok_or(DlparError::NoHotplugSection)
    }

    /// `dlpar_acquire_drc`.
    pub fn acquire_drc(&mut self, drc: u32) -> Result<(), DlparError> {
        let r = self.rtas_call(
            RtasService::GetSensorState,
            &[RTAS_SENSOR_TYPE_ENTITY_SENSE, drc],
            2,
        )?;
        if Self::status(&r) != 0 || r[1] != SPAPR_DR_ENTITY_SENSE_UNUSABLE {
            return Err(DlparError::Acquire);
        }
        let set = |g: &mut Self, kind, value| {
            g.rtas_call(RtasService::SetIndicator, &[kind, drc, value], 1)
                .map(|r| Self::status(&r))
        };
        if set(
            self,
            RTAS_SENSOR_TYPE_ALLOCATION_STATE,
            SPAPR_DR_ALLOCATION_STATE_USABLE,
        )? != 0
        {
            return Err(DlparError::Acquire);
        }
        if set(
            self,
            RTAS_SENSOR_TYPE_ISOLATION_STATE,
            SPAPR_DR_ISOLATION_STATE_UNISOLATED,
        )? != 0
        {
            set(
                self,
                RTAS_SENSOR_TYPE_ALLOCATION_STATE,
                SPAPR_DR_ALLOCATION_STATE_UNUSABLE,
            )?;
            return Err(DlparError::Acquire);
        }
        Ok(())
    }

    /// `dlpar_release_drc`.
    pub fn release_drc(&mut self, drc: u32) -> Result<(), DlparError> {
        let r = self.rtas_call(
            RtasService::GetSensorState,
            &[RTAS_SENSOR_TYPE_ENTITY_SENSE, drc],
            2,
        )?;
        if Self::status(&r) != 0 || r[1] != SPAPR_DR_ENTITY_SENSE_PRESENT {
            return Err(DlparError::Release(drc));
        }
        let set = |g: &mut Self, kind, value| {
            g.rtas_call(RtasService::SetIndicator, &[kind, drc, value], 1)
                .map(|r| Self::status(&r))
        };
        if set(
            self,
            RTAS_SENSOR_TYPE_ISOLATION_STATE,
            SPAPR_DR_ISOLATION_STATE_ISOLATED,
        )? != 0
        {
            return Err(DlparError::Release(drc));
        }
        if set(
            self,
            RTAS_SENSOR_TYPE_ALLOCATION_STATE,
            SPAPR_DR_ALLOCATION_STATE_UNUSABLE,
        )? != 0
        {
            set(
                self,
                RTAS_SENSOR_TYPE_ISOLATION_STATE,
                SPAPR_DR_ISOLATION_STATE_UNISOLATED,
            )?;
            return Err(DlparError::Release(drc));
        }
        Ok(())
    }

    /// `dlpar_configure_connector` with a 4 KiB work area at
    /// [`Guest::rtas_data_buf`]: one node and its properties. Any reply
    /// but the four walking ones and SUCCESS is an error, as in Linux
    /// (MORE_MEMORY, -9003 and -1 included).
    pub fn configure_connector(&mut self, drc: u32) -> Result<CcNode, DlparError> {
        let wa = self.rtas_data_buf;
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&drc.to_be_bytes());
        self.store_rtas(wa, &head)?;
        let mut node: Option<CcNode> = None;
        let mut depth = 0usize;
        // A node has a bounded number of properties; a hypervisor that
        // never says SUCCESS must not hang the model.
        for _ in 0..4096 {
            let r = self.rtas_call(
                RtasService::IbmConfigureConnector,
                &[wa as u32, (wa >> 32) as u32],
                1,
            )?;
            let mut area = std::vec![0u8; CC_WA_LEN];
            self.hypervisor().read_guest(wa, &mut area)?;
            let w = |i: usize| BigEndian::read_u32(&area[4 * i..]) as usize;
            let cstr = |off: usize| -> String {
                let tail = area.get(off..).unwrap_or(&[]);
                let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
                String::from_utf8_lossy(&tail[..end]).into_owned()
            };
            // What the step wrote: words 2..4 and the name (and value).
            let status = Self::status(&r);
            let written = match status {
                SPAPR_DR_CC_RESPONSE_NEXT_CHILD => Some(20 + cstr(w(2)).len() + 1),
                SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY => Some(w(4).saturating_add(w(3))),
                _ => None,
            };
            if let Some(end) = written.filter(|&e| e <= CC_WA_LEN) {
                self.trace
                    .push(TraceItem::Memory(crate::transcript::Directive::ExpectMem {
                        addr: wa + 8,
                        bytes: area[8..end].to_vec(),
                    }));
            }
            match status {
                SPAPR_DR_CC_RESPONSE_SUCCESS => {
                    return node.ok_or(DlparError::ConfigureConnector(0));
                }
                SPAPR_DR_CC_RESPONSE_NEXT_CHILD => {
                    depth += 1;
                    if node.is_some() {
                        // PMEM nodes have no children.
                        return Err(DlparError::ConfigureConnector(
                            SPAPR_DR_CC_RESPONSE_NEXT_CHILD,
                        ));
                    }
                    node = Some(CcNode {
                        name: cstr(w(2)),
                        properties: Vec::new(),
                    });
                }
                SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY => {
                    let n = node.as_mut().ok_or(DlparError::ConfigureConnector(
                        SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY,
                    ))?;
                    let (len, off) = (w(3), w(4));
                    let value = area
                        .get(off..off.saturating_add(len))
                        .ok_or(DlparError::ConfigureConnector(
                            SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY,
                        ))?
                        .to_vec();
                    n.properties.push((cstr(w(2)), value));
                }
                SPAPR_DR_CC_RESPONSE_PREV_PARENT => {
                    depth = depth.saturating_sub(1);
                }
                rc => return Err(DlparError::ConfigureConnector(rc)),
            }
        }
        let _ = depth;
        Err(DlparError::ConfigureConnector(SPAPR_DR_CC_RESPONSE_ERROR))
    }

    /// `dlpar_hp_pmem` for one request: add (`pmem_drc_add_node`: acquire,
    /// configure, attach, probe; on a configure or probe failure the DRC is
    /// released again) or remove (`pmem_drc_remove_node`: `papr_scm_remove`
    /// — H_SCM_UNBIND_ALL — then release; on a release failure the device
    /// stays, probed again as Linux re-attaches the node).
    pub fn dlpar_hp_pmem(
        &mut self,
        req: HotplugRequest,
        devices: &mut Vec<ProbedDevice>,
    ) -> Result<DlparOutcome, DlparError> {
        if req.resource != RTAS_LOG_V6_HP_TYPE_PMEM || req.id_type != RTAS_LOG_V6_HP_ID_DRC_INDEX {
            return Err(DlparError::Unsupported {
                resource: req.resource,
                id_type: req.id_type,
            });
        }
        match req.action {
            1 => {
                self.acquire_drc(req.drc)?;
                let node = match self.configure_connector(req.drc) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = self.release_drc(req.drc);
                        return Err(e);
                    }
                };
                let dn = match cc_device_node(&node) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = self.release_drc(req.drc);
                        return Err(DlparError::Node(e));
                    }
                };
                match self.probe(&dn) {
                    Ok(dev) => {
                        devices.push(dev.clone());
                        Ok(DlparOutcome::Added(dev))
                    }
                    // The node stays attached with no driver bound, as in
                    // Linux (the probe failure does not undo the attach).
                    Err((e, _)) => Err(DlparError::Probe(e)),
                }
            }
            2 => {
                let Some(i) = devices.iter().position(|d| d.node.drc == req.drc) else {
                    return Err(DlparError::NoNode(req.drc));
                };
                let dev = devices.remove(i);
                self.remove(&dev);
                if let Err(e) = self.release_drc(req.drc) {
                    // dlpar_attach_node again: the driver probes anew.
                    if let Ok(d) = self.probe(&dev.node) {
                        devices.insert(i, d);
                    }
                    return Err(e);
                }
                Ok(DlparOutcome::Removed(req.drc))
            }
            _ => Err(DlparError::Unsupported {
                resource: req.resource,
                id_type: req.id_type,
            }),
        }
    }

    /// The whole interrupt: `check-exception`, then `dlpar_hp_pmem`.
    pub fn handle_hotplug_interrupt(
        &mut self,
        devices: &mut Vec<ProbedDevice>,
    ) -> Result<DlparOutcome, DlparError> {
        let req = self.hotplug_interrupt()?;
        self.dlpar_hp_pmem(req, devices)
    }
}

/// `get_pseries_errorlog(log, PSERIES_ELOG_SECT_ID_HOTPLUG)`: a v6 log with
/// the optional part, sections from byte 24 (after the 8-byte header and
/// the 16-byte v6 extended header), each `section_length` long.
pub fn parse_hotplug_section(log: &[u8]) -> Option<HotplugRequest> {
    if log.len() < 24 || log[0] != 6 || log[1] & 0x04 == 0 {
        return None;
    }
    let ext = BigEndian::read_u32(&log[4..8]) as usize;
    let end = log.len().min(8 + ext);
    let mut off = 24;
    while off + 8 <= end {
        let id = &log[off..off + 2];
        let len = usize::from(BigEndian::read_u16(&log[off + 2..off + 4]));
        if len < 8 {
            return None;
        }
        if id == b"HP" {
            let s = log.get(off..off + len.min(20))?;
            if s.len() < 16 {
                return None;
            }
            return Some(HotplugRequest {
                resource: s[8],
                action: s[9],
                id_type: s[10],
                drc: BigEndian::read_u32(&s[12..16]),
            });
        }
        off += len;
    }
    None
}

/// The [`DeviceNode`] `papr_scm_probe` reads from a configured node.
pub fn cc_device_node(n: &CcNode) -> Result<DeviceNode, ProbeError> {
    let compat = n
        .properties
        .iter()
        .find(|(k, _)| k == "compatible")
        .map(|(_, v)| v.as_slice())
        .unwrap_or(&[]);
    let v2 = compat.split(|&b| b == 0).any(|c| c == b"ibm,pmemory-v2");
    parse_node(
        &n.name,
        |p| {
            n.properties
                .iter()
                .find(|(k, _)| k == p)
                .map(|(_, v)| v.as_slice())
        },
        v2,
    )
}
