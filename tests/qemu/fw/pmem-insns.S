# pmem-insns.S: the instructions Linux's pmem code runs on POWER10
# [arch/powerpc/include/asm/cacheflush.h, barrier.h; ppc-opcode.h
# PPC_DCBFPS 0x7c8000ac, PPC_DCBSTPS 0x7cc000ac, PPC_PHWSYNC 0x7c8004ac,
# PPC_PLWSYNC 0x7ca004ac]: dcbfps and dcbstps are dcbf with L=4 and L=6,
# phwsync and plwsync are sync with L=4 and L=5 (Power ISA 3.1). POWER10
# runs them; QEMU 10.0.2's TCG decodes dcbf with the invalid mask
# 0x03C00001 and refuses these sync forms: a program check (vector 0x700,
# SRR1 bit 44 "illegal instruction") [target/ppc/translate.c].
#
# The firmware's own 0x700 handler notes which instruction trapped (bit i of
# CTL_USER for instruction i, SRR1 in CTL_USER+8+8i) and steps over it, so
# one run tells about all four; then the done marker. run.sh boots it with
# -cpu power10.

        .set OWN_PROGRAM_CHECK, 1
        .include "common.S"
        .machine power10

main:
        bl      init
        LI64    %r20, SCRATCH                 # a line of RAM to flush
        std     %r20, 0(%r20)
insn0:  dcbfps  0, %r20
insn1:  dcbstps 0, %r20
insn2:  phwsync
insn3:  plwsync
        DONE

program_check:
        mfsrr0  %r22
        LA      %r23, insn0
        subf    %r24, %r23, %r22              # byte offset of the instruction
        srdi    %r24, %r24, 2
        LI64    %r25, CTL
        ld      %r26, CTL_USER(%r25)
        li      %r27, 1
        sld     %r27, %r27, %r24
        or      %r26, %r26, %r27
        std     %r26, CTL_USER(%r25)
        sldi    %r24, %r24, 3
        addi    %r24, %r24, CTL_USER+8
        mfsrr1  %r23
        stdx    %r23, %r25, %r24
        addi    %r22, %r22, 4
        mtsrr0  %r22
        rfid
