#!/bin/busybox sh
# The guest's /init for tests/real-guest (after ../shared/guest-kit/init.sh).
# Kernel command-line switches: MKNS=1 creates a namespace and flushes,
# UNBIND=1 unbinds and rebinds papr_scm, REBOOT=1 creates a namespace and
# reboots once without unbinding, KEXEC=1 does the same with kexec instead of
# a reboot, MIGRATE=1 flushes across a live migration. HOTPLUG=1 waits for a second NVDIMM plugged
# at run time (drc 0x90000001) and creates a namespace on it; UNPLUG=1 then
# waits for it to be unplugged and plugged again. Each wait is announced with
# a "=== READY <what>" line for the host to act on. MIGRATE_LIVE=1 flushes
# until the host has migrated the guest live, then stores and reboots.
# PAPR_SCM_BENCH=prep|run serves qemu/bench/guest.sh (the timing boots).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs none /sys/kernel/debug 2>/dev/null
# A kernel with its drivers as modules (the distro scenario, build-distro.sh)
# loads each module /etc/modules names after those modules.dep and
# modules.softdep ("pre:", by name or alias) name for it, with the options
# the command line gives it (MODULE.PARAM=..., as modprobe does).
MD=/lib/modules/$(uname -r)
LOADED=" "
modfile() { # NAME: its file in modules.dep (- and _ are one)
  sed -n 's/:.*//p' $MD/modules.dep | while read -r f; do
    b=${f##*/}; b=${b%.ko}
    [ "$(echo $b | tr - _)" = "$1" ] && echo $f && return
  done
}
modload() { # NAME
  local m f d o
  m=$(echo $1 | tr - _)
  case "$LOADED" in *" $m "*) return 0;; esac
  LOADED="$LOADED$m "
  if grep -q "/$m.ko$" $MD/modules.builtin 2>/dev/null || grep -q "/$(echo $m | tr _ -).ko$" $MD/modules.builtin 2>/dev/null; then
    echo "=== module $m: built in"; return 0
  fi
  f=$(modfile $m)
  if [ -z "$f" ]; then # an alias: every module that provides it
    for d in $(sed -n "s/^alias $1 //p; s/^alias $m //p" $MD/modules.alias); do modload $d; done
    return 0
  fi
  for d in $(sed -n "s/^softdep $m pre: *//p" $MD/modules.softdep | sed 's/post:.*//'); do modload $d; done
  for d in $(sed -n "s#^$f: *##p" $MD/modules.dep); do d=${d##*/}; modload ${d%.ko}; done
  o=$(tr ' ' '\n' < /proc/cmdline | sed -n "s/^$m\.\([A-Za-z0-9_]*=\)/\1/p" | tr -d '"' | tr '\n' ' ')
  insmod $MD/$f $o && echo "=== module $m: loaded $f${o:+ ($o)}" || echo "=== module $m: insmod $f failed"
}
if [ -f /etc/modules ] && [ -f $MD/modules.dep ]; then
  for m in $(cat /etc/modules); do modload $m; done
fi
# settle: libnvdimm probes regions and namespaces asynchronously; reading a
# bus's wait_probe returns once that is done (ndctl_bus_wait_probe), so the
# checks that follow ("/dev/pmem0 from the labels?", a namespace seed)
# cannot race the probe.
settle() { for w in /sys/bus/nd/devices/ndbus*/wait_probe; do [ -e "$w" ] && cat "$w" > /dev/null; done; }
settle
echo "=== GUEST UP: $(uname -r)"
echo "=== cmdline: $(cat /proc/cmdline)"
if [ -n "$PAPR_SCM_BENCH" ]; then
  # qemu/bench/guest.sh: PAPR_SCM_BENCH=prep labels every DIMM and gives
  # each region a raw namespace; PAPR_SCM_BENCH=run times, with kernel
  # timestamps (/dev/kmsg markers), papr_scm's probe of every device up to
  # the last /dev/pmemN, then `ndctl read-labels` of nmem0's label area.
  mark() { echo "papr-scm-bench: $1" > /dev/kmsg; }
  if [ "$PAPR_SCM_BENCH" = prep ]; then
    ndctl disable-region all > /dev/null
    ndctl init-labels all -f
    ndctl enable-region all > /dev/null
    for r in /sys/bus/nd/devices/region*; do
      ndctl create-namespace -r ${r##*/} -m raw -f > /dev/null; echo "=== bench: namespace on ${r##*/} rc=$?"
    done
  else
    DEVS=
    for d in /sys/bus/platform/drivers/papr_scm/*; do [ -L "$d" ] && DEVS="$DEVS ${d##*/}"; done
    N=0
    for d in $DEVS; do echo "$d" > /sys/bus/platform/drivers/papr_scm/unbind; N=$((N + 1)); done
    while [ -n "$(ls /dev/pmem* 2>/dev/null)" ]; do :; done
    mark "probe $N"
    for d in $DEVS; do echo "$d" > /sys/bus/platform/drivers/papr_scm/bind; done
    while [ "$(ls /dev/pmem* 2>/dev/null | wc -l)" -lt "$N" ]; do :; done
    mark "pmem $N"
    settle
    mark "read-labels"
    ndctl read-labels nmem0 -o /tmp/labels > /dev/null 2>&1; rc=$?
    mark "read-labels done rc=$rc size=$(wc -c < /tmp/labels)"
  fi
  dmesg | grep papr-scm-bench
  echo "=== GUEST DONE"
  poweroff -f
fi
hx() { hexdump -v -e '1/1 "%02x "' "$1"; echo; }
dump_dt() {
  for f in $(find "$1" -type f | sort); do
    case "$f" in */name|*/phandle|*/linux,phandle|*/slof,from-fdt) continue;; esac
    printf '%s: ' "${f#/proc/device-tree}"; hx "$f"
  done
}
echo "=== DT /ibm,persistent-memory"; dump_dt /proc/device-tree/ibm,persistent-memory
echo "=== DT /ibm,dynamic-reconfiguration-memory"; dump_dt /proc/device-tree/ibm,dynamic-reconfiguration-memory
echo "=== DT root drc"
for p in ibm,drc-indexes ibm,drc-names ibm,drc-types ibm,drc-power-domains ibm,drc-info; do
  [ -e /proc/device-tree/$p ] && { printf '%s: ' $p; hx /proc/device-tree/$p; } || echo "$p: (absent)"
