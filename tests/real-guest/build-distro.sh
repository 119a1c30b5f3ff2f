#!/usr/bin/env bash
# The stock distro kernel of the `distro` scenario, once into CACHE/distro
# (outside the repo, never committed): Debian bookworm's
# linux-image-6.12-powerpc64le-64k (ppc64el, 64K pages; bookworm-security's
# linux 6.12), downloaded with `apt-get download` and a private apt state,
# and unpacked unmodified.
#
# Debian builds none of its ppc64el kernels with CONFIG_LIBNVDIMM (bookworm's
# 6.1 and 6.12, bookworm-backports' and sid's: `# CONFIG_LIBNVDIMM is not
# set`), so the package has no papr_scm, libnvdimm, nd_pmem or nd_btt. They
# are built here the way an out-of-tree (DKMS) module is, from the same
# version's linux-source-6.12 against its linux-headers and linux-kbuild
# packages (the cross compiler is the gcc-12 the kernel was built with), and
# installed under updates/. 6.1 has no ZONE_DEVICE, which fsdax needs; 6.12
# has ZONE_DEVICE, FS_DAX and DAX built in. Everything else (xfs, ext4 and
# their dependencies) is the package's own modules.
#
# The result, CACHE/distro/out/: vmlinux (the package's), VERSION, and
# rootfs/lib/modules/VERSION with the closure of the modules the guest loads
# (decompressed from .ko.xz) and depmod's modules.dep, modules.softdep,
# modules.alias and modules.builtin for it; rootfs/etc/modules names the
# modules the guest's init loads (init.sh resolves their dependencies).
# Usage: build-distro.sh CACHE    (exit 77 when a package does not download)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
C=${1:?usage: build-distro.sh CACHE}/distro
mkdir -p "$C"
exec 9>"$C/.lock"
flock 9
cd "$C"
# The modules the guest loads, in this order (each after its dependencies).
WANT=(libnvdimm papr_scm nd_pmem nd_btt dax xfs ext4)
META=linux-image-6.12-powerpc64le-64k

mkdir -p apt/lists/partial apt/cache/archives/partial apt64/lists/partial apt64/cache/archives/partial debs
cat > apt/sources.list <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
common=(-o Dir::State::status=/dev/null -o "Dir::Etc::SourceList=$C/apt/sources.list"
        -o Dir::Etc::SourceParts=/nonexistent -o APT::Sandbox::User=root)
A=(-o APT::Architecture=ppc64el -o APT::Architectures=ppc64el -o "Dir::State::Lists=$C/apt/lists"
   -o "Dir::Cache=$C/apt/cache" "${common[@]}")
# linux-kbuild (modpost, genksyms, fixdep) is built for the host.
B=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$C/apt64/lists"
   -o "Dir::Cache=$C/apt64/cache" "${common[@]}")
start=$SECONDS
apt-get "${A[@]}" update >apt-update.log 2>&1 || true
apt-get "${B[@]}" update >>apt-update.log 2>&1 || true
img=$(apt-cache "${A[@]}" depends "$META" 2>/dev/null \
  | sed -n 's/^ *Depends: \(linux-image-6\.12\.[0-9]*+deb12-powerpc64le-64k\)$/\1/p' | head -1)
if [ -z "$img" ]; then
  # Offline: a kernel built before still serves.
  if [ -s out/VERSION ]; then echo "distro kernel cached in $C/out ($(cat out/VERSION); the archive did not answer)"; exit 0; fi
  echo "build-distro: $META is not in the archive (see $C/apt-update.log)"; exit 77
