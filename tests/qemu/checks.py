#!/usr/bin/env python3
"""The functional checks of tests/qemu on one QEMU binary (run.sh calls it).

  checks.py --qemu BIN --tag NAME --work DIR [--replay PAPR_SCM] TEST...

Tests: compare papr hostile pmem-insns device-del. Each check prints one
line, `ok NAME: ...`, `FAIL NAME: ...` (with the differences indented
below) or `SKIP NAME: why`; run.sh counts them.
"""
import argparse
import os
import struct
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import records  # noqa: E402
import vm  # noqa: E402
from vm import Nvdimm  # noqa: E402

FW = os.path.join(HERE, 'fw')
RTAS_SERVICES = {
    'check-exception': 'TOK_CHECK_EXCEPTION', 'event-scan': 'TOK_EVENT_SCAN',
    'get-sensor-state': 'TOK_GET_SENSOR_STATE', 'set-indicator': 'TOK_SET_INDICATOR',
    'ibm,configure-connector': 'TOK_CONFIGURE_CONNECTOR',
}
SHOWN = 12        # differences printed per failing check


class Ctx:
    def __init__(self, a):
        self.qemu, self.tag, self.replay = a.qemu, a.tag, a.replay
        self.work = a.work
        self.seed = a.seed
        self.hostile_calls = a.hostile_calls
        self.runs = {}
        # The property exists in every build of the series (an instance
        # property: `-machine pseries,help` does not list it); papr-scm=on
        # works only where the library is linked in (a build without it
        # refuses papr-scm=on at start). Boot to know.
        self.has_property, self.patched, self.why_not = False, False, ''
        for on in (False, True):
            try:
                boot_tree(self, 'papr-scm=%s' % ('on' if on else 'off'), [], 'probe')
                self.has_property, self.patched = True, on
            except vm.QemuError as e:
                self.why_not = 'papr-scm=%s refused: %s' % ('on' if on else 'off', str(e)[-160:])
                break

    def machine(self, papr_scm, profile=None, trace=None):
        """The machine options for papr-scm on/off (off on stock QEMU: the
        property does not exist there)."""
        if not papr_scm:
            return 'papr-scm=off' if self.has_property else ''
        m = 'papr-scm=on'
        if profile:
            m += ',papr-scm-profile=' + profile
        if trace:
            m += ',papr-scm-trace=' + trace
        return m

    def line(self, status, name, detail, problems=()):
        print('%-4s %s %s: %s' % (status, self.tag, name, detail), flush=True)
        for p in list(problems)[:SHOWN]:
            print('       ' + p, flush=True)
        if len(problems) > SHOWN:
            print('       ... %d more' % (len(problems) - SHOWN), flush=True)

    def ok(self, name, detail):
        self.line('ok', name, detail)

    def fail(self, name, detail, problems=()):
        self.line('FAIL', name, detail, problems)

    def skip(self, name, detail):
        self.line('SKIP', name, detail)

    def verdict(self, name, detail, problems):
        if problems:
            self.fail(name, detail, problems)
        else:
            self.ok(name, detail)