done
echo "=== DT rtas"
for p in ibm,lrdr-capacity ibm,associativity-reference-points ibm,max-associativity-domains ibm,current-associativity-domains ibm,numa-lookup-index-table ibm,numa-distance-table; do
  [ -e /proc/device-tree/rtas/$p ] && { printf '%s: ' $p; hx /proc/device-tree/rtas/$p; } || echo "$p: (absent)"
done
echo "=== DT memory nodes"; for d in /proc/device-tree/memory@*; do dump_dt $d; done
echo "=== /proc/iomem"; cat /proc/iomem
echo "=== dmesg (papr_scm/nd/pmem/nvdimm/drmem)"
dmesg | grep -i -E 'papr|scm|nvdimm|pmem|nd_|nd[0-9]|region|btt|namespace|drmem|numa|hotplug|lmb'
echo "=== /sys/bus/nd/devices"; ls -l /sys/bus/nd/devices/ 2>&1
for d in /sys/bus/nd/devices/*; do
  echo "--- $d"
  for a in devtype nstype size available_size align mappings numa_node target_node dimm_id flags security state uuid mode holder namespace_seed btt_seed persistence_domain deep_flush resource read_only; do
    [ -r $d/$a ] && printf '  %s = %s\n' $a "$(cat $d/$a 2>&1 | tr '\n' ' ')"
  done
  [ -d $d/papr ] && for a in $d/papr/*; do printf '  papr/%s = %s\n' ${a##*/} "$(cat $a 2>&1 | tr '\n' ' ')"; done
