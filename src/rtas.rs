// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! RTAS calls on PMEM connectors: the services, their status codes and the
//! decoding of the guest's argument buffer.
//!
//! A guest enters RTAS with the real address of a `struct rtas_args`
//! (Linux `asm/rtas-types.h`): big-endian `token`, `nargs`, `nret`, then
//! 16 words shared by the arguments and the returns. The VMM reads it from
//! guest memory ([`RtasArgs::parse`]), maps the token to an [`RtasService`]
//! (the tokens are the VMM's, named in the tree's `/rtas` node), hands the
//! call to `Machine::rtas`, and writes the returns back
//! ([`RtasArgs::write_returns`]).

use thiserror::Error;

/// An RTAS status word (`rets[0]`), signed as PAPR defines it.
pub type RtasStatus = i32;

/// Success.
pub const RTAS_OUT_SUCCESS: RtasStatus = 0;
/// check-exception / event-scan: no event to report.
pub const RTAS_OUT_NO_ERRORS_FOUND: RtasStatus = 1;
/// Hardware error (here: guest memory the VMM could not reach).
pub const RTAS_OUT_HW_ERROR: RtasStatus = -1;
/// Bad parameter (QEMU `RTAS_OUT_PARAM_ERROR`).
pub const RTAS_OUT_PARAM_ERROR: RtasStatus = -3;
/// No such indicator or sensor, or not allowed in this state (QEMU
/// `RTAS_OUT_NO_SUCH_INDICATOR`, the same -3).
pub const RTAS_OUT_NO_SUCH_INDICATOR: RtasStatus = -3;
/// Not supported (QEMU `RTAS_OUT_NOT_SUPPORTED`, the same -3).
pub const RTAS_OUT_NOT_SUPPORTED: RtasStatus = -3;

/// `set-indicator` / `get-sensor-state` type: isolation state.
pub const RTAS_SENSOR_TYPE_ISOLATION_STATE: u32 = 9001;
/// `set-indicator` type: DR indicator (physical connectors only).
pub const RTAS_SENSOR_TYPE_DR: u32 = 9002;
/// `set-indicator` type: allocation state.
pub const RTAS_SENSOR_TYPE_ALLOCATION_STATE: u32 = 9003;
/// `get-sensor-state` type: DR entity sense (the same number).
pub const RTAS_SENSOR_TYPE_ENTITY_SENSE: u32 = 9003;

/// Isolation state ISOLATED.
pub const SPAPR_DR_ISOLATION_STATE_ISOLATED: u32 = 0;
/// Isolation state UNISOLATED.
pub const SPAPR_DR_ISOLATION_STATE_UNISOLATED: u32 = 1;
/// Allocation state UNUSABLE.
pub const SPAPR_DR_ALLOCATION_STATE_UNUSABLE: u32 = 0;
/// Allocation state USABLE.
pub const SPAPR_DR_ALLOCATION_STATE_USABLE: u32 = 1;

/// Entity sense: empty connector.
pub const SPAPR_DR_ENTITY_SENSE_EMPTY: u32 = 0;
/// Entity sense: present and usable by the OS.
pub const SPAPR_DR_ENTITY_SENSE_PRESENT: u32 = 1;
/// Entity sense: not available to the OS (a logical DRC not yet acquired).
pub const SPAPR_DR_ENTITY_SENSE_UNUSABLE: u32 = 2;

/// configure-connector: the whole node has been handed out.
pub const SPAPR_DR_CC_RESPONSE_SUCCESS: RtasStatus = 0;
/// configure-connector: the next sibling node (never for PMEM).
pub const SPAPR_DR_CC_RESPONSE_NEXT_SIB: RtasStatus = 1;
/// configure-connector: the next child node (its name is in the work area).
pub const SPAPR_DR_CC_RESPONSE_NEXT_CHILD: RtasStatus = 2;
/// configure-connector: the next property of the current node.
pub const SPAPR_DR_CC_RESPONSE_NEXT_PROPERTY: RtasStatus = 3;
/// configure-connector: back to the parent node.
pub const SPAPR_DR_CC_RESPONSE_PREV_PARENT: RtasStatus = 4;
/// configure-connector: the step does not fit the work area (PAPR "call
/// again with more memory"; the `papr` profile's answer where QEMU
/// truncates).
pub const SPAPR_DR_CC_RESPONSE_MORE_MEMORY: RtasStatus = 5;
/// configure-connector: error.
pub const SPAPR_DR_CC_RESPONSE_ERROR: RtasStatus = -1;
/// configure-connector: the connector is not in a configurable state.
pub const SPAPR_DR_CC_RESPONSE_NOT_CONFIGURABLE: RtasStatus = -9003;

