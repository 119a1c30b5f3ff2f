#!/usr/bin/env python3
# Copyright 2026 The papr-scm Authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Instructions per SCM hcall inside QEMU, counted by callgrind from
`spapr_hypercall`'s entry to its return, with QEMU's handlers
(papr-scm=off) and with papr-scm's (papr-scm=on, both profiles).

usage: cost.py QEMU [--config off|on-papr|on-qemu ...] [--devices 1 32]
               [--work DIR] [--json FILE] [--check FILE] [--record FILE]
               [--profile-dir DIR] [--no-valgrind]

fw/hcall-cost.S issues each call N times in a window; a no-op hcall
(H_PUT_TERM_CHAR of no characters) closes each window, and callgrind dumps
before and after it (--dump-before/--dump-after=h_put_term_char), with
--toggle-collect=spapr_hypercall counting only inside spapr_hypercall. A
window's count is its dump's total less the mean of the empty windows
(the closing hcalls' own spapr_hypercall outside h_put_term_char), divided
by the calls in it. Deterministic: the same binary gives the same counts.

--check FILE compares papr-scm's side (the on-* configurations) with the
counts recorded in FILE (qemu/bench/counts.txt) and fails on a rise above
5 %; --record FILE rewrites it. Exit 0 ok, 1 failure, 77 skipped.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FW = os.path.join(HERE, 'fw')
TESTFW = os.path.join(HERE, '..', '..', 'tests', 'qemu', 'fw')   # papr.inc

LABEL = 128 << 10
BLOCK = 256 << 20
N, PAIRS, FLUSHES = 200, 50, 10
H_FUNCTION, H_LONG_BUSY = -2, 9901
CAPS = 'cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off'

CONFIGS = {
    'off': 'papr-scm=off',
    'on-papr': 'papr-scm=on,papr-scm-profile=papr',
    'on-qemu': 'papr-scm=on,papr-scm-profile=qemu',
}


def windows():
    """The firmware's windows in order: (name, calls, counted)."""
    w = [('start-up', 0, False)] + [('empty', 0, False)] * 4
    w += [('read_metadata_8', N, True), ('write_metadata_8', N, True),
          ('health', N, True), ('performance_stats_size', N, True),
          ('performance_stats_one', N, True)]
    w += [('bind_mem_whole', 1, True), ('unbind_all_drc', 1, True)] * PAIRS
    w += [('bind (set-up)', 1, False), ('query_block', N, True),
          ('query_logical', N, True), ('unbind (set-up)', 1, False)]
    w += [('flush_first', 1, True), ('flush polls', 0, False)] * FLUSHES
    return w


def expected(config, name):
    """The r3 a window's last call must answer."""
    stateless = {'query_block', 'query_logical', 'performance_stats_size',
                 'performance_stats_one'}
    if name in stateless and config != 'on-papr':
        return H_FUNCTION             # QEMU has no handler for these
    if name == 'flush_first':
        return H_LONG_BUSY
    if name == 'flush polls':
        return 0
    return 0


def assemble(work, drc):
    obj, elf, binf = (os.path.join(work, 'fw.' + e) for e in ('o', 'elf', 'bin'))
    argv = ['powerpc64-linux-gnu-as', '-I', FW, '-I', TESTFW, '-o', obj,
            '--defsym', 'DRC=%#x' % drc, '--defsym', 'N=%d' % N,
            '--defsym', 'PAIRS=%d' % PAIRS, '--defsym', 'FLUSHES=%d' % FLUSHES,
            os.path.join(FW, 'hcall-cost.S')]
    for cmd in (argv, ['powerpc64-linux-gnu-ld', '-T', os.path.join(FW, 'fw.ld'), '-o', elf, obj],
                ['powerpc64-linux-gnu-objcopy', '-O', 'binary', elf, binf]):
        subprocess.run(cmd, check=True)
    return binf


def qemu_argv(qemu, work, config, devices, firmware):
    """The machine: `devices` NVDIMMs of 256 MiB + a 128 KiB label; the last
    one, which every call names, an spapr-nvdimm (H_SCM_FLUSH needs one)."""
    argv = [qemu, '-machine', 'pseries,nvdimm=on,%s,%s' % (CAPS, CONFIGS[config]),
            '-m', '2G,slots=%d,maxmem=%dG' % (max(devices, 1), 2 + devices),
            '-bios', firmware, '-nodefaults', '-display', 'none', '-serial', 'none',
            '-chardev', 'file,id=con,path=%s' % os.path.join(work, 'console.txt'),
            '-device', 'spapr-vty,chardev=con,reg=0x71000001']
    for i in range(devices):
        img = os.path.join(work, 'nv%d.img' % i)
        with open(img, 'wb') as f:
            f.truncate(BLOCK + LABEL)
        kind = 'spapr-nvdimm' if i == devices - 1 else 'nvdimm'
        argv += ['-object', 'memory-backend-file,id=m%d,mem-path=%s,size=%d,share=on'
                 % (i, img, BLOCK + LABEL),
                 '-device', '%s,id=nv%d,memdev=m%d,slot=%d,label-size=%d,'
                 'uuid=%08x-3333-4444-8555-666666666666' % (kind, i, i, i, LABEL, i + 1)]
    return argv


def dump_total(path):
    with open(path) as f:
        for line in f:
            m = re.match(r'(?:totals|summary):\s+(\d+)', line)
            if m:
                return int(m.group(1))
    return 0


def run(qemu, work, config, devices, use_valgrind, timeout):
    """Runs one configuration; returns ({window name: instructions per
    call}, {window name: (the dump of its first window, calls in it)},
    problems)."""
    os.makedirs(work, exist_ok=True)
    drc = 0x90000000 + devices - 1
    fw = assemble(work, drc)
    argv = qemu_argv(qemu, work, config, devices, fw)
    out = os.path.join(work, 'callgrind.out')
    if use_valgrind:
        argv = ['valgrind', '--tool=callgrind', '--toggle-collect=spapr_hypercall',
                '--dump-before=h_put_term_char', '--dump-after=h_put_term_char',
                '--dump-instr=no', '--compress-strings=no', '--compress-pos=no',
                '--callgrind-out-file=' + out] + argv
    with open(os.path.join(work, 'qemu.log'), 'w') as log:
        try:
            p = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            return {}, None, ['QEMU did not power off within %d s (see %s)' % (timeout, log.name)]
    probs = []
    if rc != 0:
        probs.append('QEMU exited with %d (see %s)' % (rc, os.path.join(work, 'qemu.log')))
    with open(os.path.join(work, 'console.txt')) as f:
        lines = [l.split() for l in f.read().splitlines() if l.strip()]
    wins = windows()
    if any(l == ['TRAP'] for l in lines):
        probs.append('the firmware took an unexpected interrupt')
    if len(lines) != len(wins):
        probs.append('%d result lines, %d windows' % (len(lines), len(wins)))
        return {}, None, probs
    for (name, _, _), (r3, _r4) in zip(wins, lines):
        v = int(r3, 16)
        v = v - (1 << 64) if v >> 63 else v
        want = expected(config, name)
        if name not in ('start-up', 'empty') and v != want:
            probs.append('%s answered %d, expected %d' % (name, v, want))
    if not use_valgrind:
        return {}, None, probs
    # Dumps: out.1, out.2, ... (before and after each closing hcall), then
    # out itself at exit. Window k is dump 2k + 1.
    dumps = sorted(glob.glob(out + '.*'), key=lambda p: int(p.rsplit('.', 1)[1]))
    if len(dumps) < 2 * len(wins):
        probs.append('%d callgrind dumps for %d windows' % (len(dumps), len(wins)))
        return {}, None, probs
    totals = [dump_total(dumps[2 * k]) for k in range(len(wins))]
    empty = [t for (name, _, _), t in zip(wins, totals) if name == 'empty']
    if len(set(empty)) != 1:
        probs.append('the empty windows differ: %s' % empty)
    base = sum(empty) / len(empty)
    sums, first = {}, {}
    for k, ((name, calls, counted), t) in enumerate(zip(wins, totals)):
        if not counted:
            continue
        s = sums.setdefault(name, [0, 0])
        s[0] += t - base
        s[1] += calls
        first.setdefault(name, (dumps[2 * k], calls))
    counts = {name: round(s[0] / s[1], 1) for name, s in sums.items()}
    counts['closing hcall (outside h_put_term_char)'] = base
    return counts, first, probs


# The callers of spapr_hypercall: in every window's profile, never its cost.
CALLERS = {'PROGRAM TOTALS', 'clone', 'start_thread', 'cpu_exec', 'cpu_exec_loop',
           'cpu_exec_setjmp', 'mttcg_cpu_thread_fn', 'tcg_cpu_exec', 'emulate_spapr_hypercall',
           'powerpc_excp', 'ppc_cpu_do_interrupt', 'qemu_thread_start'}


def profile(dump, calls, limit=30):
    """callgrind_annotate's inclusive per-function counts, per call, of the
    functions under spapr_hypercall (a function that appears twice, inlined
    into two files, is summed)."""
    if not shutil.which('callgrind_annotate'):
        return []
    p = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--auto=no', '--threshold=100', dump],
                       capture_output=True, text=True)
    rows = []
    for line in p.stdout.splitlines():
        m = re.match(r'\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)', line)
        if m:
            n = int(m.group(1).replace(',', ''))
            fn = m.group(2).split(':', 1)[-1] if ':' in m.group(2) else m.group(2)
            fn = re.sub(r' \[.*\]$', '', fn).strip()
            if fn in CALLERS:
                continue
            rows.append((round(n / calls, 1), fn))
    return rows[:limit]


