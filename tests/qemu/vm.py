"""One QEMU pseries machine running a test firmware, driven through QMP.

QEMU runs with `-display none -nodefaults`, its QMP monitor on a unix
socket in the work directory, NVDIMM backends as sparse files there too.
Guest memory is read with QMP `pmemsave` (the firmware runs in real mode,
so a guest-physical address is the address the firmware used).
"""
import json
import os
import socket
import struct
import subprocess
import time

CTL = 0x10000
CTL_DONE, CTL_COUNT, CTL_STAGE, CTL_TRAP, CTL_SRR0, CTL_SRR1, CTL_BUFEND = (
    0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30)
CTL_FDT = 0x50
CTL_USER = 0x80
DONE_MAGIC = 0x600DF00D

# Sizes of the test devices: data (a multiple of QEMU's 256 MiB SCM block,
# spapr_nvdimm_validate) plus a 128 KiB label (MIN_NAMESPACE_LABEL_SIZE).
LABEL = 128 << 10
BLOCK = 256 << 20


class QemuError(Exception):
    """QEMU exited, refused a command or the firmware timed out."""


class Nvdimm:
    """An NVDIMM with its memory-backend-file."""

    def __init__(self, name, slot, blocks, kind='nvdimm', uuid=None, extra=''):
        self.name, self.slot, self.blocks, self.kind = name, slot, blocks, kind
        self.uuid = uuid or '%08x-3333-4444-8555-666666666666' % (0x11111111 * (slot + 1))
        self.extra = extra
        self.size = blocks * BLOCK + LABEL

    def backend(self, workdir):
        path = os.path.join(workdir, self.name + '.img')
        if not os.path.exists(path):
            with open(path, 'wb') as f:
                f.truncate(self.size)
        return ('memory-backend-file,id=mem-%s,mem-path=%s,size=%d,share=on'
                % (self.name, path, self.size))

    def device(self):
        return ('%s,id=%s,memdev=mem-%s,slot=%d,label-size=%d,uuid=%s%s'
                % (self.kind, self.name, self.name, self.slot, LABEL, self.uuid,
                   ',' + self.extra if self.extra else ''))

    def device_qmp(self):
        """device_add's arguments for this device."""
        args = {'driver': self.kind, 'id': self.name, 'memdev': 'mem-' + self.name,
                'slot': self.slot, 'label-size': LABEL, 'uuid': self.uuid}
        for kv in filter(None, self.extra.split(',')):
            k, v = kv.split('=', 1)
            args[k] = {'on': True, 'off': False}.get(v, v)
        return args

    def label(self, workdir):
        """The label area: the backend's last LABEL bytes [hw/mem/nvdimm.c,
        nvdimm_prepare_memory_region]."""
        with open(os.path.join(workdir, self.name + '.img'), 'rb') as f:
            f.seek(self.size - LABEL)
            return f.read(LABEL)


# RAM 2 GiB and 4 slots: device memory starts at 2 GiB (ram rounded up to
# 1 GiB, SPAPR_DEVICE_MEM_ALIGN), as in the project's transcripts.
RAM, MAXMEM, SLOTS = '2G', '8G', 4
# TCG cannot give the spectre workarounds pseries asks for by default; say
# so instead of printing four warnings a boot.
CAPS = 'cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off'


