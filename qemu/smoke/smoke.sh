#!/usr/bin/env bash
# qemu/smoke/smoke.sh QEMU: the smoke test of a qemu/build.sh binary.
#
# Boots fw-smoke.S (no kernel) with one NVDIMM whose label starts with
# "PAPR-SCM" and reads the registers it leaves:
#   TCG                   dcbfps, dcbstps, phwsync, plwsync run
#   papr-scm=on           READ_METADATA returns the label's first 8 bytes,
#                         HEALTH the PAPR mask
#   papr-scm=on,qemu      every register equals papr-scm=off
#   papr-scm=off          QEMU's own handlers (the reference)
#   label-size=4G         QEMU itself boots it; papr-scm=on stops with its error
#   papr-scm-profile=pap  refused with the property's error
#   papr-scm-health       H_SCM_HEALTH answers the bits injected before
#                         boot, the trace has the inject line; bits outside
#                         PAPR's and a malformed value stop QEMU at start
#   device_add/device_del fw-hotplug.S acquires the hot-plugged NVDIMM and
#                         releases it on device_del; the DIMM leaves and its
#                         backend can be deleted (papr-scm=off refuses);
#                         the trace has the plugged file's label
# Prints one line per check and exits 1 if one fails, 77 without the tools
# or, after the papr-scm=off checks, for a binary built without papr-scm.
set -euo pipefail
q=${1:?usage: smoke.sh QEMU-BINARY}
here=$(cd "$(dirname "$0")" && pwd)
command -v powerpc64-linux-gnu-as >/dev/null || { echo "SKIP: powerpc64-linux-gnu-as missing (binutils-powerpc64-linux-gnu)"; exit 77; }
t=$(mktemp -d); trap "${KEEP:+:} rm -rf $t" EXIT
for fw in fw-smoke fw-hotplug; do
  powerpc64-linux-gnu-as -o "$t/$fw.o" "$here/$fw.S"
  powerpc64-linux-gnu-objcopy -O binary "$t/$fw.o" "$t/$fw.bin"
done

# 256 MiB of data and a label (128 KiB unless given): the label is the
# file's last bytes (sparse files).
data=$((256 * 1024 * 1024))
img() {
  rm -f "$t/$1.img"; truncate -s $(($data + $2)) "$t/$1.img"
  printf 'PAPR-SCM' | dd of="$t/$1.img" bs=1 seek=$data conv=notrunc status=none
  echo "$t/$1.img"
}
# run NAME MACHINE-OPTS [LABEL-SIZE]: boot, dump GPR19..24 and r30, quit.
run() {
  local name=$1 machine=$2 label=${3:-$((128 * 1024))}
  (sleep "${WAIT:-3}"; echo 'info registers'; sleep 1; echo q) | timeout 60 "$q" \
    -machine "pseries,nvdimm=on$machine" -m 1G,slots=2,maxmem=8G -bios "$t/fw-smoke.bin" \
    -nodefaults -display none -serial null -monitor stdio \
    -object "memory-backend-file,id=mem0,mem-path=$(img "$name" "$label"),size=$(($data + $label)),share=on" \
    -device "nvdimm,id=nv0,memdev=mem0,label-size=$label,uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e" \
    >"$t/$name.out" 2>&1 || true
  regs "$name"
}
# The registers of the last `info registers` (the monitor ends its lines
# with CR LF; GPRnn lines hold four registers, the first being rnn).
regs() {
  tr -d '\r' <"$t/$1.out" | awk '/^GPR(12|16|20|24|28)/ {
      for (i = 2; i <= 5; i++) printf "r%d=%s\n", substr($1, 4) + i - 2, $i }' |
    grep -E '^r(1[4-9]|2[0-5]|30)=' >"$t/$1.regs" || true
}
reg() { sed -n "s/^r$2=//p" "$t/$1.regs" | tail -1; }
# hotplug NAME MACHINE-OPTS: fw-hotplug.S, device_add, device_del.
hotplug() {
  local name=$1 machine=$2 label=$((128 * 1024))
  (sleep 2
   echo "object_add memory-backend-file,id=mem1,mem-path=$(img "$name" $label),size=$(($data + $label)),share=on"
   echo "device_add nvdimm,id=nv1,memdev=mem1,label-size=$label,uuid=75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e"
   sleep "${WAIT:-3}"; echo 'device_del nv1'; sleep "${WAIT:-3}"; echo 'info registers'
   echo 'info memory-devices'; echo 'object_del mem1'; echo 'info memdev'; sleep 1; echo q) |
    timeout 60 "$q" -machine "pseries,nvdimm=on$machine" -m 1G,slots=2,maxmem=8G \
      -bios "$t/fw-hotplug.bin" -nodefaults -display none -serial null -monitor stdio \
      >"$t/$name.out" 2>&1 || true
  regs "$name"
}
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
# A binary built without the library refuses papr-scm=on: its checks skip.
nolib=no
probe=$(timeout 20 "$q" -machine pseries,papr-scm=on -nodefaults -display none \
          -bios "$t/no-such-firmware" 2>&1 </dev/null || true)