/// The size of the configure-connector work area (QEMU `CC_WA_LEN`, Linux
/// `RTAS_DATA_BUF_SIZE`).
pub const CC_WA_LEN: usize = 4096;

/// The RTAS services papr-scm answers for PMEM connectors and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtasService {
    /// `set-indicator`: isolation, DR indicator, allocation.
    SetIndicator,
    /// `get-sensor-state`: DR entity sense.
    GetSensorState,
    /// `ibm,configure-connector`.
    IbmConfigureConnector,
    /// `check-exception`: dequeue an event.
    CheckException,
    /// `event-scan`: re-pulse sources with events queued.
    EventScan,
}

impl RtasService {
    /// Every service, with the name the `/rtas` node gives its token.
    pub const ALL: [(RtasService, &'static str); 5] = [
        (RtasService::SetIndicator, "set-indicator"),
        (RtasService::GetSensorState, "get-sensor-state"),
        (
            RtasService::IbmConfigureConnector,
            "ibm,configure-connector",
        ),
        (RtasService::CheckException, "check-exception"),
        (RtasService::EventScan, "event-scan"),
    ];

    /// The `/rtas` property naming the service's token.
    pub fn name(self) -> &'static str {
        // ALL lists the services in declaration order.
        Self::ALL[self as usize].1
    }
}

/// The VMM's tokens for the services papr-scm answers (QEMU numbers them
/// from `RTAS_TOKEN_BASE`, 0x2000, in `spapr_rtas.h` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtasTokens {
    tokens: [Option<u32>; 5],
}

impl RtasTokens {
    /// No tokens known.
    pub const fn new() -> Self {
        RtasTokens { tokens: [None; 5] }
    }

    /// Records `service`'s token.
    pub fn set(&mut self, service: RtasService, token: u32) {
        self.tokens[service as usize] = Some(token);
    }

    /// `service`'s token, if known.
    pub fn token(&self, service: RtasService) -> Option<u32> {
        self.tokens[service as usize]
    }

    /// The service `token` names, or `None` (not one of ours: the VMM's).
    pub fn service(&self, token: u32) -> Option<RtasService> {
        RtasService::ALL
            .iter()
            .map(|&(s, _)| s)
            .find(|&s| self.tokens[s as usize] == Some(token))
    }
}

/// Words in `struct rtas_args` shared by arguments and returns.
pub const RTAS_ARGS_WORDS: usize = 16;
/// Bytes of `struct rtas_args` up to and including `args[16]`.
pub const RTAS_ARGS_LEN: usize = 12 + 4 * RTAS_ARGS_WORDS;

/// A malformed `struct rtas_args`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtasArgsError {
    /// Fewer than [`RTAS_ARGS_LEN`] bytes were given.
    #[error("rtas_args: {len} bytes, need {RTAS_ARGS_LEN}")]
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// `nargs + nret` exceeds the 16 words of `args`.
    #[error("rtas_args: nargs {nargs} + nret {nret} exceeds {RTAS_ARGS_WORDS} words")]
    TooManyWords {
        /// nargs.
        nargs: u32,
        /// nret.
        nret: u32,
    },
}

/// A decoded `struct rtas_args`.
///
/// [`parse`](Self::parse) keeps `nargs + nret` within the 16 words; the
/// fields are public, so the accessors do not rely on it: a hand-built
/// value with larger counts is read as if its counts were cut to the words
/// there are (arguments first), never with a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtasArgs {
    /// The service token.
    pub token: u32,
    /// Number of argument words.
    pub nargs: u32,
    /// Number of return words.
    pub nret: u32,
    /// `args[0..16]`: the arguments, then the returns.
    pub words: [u32; RTAS_ARGS_WORDS],
}