fi
V=${img#linux-image-}
abi=${V%-powerpc64le-64k}
ver=$(apt-cache "${A[@]}" show "$img" | sed -n 's/^Version: //p' | head -1)
stamp=$(cat "$HERE/build-distro.sh" | sha256sum | cut -c1-16)
if [ "$(cat out/stamp 2>/dev/null)" = "$V $stamp" ]; then
  echo "distro kernel cached in $C/out ($V)"; exit 0
fi

# The packages, exactly this version.
rm -rf debs && mkdir debs
if ! (cd debs && apt-get "${A[@]}" download "$img" "linux-headers-$V" "linux-headers-$abi-common" \
        "linux-source-6.12=$ver" >download.log 2>&1 \
      && apt-get "${B[@]}" download "linux-kbuild-$abi" >>download.log 2>&1); then
  cat debs/download.log
  echo "build-distro: the kernel packages did not download"; exit 77
fi
echo "build-distro: $V downloaded in $((SECONDS - start)) s ($(du -sm debs | cut -f1) MiB)"

rm -rf img root src nd out
mkdir -p img root src nd out/rootfs/etc
dpkg-deb -x debs/"$img"_*.deb img
for d in debs/linux-headers-*.deb debs/linux-kbuild-*.deb; do dpkg-deb -x "$d" root; done
dpkg-deb --fsys-tarfile debs/linux-source-6.12_*.deb | tar -xO ./usr/src/linux-source-6.12.tar.xz \
  | tar -C src -xJ --wildcards 'linux-source-6.12/drivers/nvdimm/*.[ch]' \
      'linux-source-6.12/arch/powerpc/platforms/pseries/papr_scm.c'
cp src/linux-source-6.12/drivers/nvdimm/*.[ch] src/linux-source-6.12/arch/powerpc/platforms/pseries/papr_scm.c nd/
# drivers/nvdimm/Makefile's objects with the options Debian's amd64 kernels
# choose (ND_CLAIM, BTT, NVDIMM_PFN, NVDIMM_DAX; no NVDIMM_KEYS), and
# arch/powerpc/platforms/pseries' papr_scm.o (CONFIG_PAPR_SCM).
cat > nd/Kbuild <<'EOF'
ccflags-y += -I$(src) -DCONFIG_ND_CLAIM=1 -DCONFIG_BTT=1 -DCONFIG_NVDIMM_PFN=1 -DCONFIG_NVDIMM_DAX=1
obj-m += libnvdimm.o nd_pmem.o nd_btt.o papr_scm.o
libnvdimm-y := core.o bus.o dimm_devs.o nd_perf.o dimm.o region_devs.o region.o namespace_devs.o \
               label.o badrange.o claim.o btt_devs.o pfn_devs.o dax_devs.o
nd_pmem-y := pmem.o
nd_btt-y := btt.o
EOF
# The headers package's Makefile includes the common one by its installed
# path; here it is unpacked elsewhere.
FL=$C/root/usr/src/linux-headers-$V
sed "s#/usr/src/#$C/root/usr/src/#" "$FL/Makefile" > nd/Makefile.flavour
# No BTF for the modules (pahole is not needed: they load without it).
if ! nice -n 10 make -C "$FL" -f "$C/nd/Makefile.flavour" M="$C/nd" -j"$(nproc)" \
     CONFIG_DEBUG_INFO_BTF_MODULES= modules >nd/build.log 2>&1; then
  tail -20 nd/build.log; echo "build-distro: the nvdimm modules did not build"; exit 1
fi
if grep -q 'undefined!' nd/build.log; then
  grep 'undefined!' nd/build.log; echo "build-distro: the nvdimm modules need symbols the kernel does not export"; exit 1
fi
M=img/lib/modules/$V
mkdir -p "$M/updates/nvdimm"
cp nd/*.ko "$M/updates/nvdimm/"
# As the package's own modules are (Debian installs with INSTALL_MOD_STRIP=1).
powerpc64le-linux-gnu-strip --strip-debug "$M"/updates/nvdimm/*.ko
# What the package's postinst does (depmod), over the package's modules and these.
depmod -b img -E "$FL/Module.symvers" "$V"

# The closure of WANT in modules.dep, with modules.softdep's "pre:" modules
# (libcrc32c needs a crc32c, named by alias).
python3 - "$M" "$C/out/rootfs/lib/modules/$V" "${WANT[@]}" > out/rootfs/etc/modules <<'PY'
import lzma, os, re, shutil, sys
src, dst, want = sys.argv[1], sys.argv[2], sys.argv[3:]
name = lambda p: re.sub(r'\.ko(\.xz)?$', '', os.path.basename(p)).replace('-', '_')
dep, path = {}, {}
for line in open(f'{src}/modules.dep'):
    m, rest = line.split(':', 1)
    dep[name(m)] = [name(d) for d in rest.split()]
    path[name(m)] = m
builtin = {name(l.strip()) for l in open(f'{src}/modules.builtin')}
alias = {}
for line in open(f'{src}/modules.alias'):
    w = line.split()
    if len(w) == 3 and w[0] == 'alias':
        alias.setdefault(w[1], []).append(w[2].replace('-', '_'))
pre = {}
for line in open(f'{src}/modules.softdep'):
    w = line.split()
    if len(w) > 2 and w[0] == 'softdep' and 'pre:' in w:
        i = w.index('pre:') + 1
        pre[w[1].replace('-', '_')] = [x for x in w[i:] if not x.endswith(':')]
order, seen = [], set()
def visit(m):
    if m in seen:
        return
    seen.add(m)
    if m not in path:
        if m in builtin:
            return
        for a in alias.get(m, []):
            visit(a)
        if m not in alias:
            sys.exit(f'build-distro: no module {m}')
        return
    for p in pre.get(m, []):
        visit(p)
    for d in dep[m]:
        visit(d)
    order.append(m)
for w in want:
    visit(w)
for m in order:
    p = path[m]
    os.makedirs(os.path.dirname(f'{dst}/{p}'), exist_ok=True)
    if p.endswith('.xz'):
        with lzma.open(f'{src}/{p}') as f, open(f'{dst}/{p[:-3]}', 'wb') as g:
            shutil.copyfileobj(f, g)
    else:
        shutil.copy(f'{src}/{p}', f'{dst}/{p}')
for f in ('modules.builtin', 'modules.builtin.modinfo', 'modules.order'):
    shutil.copy(f'{src}/{f}', f'{dst}/{f}')
print('\n'.join(want))
print(f'build-distro: the guest loads {" ".join(order)}', file=sys.stderr)
PY
# The guest's modules.dep, modules.softdep and modules.alias for the
# decompressed files.
depmod -b out/rootfs -E "$FL/Module.symvers" "$V"
cp "img/boot/vmlinux-$V" out/vmlinux
echo "$V" > out/VERSION
rm -rf src nd/*.o root debs/linux-source-6.12_*.deb
echo "$V $stamp" > out/stamp
echo "distro kernel $V in $C/out ($((SECONDS - start)) s; modules: $(tr '\n' ' ' < out/rootfs/etc/modules))"
