qemu-system-ppc64 -machine pseries,nvdimm=on,dumpdtb=no-devices.dtb -cpu POWER9 -m 2048M,slots=4,maxmem=8192M -nographic -nodefaults