def read_counts(path):
    counts = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                w = line.split()
                if w and not line.startswith('#') and len(w) == 2:
                    counts[w[0]] = float(w[1])
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('qemu')
    ap.add_argument('--config', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument('--devices', nargs='+', type=int, default=[1, 32])
    ap.add_argument('--work')
    ap.add_argument('--json')
    ap.add_argument('--check')
    ap.add_argument('--record')
    ap.add_argument('--profile-dir')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=900)
    ap.add_argument('--no-valgrind', action='store_true')
    a = ap.parse_args()

    for tool in ('powerpc64-linux-gnu-as', 'powerpc64-linux-gnu-ld', 'powerpc64-linux-gnu-objcopy'):
        if not shutil.which(tool):
            print('SKIP qemu-bench: %s is missing (binutils-powerpc64-linux-gnu)' % tool)
            return 77
    if not a.no_valgrind and not shutil.which('valgrind'):
        print('SKIP qemu-bench: valgrind is not installed; no instruction counts')
        return 77
    if not (os.path.isfile(a.qemu) and os.access(a.qemu, os.X_OK)):
        print('SKIP qemu-bench: no QEMU binary at %s' % a.qemu)
        return 77
    work = a.work or tempfile.mkdtemp(prefix='papr-scm-qemu-bench.')
    try:
        return measure(a, work)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


