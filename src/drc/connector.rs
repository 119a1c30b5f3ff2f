// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The logical DR connector of a PMEM slot: its state machine and
//! `ibm,configure-connector`.
//!
//! QEMU's PMEM DRC is a logical DRC (`spapr_drc.c`, `TYPE_SPAPR_DRC_LOGICAL`)
//! with four states. A connector with no device is always UNUSABLE, so the
//! state that matters lives with the device: [`Connector`] is part of a
//! `Device`, and an empty slot answers as an UNUSABLE, empty connector.

use crate::config::Profile;
use crate::pmemory::PmemoryNode;
use crate::rtas::*;

/// The logical DRC states, numbered as QEMU's `SpaprDrcState` (they are
/// in its migration stream: LoPAPR 13.4, figure 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DrcState {
    /// Not available to the OS (QEMU `SPAPR_DRC_STATE_LOGICAL_UNUSABLE`).
    Unusable = 1,
    /// Allocated to the OS, isolated.
    Available = 2,
    /// Unisolated: the OS may configure it.
    Unisolate = 3,
    /// Configured: the OS has the node (the state of a cold-plugged device).
    Configured = 4,
}

impl DrcState {
    /// Decodes QEMU's number.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(DrcState::Unusable),
            2 => Some(DrcState::Available),
            3 => Some(DrcState::Unisolate),
            4 => Some(DrcState::Configured),
            _ => None,
        }
    }
}

/// What a connector transition asks of the machine besides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrcEffect {
    /// Nothing.
    None,
    /// The guest released a connector whose unplug was requested: the
    /// device leaves the slot (QEMU `spapr_drc_release`).
    Release,
    /// The guest unisolated a connector whose unplug was requested: it
    /// refuses the unplug (QEMU's "Device hotunplug rejected by the guest").
    UnplugRefused,
    /// configure-connector handed out the whole node: CONFIGURED.
    Configured,
}

/// A connector's state for snapshots: what QEMU migrates (`spapr_drc`,
/// the state and the unplug-requested subsection; not the
/// configure-connector cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectorState {
    /// The DRC state.
    pub state: DrcState,
    /// An unplug was requested and the guest has not yet released the DRC.
    pub unplug_requested: bool,
}

/// The work area could not be written (guest memory the VMM cannot reach).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("configure-connector: the work area cannot be written")]
pub struct WorkAreaError;

/// The guest's configure-connector work area, written one step at a time.
pub trait WorkArea {
    /// Bytes of the area the VMM can write: PAPR's 4 KiB by default.
    fn capacity(&self) -> usize {
        CC_WA_LEN
    }

    /// Writes `data` at byte `offset` of the work area.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), WorkAreaError>;
}

impl WorkArea for [u8] {
    fn capacity(&self) -> usize {
        self.len().min(CC_WA_LEN)
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), WorkAreaError> {
        let end = offset.checked_add(data.len()).ok_or(WorkAreaError)?;
        self.get_mut(offset..end)
            .ok_or(WorkAreaError)?
            .copy_from_slice(data);
        Ok(())
    }
}

/// Work-area word indexes and the name offset (PAPR+ 13.5.3.5; QEMU
/// `CC_IDX_*`, `CC_VAL_DATA_OFFSET`).
const CC_IDX_NAME_OFFSET: usize = 2;
const CC_IDX_PROP_LEN: usize = 3;
const CC_IDX_PROP_DATA_OFFSET: usize = 4;
const CC_VAL_DATA_OFFSET: usize = (CC_IDX_PROP_DATA_OFFSET + 1) * 4;

/// The logical DRC of a slot holding a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connector {
    state: DrcState,
    unplug_requested: bool,
    /// configure-connector's next step: 0 the node's name, 1..=n its
    /// properties, n + 1 the end (QEMU's `ccs_offset`/`ccs_depth`).
    cc_step: u8,
}

impl Default for Connector {
    fn default() -> Self {
        Connector::cold_plugged()
    }
}

impl Connector {
    /// A device present at boot: CONFIGURED, as QEMU's `spapr_drc_reset`
    /// leaves any attached DRC (its node is in the boot tree).
    pub const fn cold_plugged() -> Self {
        Connector {
            state: DrcState::Configured,
            unplug_requested: false,
            cc_step: 0,
        }
    }

