"""The call records a test firmware writes (layout: fw/common.S), their
expected answers, the byte-by-byte compare of two runs and the transcript
of a run for `papr-scm replay`."""
import struct

RECORDS, BUFFERS, R_SIZE = 0x100000, 0x200000, 0x140
F_EVENT, F_WORKAREA = 1, 2
FILL = 0x5C5C5C5C5C5C5C00

OPCODES = {
    0x3E4: 'H_SCM_READ_METADATA', 0x3E8: 'H_SCM_WRITE_METADATA', 0x3EC: 'H_SCM_BIND_MEM',
    0x3F0: 'H_SCM_UNBIND_MEM', 0x3F4: 'H_SCM_QUERY_BLOCK_MEM_BINDING',
    0x3F8: 'H_SCM_QUERY_LOGICAL_MEM_BINDING', 0x3FC: 'H_SCM_UNBIND_ALL', 0x400: 'H_SCM_HEALTH',
    0x418: 'H_SCM_PERFORMANCE_STATS', 0x44C: 'H_SCM_FLUSH', 0xF000: 'KVMPPC_H_RTAS',
}
# Return codes [QEMU include/hw/ppc/spapr.h; Linux hvcall.h].
STATUS = {
    'H_SUCCESS': 0, 'H_BUSY': 1, 'H_PARTIAL': 5, 'H_LONG_BUSY_ORDER_10_MSEC': 9901,
    'H_HARDWARE': -1, 'H_FUNCTION': -2, 'H_PRIVILEGE': -3, 'H_PARAMETER': -4,
    'H_NOT_FOUND': -7, 'H_AUTHORITY': -10, 'H_P2': -55, 'H_P3': -56, 'H_P4': -57,
    'H_P5': -58, 'H_UNSUPPORTED': -67, 'H_OVERLAP': -68,
}
STATUS_NAME = {v: k for k, v in STATUS.items()}
# The statistics Linux knows, in its order [papr_scm.c; src/stats.rs].
STAT_IDS = ['CtlResCt', 'CtlResTm', 'PonSecs', 'MemLife', 'CritRscU', 'HostLCnt', 'HostSCnt',
            'HostSDur', 'HostLDur', 'MedRCnt', 'MedWCnt', 'MedRDur', 'MedWDur', 'CchRHCnt',
            'CchWHCnt', 'FastWCnt']

# The Main-A section's creation date and time in an RTAS event: QEMU stamps
# them from the host clock [spapr_events.c, spapr_init_maina], so two runs
# differ there. Offsets: rtas_error_log (8) + v6 header (16) + section
# header (8).
EVENT_STAMP = range(32, 40)


def s64(v):
    return v - (1 << 64) if v & (1 << 63) else v


def s32(v):
    return v - (1 << 32) if v & (1 << 31) else v


def status_text(v):
    v = s64(v)
    return STATUS_NAME.get(v, str(v))


class Record:
    """One call: what went in, what came out, and what was expected."""

    def __init__(self, index, raw, blob, buffers, tokens):
        w = struct.unpack('>40Q', raw)
        self.index = index
        self.kind = w[0]
        self.desc = cstr(blob, w[1])
        self.expect = cstr(blob, w[2])
        self.papr = cstr(blob, w[3])
        self.flags = w[4]
        self.polls = w[5]
        self.regs_in = list(w[6:16])       # r3..r12
        self.regs_out = list(w[16:26])
        buf, buflen = w[26], w[27]
        self.buf = buffers[buf - BUFFERS:buf - BUFFERS + buflen] if buf else None
        self.buf_addr = w[39]
        pre, prelen = w[36], w[37]
        self.pre = buffers[pre - BUFFERS:pre - BUFFERS + prelen] if pre else None
        self.pre_addr = w[38]
        self.rtas = list(struct.unpack('>16I', raw[0xe0:0x120])) if self.kind == 2 else None
        self.tokens = tokens

    @property
    def opcode(self):
        return self.regs_in[0]

    def service(self):
        tok = self.rtas[0]
        return self.tokens.get(tok, 'token 0x%x' % tok)

    def nargs(self):
        return self.rtas[1]

    def args(self):
        return self.rtas[3:3 + self.rtas[1]]

    def rets(self):
        n = self.rtas[1]
        return [s32(v) for v in self.rtas[3 + n:3 + n + self.rtas[2]]]

    def title(self):
        if self.kind == 2:
            what = '%s(%s)' % (self.service(), ', '.join('0x%x' % a for a in self.args()))
        else:
            what = OPCODES.get(self.opcode, 'hcall 0x%x' % self.opcode)
        return '#%d %s "%s"' % (self.index, what, self.desc)


