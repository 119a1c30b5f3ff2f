#!/usr/bin/env bash
# The fsdax guest's userspace, once into CACHE/userspace (outside the repo):
# ndctl, mkfs.xfs, mke2fs and kexec with their shared libraries from Debian's
# ppc64el packages (apt-get download, never committed), and mapsync, built
# static with the cross compiler.
# Usage: build-userspace.sh CACHE    (exit 77 when a download fails)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
C=${1:?usage: build-userspace.sh CACHE}/userspace
mkdir -p "$1"
exec 9>"$1/.userspace.lock"
flock 9
stamp=$(cat "$HERE/build-userspace.sh" "$HERE/mapsync.c" | sha256sum | cut -c1-16)
if [ "$(cat "$C/stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
rm -rf "$C" && mkdir -p "$C"/{apt/lists/partial,apt/cache/archives/partial,debs,x,root}
cd "$C"
# The closure of ndctl, mkfs.xfs and mke2fs in bookworm (fsdax-journey.md §3).
pkgs=(ndctl libndctl6 libdaxctl1 libkmod2 libudev1 libuuid1 libjson-c5 libkeyutils1
      libiniparser1 libssl3 liblzma5 libzstd1 xfsprogs libinih1 liburcu8 libblkid1 libc6
      e2fsprogs libext2fs2 libcom-err2 libss2 libgcc-s1 kexec-tools)
A=(-o APT::Architecture=ppc64el -o APT::Architectures=ppc64el -o "Dir::State::Lists=$C/apt/lists"
   -o "Dir::Cache=$C/apt/cache" -o Dir::State::status=/dev/null)
apt-get "${A[@]}" update >/dev/null 2>&1 || true
if ! (cd debs && apt-get "${A[@]}" download "${pkgs[@]}" >/dev/null 2>&1); then
  echo "build-userspace: the ppc64el packages did not download"; exit 77
fi
for d in debs/*.deb; do dpkg-deb -x "$d" x; done
mkdir -p root/sbin root/lib/powerpc64le-linux-gnu root/lib64
for b in usr/bin/ndctl sbin/mkfs.xfs usr/sbin/mkfs.xfs sbin/mke2fs usr/sbin/mke2fs sbin/kexec usr/sbin/kexec; do
  [ -e "x/$b" ] && cp -L "x/$b" root/sbin/
done
for l in x/lib/powerpc64le-linux-gnu x/usr/lib/powerpc64le-linux-gnu; do
  [ -d "$l" ] && cp -a "$l"/*.so* root/lib/powerpc64le-linux-gnu/ 2>/dev/null || true
done
ln -sf /lib/powerpc64le-linux-gnu/ld64.so.2 root/lib64/ld64.so.2
powerpc64le-linux-gnu-gcc -static -O2 -o root/sbin/mapsync "$HERE/mapsync.c"
for b in ndctl mkfs.xfs mke2fs mapsync kexec; do
  [ -x "root/sbin/$b" ] || { echo "build-userspace: no $b"; exit 1; }
done
rm -rf x debs apt
echo "$stamp" > stamp
echo "userspace built in $C ($(du -sh root | cut -f1))"
