#!/usr/bin/env bash
# Regenerates the golden device trees from real QEMU.
#
# For each fdt/NAME.cfg (transcript syntax: machine and nvdimm lines) this
# writes NAME.cmd (the QEMU command it maps to), NAME.dtb (QEMU's
# -machine dumpdtb output) and NAME.dts (dtc's decompilation). For each
# fdt/invalid/NAME.cfg it records QEMU's refusal in NAME.qemu-error.
#
# Needs: apt-get install -y qemu-system-ppc device-tree-compiler python3.
# Backing files are sparse (truncate), in a temporary directory.
# Run by hand; CI uses the committed files.
set -euo pipefail
cd "$(dirname "$0")"
command -v qemu-system-ppc64 >/dev/null || { echo "needs qemu-system-ppc64 (apt-get install qemu-system-ppc)"; exit 1; }
command -v dtc >/dev/null || { echo "needs dtc (apt-get install device-tree-compiler)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# cfg -> QEMU arguments, one per line (NUL-free, no spaces inside an argument).
to_qemu() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
cfg, work, dtb = sys.argv[1:]
U = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
def size(s):
    t = 0
    for p in s.split('+'):
        t += int(p[:-1], 0) * U[p[-1]] if p[-1] in U else int(p, 0)
    return t
args = []
mach, devs = None, []
for line in open(cfg):
    line = line.split('#')[0].split()
    if not line:
        continue
    kv = dict(w.split('=', 1) for w in line[1:])
    if line[0] == 'machine':
        mach = kv
    elif line[0] == 'nvdimm':
        devs.append(kv)
ram = size(mach['ram']); maxmem = size(mach.get('maxmem', mach['ram']))
nodes = int(mach.get('numa-nodes', '1'))
args += ['-machine', f'pseries,nvdimm=on,dumpdtb={dtb}', '-cpu', 'POWER9',
         '-m', f'{ram >> 20}M,slots={mach.get("slots", "0")},maxmem={maxmem >> 20}M',
         '-nographic', '-nodefaults']
if nodes > 1:
    args += ['-smp', str(nodes)]
    for n in range(nodes):
        args += ['-object', f'memory-backend-ram,id=ram{n},size={ram // nodes}',
                 '-numa', f'node,nodeid={n},cpus={n},memdev=ram{n}']
for i, d in enumerate(devs):
    sz = size(d['size'])
    img = f'{work}/nv{i}.img'
    open(img, 'wb').truncate(sz)
    be = f'memory-backend-file,id=mem{i},mem-path={img},size={sz},share=on'
    if d.get('pmem') == 'on':
        be += ',pmem=on'
    args += ['-object', be]
    dev = f'{d.get("type", "nvdimm")},id=nv{i},memdev=mem{i}'
    if 'label-size' in d:
        dev += f',label-size={size(d["label-size"])}'
    for k in ('uuid', 'slot', 'node', 'addr', 'unarmed', 'pmem-override'):
        if k in d:
            dev += f',{k}={d[k]}'
    args += ['-device', dev]
print('\n'.join(args))
PY
}

for cfg in *.cfg; do
  name=${cfg%.cfg}
  mapfile -t args < <(to_qemu "$cfg" "$work" "$work/$name.dtb")
  printf 'qemu-system-ppc64' > "$name.cmd"
  printf ' %s' "${args[@]}" | sed "s#$work/nv#nv#g; s#dumpdtb=$work/#dumpdtb=#" >> "$name.cmd"
  echo >> "$name.cmd"
  qemu-system-ppc64 "${args[@]}" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
  cp "$work/$name.dtb" "$name.dtb"
  dtc -q -I dtb -O dts "$name.dtb" > "$name.dts"
  echo "$name: $(wc -c < "$name.dtb") bytes"
done

for cfg in invalid/*.cfg; do
  name=${cfg%.cfg}
  mapfile -t args < <(to_qemu "$cfg" "$work" "$work/x.dtb")
  if qemu-system-ppc64 "${args[@]}" >"$work/log" 2>&1; then
    echo "$cfg: QEMU accepted it"; exit 1
  fi
  grep -v 'warning: TCG' "$work/log" | sed "s#$work/##g" > "$name.qemu-error"
  echo "$name: $(cat "$name.qemu-error")"
done