    /// A device plugged at run time: UNUSABLE until the guest acquires it
    /// (`spapr_drc_attach` asserts the empty state).
    pub const fn hot_plugged() -> Self {
        Connector {
            state: DrcState::Unusable,
            unplug_requested: false,
            cc_step: 0,
        }
    }

    /// Restores a snapshot (the configure-connector cursor starts over).
    pub const fn from_state(s: ConnectorState) -> Self {
        Connector {
            state: s.state,
            unplug_requested: s.unplug_requested,
            cc_step: 0,
        }
    }

    /// The snapshot.
    pub const fn state(&self) -> ConnectorState {
        ConnectorState {
            state: self.state,
            unplug_requested: self.unplug_requested,
        }
    }

    /// The DRC state.
    pub const fn drc_state(&self) -> DrcState {
        self.state
    }

    /// Whether an unplug is pending.
    pub const fn unplug_requested(&self) -> bool {
        self.unplug_requested
    }

    /// Marks the device for unplug. Returns true if the connector is
    /// already UNUSABLE, so the device can leave at once (QEMU
    /// `spapr_drc_unplug_request`: release when in the empty state).
    pub fn request_unplug(&mut self) -> bool {
        self.unplug_requested = true;
        self.state == DrcState::Unusable
    }

    /// A machine reset or CAS (`spapr_drc_reset`): a pending unplug
    /// completes ([`DrcEffect::Release`]); otherwise the device is ready,
    /// CONFIGURED, as if cold-plugged, and the cursor rewinds.
    pub fn reset(&mut self) -> DrcEffect {
        if self.unplug_requested {
            return DrcEffect::Release;
        }
        *self = Connector::cold_plugged();
        DrcEffect::None
    }

    /// `get-sensor-state` DR_ENTITY_SENSE (`logical_entity_sense`).
    pub const fn entity_sense(&self) -> u32 {
        match self.state {
            DrcState::Unusable => SPAPR_DR_ENTITY_SENSE_UNUSABLE,
            _ => SPAPR_DR_ENTITY_SENSE_PRESENT,
        }
    }

    /// `set-indicator` ALLOCATION_STATE (`drc_set_usable`,
    /// `drc_set_unusable`).
    pub fn set_allocation_state(&mut self, value: u32) -> (RtasStatus, DrcEffect) {
        match value {
            SPAPR_DR_ALLOCATION_STATE_USABLE => match self.state {
                DrcState::Unusable if self.unplug_requested => {
                    // The guest may not take back a device being unplugged.
                    (RTAS_OUT_NO_SUCH_INDICATOR, DrcEffect::None)
                }
                DrcState::Unusable => {
                    self.state = DrcState::Available;
                    (RTAS_OUT_SUCCESS, DrcEffect::None)
                }
                _ => (RTAS_OUT_SUCCESS, DrcEffect::None),
            },
            SPAPR_DR_ALLOCATION_STATE_UNUSABLE => match self.state {
                DrcState::Unusable => (RTAS_OUT_SUCCESS, DrcEffect::None),
                DrcState::Available => {
                    self.state = DrcState::Unusable;
                    let effect = if self.unplug_requested {
                        DrcEffect::Release
                    } else {
                        DrcEffect::None
                    };
                    (RTAS_OUT_SUCCESS, effect)
                }
                DrcState::Unisolate | DrcState::Configured => {
                    (RTAS_OUT_NO_SUCH_INDICATOR, DrcEffect::None)
                }
            },
            _ => (RTAS_OUT_PARAM_ERROR, DrcEffect::None),
        }
    }

