# hostile.S: CALLS pseudo-random SCM hcalls (xorshift64 from SEED, both
# given with --defsym by the runner), then the done marker. Nothing is
# recorded per call: CTL_USER holds the number of calls made, CTL_USER+8 a
# fingerprint of every r3 (sum, rotated), CTL_USER+16 the H_SUCCESS count.
# run.sh boots it only with papr-scm=on, with the devices of hcalls.S and
# papr-scm-trace, then replays the trace with `papr-scm replay`.
#
# Opcodes come from the ten SCM hcalls; each argument is a random 64-bit
# value, a small number or an edge value (DRC indexes in and out of range,
# block-aligned addresses, label offsets around 128 KiB, lengths, values
# whose sums wrap). UNBIND_MEM gets ranges that wrap past 2^64 a quarter of
# the time: QEMU 10.x's own handler aborts on those [range_init_nofail;
# qemu-spapr-nvdimm.md 1.5]. PERFORMANCE_STATS is the one call that writes
# guest memory at an address the guest names, so its buffer is kept to a
# scratch page, past RAM, or the size query (a buffer at 0 would be this
# code).

        .include "common.S"

        .ifndef SEED
        .set SEED, 0x5eed5eed5eed
        .endif
        .ifndef CALLS
        .set CALLS, 100000
        .endif
        .set STATS_PAGE, 0x30000              # 4 KiB + 512: the buffers' playground
        .set ARGS, SCRATCH                    # r4..r12 staged here

        .set CTL_CALLS, CTL_USER          # offsets in CTL
        .set CTL_PRINT, CTL_USER+8
        .set CTL_OK,    CTL_USER+16

main:
        bl      init
        LI64    %r14, SEED                    # xorshift64 state (never 0)
        ori     %r14, %r14, 1
        LI64    %r15, CALLS
        li      %r16, 0                       # calls made
        li      %r17, 0                       # fingerprint
        li      %r18, 0                       # H_SUCCESS answers
        LI64    %r19, CTL

loop:
        # Nine arguments into ARGS[0..8].
        LI64    %r20, ARGS
        li      %r21, 9
1:      bl      arg
        std     %r3, 0(%r20)
        addi    %r20, %r20, 8
        addic.  %r21, %r21, -1
        bgt     1b
        # r4 is a DRC index three times in four: one of slots 0..3 (3 is
        # empty; the edge values hold others) in the low word, one time in
        # four with junk above it (QEMU drops it, papr rejects it).
        bl      rand
        andi.   %r0, %r3, 3
        beq     2f
        rldicl  %r4, %r3, 62, 62              # (x >> 2) & 3
        oris    %r4, %r4, 0x9000
        andi.   %r0, %r3, 0x30
        bne     3f
        rldicr  %r5, %r3, 0, 31               # upper bits from x
        or      %r4, %r4, %r5
3:      LI64    %r20, ARGS
        std     %r4, 0(%r20)
2:
        # The opcode: OPS[x & 15].
        bl      rand
        andi.   %r0, %r3, 15
        sldi    %r0, %r0, 3
        LA      %r20, ops
        ldx     %r22, %r20, %r0
        mr      %r23, %r3                     # this call's random word

        cmpdi   %r22, H_SCM_UNBIND_MEM
        bne     4f
        # A range that wraps: aligned start in the top 256 MiB blocks,
        # 2..17 blocks, once in four.
        andi.   %r0, %r23, 0x300
        bne     4f
        LI64    %r20, ARGS
        LI64    %r5, 0xfffffffff0000000
        rldicl  %r6, %r23, 52, 62             # minus 0..3 blocks
        sldi    %r6, %r6, 28
        subf    %r5, %r6, %r5
        std     %r5, 8(%r20)
        rldicl  %r6, %r23, 48, 60             # 2..17 blocks
        addi    %r6, %r6, 2
        std     %r6, 16(%r20)
        li      %r6, 0
        std     %r6, 24(%r20)                 # token 0
4:
        cmpdi   %r22, H_SCM_UNBIND_ALL
        bne     5f
        LI64    %r20, ARGS                    # the scope: 0..3 mostly
        rldicl  %r0, %r23, 56, 62
        andi.   %r5, %r23, 0x4000
        bne     5f
        std     %r0, 0(%r20)