def cstr(blob, addr):
    if not addr:
        return ''
    end = blob.index(b'\0', addr)
    return blob[addr:end].decode()


def load(blob, records, buffers, count, tokens=None):
    tokens = tokens or {}
    return [Record(i, records[i * R_SIZE:(i + 1) * R_SIZE], blob, buffers, tokens)
            for i in range(count)]


# -- expected answers ---------------------------------------------------------
def parse_answer(text):
    """'H_SUCCESS r4=0x10 stats=A:1,B:2' -> (status, {reg: value}, stats)."""
    parts = text.split()
    status = STATUS[parts[0]] if parts[0] in STATUS else int(parts[0], 0)
    regs, stats = {}, None
    for p in parts[1:]:
        k, v = p.split('=', 1)
        if k == 'stats':
            stats = [(i.split(':')[0], int(i.split(':')[1], 0)) for i in v.split(',')]
        else:
            regs[int(k[1:])] = int(v, 0) & ((1 << 64) - 1)
    return status, regs, stats


def check(rec, which):
    """Problems of a record against its `expect` (QEMU's answer; registers
    it does not name must keep their input) or `papr` answer (only what it
    names). [] when it holds or there is nothing to check."""
    text = rec.expect if which == 'expect' else rec.papr
    if not text:
        return []
    if rec.kind == 2:
        want = [int(x, 0) for x in text.split()]
        got = rec.rets()
        probs = []
        if rec.regs_out[0] != 0:
            probs.append('the RTAS hcall returned %s' % status_text(rec.regs_out[0]))
        if got[:len(want)] != want:
            probs.append('returns %s, expected %s' % (' '.join(map(str, got)), text))
        return probs
    status, regs, stats = parse_answer(text)
    probs = []
    if s64(rec.regs_out[0]) != status:
        probs.append('r3 %s, expected %s' % (status_text(rec.regs_out[0]), status_text(status & ((1 << 64) - 1))))
    for n in range(4, 13):
        got = rec.regs_out[n - 3]
        if n in regs:
            if got != regs[n]:
                probs.append('r%d 0x%x, expected 0x%x' % (n, got, regs[n]))
        elif which == 'expect' and got != rec.regs_in[n - 3]:
            probs.append('r%d 0x%x, expected its input 0x%x (not an output)' % (n, got, rec.regs_in[n - 3]))
    if stats is not None:
        probs += check_stats(rec.buf, stats)
    return probs


def check_stats(buf, stats):
    """A PERFORMANCE_STATS buffer [papr_scm.c, struct papr_scm_perf_stats]."""
    if buf is None or len(buf) < 16 + 16 * len(stats):
        return ['no stats buffer recorded']
    probs = []
    eye, version, count = struct.unpack('>8sII', buf[:16])
    if eye != b'SCMSTATS' or version != 1 or count != len(stats):
        probs.append('stats header %r v%d count %d, expected SCMSTATS v1 count %d'
                     % (eye, version, count, len(stats)))
    for i, (sid, val) in enumerate(stats):
        gid, gval = struct.unpack('>8sQ', buf[16 + 16 * i:32 + 16 * i])
        if gid != sid.encode().ljust(8) or gval != val:
            probs.append('stat %d %r=%d, expected %r=%d' % (i, gid.decode(errors='replace'), gval, sid, val))
    return probs