case $probe in *'built without the papr-scm library'*) nolib=yes ;; esac
oncheck() {
  if [ $nolib = yes ]; then echo "skip $1"; else check "$@"; fi
}
# refused CHECK NAME MACHINE KEY PATTERN WHAT: QEMU with MACHINE stops at
# start (no registers) with an error matching PATTERN; the first line
# naming KEY goes into the check's description.
refused() {
  local chk=$1 name=$2 machine=$3 key=$4 pattern=$5 what=$6 msg
  run "$name" "$machine"
  msg=$(grep -m1 -- "$key" "$t/$name.out" || true)
  $chk "$what: $msg" "[ ! -s \"\$t/$name.regs\" ] && grep -q -- \"$pattern\" \"\$t/$name.out\""
}

label=$(printf 'PAPR-SCM' | od -An -tx1 | tr -d ' \n')
run off ""
check "TCG: dcbfps/dcbstps/phwsync/plwsync ran (r19=1, no program check)" \
  '[ "$(reg off 19)" = 0000000000000001 ]'
run papr ",papr-scm=on"
oncheck "papr-scm=on: H_SCM_READ_METADATA = H_SUCCESS, data = the label's first 8 bytes ($label)" \
  '[ "$(reg papr 20)" = 0000000000000000 ] && [ "$(reg papr 21)" = "$label" ]'
oncheck "papr-scm=on: H_SCM_HEALTH = H_SUCCESS, bitmap 0, PAPR mask $(reg papr 24)" \
  '[ "$(reg papr 22)" = 0000000000000000 ] && [ "$(reg papr 23)" = 0000000000000000 ] && [ "$(reg papr 24)" != 8000000000000000 ]'
oncheck "papr-scm=on: the firmware reached its end" '[ "$(reg papr 30)" = 00000000600d0000 ]'

run qemu ",papr-scm=on,papr-scm-profile=qemu"
check "papr-scm=off: QEMU's own handlers: H_SUCCESS, the label, mask PPC_BIT(0)" \
  '[ "$(reg off 20)" = 0000000000000000 ] && [ "$(reg off 21)" = "$label" ] && [ "$(reg off 24)" = 8000000000000000 ]'
oncheck "papr-scm-profile=qemu: r19-r24 and r30 equal papr-scm=off" \
  '[ -s "$t/qemu.regs" ] && cmp -s "$t/qemu.regs" "$t/off.regs"'