done
mkns() {
  echo "=== create pmem namespace via sysfs"
  R=$(ls -d /sys/bus/nd/devices/region* | head -1)
  NS=$(cat $R/namespace_seed); echo "region=$R seed=$NS available=$(cat $R/available_size)"
  echo 8d7b2c6a-5a5e-4a4b-9c3d-2e1f0a9b8c7d > /sys/bus/nd/devices/$NS/uuid
  echo "set uuid rc=$?"
  cat $R/available_size > /sys/bus/nd/devices/$NS/size; echo "set size rc=$?"
  echo $NS > /sys/bus/nd/drivers/nd_pmem/bind 2>&1; echo "bind rc=$?"
  sleep 1; ls -l /dev/pmem* 2>&1; cat /proc/partitions
  dmesg | tail -20
  if [ -b /dev/pmem0 ]; then
    echo "=== fsync-only (count=0, conv=fsync) on /dev/pmem0 -> REQ_PREFLUSH -> nvdimm_flush"
    dd if=/dev/zero of=/dev/pmem0 bs=512 count=0 conv=fsync 2>&1; echo "dd rc=$?"
    echo "=== read first 64 bytes of /dev/pmem0"
    dd if=/dev/pmem0 bs=64 count=1 2>/dev/null | hexdump -C
    echo "=== unbind namespace"
    echo $NS > /sys/bus/nd/drivers/nd_pmem/unbind; echo "unbind rc=$?"
  fi
}
[ -n "$MKNS" ] && mkns
if [ -n "$UNBIND" ]; then
  # Unbind and rebind papr_scm: the driver's remove path (H_SCM_UNBIND_ALL)
  # and a fresh probe (H_SCM_BIND_MEM).
  for d in /sys/bus/platform/drivers/papr_scm/*; do [ -L "$d" ] && DEV=${d##*/}; done
  echo "=== rebind papr_scm device $DEV"
  echo "$DEV" > /sys/bus/platform/drivers/papr_scm/unbind; echo "unbind rc=$?"
  sleep 1
  echo "$DEV" > /sys/bus/platform/drivers/papr_scm/bind; echo "bind rc=$?"
  sleep 1
  ls /sys/bus/nd/devices/
fi
if [ -n "$REBOOT$KEXEC" ]; then
  # The second boot recognises itself by the namespace the first one wrote
  # into the label area: libnvdimm brings /dev/pmem0 back by itself. KEXEC
  # starts the second kernel by kexec_file_load instead of a reboot: no
  # reset, so the first kernel's binding is still there for it to find.
  if [ -b /dev/pmem0 ]; then
    echo "=== second ${KEXEC:+kernel}${REBOOT:+boot}: /dev/pmem0 found from the labels"
  else
    MKNS=1 mkns
    if [ -n "$KEXEC" ]; then
      echo "=== first kernel: kexec without unbinding"
      kexec -s -l /boot/vmlinux --initrd=/boot/initrd --command-line="$(cat /proc/cmdline)"
      echo "kexec load rc=$?"
      kexec -e
      echo "=== kexec -e returned rc=$?"
    else
      echo "=== first boot: rebooting without unbinding"
      reboot -f
      sleep 10
    fi
  fi
