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

to_qemu() { python3 cfg2qemu.py "$1" "$2" "dumpdtb=$3"; }
# -nographic -nodefaults: no console or monitor is needed to dump the tree.
dump_args=(-nographic -nodefaults)

for cfg in *.cfg; do
  name=${cfg%.cfg}
  mapfile -t args < <(to_qemu "$cfg" "$work" "$work/$name.dtb")
  printf 'qemu-system-ppc64' > "$name.cmd"
  printf ' %s' "${args[@]}" "${dump_args[@]}" | sed "s#$work/nv#nv#g; s#dumpdtb=$work/#dumpdtb=#" >> "$name.cmd"
  echo >> "$name.cmd"
  qemu-system-ppc64 "${args[@]}" "${dump_args[@]}" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
  cp "$work/$name.dtb" "$name.dtb"
  dtc -q -I dtb -O dts "$name.dtb" > "$name.dts"
  echo "$name: $(wc -c < "$name.dtb") bytes"
done

for cfg in invalid/*.cfg; do
  name=${cfg%.cfg}
  mapfile -t args < <(to_qemu "$cfg" "$work" "$work/x.dtb")
  if qemu-system-ppc64 "${args[@]}" "${dump_args[@]}" >"$work/log" 2>&1; then
    echo "$cfg: QEMU accepted it"; exit 1
  fi
  grep -v 'warning: TCG' "$work/log" | sed "s#$work/##g" > "$name.qemu-error"
  echo "$name: $(cat "$name.qemu-error")"
done
