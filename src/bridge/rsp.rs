// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A GDB remote-serial-protocol client for QEMU's gdb stub: acks on, one
//! packet at a time, every read bounded.
//!
//! The stub is untrusted input like the guest: a broken or hostile peer may
//! send bad checksums forever, never send `$` or `#`, or run-length-encode
//! megabytes. [`Rsp::recv`] is iterative, keeps one deadline for the whole
//! packet (bytes that keep arriving do not extend it), caps what it skips
//! and what it holds at [`MAX_PACKET`] bytes, and gives up after
//! [`MAX_NAKS`] bad checksums in a row.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Most bytes a packet may hold, before and after run-length expansion;
/// QEMU's largest answer here (a 4 KiB `qXfer` chunk, `g`) is far below.
pub const MAX_PACKET: usize = 64 * 1024;
/// Most bytes skipped while waiting for a packet's `$`.
pub const MAX_JUNK: usize = 64 * 1024;
/// Bad checksums in a row before the connection is given up.
pub const MAX_NAKS: u32 = 8;
/// How long a command waits for its answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream to a stub: a TCP connection, or an in-memory peer in tests.
pub trait Link: Read + Write {
    /// Bounds the next read; `None` blocks.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Link for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

/// An RSP client over a [`Link`].
#[derive(Debug)]
pub struct Rsp<S> {
    stream: S,
    buf: Box<[u8; 4096]>,
    pos: usize,
    len: usize,
}

fn lost(e: io::Error) -> String {
    format!("gdb stub: {e}")
}

impl Rsp<TcpStream> {
    /// Connects to `addr`, retrying for up to `within` while QEMU starts.
    pub fn connect(addr: &str, within: Duration) -> Result<Self, String> {
        let start = Instant::now();
        loop {
            match TcpStream::connect(addr) {
                Ok(stream) => {
                    stream.set_nodelay(true).ok();
                    return Ok(Rsp::new(stream));
                }
                Err(e) if start.elapsed() > within => {
                    return Err(format!("gdb stub at {addr}: {e} (waited {within:?})"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl<S: Link> Rsp<S> {
    /// A client over an open link.
    pub fn new(stream: S) -> Self {
        Rsp {
            stream,
            buf: Box::new([0; 4096]),
            pos: 0,
            len: 0,
        }
    }

    /// The link (tests look at what was sent).
    #[cfg(test)]
    pub(crate) fn link(&self) -> &S {
        &self.stream
    }

    /// Sends one packet and waits for its ack (three tries on `-`).
    pub fn send(&mut self, data: &str) -> Result<(), String> {
        let sum = data.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        let pkt = format!("${data}#{sum:02x}");
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        for _ in 0..3 {
            self.stream.write_all(pkt.as_bytes()).map_err(lost)?;
            match self.byte(deadline)? {
                b'+' => return Ok(()),
                b'-' => continue,
                other => {
                    return Err(format!(
                        "gdb stub: expected an ack, got {:?}",
                        other as char
                    ))
                }
            }
        }
        Err("gdb stub: packet refused three times".into())
    }

    /// Sends the out-of-band interrupt (a bare 0x03): QEMU stops a running
    /// VM as the monitor's `stop` does (`RUN_STATE_PAUSED`) and answers
    /// with a stop reply.
    pub fn interrupt(&mut self) -> Result<(), String> {
        self.stream.write_all(&[0x03]).map_err(lost)
    }

    /// The next byte, waiting no later than `deadline`.
    fn byte(&mut self, deadline: Instant) -> Result<u8, String> {
        if self.pos == self.len {
            let now = Instant::now();
            if now >= deadline {
                return Err("gdb stub: no answer in time".into());
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .map_err(lost)?;
            match self.stream.read(&mut self.buf[..]) {
                Ok(0) => return Err("gdb stub: connection closed (QEMU exited?)".into()),
                Ok(n) => (self.pos, self.len) = (0, n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err("gdb stub: no answer in time".into())
                }
                Err(e) => return Err(lost(e)),
            }
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    /// Reads one packet within `timeout` (skipping stray acks), acks it,
    /// and decodes `}` escapes and `*` run lengths.
    pub fn recv(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut raw = Vec::new();
        for _ in 0..=MAX_NAKS {
            let mut junk = 0usize;
            while self.byte(deadline)? != b'$' {
                junk += 1;
                if junk > MAX_JUNK {
                    return Err(format!("gdb stub: {MAX_JUNK} bytes without a packet"));
                }
            }
            raw.clear();
            loop {
                match self.byte(deadline)? {
                    b'#' => break,
                    _ if raw.len() >= MAX_PACKET => {
                        return Err(format!("gdb stub: a packet longer than {MAX_PACKET} bytes"))
                    }
                    b => raw.push(b),
                }
            }
            let hi = self.byte(deadline)?;
            let lo = self.byte(deadline)?;
            let sum = raw.iter().fold(0u8, |s, x| s.wrapping_add(*x));
            let want = (hex_digit(hi), hex_digit(lo));
            if want == (Some(sum >> 4), Some(sum & 0xf)) {
                self.stream.write_all(b"+").map_err(lost)?;
                return decode(&raw);
            }
            self.stream.write_all(b"-").map_err(lost)?;
        }
        Err(format!("gdb stub: {} bad checksums in a row", MAX_NAKS + 1))
    }

    /// Sends a command and returns its answer.
    pub fn cmd(&mut self, data: &str) -> Result<String, String> {
        self.send(data)?;
        self.recv(ANSWER_TIMEOUT)
    }

    /// Sends a command that must answer `OK`.
    pub fn ok(&mut self, data: &str) -> Result<(), String> {
        match self.cmd(data)?.as_str() {
            "OK" => Ok(()),
            r => Err(format!("gdb stub: '{data}' answered '{r}'")),
        }
    }

    /// Reads guest memory at effective address `addr`, 1 KiB per packet.
    pub fn read_mem(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        for (i, chunk) in buf.chunks_mut(1024).enumerate() {
            let at = addr.wrapping_add((i * 1024) as u64);
            let r = self.cmd(&format!("m{at:x},{:x}", chunk.len()))?;
            match unhex(&r) {
                Some(bytes) if bytes.len() == chunk.len() => chunk.copy_from_slice(&bytes),
                _ => return Err(format!("gdb stub: m{at:x} answered '{r}'")),
            }
        }
        Ok(())
    }

    /// Writes guest memory at effective address `addr`, 1 KiB per packet.
    pub fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), String> {
        for (i, chunk) in data.chunks(1024).enumerate() {
            let at = addr.wrapping_add((i * 1024) as u64);
            self.ok(&format!("M{at:x},{:x}:{}", chunk.len(), hex(chunk)))?;
        }
        Ok(())
    }

    /// Sets register `n` (QEMU's numbering; the PC is 0x40) to `v`.
    pub fn set_reg(&mut self, n: u32, v: u64) -> Result<(), String> {
        // Register values follow MSR[LE]; the bridge only runs in the LE kernel.
        self.ok(&format!("P{n:x}={}", hex(&v.to_le_bytes())))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Undoes `}` escapes and `*` run lengths, never past [`MAX_PACKET`].
fn decode(raw: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter().copied();
    while let Some(c) = it.next() {
        match c {
            b'}' => out.push(it.next().unwrap_or(0) ^ 0x20),
            b'*' => {
                // "c*N" repeats c (N - 29) more times.
                let n = usize::from(it.next().unwrap_or(29).saturating_sub(29));
                let last = *out.last().unwrap_or(&b'0');
                if out.len() + n > MAX_PACKET {
                    return Err(format!(
                        "gdb stub: a packet longer than {MAX_PACKET} bytes once expanded"
                    ));
                }
                out.extend(std::iter::repeat_n(last, n));
            }
            c => out.push(c),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// The bytes of an even-length hex string.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A stub's answer for tests: the ack of the client's packet, then `body`.
#[cfg(test)]
pub(crate) fn reply(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("+${body}#{sum:02x}")
}

/// An in-memory stub for tests and fuzzing: reads come from `input`, writes
/// are kept in `output`.
#[derive(Debug, Default)]
pub struct ScriptedLink {
    /// Bytes the "stub" sends.
    pub input: std::collections::VecDeque<u8>,
    /// Bytes the client wrote.
    pub output: Vec<u8>,
}

impl ScriptedLink {
    /// A stub that will send `input`, then close.
    pub fn new(input: &[u8]) -> Self {
        ScriptedLink {
            input: input.iter().copied().collect(),
            output: Vec::new(),
        }
    }
}

impl Read for ScriptedLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for ScriptedLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Link for ScriptedLink {
    fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(body: &[u8]) -> Vec<u8> {
        let sum = body.iter().fold(0u8, |a, x| a.wrapping_add(*x));
        let mut p = vec![b'$'];
        p.extend_from_slice(body);
        p.extend_from_slice(format!("#{sum:02x}").as_bytes());
        p
    }

    #[test]
    fn test_hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 0xab, 0x10])), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn test_escapes_run_lengths_and_a_bad_checksum() {
        let mut input = b"+$T05#00".to_vec();
        input.extend(packet(b"a}\x5db0* "));
        let mut rsp = Rsp::new(ScriptedLink::new(&input));
        assert_eq!(rsp.recv(ANSWER_TIMEOUT).unwrap(), "a}b0000");
        assert_eq!(rsp.stream.output, b"-+");
        // The peer is gone: an error, not a hang.
        assert!(rsp.recv(ANSWER_TIMEOUT).is_err());
    }

    /// `$a#00` forever made `recv` recurse until the stack overflowed.
    #[test]
    fn test_endless_bad_checksums_give_up() {
        let input = b"$a#00".repeat(100_000);
        let mut rsp = Rsp::new(ScriptedLink::new(&input));
        let e = rsp.recv(ANSWER_TIMEOUT).unwrap_err();
        assert!(e.contains("bad checksums"), "{e}");
        assert_eq!(rsp.stream.output.len(), MAX_NAKS as usize + 1);
    }

    /// A stream without `$` (or without `#`) grew memory without end.
    #[test]
    fn test_junk_and_unterminated_packets_are_bounded() {
        let junk = vec![b'x'; MAX_JUNK + 10];
        let e = Rsp::new(ScriptedLink::new(&junk))
            .recv(ANSWER_TIMEOUT)
            .unwrap_err();
        assert!(e.contains("without a packet"), "{e}");
        let mut open = vec![b'$'];
        open.extend(vec![b'x'; MAX_PACKET + 10]);
        let e = Rsp::new(ScriptedLink::new(&open))
            .recv(ANSWER_TIMEOUT)
            .unwrap_err();
        assert!(e.contains("longer than"), "{e}");
    }

    /// 2 MB of run-length pairs expanded to 467 MB.
    #[test]
    fn test_run_length_expansion_is_bounded() {
        let body = b"0*~".repeat(1000);
        let mut rsp = Rsp::new(ScriptedLink::new(&packet(&body)));
        let e = rsp.recv(ANSWER_TIMEOUT).unwrap_err();
        assert!(e.contains("once expanded"), "{e}");
        let mut rsp = Rsp::new(ScriptedLink::new(&packet(b"0*~")));
        assert_eq!(rsp.recv(ANSWER_TIMEOUT).unwrap().len(), 1 + 97);
    }

    /// Bytes that keep arriving do not extend the deadline.
    #[test]
    fn test_deadline_holds_while_bytes_arrive() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let stub = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                if s.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let mut rsp = Rsp::connect(&addr, Duration::from_secs(5)).unwrap();
        let start = Instant::now();
        let e = rsp.recv(Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("in time"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(rsp);
        stub.join().unwrap();
    }
}
