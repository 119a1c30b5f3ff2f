#!/usr/bin/env bash
# Real Linux pseries guests, their papr_scm driver and libnvdimm, with every
# SCM hcall and PMEM RTAS call answered by papr-scm.
#
# Usage: [VMM=embedded|bridge] tests/real-guest/run.sh OUTDIR [SCENARIO...]
#   VMM=embedded (the default): QEMU 10.0 with papr-scm linked in
#   (qemu/build.sh 10.0, or the binary PAPR_SCM_QEMU names) answers through
#   papr-scm itself (-machine papr-scm=on), each boot writing its trace
#   (papr-scm-trace); the guest is the project's Linux 6.1 without
#   tcg-pmem.patch (that QEMU runs the ISA 3.1 pmem instructions), and
#   the qemu profile's reference boots are the same binary's papr-scm=off.
#   VMM=bridge: Debian's QEMU 7.2, unpatched, answers nothing itself:
#   papr-scm answers through its gdb stub (papr-scm qemu-bridge), with the
#   kernel patched for that QEMU's TCG; distro needs VMM=embedded.
#   Installs its Debian packages, builds the guest once into
#   ${PAPR_SCM_GUEST_CACHE:-/var/tmp/papr-scm-guest}, then boots each scenario
#   (all of them, or the ones named) and saves OUTDIR/<name>.console and
#   OUTDIR/<name>.trace (a replayable transcript). Exits non-zero if any
#   assertion fails; exit 77 if the packages cannot be installed (CI prints SKIP).
#   LANES=N runs the scenarios in N processes at once (CI: 2).
#   Scenarios: papr-mkns qemu-mkns numa2 health rebind reset kexec hotplug unplug
#   persist fsdax-xfs fsdax-ext4 fsdax-flush fsdax-qemu fsdax-shared migrate distro
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:?usage: run.sh OUTDIR [SCENARIO...]}
shift
SCENARIOS=(papr-mkns qemu-mkns numa2 health rebind reset kexec hotplug unplug persist
           fsdax-xfs fsdax-ext4 fsdax-flush fsdax-qemu fsdax-shared migrate distro)
for s in "$@"; do
  case " ${SCENARIOS[*]} " in *" $s "*) ;; *) echo "run.sh: no scenario '$s' (there are: ${SCENARIOS[*]})"; exit 2 ;; esac
done
# want NAME: whether NAME runs (every scenario when none is named).
want() { [ ${#SELECTED[@]} = 0 ] || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }
SELECTED=("$@")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=${PAPR_SCM_GUEST_CACHE:-/var/tmp/papr-scm-guest}

pkgs=(qemu-system-ppc gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross linux-source-6.1 flex bison bc
      libssl-dev libelf-dev cpio python3 kmod)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$OUT/apt.log" 2>&1; then
    echo "real-guest: the packages did not install (see $OUT/apt.log)"
    exit 77
  fi
fi
# has_machine_option QEMU OPTION: the pseries machine takes OPTION (its
# papr-scm properties are the instance's: "-machine pseries,help" does
# not list them, so ask a machine that starts and quits at once).
has_machine_option() {
  echo quit | timeout 30 "$1" -L /usr/share/qemu -machine "pseries,$2" -nodefaults -display none -S \
    -monitor stdio > "$OUT/machine-option.log" 2>&1
}
VMM=${VMM:-embedded}
case $VMM in
  embedded)
    # The binary once, handed down to the lanes.
    if [ -z "${PAPR_SCM_QEMU:-}" ]; then
      [ -f "$REPO/qemu/build.sh" ] || { echo "real-guest: VMM=embedded needs qemu/build.sh"; exit 1; }
      PAPR_SCM_QEMU=$(bash "$REPO/qemu/build.sh" 10.0 2>"$OUT/qemu-build.log" | tail -1)
      rc=${PIPESTATUS[0]}
      [ "$rc" = 77 ] && { echo "real-guest: $(grep -m1 SKIP "$OUT/qemu-build.log")"; exit 77; }
      [ "$rc" = 0 ] || { echo "real-guest: qemu/build.sh 10.0 failed (see $OUT/qemu-build.log)"; exit 1; }
    fi
    export PAPR_SCM_QEMU
    QEMU=$PAPR_SCM_QEMU
    if ! has_machine_option "$QEMU" papr-scm=on; then
      echo "real-guest: $QEMU refuses papr-scm=on: $(tail -1 "$OUT/machine-option.log")"; exit 1
    fi
    KVARIANT=plain KERNEL=$CACHE/vmlinux-plain ;;
  bridge) QEMU=qemu-system-ppc64 KVARIANT=patched KERNEL=$CACHE/vmlinux ;;
  *) echo "run.sh: VMM is embedded or bridge, not '$VMM'"; exit 2 ;;
esac
# The QEMU series' source has Debian's firmware blobs removed; SLOF comes
# from qemu-system-data (the same file serves Debian's own QEMU).
QEMU=("$QEMU" -L /usr/share/qemu)
"$HERE/build-guest.sh" "$CACHE" $KVARIANT || exit 77
(cd "$REPO" && cargo build --release -q) || exit 1
BIN=$REPO/target/release/papr-scm

