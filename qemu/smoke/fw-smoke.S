# A stand-in firmware for -machine pseries (-bios): QEMU loads it at 0 and
# starts the boot CPU at 0x100 in real mode, big-endian, MSR[PR]=0, so
# `sc 1` is an hcall. Results stay in registers for HMP `info registers`.
#
#   r19 = 1      the pmem instructions ran (a program check lands at 0x700,
#                which sets r30 = 0xbad)
#   r20, r21     H_SCM_READ_METADATA(slot 0, offset 0, 8 bytes): status, data
#   r22-r24      H_SCM_HEALTH(slot 0): status, bitmap, mask
#   r30 = 0x600d0000 when the end is reached
#
# Built with binutils-powerpc64-linux-gnu:
#   powerpc64-linux-gnu-as -o fw.o fw-smoke.S
#   powerpc64-linux-gnu-objcopy -O binary fw.o fw.bin
    .section .text
    .org 0x100
    b     main

    .org 0x700                      # program check
    li    %r30, 0xbad
1:  b     1b

    .org 0x1000
main:
    # The ISA 3.1 forms Linux uses for pmem (arch/powerpc/lib/pmem.c,
    # pmem_wmb): written as words, older assemblers lack the mnemonics.
    li    %r9, 0x2000
    .long 0x7c8048ac                # dcbfps  0,r9  (dcbf L=4)
    .long 0x7cc048ac                # dcbstps 0,r9  (dcbf L=6)
    .long 0x7c8004ac                # phwsync       (sync L=4)
    .long 0x7ca004ac                # plwsync       (sync L=5)
    li    %r19, 1

    lis   %r31, 0x9000
    clrldi %r31, %r31, 32           # DRC index 0x90000000: PMEM slot 0
    li    %r3, 0x3e4                # H_SCM_READ_METADATA
    mr    %r4, %r31
    li    %r5, 0
    li    %r6, 8
    sc    1
    mr    %r20, %r3
    mr    %r21, %r4

    li    %r3, 0x400                # H_SCM_HEALTH
    mr    %r4, %r31
    sc    1
    mr    %r22, %r3
    mr    %r23, %r4
    mr    %r24, %r5

    lis   %r30, 0x600d
2:  b     2b
