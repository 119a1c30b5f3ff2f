#!/usr/bin/env python3
# Copyright 2026 The papr-scm Authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Maps a papr-scm configuration (transcript syntax: machine and nvdimm lines)
to qemu-system-ppc64 arguments, one per line, creating sparse backing files.

usage: cfg2qemu.py CFG WORKDIR [MACHINE-OPTIONS]
  WORKDIR receives nv<i>.img for the i-th nvdimm line (sparse; one of the
  right size already there is kept, with its labels and data).
  MACHINE-OPTIONS are appended to -machine pseries,nvdimm=on (e.g. dumpdtb=F).
  A `plug` line (a device the guest gets at run time) gets its image too and
  WORKDIR/plug<j>.hmp, the monitor commands that add it; a `plug` line for a
  slot an earlier one already used is the same device plugged again (QEMU
  keeps it: it cannot unplug an NVDIMM) and adds nothing. WORKDIR/backing.list
  names the image of every nvdimm and plug line, in order.
"""
import os
import sys

cfg, work = sys.argv[1], sys.argv[2]
extra = sys.argv[3] if len(sys.argv) > 3 else ''
U = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}


def size(s):
    t = 0
    for p in s.split('+'):
        t += int(p[:-1], 0) * U[p[-1]] if p[-1] in U else int(p, 0)
    return t


mach, devs, plugs = None, [], []
for line in open(cfg):
    line = line.split('#')[0].split()
    if not line:
        continue
    kv = dict(w.split('=', 1) for w in line[1:] if '=' in w)
    if line[0] == 'machine':
        mach = kv
    elif line[0] == 'nvdimm':
        devs.append(kv)
    elif line[0] == 'plug':
        plugs.append(kv)
ram = size(mach['ram'])
maxmem = size(mach.get('maxmem', mach['ram']))
nodes = int(mach.get('numa-nodes', '1'))
machine = 'pseries,nvdimm=on' + (',' + extra if extra else '')
# -m takes MiB without a suffix; sizes here are 256 MiB multiples.
args = ['-machine', machine, '-cpu', 'POWER9',
        '-m', f'{ram >> 20}M,slots={mach.get("slots", "0")},maxmem={maxmem >> 20}M']
if nodes > 1:
    args += ['-smp', str(nodes)]
    for n in range(nodes):
        args += ['-object', f'memory-backend-ram,id=ram{n},size={ram // nodes}',
                 '-numa', f'node,nodeid={n},cpus={n},memdev=ram{n}']


def device(i, d):
    """The -object and -device values of the i-th device."""
    sz = size(d['size'])
    img = f'{work}/nv{i}.img'
    # An image of the right size is kept: a later boot on the same backing
    # file finds the labels and data of the earlier one.
    if not os.path.exists(img) or os.path.getsize(img) != sz:
        with open(img, 'wb') as f:
            f.truncate(sz)
    be = f'memory-backend-file,id=mem{i},mem-path={img},size={sz},share=on'
    if d.get('pmem') == 'on':
        be += ',pmem=on'
    dev = f'{d.get("type", "nvdimm")},id=nv{i},memdev=mem{i}'
    if 'label-size' in d:
        dev += f',label-size={size(d["label-size"])}'
    for k in ('uuid', 'slot', 'node', 'addr', 'unarmed', 'pmem-override'):
        if k in d:
            dev += f',{k}={d[k]}'
    return img, be, dev


images = []
for i, d in enumerate(devs):
    img, be, dev = device(i, d)
    images.append(img)
    args += ['-object', be, '-device', dev]
by_slot = {}
for j, d in enumerate(plugs):
    if 'slot' in d and d['slot'] in by_slot:
        images.append(by_slot[d['slot']])
        continue
    img, be, dev = device(len(devs) + j, d)
    images.append(img)
    by_slot[d.get('slot')] = img
    with open(f'{work}/plug{j}.hmp', 'w') as f:
        f.write(f'object_add {be}\ndevice_add {dev}\n')
if plugs:
    with open(f'{work}/backing.list', 'w') as f:
        f.write(''.join(i + '\n' for i in images))
print('\n'.join(args))