fi
# wait_for CMD...: up to 200 s for the command to succeed.
wait_for() {
  i=0
  while ! "$@" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "=== TIMEOUT waiting for: $*"; return 1; }
    sleep 1
  done
}
drc1() { # papr_scm is bound to the device of drc 0x90000001
  ls /sys/bus/platform/drivers/papr_scm/ | grep -q 'pmemory@90000001'
}
no_drc1() { ! drc1; }
# papr_scm's probe of drc 0x90000001 is through its bind: the driver's
# sysfs link comes before probe runs (really_probe), the nd bus papr_scm
# registers for the device after drc_pmem_bind.
probed1() {
  drc1 || return 1
  for b in /sys/bus/nd/devices/ndbus*; do grep -q 90000001 $b/provider 2>/dev/null && return 0; done
  return 1
}
region1() { # its region: on the nd bus papr_scm registered for it
  for b in /sys/bus/nd/devices/ndbus*; do
    grep -q 90000001 $b/provider 2>/dev/null && { ls -d $b/region* 2>/dev/null | head -1; return; }
  done
}
has_region1() { [ -n "$(region1)" ]; }
mkns1() {
  # libnvdimm registers the region asynchronously after the probe.
  wait_for has_region1
  settle
  R=$(region1); [ -n "$R" ] || { echo "=== no region for drc 0x90000001"; return 1; }
  NS=$(cat $R/namespace_seed); echo "=== namespace on $R: $NS available=$(cat $R/available_size)"
  echo 1b2f7c3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c > /sys/bus/nd/devices/$NS/uuid; echo "set uuid rc=$?"
  cat $R/available_size > /sys/bus/nd/devices/$NS/size; echo "set size rc=$?"
  echo $NS > /sys/bus/nd/drivers/nd_pmem/bind 2>&1; echo "bind rc=$?"
  wait_for [ -b /dev/pmem1 ] && echo "=== /dev/pmem1 appeared" && ls -l /dev/pmem1
  dd if=/dev/pmem1 bs=64 count=1 2>/dev/null | hexdump -C | head -2
}
if [ -n "$PERSIST" ]; then
  # One boot writes a namespace and a string; the next, on the same backing
  # file, finds the namespace from the labels and reads the string.
  if [ -b /dev/pmem0 ]; then
    echo "=== found /dev/pmem0 from the labels"
    echo "=== read $(dd if=/dev/pmem0 bs=64 count=1 2>/dev/null | tr -d '\000')"
  else
    R=$(ls -d /sys/bus/nd/devices/region* | head -1)
    NS=$(cat $R/namespace_seed)
    echo 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f > /sys/bus/nd/devices/$NS/uuid
    cat $R/available_size > /sys/bus/nd/devices/$NS/size
    echo $NS > /sys/bus/nd/drivers/nd_pmem/bind
    wait_for [ -b /dev/pmem0 ]
    printf 'PAPR-SCM-PERSIST %s' "$(date +%s)" | dd of=/dev/pmem0 bs=64 count=1 conv=fsync,sync 2>/dev/null
    echo "=== wrote $(dd if=/dev/pmem0 bs=64 count=1 2>/dev/null | tr -d '\000')"
  fi
fi
if [ -n "$FSDAX" ]; then
  # The fsdax recipe (fsdax-journey.md §4), FSDAX=xfs|ext4. Boot 1 (no
  # namespace yet) labels the DIMM, makes an fsdax namespace and a DAX
  # filesystem and stores a string through MAP_SYNC; boot 2 finds the
  # namespace from the labels, mounts with DAX and reads the string.
  mkdir -p /mnt /run /tmp
  mnt() {
    case $FSDAX in
      ext4) mount -t ext4 -o dax /dev/pmem0 /mnt ;;
      *) mount -t xfs -o dax /dev/pmem0 /mnt ;;
    esac
    echo "mount -o dax rc=$?"
    dmesg | grep -i -E 'dax' | tail -3
    # Linux 6.1 says "DAX enabled" in dmesg; later kernels only in the options.
    grep "^/dev/pmem0 " /proc/mounts
  }
  if [ ! -b /dev/pmem0 ]; then
    echo "=== fsdax boot 1 ($FSDAX)"
    ndctl disable-region all
    ndctl init-labels all -f
    ndctl enable-region region0
    ndctl create-namespace -e namespace0.0 -s 512M -f -m fsdax
    echo "create-namespace rc=$?"
    wait_for [ -b /dev/pmem0 ]
    case $FSDAX in
      ext4) /sbin/mke2fs -q -t ext4 -b 65536 -F /dev/pmem0 ;;
      *) mkfs.xfs -q -b size=64k -s size=512 -f /dev/pmem0 ;;
    esac
    echo "mkfs rc=$?"
    mnt
    mapsync /mnt/data write "PAPR-SCM-FSDAX-$FSDAX-$(date +%s)"
    echo "mapsync rc=$?"
    if [ -n "$FSYNC" ]; then
      echo "fsync through the filesystem" > /mnt/log && sync /mnt/log
      dd if=/dev/zero of=/mnt/f bs=4096 count=16 conv=fsync 2>/dev/null; echo "fsync rc=$?"
    fi
    umount /mnt; echo "umount rc=$?"
  else
    echo "=== fsdax boot 2 ($FSDAX): /dev/pmem0 found from the labels"
    ndctl list -N 2>/dev/null | head -20
    mnt
    mapsync /mnt/data read
    umount /mnt
  fi