5:
        cmpdi   %r22, H_SCM_FLUSH
        bne     6f
        LI64    %r20, ARGS                    # tokens 0..7 mostly: real ones
        rldicl  %r0, %r23, 56, 61
        andi.   %r5, %r23, 0x8000
        bne     6f
        std     %r0, 8(%r20)
6:
        cmpdi   %r22, H_SCM_PERFORMANCE_STATS
        bne     7f
        bl      stats_buffer
7:
        # The call.
        LI64    %r20, ARGS
        mr      %r3, %r22
        ld      %r4, 0(%r20)
        ld      %r5, 8(%r20)
        ld      %r6, 16(%r20)
        ld      %r7, 24(%r20)
        ld      %r8, 32(%r20)
        ld      %r9, 40(%r20)
        ld      %r10, 48(%r20)
        ld      %r11, 56(%r20)
        ld      %r12, 64(%r20)
        sc      1
        addi    %r16, %r16, 1
        rotldi  %r17, %r17, 5
        add     %r17, %r17, %r3
        cmpdi   %r3, 0
        bne     8f
        addi    %r18, %r18, 1
8:      std     %r16, CTL_CALLS(%r19)
        std     %r17, CTL_PRINT(%r19)
        std     %r18, CTL_OK(%r19)
        addic.  %r15, %r15, -1
        bgt     loop
        DONE

# rand: r3 = the next xorshift64 value (r14 the state). Clobbers r0.
rand:
        sldi    %r0, %r14, 13
        xor     %r14, %r14, %r0
        srdi    %r0, %r14, 7
        xor     %r14, %r14, %r0
        sldi    %r0, %r14, 17
        xor     %r14, %r14, %r0
        mr      %r3, %r14
        blr

# arg: r3 = an argument: random (1 in 4), small 0..255 (1 in 4) or an edge
# value (1 in 2). Clobbers r0, r24, r25.
arg:
        mflr    %r25
        bl      rand
        andi.   %r0, %r3, 3
        cmpdi   %r0, 1
        blt     1f
        beq     2f
        rldicl  %r0, %r3, 62, 58              # (x >> 2) & 63
        sldi    %r0, %r0, 3
        LA      %r24, edges
        ldx     %r3, %r24, %r0
        mtlr    %r25
        blr
1:      bl      rand
        mtlr    %r25
        blr
2:      rldicl  %r3, %r3, 56, 56
        mtlr    %r25
        blr

# stats_buffer: the buffer arguments of H_SCM_PERFORMANCE_STATS (ARGS+8,
# ARGS+16) by r23: the size query (0, 0); an address past RAM or one that
# wraps; a buffer at the end of RAM (nothing lives there); or a request
# built in STATS_PAGE: "SCMSTATS" (or not), version 1 (or 2), 0..31
# entries of known ids and "Bogus" ones, and a size of 0..511.
stats_buffer:
        mflr    %r25
        LI64    %r20, ARGS
        rldicl  %r0, %r23, 54, 62             # (x >> 10) & 3
        cmpdi   %r0, 1
        blt     1f
        beq     2f
        cmpdi   %r0, 2
        beq     3f
        # A request in STATS_PAGE.
        bl      rand
        mr      %r24, %r3
        rldicl  %r5, %r24, 56, 52             # offset 0..0xFF0, 16-aligned
        rldicr  %r5, %r5, 0, 59
        LI64    %r6, STATS_PAGE
        add     %r5, %r5, %r6
        std     %r5, 8(%r20)
        rldicl  %r6, %r24, 44, 55             # size 0..511
        std     %r6, 16(%r20)
        LI64    %r7, 0x53434d5354415453       # "SCMSTATS"
        andi.   %r0, %r24, 7
        bne     4f
        xori    %r7, %r7, 0x100
4:      std     %r7, 0(%r5)
        li      %r7, 1
        andi.   %r0, %r24, 0x38
        bne     5f
        li      %r7, 2
5:      stw     %r7, 8(%r5)
        rldicl  %r7, %r24, 32, 59             # 0..31 entries
        stw     %r7, 12(%r5)
        addi    %r5, %r5, 16
        mtctr   %r7
        cmpdi   %r7, 0
        beq     9f