# -- firmware -----------------------------------------------------------------
def assemble(ctx, name, out, defsyms=()):
    """fw/NAME.S -> OUT.bin, assembled and linked at 0 (fw/fw.ld)."""
    obj, elf, binf = out + '.o', out + '.elf', out + '.bin'
    argv = ['powerpc64-linux-gnu-as', '-I', FW, '-o', obj]
    for k, v in defsyms:
        argv += ['--defsym', '%s=%s' % (k, v)]
    argv.append(os.path.join(FW, name + '.S'))
    for cmd in (argv, ['powerpc64-linux-gnu-ld', '-T', os.path.join(FW, 'fw.ld'), '-o', elf, obj],
                ['powerpc64-linux-gnu-objcopy', '-O', 'binary', elf, binf]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise vm.QemuError('%s failed: %s' % (cmd[0], (r.stdout + r.stderr).strip()))
    with open(binf, 'rb') as f:
        return binf, f.read()


def boot_tree(ctx, machine, devices, name):
    binf, _ = assemble(ctx, 'tree', os.path.join(ctx.work, name + '-tree'))
    return vm.guest_tree(ctx.qemu, ctx.work, name + '-tree', binf, machine, devices)


def rtas_tokens(ctx, machine, devices, name, blob=None):
    """The RTAS tokens of this machine, from the tree it hands the firmware
    (/rtas)."""
    blob = blob or boot_tree(ctx, machine, devices, name)
    props = vm.fdt_properties(blob, '/rtas')
    tokens = {}
    for service, sym in RTAS_SERVICES.items():
        if service not in props:
            raise vm.QemuError('no %s in /rtas' % service)
        tokens[sym] = struct.unpack('>I', props[service])[0]
    return tokens


class Run:
    """A firmware's records and everything else a check looks at."""

    def __init__(self, recs, ctl, labels, extra=None):
        self.recs, self.ctl, self.labels = recs, ctl, labels
        self.extra = extra or {}


def run_firmware(ctx, fwname, run_name, machine, devices, cold, defsyms=(), during=None,
                 timeout=120, token_names=None, cpu=None):
    """Boots fwname with `cold` devices plugged (all `devices` have their
    backend on the command line), runs `during(vm)` once it is up, waits
    for the done marker and reads the records. Raises QemuError."""
    binf, blob = assemble(ctx, fwname, os.path.join(ctx.work, run_name), defsyms)
    extra = []
    for d in devices:
        if d not in cold:
            extra += ['-object', d.backend(ctx.work)]
    v = vm.Vm(ctx.qemu, ctx.work, run_name, binf, machine=machine, devices=cold, cpu=cpu, extra=extra)
    try:
        info = during(v) if during else None
        c = v.wait_done(timeout)
        recs_raw = v.read(records.RECORDS, c['count'] * records.R_SIZE) if c['count'] else b''
        bufs = v.read(records.BUFFERS, c['bufend'] - records.BUFFERS) if c['bufend'] > records.BUFFERS else b''
        recs = records.load(blob, recs_raw, bufs, c['count'], token_names)
        user = struct.unpack('>8Q', v.read(vm.CTL + vm.CTL_USER, 64))
        alive = v.alive()
    finally:
        v.quit()
    labels = {d.name: d.label(ctx.work) for d in devices
              if os.path.exists(os.path.join(ctx.work, d.name + '.img'))}
    return Run(recs, c, labels, dict(info=info, user=user, alive=alive, log=v.log_path))


def fresh(devices, ctx):
    for d in devices:
        p = os.path.join(ctx.work, d.name + '.img')
        if os.path.exists(p):
            os.unlink(p)


# -- devices of each firmware -----------------------------------------------------
def hcall_devices():
    return [Nvdimm('nv0', 0, 4), Nvdimm('nv1', 1, 1, kind='spapr-nvdimm'),
            Nvdimm('nv2', 2, 1, extra='unarmed=on')]


def rtas_devices():
    return [Nvdimm('nv0', 0, 4), Nvdimm('nv1', 1, 1)]


# -- compare ---------------------------------------------------------------------
def run_hcalls(ctx, side, machine):
    devs = hcall_devices()
    fresh(devs, ctx)
    tree = boot_tree(ctx, machine, devs, 'hcalls-' + side)
    run = run_firmware(ctx, 'hcalls', 'hcalls-' + side, machine, devs, devs)
    run.extra['tree'] = tree
    return run


def hotplug_during(ctx, wait_unplug=False):
    def during(v):
        v.wait_stage(1, 60)
        info = {'plug_at': v.ctl()['count']}
        v.qmp('device_add', **rtas_devices()[1].device_qmp())
        if wait_unplug:
            v.wait_stage(2, 60)
            info['unplug_at'] = v.ctl()['count']
            try:
                v.qmp('device_del', id='nv1')
                info['device_del'] = 'accepted'
            except vm.QemuError as e:
                info['device_del'] = str(e)
        return info
    return during


def run_rtas(ctx, side, machine, wait_unplug=False):
    devs = rtas_devices()
    fresh(devs, ctx)
    tree = boot_tree(ctx, machine, devs[:1], 'rtas-' + side)
    tokens = rtas_tokens(ctx, machine, devs[:1], 'rtas-' + side, tree)
    names = {v: k for k, v in zip(RTAS_SERVICES, [tokens[s] for s in RTAS_SERVICES.values()])}
    defs = sorted(tokens.items()) + ([('WAIT_UNPLUG', 1)] if wait_unplug else [])
    run = run_firmware(ctx, 'rtas-hotplug', 'rtas-' + side, machine, devs, devs[:1], defs,
                       during=hotplug_during(ctx, wait_unplug), token_names=names)
    run.extra['tree'] = tree
    return run


def expect_problems(run, which='expect'):
    probs = []
    for r in run.recs:
        probs += ['%s: %s' % (r.title(), p) for p in records.check(r, which)]
    return probs


def cc_problems(run):
    """The configure-connector walk: first step 2 (the node), then 3s (its
    properties), the last 0 (complete); the node is ibm,pmemory@<address>
    [spapr_nvdimm.c, spapr_dt_nvdimm]."""
    steps = [r for r in run.recs if r.desc == 'configure slot 1, a step']
    rets = [r.rets()[0] for r in steps]
    probs = []
    if not rets or rets[0] != 2 or rets[-1] != 0 or any(x not in (3, 4) for x in rets[1:-1]):
        probs.append('configure-connector answered %s, expected 2, 3..., 0' % rets)
    elif not steps[0].buf[20:].startswith(b'ibm,pmemory@'):
        probs.append('the first step names %r' % steps[0].buf[20:40])
    return probs


def event_problems(run, action):
    """The hot-plug event QEMU queues [spapr_events.c, spapr_hotplug_req_event]:
    summary 0x063460E5, extended length 108, sections PH UH HP, PMEM (6),
    the action, by DRC index (2), DRC 0x90000001."""
    evs = [r for r in run.recs if r.desc.startswith('check-exception: the') and r.buf]
    if not evs:
        return ['no event recorded']
    b = evs[0].buf
    summary, ext = struct.unpack('>II', b[:8])
    got = (summary, ext, b[24:26], b[72:74], b[96:98], b[104], b[105], b[106], struct.unpack('>I', b[108:112])[0])
    want = (0x063460E5, 108, b'PH', b'UH', b'HP', 6, action, 2, 0x90000001)
    return [] if got == want else ['event %s, expected %s' % (got, want)]


def compare_catches(a, b):
    """The compare must see one flipped output bit and one flipped buffer
    byte of run b (a check that cannot fail proves nothing)."""
    probs = []
    r = b.recs[len(b.recs) // 2]
    r.regs_out[5] ^= 1
    if len(records.compare(a.recs, b.recs, 'a', 'b')) != 1:
        probs.append('a flipped r8 was not reported exactly once')
    r.regs_out[5] ^= 1
    r = [x for x in b.recs if x.buf][-1]
    saved = r.buf
    r.buf = bytes([saved[0] ^ 0x80]) + saved[1:]
    if len(records.compare(a.recs, b.recs, 'a', 'b')) != 1:
        probs.append('a flipped buffer byte was not reported')
    r.buf = saved
    return probs


def t_compare(ctx):
    for fw, runner in (('hcalls', run_hcalls), ('rtas-hotplug', run_rtas)):
        name = 'compare/' + fw
        try:
            off = off_run(ctx, fw)
        except vm.QemuError as e:
            ctx.fail(name, 'papr-scm=off did not run: %s' % e)
            continue
        probs = expect_problems(off)
        if fw == 'rtas-hotplug':
            probs += cc_problems(off) + event_problems(off, 1)
        ctx.verdict(name + ' (papr-scm=off)', "%d calls answered as QEMU's handlers are documented"
                    % len(off.recs), probs)
        replay_cross_check(ctx, fw, off)
        if not ctx.patched:
            # The compare itself, on what there is: a second papr-scm=off run
            # must equal the first (poll counts and event stamps aside).
            try:
                again = runner(ctx, 'off-again', ctx.machine(False))
                probs = records.compare(off.recs, again.recs, 'first', 'second')
                probs += compare_catches(off, again)
                ctx.verdict(name + ' (papr-scm=off twice)', 'two runs equal byte by byte (the compare is '
                            'deterministic), and a changed register or buffer byte is reported', probs)
            except vm.QemuError as e:
                ctx.fail(name + ' (papr-scm=off twice)', str(e))
            ctx.skip(name, 'papr-scm=on,papr-scm-profile=qemu: this QEMU has no papr-scm (%s)' % ctx.why_not)
            continue
        trace = os.path.join(ctx.work, '%s-on-qemu.trace' % fw)
        try:
            on = runner(ctx, 'on-qemu', ctx.machine(True, 'qemu', trace))
        except vm.QemuError as e:
            ctx.fail(name, 'papr-scm=on did not run: %s' % e)
            continue
        trace_check(ctx, name + ' (papr-scm=on trace)', trace, on)
        probs = records.compare(off.recs, on.recs, 'off', 'on')
        if 'tree' in off.extra:
            probs += ['boot tree: ' + d for d in vm.fdt_diff(off.extra['tree'], on.extra['tree'], 'off', 'on')]
        for dev, lab in off.labels.items():
            if on.labels.get(dev) != lab:
                diff = [i for i in range(len(lab)) if lab[i] != on.labels[dev][i]]
                probs.append('%s label bytes differ at %d offsets from 0x%x' % (dev, len(diff), diff[0]))
        ctx.verdict(name, 'papr-scm=on,papr-scm-profile=qemu equals papr-scm=off: %d calls, registers, '
                    'buffers, labels%s' % (len(off.recs), ' and the boot tree' if 'tree' in off.extra else ''),
                    probs)


def trace_check(ctx, name, trace, run):
    """papr-scm answered the run: its trace holds every SCM hcall the
    firmware recorded (and the flush polls it did not record) and exactly
    its RTAS calls on PMEM connectors (check-exception and event-scan are
    the VMM's: PMEM events go to QEMU's one event queue), and it replays
    with no mismatch."""
    if not os.path.exists(trace):
        ctx.fail(name, 'no papr-scm-trace written')
        return
    with open(trace) as f:
        kinds = [l.split(' ', 1)[0] for l in f]
    hcalls = sum(1 for r in run.recs if r.kind == 1)
    rtas = sum(1 for r in run.recs if r.kind == 2 and (r.service() == 'ibm,configure-connector'
                                                       or r.args()[1] >> 28 == 9))
    probs = []
    if kinds.count('call') < hcalls:
        probs.append('the trace holds %d hcalls, the firmware made %d' % (kinds.count('call'), hcalls))
    if kinds.count('rtas') != rtas:
        probs.append('the trace holds %d RTAS calls, the firmware made %d on PMEM connectors'
                     % (kinds.count('rtas'), rtas))
    ok, rprobs, summary = replay(ctx, trace)
    if not ok:
        probs += (rprobs or ['replay failed']) + trace_context(trace, rprobs)
    ctx.verdict(name, 'papr-scm answered: its trace holds %d hcalls and %d RTAS calls and replays (%s)'
                % (kinds.count('call'), kinds.count('rtas'), summary.split(': ', 1)[-1] or 'no summary'), probs)


# -- the crate against QEMU: a run replayed ------------------------------------------
def transcript(ctx, fw, run, profile='qemu'):
    """The run as a transcript (src/transcript.rs) for `papr-scm replay`.
    profile qemu: every output register, RTAS return word and buffer is
    expected as QEMU answered (RTAS calls on connectors that are not PMEM
    carry no expectation: replay has no QEMU behind papr-scm). profile
    papr: the same calls, expected as their `papr=` answers say."""
    devs = hcall_devices() if fw == 'hcalls' else rtas_devices()
    out = ['# %s on %s, papr-scm=off, written by tests/qemu/checks.py' % (fw, ctx.tag),
           'machine ram=%s maxmem=%s slots=%d profile=%s' % (vm.RAM, vm.MAXMEM, vm.SLOTS, profile)]

    def dev_line(word, d):
        s = '%s slot=%d size=%dM+128K label-size=128K uuid=%s' % (word, d.slot, d.blocks * 256, d.uuid)
        if d.kind != 'nvdimm':
            s += ' type=' + d.kind
        for kv in filter(None, d.extra.split(',')):
            s += ' ' + kv
        return s
    cold = devs if fw == 'hcalls' else devs[:1]
    out += [dev_line('nvdimm', d) for d in cold]
    plug_at = (run.extra.get('info') or {}).get('plug_at')
    prev_wa = None
    for r in run.recs:
        if r.index == plug_at:
            ev = [x for x in run.recs if x.flags & records.F_EVENT and x.desc.startswith('check-exception: the')]
            if ev:
                out.append('time ' + event_time(ev[0].buf))
            out.append(dev_line('plug', devs[1]))
        if r.pre is not None:
            out.append('mem 0x%x %s' % (r.pre_addr, r.pre.hex()))
        if r.kind == 1:
            if profile == 'qemu':
                out.append(records.hcall_line(r))
                if r.buf is not None:
                    out.append('expect-mem 0x%x %s' % (r.buf_addr, r.buf.hex()))
            else:
                out.append(records.hcall_line(r, r.papr))
                stats = records.parse_answer(r.papr)[2] if r.papr else None
                if stats is not None:
                    out.append('expect-mem 0x%x %s' % (r.buf_addr, records.stats_bytes(stats).hex()))
            continue
        args = r.args()
        svc = r.service()
        pmem = svc in ('check-exception', 'event-scan', 'ibm,configure-connector') \
            or (len(args) > 1 and args[1] >> 28 == 9)
        if svc == 'ibm,configure-connector':
            wa = args[0]
            before = prev_wa if prev_wa is not None else struct.pack('>I', 0x90000001).ljust(4096, b'\0')
            out.append('mem 0x%x %s' % (wa, before.hex()))
        words = ' '.join('0x%x' % a for a in args)
        if pmem and profile == 'qemu':
            out.append('rtas %s %s -> %s' % (svc, words, ' '.join(str(x) for x in r.rets())))
        else:
            out.append('rtas %s %s' % (svc, words))
        if r.flags & records.F_WORKAREA and r.buf:
            if profile == 'qemu':
                out.append('expect-mem 0x%x %s' % (args[0], r.buf.hex()))
            prev_wa = r.buf
        if svc == 'check-exception' and r.rets()[0] == 0 and r.buf and profile == 'qemu':
            # The event as QEMU wrote it: the header and 108 bytes.
            out.append('expect-mem 0x%x %s' % (args[4], r.buf[:116].hex()))
    return '\n'.join(out) + '\n'


def event_time(buf):
    """The event's BCD stamp [spapr_events.c, spapr_init_maina] as the
    transcript's `time` line wants it."""
    d, t = struct.unpack('>II', buf[32:40])
    bcd = lambda x: (x >> 4) * 10 + (x & 15)  # noqa: E731
    return '%02d%02d-%02d-%02dT%02d:%02d:%02d' % (bcd(d >> 24), bcd(d >> 16 & 255), bcd(d >> 8 & 255),
                                                  bcd(d & 255), bcd(t >> 24), bcd(t >> 16 & 255),
                                                  bcd(t >> 8 & 255))


def replay(ctx, path):
    """`papr-scm replay FILE`: (ok, mismatch lines, summary)."""
    if not ctx.replay:
        return None, ['no papr-scm binary (cargo build failed?)'], ''
    r = subprocess.run([ctx.replay, 'replay', path], capture_output=True, text=True)
    mism = [l.split('MISMATCH ', 1)[-1] for l in r.stderr.splitlines() if 'MISMATCH' in l]
    other = [l for l in r.stderr.splitlines() if 'MISMATCH' not in l]
    summary = [l for l in r.stdout.splitlines() if l.endswith('mismatches')]
    return r.returncode == 0, mism + other, summary[-1] if summary else ''


def trace_context(path, probs):
    """The trace lines a `line N:` complaint points at, and the next one."""
    import re
    out = []
    with open(path) as f:
        lines = f.readlines()
    for p in probs[:3]:
        m = re.search(r'line (\d+):', p)
        if m:
            n = int(m.group(1))
            out += ['  trace line %d: %s' % (i + 1, lines[i].rstrip()[:200]) for i in (n - 1, n) if i < len(lines)]
    return out


def replay_cross_check(ctx, fw, run):
    path = os.path.join(ctx.work, '%s-off.transcript' % fw)
    with open(path, 'w') as f:
        f.write(transcript(ctx, fw, run))
    ok, probs, summary = replay(ctx, path)
    name = 'compare/%s (papr-scm replay)' % fw
    if ok is None:
        ctx.fail(name, 'cannot replay', probs)
        return
    ctx.verdict(name, "papr-scm's qemu profile, replaying papr-scm=off's calls, answers as QEMU did (%s)"
                % (summary.split(': ', 1)[-1] or 'no summary'), [] if ok else probs or ['replay failed'])


def off_run(ctx, fw):
    """papr-scm=off's run of a firmware, once per binary."""
    key = fw + '-off'
    if key not in ctx.runs:
        ctx.runs[key] = (run_hcalls if fw == 'hcalls' else run_rtas)(ctx, 'off', ctx.machine(False))
    return ctx.runs[key]


# -- papr -------------------------------------------------------------------------
def t_papr(ctx):
    # The expected answers against the crate first (any QEMU): papr-scm's
    # papr profile replaying the calls papr-scm=off made.
    name = 'papr'
    try:
        off = off_run(ctx, 'hcalls')
        path = os.path.join(ctx.work, 'hcalls-papr.transcript')
        with open(path, 'w') as f:
            f.write(transcript(ctx, 'hcalls', off, 'papr'))
        ok, probs, summary = replay(ctx, path)
        n = sum(1 for r in off.recs if r.papr)
        ctx.verdict(name + ' (papr-scm replay)', "papr-scm's papr profile, replaying the firmware's calls, gives "
                    "the %d papr answers written in hcalls.S (%s)" % (n, summary.split(': ', 1)[-1]),
                    [] if ok else probs or ['replay failed'])
    except vm.QemuError as e:
        ctx.fail(name + ' (papr-scm replay)', str(e))
    if not ctx.patched:
        ctx.skip(name, 'papr-scm=on,papr-scm-profile=papr: this QEMU has no papr-scm (%s)' % ctx.why_not)
        return
    try:
        run = run_hcalls(ctx, 'on-papr', ctx.machine(True, 'papr'))
    except vm.QemuError as e:
        ctx.fail(name, 'papr-scm=on,papr-scm-profile=papr did not run: %s' % e)
        return
    checked = [r for r in run.recs if r.papr]
    ctx.verdict(name, "papr-scm=on,papr-scm-profile=papr: the papr answers of %d calls (QUERY_*, "
                'PERFORMANCE_STATS, the health mask, bind state)' % len(checked), expect_problems(run, 'papr'))


# -- hostile ----------------------------------------------------------------------
def t_hostile(ctx):
    if not ctx.patched:
        # The "before": QEMU's h_scm_unbind_mem builds the range with
        # range_init_nofail, which asserts when start + n * 256 MiB wraps.
        devs = hcall_devices()
        fresh(devs, ctx)
        try:
            run = run_firmware(ctx, 'hostile', 'hostile-stock', '', devs, devs,
                               [('SEED', ctx.seed), ('CALLS', ctx.hostile_calls)], timeout=900)
            ctx.fail('hostile (no papr-scm)', 'stock QEMU survived %d calls: is it patched?' % run.extra['user'][0])
        except vm.QemuError as e:
            msg = str(e)
            ctx.verdict('hostile (no papr-scm)', 'stock QEMU aborts on a wrapping UNBIND_MEM range, as expected '
                        '(%s)' % msg[msg.find('range.h'):].split(' | ')[0].strip(),
                        [] if 'range_invariant' in msg or 'range.h' in msg else [msg])
        ctx.skip('hostile', 'papr-scm=on: this QEMU has no papr-scm (%s)' % ctx.why_not)
        return
    for profile in ('papr', 'qemu'):
        name = 'hostile/' + profile
        trace = os.path.join(ctx.work, 'hostile-%s.trace' % profile)
        if os.path.exists(trace):
            os.unlink(trace)
        devs = hcall_devices()
        fresh(devs, ctx)
        t0 = time.time()
        try:
            run = run_firmware(ctx, 'hostile', 'hostile-' + profile, ctx.machine(True, profile, trace),
                               devs, devs, [('SEED', ctx.seed), ('CALLS', ctx.hostile_calls)], timeout=900)
        except vm.QemuError as e:
            ctx.fail(name, 'QEMU did not survive: %s' % e)
            continue
        calls, fingerprint, successes = run.extra['user'][:3]
        probs = []
        if not run.extra['alive']:
            probs.append('QEMU was not running after the done marker')
        if calls < ctx.hostile_calls:
            probs.append('%d calls made, expected %d' % (calls, ctx.hostile_calls))
        ctx.verdict(name, '%d random SCM hcalls (seed 0x%x, %d succeeded) in %.0f s, QEMU alive'
                    % (calls, ctx.seed, successes, time.time() - t0), probs)
        if not os.path.exists(trace):
            ctx.fail(name + ' replay', 'no papr-scm-trace file written')
            continue
        with open(trace) as f:
            traced = sum(1 for l in f if l.startswith('call '))
        ok, probs, summary = replay(ctx, trace)
        probs = probs + trace_context(trace, probs)
        if traced < calls:
            probs = ['the trace holds %d calls of %d' % (traced, calls)] + (probs or [])
            ok = False
        ctx.verdict(name + ' replay', 'papr-scm replay of the papr-scm-trace: %s'
                    % (summary.split(': ', 1)[-1] or 'no summary'), [] if ok else probs or ['replay failed'])


# -- pmem-insns ---------------------------------------------------------------------
INSNS = ['dcbfps', 'dcbstps', 'phwsync', 'plwsync']


def run_pmem(ctx, side, machine):
    r = run_firmware(ctx, 'pmem-insns', 'pmem-insns-' + side, machine, [], [], cpu='power10', timeout=60)
    faults = r.extra['user'][0]
    return [INSNS[i] for i in range(4) if faults >> i & 1], r.extra['user']


def t_pmem_insns(ctx):
    name = 'pmem-insns'
    try:
        faults, user = run_pmem(ctx, 'off', ctx.machine(False))
    except vm.QemuError as e:
        ctx.fail(name, 'did not run: %s' % e)
        return
    if not ctx.patched:
        # The "before": QEMU decodes dcbf with invalid mask 0x03C00001
        # [target/ppc/translate.c], a program check (SRR1 bit 44, illegal
        # instruction) on POWER10 too; 7.2 also refuses sync with L=4, 5.
        # A binary of the series built without papr-scm has the TCG fix
        # and runs them: also fine, said so.
        if faults:
            ctx.ok(name + ' (no papr-scm)', 'program check on %s, as stock QEMU does (the "before"); the '
                   'firmware stepped over them to its marker' % ', '.join(faults))
        else:
            ctx.ok(name + ' (no papr-scm)', 'all four run to the marker: this QEMU has the TCG fix '
                   '(a patched build without papr-scm)')
        ctx.skip(name, 'papr-scm=on: this QEMU has no papr-scm (%s)' % ctx.why_not)
        return
    line = 'with papr-scm=off: %s' % ('program check on ' + ', '.join(faults) if faults else 'all four run')
    try:
        faults_on, _ = run_pmem(ctx, 'on', ctx.machine(True))
    except vm.QemuError as e:
        ctx.fail(name, 'did not run: %s' % e)
        return
    ctx.verdict(name, 'dcbfps, dcbstps, phwsync, plwsync run to the marker with papr-scm=on (%s)' % line,
                ['program check on %s' % ', '.join(faults_on)] if faults_on else [])


# -- device-del ------------------------------------------------------------------------
def memory_devices(v):
    return [d.get('data', {}).get('id') for d in v.qmp('query-memory-devices')]


def t_device_del(ctx):
    """Hot-plug slot 1 (as compare/rtas-hotplug), then device_del it while
    the firmware waits for the unplug event; the firmware releases the
    connector as Linux's dlpar_release_drc does. Stock QEMU refuses the
    request [spapr.c, spapr_memory_unplug_request]: that is the "before"."""
    name = 'device-del'
    devs = rtas_devices()
    fresh(devs, ctx)
    machine = ctx.machine(ctx.patched)
    try:
        tokens = rtas_tokens(ctx, machine, devs[:1], 'device-del')
        names = {tokens[s]: n for n, s in RTAS_SERVICES.items()}
        binf, blob = assemble(ctx, 'rtas-hotplug', os.path.join(ctx.work, 'device-del'),
                              sorted(tokens.items()) + [('WAIT_UNPLUG', 1)])
        v = vm.Vm(ctx.qemu, ctx.work, 'device-del', binf, machine=machine, devices=devs[:1],
                  extra=['-object', devs[1].backend(ctx.work)])
    except vm.QemuError as e:
        ctx.fail(name, 'did not start: %s' % e)
        return
    probs, refused = [], None
    try:
        v.wait_stage(1, 60)
        v.qmp('device_add', **devs[1].device_qmp())
        v.wait_stage(2, 60)
        before = memory_devices(v)
        if 'nv1' not in before:
            probs.append('nv1 was not plugged: %s' % before)
        try:
            v.qmp('device_del', id='nv1')
        except vm.QemuError as e:
            refused = str(e)
        if not ctx.patched:
            time.sleep(1)
            after = memory_devices(v)
            ok = refused and 'not supported' in refused and 'nv1' in after and v.ctl()['stage'] == 2
            ctx.verdict(name + ' (no papr-scm)', 'device_del refused ("%s"), nv1 stays, no event reaches the '
                        'firmware' % refused, [] if ok else ['device_del: %s, devices after: %s' % (refused, after)])
            ctx.skip(name, 'papr-scm=on: this QEMU has no papr-scm (%s)' % ctx.why_not)
            return
        if refused:
            probs.append('device_del refused: %s' % refused)
        c = v.wait_done(60)
        deleted = v.wait_event('DEVICE_DELETED', 30)
        after = memory_devices(v)
        raw = v.read(records.RECORDS, c['count'] * records.R_SIZE)
        bufs = v.read(records.BUFFERS, c['bufend'] - records.BUFFERS)
        recs = records.load(blob, raw, bufs, c['count'], names)
        probs += event_problems(Run([r for r in recs if 'unplug' in r.desc], c, {}), 2)
        probs += expect_problems(Run(recs, c, {}))
        if deleted is None:
            probs.append('no DEVICE_DELETED event')
        if 'nv1' in after:
            probs.append('query-memory-devices still lists nv1: %s' % after)
        else:
            # The unplug finished: slot 1 and the memdev are free again.
            try:
                v.qmp('device_add', **devs[1].device_qmp())
                if 'nv1' not in memory_devices(v):
                    probs.append('nv1 plugged again is not listed')
            except vm.QemuError as e:
                probs.append('device_add after the unplug: %s' % e)
    except vm.QemuError as e:
        probs.append(str(e))
    finally:
        v.quit()
    ctx.verdict(name, 'device_del of a hot-plugged nvdimm with papr-scm=on: the REMOVE event, the firmware '
                'releases the connector, DEVICE_DELETED, gone from query-memory-devices, and the slot and '
                'memdev plug again', probs)


TESTS = {'compare': t_compare, 'papr': t_papr, 'hostile': t_hostile,
         'pmem-insns': t_pmem_insns, 'device-del': t_device_del}


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--qemu', required=True)
    p.add_argument('--tag', required=True)
    p.add_argument('--work', required=True)
    p.add_argument('--replay')
    p.add_argument('--seed', type=lambda x: int(x, 0), default=0x5eed5eed5eed)
    p.add_argument('--hostile-calls', type=int, default=100000)
    p.add_argument('tests', nargs='*')
    a = p.parse_args()
    ctx = Ctx(a)
    for t in a.tests or list(TESTS):
        try:
            TESTS[t](ctx)
        except vm.QemuError as e:
            ctx.fail(t, str(e))
        except Exception as e:  # a bug here is a failed check, not a silent pass
            ctx.fail(t, 'the check crashed: %r' % e, traceback.format_exc().splitlines())


if __name__ == '__main__':
    main()