fi
# NDLIST=1: ndctl's view of the DIMMs and their health (the papr family:
# PDSM health, papr/flags, the dirty-shutdown count), after the fsdax part
# and again after a hot-plug.
ndlist() { [ -n "$NDLIST" ] && { echo "=== ndctl list -DH ($1)"; ndctl list -DH; echo "=== ndctl list rc=$?"; }; }
ndlist boot
if [ -n "$WAIT_CONSOLE" ]; then
  # Stay up (another guest uses the same backing file) until the host says.
  echo "=== waiting for the host"
  read -t 240 line < /dev/console
  echo "=== the host said: $line"
fi
if [ -n "$HOTPLUG" ]; then
  echo "=== READY plug"
  wait_for probed1 && echo "=== drc 0x90000001 probed"
  dmesg | grep -E 'bound drc|pseries-pmem|dlpar'
  mkns1
  ndlist plugged
  if [ -n "$UNPLUG" ]; then
    echo "=== READY unplug"
    wait_for no_drc1 && echo "=== drc 0x90000001 removed"
    wait_for sh -c '! [ -b /dev/pmem1 ]' && echo "=== /dev/pmem1 is gone"
    dmesg | grep -E 'pseries-pmem|dlpar' | tail -5
    # The DRC is released after the node is detached (pmem_drc_remove_node).
    sleep 2
    echo "=== READY replug"
    wait_for probed1 && echo "=== drc 0x90000001 probed again"
    dmesg | grep -E 'bound drc|pseries-pmem|dlpar' | tail -5
  fi
fi
if [ -n "$MIGRATE" ]; then
  # A flush held across a live migration (run.sh migrate): a namespace on
  # half the region (its labels), then an fsync whose H_SCM_FLUSH is pending
  # when the host pauses and moves the guest. On the destination the flush
  # completes under its old token; papr_scm is unbound and bound again, so
  # the namespace must come back from the labels (H_SCM_READ_METADATA);
  # then a second namespace is labelled and flushed.
  R=$(ls -d /sys/bus/nd/devices/region* | head -1)
  NS=$(cat $R/namespace_seed)
  echo 3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f > /sys/bus/nd/devices/$NS/uuid
  echo $((128 << 20)) > /sys/bus/nd/devices/$NS/size; echo "set size rc=$?"
  echo $NS > /sys/bus/nd/drivers/nd_pmem/bind
  wait_for [ -b /dev/pmem0 ] && echo "=== migrate: /dev/pmem0 on $NS"
  echo "=== migrate: fsync, the flush the migration holds"
  dd if=/dev/zero of=/dev/pmem0 bs=512 count=0 conv=fsync 2>&1; echo "=== migrate: first flush rc=$?"
  for d in /sys/bus/platform/drivers/papr_scm/*; do [ -L "$d" ] && DEV=${d##*/}; done
  echo "$DEV" > /sys/bus/platform/drivers/papr_scm/unbind; echo "unbind rc=$?"
  echo "$DEV" > /sys/bus/platform/drivers/papr_scm/bind; echo "bind rc=$?"
  ns_back() { [ "$(cat /sys/bus/nd/devices/namespace*.0/uuid 2>/dev/null)" = 3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f ] && [ -b /dev/pmem0 ]; }
  wait_for ns_back && echo "=== migrate: the first namespace is back from its labels"
  R=$(ls -d /sys/bus/nd/devices/region* | head -1)
  NS2=$(cat $R/namespace_seed)
  echo 4d5e6f7a-8b9c-4d0e-9f1a-3b4c5d6e7f80 > /sys/bus/nd/devices/$NS2/uuid
  cat $R/available_size > /sys/bus/nd/devices/$NS2/size; echo "set size rc=$?"
  echo $NS2 > /sys/bus/nd/drivers/nd_pmem/bind
  # A second namespace's disk is pmem<region>.<n>.
  wait_for [ -d /sys/bus/nd/devices/$NS2/block ]
  B2=/dev/$(ls /sys/bus/nd/devices/$NS2/block)
  wait_for [ -b $B2 ] && echo "=== migrate: second namespace $NS2 on $B2"
  dd if=/dev/zero of=$B2 bs=512 count=0 conv=fsync 2>&1; echo "=== migrate: second flush rc=$?"