    /// `set-indicator` ISOLATION_STATE (`drc_isolate_logical`,
    /// `drc_unisolate_logical`).
    pub fn set_isolation_state(&mut self, value: u32, profile: Profile) -> (RtasStatus, DrcEffect) {
        match value {
            SPAPR_DR_ISOLATION_STATE_ISOLATED => match self.state {
                DrcState::Available | DrcState::Unusable => (RTAS_OUT_SUCCESS, DrcEffect::None),
                DrcState::Configured => {
                    self.state = DrcState::Available;
                    (RTAS_OUT_SUCCESS, DrcEffect::None)
                }
                // QEMU refuses ISOLATE before the node was configured, so
                // Linux's error path (dlpar_release_drc after a failed
                // configure-connector) cannot give the DRC back; PAPR's
                // state diagram allows it, and the papr profile does.
                DrcState::Unisolate => match profile {
                    Profile::Qemu => (RTAS_OUT_PARAM_ERROR, DrcEffect::None),
                    Profile::Papr => {
                        self.state = DrcState::Available;
                        (RTAS_OUT_SUCCESS, DrcEffect::None)
                    }
                },
            },
            SPAPR_DR_ISOLATION_STATE_UNISOLATED => match self.state {
                DrcState::Unisolate | DrcState::Configured => {
                    if self.unplug_requested {
                        self.unplug_requested = false;
                        (RTAS_OUT_SUCCESS, DrcEffect::UnplugRefused)
                    } else {
                        (RTAS_OUT_SUCCESS, DrcEffect::None)
                    }
                }
                DrcState::Available => {
                    self.state = DrcState::Unisolate;
                    self.cc_step = 0;
                    (RTAS_OUT_SUCCESS, DrcEffect::None)
                }
                DrcState::Unusable => (RTAS_OUT_NO_SUCH_INDICATOR, DrcEffect::None),
            },
            _ => (RTAS_OUT_PARAM_ERROR, DrcEffect::None),
        }
    }

    /// `set-indicator` of `kind` (isolation or allocation; a logical DRC
    /// has no DR indicator: -3, `rtas_set_dr_indicator` accepts physical
    /// connectors only).
    pub fn set_indicator(
        &mut self,
        kind: u32,
        value: u32,
        profile: Profile,
    ) -> (RtasStatus, DrcEffect) {
        match kind {
            RTAS_SENSOR_TYPE_ISOLATION_STATE => self.set_isolation_state(value, profile),
            RTAS_SENSOR_TYPE_ALLOCATION_STATE => self.set_allocation_state(value),
            _ => (RTAS_OUT_NO_SUCH_INDICATOR, DrcEffect::None),
        }
    }

    /// `set-indicator` on a connector with no device, which is UNUSABLE:
    /// ISOLATE and UNUSABLE change nothing, the rest need a device
    /// (`drc_set_usable`, `drc_unisolate_logical`: -3).
    pub const fn set_indicator_empty(kind: u32, value: u32) -> RtasStatus {
        match (kind, value) {
            (RTAS_SENSOR_TYPE_ISOLATION_STATE, SPAPR_DR_ISOLATION_STATE_ISOLATED)
            | (RTAS_SENSOR_TYPE_ALLOCATION_STATE, SPAPR_DR_ALLOCATION_STATE_UNUSABLE) => {
                RTAS_OUT_SUCCESS
            }
            (RTAS_SENSOR_TYPE_ISOLATION_STATE | RTAS_SENSOR_TYPE_ALLOCATION_STATE, 2..) => {
                RTAS_OUT_PARAM_ERROR
            }
            _ => RTAS_OUT_NO_SUCH_INDICATOR,
        }
    }

    /// `get-sensor-state` DR_ENTITY_SENSE of a connector with no device.
    pub const EMPTY_ENTITY_SENSE: u32 = SPAPR_DR_ENTITY_SENSE_UNUSABLE;