def measure(a, work):
    """Runs every configuration in `work` and reports; the exit status."""
    jobs = [(c, d) for d in a.devices for c in a.config]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        futs = {(c, d): ex.submit(run, a.qemu, os.path.join(work, '%s-%d' % (c, d)), c, d,
                                  not a.no_valgrind, a.timeout)
                for c, d in jobs}
    results, failed = {}, False
    for (c, d), fut in futs.items():
        counts, first, probs = fut.result()
        for p in probs:
            print('FAIL %s, %d NVDIMM(s): %s' % (c, d, p))
            failed = True
        results['%s/%d' % (c, d)] = counts
        if a.profile_dir and first:
            os.makedirs(a.profile_dir, exist_ok=True)
            for name, (dump, calls) in first.items():
                with open(os.path.join(a.profile_dir, '%s-%s-%d.txt' % (name, c, d)), 'w') as f:
                    for n, fn in profile(dump, calls):
                        f.write('%10.1f  %s\n' % (n, fn))
    if a.no_valgrind:
        print('%s: every window answered as expected' % ('FAIL' if failed else 'ok'))
        return 1 if failed else 0
    names = sorted({n for r in results.values() for n in r})
    cols = ['%s/%d' % (c, d) for d in a.devices for c in a.config]
    print('%-42s' % 'instructions per call' + ''.join('%12s' % c for c in cols))
    for n in names:
        print('%-42s' % n + ''.join('%12s' % results[c].get(n, '-') for c in cols))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(results, f, indent=1, sort_keys=True)
    ours = {'%s/%s' % (col, n): v for col, r in results.items() if col.startswith('on-')
            for n, v in r.items() if not n.startswith('closing')}
    if a.check:
        old = read_counts(a.check)
        for k, v in sorted(ours.items()):
            w = old.get(k)
            if w is None:
                print('new  %-50s %8.1f' % (k, v))
            elif v > w * 1.05:
                print('FAIL %-50s %8.1f, recorded %.1f: a rise above 5 %%' % (k, v, w))
                failed = True
    if a.record:
        with open(a.record, 'w') as f:
            f.write('# Instructions per SCM hcall inside QEMU 10.0, papr-scm\'s side\n'
                    '# (spapr_hypercall entry to return; qemu/bench/cost.py --record).\n'
                    '# .ci/run fails on a rise above 5 %.\n')
            for k, v in sorted(ours.items()):
                f.write('%s %.1f\n' % (k, v))
    print('qemu-bench: %s' % ('FAIL' if failed else 'ok'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
