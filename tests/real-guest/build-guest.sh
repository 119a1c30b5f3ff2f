#!/usr/bin/env bash
# Builds the guest of tests/real-guest once into CACHE (outside the repo):
# a ppc64le Linux 6.1 vmlinux with papr_scm (tinyconfig + kernel-config.fragment)
# and busybox-static for ppc64el, both from Debian's packages.
# Usage: build-guest.sh CACHE [patched|plain]
#   patched (the default): with tcg-pmem.patch, CACHE/vmlinux, for a QEMU
#   whose TCG refuses the ISA 3.1 pmem instructions (Debian's 7.2: the
#   bridge suite); plain: without it, CACHE/vmlinux-plain, for the QEMU
#   series that runs them (the embedded suite). One source tree serves both:
#   the patch is applied or reverted and the rebuild is incremental.
#   (7 min 13 s for the first measured on 2 shared cores, ~1.5 GiB)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
C=${1:?usage: build-guest.sh CACHE [patched|plain]}
VARIANT=${2:-patched}
case $VARIANT in
  patched) OUTK=vmlinux ;;
  plain) OUTK=vmlinux-plain ;;
  *) echo "build-guest.sh: no variant '$VARIANT' (patched or plain)"; exit 2 ;;
esac
mkdir -p "$C" && cd "$C"
# One build at a time: CI starts one in the background early, and run.sh's
# own call then waits for it and finds the result.
exec 9>"$C/.build.lock"
flock 9
# The cached kernel matches the configuration fragment (and the TCG patch).
if [ $VARIANT = patched ]; then
  frag_sum=$(cat "$HERE/kernel-config.fragment" "$HERE/tcg-pmem.patch" | sha256sum | cut -c1-16)
else
  frag_sum=$(cat "$HERE/kernel-config.fragment" | sha256sum | cut -c1-16)
fi
if [ -f $OUTK ] && [ "$(cat $OUTK.stamp 2>/dev/null)" = "$frag_sum" ] && [ -f bb/bin/busybox ]; then
  echo "guest cached in $C ($OUTK)"; exit 0
fi

# busybox-static for ppc64el, with a separate apt state (nothing installed for that arch).
mkdir -p apt/lists/partial apt/cache/archives/partial bb
A=(-o APT::Architecture=ppc64el -o APT::Architectures=ppc64el -o "Dir::State::Lists=$PWD/apt/lists"
   -o "Dir::Cache=$PWD/apt/cache" -o Dir::State::status=/dev/null)
apt-get "${A[@]}" update >/dev/null 2>&1 || true   # a security index may fail; main suffices
(cd apt && apt-get "${A[@]}" download busybox-static >/dev/null)
dpkg-deb -x apt/busybox-static_*_ppc64el.deb bb

[ -d linux-source-6.1 ] || tar xf /usr/src/linux-source-6.1.tar.xz
(
  cd linux-source-6.1
  # tcg-pmem.patch says why: applied for the patched kernel, reverted for
  # the plain one (a tree already in the right state is kept).
  applied=no
  patch -p1 -R -s -f --dry-run < "$HERE/tcg-pmem.patch" >/dev/null 2>&1 && applied=yes
  if [ $VARIANT = patched ] && [ $applied = no ]; then
    patch -p1 -N -s < "$HERE/tcg-pmem.patch"
  elif [ $VARIANT = plain ] && [ $applied = yes ]; then
    patch -p1 -R -s < "$HERE/tcg-pmem.patch"
  fi
  export ARCH=powerpc CROSS_COMPILE=powerpc64le-linux-gnu-
  make -s tinyconfig
  ./scripts/kconfig/merge_config.sh -m .config "$HERE/kernel-config.fragment" >/dev/null
  make -s olddefconfig
  make -s -j"$(nproc)" vmlinux
)
cp linux-source-6.1/vmlinux $OUTK
echo "$frag_sum" > $OUTK.stamp
echo "guest built in $C ($OUTK)"