    /// One `ibm,configure-connector` step over `node` into the work area
    /// `wa` (`rtas_ibm_configure_connector`): the node's name
    /// (NEXT_CHILD), each property (NEXT_PROPERTY), then SUCCESS at depth
    /// 0, which sets CONFIGURED and rewinds so the guest may ask again.
    ///
    /// Names go at offset 20 and a value right after its name's NUL; other
    /// bytes are left as they were. A step that does not fit the area
    /// ([`WorkArea::capacity`], 4 KiB unless the VMM maps less) is cut short
    /// in the `qemu` profile (QEMU's `configure_connector_st`) and answered
    /// MORE_MEMORY without moving on in `papr`, so the guest never builds a
    /// node from a cut property. An area without room for the header words,
    /// or one the VMM cannot write, answers RTAS_OUT_HW_ERROR.
    pub fn configure_connector<W: WorkArea + ?Sized>(
        &mut self,
        node: &PmemoryNode,
        wa: &mut W,
        profile: Profile,
    ) -> (RtasStatus, DrcEffect) {
        if !matches!(self.state, DrcState::Unisolate | DrcState::Configured) {
            return (SPAPR_DR_CC_RESPONSE_NOT_CONFIGURABLE, DrcEffect::None);
        }
        let step = usize::from(self.cc_step);
        let (status, name, value) = if step == 0 {
            (
                SPAPR_DR_CC_RESPONSE_NEXT_CHILD,
                node.name().as_bytes(),
                None,
            )
        } else if let Some(p) = node.property(step - 1) {
            (
                SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY,
                p.name.as_bytes(),
                Some(p.value()),
            )
        } else {
            self.state = DrcState::Configured;
            self.cc_step = 0;
            return (SPAPR_DR_CC_RESPONSE_SUCCESS, DrcEffect::Configured);
        };
        let room = wa.capacity();
        if room < CC_VAL_DATA_OFFSET {
            // Not even the header words fit: the VMM's area is unusable.
            return (RTAS_OUT_HW_ERROR, DrcEffect::None);
        }
        let name_end = CC_VAL_DATA_OFFSET + name.len() + 1;
        let end = name_end + value.map_or(0, <[u8]>::len);
        if end > room && profile == Profile::Papr {
            return (SPAPR_DR_CC_RESPONSE_MORE_MEMORY, DrcEffect::None);
        }
        let word = |v: usize| (v as u32).to_be_bytes();
        let written = (|| {
            wa.write(4 * CC_IDX_NAME_OFFSET, &word(CC_VAL_DATA_OFFSET))?;
            write_cut(wa, room, CC_VAL_DATA_OFFSET, name)?;
            write_cut(wa, room, CC_VAL_DATA_OFFSET + name.len(), &[0])?;
            if let Some(v) = value {
                wa.write(4 * CC_IDX_PROP_LEN, &word(v.len()))?;
                wa.write(4 * CC_IDX_PROP_DATA_OFFSET, &word(name_end))?;
                write_cut(wa, room, name_end, v)?;
            }
            Ok::<(), WorkAreaError>(())
        })();
        if written.is_err() {
            return (RTAS_OUT_HW_ERROR, DrcEffect::None);
        }
        self.cc_step += 1;
        (status, DrcEffect::None)
    }
}