# LANES=N (CI: 2): the scenarios run in N processes at once, each
# OUTDIR/laneK with its own QEMU and bridge (one TCG vCPU keeps one core
# busy, the bridge hardly any), their files then moved up into OUTDIR.
if [ "${LANES:-1}" -gt 1 ] && [ -z "${PAPR_SCM_LANE:-}" ]; then
  todo=("${SELECTED[@]}")
  [ ${#todo[@]} = 0 ] && todo=("${SCENARIOS[@]}")
  # Seconds each took on 2 cores (a scenario of more boots costs more).
  declare -A cost=([papr-mkns]=15 [qemu-mkns]=30 [numa2]=12 [health]=11 [rebind]=12 [reset]=25
    [kexec]=20 [hotplug]=60 [unplug]=40 [persist]=45 [fsdax-xfs]=45 [fsdax-ext4]=45 [fsdax-flush]=25
    [fsdax-qemu]=70 [fsdax-shared]=50 [migrate]=90 [distro]=150)
  mapfile -t todo < <(for s in "${todo[@]}"; do echo "${cost[$s]:-30} $s"; done | sort -rn | cut -d' ' -f2)
  declare -a load lane
  for ((k = 0; k < LANES; k++)); do load[k]=0; lane[k]=""; done
  for s in "${todo[@]}"; do
    best=0
    for ((k = 1; k < LANES; k++)); do [ "${load[k]}" -lt "${load[best]}" ] && best=$k; done
    lane[best]+=" $s"; load[best]=$((load[best] + ${cost[$s]:-30}))
  done
  pids=()
  for ((k = 0; k < LANES; k++)); do
    [ -n "${lane[k]}" ] || continue
    echo "lane $k:${lane[k]} (~${load[k]} s)"
    # shellcheck disable=SC2086
    PAPR_SCM_LANE=$k bash "$HERE/run.sh" "$OUT/lane$k" ${lane[k]} > "$OUT/lane$k.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  passes=0 failures=0
  for ((k = 0; k < LANES; k++)); do
    [ -n "${lane[k]}" ] || continue
    grep -E '^(ok|FAIL|SKIP|----)' "$OUT/lane$k.log"
    lp= lf=
    read -r lp lf < <(sed -n 's/^real-guest: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$OUT/lane$k.log")
    if [ -z "$lp" ]; then
      echo "FAIL [lane $k]: it ended early (see lane$k.log)"; failures=$((failures + 1))
    else
      passes=$((passes + lp)); failures=$((failures + lf))
    fi
    for f in "$OUT/lane$k"/*; do [ -e "$OUT/${f##*/}" ] || mv "$f" "$OUT/"; done
  done
  echo "real-guest: $passes passed, $failures failed"
  [ "$failures" = 0 ]
  exit
fi


# initramfs: busybox and our init
rm -rf "$OUT/initramfs" && mkdir -p "$OUT/initramfs"/{bin,proc,sys,dev,tmp}
cp "$CACHE/bb/bin/busybox" "$OUT/initramfs/bin/busybox"
cp "$HERE/init.sh" "$OUT/initramfs/init" && chmod +x "$OUT/initramfs/init"
(cd "$OUT/initramfs" && find . | cpio -o -H newc 2>/dev/null | gzip -9 > "$OUT/initramfs.cpio.gz")
# The fsdax, kexec and migrate scenarios' initramfs adds ndctl, mkfs.xfs,
# mke2fs, kexec and mapsync; kexec's adds the kernel and the first
# initramfs, for the second kernel.
FSDAX_OK=
if want fsdax-xfs || want fsdax-ext4 || want fsdax-flush || want fsdax-qemu || want fsdax-shared \
   || want kexec || want migrate || want distro; then
  if "$HERE/build-userspace.sh" "$CACHE" > "$OUT/userspace.log" 2>&1; then
    rm -rf "$OUT/initramfs-fsdax" && cp -a "$OUT/initramfs" "$OUT/initramfs-fsdax"
    cp -a "$CACHE/userspace/root/." "$OUT/initramfs-fsdax/"
    (cd "$OUT/initramfs-fsdax" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$OUT/initramfs-fsdax.cpio.gz")
    if want kexec; then
      mkdir -p "$OUT/initramfs-fsdax/boot"
      cp "$KERNEL" "$OUT/initramfs-fsdax/boot/vmlinux"
      cp "$OUT/initramfs.cpio.gz" "$OUT/initramfs-fsdax/boot/initrd"
      (cd "$OUT/initramfs-fsdax" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$OUT/initramfs-kexec.cpio.gz")
    fi
    FSDAX_OK=1
  else
    echo "SKIP fsdax, kexec and migrate scenarios: the guest userspace did not build (see $OUT/userspace.log)"
  fi
fi

failures=0
passes=0
fail() { echo "FAIL [$1]: $2"; failures=$((failures + 1)); }
pass() { echo "ok   [$1]: $2"; passes=$((passes + 1)); }
expect() { # name file pattern description
  if grep -q -- "$3" "$2"; then pass "$1" "$4"; else fail "$1" "$4 (no '$3' in ${2##*/})"; fi
}
reject() { # name file pattern description
  if grep -q -- "$3" "$2"; then fail "$1" "$4 ('$3' found in ${2##*/})"; else pass "$1" "$4"; fi
}

# Lanes get disjoint port ranges.
port=$((20000 + ${PAPR_SCM_LANE:-0} * 5000 + $$ % 4000))
# drive CONSOLE SOCKET [MARKER HMPFILE]...: each time the guest prints
# MARKER, sends HMPFILE's commands to QEMU's monitor.
drive() {
  local con=$1 sock=$2; shift 2
  while [ $# -ge 2 ]; do
    local marker=$1 hmp=$2 t=0; shift 2
    until grep -q -- "$marker" "$con" 2>/dev/null; do
      sleep 1; t=$((t + 1)); [ $t -gt 280 ] && return 1
    done
    python3 "$HERE/hmp.py" "$sock" "$hmp"
  done
}

# boot NAME CFG CMDLINE-EXTRA [papr-scm|qemu|observe]: one guest boot.
# papr-scm (the default): papr-scm answers, inside QEMU (VMM=embedded,
# -machine papr-scm=on, its trace in OUT/NAME.trace) or through the bridge
# (VMM=bridge); qemu: QEMU answers everything itself (papr-scm=off on the
# embedded binary), its hcalls logged (-d int); observe: QEMU answers and
# the bridge records its PMEM RTAS answers. A bridged configuration with
# plug lines gets the RTAS trap (--dtb from QEMU's dumpdtb) and, in DRIVE
# (MARKER HMPFILE pairs), the monitor commands that go with the guest's
# "=== READY" lines. KERNEL, INITRD and QEMU_EXTRA (more QEMU arguments)
# may be set for one boot.
boot() {
  local name=$1 cfg=$2 extra=$3 mode=${4:-papr-scm}
  [ "$mode" = bridge ] && mode=papr-scm
  [ "$mode" = papr-scm ] && [ "$VMM" = embedded ] && mode=embedded
  # WORKDIR (kept) lets boots share backing files; otherwise each has its own.
  local work=${WORKDIR:-$OUT/$name.work}
  [ -n "${WORKDIR:-}" ] || rm -rf "$work"
  mkdir -p "$work"
  local machine=
  if [ "$mode" = embedded ]; then
    local profile
    profile=$(sed -n 's/^machine .*profile=\([a-z]*\).*/\1/p' "$cfg")
    machine=papr-scm=on,papr-scm-profile=${profile:-papr},papr-scm-trace=$OUT/$name.trace${QEMU_MACHINE:+,$QEMU_MACHINE}
  elif [ "$VMM" = embedded ]; then
    machine=papr-scm=off
  fi
  local rtas=()
  # RTAS=1: trap RTAS without plug lines (the reset scenario's reboot).
  if [ "$mode" != embedded ] && { grep -q '^plug ' "$cfg" || [ -n "${RTAS:-}" ]; }; then
    if [ "$VMM" = embedded ]; then
      # QEMU 10.0's pseries builds its tree at reset, after the machine
      # property dumpdtb is looked at ("doesn't have an FDT"): ask the
      # monitor of a machine stopped before its first instruction.
      mapfile -t dargs < <(python3 "$REPO/fdt/cfg2qemu.py" "$cfg" "$work" "$machine")
      printf 'dumpdtb %s\nquit\n' "$work/boot.dtb" \
        | timeout 60 "${QEMU[@]}" "${dargs[@]}" -S -display none -nodefaults -monitor stdio >"$OUT/$name.dumpdtb.log" 2>&1
    else
      mapfile -t dargs < <(python3 "$REPO/fdt/cfg2qemu.py" "$cfg" "$work" "${machine:+$machine,}dumpdtb=$work/boot.dtb")
      timeout 60 "${QEMU[@]}" "${dargs[@]}" -nographic -nodefaults >"$OUT/$name.dumpdtb.log" 2>&1
    fi
    rtas=(--dtb "$work/boot.dtb")
    [ "$mode" = observe ] && rtas+=(--observe-rtas)
  fi
  mapfile -t args < <(python3 "$REPO/fdt/cfg2qemu.py" "$cfg" "$work" "$machine")
  port=$((port + 1))
  local dbg=()
  case $mode in
    qemu) dbg=(-d int -D "$OUT/$name.int") ;;
    embedded) ;;
    *) dbg=(-gdb "tcp:127.0.0.1:$port" -S) ;;
  esac
  local start=$SECONDS
  : > "$OUT/$name.console"
  # CONSOLE_SOCK: the console also takes input, on a unix socket.
  local console=(-chardev "file,id=con,path=$OUT/$name.console")
  [ -n "${CONSOLE_SOCK:-}" ] && console=(-chardev "socket,id=con,path=$work/$name.con,server=on,wait=off,logfile=$OUT/$name.console")
  # shellcheck disable=SC2086
  timeout 300 "${QEMU[@]}" "${args[@]}" \
    -kernel "${KERNEL_BOOT:-$KERNEL}" -initrd "${INITRD:-$OUT/initramfs.cpio.gz}" \
    -append "console=hvc0 dyndbg=\"file papr_scm.c +p\" $extra" \
    -display none -nodefaults "${console[@]}" -serial chardev:con ${QEMU_EXTRA:-} \
    -monitor "unix:$work/mon.sock,server=on,wait=off" "${dbg[@]}" >"$OUT/$name.qemu.log" 2>&1 &
  local qemu=$!
  local driver=
  if [ ${#DRIVE[@]} -gt 0 ]; then
    drive "$OUT/$name.console" "$work/mon.sock" "${DRIVE[@]}" >"$OUT/$name.hmp.log" 2>&1 &
    driver=$!
  fi
  if [ "$mode" = papr-scm ] || [ "$mode" = observe ]; then
    local backing=()
    if [ -f "$work/backing.list" ]; then
      while read -r f; do backing+=(--backing "$f"); done < "$work/backing.list"
    else
      for f in "$work"/nv*.img; do backing+=(--backing "$f"); done
    fi
    if ! "$BIN" qemu-bridge --gdb "127.0.0.1:$port" --vmlinux "$KERNEL" --config "$cfg" \
         --trace "$OUT/$name.trace" --timeout 280 "${backing[@]}" "${rtas[@]}" 2>"$OUT/$name.bridge.log"; then
      fail "$name" "the bridge failed: $(tail -1 "$OUT/$name.bridge.log")"
      kill "$qemu" 2>/dev/null
    fi
    # The bridge serves a guest whose binds differ from its configuration,
    # with a warning; for these boots that means QEMU and the bridge disagree.
    if grep -q "configuration mismatch" "$OUT/$name.bridge.log"; then
      fail "$name" "$(grep -m1 "configuration mismatch" "$OUT/$name.bridge.log")"
    fi
  fi
  wait "$qemu"
  local rc=$?
  [ -n "$driver" ] && kill "$driver" 2>/dev/null
  [ -n "${WORKDIR:-}" ] || rm -rf "$work"
  # QEMU itself refusing to start (a property it does not know, a device it
  # refuses) says so on its stderr.
  if [ "$rc" != 0 ] && [ "$rc" != 124 ] && ! [ -s "$OUT/$name.console" ]; then
    fail "$name" "QEMU exited with $rc before the guest said anything: $(tail -1 "$OUT/$name.qemu.log")"
  fi
  echo "---- $name: $((SECONDS - start)) s"
}
DRIVE=()

# Scenario configurations, in transcript syntax (the bridge reads the same file).
cfg() { # name profile extra-lines...
  local f=$OUT/$1.cfg; shift
  local profile=$1; shift
  printf '%s\n' "machine ram=2G maxmem=8G slots=4 profile=$profile" "$@" > "$f"
  echo "$f"
}
SPAPR="nvdimm size=1G+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e type=spapr-nvdimm"

# 1. spapr-nvdimm, namespace and flush, papr profile
if want papr-mkns; then
  c=$(cfg papr-mkns papr "$SPAPR")
  boot papr-mkns "$c" MKNS=1
  C=$OUT/papr-mkns.console
  expect papr-mkns "$C" "bound drc 0x90000000 to 0x80000000" "bound drc 0x90000000 to 0x80000000"
  reject papr-mkns "$C" "Failed to query performance stats" "no 'Failed to query performance stats'"
  n=$(grep 'papr/perf_stats = ' "$C" | grep -o ' = 0x' | wc -l)
  [ "$n" = 16 ] && pass papr-mkns "papr/perf_stats lists 16 statistics" || fail papr-mkns "papr/perf_stats lists $n statistics"
  expect papr-mkns "$C" "NVDIMM performance monitor support registered" "the perf PMU registers"
  expect papr-mkns "$C" "/dev/pmem0" "/dev/pmem0 exists"
  expect papr-mkns "$C" "flush drc 0x90000000 complete" "the flush completes"
  expect papr-mkns "$C" "dd rc=0" "fsync on /dev/pmem0 succeeds"
fi

# 2. the same in the qemu profile, against QEMU itself answering
if want qemu-mkns; then
  c=$(cfg qemu-mkns qemu "$SPAPR")
  boot qemu-mkns "$c" MKNS=1
  boot qemu-ref "$c" MKNS=1 qemu
  # The guest's view: papr_scm / libnvdimm console lines, without timestamps.
  # (`ls -l` dates follow the host clock through the guest's RTC.)
  view() {
    sed -E -e 's/^\[ *[0-9.]*\] //' -e 's/[A-Z][a-z]{2} +[0-9]+ [0-9]{2}:[0-9]{2}/DATE/' "$1" \
      | grep -E 'papr_scm|nd_pmem|pmem0|nvdimm|region|namespace|papr/' | grep -v 'cmdline'
  }
  if diff <(view "$OUT/qemu-ref.console") <(view "$OUT/qemu-mkns.console") > "$OUT/qemu-view.diff"; then
    pass qemu-mkns "the guest's papr_scm/libnvdimm console lines equal QEMU's ($(view "$OUT/qemu-ref.console" | wc -l) lines)"
  else
    fail qemu-mkns "console lines differ from QEMU's (see qemu-view.diff)"
  fi
  # The SCM hcalls QEMU saw (-d int) against the ones the bridge answered.
  python3 "$HERE/hcalls.py" int "$OUT/qemu-ref.int" > "$OUT/qemu-ref.hcalls"
  python3 "$HERE/hcalls.py" trace "$OUT/qemu-mkns.trace" > "$OUT/qemu-mkns.hcalls"
  if [ -s "$OUT/qemu-ref.hcalls" ] && diff "$OUT/qemu-ref.hcalls" "$OUT/qemu-mkns.hcalls" > "$OUT/qemu-hcalls.diff"; then
    pass qemu-mkns "the same $(wc -l < "$OUT/qemu-ref.hcalls") SCM hcalls, inputs and order as with QEMU answering"
  else
    fail qemu-mkns "the hcall sequence differs from QEMU's (see qemu-hcalls.diff)"
  fi
fi

# 3. two NUMA nodes, a plain nvdimm and an spapr-nvdimm (the real-guest configuration)
if want numa2; then
  c=$(cfg numa2 papr \
    "nvdimm slot=0 size=1G+128K label-size=128K uuid=11111111-2222-4333-8444-555555555555 node=0" \
    "nvdimm slot=1 size=256M+128K label-size=128K uuid=22222222-3333-4444-8555-666666666666 node=1 type=spapr-nvdimm")
  sed -i 's/slots=4 /slots=4 numa-nodes=2 /' "$c"
  boot numa2 "$c" ""
  expect numa2 "$OUT/numa2.console" "bound drc 0x90000000 to 0x80000000" "nvdimm bound at 0x80000000"
  expect numa2 "$OUT/numa2.console" "bound drc 0x90000001 to 0xc0000000" "spapr-nvdimm bound at 0xc0000000"
fi

# 4. health injected before boot: SHUTDOWN_DIRTY and UNARMED
if want health; then
  if [ "$VMM" = bridge ]; then
    c=$(cfg health papr "$SPAPR" "inject slot=0 health=0xc000000000000000")
    boot health "$c" ""
    expect health "$OUT/health.console" "papr/flags = not_armed flush_fail" "papr/flags shows not_armed flush_fail"
    expect health "$OUT/health.console" "read_only = 1" "the region is read-only"
  else
    # Inside QEMU: UNARMED from the device's own unarmed=on; UNARMED and
    # SHUTDOWN_DIRTY through papr-scm's injection (papr_scm_inject_health)
    # with the machine property papr-scm-health=SLOT:BITS, before boot.
    c=$(cfg health-unarmed papr "$SPAPR unarmed=on")
    boot health-unarmed "$c" ""
    expect health "$OUT/health-unarmed.console" "papr/flags = not_armed" "unarmed=on: papr/flags shows not_armed"
    expect health "$OUT/health-unarmed.console" "read_only = 1" "unarmed=on: the region is read-only"
    # (An empty value: the probe's machine has no NVDIMM to inject into.)
    if has_machine_option "${QEMU[0]}" papr-scm=on,papr-scm-health=; then
      c=$(cfg health papr "$SPAPR")
      QEMU_MACHINE=papr-scm-health=0:0xc000000000000000 boot health "$c" ""
      expect health "$OUT/health.console" "papr/flags = not_armed flush_fail" "papr-scm-health=0:0xc000000000000000: papr/flags shows not_armed flush_fail"
      expect health "$OUT/health.console" "read_only = 1" "the region is read-only"
      expect health "$OUT/health.trace" "^inject slot=0 health=0xc000000000000000$" "the injection is in the trace (papr-scm-trace)"
      if [ "$(grep -m1 -n '^inject ' "$OUT/health.trace" | cut -d: -f1)" -lt "$(grep -m1 -n '^call ' "$OUT/health.trace" | cut -d: -f1)" ] 2>/dev/null; then
        pass health "the inject line comes before the first call"
      else
        fail health "no inject line before the first call in health.trace"
      fi
      expect health "$OUT/health.trace" "^call H_SCM_HEALTH 0x90000000 [^>]*-> H_SUCCESS r4=0xc000000000000000" "H_SCM_HEALTH answers the injected bits"
    else
      fail health "health before boot: ${QEMU[0]} has no papr-scm-health machine property: $(tail -1 "$OUT/machine-option.log")"
    fi
  fi
fi

# 5. unbind and rebind the driver through sysfs
if want rebind; then
  c=$(cfg rebind papr "$SPAPR")
  boot rebind "$c" UNBIND=1
  T=$OUT/rebind.trace
  if grep -A1 'call H_SCM_UNBIND_ALL 0x2 0x90000000' "$T" | grep -q 'call H_SCM_BIND_MEM 0x90000000 0x0 0x4 -1 0x0 -> H_SUCCESS'; then
    pass rebind "UNBIND_ALL, then a fresh bind"
  else
    fail rebind "no UNBIND_ALL followed by a successful bind in rebind.trace"
  fi
fi

# 6. a guest reboot without unbinding (reboot -f), papr profile: the bridge
# traps the guest's system-reboot RTAS call and resets the machine
# (Machine::reset), so the second boot binds afresh
if want reset; then
  c=$(cfg reset papr "$SPAPR")
  RTAS=1 boot reset "$c" REBOOT=1
  T=$OUT/reset.trace
  if [ "$VMM" = bridge ]; then
    expect reset "$OUT/reset.bridge.log" "the guest reboots: machine reset" "the guest's system-reboot resets the machine"
  else
    expect reset "$OUT/reset.trace" "^reset$" "the guest's system-reboot resets papr-scm's machine (QEMU's reset)"
  fi
  n=$(grep -c 'call H_SCM_BIND_MEM 0x90000000 0x0 0x4 -1 0x0 -> H_SUCCESS' "$T")
  [ "$n" = 2 ] && pass reset "both boots bind at once" || fail reset "$n successful whole-device binds in reset.trace, not 2"
  reject reset "$T" "H_OVERLAP" "the second boot meets no old binding"
  [ "$(grep -c 'bound drc 0x90000000 to 0x80000000' "$OUT/reset.console")" = 2 ] \
    && pass reset "bound at 0x80000000 on both boots" || fail reset "not bound twice at 0x80000000"
  expect reset "$OUT/reset.console" "second boot: /dev/pmem0 found from the labels" "the namespace survives the reset"
fi

# 6b. the same with kexec in the guest (kexec-tools, kexec_file_load): no
# reset, so the second kernel's probe meets the first one's binding
if want kexec && [ -n "$FSDAX_OK" ]; then
  c=$(cfg kexec papr "$SPAPR")
  INITRD=$OUT/initramfs-kexec.cpio.gz boot kexec "$c" KEXEC=1
  T=$OUT/kexec.trace C=$OUT/kexec.console
  expect kexec "$C" "first kernel: kexec without unbinding" "the first kernel kexecs"
  if grep -A2 'call H_SCM_BIND_MEM .* -> H_OVERLAP' "$T" | grep -c 'H_SCM_QUERY_BLOCK_MEM_BINDING' | grep -q 2; then
    pass kexec "the second kernel's probe gets H_OVERLAP and queries blocks 0 and n-1"
  else
    fail kexec "no H_OVERLAP + two QUERY_BLOCK_MEM_BINDING in kexec.trace"
  fi
  [ "$(grep -c 'H_SCM_UNBIND_ALL' "$T")" = 0 ] && pass kexec "the binding is reused (no UNBIND_ALL)" || fail kexec "UNBIND_ALL issued"
  [ "$(grep -c 'bound drc 0x90000000 to 0x80000000' "$C")" = 2 ] \
    && pass kexec "bound at 0x80000000 by both kernels" || fail kexec "not bound twice at 0x80000000"
  expect kexec "$C" "second kernel: /dev/pmem0 found from the labels" "the second kernel finds the namespace"
fi

# 7. a second NVDIMM plugged at run time (QEMU's device_add maps it and
# raises the interrupt; papr-scm answers the guest's RTAS calls for it and
# every hcall), in both profiles; in qemu, against QEMU answering the RTAS
# calls itself
HOT="slot=1 size=1G+128K label-size=128K uuid=33333333-4444-4555-8666-777777777777"
ring() { # an HMP file adding a spare memory DIMM: an interrupt on the hot-plug source
  printf 'object_add memory-backend-ram,id=ring%s,size=256M\ndevice_add pc-dimm,id=ringdimm%s,memdev=ring%s\n' "$1" "$1" "$1" > "$OUT/ring$1.hmp"
  echo "$OUT/ring$1.hmp"
}
# rtas_view TRACE: the PMEM RTAS calls, their returns and the memory they
# wrote (each call's writes merged into runs: the bridge records a work
# area as one run, QEMU's trace each write the call made), with the
# event's BCD date and time (bytes 32..39, the host's clock at two
# different moments) masked. VMM=embedded: without check-exception and
# event-scan, which QEMU answers from its own event queue in both boots
# (papr-scm hands it its events: DESIGN.md "One event queue").
rtas_view() {
  python3 - "$1" "$VMM" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
skip = ('check-exception', 'event-scan') if sys.argv[2] == 'embedded' else ()
out, call, mem = [], None, {}
def close():
    if call is None:
        return
    out.append(call)
    runs, start, prev = [], None, None
    for a in sorted(mem):
        if start is None or a != prev + 1:
            runs.append([a, []])
            start = a
        runs[-1][1].append(mem[a])
        prev = a
    for a, bs in runs:
        h = ''.join(bs)
        if len(h) == 2 * 116:  # the 116-byte event
            h = h[:64] + 'x' * 16 + h[80:]
        out.append(f'expect-mem {a:#x} {h}')
for l in lines:
    w = l.split()
    if not w:
        continue
    if w[0] == 'rtas':
        close()
        call, mem = (None, {}) if w[1] in skip else (l, {})
    elif w[0] == 'expect-mem' and call is not None:
        base = int(w[1], 16)
        for i in range(0, len(w[2]), 2):
            mem[base + i // 2] = w[2][i:i + 2]
    else:
        close()
        call, mem = None, {}
close()
print('\n'.join(out))
PY
}
hotplug_checks() { # NAME
  local C=$OUT/$1.console T=$OUT/$1.trace
  expect "$1" "$C" "bound drc 0x90000001 to 0x" "the plugged device binds: $(grep -o 'bound drc 0x90000001 to 0x[0-9a-f]*' "$C" | head -1)"
  expect "$1" "$C" "=== /dev/pmem1 appeared" "/dev/pmem1 appears"
  expect "$1" "$T" "rtas ibm,configure-connector .* -> 0$" "configure-connector completes from papr-scm"
  expect "$1" "$T" "call H_SCM_WRITE_METADATA 0x90000001" "the namespace's label is written to papr-scm"
}
if want hotplug; then
  DRIVE=("=== READY plug" "$OUT/hotplug.work/plug0.hmp")
  c=$(cfg hotplug papr "$SPAPR" "plug $HOT")
  boot hotplug "$c" HOTPLUG=1
  hotplug_checks hotplug
  c=$(cfg hotplug-qemu qemu "$SPAPR" "plug $HOT")
  DRIVE=("=== READY plug" "$OUT/hotplug-qemu.work/plug0.hmp")
  boot hotplug-qemu "$c" HOTPLUG=1
  hotplug_checks hotplug-qemu
  DRIVE=("=== READY plug" "$OUT/hotplug-qemu-ref.work/plug0.hmp")
  boot hotplug-qemu-ref "$c" HOTPLUG=1 observe
  DRIVE=()
  rtas_view "$OUT/hotplug-qemu-ref.trace" > "$OUT/hotplug-qemu-ref.rtas"
  rtas_view "$OUT/hotplug-qemu.trace" > "$OUT/hotplug-qemu.rtas"
  if [ "$VMM" = embedded ]; then
    # The reference's bytes are the bridge's window over the work area
    # after QEMU answered (bytes QEMU left alone included); papr-scm's
    # trace holds the bytes it wrote: each of those must be QEMU's.
    python3 - "$OUT/hotplug-qemu-ref.rtas" "$OUT/hotplug-qemu.rtas" > "$OUT/hotplug-rtas.diff" <<'PY'
import sys
def calls(f):
    cs = []
    for l in open(f).read().splitlines():
        w = l.split()
        if w[0] == 'rtas':
            cs.append((l, {}))
        else:
            base = int(w[1], 16)
            for i in range(0, len(w[2]), 2):
                cs[-1][1][base + i // 2] = w[2][i:i + 2]
    return cs
ref, ours = calls(sys.argv[1]), calls(sys.argv[2])
if not ref or [c for c, _ in ref] != [c for c, _ in ours]:
    print('the calls or their returns differ:')
    for a, b in zip([c for c, _ in ref] + [''] * len(ours), [c for c, _ in ours] + [''] * len(ref)):
        if a != b:
            print(f'< {a}\n> {b}'); break
    sys.exit(1)
n = 0
for (c, r), (_, o) in zip(ref, ours):
    for a, v in o.items():
        if r.get(a) != v:
            print(f'{c}: byte {a:#x} is {v}, QEMU left {r.get(a)}'); sys.exit(1)
        n += 1
print(f'{n} bytes written')
PY
  else
    diff "$OUT/hotplug-qemu-ref.rtas" "$OUT/hotplug-qemu.rtas" > "$OUT/hotplug-rtas.diff"
  fi
  if [ $? = 0 ] && [ -s "$OUT/hotplug-qemu-ref.rtas" ]; then
    if [ "$VMM" = embedded ]; then
      pass hotplug-qemu "the same $(grep -c '^rtas' "$OUT/hotplug-qemu.rtas") RTAS answers as QEMU's, and the $(cut -d' ' -f1 "$OUT/hotplug-rtas.diff") work-area bytes papr-scm wrote"
    else
      pass hotplug-qemu "the same $(grep -c '^rtas' "$OUT/hotplug-qemu.rtas") RTAS answers, work-area and event bytes as QEMU's"
    fi
  else
    fail hotplug-qemu "the RTAS answers differ from QEMU's (see hotplug-rtas.diff)"
  fi
fi

# 8. the plugged device unplugged at run time, then plugged again into the
# same slot. VMM=embedded: with device_del (both profiles); the guest
# releases the DRC, QEMU frees the device and its backend. VMM=bridge
# (Debian's QEMU cannot unplug an NVDIMM): papr-scm's configuration unplugs
# the papr profile's device, its remove event rung in by a spare memory
# DIMM's interrupt.
# device_del_hmp WORK: the monitor files of a plug (cfg2qemu's plug0.hmp),
# device_del of nv1 and, once the guest released it, the questions whether
# QEMU still lists it and frees its backend (object_del refuses a backend
# in use), then a new device of the same size into the same slot, on a new
# (blank) backing file.
device_del_hmp() {
  printf 'device_del nv1\n' > "$1/unplug.hmp"
  truncate -s "$(stat -c %s "$1/nv1.img")" "$1/nv1-new.img"
  { echo "info memory-devices"; echo "object_del mem1"; sed "s#/nv1.img,#/nv1-new.img,#" "$1/plug0.hmp"
    echo "info memory-devices"; } > "$1/replug.hmp"
  DRIVE=("=== READY plug" "$1/plug0.hmp" "=== READY unplug" "$1/unplug.hmp" "=== READY replug" "$1/replug.hmp")
}
# released_answers NAME TRACE: papr-scm's state at the release (the trace
# up to the second plug, replayed) answers an hcall on drc 0x90000001 with
# H_PARAMETER.
released_answers() {
  awk '/^plug /{n++} n==2{exit} {print}' "$2" > "$2.released"
  echo "call H_SCM_HEALTH 0x90000001 -> H_PARAMETER" >> "$2.released"
  if "$BIN" replay "$2.released" > "$2.released.log" 2>&1; then
    pass "$1" "after the release, H_SCM_HEALTH on drc 0x90000001 answers H_PARAMETER (the trace to there, replayed)"
  else
    fail "$1" "the released slot does not answer H_PARAMETER (see ${2##*/}.released.log)"
  fi
}
device_del_checks() { # NAME CONSOLE TRACE HMPLOG
  expect "$1" "$3" "^unplug slot=1" "device_del reaches papr-scm (unplug slot=1 in the trace)"
  expect "$1" "$3" "call H_SCM_UNBIND_ALL 0x2 0x90000001" "the guest unbinds drc 0x90000001 (papr_scm_remove)"
  expect "$1" "$2" "=== drc 0x90000001 removed" "the guest removes drc 0x90000001's device"
  expect "$1" "$2" "=== /dev/pmem1 is gone" "/dev/pmem1 disappears"
  if ! grep -q '^hmp> info memory-devices' "$4"; then
    fail "$1" "the monitor was not asked after device_del (see ${4##*/})"
  elif sed -n '/^hmp> info memory-devices/,/^hmp> object_del/p' "$4" | grep -q 'id: nv1'; then
    fail "$1" "QEMU still lists nv1 after the release (see ${4##*/})"
  else
    pass "$1" "info memory-devices no longer lists nv1"
  fi
  if sed -n '/^hmp> object_del mem1/,/^hmp> object_add/p' "$4" | grep -v '^hmp>' | grep -q .; then
    fail "$1" "object_del mem1: $(sed -n '/^hmp> object_del mem1/{n;p}' "$4")"
  else
    pass "$1" "QEMU freed the backend (object_del mem1 succeeds)"
  fi
  released_answers "$1" "$3"
  expect "$1" "$2" "=== drc 0x90000001 probed again" "a second device_add into slot 1 is probed"
  [ "$(grep -c 'call H_SCM_BIND_MEM 0x90000001 0x0 0x4 -1 0x0 -> H_SUCCESS' "$3")" = 2 ] \
    && pass "$1" "both plugs of slot 1 bind as new (no H_OVERLAP)" \
    || fail "$1" "not two fresh binds of drc 0x90000001 in ${3##*/}"
}
if want unplug; then
  if [ "$VMM" = embedded ]; then
    for prof in papr qemu; do
      n=unplug; [ $prof = qemu ] && n=unplug-qemu
      c=$(cfg $n $prof "$SPAPR" "plug $HOT")
      w=$OUT/$n.work; rm -rf "$w"; mkdir -p "$w"
      python3 "$REPO/fdt/cfg2qemu.py" "$c" "$w" > /dev/null
      device_del_hmp "$w"
      WORKDIR=$w boot $n "$c" "HOTPLUG=1 UNPLUG=1"
      DRIVE=()
      hotplug_checks $n
      device_del_checks $n "$OUT/$n.console" "$OUT/$n.trace" "$OUT/$n.hmp.log"
      rm -rf "$w"
    done
  else
    c=$(cfg unplug papr "$SPAPR" "plug $HOT" "unplug slot=1" "plug $HOT")
    DRIVE=("=== READY plug" "$OUT/unplug.work/plug0.hmp" "=== READY unplug" "$(ring 1)" "=== READY replug" "$(ring 2)")
    boot unplug "$c" "HOTPLUG=1 UNPLUG=1"
    DRIVE=()
    C=$OUT/unplug.console T=$OUT/unplug.trace B=$OUT/unplug.bridge.log
    hotplug_checks unplug
    expect unplug "$T" "call H_SCM_UNBIND_ALL 0x2 0x90000001" "the guest unbinds drc 0x90000001 (papr_scm_remove)"
    expect unplug "$B" "slot 1 released by the guest" "the guest releases the DRC and the device leaves"
    expect unplug "$C" "=== /dev/pmem1 is gone" "/dev/pmem1 disappears"
    expect unplug "$B" "H_SCM_HEALTH on drc 0x90000001 now answers H_PARAMETER" "an hcall on the released slot answers H_PARAMETER"
    [ "$(grep -c 'call H_SCM_BIND_MEM 0x90000001 0x0 0x4 -1 0x0 -> H_SUCCESS' "$T")" = 2 ] \
      && expect unplug "$C" "=== drc 0x90000001 probed again" "plugged again, it binds as new (no H_OVERLAP)" \
      || fail unplug "no second fresh bind of drc 0x90000001"
  fi
fi

# 9. labels and data persist in the backing file, where QEMU keeps them:
# two boots on one file, papr-scm then papr-scm (a new QEMU, and with the
# bridge a new bridge process), QEMU alone then papr-scm, and papr-scm then
# QEMU alone
if want persist; then
  persist_pair() { # NAME FIRST-MODE SECOND-MODE
    local name=$1
    rm -rf "$OUT/$name.work"
    c=$(cfg "$name" papr "$SPAPR")
    WORKDIR=$OUT/$name.work boot "$name-1" "$c" PERSIST=1 "$2"
    WORKDIR=$OUT/$name.work boot "$name-2" "$c" PERSIST=1 "$3"
    expect "$name" "$OUT/$name-1.console" "=== wrote PAPR-SCM-PERSIST" "boot 1 ($2) writes a namespace and data"
    expect "$name" "$OUT/$name-2.console" "=== found /dev/pmem0 from the labels" "boot 2 ($3) finds the namespace from the labels"
    expect "$name" "$OUT/$name-2.console" "=== read PAPR-SCM-PERSIST" "boot 2 ($3) reads the data back"
    rm -rf "$OUT/$name.work"
  }
  persist_pair persist papr-scm papr-scm
  persist_pair persist-qemu-first qemu papr-scm
  persist_pair persist-papr-scm-first papr-scm qemu
  # A boot that starts from the labels records them, so its trace replays.
  expect persist "$OUT/persist-2.trace" "^label slot=0 offset=0x0 " "boot 2's trace starts with the labels it found"
fi

# 10. the fsdax recipe with papr-scm answering: ndctl labels and an fsdax
# namespace, XFS or ext4 with DAX, a store through MAP_SYNC; a second boot
# (new QEMU, new bridge) on the same backing file finds it all again
NV="nvdimm size=1G+128K label-size=128K uuid=44444444-5555-4666-8777-888888888888"
# in_file FILE STRING [FROM [TO]]: the string lies in FILE's bytes [FROM, TO).
in_file() {
  python3 - "$@" <<'PY'
import mmap, sys
f, s = sys.argv[1], sys.argv[2].encode()
with open(f, 'rb') as fh:
    m = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)
    lo = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    hi = int(sys.argv[4]) if len(sys.argv) > 4 else len(m)
    sys.exit(0 if m.find(s, lo, hi) >= 0 else 1)
PY
}
fsdax_pair() { # NAME FS [PROFILE]
  local name=$1 fs=$2 w=$OUT/$1.work
  rm -rf "$w"
  c=$(cfg "$name" "${3:-papr}" "$NV")
  INITRD=$OUT/initramfs-fsdax.cpio.gz WORKDIR=$w boot "$name-1" "$c" "FSDAX=$fs"
  local C1=$OUT/$name-1.console
  local stored
  stored=$(grep -o "MAP_SYNC mapping stored 'PAPR-SCM-FSDAX-[^']*'" "$C1" | grep -o "PAPR-SCM-FSDAX-[^']*")
  if [ "$fs" = xfs ]; then expect "$name" "$C1" "DAX enabled" "XFS mounts with DAX"; fi
  [ -n "$stored" ] && pass "$name" "boot 1 stores '$stored' through MAP_SYNC" \
    || fail "$name" "boot 1 stored nothing through MAP_SYNC"
  # On the host: the data in the backing file's data region, the namespace
  # in its label area (the last 128 KiB: the index block signature).
  local img=$w/nv0.img size
  size=$(stat -c %s "$img")
  [ -n "$stored" ] && in_file "$img" "$stored" 0 $((size - 131072)) \
    && pass "$name" "the string is in the backing file's data region" \
    || fail "$name" "the string is not in the backing file's data region"
  in_file "$img" "NAMESPACE_INDEX" $((size - 131072)) \
    && pass "$name" "the backing file's label area holds the namespace index" \
    || fail "$name" "no namespace index in the backing file's label area"
  INITRD=$OUT/initramfs-fsdax.cpio.gz WORKDIR=$w boot "$name-2" "$c" "FSDAX=$fs"
  local C2=$OUT/$name-2.console
  expect "$name" "$C2" "/dev/pmem0 found from the labels" "boot 2 finds the namespace from the labels"
  [ -n "$stored" ] && expect "$name" "$C2" "mapsync: read '$stored'" "boot 2 reads the string back through DAX"
  rm -rf "$w"
}
if [ -n "$FSDAX_OK" ]; then
  want fsdax-xfs && fsdax_pair fsdax-xfs xfs
  want fsdax-ext4 && fsdax_pair fsdax-ext4 ext4
  # The qemu profile: boot 1's SCM hcalls equal those of a boot with QEMU
  # answering, but for the label words that hold the UUIDs ndctl draws.
  if want fsdax-qemu; then
    fsdax_pair fsdax-qemu xfs qemu
    w=$OUT/fsdax-qemu-ref.work; rm -rf "$w"
    INITRD=$OUT/initramfs-fsdax.cpio.gz WORKDIR=$w boot fsdax-qemu-ref "$OUT/fsdax-qemu.cfg" "FSDAX=xfs" qemu
    rm -rf "$w"
    python3 "$HERE/hcalls.py" int "$OUT/fsdax-qemu-ref.int" > "$OUT/fsdax-qemu-ref.hcalls"
    python3 "$HERE/hcalls.py" trace "$OUT/fsdax-qemu-1.trace" > "$OUT/fsdax-qemu-1.hcalls"
    if python3 - "$OUT/fsdax-qemu-ref.hcalls" "$OUT/fsdax-qemu-1.hcalls" > "$OUT/fsdax-qemu.cmp" <<'PY'
import sys
a, b = (open(f).read().split('\n') for f in sys.argv[1:3])
if len(a) != len(b):
    print(f'{len(a)} hcalls with QEMU, {len(b)} bridged'); sys.exit(1)
words = 0
for x, y in zip(a, b):
    if x == y:
        continue
    xs, ys = x.split(), y.split()
    # H_SCM_WRITE_METADATA drc offset DATA len: only the data word may differ.
    if xs[0] == ys[0] == '0x3e8' and xs[1:3] == ys[1:3] and xs[4:] == ys[4:]:
        words += 1
        continue
    print(f'differ: {x} / {y}'); sys.exit(1)
print(f'{len(a) - 1} hcalls; {words} label data words differ')
sys.exit(0 if words <= 16 else 1)
PY
    then
      pass fsdax-qemu "boot 1's SCM hcalls equal QEMU's: $(cat "$OUT/fsdax-qemu.cmp")"
    else
      fail fsdax-qemu "boot 1's SCM hcalls differ from QEMU's: $(tail -1 "$OUT/fsdax-qemu.cmp")"
    fi
  fi
  # Two guests at once on one backing file (share=on), each with its own
  # QEMU and bridge: A makes the namespace and the file, unmounts and stays
  # up; B, started then, finds A's labels and reads A's string.
  if want fsdax-shared; then
    w=$OUT/fsdax-shared.work; rm -rf "$w"
    c=$(cfg fsdax-shared papr "$NV")
    (INITRD=$OUT/initramfs-fsdax.cpio.gz WORKDIR=$w CONSOLE_SOCK=1 boot fsdax-shared-a "$c" "FSDAX=xfs WAIT_CONSOLE=1") &
    a=$!
    port=$((port + 10))
    # B starts once A is waiting (its labels written).
    t=0
    until grep -q "=== waiting for the host" "$OUT/fsdax-shared-a.console" 2>/dev/null; do
      sleep 1; t=$((t + 1)); [ $t -gt 200 ] && break
    done
    echo "---- fsdax-shared: B starts after $t s"
    INITRD=$OUT/initramfs-fsdax.cpio.gz WORKDIR=$w boot fsdax-shared-b "$c" "FSDAX=xfs"
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"done\n")' \
      "$w/fsdax-shared-a.con" 2>/dev/null
    wait "$a"
    rm -rf "$w"
    A=$OUT/fsdax-shared-a.console B=$OUT/fsdax-shared-b.console
    stored=$(grep -o "MAP_SYNC mapping stored 'PAPR-SCM-FSDAX-[^']*'" "$A" | grep -o "PAPR-SCM-FSDAX-[^']*")
    [ -n "$stored" ] && pass fsdax-shared "A stores '$stored' and stays up" || fail fsdax-shared "A stored nothing"
    expect fsdax-shared "$B" "/dev/pmem0 found from the labels" "B finds the namespace from A's labels"
    [ -n "$stored" ] && expect fsdax-shared "$B" "mapsync: read '$stored'" "B reads A's string through its own DAX mapping"
    expect fsdax-shared "$A" "=== the host said: done" "A was up until B was done"
    if [ "$VMM" = bridge ]; then
      expect fsdax-shared "$OUT/fsdax-shared-a.bridge.log" "guest ended" "A's bridge served A to the end"
    else
      expect fsdax-shared "$A" "=== GUEST DONE" "A's QEMU served A to the end"
    fi
  fi
  # An spapr-nvdimm that needs H_SCM_FLUSH is an asynchronous region:
  # MAP_SYNC is Linux's to refuse, and fsync on the DAX mount flushes.
  if want fsdax-flush; then
    c=$(cfg fsdax-flush papr "$SPAPR")
    INITRD=$OUT/initramfs-fsdax.cpio.gz boot fsdax-flush "$c" "FSDAX=xfs FSYNC=1"
    C=$OUT/fsdax-flush.console T=$OUT/fsdax-flush.trace
    expect fsdax-flush "$C" "DAX enabled" "XFS mounts with DAX on the asynchronous region"
    expect fsdax-flush "$C" "MAP_SYNC mapping refused: Operation not supported" "MAP_SYNC is refused (asynchronous region)"
    expect fsdax-flush "$C" "fsync rc=0" "fsync on the DAX mount succeeds"
    n=$(grep -c "call H_SCM_FLUSH 0x90000000 0x0 [^>]*-> H_LONG_BUSY" "$T")
    [ "$n" -gt 0 ] && pass fsdax-flush "fsync goes through H_SCM_FLUSH ($n flushes, each completed)" \
      || fail fsdax-flush "no H_SCM_FLUSH in fsdax-flush.trace"
  fi
fi

# 16. a migration with a flush pending. VMM=bridge: QEMU A and its bridge run the
# guest until its first H_SCM_FLUSH is left pending; the bridge pauses the
# guest and writes papr-scm's snapshot; A migrates to a file; QEMU B starts
# from it (-incoming), a new bridge restores the snapshot (after one with a
# mismatching configuration was refused) and serves the rest of the boot.
hmp1() { # SOCKET COMMAND: one monitor command, its reply on stdout
  printf '%s\n' "$2" > "$OUT/hmp1.cmd"; python3 "$HERE/hmp.py" "$1" "$OUT/hmp1.cmd"
}
# wait_hmp SOCKET COMMAND PATTERN SECONDS: until the reply matches (the
# replies are in OUT/hmp-wait.log).
wait_hmp() {
  local t=0
  until hmp1 "$1" "$2" > "$OUT/hmp-last.log" 2>&1 && grep -q -- "$3" "$OUT/hmp-last.log"; do
    { echo "$t s:"; cat "$OUT/hmp-last.log"; } >> "$OUT/hmp-wait.log"
    sleep 1; t=$((t + 1)); [ $t -gt "$4" ] && return 1
  done
  return 0
}
# VMM=embedded, through QEMU alone (papr-scm's state in its vmstate
# section, no side channel): the guest flushes drc 0x90000000 without
# pause; A migrates live over TCP to a destination whose papr-scm profile
# differs (it must fail with papr-scm's message, A running on), then to a
# file; B starts from the file and migrates live over TCP to C. Each
# destination has backing files of its own (the migration fills them).
# The flush A or B left pending completes on the next one under its token;
# on C the guest stores through MAP_SYNC, reboots, and reads it back.
# pending_token TRACE: the token of the last flush the trace started and
# never saw complete (empty when none).
pending_token() {
  python3 - "$1" <<'PY'
import re, sys
started, done = [], set()
for l in open(sys.argv[1], errors='replace'):
    # call H_SCM_FLUSH DRC TOKEN ... -> STATUS r4=NEW-TOKEN ...
    m = re.match(r'call H_SCM_FLUSH 0x90000000 (0x[0-9a-f]+)[^>]*-> (\S+)(?: r4=(0x[0-9a-f]+))?', l)
    if not m:
        continue
    tok, ret, r4 = m.groups()
    if tok == '0x0':
        if ret.startswith('H_LONG_BUSY') and r4:
            started.append(r4)
    elif not ret.startswith('H_LONG_BUSY'):
        done.add(tok)
pend = [t for t in started if t not in done]
print(pend[-1] if pend else '')
PY
}
# mig_qemu NAME PROFILE DIR [ARGS...]: a QEMU of the migrate scenario in
# the background (its pid in MIGPID), its console on a socket (logged to
# OUT/migrate-NAME.console), its monitor at DIR/mon.sock.
mig_qemu() {
  local name=$1 prof=$2 dir=$3; shift 3
  mkdir -p "$dir"
  mapfile -t margs < <(python3 "$REPO/fdt/cfg2qemu.py" "$MIGCFG" "$dir" \
    "papr-scm=on,papr-scm-profile=$prof,papr-scm-trace=$OUT/migrate-$name.trace")
  # The guest's RAM is the first RAM block (ram_addr 0): QEMU 10.0.2's
  # cpu_physical_memory_sync_dirty_bitmap passes a block-relative start to
  # tlb_reset_dirty_range_all on its word-aligned fast path, which asserts
  # (or resets the wrong TLB range) for a block at any other ram_addr; the
  # NVDIMM backends' sizes (label included) take the slow path.
  timeout 400 "${QEMU[@]}" -object memory-backend-ram,id=mainram,size=2048M -machine memory-backend=mainram \
    "${margs[@]}" -kernel "$KERNEL" -initrd "$OUT/initramfs-fsdax.cpio.gz" \
    -append "console=hvc0 dyndbg=\"file papr_scm.c +p\" MIGRATE_LIVE=1" -display none -nodefaults \
    -chardev "socket,id=con,path=$dir/con.sock,server=on,wait=off,logfile=$OUT/migrate-$name.console" \
    -serial chardev:con -monitor "unix:$dir/mon.sock,server=on,wait=off" "$@" \
    > "$OUT/migrate-$name.qemu.log" 2>&1 &
  MIGPID=$!
}
# migrate_to SOCKET URI: migrates and waits for the end (completed or
# failed: the reply of the last "info migrate" in OUT/hmp-last.log). Over
# TCP with QEMU's return path: without it a precopy source calls the
# migration completed once it has sent everything, however the destination
# fared with the state (a file has no return path).
migrate_to() {
  local rp=on
  case $2 in file:*) rp=off ;; esac
  hmp1 "$1" "migrate_set_capability return-path $rp" >> "$OUT/migrate.hmp.log" 2>&1
  hmp1 "$1" "migrate -d $2" >> "$OUT/migrate.hmp.log" 2>&1
  wait_hmp "$1" "info migrate" "Migration status: \(completed\|failed\|cancelled\)" 180
  cat "$OUT/hmp-last.log" >> "$OUT/migrate.hmp.log"
}
if want migrate && [ -n "$FSDAX_OK" ] && [ "$VMM" = embedded ]; then
  start=$SECONDS
  MIGCFG=$(cfg migrate papr "nvdimm slot=0 size=512M+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e type=spapr-nvdimm" \
    "nvdimm slot=1 size=1G+128K label-size=128K uuid=77777777-8888-4999-aaaa-bbbbbbbbbbbb")
  w=$OUT/migrate.work; rm -rf "$w"
  : > "$OUT/migrate.hmp.log"
  mig_qemu a papr "$w/a"; qa=$MIGPID
  t=0
  until grep -q "=== READY migrate" "$OUT/migrate-a.console" 2>/dev/null; do
    sleep 1; t=$((t + 1)); [ $t -gt 280 ] && break
  done
  if [ $t -gt 280 ]; then
    fail migrate "the guest on A never got to its flushes (see migrate-a.console)"
  else
    pass migrate "A's guest labels both DIMMs, mounts XFS with DAX and flushes without pause"
    # A destination whose papr-scm profile differs: papr-scm refuses its state.
    port=$((port + 1))
    mig_qemu wrong qemu "$w/wrong" -incoming "tcp:127.0.0.1:$port" -global migration.x-return-path=on; qw=$MIGPID
    sleep 2
    migrate_to "$w/a/mon.sock" "tcp:127.0.0.1:$port"
    if grep -q "Migration status: failed" "$OUT/hmp-last.log"; then
      pass migrate "the migration to a mismatching destination fails"
    else
      fail migrate "the migration to a mismatching destination did not fail (see migrate.hmp.log)"
    fi
    wait "$qw"
    if grep -q "papr-scm: .*restore: profile" "$OUT/migrate-wrong.qemu.log"; then
      pass migrate "the destination says why: $(grep -m1 -o 'papr-scm: .*restore.*' "$OUT/migrate-wrong.qemu.log")"
    else
      fail migrate "no papr-scm message from the mismatching destination (see migrate-wrong.qemu.log)"
    fi
    hmp1 "$w/a/mon.sock" "info status" | grep -q "status: running" \
      && pass migrate "A keeps running after the failed migration" || fail migrate "A is not running after the failed migration"
    sleep 3
    # To a file: A stops, B starts from it.
    migrate_to "$w/a/mon.sock" "file:$w/vm.mig"
    if grep -q "Migration status: completed" "$OUT/hmp-last.log"; then
      pass migrate "A migrated to a file ($(( $(stat -c %s "$w/vm.mig" 2>/dev/null || echo 0) >> 20 )) MiB)"
    else
      fail migrate "A's migration to a file did not complete (see migrate.hmp.log)"
    fi
    hmp1 "$w/a/mon.sock" quit > /dev/null 2>&1
    wait "$qa"
    mig_qemu b papr "$w/b" -incoming "file:$w/vm.mig"; qb=$MIGPID
    # B moves on once its guest runs and has started a flush of its own
    # (loading the file takes seconds on a busy host; a B that never ran
    # would hand C only A's flush).
    t=0
    until [ "$(grep -c 'call H_SCM_FLUSH 0x90000000 0x0 [^>]*-> H_LONG_BUSY' "$OUT/migrate-b.trace" 2>/dev/null)" -gt 2 ]; do
      sleep 1; t=$((t + 1)); [ $t -gt 120 ] && break
    done
    echo "---- migrate: B flushing after $t s"
    # B over TCP, live, to C.
    port=$((port + 1))
    mig_qemu c papr "$w/c" -incoming "tcp:127.0.0.1:$port" -global migration.x-return-path=on; qc=$MIGPID
    sleep 2
    migrate_to "$w/b/mon.sock" "tcp:127.0.0.1:$port"
    if grep -q "Migration status: completed" "$OUT/hmp-last.log"; then
      pass migrate "B migrated live over TCP to C ($(grep -o 'downtime: [0-9]* ms' "$OUT/hmp-last.log" | head -1))"
    else
      fail migrate "B's live migration did not complete (see migrate.hmp.log)"
    fi
    hmp1 "$w/b/mon.sock" quit > /dev/null 2>&1
    wait "$qb"
    # The guest learns it has moved.
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"migrated\n")' \
      "$w/c/con.sock" 2>/dev/null
    wait "$qc"
    for hop in "a b" "b c"; do
      set -- $hop
      tok=$(pending_token "$OUT/migrate-$1.trace")
      if [ -z "$tok" ]; then
        fail migrate "$1 left no flush pending at the switch (migrate-$1.trace)"
      elif grep -q "call H_SCM_FLUSH 0x90000000 $tok [^>]*-> H_SUCCESS" "$OUT/migrate-$2.trace"; then
        pass migrate "the flush $1 left pending completes on $2 under its token $tok"
      else
        fail migrate "no completion of $1's flush token $tok in migrate-$2.trace"
      fi
      expect migrate "$OUT/migrate-$2.trace" "^restore " "$2's trace starts from papr-scm's migrated state"
    done
    C=$OUT/migrate-c.console
    expect migrate "$C" "=== the host said: migrated" "the guest on C hears it has moved"
    expect migrate "$C" "fsyncs, 0 failed" "every fsync succeeded across the migrations: $(grep -o '[0-9]* fsyncs, [0-9]* failed' "$C")"
    stored=$(grep -o "MAP_SYNC mapping stored 'PAPR-SCM-MIGRATED-[^']*'" "$C" | grep -o "PAPR-SCM-MIGRATED-[^']*")
    [ -n "$stored" ] && pass migrate "C stores '$stored' through MAP_SYNC after the migration" \
      || fail migrate "nothing stored through MAP_SYNC on C"
    expect migrate "$C" "second boot, the namespaces found from the labels" "C's reboot finds the namespaces from the labels"
    [ -n "$stored" ] && expect migrate "$C" "mapsync: read '$stored'" "the store survives the reboot"
  fi
  kill "$qa" 2>/dev/null
  echo "---- migrate: $((SECONDS - start)) s"
  rm -rf "$w"
fi
if want migrate && [ -n "$FSDAX_OK" ] && [ "$VMM" = bridge ]; then
  c=$(cfg migrate papr "nvdimm size=512M+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e type=spapr-nvdimm")
  w=$OUT/migrate.work; rm -rf "$w"; mkdir -p "$w"
  mapfile -t qargs < <(python3 "$REPO/fdt/cfg2qemu.py" "$c" "$w")
  qargs+=(-kernel "$KERNEL" -initrd "$OUT/initramfs-fsdax.cpio.gz"
          -append "console=hvc0 dyndbg=\"file papr_scm.c +p\" MIGRATE=1" -display none -nodefaults -serial chardev:con)
  bridge=("$BIN" qemu-bridge --vmlinux "$KERNEL" --config "$c" --timeout 280 --backing "$w/nv0.img")
  start=$SECONDS
  port=$((port + 1))
  timeout 400 "${QEMU[@]}" "${qargs[@]}" -chardev "file,id=con,path=$OUT/migrate-src.console" \
    -monitor "unix:$w/mon-a.sock,server=on,wait=off" -gdb "tcp:127.0.0.1:$port" -S >"$OUT/migrate-src.qemu.log" 2>&1 &
  qa=$!
  "${bridge[@]}" --gdb "127.0.0.1:$port" --trace "$OUT/migrate-src.trace" --snapshot-out "$w/scm.snap" \
    2>"$OUT/migrate-src.bridge.log"
  rc=$?
  if [ "$rc" = 0 ] && [ -s "$w/scm.snap" ]; then
    pass migrate "the source bridge paused the guest with a flush pending and wrote its snapshot ($(stat -c %s "$w/scm.snap") bytes)"
    hmp1 "$w/mon-a.sock" "info status" | grep -q "paused" \
      && pass migrate "QEMU A reports the guest paused" || fail migrate "QEMU A's guest is not paused"
    hmp1 "$w/mon-a.sock" "migrate \"exec:cat > $w/vm.mig\"" > "$OUT/migrate-src.hmp.log"
    if wait_hmp "$w/mon-a.sock" "info migrate" "Migration status: completed" 120; then
      pass migrate "QEMU A migrated to a file ($(( $(stat -c %s "$w/vm.mig") >> 20 )) MiB)"
    else
      fail migrate "QEMU A's migration did not complete"; hmp1 "$w/mon-a.sock" "info migrate" >> "$OUT/migrate-src.hmp.log"
    fi
  else
    fail migrate "the source bridge did not stop for the migration: $(tail -1 "$OUT/migrate-src.bridge.log")"
  fi
  hmp1 "$w/mon-a.sock" quit >/dev/null 2>&1
  wait "$qa"
  if [ -s "$w/vm.mig" ]; then
    port=$((port + 1))
    timeout 300 "${QEMU[@]}" "${qargs[@]}" -chardev "file,id=con,path=$OUT/migrate-dst.console" \
      -monitor "unix:$w/mon-b.sock,server=on,wait=off" -gdb "tcp:127.0.0.1:$port" -S \
      -incoming "exec:cat $w/vm.mig" >"$OUT/migrate-dst.qemu.log" 2>&1 &
    qb=$!
    # The bridge attaches once the incoming state is loaded.
    wait_hmp "$w/mon-b.sock" "info status" "status: paused$" 60 \
      && pass migrate "QEMU B loaded the migration, the guest paused" || fail migrate "QEMU B did not load the migration"
    # A destination whose device needs no flush hcalls refuses the snapshot
    # (QEMU: EINVAL both ways) before touching the guest.
    wc=$(cfg migrate-wrong papr "nvdimm size=512M+128K label-size=128K uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")
    "$BIN" qemu-bridge --gdb "127.0.0.1:$port" --vmlinux "$KERNEL" --config "$wc" \
      --snapshot-in "$w/scm.snap" 2>"$OUT/migrate-wrong.bridge.log"
    rc=$?
    if [ "$rc" != 0 ] && grep -q "does not fit.*flush-required is true in the snapshot, false here" "$OUT/migrate-wrong.bridge.log"; then
      pass migrate "a mismatching destination refuses the snapshot: $(sed 's/.*: restore: //' "$OUT/migrate-wrong.bridge.log")"
    else
      fail migrate "the mismatching destination did not refuse the snapshot (rc $rc, see migrate-wrong.bridge.log)"
    fi
    "${bridge[@]}" --gdb "127.0.0.1:$port" --trace "$OUT/migrate-dst.trace" --snapshot-in "$w/scm.snap" \
      2>"$OUT/migrate-dst.bridge.log" || fail migrate "the destination bridge failed: $(tail -1 "$OUT/migrate-dst.bridge.log")"
    wait "$qb"
  fi
  echo "---- migrate: $((SECONDS - start)) s"
  S=$OUT/migrate-src.console D=$OUT/migrate-dst.console
  expect migrate "$S" "migrate: /dev/pmem0" "the source guest labels a namespace"
  reject migrate "$S" "first flush rc" "the source guest is moved with its flush pending"
  tok=$(grep -o 'call H_SCM_FLUSH 0x90000000 0x0 -> H_LONG_BUSY_ORDER_10_MSEC r4=0x[0-9a-f]*' "$OUT/migrate-src.trace" | tail -1 | sed 's/.*r4=//')
  if [ -n "$tok" ] && grep -q "call H_SCM_FLUSH 0x90000000 $tok -> H_SUCCESS" "$OUT/migrate-dst.trace"; then
    pass migrate "the flush started on A completes on B under its token $tok"
  else
    fail migrate "no completion of A's flush token '$tok' in migrate-dst.trace"
  fi
  expect migrate "$D" "migrate: first flush rc=0" "the guest's fsync returns on B"
  expect migrate "$D" "the first namespace is back from its labels" "labels written on A read back on B (papr_scm rebound)"
  expect migrate "$D" "migrate: second namespace" "a new namespace is labelled on B"
  expect migrate "$D" "migrate: second flush rc=0" "a second flush succeeds on B"
  expect migrate "$D" "GUEST DONE" "the guest ends on B"
  rm -rf "$w"
fi

# 17. distro: Debian bookworm's stock kernel, unmodified, with its drivers
# as modules (build-distro.sh: which package, and why libnvdimm, nd_pmem,
# nd_btt and papr_scm are built from its source beside it). The init loads
# papr_scm, nd_pmem, nd_btt, dax, xfs and ext4 with their dependencies in
# modules.dep order. Boot 1: the fsdax journey (ndctl, mkfs.xfs -b size=64k,
# mount -o dax, a MAP_SYNC store), ndctl's health view, a second NVDIMM
# plugged with device_add and removed with device_del, then plugged again
# into the same slot; boot 2 reads the store back.
# deps_before CONSOLE MODULES.DEP: every "=== module M: loaded F" line
# comes after those of the modules F depends on.
deps_before() {
  python3 - "$1" "$2" <<'PY'
import re, sys
con, dep = open(sys.argv[1], errors='replace').read(), {}
for line in open(sys.argv[2]):
    f, rest = line.split(':', 1)
    dep[f] = rest.split()
order = re.findall(r'^=== module \S+: loaded (\S+)', con, re.M)
if not order:
    print('no module loaded'); sys.exit(1)
for i, f in enumerate(order):
    late = [d for d in dep.get(f, []) if d not in order[:i]]
    if late:
        print(f'{f} loaded before {" ".join(late)}'); sys.exit(1)
print(f'{len(order)} modules')
PY
}
if want distro; then
  t0=$SECONDS
  "$HERE/build-distro.sh" "$CACHE" > "$OUT/distro-build.log" 2>&1
  rc=$?
  D=$CACHE/distro/out
  if [ "$rc" = 77 ]; then
    echo "SKIP [distro]: $(tail -1 "$OUT/distro-build.log")"
  elif [ "$rc" != 0 ]; then
    fail distro "build-distro.sh failed (see distro-build.log)"
  elif [ -z "$FSDAX_OK" ]; then
    echo "SKIP [distro]: the guest userspace did not build (see $OUT/userspace.log)"
  else
    DV=$(cat "$D/VERSION")
    echo "---- distro: kernel $DV ready in $((SECONDS - t0)) s ($(grep -o 'downloaded in [0-9]* s' "$OUT/distro-build.log" || echo cached))"
    rm -rf "$OUT/initramfs-distro" && cp -a "$OUT/initramfs-fsdax" "$OUT/initramfs-distro"
    rm -rf "$OUT/initramfs-distro/boot"
    cp -a "$D/rootfs/." "$OUT/initramfs-distro/"
    (cd "$OUT/initramfs-distro" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$OUT/initramfs-distro.cpio.gz")
    w=$OUT/distro.work; rm -rf "$w"; mkdir -p "$w"
    DNV="nvdimm size=1G+128K label-size=128K uuid=55555555-6666-4777-8888-999999999999"
    DHOT="slot=1 size=1G+128K label-size=128K uuid=66666666-7777-4888-9999-aaaaaaaaaaaa"
    c=$(cfg distro papr "$DNV" "plug $DHOT")
    # An oops ends the boot at once (panic, no reboot) instead of at the time-out.
    dcmd="papr_scm.dyndbg=+p oops=panic panic=-1 NDLIST=1 FSDAX=xfs"
    if [ "$VMM" = embedded ]; then
      python3 "$REPO/fdt/cfg2qemu.py" "$c" "$w" > /dev/null
      device_del_hmp "$w"
      KERNEL_BOOT=$D/vmlinux INITRD=$OUT/initramfs-distro.cpio.gz QEMU_EXTRA=-no-reboot WORKDIR=$w \
        boot distro-1 "$c" "$dcmd HOTPLUG=1 UNPLUG=1"
      DRIVE=()
      C1=$OUT/distro-1.console T1=$OUT/distro-1.trace H1=$OUT/distro-1.hmp.log
      expect distro "$C1" "=== GUEST UP: $DV" "Debian's $DV boots"
      if r=$(deps_before "$C1" "$D/rootfs/lib/modules/$DV/modules.dep"); then
        pass distro "the init loads the package's modules in modules.dep order ($r)"
      else
        fail distro "module order: $r"
      fi
      for m in papr_scm nd_pmem nd_btt xfs ext4; do
        expect distro "$C1" "=== module $m: loaded" "$m loads"
      done
      expect distro "$C1" "=== module dax: built in" "dax is built into the package's kernel"
      expect distro "$C1" "bound drc 0x90000000 to 0x80000000" "papr_scm (a module) binds drc 0x90000000 through papr-scm"
      reject distro "$C1" "Failed to query performance stats" "papr-scm answers PERFORMANCE_STATS"
      expect distro "$C1" "create-namespace rc=0" "ndctl creates an fsdax namespace"
      expect distro "$C1" "mkfs rc=0" "mkfs.xfs -b size=64k"
      expect distro "$C1" "^/dev/pmem0 /mnt xfs .*dax" "XFS mounts with -o dax ($(grep -o '^/dev/pmem0 /mnt xfs [^ ]*' "$C1" | head -1))"
      stored=$(grep -o "MAP_SYNC mapping stored 'PAPR-SCM-FSDAX-[^']*'" "$C1" | grep -o "PAPR-SCM-FSDAX-[^']*")
      [ -n "$stored" ] && pass distro "boot 1 stores '$stored' through MAP_SYNC" || fail distro "boot 1 stored nothing through MAP_SYNC"
      expect distro "$C1" '"health_state":"ok"' "ndctl list -DH: papr-scm's health (ok)"
      expect distro "$C1" '"shutdown_count":0' "ndctl list -DH: the dirty-shutdown count (0)"
      expect distro "$C1" "=== /dev/pmem1 appeared" "device_add: the second NVDIMM's namespace is /dev/pmem1"
      device_del_checks distro "$C1" "$T1" "$H1"
    else
      # The bridge finds papr_scm's hcalls in a vmlinux, not in a module,
      # and Debian's QEMU 7.2 refuses the 6.12 kernel's pmem flush
      # (phwsync, dcbstps): QEMU answers one boot that only probes.
      KERNEL_BOOT=$D/vmlinux INITRD=$OUT/initramfs-distro.cpio.gz QEMU_EXTRA=-no-reboot WORKDIR=$w \
        boot distro-1 "$c" "papr_scm.dyndbg=+p oops=panic panic=-1 NDLIST=1" qemu
      C1=$OUT/distro-1.console
      expect distro "$C1" "=== GUEST UP: $DV" "Debian's $DV boots"
      if r=$(deps_before "$C1" "$D/rootfs/lib/modules/$DV/modules.dep"); then
        pass distro "the init loads the package's modules in modules.dep order ($r)"
      else
        fail distro "module order: $r"
      fi
      expect distro "$C1" "bound drc 0x90000000 to 0x80000000" "papr_scm (a module) binds drc 0x90000000 (QEMU answering)"
      expect distro "$C1" '"dev":"nmem0"' "ndctl list -DH lists nmem0"
      echo "SKIP [distro]: the fsdax journey, device_add and device_del need VMM=embedded"
    fi
    if [ "$VMM" = embedded ]; then
      size=$(stat -c %s "$w/nv0.img")
      [ -n "$stored" ] && in_file "$w/nv0.img" "$stored" 0 $((size - 131072)) \
        && pass distro "the string is in the backing file's data region" \
        || fail distro "the string is not in the backing file's data region"
      c2=$(cfg distro-2 papr "$DNV")
      KERNEL_BOOT=$D/vmlinux INITRD=$OUT/initramfs-distro.cpio.gz QEMU_EXTRA=-no-reboot WORKDIR=$w \
        boot distro-2 "$c2" "$dcmd"
      C2=$OUT/distro-2.console
      expect distro "$C2" "/dev/pmem0 found from the labels" "boot 2 finds the namespace from the labels"
      [ -n "$stored" ] && expect distro "$C2" "mapsync: read '$stored'" "boot 2 reads the string back through DAX"
    fi
    rm -rf "$w"
  fi
fi

# Each bridged trace replays against papr-scm itself (a reference boot's
# record of QEMU's answers is not a papr-scm trace).
for t in "$OUT"/*.trace; do
  [ -e "$t" ] || continue
  case "$t" in *-ref.trace) continue ;; esac
  if "$BIN" replay "$t" > "$t.replay" 2>&1; then
    pass "$(basename "$t" .trace)" "its trace replays ($(tail -1 "$t.replay" | sed 's/.*: //'))"
  else
    fail "$(basename "$t" .trace)" "its trace does not replay (see ${t##*/}.replay)"
  fi
done

echo "real-guest: $passes passed, $failures failed"
[ "$failures" = 0 ]