fi
if [ -n "$MIGRATE_LIVE" ]; then
  # A live migration inside QEMU (run.sh migrate, VMM=embedded): drc
  # 0x90000000 is an spapr-nvdimm that needs H_SCM_FLUSH, drc 0x90000001 a
  # plain nvdimm. The guest flushes the first without pause, so a flush is
  # pending whenever the host switches, until the host says (on the
  # console) that it has migrated; then it stores through MAP_SYNC on an
  # XFS-DAX namespace of the second and reboots. The second boot (on the
  # destination) finds both namespaces from their labels and reads it back.
  mkdir -p /mnt /tmp
  # Region numbers follow libnvdimm's probe order: find each by its DRC
  # (the nd bus's provider); namespace N.0's disk is pmemN.
  region_of() {
    for b in /sys/bus/nd/devices/ndbus*; do
      grep -q "$1" $b/provider 2>/dev/null && { ls -d $b/region* 2>/dev/null | head -1; return; }
    done
  }
  F=$(region_of 90000000); F=${F##*region}
  S=$(region_of 90000001); S=${S##*region}
  echo "=== migrate: drc 0x90000000 is region$F, drc 0x90000001 region$S"
  if [ -b /dev/pmem$S ]; then
    echo "=== migrate: second boot, the namespaces found from the labels"
    mount -t xfs -o dax /dev/pmem$S /mnt; echo "mount -o dax rc=$?"
    mapsync /mnt/data read
    umount /mnt
  else
    ndctl disable-region all >/dev/null
    ndctl init-labels all -f
    ndctl enable-region all >/dev/null
    ndctl create-namespace -r region$F -m raw -s 128M -f; echo "=== migrate: raw namespace rc=$?"
    ndctl create-namespace -r region$S -m fsdax -s 512M -f; echo "=== migrate: fsdax namespace rc=$?"
    wait_for [ -b /dev/pmem$F ] && wait_for [ -b /dev/pmem$S ] && echo "=== migrate: /dev/pmem$F and /dev/pmem$S"
    mkfs.xfs -q -b size=64k -s size=512 -f /dev/pmem$S; echo "mkfs rc=$?"
    mount -t xfs -o dax /dev/pmem$S /mnt; echo "mount -o dax rc=$?"
    ( read -r line < /dev/console; echo "=== the host said: $line"; : > /tmp/migrated ) &
    echo "=== READY migrate"
    mapsync /dev/pmem$F fsync /tmp/migrated
    echo "=== migrate: the fsync loop rc=$?"
    mapsync /mnt/data write "PAPR-SCM-MIGRATED-$(date +%s)"
    umount /mnt; echo "umount rc=$?"
    echo "=== migrate: rebooting on the destination"
    reboot -f
    sleep 10
  fi
fi
echo "=== dmesg tail"; dmesg | tail -40
echo "=== GUEST DONE"
poweroff -f