# -- two runs, byte by byte ----------------------------------------------------
def compare(a, b, name_a, name_b):
    """Differences between two runs of one firmware, one line each: the
    record, the register or byte, both values. Poll counts are not compared
    (they follow fdatasync and the runner's timing), nor an event's stamp."""
    probs = []
    if len(a) != len(b):
        probs.append('%d records with %s, %d with %s' % (len(a), name_a, len(b), name_b))
    for ra, rb in zip(a, b):
        if ra.desc != rb.desc:
            probs.append('%s: the runs part here (%s has "%s")' % (ra.title(), name_b, rb.desc))
            break
        for n in range(3, 13):
            if ra.regs_in[n - 3] != rb.regs_in[n - 3]:
                probs.append('%s: input r%d %s 0x%x, %s 0x%x' % (
                    ra.title(), n, name_a, ra.regs_in[n - 3], name_b, rb.regs_in[n - 3]))
            if ra.regs_out[n - 3] != rb.regs_out[n - 3]:
                fa = status_text(ra.regs_out[0]) if n == 3 else '0x%x' % ra.regs_out[n - 3]
                fb = status_text(rb.regs_out[0]) if n == 3 else '0x%x' % rb.regs_out[n - 3]
                probs.append('%s: r%d %s %s, %s %s' % (ra.title(), n, name_a, fa, name_b, fb))
        if ra.kind == 2 and ra.rtas != rb.rtas:
            probs.append('%s: RTAS returns %s %s, %s %s' % (ra.title(), name_a, ra.rets(), name_b, rb.rets()))
        probs += compare_buf(ra, rb, name_a, name_b)
    return probs


def compare_buf(ra, rb, name_a, name_b):
    if ra.buf == rb.buf:
        return []
    if ra.buf is None or rb.buf is None or len(ra.buf) != len(rb.buf):
        return ['%s: buffer of %s bytes with %s, %s with %s' % (
            ra.title(), len(ra.buf or b''), name_a, len(rb.buf or b''), name_b)]
    diff = [i for i in range(len(ra.buf)) if ra.buf[i] != rb.buf[i]
            and not (ra.flags & F_EVENT and i in EVENT_STAMP)]
    if not diff:
        return []
    runs, start = [], diff[0]
    for p, q in zip(diff, diff[1:] + [None]):
        if q != p + 1:
            runs.append((start, p + 1))
            start = q
    shown = ', '.join('[%d..%d) %s %s, %s %s' % (s, e, name_a, ra.buf[s:e][:24].hex(), name_b, rb.buf[s:e][:24].hex())
                      for s, e in runs[:4])
    return ['%s: %d buffer bytes differ: %s%s' % (ra.title(), len(diff), shown, ' ...' if len(runs) > 4 else '')]


# -- a run as a transcript for `papr-scm replay` ----------------------------------
def reg_text(v):
    return '-1' if v == (1 << 64) - 1 else '0x%x' % v


def hcall_line(r, answer=None):
    """`call` with every output register as the run had it, or (answer
    given) with the status and registers `answer` names; answer '' gives a
    call with no expectation."""
    name = OPCODES.get(r.opcode, '0x%x' % r.opcode)
    args = ' '.join(reg_text(v) for v in r.regs_in[1:])
    if answer is None:
        outs = ' '.join('r%d=%s' % (n, reg_text(r.regs_out[n - 3])) for n in range(4, 13))
        return 'call %s %s -> %s %s' % (name, args, status_text(r.regs_out[0]), outs)
    if not answer:
        return 'call %s %s' % (name, args)
    status, regs, _ = parse_answer(answer)
    outs = ' '.join('r%d=%s' % (n, reg_text(v)) for n, v in sorted(regs.items()))
    return 'call %s %s -> %s %s' % (name, args, status_text(status & ((1 << 64) - 1)), outs)


def stats_bytes(stats):
    """A PERFORMANCE_STATS buffer holding these (id, value) entries."""
    b = b'SCMSTATS' + struct.pack('>II', 1, len(stats))
    for sid, val in stats:
        b += sid.encode().ljust(8) + struct.pack('>Q', val)
    return b
