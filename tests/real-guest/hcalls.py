#!/usr/bin/env python3
"""The SCM hcalls of one boot, one per line: `OPCODE ARG...` in hex.

  hcalls.py int FILE     from QEMU's `-d int` log (QEMU answering)
  hcalls.py trace FILE   from a papr-scm transcript (the bridge answering)

A flush in progress is polled with its continue-token until it completes
(Linux papr_scm_pmem_flush sleeps on H_LONG_BUSY and calls again). How many
polls QEMU needs depends on how long the host's fdatasync takes in QEMU's
worker thread (spapr_nvdimm.c flush_worker_cb), so a run of identical polls
is printed once: the comparison is of what the guest asks, not of host speed.
"""
import re
import sys

NARGS = {0x3E4: 3, 0x3E8: 4, 0x3EC: 5, 0x3F0: 4, 0x3F4: 2, 0x3F8: 1, 0x3FC: 3, 0x400: 1,
         0x418: 3, 0x44C: 2}
OPS = {'H_SCM_READ_METADATA': 0x3E4, 'H_SCM_WRITE_METADATA': 0x3E8, 'H_SCM_BIND_MEM': 0x3EC,
       'H_SCM_UNBIND_MEM': 0x3F0, 'H_SCM_QUERY_BLOCK_MEM_BINDING': 0x3F4,
       'H_SCM_QUERY_LOGICAL_MEM_BINDING': 0x3F8, 'H_SCM_UNBIND_ALL': 0x3FC,
       'H_SCM_HEALTH': 0x400, 'H_SCM_PERFORMANCE_STATS': 0x418, 'H_SCM_FLUSH': 0x44C}
H_SCM_FLUSH = 0x44C


def from_int(path):
    for line in open(path, errors='replace'):
        if not line.startswith('hypercall'):
            continue
        r = dict(re.findall(r'(r\d+|nip)=([0-9a-f]+)', line))
        op = int(r['r3'], 16)
        if op in NARGS:
            yield op, [int(r['r%d' % i], 16) for i in range(4, 4 + NARGS[op])]


def from_trace(path):
    for line in open(path, errors='replace'):
        w = line.split('->')[0].split()
        if w and w[0] == 'call' and w[1] in OPS:
            # A trace written inside QEMU records more registers than the
            # call's inputs (H_SCM_HEALTH's r5, r6): the inputs are NARGS.
            op = OPS[w[1]]
            yield op, [(1 << 64) - 1 if a == '-1' else int(a, 0) for a in w[2:2 + NARGS[op]]]


def main():
    calls = {'int': from_int, 'trace': from_trace}[sys.argv[1]](sys.argv[2])
    last = None
    for op, args in calls:
        text = '%#x %s' % (op, ' '.join('%#x' % a for a in args))
        polling = op == H_SCM_FLUSH and len(args) == 2 and args[1] != 0
        if polling and text == last:
            continue
        print(text)
        last = text


if __name__ == '__main__':
    main()
