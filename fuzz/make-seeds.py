#!/usr/bin/env python3
# Copyright 2026 The papr-scm Authors.
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Writes the fuzz seeds from the repository's own material:
hcalls/*.txt (transcripts, and their call lines as hcall / hcall_sequence
inputs), fdt/*.cfg and fdt/invalid/*.cfg (configurations), fdt/*.dtb
(QEMU's blobs), a few gdb-stub exchanges and a minimal vmlinux.

usage: fuzz/make-seeds.py   (from anywhere; writes fuzz/seeds/<target>/)
"""
import glob
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, 'seeds')
# The order of papr_scm::hcall::SCM_HCALLS.
OPS = ['H_SCM_READ_METADATA', 'H_SCM_WRITE_METADATA', 'H_SCM_BIND_MEM', 'H_SCM_UNBIND_MEM',
       'H_SCM_QUERY_BLOCK_MEM_BINDING', 'H_SCM_QUERY_LOGICAL_MEM_BINDING', 'H_SCM_UNBIND_ALL',
       'H_SCM_HEALTH', 'H_SCM_PERFORMANCE_STATS', 'H_SCM_FLUSH']


def out(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def num(s):
    return int(s, 0) & (2**64 - 1)


def calls(path):
    """(profile bit, [(opcode index, [regs])]) of a transcript."""
    qemu, seq = 0, []
    for line in open(path):
        w = line.split('#')[0].split()
        if not w:
            continue
        if w[0] == 'machine' and 'profile=qemu' in w:
            qemu = 1
        if w[0] == 'call' and w[1] in OPS:
            args = [num(a) for a in w[2:w.index('->') if '->' in w else len(w)]]
            seq.append((OPS.index(w[1]), args))
    return qemu, seq


def hcall_reg(v):
    # The hcall target maps v % 8 == 0 to a DRC and == 2 to a label offset.
    if 0x9000_0000 <= v < 0x9000_0005:
        return (v - 0x9000_0000) << 3
    if v < 0x2_0010:
        return v << 3 | 2
    return v if v % 8 >= 4 else v | 4


for path in sorted(glob.glob(os.path.join(ROOT, 'hcalls', '*.txt'))):
    name = os.path.basename(path)
    out('transcript', name, open(path, 'rb').read())
    qemu, seq = calls(path)
    # hcall_sequence: profile byte (odd: qemu), then per call: kind 0, the
    # opcode, five registers as selector 7 + 8 big-endian bytes.
    data = bytes([qemu])
    for op, args in seq:
        data += bytes([0, op])
        for v in (args + [0] * 5)[:5]:
            data += bytes([7]) + struct.pack('>Q', v)
    out('hcall_sequence', name[:-4], data)
    for i, (op, args) in enumerate(seq[:16]):
        regs = b''.join(struct.pack('<Q', hcall_reg(v)) for v in args)
        out('hcall', f'{name[:-4]}-{i}', bytes([1 - qemu, op]) + regs)

for path in sorted(glob.glob(os.path.join(ROOT, 'fdt', '*.cfg')) + glob.glob(os.path.join(ROOT, 'fdt', 'invalid', '*.cfg'))):
    out('config', os.path.basename(path), open(path, 'rb').read())
for path in sorted(glob.glob(os.path.join(ROOT, 'fdt', '*.dtb'))):
    out('fdt', os.path.basename(path), open(path, 'rb').read())


def packet(body):
    return b'$' + body + b'#%02x' % (sum(body) & 0xff)


out('bridge_rsp', 'ok', b'\x03+' + packet(b'OK'))
out('bridge_rsp', 'stop', b'\x00' + packet(b'T05thread:01;'))
out('bridge_rsp', 'regs', b'\x01+' + packet(b'00' * 256 + b'0*}' + b'11' * 8))
out('bridge_rsp', 'mem', b'\x02+' + packet(b'ab' * 64))
out('bridge_rsp', 'nak', b'\x00+$a#00' + packet(b'a}\x5db'))


def tiny_elf():
    """The ELF of the vmlinux unit test: a papr_scm.c function with a bl to
    plpar_hcall+8 and one to plpar_hcall_norets."""
    def bl(frm, to):
        return 0x48000001 | ((to - frm) & 0x03FFFFFC)
    text = b''.join(struct.pack('<I', w) for w in [0x60000000, bl(0x1004, 0x2008), bl(0x1008, 0x2100), bl(0x100c, 0x0f00)])
    strtab = b'\0papr_scm.c\0drc_pmem_bind\0other.c\0plpar_hcall\0plpar_hcall_norets\0'

    def sym(name, info, shndx, value, size):
        off = strtab.index(name.encode() + b'\0') if name else 0
        return struct.pack('<IBBHQQ', off, info, 0, shndx, value, size)
    symtab = sym('', 0, 0, 0, 0) + sym('papr_scm.c', 4, 0xfff1, 0, 0) + sym('drc_pmem_bind', 2, 1, 0x1000, 16) \
        + sym('other.c', 4, 0xfff1, 0, 0) + sym('plpar_hcall', 0x12, 1, 0x2000, 8) + sym('plpar_hcall_norets', 0x12, 1, 0x2100, 8)
    text_off, sym_off = 64, 64 + len(text)
    str_off = sym_off + len(symtab)
    sh_off = str_off + len(strtab)
    hdr = bytearray(64)
    hdr[:7] = b'\x7fELF\x02\x01\x01'
    struct.pack_into('<HHI', hdr, 0x10, 2, 21, 1)
    struct.pack_into('<Q', hdr, 0x28, sh_off)
    struct.pack_into('<H', hdr, 0x34, 64)
    struct.pack_into('<HHH', hdr, 0x3A, 64, 4, 3)
    shdrs = b''
    for ty, flags, addr, off, size, link, ent in [(0, 0, 0, 0, 0, 0, 0), (1, 6, 0x1000, text_off, len(text), 0, 0),
                                                   (2, 0, 0, sym_off, len(symtab), 3, 24), (3, 0, 0, str_off, len(strtab), 0, 0)]:
        shdrs += struct.pack('<IIQQQQIIQQ', 0, ty, flags, addr, off, size, link, 0, 0, ent)
    return bytes(hdr) + text + symtab + strtab + shdrs


out('bridge_elf', 'tiny', tiny_elf())
print('seeds written to', SEEDS)