6:      bl      rand
        andi.   %r0, %r3, 31
        sldi    %r0, %r0, 3
        LA      %r6, stat_ids
        ldx     %r6, %r6, %r0
        std     %r6, 0(%r5)
        std     %r3, 8(%r5)
        addi    %r5, %r5, 16
        bdnz    6b
9:      mtlr    %r25
        blr
1:      li      %r0, 0                        # the size query
        std     %r0, 8(%r20)
        std     %r0, 16(%r20)
        mtlr    %r25
        blr
2:      bl      rand                          # any size
        std     %r3, 16(%r20)
        bl      rand                          # the top bit set: past RAM, or wraps
        li      %r0, 1
        sldi    %r0, %r0, 63
        or      %r3, %r3, %r0
        std     %r3, 8(%r20)
        mtlr    %r25
        blr
3:      LI64    %r5, 0x7ffff000               # the last page of the 2 GiB of RAM
        rldicl  %r0, %r23, 40, 52
        add     %r5, %r5, %r0
        std     %r5, 8(%r20)
        li      %r6, 272
        std     %r6, 16(%r20)
        mtlr    %r25
        blr

        .section .rodata
        .balign 8
# The ten SCM opcodes, the ones with more checks twice.
ops:
        .quad   H_SCM_READ_METADATA, H_SCM_WRITE_METADATA, H_SCM_BIND_MEM, H_SCM_UNBIND_MEM
        .quad   H_SCM_QUERY_BLOCK_MEM_BINDING, H_SCM_QUERY_LOGICAL_MEM_BINDING, H_SCM_UNBIND_ALL, H_SCM_HEALTH
        .quad   H_SCM_PERFORMANCE_STATS, H_SCM_FLUSH, H_SCM_READ_METADATA, H_SCM_WRITE_METADATA
        .quad   H_SCM_BIND_MEM, H_SCM_UNBIND_MEM, H_SCM_UNBIND_ALL, H_SCM_FLUSH
# Edge values (64).
edges:
        .quad   0, 1, 2, 3, 4, 5, 7, 8
        .quad   9, 16, 0xff, 0x100, 0x10000, 0x1fff8, 0x1fffc, 0x1ffff
        .quad   0x20000, 0x20001, 0x7fffffff, 0x80000000, 0x90000000, 0xa0000000, 0xb0000000, 0xb7654321
        .quad   0xc0000000, 0xd0000000, 0xe0000000, 0x100000000, 0x1000000000, 0x10000000, 0x0fffffff, 0x90000001
        .quad   0x90000002, 0x90000003, 0x90000004, 0x9fffffff, 0x80000001, 0x20000000, 0xffffffff90000000, 0xdeadbeef90000000
        .quad   -1, -2, -16, 0x8000000000000000, 0x7fffffffffffffff, 0xfffffffff0000000, 0xffffffffe0000000, 0xf000000000000000
        .quad   0x0fffffffffffffff, 0x1000000000000000, 0xfffffffffffffff0, 0x110, 271, 272, 32, 48
        .quad   4096, 0x100000000000, 0x80000000000, 0xfffffff, 0x40000000, 0xffffffff, 0x100000001, 0x90000000ffffffff
# Statistic ids: Linux's sixteen [papr_scm.c] and sixteen it does not know.
stat_ids:
        .ascii  "CtlResCt", "CtlResTm", "PonSecs ", "MemLife "
        .ascii  "CritRscU", "HostLCnt", "HostSCnt", "HostSDur"
        .ascii  "HostLDur", "MedRCnt ", "MedWCnt ", "MedRDur "
        .ascii  "MedWDur ", "CchRHCnt", "CchWHCnt", "FastWCnt"
        .ascii  "Bogus   ", "ctlresct", "MemLife\0", "        "
        .ascii  "CtlResC ", "MEMLIFE ", "\377\377\377\377\377\377\377\377", "\0\0\0\0\0\0\0\0"
        .ascii  "SCMSTATS", "PonSecs1", "HostLCn ", "MedRCnt!"
        .ascii  "FastWCnT", "?badid?!", " MemLife", "CchWHCn\n"
        .if     . - stat_ids != 32 * 8
        .error  "stat_ids: 32 ids of 8 bytes"
        .endif
