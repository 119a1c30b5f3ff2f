#!/usr/bin/env bash
# qemu/build.sh 10.0|7.2: builds qemu-system-ppc64 with papr-scm linked in
# and prints the binary's absolute path as the last line of stdout.
#
# - Source: Debian's archive only. 10.0 is upstream 10.0.2 (the orig tarball
#   of bookworm-backports' qemu, unpacked by hand: its .dsc is not served);
#   7.2 is bookworm's 7.2.22 through `apt-get source`, Debian's patches
#   applied. deb-src is enabled when it is missing (root only).
# - The series qemu/patches/<version>/*.patch is applied with `git am` on a
#   pristine tree, one tree per version under the cache. A different series
#   (or a changed one) resets the tree to the pristine commit and applies it
#   again: git rewrites only the files that differ, so ninja rebuilds only
#   what a series touches, never the whole emulator.
# - papr-scm: `cargo build --release -p papr-scm-capi` in this repository,
#   linked through QEMU's `papr_scm` meson option. Without capi/ the series
#   builds with the option disabled (QEMU refuses papr-scm=on then).
# - The binary is cached in $CACHE/<version>-<hash>/, the hash covering this
#   script, the series, the capi crate and the papr-scm crate: a second run
#   with nothing changed prints the path at once.
#
# Exit 77 with "SKIP: ..." when the source (or a build tool) cannot be had.
# Environment: PAPR_SCM_QEMU_CACHE (default /var/tmp/papr-scm-qemu),
# JOBS (ninja -j, default 2), PAPR_SCM_SRC (the papr-scm checkout whose
# crates are linked; default: the one holding this script).
set -euo pipefail

usage() { echo "usage: $0 10.0|7.2" >&2; exit 2; }
[ $# = 1 ] || usage
version=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "${PAPR_SCM_SRC:-$here}" && pwd)
cache=${PAPR_SCM_QEMU_CACHE:-/var/tmp/papr-scm-qemu}
jobs=${JOBS:-2}
pool=http://deb.debian.org/debian/pool/main/q/qemu

case $version in
  10.0)
    upstream=10.0.2
    debver=1:10.0.2+ds-2+deb13u1~bpo12+1
    orig=qemu_10.0.2+ds.orig.tar.xz
    ;;
  7.2)
    upstream=7.2.22
    debver=${QEMU72_DEBIAN_VERSION:-1:7.2+dfsg-7+deb12u18}
    orig=qemu_7.2+dfsg.orig.tar.xz
    ;;
  *) usage ;;
esac