# A 4 GiB label: QEMU takes it (and writes ibm,metadata-size cut to 32 bits),
# papr-scm refuses it.
big=$((4 * 1024 * 1024 * 1024))
run badoff "" $big
check "label-size=4G, papr-scm=off: QEMU boots it" '[ "$(reg badoff 30)" = 00000000600d0000 ]'
run bad ",papr-scm=on" $big
msg=$(grep -m1 'papr-scm' "$t/bad.out" || true)
oncheck "label-size=4G, papr-scm=on: QEMU stops with papr-scm's error: $msg" \
  '[ ! -s "$t/bad.regs" ] && grep -q "papr-scm: .*label-size" "$t/bad.out"'
refused check typo ",papr-scm=on,papr-scm-profile=pap" papr-scm-profile "neither papr nor qemu" \
  "papr-scm-profile=pap: refused"
# Health injected before boot: UNARMED | SHUTDOWN_DIRTY.
run health ",papr-scm=on,papr-scm-health=0:0xc000000000000000,papr-scm-trace=$t/health.trace"
oncheck "papr-scm-health=0:0xc000000000000000: H_SCM_HEALTH = H_SUCCESS, bitmap $(reg health 23)" \
  '[ "$(reg health 22)" = 0000000000000000 ] && [ "$(reg health 23)" = c000000000000000 ] && [ "$(reg health 30)" = 00000000600d0000 ]'
oncheck "papr-scm-health: the trace holds the injection" \
  'grep -qx "inject slot=0 health=0xc000000000000000" "$t/health.trace"'
refused oncheck badhealth ",papr-scm=on,papr-scm-health=0:0x1" papr-scm-health \
  "papr-scm: papr-scm-health: 0:0x1: .*health bits 0 to 10" "papr-scm-health=0:0x1: QEMU stops at start"
refused oncheck badsyntax ",papr-scm=on,papr-scm-health=0:0x40,,1:0x40" papr-scm-health \
  "papr-scm-health: .* are not a 64-bit number" "papr-scm-health=0:0x40,1:0x40 (',' for '/'): refused"
hotplug hp ",papr-scm=on,papr-scm-trace=$t/hp.trace"
oncheck "device_add, papr-scm=on: the firmware acquired the connector (event, sensor 2, usable, unisolated)" \
  '[ "$(reg hp 14)" = 0000000000000000 ] && [ "$(reg hp 15)" = 0000000000000002 ] && [ "$(reg hp 16)" = 0000000000000000 ] && [ "$(reg hp 17)" = 0000000000000000 ]'
oncheck "device_add, papr-scm=on: ibm,configure-connector completed in $(n=$(reg hp 18); echo $((16#${n:-0}))) calls; READ_METADATA gives the label" \
  '[ "$(reg hp 19)" = 0000000000000000 ] && [ "$(reg hp 20)" = 0000000000000000 ] && [ "$(reg hp 21)" = "$label" ]'
oncheck "device_del, papr-scm=on: remove event, isolate and unusable answered 0, the firmware reached its end" \
  '[ "$(reg hp 22)" = 0000000000000000 ] && [ "$(reg hp 23)" = 0000000000000000 ] && [ "$(reg hp 24)" = 0000000000000000 ] && [ "$(reg hp 30)" = 00000000600d0000 ]'
oncheck "device_add, papr-scm=on: the trace records the label the plugged file holds, after the plug line" \
  'grep -A1 "^plug slot=0 " "$t/hp.trace" | grep -q "^label slot=0 offset=0x0 $label"'
oncheck "device_del, papr-scm=on: the DIMM left and object_del freed its backend" \
  '! grep -aq "Memory device" "$t/hp.out" && ! grep -aq "memory backend: mem1" "$t/hp.out" && grep -aq "memory backend: ppc_spapr.ram" "$t/hp.out"'
hotplug hpoff ""
check "device_del, papr-scm=off: refused as before" \
  'grep -aq "nvdimm device hot unplug is not supported yet" "$t/hpoff.out" && grep -aq "Memory device" "$t/hpoff.out"'
[ $fails = 0 ] || exit 1
if [ $nolib = yes ]; then
  echo "SKIP: $q was built without the papr-scm library: its papr-scm=on checks did not run"
  exit 77
fi