/// Writes what of `data` fits below `room` (QEMU cuts at `CC_WA_LEN`).
fn write_cut<W: WorkArea + ?Sized>(
    wa: &mut W,
    room: usize,
    offset: usize,
    data: &[u8],
) -> Result<(), WorkAreaError> {
    let room = room.saturating_sub(offset);
    let data = &data[..data.len().min(room)];
    if data.is_empty() {
        return Ok(());
    }
    wa.write(offset, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn node() -> PmemoryNode {
        PmemoryNode::new(&crate::config::example_spec())
    }

    use DrcEffect as E;
    use DrcState as S;

    fn at(state: S, unplug: bool) -> Connector {
        Connector::from_state(ConnectorState {
            state,
            unplug_requested: unplug,
        })
    }

    #[test]
    fn test_allocation_transitions() {
        for p in [false, true] {
            let mut c = at(S::Unusable, p);
            let want = if p { (-3, E::None) } else { (0, E::None) };
            assert_eq!(c.set_allocation_state(1), want);
            assert_eq!(c.drc_state(), if p { S::Unusable } else { S::Available });
        }
        for s in [S::Available, S::Unisolate, S::Configured] {
            assert_eq!(at(s, false).set_allocation_state(1), (0, E::None));
        }
        assert_eq!(at(S::Unusable, false).set_allocation_state(0), (0, E::None));
        let mut c = at(S::Available, false);
        assert_eq!(c.set_allocation_state(0), (0, E::None));
        assert_eq!(c.drc_state(), S::Unusable);
        let mut c = at(S::Available, true);
        assert_eq!(c.set_allocation_state(0), (0, E::Release));
        for s in [S::Unisolate, S::Configured] {
            let mut c = at(s, false);
            assert_eq!(c.set_allocation_state(0), (-3, E::None));
            assert_eq!(c.drc_state(), s);
        }
        assert_eq!(
            at(S::Available, false).set_allocation_state(2),
            (-3, E::None)
        );
    }

    #[test]
    fn test_isolation_transitions_and_profiles() {
        for p in [Profile::Qemu, Profile::Papr] {
            let mut c = at(S::Configured, false);
            assert_eq!(c.set_isolation_state(0, p), (0, E::None));
            assert_eq!(c.drc_state(), S::Available);
            assert_eq!(
                at(S::Available, false).set_isolation_state(0, p),
                (0, E::None)
            );
            assert_eq!(
                at(S::Unusable, false).set_isolation_state(0, p),
                (0, E::None)
            );
            let mut c = at(S::Available, false);
            assert_eq!(c.set_isolation_state(1, p), (0, E::None));
            assert_eq!(c.drc_state(), S::Unisolate);
            assert_eq!(
                at(S::Unusable, false).set_isolation_state(1, p),
                (-3, E::None)
            );
            for s in [S::Unisolate, S::Configured] {
                assert_eq!(at(s, false).set_isolation_state(1, p), (0, E::None));
                let mut c = at(s, true);
                assert_eq!(c.set_isolation_state(1, p), (0, E::UnplugRefused));
                assert!(!c.unplug_requested());
            }
            assert_eq!(
                at(S::Available, false).set_isolation_state(7, p),
                (-3, E::None)
            );
        }
        // QEMU's quirk: ISOLATE from UNISOLATE is refused.
        let mut c = at(S::Unisolate, false);
        assert_eq!(c.set_isolation_state(0, Profile::Qemu), (-3, E::None));
        assert_eq!(c.drc_state(), S::Unisolate);
        assert_eq!(c.set_isolation_state(0, Profile::Papr), (0, E::None));
        assert_eq!(c.drc_state(), S::Available);
    }

    #[test]
    fn test_sense_reset_and_unplug_request() {
        assert_eq!(at(S::Unusable, false).entity_sense(), 2);
        for s in [S::Available, S::Unisolate, S::Configured] {
            assert_eq!(at(s, false).entity_sense(), 1);
        }
        let mut c = Connector::hot_plugged();
        assert_eq!(c.reset(), E::None);
        assert_eq!(c, Connector::cold_plugged());
        assert!(!Connector::cold_plugged().request_unplug());
        assert!(Connector::hot_plugged().request_unplug());
        assert_eq!(at(S::Configured, true).reset(), E::Release);
        for raw in 0..6 {
            let s = DrcState::from_raw(raw);
            assert_eq!(
                s.map(|s| s as u32),
                if (1..=4).contains(&raw) {
                    Some(raw)
                } else {
                    None
                }
            );
        }
    }

    fn words(wa: &[u8], i: usize) -> u32 {
        u32::from_be_bytes(wa[4 * i..4 * i + 4].try_into().unwrap())
    }

    fn cstr(wa: &[u8], off: usize) -> &[u8] {
        let end = wa[off..].iter().position(|&b| b == 0).unwrap();
        &wa[off..off + end]
    }

    #[test]
    fn test_configure_connector_walks_the_node() {
        let node = node();
        for p in [Profile::Qemu, Profile::Papr] {
            let mut c = at(S::Unisolate, false);
            let mut wa = vec![0xEEu8; CC_WA_LEN];
            wa[..4].copy_from_slice(&0x9000_0000u32.to_be_bytes());
            assert_eq!(c.configure_connector(&node, &mut wa[..], p), (2, E::None));
            assert_eq!(words(&wa, 2), 20);
            assert_eq!(cstr(&wa, 20), b"ibm,pmemory@90000000");
            // Bytes past the name are left alone, as QEMU leaves them.
            assert_eq!(wa[41], 0xEE);
            let mut seen = Vec::new();
            loop {
                let (rc, e) = c.configure_connector(&node, &mut wa[..], p);
                if rc == 0 {
                    assert_eq!(e, E::Configured);
                    break;
                }
                assert_eq!(rc, 3);
                let name = cstr(&wa, words(&wa, 2) as usize).to_vec();
                let (len, off) = (words(&wa, 3) as usize, words(&wa, 4) as usize);
                assert_eq!(off, 20 + name.len() + 1);
                seen.push((name, wa[off..off + len].to_vec()));
            }
            let want: Vec<_> = node
                .properties()
                .map(|p| (p.name.as_bytes().to_vec(), p.value().to_vec()))
                .collect();
            assert_eq!(seen, want);
            assert_eq!(c.drc_state(), S::Configured);
            // Configured: the guest may walk it again from the start.
            assert_eq!(c.configure_connector(&node, &mut wa[..], p), (2, E::None));
        }
    }

    #[test]
    fn test_configure_connector_states_and_restart() {
        let node = node();
        let mut wa = vec![0u8; CC_WA_LEN];
        for s in [S::Unusable, S::Available] {
            assert_eq!(
                at(s, false).configure_connector(&node, &mut wa[..], Profile::Papr),
                (-9003, E::None)
            );
        }
        // Half way, then ISOLATE + UNISOLATE: the walk starts over.
        let mut c = at(S::Unisolate, false);
        for _ in 0..4 {
            c.configure_connector(&node, &mut wa[..], Profile::Papr);
        }
        assert_eq!(c.set_isolation_state(0, Profile::Papr).0, 0);
        assert_eq!(c.set_isolation_state(1, Profile::Papr).0, 0);
        assert_eq!(
            c.configure_connector(&node, &mut wa[..], Profile::Papr).0,
            2
        );
        // A reset rewinds too.
        c.configure_connector(&node, &mut wa[..], Profile::Papr);
        c.reset();
        assert_eq!(
            c.configure_connector(&node, &mut wa[..], Profile::Papr).0,
            2
        );
        // A work area the VMM cannot write.
        let mut short = [0u8; 16];
        let mut c = at(S::Unisolate, false);
        assert_eq!(
            c.configure_connector(&node, &mut short[..], Profile::Qemu),
            (-1, E::None)
        );
        // Nothing moved on: a full area gets the first step.
        assert_eq!(
            c.configure_connector(&node, &mut wa[..], Profile::Qemu).0,
            2
        );
        // An area too small for the step: papr asks for more memory and
        // stays put; qemu cuts the name at the area's end.
        let mut small = [0xEEu8; 32];
        let mut c = at(S::Unisolate, false);
        assert_eq!(
            c.configure_connector(&node, &mut small[..], Profile::Papr),
            (5, E::None)
        );
        assert_eq!(small[20], 0xEE, "nothing written");
        assert_eq!(
            c.configure_connector(&node, &mut wa[..], Profile::Papr).0,
            2
        );
        let mut c = at(S::Unisolate, false);
        assert_eq!(
            c.configure_connector(&node, &mut small[..], Profile::Qemu),
            (2, E::None)
        );
        assert_eq!(&small[20..], b"ibm,pmemory@");
    }

    #[test]
    fn test_set_indicator_dispatch_and_empty_connectors() {
        let p = Profile::Papr;
        let mut c = at(S::Available, false);
        assert_eq!(c.set_indicator(9001, 1, p), (0, E::None));
        assert_eq!(c.drc_state(), S::Unisolate);
        assert_eq!(c.set_indicator(9002, 1, p), (-3, E::None));
        assert_eq!(
            at(S::Unusable, false).set_indicator(9003, 1, p),
            (0, E::None)
        );
        for (kind, value, want) in [
            (9001, 0, 0),
            (9003, 0, 0),
            (9001, 1, -3),
            (9003, 1, -3),
            (9002, 1, -3),
            (9003, 2, -3),
        ] {
            assert_eq!(
                Connector::set_indicator_empty(kind, value),
                want,
                "{kind} {value}"
            );
        }
        assert_eq!(
            Connector::EMPTY_ENTITY_SENSE,
            at(S::Unusable, false).entity_sense()
        );
    }
}