impl RtasArgs {
    /// Decodes the big-endian `struct rtas_args` at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, RtasArgsError> {
        if buf.len() < RTAS_ARGS_LEN {
            return Err(RtasArgsError::Truncated { len: buf.len() });
        }
        let w = |i: usize| {
            u32::from_be_bytes([buf[4 * i], buf[4 * i + 1], buf[4 * i + 2], buf[4 * i + 3]])
        };
        let (token, nargs, nret) = (w(0), w(1), w(2));
        if u64::from(nargs) + u64::from(nret) > RTAS_ARGS_WORDS as u64 {
            return Err(RtasArgsError::TooManyWords { nargs, nret });
        }
        let mut words = [0; RTAS_ARGS_WORDS];
        for (i, word) in words.iter_mut().enumerate() {
            *word = w(3 + i);
        }
        Ok(RtasArgs {
            token,
            nargs,
            nret,
            words,
        })
    }

    /// `(nargs, nret)` cut to the words of `args`: what `parse` already
    /// guarantees, enforced again for a value built by hand.
    fn counts(&self) -> (usize, usize) {
        let nargs = (self.nargs as usize).min(RTAS_ARGS_WORDS);
        let nret = (self.nret as usize).min(RTAS_ARGS_WORDS - nargs);
        (nargs, nret)
    }

    /// The argument words.
    pub fn args(&self) -> &[u32] {
        &self.words[..self.counts().0]
    }

    /// The return words (`args[nargs..nargs + nret]`).
    pub fn rets_mut(&mut self) -> &mut [u32] {
        let (start, n) = self.counts();
        &mut self.words[start..start + n]
    }

    /// Splits into the arguments and the returns.
    pub fn split(&mut self) -> (&[u32], &mut [u32]) {
        let (nargs, nret) = self.counts();
        let (a, r) = self.words.split_at_mut(nargs);
        (a, &mut r[..nret])
    }

    /// Writes the return words back into `buf` (the same `struct
    /// rtas_args`), big-endian, leaving every other byte alone.
    pub fn write_returns(&self, buf: &mut [u8]) -> Result<(), RtasArgsError> {
        if buf.len() < RTAS_ARGS_LEN {
            return Err(RtasArgsError::Truncated { len: buf.len() });
        }
        let (start, n) = self.counts();
        for i in start..start + n {
            let off = 12 + 4 * i;
            buf[off..off + 4].copy_from_slice(&self.words[i].to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23: the fields are public and only `parse` kept the counts in
    /// range; `args`, `split`, `rets_mut` and `write_returns` sliced with
    /// them and panicked on a value built by hand.
    #[test]
    fn test_hand_built_counts_never_panic() {
        let mut buf = [0u8; RTAS_ARGS_LEN];
        for (nargs, nret) in [(17, 0), (3, 14), (u32::MAX, u32::MAX), (16, 1), (0, 99)] {
            let mut a = RtasArgs {
                token: 0,
                nargs,
                nret,
                words: [7; RTAS_ARGS_WORDS],
            };
            let n = a.args().len();
            let (args, rets) = a.split();
            assert_eq!(args.len(), n);
            assert!(args.len() + rets.len() <= RTAS_ARGS_WORDS);
            let r = a.rets_mut().len();
            assert!(n + r <= RTAS_ARGS_WORDS, "{nargs} {nret}");
            a.write_returns(&mut buf).unwrap();
        }
    }

    #[test]
    fn test_rtas_args_round_trip() {
        let mut buf = [0u8; RTAS_ARGS_LEN + 8];
        buf[0..4].copy_from_slice(&0x2001u32.to_be_bytes());
        buf[4..8].copy_from_slice(&3u32.to_be_bytes());
        buf[8..12].copy_from_slice(&1u32.to_be_bytes());
        buf[12..16].copy_from_slice(&9003u32.to_be_bytes());
        buf[16..20].copy_from_slice(&0x9000_0001u32.to_be_bytes());
        buf[20..24].copy_from_slice(&1u32.to_be_bytes());
        let mut a = RtasArgs::parse(&buf).unwrap();
        assert_eq!(a.args(), [9003, 0x9000_0001, 1]);
        a.rets_mut()[0] = RTAS_OUT_PARAM_ERROR as u32;
        a.write_returns(&mut buf).unwrap();
        assert_eq!(buf[24..28], (-3i32).to_be_bytes());
        assert_eq!(buf[28..32], [0; 4]);
    }

    #[test]
    fn test_rtas_args_refused() {
        assert_eq!(
            RtasArgs::parse(&[0; 10]),
            Err(RtasArgsError::Truncated { len: 10 })
        );
        let mut buf = [0u8; RTAS_ARGS_LEN];
        buf[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        buf[8..12].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(
            RtasArgs::parse(&buf),
            Err(RtasArgsError::TooManyWords {
                nargs: u32::MAX,
                nret: 2
            })
        );
    }

    #[test]
    fn test_tokens() {
        let mut t = RtasTokens::new();
        t.set(RtasService::CheckException, 0x2019);
        assert_eq!(t.service(0x2019), Some(RtasService::CheckException));
        assert_eq!(t.service(0x2000), None);
        assert_eq!(t.token(RtasService::CheckException), Some(0x2019));
        for (s, n) in RtasService::ALL {
            assert_eq!(s.name(), n);
        }
    }
}