class Vm:
    """A running QEMU. `machine` is appended to `pseries,nvdimm=on`."""

    def __init__(self, qemu, workdir, name, firmware, machine='', devices=(),
                 cpu=None, extra=()):
        self.workdir, self.name = workdir, name
        self.qmp_path = os.path.join(workdir, name + '.qmp')
        self.log_path = os.path.join(workdir, name + '.log')
        self.backends = {}
        for d in devices:
            self.backends[d.name] = d.backend(workdir)
        argv = [qemu, '-machine', 'pseries,nvdimm=on,%s%s' % (CAPS, ',' + machine if machine else ''),
                '-m', '%s,slots=%d,maxmem=%s' % (RAM, SLOTS, MAXMEM),
                '-bios', firmware, '-nodefaults', '-display', 'none',
                '-serial', 'null', '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path]
        if cpu:
            argv += ['-cpu', cpu]
        for d in devices:
            argv += ['-object', self.backends[d.name], '-device', d.device()]
        argv += list(extra)
        self.argv = argv
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.events = []
        self.sock = None
        self._buf = b''
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise QemuError('QEMU exited at start (%d): %s' % (self.proc.returncode, self.tail()))
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.qmp_path)
                self.sock = s
                break
            except OSError:
                if time.time() > deadline:
                    raise QemuError('no QMP socket after 30 s')
                time.sleep(0.05)
        self._recv()                      # the greeting
        self.qmp('qmp_capabilities')

    # -- QMP -----------------------------------------------------------------
    def _recv(self, timeout=60):
        deadline = time.time() + timeout
        while b'\n' not in self._buf:
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                chunk = None
            except OSError as e:
                raise QemuError('QMP: %s (%s)' % (e, self.exit_text()))
            if not chunk:
                raise QemuError('QMP closed or silent (%s)' % self.exit_text())
            self._buf += chunk
        line, self._buf = self._buf.split(b'\n', 1)
        return json.loads(line)

    def qmp(self, cmd, **args):
        """Runs a QMP command; returns its result or raises QemuError."""
        msg = {'execute': cmd}
        if args:
            msg['arguments'] = args
        try:
            self.sock.sendall(json.dumps(msg).encode() + b'\n')
        except OSError as e:
            raise QemuError('QMP %s: %s (%s)' % (cmd, e, self.exit_text()))
        while True:
            r = self._recv()
            if 'event' in r:
                self.events.append(r)
                continue
            if 'error' in r:
                raise QemuError('%s: %s' % (cmd, r['error'].get('desc')))
            return r.get('return')

    def hmp(self, line):
        return self.qmp('human-monitor-command', **{'command-line': line})

    def wait_event(self, name, timeout):
        deadline = time.time() + timeout
        while True:
            for e in self.events:
                if e['event'] == name:
                    self.events.remove(e)
                    return e
            if time.time() > deadline:
                return None
            try:
                r = self._recv(timeout=max(0.1, deadline - time.time()))
            except QemuError:
                if time.time() > deadline:
                    return None
                raise
            if 'event' in r:
                self.events.append(r)

    # -- guest memory --------------------------------------------------------
    def read(self, addr, size):
        path = os.path.join(self.workdir, '%s.mem' % self.name)
        self.qmp('pmemsave', val=addr, size=size, filename=path)
        with open(path, 'rb') as f:
            data = f.read()
        os.unlink(path)
        if len(data) != size:
            raise QemuError('pmemsave gave %d bytes of %d' % (len(data), size))
        return data

    def u64(self, addr):
        return struct.unpack('>Q', self.read(addr, 8))[0]

    def ctl(self):
        """The control block as a dict of its words."""
        w = struct.unpack('>8Q', self.read(CTL, 64))
        return dict(done=w[0], count=w[1], stage=w[2], trap=w[3], srr0=w[4], srr1=w[5], bufend=w[6])

    def wait(self, what, timeout, pred):
        """Polls the control block until pred(ctl) holds; raises with the
        reason on a trap, a QEMU exit or the timeout."""
        deadline = time.time() + timeout
        delay = 0.02
        while True:
            if self.proc.poll() is not None:
                raise QemuError('QEMU exited (%d) while waiting for %s: %s'
                                % (self.proc.returncode, what, self.tail()))
            c = self.ctl()
            if c['trap']:
                raise QemuError('the firmware took vector 0x%x at SRR0=0x%x SRR1=0x%x while waiting for %s'
                                % (c['trap'], c['srr0'], c['srr1'], what))
            if pred(c):
                return c
            if time.time() > deadline:
                raise QemuError('no %s after %d s (stage %d, %d records)' % (what, timeout, c['stage'], c['count']))
            time.sleep(delay)
            delay = min(0.2, delay * 2)

    def wait_done(self, timeout=60):
        return self.wait('done marker', timeout, lambda c: c['done'] == DONE_MAGIC)

    def wait_stage(self, n, timeout=60):
        return self.wait('stage %d' % n, timeout, lambda c: c['stage'] >= n)

    # -- the end -------------------------------------------------------------
    def alive(self):
        return self.proc.poll() is None

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.qmp('quit')
            except (QemuError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sock:
            self.sock.close()
        self.log.close()

    def exit_text(self):
        """How QEMU ended, if it did, and the end of its output."""
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return 'QEMU still running: ' + self.tail()
        return 'QEMU exited (%d): %s' % (self.proc.returncode, self.tail())

    def tail(self, n=6):
        self.log.flush()
        try:
            with open(self.log_path) as f:
                lines = [l.rstrip() for l in f.readlines()]
        except OSError:
            return ''
        return ' | '.join(lines[-n:])


def guest_tree(qemu, workdir, name, firmware, machine='', devices=()):
    """The device tree QEMU hands the firmware (its address is r3 at entry;
    fw/tree.S leaves it in the control block): the same on every QEMU
    version, where `-machine dumpdtb=` stopped working for pseries in 10.x
    (the tree is built at reset, after the dump)."""
    v = Vm(qemu, workdir, name, firmware, machine=machine, devices=devices)
    try:
        v.wait_done(30)
        addr = v.u64(CTL + CTL_FDT)
        magic, total = struct.unpack('>II', v.read(addr, 8))
        if magic != 0xd00dfeed or total > (1 << 20):
            raise QemuError('no device tree at 0x%x (magic 0x%x)' % (addr, magic))
        return v.read(addr, total)
    finally:
        v.quit()


def fdt_nodes(blob):
    """{'/path': {name: bytes}} of a flattened device tree (the few lines of
    the format this needs: FDT_BEGIN_NODE 1, END_NODE 2, PROP 3, NOP 4,
    END 9)."""
    magic, _total, off_struct, off_strings = struct.unpack('>4I', blob[:16])
    if magic != 0xd00dfeed:
        raise QemuError('not a flattened device tree')
    path, nodes, pos = [], {}, off_struct
    while True:
        tag = struct.unpack('>I', blob[pos:pos + 4])[0]
        pos += 4
        if tag == 1:
            end = blob.index(b'\0', pos)
            path.append(blob[pos:end].decode())
            nodes['/' + '/'.join(path[1:])] = {}
            pos = (end + 4) & ~3
        elif tag == 2:
            path.pop()
        elif tag == 3:
            length, nameoff = struct.unpack('>2I', blob[pos:pos + 8])
            pos += 8
            nend = blob.index(b'\0', off_strings + nameoff)
            name = blob[off_strings + nameoff:nend].decode()
            nodes['/' + '/'.join(path[1:])][name] = blob[pos:pos + length]
            pos = (pos + length + 3) & ~3
        elif tag == 4:
            continue
        elif tag == 9:
            return nodes
        else:
            raise QemuError('bad FDT tag %d' % tag)


def fdt_properties(blob, node_path):
    """{name: bytes} of one node."""
    return fdt_nodes(blob).get('/' + '/'.join(p for p in node_path.split('/') if p), {})


# Properties that differ from boot to boot: /chosen rng-seed is random
# [hw/ppc/spapr.c: spapr_dt_chosen writes fdt_rng_seed, which each reset
# fills with qemu_guest_getrandom_nofail].
VOLATILE_PROPS = {('/chosen', 'rng-seed')}


def fdt_diff(a, b, name_a, name_b):
    """Differences between two trees, one line per node or property."""
    na, nb = fdt_nodes(a), fdt_nodes(b)
    out = []
    for path in sorted(set(na) | set(nb)):
        if path not in nb or path not in na:
            out.append('%s only with %s' % (path, name_a if path in na else name_b))
            continue
        for prop in sorted(set(na[path]) | set(nb[path])):
            if (path, prop) in VOLATILE_PROPS:
                continue
            va, vb = na[path].get(prop), nb[path].get(prop)
            if va != vb:
                out.append('%s %s: %s %s, %s %s' % (path, prop, name_a, None if va is None else va.hex(),
                                                    name_b, None if vb is None else vb.hex()))
    return out