log() { printf 'build.sh: %s\n' "$*" >&2; }
skip() { printf 'SKIP: %s\n' "$*"; printf 'SKIP: %s\n' "$*" >&2; exit 77; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# --- what the binary is made of -------------------------------------------
series_dir=$here/qemu/patches/$version
[ -d "$series_dir" ] || die "no series in $series_dir"
mapfile -t series < <(find "$series_dir" -maxdepth 1 -name '*.patch' | LC_ALL=C sort)
[ ${#series[@]} -gt 0 ] || die "no patches in $series_dir"

have_capi=no
[ -f "$repo/capi/Cargo.toml" ] && have_capi=yes

# The hash of a list of files, by content and relative name.
hash_files() {
  (cd "$repo" && LC_ALL=C sort -u | while read -r f; do
     [ -f "$f" ] && printf '%s  %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$f"
   done) | sha256sum | cut -c1-16
}
crate_files() {
  (cd "$repo" && {
     printf '%s\n' Cargo.toml Cargo.lock build.rs
     find src -type f
     if [ $have_capi = yes ]; then find capi -path capi/target -prune -o -type f -print; fi
   })
}
series_hash=$(cd "$here" && for p in "${series[@]}"; do printf '%s  %s\n' "$(sha256sum <"$p" | cut -c1-64)" "${p##*/}"; done | sha256sum | cut -c1-16)
rustc_id=$(rustc -V 2>/dev/null || echo none)
full_hash=$( { echo "$series_hash"; echo "$rustc_id"; echo "capi=$have_capi";
               sha256sum <"$here/qemu/build.sh"; crate_files | hash_files; } | sha256sum | cut -c1-16)
out_dir=$cache/$version-$full_hash
if [ -x "$out_dir/qemu-system-ppc64" ]; then
  log "cached: $out_dir (series $series_hash, papr-scm $([ $have_capi = yes ] && echo linked || echo 'not linked: no capi/'))"
  echo "$out_dir/qemu-system-ppc64"
  exit 0
fi

mkdir -p "$cache/src"
tree=$cache/tree-$version
mkdir -p "$tree"
exec 9>"$tree/.lock"
log "waiting for the lock on $tree" ; flock 9
start=$SECONDS

# --- build tools -----------------------------------------------------------
for tool in ninja cc pkg-config flex bison git; do
  command -v $tool >/dev/null || skip "$tool is not installed (apt-get install ninja-build gcc pkg-config flex bison git)"
done
for pc in glib-2.0 pixman-1 zlib; do
  pkg-config --exists $pc || skip "development files for $pc are missing (apt-get install libglib2.0-dev libpixman-1-dev zlib1g-dev)"
done
# bookworm's libfdt-dev has no pkg-config file
echo '#include <libfdt.h>' | cc -E -x c - >/dev/null 2>&1 || skip "libfdt.h is missing (apt-get install libfdt-dev)"
if [ $version = 10.0 ]; then
  # 10.0 wants meson >= 1.5; bookworm has 1.0.1.
  venv=$cache/venv-meson-1.5.0
  if ! [ -x "$venv/bin/meson" ]; then
    log "meson 1.5.0 into $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv" >&2 \
      && "$venv/bin/pip" install -q meson==1.5.0 pycotap==1.3.1 >&2 \
      || { rm -rf "$venv"; skip "could not install meson 1.5.0 with pip"; }
  fi
  python=$venv/bin/python3
  tool_path=$venv/bin:/usr/sbin:/usr/bin:/sbin:/bin
else
  command -v meson >/dev/null || skip "meson is not installed (apt-get install meson)"
  # 7.2's configure wants the system python (with its meson) first in PATH.
  tool_path=/usr/sbin:/usr/bin:/sbin:/bin
fi

# --- the pristine source ---------------------------------------------------
enable_deb_src() {
  apt-cache showsrc qemu 2>/dev/null | grep -qx "Version: $debver" && return 0
  [ "$(id -u)" = 0 ] || return 1
  local f=/etc/apt/sources.list.d/papr-scm-deb-src.sources
  if ! [ -f "$f" ]; then
    log "enabling deb-src in $f"
    cat >"$f" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -qq >&2 || return 1
}

fetch_source() {   # $1: empty directory to unpack into, as $1/qemu
  local dst=$1
  cd "$cache/src"
  if [ $version = 10.0 ]; then
    if ! [ -f "$orig" ]; then
      log "downloading $orig"
      curl -fsSL --retry 2 -o "$orig.part" "$pool/$orig" && mv "$orig.part" "$orig" \
        || { rm -f "$orig.part"; return 1; }
    fi
    mkdir "$dst/x"
    tar -C "$dst/x" --no-same-owner -xf "$orig" || return 1
    mv "$dst/x/qemu-$upstream" "$dst/qemu" && rmdir "$dst/x"
  else
    local dsc
    dsc=qemu_${debver#1:}.dsc
    if ! [ -f "$dsc" ]; then
      enable_deb_src || return 1
      log "apt-get source qemu=$debver"
      apt-get source --download-only -qq "qemu=$debver" >&2 || return 1
    fi
    dpkg-source --no-check -x "$dsc" "$dst/qemu" >&2 || return 1
  fi
}

src=$tree/src
if ! [ -f "$tree/.pristine" ]; then
  rm -rf "$src" "$tree/build" "$tree/unpack"
  mkdir "$tree/unpack"
  log "unpacking QEMU $upstream"
  fetch_source "$tree/unpack" || { rm -rf "$tree/unpack"; skip "QEMU $upstream's source could not be downloaded from Debian's archive"; }
  # (dpkg-source leaves a copy of the orig tarball beside what it unpacks)
  mv "$tree/unpack/qemu" "$src" && rm -rf "$tree/unpack"
  git -C "$src" init -q
  git -C "$src" config core.autocrlf false
  git -C "$src" config user.name "papr-scm build"
  git -C "$src" config user.email "build@papr-scm.invalid"
  # Debian's tree keeps quilt's .pc and debian/ out of the way of the series.
  git -C "$src" add -A -f . >/dev/null
  git -C "$src" commit -q --no-verify -m "QEMU $upstream ($debver)"
  git -C "$src" tag -f pristine >/dev/null
  touch "$tree/.pristine"
  rm -f "$tree/.series"
fi

# --- the series ------------------------------------------------------------
if [ "$(cat "$tree/.series" 2>/dev/null)" != "$series_hash" ]; then
  log "applying the series ($series_hash): ${#series[@]} patches"
  rm -f "$tree/.series"
  git -C "$src" am --abort >/dev/null 2>&1 || true
  git -C "$src" reset -q --hard pristine
  git -C "$src" clean -qfd
  git -C "$src" am -q --no-gpg-sign "${series[@]}" >&2 \
    || { git -C "$src" am --abort >/dev/null 2>&1 || true; die "the series does not apply to QEMU $upstream"; }
  echo "$series_hash" >"$tree/.series"
fi

# --- papr-scm's C ABI --------------------------------------------------------
capi_dir=$tree/papr-scm
relink=no
if [ $have_capi = yes ]; then
  log "cargo build --release -p papr-scm-capi"
  (cd "$repo" && nice -n 19 cargo build -q --release -p papr-scm-capi >&2) \
    || die "the papr-scm C ABI did not build"
  target_dir=$(cd "$repo" && cargo metadata -q --format-version 1 --no-deps \
                 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  lib=$target_dir/release/libpapr_scm_capi.a
  hdr=$repo/capi/include/papr_scm.h
  [ -f "$lib" ] || die "$lib is missing after the build"
  [ -f "$hdr" ] || die "$hdr is missing"
  mkdir -p "$capi_dir"
  # Copied only when changed: the header's mtime drives ninja's recompiles,
  # the library's content the relink below.
  cmp -s "$hdr" "$capi_dir/papr_scm.h" || cp "$hdr" "$capi_dir/papr_scm.h"
  if ! cmp -s "$lib" "$capi_dir/libpapr_scm_capi.a"; then
    cp "$lib" "$capi_dir/libpapr_scm_capi.a"
    relink=yes
  fi
  papr_scm_args=(--enable-papr-scm "--papr-scm-dir=$capi_dir")
else
  log "no capi/ in $repo: building without papr-scm (papr-scm=on is refused)"
  rm -rf "$capi_dir"
  papr_scm_args=(--disable-papr-scm)
fi

# --- configure and build -------------------------------------------------------
build=$tree/build
config_args=(--target-list=ppc64-softmmu --disable-docs --disable-werror
             --without-default-features --enable-fdt=system)
# 7.2's configure takes the meson in PATH only without --python (with it,
# and a git tree, it looks for a meson submodule).
[ $version = 10.0 ] && config_args+=("--python=$python" --disable-install-blobs)
if [ "$(cat "$tree/.configured" 2>/dev/null)" != "${config_args[*]}" ] || ! [ -f "$build/build.ninja" ]; then
  log "configure ${config_args[*]} ${papr_scm_args[*]}"
  rm -rf "$build" "$tree/.configured" "$tree/.papr-scm"
  mkdir "$build"
  t=$SECONDS
  (cd "$build" && PATH=$tool_path nice -n 19 "$src/configure" "${config_args[@]}" "${papr_scm_args[@]}" \
     >"$tree/configure.log" 2>&1) \
    || { tail -30 "$tree/configure.log" >&2; die "configure failed (log: $tree/configure.log)"; }
  log "configured in $((SECONDS - t)) s"
  echo "${config_args[*]}" >"$tree/.configured"
  echo "${papr_scm_args[*]}" >"$tree/.papr-scm"
elif [ "$(cat "$tree/.papr-scm" 2>/dev/null)" != "${papr_scm_args[*]}" ]; then
  # Only papr-scm comes or goes: its define reaches the ppc64 target's own
  # objects, so meson reconfigures in place and those alone rebuild.
  if [ $have_capi = yes ]; then
    meson_opts=(-Dpapr_scm=enabled "-Dpapr_scm_dir=$capi_dir")
  else
    meson_opts=(-Dpapr_scm=disabled -Dpapr_scm_dir=)
  fi
  meson_bin=meson
  [ -x "$build/pyvenv/bin/meson" ] && meson_bin=$build/pyvenv/bin/meson
  log "meson configure ${meson_opts[*]}"
  (cd "$build" && PATH=$tool_path "$meson_bin" configure "${meson_opts[@]}" >"$tree/configure.log" 2>&1) \
    || { tail -30 "$tree/configure.log" >&2; die "meson configure failed (log: $tree/configure.log)"; }
  echo "${papr_scm_args[*]}" >"$tree/.papr-scm"
fi
# Nothing in build.ninja names the static library's file: a new library
# is linked by removing the binary.
[ $relink = yes ] && rm -f "$build/qemu-system-ppc64"
t=$SECONDS
(cd "$build" && PATH=$tool_path nice -n 19 ninja -j"$jobs" qemu-system-ppc64 >"$tree/ninja.log" 2>&1) \
  || { grep -E 'error|FAILED' "$tree/ninja.log" | head -40 >&2; die "the build failed (log: $tree/ninja.log)"; }
log "ninja: $(grep -c '^\[' "$tree/ninja.log" || true) steps in $((SECONDS - t)) s"

# --- cache the binary ----------------------------------------------------------
mkdir -p "$out_dir"
cp "$build/qemu-system-ppc64" "$out_dir/qemu-system-ppc64.part"
mv "$out_dir/qemu-system-ppc64.part" "$out_dir/qemu-system-ppc64"
{ echo "QEMU $upstream ($debver)"; echo "series $series_hash:"; for p in "${series[@]}"; do echo "  ${p##*/}"; done
  echo "papr-scm: $have_capi"; echo "$rustc_id"; } >"$out_dir/BUILD-INFO"
# Keep the four newest binaries of this version.
ls -1dt "$cache/$version"-*/ 2>/dev/null | tail -n +5 | xargs -r rm -rf
log "done in $((SECONDS - start)) s"
echo "$out_dir/qemu-system-ppc64"
