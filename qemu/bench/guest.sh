#!/usr/bin/env bash
# What the guest sees: Linux 6.1 (the project's unpatched guest kernel) on
# the QEMU 10.0 that links papr-scm, with papr-scm=off and =on (papr
# profile), one and eight NVDIMMs (256 MiB + a 128 KiB label each), under
# TCG. Per boot, from kernel timestamps: papr_scm's probe of every device
# (unbind, then bind) up to the last /dev/pmemN, and `ndctl read-labels` of
# nmem0's 128 KiB label area (tests/real-guest/init.sh, PAPR_SCM_BENCH).
# Medians of RUNS boots (default 5), with the spread; never asserted.
#
# Usage: qemu/bench/guest.sh [QEMU_BINARY] [OUTDIR]
#   QEMU_BINARY: default `qemu/build.sh 10.0`'s. Needs the guest kernel,
#   busybox and ndctl tests/real-guest/build-guest.sh and
#   build-userspace.sh leave in /var/tmp/papr-scm-guest (PAPR_SCM_GUEST);
#   exit 77 (SKIP) without them. RUNS=N boots per configuration;
#   ONLY="off-1 on-8" runs only those configurations.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PAPR_SCM_GUEST:-/var/tmp/papr-scm-guest}
RUNS=${RUNS:-5}
QEMU=${1:-}
OUT=${2:-$(mktemp -d "${TMPDIR:-/tmp}/papr-scm-guest-bench.XXXXXX")}
mkdir -p "$OUT"
if [ -z "$QEMU" ]; then
  QEMU=$(bash "$REPO/qemu/build.sh" 10.0 2>"$OUT/qemu-build.log" | tail -1)
fi
KERNEL=$CACHE/vmlinux-plain
for f in "$QEMU" "$KERNEL" "$CACHE/bb/bin/busybox" "$CACHE/userspace/root/sbin/ndctl"; do
  [ -e "$f" ] || { echo "SKIP guest-bench: $f is missing"; exit 77; }
done

# The initramfs: busybox, the real-guest init, ndctl and its libraries.
rm -rf "$OUT/initramfs" && mkdir -p "$OUT/initramfs"/{bin,proc,sys,dev,tmp}
cp "$CACHE/bb/bin/busybox" "$OUT/initramfs/bin/busybox"
cp "$REPO/tests/real-guest/init.sh" "$OUT/initramfs/init" && chmod +x "$OUT/initramfs/init"
cp -a "$CACHE/userspace/root/." "$OUT/initramfs/"
(cd "$OUT/initramfs" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$OUT/initramfs.cpio.gz")

# boot NAME WORK MACHINE-OPTIONS MODE: one boot, its console in OUT/NAME.console.
boot() {
  local name=$1 work=$2 machine=$3 mode=$4
  mapfile -t args < <(python3 "$REPO/fdt/cfg2qemu.py" "$work/machine.cfg" "$work" "$machine")
  timeout 600 nice -n 10 "$QEMU" -L /usr/share/qemu "${args[@]}" \
    -kernel "$KERNEL" -initrd "$OUT/initramfs.cpio.gz" \
    -append "console=hvc0 quiet printk.time=1 PAPR_SCM_BENCH=$mode" \
    -display none -nodefaults -chardev "file,id=con,path=$OUT/$name.console" \
    -serial chardev:con -no-reboot >"$OUT/$name.qemu.log" 2>&1
}

# ms BOOT FROM TO: milliseconds between two markers' kernel timestamps.
ms() {
  python3 - "$OUT/$1.console" "$2" "$3" <<'EOF'
import re, sys
t = {}
for line in open(sys.argv[1], errors='replace'):
    m = re.search(r'\[\s*([\d.]+)\] papr-scm-bench: (.*)', line)
    if m:
        t.setdefault(m.group(2).strip(), float(m.group(1)))
a = [v for k, v in t.items() if k.startswith(sys.argv[2])]
b = [v for k, v in t.items() if k.startswith(sys.argv[3])]
print('%.1f' % ((b[0] - a[0]) * 1000) if a and b else 'nan')
EOF
}

results=$OUT/results.txt
: > "$results"
fail=0
for n in 1 8; do
  for scm in off on; do
    cfgname=$scm-$n
    [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $cfgname "* ]] || continue
    work=$OUT/$cfgname
    rm -rf "$work" && mkdir -p "$work"
    {
      echo "machine ram=2G maxmem=$((2 + n))G slots=$n"
      for ((i = 0; i < n; i++)); do
        printf 'nvdimm slot=%d size=256M+128K label-size=128K uuid=%08x-2222-4333-8444-555555555555\n' $i $((i + 1))
      done
    } > "$work/machine.cfg"
    machine=papr-scm=$scm
    [ $scm = on ] && machine+=,papr-scm-profile=papr
    # The labels and namespaces the timed boots find.
    boot "$cfgname-prep" "$work" "$machine" prep
    made=$(grep -c "=== bench: namespace on region.* rc=0" "$OUT/$cfgname-prep.console")
    if [ "$made" != "$n" ]; then
      echo "FAIL $cfgname: the preparing boot made $made namespaces of $n (see $OUT/$cfgname-prep.console)"
      fail=1
      continue
    fi
    for ((r = 1; r <= RUNS; r++)); do
      boot "$cfgname-$r" "$work" "$machine" run
      p=$(ms "$cfgname-$r" "probe $n" "pmem $n")
      l=$(ms "$cfgname-$r" "read-labels" "read-labels done rc=0 size=131072")
      echo "$cfgname $r $p $l" | tee -a "$results"
      if [ "$p" = nan ] || [ "$l" = nan ]; then
        echo "FAIL $cfgname run $r: no timestamps (see $OUT/$cfgname-$r.console)"
        fail=1
      fi
    done
  done
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    c, _r, p, l = line.split()
    if p != 'nan' and l != 'nan':
        rows.setdefault(c, []).append((float(p), float(l)))
print('%-8s %28s %28s' % ('', 'probe -> last /dev/pmemN (ms)', 'ndctl read-labels (ms)'))
for c in ('off-1', 'on-1', 'off-8', 'on-8'):
    v = rows.get(c)
    if not v:
        continue
    p = [x[0] for x in v]
    l = [x[1] for x in v]
    print('%-8s %14.0f (%5.0f-%5.0f) %14.0f (%5.0f-%5.0f)  n=%d'
          % (c, statistics.median(p), min(p), max(p), statistics.median(l), min(l), max(l), len(v)))
EOF
echo "guest-bench: boots and consoles in $OUT"
exit $fail
