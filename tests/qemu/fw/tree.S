# tree.S: boots, leaves the address of QEMU's device tree in CTL_FDT
# (common.S) and stops. The runner reads the tree from guest memory to
# learn the RTAS tokens of the machine the other firmware will run on.

        .include "common.S"

main:
        bl      init
        DONE
